// Package integration holds Freshet's end-to-end tests: the Kinesis conformance table,
// chaos and third-party peer tests, and the engine-versus-peer speed comparison. It has no
// production code; everything here is in _test.go files except this doc.
//
// The tests drive the bundled engine (internal/engine) and third-party servers started by
// package peers (kinesalite, dynalite, kinesis-local, aws-kinesis-agg; `make peers`
// installs them) through the same aws-sdk-go-v2 clients that producer/, consumer/ and
// lease/ use, so a behaviour checked here holds for every Freshet package above the wire.
//
// # Kinesis conformance
//
// kinesis_test.go is one table of Kinesis behaviours (iterator types, split and merge
// lineage, ChildShards at shard end, partial failures and validation errors, pagination,
// UpdateShardCount, ON_DEMAND, stream ARN calls) run against three targets: the engine,
// kinesalite and kinesis-local. The engine must pass every case. Where a peer is known to
// differ from the service, the case lists that peer in its gaps and, for that peer, asserts
// that the peer indeed still differs, so a gap never hides an engine bug and a fixed peer
// shows up as a failure to update.
//
//	go test -race -run TestKinesisConformance ./integration/
//
// # Service-managed streams and queues
//
// queue_test.go drives every operation Kinesis added for AUTO record distribution,
// queues and their dead-letter records, dry runs and large records through a plain
// aws-sdk-go-v2 client (and one with the SDK's required-member checks removed, so that
// missing members reach the engine), asserting the service's error codes for bad input,
// and runs a worker with lanes and the hash key range filter over an AUTO stream with
// keyless records.
//
//	go test -race -run 'TestNewOperationsWithPlainSDK|TestConsumerLanesAndFilterOnAutoStream' ./integration/
//
// # Speed comparison
//
// engine_bench_test.go compares the engine with kinesalite, limits off, through one
// aws-sdk-go-v2 client: PutRecords of 500 x 100 B records, and GetRecords draining what
// was put. Each reports records/s. The target is the engine at 20 times
// kinesalite's records/s or more, for both.
//
//	go test -run '^$' -bench 'Benchmark(PutRecords|GetRecords)' -benchtime 3s ./integration/
package integration
