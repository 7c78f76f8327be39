package producer

import (
	"context"
	"encoding/base64"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/freshet/freshet/internal/jsonwire"
)

// The SDK's JSON serializer grows its buffer blob by blob and copies the result once
// more: for 5 MiB PutRecords calls that is about a fifth of the JSON path's CPU. With
// WithCBOR(false) the producer writes PutRecords bodies itself, sized up front, base64
// straight into place; responses and every other operation stay with the SDK.

const contentTypeJSON = "application/x-amz-json-1.1"

// useJSON is the per-call option that serializes PutRecords with appendPutRecordsJSON.
func useJSON(o *kinesis.Options) {
	if _, ok := o.Protocol.(*jsonProtocol); ok || o.Protocol == nil {
		return
	}
	o.Protocol = &jsonProtocol{ClientProtocol: o.Protocol}
}

// jsonProtocol encodes PutRecords requests and hands everything else to the SDK.
type jsonProtocol struct {
	smithyhttp.ClientProtocol
}

// SerializeRequest implements smithyhttp.ClientProtocol.
func (j *jsonProtocol) SerializeRequest(ctx context.Context, schema *smithy.OperationSchema, in smithy.Serializable, req *smithyhttp.Request) error {
	pr, ok := in.(*kinesis.PutRecordsInput)
	if !ok {
		return j.ClientProtocol.SerializeRequest(ctx, schema, in, req)
	}
	return setPutRecordsBody(ctx, req, contentTypeJSON, appendPutRecordsJSON, pr)
}

// appendPutRecordsJSON appends the JSON 1.1 body of a PutRecords call.
func appendPutRecordsJSON(b []byte, in *kinesis.PutRecordsInput) []byte {
	size := 64
	for i := range in.Records {
		e := &in.Records[i]
		size += base64.StdEncoding.EncodedLen(len(e.Data)) + 64
		if e.PartitionKey != nil {
			size += 6 * len(*e.PartitionKey)
		}
		if e.ExplicitHashKey != nil {
			size += 6 * len(*e.ExplicitHashKey)
		}
	}
	if in.StreamName != nil {
		size += 6 * len(*in.StreamName)
	}
	if in.StreamARN != nil {
		size += 6 * len(*in.StreamARN)
	}
	if cap(b)-len(b) < size {
		nb := make([]byte, len(b), len(b)+size)
		copy(nb, b)
		b = nb
	}
	b = append(b, '{')
	if in.StreamName != nil {
		b = append(b, `"StreamName":`...)
		b = jsonwire.AppendString(b, *in.StreamName)
		b = append(b, ',')
	}
	if in.StreamARN != nil {
		b = append(b, `"StreamARN":`...)
		b = jsonwire.AppendString(b, *in.StreamARN)
		b = append(b, ',')
	}
	b = append(b, `"Records":[`...)
	for i := range in.Records {
		e := &in.Records[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"Data":"`...)
		b = base64.StdEncoding.AppendEncode(b, e.Data)
		b = append(b, '"')
		if e.PartitionKey != nil {
			b = append(b, `,"PartitionKey":`...)
			b = jsonwire.AppendString(b, *e.PartitionKey)
		}
		if e.ExplicitHashKey != nil {
			b = append(b, `,"ExplicitHashKey":`...)
			b = jsonwire.AppendString(b, *e.ExplicitHashKey)
		}
		b = append(b, '}')
	}
	return append(b, "]}"...)
}
