// Package kinesiswire is Freshet's one Kinesis wire layer: the bodies that the producer
// (PutRecords) and the consumer (GetRecords) encode and decode themselves instead of
// through the SDK's general serializers, in the Kinesis JSON 1.1 protocol and in CBOR 1.1
// (JSON 1.1 with CBOR bodies, blobs as raw bytes), and what both protocols share: how a
// request of either is set up, how an error response is decoded into the service's
// error code, and how an endpoint that does not take CBOR is told from an error of the
// call, so that callers switch to JSON instead of retrying in CBOR. The bundled engine
// writes its JSON strings with the same encoder.
//
// In the data flow it sits below producer/ and consumer/internal/fetch, inside the
// aws-sdk-go-v2 client: they install its codecs as the client's protocol for the one
// operation each, and every other operation stays with the SDK.
package kinesiswire
