// Package freshettest runs Freshet's bundled engine (Amazon Kinesis Data Streams,
// DynamoDB and CloudWatch on a loopback port, speaking the real wire protocols) inside
// your own tests, as franz-go's kfake does for Kafka.
//
// # Place in the data flow
//
// Code under test talks to the engine through ordinary aws-sdk-go-v2 clients
// (Engine.Kinesis, Engine.DynamoDB, Engine.CloudWatch, or clients built from
// Engine.AWSConfig): a Freshet producer or consumer, a Java-style KCL application's
// lease tables, or any code of yours that calls Kinesis. The test itself steers the
// engine from the side, through the methods of Engine, without the wire and without
// the faults it injects: it creates streams and waits for them, reshards them, injects
// faults per operation, and reads back exactly what was stored (records, shards, table
// items) and which CloudWatch metrics were published.
//
//	func TestMyHandler(t *testing.T) {
//		e := freshettest.Start(t)                // port 0, closed by t.Cleanup
//		if err := e.CreateStream(ctx, freshettest.Stream{Name: "orders", Shards: 4}); err != nil {
//			t.Fatal(err)
//		}
//		e.InjectFault("Kinesis.PutRecords", freshettest.Fault{ErrorRate: 0.2, ErrorCode: "ProvisionedThroughputExceededException"})
//		runMyService(e.Kinesis(), e.DynamoDB())
//		records, _ := e.Records("orders")
//		...
//	}
//
// # Fidelity
//
// Streams have shards with hash-key ranges, 56-digit sequence numbers, iterators of
// every type, child shards at shard end, enhanced fan-out (RegisterStreamConsumer and
// SubscribeToShard), ON_DEMAND scaling and, with WithLimits, the service's per-shard
// throughput limits and ProvisionedThroughputExceededException. Requests are validated
// with the service's error types and messages. Tables implement the DynamoDB operations
// and expression features the KCL lease tables use, with conditional-write semantics.
// Credentials and signatures are accepted whatever they are.
package freshettest
