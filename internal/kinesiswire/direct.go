package kinesiswire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	"github.com/aws/smithy-go/metrics"
	"github.com/aws/smithy-go/tracing"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Direct sends PutRecords calls itself, signed with SigV4, instead of through the
// kinesis.Client's middleware stack: the request body the caller encoded (with
// AppendPutRecordsInput), the payload hash the caller computed, one *http.Request built
// and signed per call, sent through the client's own HTTP client, and the response
// decoded straight into the caller's result entries. It takes from the client's Options
// what the SDK would use for the call: the credentials provider, the region, the
// endpoint as the client's EndpointResolverV2 resolves it for PutRecords (BaseEndpoint,
// FIPS, dual-stack), the SigV4 signer (HTTPSignerV4), the HTTP client and AppID; see
// NewDirect for the options it cannot honour.
//
// Errors have the shape the SDK gives them: a *smithy.OperationError wrapping, for an
// error response, an *awshttp.ResponseError (status code and request ID) around a
// smithy.APIError with the service's error code, and for a failed send a
// *smithyhttp.RequestSendError. A Direct makes one attempt per call: retrying is the
// caller's.
type Direct struct {
	http   aws.HTTPClient
	creds  aws.CredentialsProvider
	signer kinesis.HTTPSignerV4
	region string
	name   string // signing name
	url    url.URL
	agent  string
}

// ErrNotDirect is wrapped by NewDirect's error for a client option that the direct path
// cannot honour; the caller should keep the SDK's path.
var ErrNotDirect = errors.New("kinesiswire: client options need the SDK's PutRecords path")

// The SDK's default types of the options a Direct resolves as the SDK would only when
// they are the defaults.
var (
	defaultOptions            = kinesis.New(kinesis.Options{}).Options()
	defaultEndpointResolver   = reflect.TypeOf(kinesis.NewDefaultEndpointResolverV2())
	defaultAuthSchemeResolver = reflect.TypeOf(defaultOptions.AuthSchemeResolver)
)

// noop reports whether v, a meter or tracer provider, is nil, the SDK's default or a
// no-op one of smithy-go's.
func noop(v any, def any, nops ...any) bool {
	t := reflect.TypeOf(v)
	if v == nil || t == reflect.TypeOf(def) {
		return true
	}
	for _, n := range nops {
		if t == reflect.TypeOf(n) {
			return true
		}
	}
	return false
}

// NewDirect returns a Direct for the client options o (kinesis.Client.Options()). The
// endpoint is resolved once, here, for a PutRecords call by stream name: the default
// resolver's answer depends on nothing else. It fails, wrapping ErrNotDirect, for
// options whose effect on a call only the SDK's stack has: API options or
// interceptors (the caller's middleware), a custom or deprecated endpoint resolver, a
// custom auth scheme resolver, auth schemes other than the one SigV4 scheme, no or
// anonymous credentials, client logging, or a meter or tracer provider other than the
// no-op ones.
func NewDirect(ctx context.Context, o kinesis.Options) (*Direct, error) {
	not := func(what string) (*Direct, error) { return nil, fmt.Errorf("%w: %s", ErrNotDirect, what) }
	switch {
	case len(o.APIOptions) > 0:
		return not("API options (middleware)")
	case hasInterceptors(o.Interceptors):
		return not("interceptors")
	case o.EndpointResolver != nil: //lint:ignore SA1019 a client that still sets it needs the SDK to apply it
		return not("a deprecated EndpointResolver")
	case o.EndpointResolverV2 == nil || reflect.TypeOf(o.EndpointResolverV2) != defaultEndpointResolver:
		return not("a custom EndpointResolverV2")
	case o.AuthSchemeResolver != nil && reflect.TypeOf(o.AuthSchemeResolver) != defaultAuthSchemeResolver:
		return not("a custom AuthSchemeResolver")
	case len(o.AuthSchemes) > 1 || len(o.AuthSchemes) == 1 && o.AuthSchemes[0].SchemeID() != smithyauth.SchemeIDSigV4:
		return not("auth schemes other than SigV4")
	case len(o.AuthSchemePreference) > 0 && o.AuthSchemePreference[0] != "sigv4":
		return not("an auth scheme preference other than SigV4")
	case o.Credentials == nil || aws.IsCredentialsProvider(o.Credentials, (*aws.AnonymousCredentials)(nil)):
		return not("no credentials")
	case o.ClientLogMode != 0:
		return not("client logging")
	case !noop(o.MeterProvider, defaultOptions.MeterProvider, metrics.NopMeterProvider{}, &metrics.NopMeterProvider{}):
		return not("a meter provider")
	case !noop(o.TracerProvider, defaultOptions.TracerProvider, tracing.NopTracerProvider{}, &tracing.NopTracerProvider{}):
		return not("a tracer provider")
	case o.Region == "":
		return not("no region")
	}
	params := kinesis.EndpointParameters{
		Region:                &o.Region,
		UseDualStack:          aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		UseFIPS:               aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		Endpoint:              o.BaseEndpoint,
		AccountIdEndpointMode: aws.String(string(o.AccountIDEndpointMode)),
		OperationType:         aws.String("data"),
	}
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, params)
	if err != nil {
		return nil, fmt.Errorf("kinesiswire: resolve the PutRecords endpoint: %w", err)
	}
	d := &Direct{
		http:   o.HTTPClient,
		creds:  o.Credentials,
		signer: o.HTTPSignerV4,
		region: o.Region,
		name:   "kinesis",
		url:    ep.URI,
		agent:  "freshet aws-sdk-go-v2/service/kinesis",
	}
	if opts, ok := smithyauth.GetAuthOptions(&ep.Properties); ok {
		for _, a := range opts {
			if a.SchemeID != smithyauth.SchemeIDSigV4 {
				return not("an endpoint with auth scheme " + a.SchemeID)
			}
			if n, ok := smithyhttp.GetSigV4SigningName(&a.SignerProperties); ok {
				d.name = n
			}
			if r, ok := smithyhttp.GetSigV4SigningRegion(&a.SignerProperties); ok {
				d.region = r
			}
		}
	}
	if d.http == nil {
		d.http = awshttp.NewBuildableClient()
	}
	if d.signer == nil {
		return not("no SigV4 signer")
	}
	if len(d.url.Path) == 0 {
		d.url.Path = "/"
	}
	if o.AppID != "" {
		d.agent += " app/" + o.AppID
	}
	return d, nil
}

