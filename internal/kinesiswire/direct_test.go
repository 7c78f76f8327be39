package kinesiswire

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	"github.com/aws/smithy-go/tracing"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/freshet/freshet/internal/retrypolicy"
	"github.com/freshet/freshet/internal/sdkhttp"
)

const (
	testAccessKey = "AKIDFRESHET"
	testSecretKey = "freshet-secret"
)

// verifySigV4 checks r's SigV4 Authorization header against secret, computed here from
// the AWS documentation's description of the signature (canonical request, string to
// sign, derived signing key), independently of the SDK's signer. It returns the
// credential scope's region and service.
func verifySigV4(r *http.Request, body []byte, secret string) (region, service string, err error) {
	auth := r.Header.Get("Authorization")
	const alg = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, alg) {
		return "", "", fmt.Errorf("authorization %q", auth)
	}
	fields := map[string]string{}
	for _, f := range strings.Split(auth[len(alg):], ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	scope := strings.SplitN(fields["Credential"], "/", 2)
	if len(scope) != 2 {
		return "", "", fmt.Errorf("credential %q", fields["Credential"])
	}
	parts := strings.Split(scope[1], "/") // date/region/service/aws4_request
	if len(parts) != 4 || parts[3] != "aws4_request" {
		return "", "", fmt.Errorf("scope %q", scope[1])
	}
	amzDate := r.Header.Get("X-Amz-Date")
	if !strings.HasPrefix(amzDate, parts[0]) {
		return "", "", fmt.Errorf("X-Amz-Date %q outside scope date %s", amzDate, parts[0])
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !sort.StringsAreSorted(signed) {
		return "", "", fmt.Errorf("signed headers %v not sorted", signed)
	}
	var canon strings.Builder
	for _, h := range signed {
		var v string
		switch h {
		case "host":
			v = r.Host
		case "content-length":
			v = strconv.FormatInt(r.ContentLength, 10)
		default:
			vals := r.Header.Values(h)
			for i := range vals {
				vals[i] = strings.Join(strings.Fields(vals[i]), " ")
			}
			v = strings.Join(vals, ",")
		}
		canon.WriteString(h + ":" + v + "\n")
	}
	sum := sha256.Sum256(body)
	path := r.URL.EscapedPath()
	if path == "" {
		path = "/"
	}
	creq := strings.Join([]string{r.Method, path, r.URL.RawQuery, canon.String(), fields["SignedHeaders"], hex.EncodeToString(sum[:])}, "\n")
	creqSum := sha256.Sum256([]byte(creq))
	sts := strings.Join([]string{"AWS4-HMAC-SHA256", amzDate, scope[1], hex.EncodeToString(creqSum[:])}, "\n")
	mac := func(key []byte, s string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(s))
		return h.Sum(nil)
	}
	key := []byte("AWS4" + secret)
	for _, p := range parts {
		key = mac(key, p)
	}
	if want := hex.EncodeToString(mac(key, sts)); want != fields["Signature"] {
		return "", "", fmt.Errorf("signature %s, want %s", fields["Signature"], want)
	}
	return parts[1], parts[2], nil
}

// captured is one request a test server received.
type captured struct {
	target, contentType, token string
	body                       []byte
	region, service            string
	err                        error
}

// putServer answers every request with status, headers and body after checking its
// signature; it keeps what it received.
type putServer struct {
	*httptest.Server
	mu     sync.Mutex
	got    []captured
	status int
	header http.Header
	body   []byte
}

func newPutServer(t *testing.T) *putServer {
	s := &putServer{status: 200}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		c := captured{target: r.Header.Get("X-Amz-Target"), contentType: r.Header.Get("Content-Type"), token: r.Header.Get("X-Amz-Security-Token"), body: b}
		c.region, c.service, c.err = verifySigV4(r, b, testSecretKey)
		s.mu.Lock()
		s.got = append(s.got, c)
		status, header, body := s.status, s.header, s.body
		s.mu.Unlock()
		for k, v := range header {
			w.Header()[k] = v
		}
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *putServer) answer(status int, header http.Header, body []byte) {
	s.mu.Lock()
	s.status, s.header, s.body = status, header, body
	s.mu.Unlock()
}

