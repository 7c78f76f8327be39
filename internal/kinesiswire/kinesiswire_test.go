package kinesiswire

import (
	"testing"

	"github.com/aws/smithy-go"
)

func TestRejected(t *testing.T) {
	for _, tc := range []struct {
		status      int
		contentType string
		code        string
		want        bool
	}{
		{415, ContentType, "", true},
		{400, "application/x-amz-json-1.1", "ResourceNotFoundException", true},
		{400, "text/html", "HTTP400", true},
		{400, ContentType, "SerializationException", true},
		{400, ContentType, "UnknownOperationException", true},
		{400, ContentType, "ExpiredIteratorException", false},
		{400, ContentType, "ProvisionedThroughputExceededException", false},
		{500, ContentType + "; charset=utf-8", "InternalFailure", false},
	} {
		err := &smithy.GenericAPIError{Code: tc.code}
		if got := Rejected(tc.status, tc.contentType, err); got != tc.want {
			t.Errorf("Rejected(%d, %q, %q) = %v, want %v", tc.status, tc.contentType, tc.code, got, tc.want)
		}
	}
}