// hasInterceptors reports whether r holds any interceptor.
func hasInterceptors(r smithyhttp.InterceptorRegistry) bool {
	v := reflect.ValueOf(r)
	for i := range v.NumField() {
		if f := v.Field(i); f.Kind() == reflect.Slice && f.Len() > 0 {
			return true
		}
	}
	return false
}

// WithHTTPClient returns a copy of d that sends through c.
func (d *Direct) WithHTTPClient(c aws.HTTPClient) *Direct {
	n := *d
	n.http = c
	return &n
}

// URL returns the endpoint the calls go to.
func (d *Direct) URL() string { return d.url.String() }

// PutRecords sends body, a PutRecords request body in CBOR (cbor) or JSON as
// AppendPutRecordsInput writes it, signed with payloadHash (the hex SHA-256 of body),
// and decodes a successful response into out, whose Records' array it reuses when it
// has room (see WithResultEntries). body is not read once PutRecords has returned, so
// the caller may recycle it. A CBOR call answered in something else fails with a
// *NotCBORError, as through the SDK.
func (d *Direct) PutRecords(ctx context.Context, body []byte, payloadHash string, cbor bool, out *kinesis.PutRecordsOutput) error {
	err := d.putRecords(ctx, body, payloadHash, cbor, out)
	if err != nil {
		return &smithy.OperationError{ServiceID: kinesis.ServiceID, OperationName: "PutRecords", Err: err}
	}
	return nil
}