func (s *putServer) last(t *testing.T) captured {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.got) == 0 {
		t.Fatal("server received no request")
	}
	return s.got[len(s.got)-1]
}

func testClient(url string, creds aws.CredentialsProvider, opts ...func(*kinesis.Options)) *kinesis.Client {
	return kinesis.New(kinesis.Options{
		Region:       "eu-west-1",
		Credentials:  creds,
		BaseEndpoint: aws.String(url),
		Retryer:      aws.NopRetryer{},
	}, opts...)
}

func testInput(n int) *kinesis.PutRecordsInput {
	in := &kinesis.PutRecordsInput{StreamName: aws.String("direct")}
	for i := range n {
		in.Records = append(in.Records, types.PutRecordsRequestEntry{Data: []byte(strings.Repeat("d", 100) + strconv.Itoa(i)), PartitionKey: aws.String("pk-" + strconv.Itoa(i))})
	}
	return in
}

func hashOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// directPut makes one PutRecords call of in through d.
func directPut(d *Direct, in *kinesis.PutRecordsInput, cbor bool) (*kinesis.PutRecordsOutput, error) {
	body := AppendPutRecordsInput(nil, in, nil, cbor)
	out := &kinesis.PutRecordsOutput{}
	err := d.PutRecords(context.Background(), body, hashOf(body), cbor, out)
	return out, err
}

// sdkPut makes the same call through the SDK's client with this package's protocol.
func sdkPut(c *kinesis.Client, in *kinesis.PutRecordsInput, cbor bool) (*kinesis.PutRecordsOutput, error) {
	use := UseJSON
	if cbor {
		use = UseCBOR
	}
	return c.PutRecords(context.Background(), in, use)
}

// TestDirectRequestMatchesSDK: a direct call sends what the SDK's client sends for the
// same input (target, content type, body), signed with a valid SigV4 signature for
// the client's region and the kinesis service, with the session token of the
// credentials, and decodes the same output.
func TestDirectRequestMatchesSDK(t *testing.T) {
	srv := newPutServer(t)
	var retrieved atomic.Int64
	static := credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, "session-token")
	creds := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		retrieved.Add(1)
		return static.Retrieve(ctx)
	})
	c := testClient(srv.URL, creds)
	d, err := NewDirect(context.Background(), c.Options())
	if err != nil {
		t.Fatal(err)
	}
	if d.URL() != srv.URL+"/" {
		t.Fatalf("endpoint %s, want %s/", d.URL(), srv.URL)
	}
	in := testInput(20)
	for _, cbor := range []bool{true, false} {
		t.Run(fmt.Sprintf("cbor=%v", cbor), func(t *testing.T) {
			resp := bigJSONResponse(20, 7)
			ct := ContentTypeJSON
			if cbor {
				resp = bigCBORResponse(20, 7)
				ct = ContentType
			}
			srv.answer(200, http.Header{"Content-Type": {ct}}, resp)
			want, err := sdkPut(c, in, cbor)
			if err != nil {
				t.Fatal(err)
			}
			viaSDK := srv.last(t)
			before := retrieved.Load()
			got, err := directPut(d, in, cbor)
			if err != nil {
				t.Fatal(err)
			}
			direct := srv.last(t)
			if retrieved.Load() == before {
				t.Error("the credentials provider was not asked")
			}
			for name, c := range map[string]captured{"sdk": viaSDK, "direct": direct} {
				if c.err != nil {
					t.Errorf("%s: %v", name, c.err)
				}
				if c.region != "eu-west-1" || c.service != "kinesis" {
					t.Errorf("%s: signed for %s/%s", name, c.region, c.service)
				}
				if c.token != "session-token" {
					t.Errorf("%s: security token %q", name, c.token)
				}
			}
			if direct.target != viaSDK.target || direct.contentType != viaSDK.contentType || string(direct.body) != string(viaSDK.body) {
				t.Errorf("direct sent %s %s (%d bytes), the SDK %s %s (%d bytes)", direct.target, direct.contentType, len(direct.body), viaSDK.target, viaSDK.contentType, len(viaSDK.body))
			}
			if fmt.Sprint(entriesOf(got)) != fmt.Sprint(entriesOf(want)) || aws.ToInt32(got.FailedRecordCount) != aws.ToInt32(want.FailedRecordCount) {
				t.Errorf("direct decoded %v, the SDK %v", entriesOf(got), entriesOf(want))
			}
		})
	}
}

