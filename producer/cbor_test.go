package producer

import (
	"net/http"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/internal/kinesiswire"
)

// TestCBORErrorsClassify checks that errors decoded from CBOR error responses classify
// as the producer's IsRetryable expects: a missing stream is final, a 500 is retried.
func TestCBORErrorsClassify(t *testing.T) {
	errBody, _ := cbor.Marshal(map[string]string{"__type": "com.amazonaws.kinesis#ResourceNotFoundException", "message": "no stream"})
	if err := kinesiswire.DecodeCBORError(http.StatusBadRequest, "", errBody); IsRetryable(err) {
		t.Fatalf("%v retryable", err)
	}
	if err := kinesiswire.DecodeCBORError(http.StatusInternalServerError, "InternalFailure", nil); !IsRetryable(err) {
		t.Fatalf("500 not retryable: %v", err)
	}
}