func (d *Direct) putRecords(ctx context.Context, body []byte, payloadHash string, cbor bool, out *kinesis.PutRecordsOutput) error {
	creds, err := d.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("retrieve credentials: %w", err)
	}
	ct := ContentTypeJSON
	if cbor {
		ct = ContentType
	}
	u := d.url
	owner := &bodyOwner{b: body}
	defer owner.release()
	req := (&http.Request{
		Method:        http.MethodPost,
		URL:           &u,
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        make(http.Header, 8),
		Body:          &requestBody{o: owner},
		GetBody:       owner.body,
		ContentLength: int64(len(body)),
		Host:          u.Host,
	}).WithContext(ctx)
	req.Header["X-Amz-Target"] = []string{PutRecordsTarget}
	req.Header["Content-Type"] = []string{ct}
	req.Header["Accept"] = []string{ct}
	req.Header["User-Agent"] = []string{d.agent}
	if err := d.signer.SignHTTP(ctx, creds, req, payloadHash, d.name, d.region, time.Now().UTC()); err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	resp, err := d.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return &smithy.CanceledError{Err: err}
		}
		return &smithyhttp.RequestSendError{Err: err}
	}
	defer resp.Body.Close()
	ok := resp.StatusCode >= 200 && resp.StatusCode < 300
	bp, err := readPooledBody(resp.Body, resp.ContentLength)
	if bp != nil {
		defer putResponseBody(bp)
	}
	if err != nil {
		if ok {
			return &smithy.DeserializationError{Err: fmt.Errorf("read PutRecords response: %w", err)}
		}
		return d.responseError(resp, &smithy.DeserializationError{Err: fmt.Errorf("read error response: %w", err)})
	}
	b := *bp
	if !ok {
		if !cbor {
			return d.responseError(resp, DecodeJSONError(resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), b))
		}
		apiErr := DecodeCBORError(resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), b)
		if Rejected(resp.StatusCode, resp.Header.Get("Content-Type"), apiErr) {
			return &smithy.DeserializationError{Err: &NotCBORError{Op: "PutRecords", Err: apiErr}}
		}
		return d.responseError(resp, apiErr)
	}
	if cbor {
		err = DecodePutRecordsOutputCBOR(b, out)
	} else {
		err = DecodePutRecordsOutputJSON(b, out)
	}
	if err != nil {
		err = fmt.Errorf("decode PutRecords response: %w", err)
		if cbor {
			err = &NotCBORError{Op: "PutRecords", Err: err}
		}
		return &smithy.DeserializationError{Err: err}
	}
	return nil
}

// responseError wraps err, an error response's error, as the SDK does: with the
// response's status code and request ID.
func (d *Direct) responseError(resp *http.Response, err error) error {
	id := resp.Header.Get("X-Amzn-Requestid")
	if id == "" {
		id = resp.Header.Get("X-Amz-Request-Id")
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: resp}, Err: err},
		RequestID:     id,
	}
}

// bodyOwner holds a call's request body for the readers the transport gets
// (requestBody: the first, and one more per GetBody when it resends a request it
// could not write). Once released they all read as empty, and release waits for a
// Read in progress, so a buffer the caller recycles after the call is never read by
// it.
type bodyOwner struct {
	mu       sync.Mutex
	b        []byte
	released bool
}

func (o *bodyOwner) body() (io.ReadCloser, error) { return &requestBody{o: o}, nil }

func (o *bodyOwner) release() {
	o.mu.Lock()
	o.released, o.b = true, nil
	o.mu.Unlock()
}

// requestBody reads its owner's body. It offers only Read (see internal/sdkhttp: the
// transport's extra-bytes check then reads a clean EOF).
type requestBody struct {
	o      *bodyOwner
	off    int
	closed bool
}

// Read implements io.Reader.
func (r *requestBody) Read(p []byte) (int, error) {
	o := r.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.released || r.closed || r.off >= len(o.b) {
		return 0, io.EOF
	}
	n := copy(p, o.b[r.off:])
	r.off += n
	return n, nil
}

// Close implements io.Closer.
func (r *requestBody) Close() error {
	r.o.mu.Lock()
	r.closed = true
	r.o.mu.Unlock()
	return nil
}

// DecodeJSONError turns a JSON 1.1 error response into a smithy API error, as
// DecodeCBORError does for CBOR: the code from X-Amzn-Errortype, else the body's
// __type or code; the message from its message or Message. A body that is not a JSON
// object leaves them to the header and the status.
func DecodeJSONError(status int, header string, body []byte) error {
	code, msg := header, ""
	d := &jsonDecoder{b: body}
	d.space()
	_ = d.object(func(key []byte) error {
		switch string(key) {
		case "__type", "code":
			s, err := d.str()
			if code == "" && err == nil {
				code = s
			}
			return err
		case "message", "Message":
			s, err := d.str()
			if msg == "" && err == nil {
				msg = s
			}
			return err
		}
		return d.skip(0)
	})
	return apiError(status, code, msg)
}

// apiError is the API error of an error response of status, with the service's code
// (namespace and URI suffix removed; "HTTP<status>" if there is none) and message.
func apiError(status int, code, msg string) error {
	if i := strings.IndexByte(code, '#'); i >= 0 {
		code = code[i+1:]
	}
	if i := strings.IndexByte(code, ':'); i >= 0 {
		code = code[:i]
	}
	if code == "" {
		code = fmt.Sprintf("HTTP%d", status)
	}
	fault := smithy.FaultClient
	if status >= 500 {
		fault = smithy.FaultServer
	}
	return &smithy.GenericAPIError{Code: code, Message: msg, Fault: fault}
}