func entriesOf(out *kinesis.PutRecordsOutput) []string {
	var s []string
	for _, e := range out.Records {
		s = append(s, aws.ToString(e.ShardId)+"/"+aws.ToString(e.SequenceNumber)+"/"+aws.ToString(e.ErrorCode)+"/"+aws.ToString(e.ErrorMessage))
	}
	return s
}

// bigCBORResponse is bigJSONResponse's response in CBOR.
func bigCBORResponse(n, failEvery int) []byte {
	var b []byte
	b = AppendHead(b, MajorMap, 2)
	b = AppendText(b, "FailedRecordCount")
	failed := 0
	for i := range n {
		if failEvery > 0 && i%failEvery == failEvery-1 {
			failed++
		}
	}
	b = AppendHead(b, MajorUint, uint64(failed))
	b = AppendText(b, "Records")
	b = AppendHead(b, MajorArray, uint64(n))
	for i := range n {
		if failEvery > 0 && i%failEvery == failEvery-1 {
			b = AppendHead(b, MajorMap, 2)
			b = AppendText(b, "ErrorCode")
			b = AppendText(b, "ProvisionedThroughputExceededException")
			b = AppendText(b, "ErrorMessage")
			b = AppendText(b, "Rate exceeded for shard shardId-000000000001")
			continue
		}
		b = AppendHead(b, MajorMap, 2)
		b = AppendText(b, "SequenceNumber")
		b = AppendText(b, fmt.Sprintf("4959%052d", i))
		b = AppendText(b, "ShardId")
		b = AppendText(b, fmt.Sprintf("shardId-%012d", i%4))
	}
	return b
}

