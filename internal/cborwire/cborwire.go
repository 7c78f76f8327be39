// Package cborwire holds what the producer's PutRecords and the consumer's GetRecords
// share about the Kinesis CBOR 1.1 protocol (JSON 1.1 with CBOR bodies), which both use
// by default: how to set up a request of either protocol with a body they encoded
// themselves, and how to tell an endpoint that does not take CBOR from an error of the
// call itself, so that they can switch to JSON instead of retrying in CBOR.
package cborwire

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// ContentType is the media type of Kinesis CBOR requests and responses.
const ContentType = "application/x-amz-cbor-1.1"

// Rejected reports whether an error response to a CBOR call (status, Content-Type and
// the error decoded from its body) says that the endpoint does not take CBOR at all,
// rather than reporting an error of the call: a 415, an error body that is not CBOR
// (Kinesis answers a CBOR call's errors in CBOR), or a serialization or
// unknown-operation error code.
func Rejected(status int, contentType string, err error) bool {
	code := ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	if status == http.StatusUnsupportedMediaType || !strings.HasPrefix(contentType, ContentType) {
		return true
	}
	switch code {
	case "SerializationException", "UnknownOperationException", "UnsupportedMediaTypeException":
		return true
	}
	return false
}

// SetRequest makes req a call of the Kinesis JSON 1.1 or CBOR 1.1 protocol: POST to /
// (unless the endpoint has a path), operation target (for example
// "Kinesis_20131202.PutRecords") in X-Amz-Target, contentType as Content-Type and
// Accept, and body as the stream, which the SDK then signs and sends.
func SetRequest(req *smithyhttp.Request, target, contentType string, body []byte) error {
	req.Method = http.MethodPost
	if len(req.URL.Path) == 0 {
		req.URL.Path = "/"
	}
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("Accept", contentType)
	sreq, err := req.SetStream(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("set stream: %w", err)
	}
	*req = *sreq
	return nil
}
