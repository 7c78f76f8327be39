// Package cborwire holds what the producer's PutRecords and the consumer's GetRecords
// share about the Kinesis CBOR 1.1 protocol (JSON 1.1 with CBOR bodies), which both use
// by default: above all, how to tell an endpoint that does not take CBOR from an error
// of the call itself, so that they can switch to JSON instead of retrying in CBOR.
package cborwire

import (
	"net/http"
	"strings"
)

// ContentType is the media type of Kinesis CBOR requests and responses.
const ContentType = "application/x-amz-cbor-1.1"

// Rejected reports whether an error response to a CBOR call says that the endpoint
// does not take CBOR at all, rather than reporting an error of the call: a 415, an
// error body that is not CBOR (Kinesis answers a CBOR call's errors in CBOR), or a
// serialization or unknown-operation error code.
func Rejected(status int, contentType, code string) bool {
	if status == http.StatusUnsupportedMediaType || !strings.HasPrefix(contentType, ContentType) {
		return true
	}
	switch code {
	case "SerializationException", "UnknownOperationException", "UnsupportedMediaTypeException":
		return true
	}
	return false
}