// TestDirectErrorsMatchSDK: for every error response, the direct path's error has
// the error code, class, fault, HTTP status and request ID that the SDK's path gives
// for the same response, and a CBOR call answered in something else fails with
// *NotCBORError on both.
func TestDirectErrorsMatchSDK(t *testing.T) {
	srv := newPutServer(t)
	c := testClient(srv.URL, credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""))
	d, err := NewDirect(context.Background(), c.Options())
	if err != nil {
		t.Fatal(err)
	}
	cborErr := func(typ, msg string) []byte {
		b := AppendHead(nil, MajorMap, 2)
		b = AppendText(b, "__type")
		b = AppendText(b, typ)
		b = AppendText(b, "message")
		return AppendText(b, msg)
	}
	jsonH := http.Header{"Content-Type": {ContentTypeJSON}, "X-Amzn-Requestid": {"req-1"}}
	cborH := http.Header{"Content-Type": {ContentType}, "X-Amzn-Requestid": {"req-2"}}
	for _, tc := range []struct {
		name    string
		cbor    bool
		status  int
		header  http.Header
		body    []byte
		code    string
		notCBOR bool
	}{
		{"json throughput", false, 400, jsonH, []byte(`{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded"}`), "ProvisionedThroughputExceededException", false},
		{"json namespaced not found", false, 400, jsonH, []byte(`{"__type":"com.amazonaws.kinesis.v20131202#ResourceNotFoundException","message":"Stream direct not found"}`), "ResourceNotFoundException", false},
		{"json internal failure", false, 500, jsonH, []byte(`{"__type":"InternalFailure"}`), "InternalFailure", false},
		{"json header code", false, 400, http.Header{"Content-Type": {ContentTypeJSON}, "X-Amzn-Errortype": {"KMSThrottlingException:http://internal.amazon.com/"}}, []byte(`{"message":"slow down"}`), "KMSThrottlingException", false},
		{"json unknown 503", false, 503, jsonH, []byte(`{"__type":"ServiceUnavailable","message":"try later"}`), "ServiceUnavailable", false},
		{"cbor throughput", true, 400, cborH, cborErr("ProvisionedThroughputExceededException", "Rate exceeded"), "ProvisionedThroughputExceededException", false},
		{"cbor expired token", true, 400, cborH, cborErr("ExpiredTokenException", "token expired"), "ExpiredTokenException", false},
		{"cbor internal failure", true, 500, cborH, cborErr("InternalFailure", ""), "InternalFailure", false},
		{"cbor rejected 415", true, 415, http.Header{"Content-Type": {"text/plain"}}, []byte("no"), "", true},
		{"cbor answered in JSON", true, 400, jsonH, []byte(`{"__type":"SerializationException"}`), "", true},
		{"cbor success cut off", true, 200, cborH, bigCBORResponse(30, 0)[:200], "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.answer(tc.status, tc.header, tc.body)
			in := testInput(3)
			_, sdkErr := sdkPut(c, in, tc.cbor)
			_, dErr := directPut(d, in, tc.cbor)
			if sdkErr == nil || dErr == nil {
				t.Fatalf("errors: sdk %v, direct %v", sdkErr, dErr)
			}
			var oe *smithy.OperationError
			if !errors.As(dErr, &oe) || oe.Operation() != "PutRecords" || oe.Service() != kinesis.ServiceID {
				t.Errorf("direct error %v is not a PutRecords operation error", dErr)
			}
			var nce *NotCBORError
			if tc.notCBOR {
				if !errors.As(dErr, &nce) || !errors.As(sdkErr, &nce) {
					t.Fatalf("want NotCBORError: sdk %v, direct %v", sdkErr, dErr)
				}
				return
			}
			if errors.As(dErr, &nce) {
				t.Fatalf("direct: unexpected NotCBORError %v", dErr)
			}
			var sa, da smithy.APIError
			if !errors.As(sdkErr, &sa) || !errors.As(dErr, &da) {
				t.Fatalf("API errors: sdk %v, direct %v", sdkErr, dErr)
			}
			if da.ErrorCode() != tc.code || sa.ErrorCode() != tc.code {
				t.Errorf("codes: sdk %s, direct %s, want %s", sa.ErrorCode(), da.ErrorCode(), tc.code)
			}
			// The SDK's JSON errors without a message say "UnknownError".
			if sa.ErrorMessage() != da.ErrorMessage() && (da.ErrorMessage() != "" || sa.ErrorMessage() != "UnknownError") {
				t.Errorf("messages: sdk %q, direct %q", sa.ErrorMessage(), da.ErrorMessage())
			}
			if sc, dc := retrypolicy.ErrorClass(sdkErr), retrypolicy.ErrorClass(dErr); sc != dc {
				t.Errorf("classes: sdk %v, direct %v", sc, dc)
			}
			var sr, dr interface {
				HTTPStatusCode() int
				ServiceRequestID() string
			}
			if !errors.As(sdkErr, &sr) || !errors.As(dErr, &dr) {
				t.Fatalf("response errors: sdk %T, direct %T", sdkErr, dErr)
			}
			if sr.HTTPStatusCode() != dr.HTTPStatusCode() || sr.ServiceRequestID() != dr.ServiceRequestID() {
				t.Errorf("status/request ID: sdk %d %q, direct %d %q", sr.HTTPStatusCode(), sr.ServiceRequestID(), dr.HTTPStatusCode(), dr.ServiceRequestID())
			}
		})
	}
}

// TestDirectSendErrors: a call that cannot reach the endpoint fails as a transient
// send error, and one whose context ends is canceled, not retried.
func TestDirectSendErrors(t *testing.T) {
	srv := newPutServer(t)
	url := srv.URL
	srv.Close()
	c := testClient(url, credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""))
	d, err := NewDirect(context.Background(), c.Options())
	if err != nil {
		t.Fatal(err)
	}
	_, err = directPut(d, testInput(1), true)
	var se *smithyhttp.RequestSendError
	if !errors.As(err, &se) || retrypolicy.ErrorClass(err) != retrypolicy.Transient {
		t.Fatalf("refused connection: %v (%T), class %v", err, err, retrypolicy.ErrorClass(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	body := AppendPutRecordsInput(nil, testInput(1), nil, true)
	err = d.PutRecords(ctx, body, hashOf(body), true, &kinesis.PutRecordsOutput{})
	if !errors.Is(err, context.Canceled) || retrypolicy.ErrorClass(err) != retrypolicy.Fatal {
		t.Fatalf("canceled call: %v, class %v", err, retrypolicy.ErrorClass(err))
	}
	failing := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{}, errors.New("no credentials here")
	})
	d, err = NewDirect(context.Background(), testClient(url, failing).Options())
	if err != nil {
		t.Fatal(err)
	}
	if _, err = directPut(d, testInput(1), true); err == nil || !strings.Contains(err.Error(), "no credentials here") {
		t.Fatalf("failing credentials: %v", err)
	}
}

// TestNewDirectOptions: the options the direct path honours resolve as the SDK's
// would (endpoint by region, FIPS and dual-stack), and each option only the SDK's
// stack can apply makes NewDirect refuse with ErrNotDirect.
func TestNewDirectOptions(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, "")
	for _, tc := range []struct {
		name string
		opt  func(*kinesis.Options)
		url  string
	}{
		{"region", func(o *kinesis.Options) { o.BaseEndpoint = nil }, "https://kinesis.eu-west-1.amazonaws.com/"},
		{"fips", func(o *kinesis.Options) {
			o.BaseEndpoint = nil
			o.Region = "us-west-2"
			o.EndpointOptions.UseFIPSEndpoint = aws.FIPSEndpointStateEnabled
		}, "https://kinesis-fips.us-west-2.amazonaws.com/"},
		{"dual-stack", func(o *kinesis.Options) {
			o.BaseEndpoint = nil
			o.EndpointOptions.UseDualStackEndpoint = aws.DualStackEndpointStateEnabled
		}, "https://kinesis.eu-west-1.api.aws/"},
		{"base endpoint with path", func(o *kinesis.Options) { o.BaseEndpoint = aws.String("http://127.0.0.1:4567/kinesis") }, "http://127.0.0.1:4567/kinesis"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := NewDirect(context.Background(), testClient("http://unused", creds, tc.opt).Options())
			if err != nil {
				t.Fatal(err)
			}
			if d.URL() != tc.url {
				t.Fatalf("endpoint %s, want %s", d.URL(), tc.url)
			}
		})
	}
	type resolver struct{ kinesis.EndpointResolverV2 }
	for _, tc := range []struct {
		name string
		opt  func(*kinesis.Options)
	}{
		{"API options", func(o *kinesis.Options) {
			o.APIOptions = append(o.APIOptions, func(*middleware.Stack) error { return nil })
		}},
		{"interceptors", func(o *kinesis.Options) {
			o.Interceptors.AddBeforeSigning(beforeSigning{})
		}},
		{"custom endpoint resolver", func(o *kinesis.Options) {
			o.EndpointResolverV2 = resolver{kinesis.NewDefaultEndpointResolverV2()}
		}},
		{"anonymous credentials", func(o *kinesis.Options) { o.Credentials = aws.AnonymousCredentials{} }},
		{"no credentials", func(o *kinesis.Options) { o.Credentials = nil }},
		{"client logging", func(o *kinesis.Options) { o.ClientLogMode = aws.LogRequest }},
		{"tracer", func(o *kinesis.Options) { o.TracerProvider = tracerProvider{} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewDirect(context.Background(), testClient("http://unused", creds, tc.opt).Options())
			if !errors.Is(err, ErrNotDirect) {
				t.Fatalf("got %v, want ErrNotDirect", err)
			}
		})
	}
}

type tracerProvider struct{ tracing.NopTracerProvider }

type beforeSigning struct{}

func (beforeSigning) BeforeSigning(context.Context, *smithyhttp.InterceptorContext) error { return nil }

// TestDirectBodyNotReadAfterCall: once PutRecords has returned, the readers the
// transport was given read nothing more of the caller's buffer.
func TestDirectBodyNotReadAfterCall(t *testing.T) {
	o := &bodyOwner{b: []byte("0123456789")}
	first := &requestBody{o: o}
	p := make([]byte, 4)
	if n, _ := first.Read(p); n != 4 {
		t.Fatalf("read %d", n)
	}
	again, _ := o.body()
	if b, _ := io.ReadAll(again); string(b) != "0123456789" {
		t.Fatalf("GetBody's reader read %q", b)
	}
	o.release()
	if n, err := first.Read(p); n != 0 || err != io.EOF {
		t.Fatalf("after release: %d, %v", n, err)
	}
	late, _ := o.body()
	if n, err := late.Read(p); n != 0 || err != io.EOF {
		t.Fatalf("new reader after release: %d, %v", n, err)
	}
	if _, ok := any(first).(io.WriterTo); ok {
		t.Fatal("request body offers WriteTo")
	}
}

func TestDecodeJSONError(t *testing.T) {
	for _, tc := range []struct {
		status      int
		header      string
		body        string
		code, msg   string
		serverFault bool
	}{
		{400, "", `{"__type":"ResourceNotFoundException","message":"gone"}`, "ResourceNotFoundException", "gone", false},
		{400, "", `{"code":"a.b#InvalidArgumentException","Message":"bad","extra":{"x":[1,2]}}`, "InvalidArgumentException", "bad", false},
		{400, "AccessDeniedException:http://x/", `{"__type":"Other"}`, "AccessDeniedException", "", false},
		{500, "", `not json`, "HTTP500", "", true},
		{502, "", ``, "HTTP502", "", true},
		{400, "", `{"message":"esc\u0061ped \"q\""}`, "HTTP400", `escaped "q"`, false},
	} {
		err := DecodeJSONError(tc.status, tc.header, []byte(tc.body))
		var ae smithy.APIError
		if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || ae.ErrorMessage() != tc.msg || (ae.ErrorFault() == smithy.FaultServer) != tc.serverFault {
			t.Errorf("DecodeJSONError(%d, %q, %s) = %v", tc.status, tc.header, tc.body, err)
		}
	}
}

// FuzzDecodeJSONError: any body decodes to an API error with a code, without panics.
func FuzzDecodeJSONError(f *testing.F) {
	f.Add(400, "", []byte(`{"__type":"ProvisionedThroughputExceededException","message":"Rate exceeded"}`))
	f.Add(500, "InternalFailure", []byte(`{"message":"x","nested":{"a":[1,{"b":null}]}}`))
	f.Add(400, "", []byte(`{"__type":`))
	f.Fuzz(func(t *testing.T, status int, header string, body []byte) {
		var ae smithy.APIError
		if err := DecodeJSONError(status, header, body); !errors.As(err, &ae) || ae.ErrorCode() == "" && header == "" {
			t.Fatalf("error %v", err)
		}
	})
}

// BenchmarkDirectPutRecords compares one 500-entry CBOR PutRecords call's client CPU
// through the SDK's client and directly, against a loopback server that answers with
// a canned response.
func BenchmarkDirectPutRecords(b *testing.B) {
	resp := bigCBORResponse(500, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", ContentType)
		_, _ = w.Write(resp)
	}))
	defer srv.Close()
	c := testClient(srv.URL, credentials.NewStaticCredentialsProvider(testAccessKey, testSecretKey, ""), func(o *kinesis.Options) {
		o.HTTPClient = sdkhttp.ReadOnlyBodies(o.HTTPClient)
	})
	in := testInput(500)
	results := make([]types.PutRecordsResultEntry, 0, 500)
	b.Run("sdk", func(b *testing.B) {
		b.ReportAllocs()
		var body []byte
		for b.Loop() {
			ctx := WithResultEntries(WithBody(context.Background(), &body), &results)
			if _, err := c.PutRecords(ctx, in, UseCBOR); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		d, err := NewDirect(context.Background(), c.Options())
		if err != nil {
			b.Fatal(err)
		}
		var body []byte
		for b.Loop() {
			body = AppendPutRecordsInput(body[:0], in, nil, true)
			out := &kinesis.PutRecordsOutput{Records: results}
			if err := d.PutRecords(context.Background(), body, hashOf(body), true, out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
