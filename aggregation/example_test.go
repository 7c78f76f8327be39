package aggregation_test

import (
	"errors"
	"fmt"

	"github.com/freshet/freshet/aggregation"
)

// A producer adds user records to a per-shard aggregator until it is full,
// then sends the drained record with PutRecords.
func ExampleAggregator() {
	agg, err := aggregation.NewAggregator(aggregation.WithMaxBytes(aggregation.DefaultMaxBytes))
	if err != nil {
		panic(err)
	}
	var buf []byte
	send := func() {
		rec, err := agg.Drain(buf)
		if err != nil {
			panic(err)
		}
		fmt.Printf("put: partition key %q, explicit hash key %s, %d bytes\n", rec.PartitionKey, rec.ExplicitHashKey, len(rec.Data))
		buf = rec.Data[:0] // reuse once PutRecords is done with it
	}
	for _, user := range []string{"alice", "bob", "carol"} {
		r := aggregation.Record{PartitionKey: user, Data: []byte("clicked " + user)}
		if err := agg.Add(r); errors.Is(err, aggregation.ErrFull) {
			send()
			err = agg.Add(r)
		}
		if err != nil {
			panic(err)
		}
	}
	send()
	// Output:
	// put: partition key "a", explicit hash key 132283552702735894323332391932430538300, 94 bytes
}

// A consumer turns each Kinesis record back into user records.
func ExampleDeaggregate() {
	agg, _ := aggregation.NewAggregator()
	_ = agg.Add(aggregation.Record{PartitionKey: "alice", Data: []byte("hello")})
	_ = agg.Add(aggregation.Record{PartitionKey: "bob", ExplicitHashKey: "42", Data: []byte("world")})
	rec, _ := agg.Drain(nil)

	users, err := aggregation.Deaggregate(rec)
	if err != nil {
		fmt.Println("malformed aggregate delivered whole:", err)
	}
	for _, u := range users {
		fmt.Printf("%d %s %q %s\n", u.SubSequenceNumber, u.PartitionKey, u.ExplicitHashKey, u.Data)
	}
	// Output:
	// 0 alice "" hello
	// 1 bob "42" world
}

// A malformed aggregate is delivered whole, as the KCL does, with an error
// that says why.
func ExampleDeaggregator_Append() {
	d, _ := aggregation.NewDeaggregator()
	corrupt := append(aggregation.Magic[:], make([]byte, 20)...)
	users, err := d.Append(nil, aggregation.Record{PartitionKey: "pk", Data: corrupt})
	fmt.Println(len(users), users[0].Aggregated, errors.Is(err, aggregation.ErrChecksum))
	// Output:
	// 1 false true
}

// A consumer de-aggregates a whole GetRecords batch at once; ends tells which
// user records came from which Kinesis record (for its sequence number).
func ExampleDeaggregator_AppendBatch() {
	agg, _ := aggregation.NewAggregator()
	_ = agg.Add(aggregation.Record{PartitionKey: "alice", Data: []byte("hello")})
	_ = agg.Add(aggregation.Record{PartitionKey: "bob", Data: []byte("world")})
	rec, _ := agg.Drain(nil)
	corrupt := append(aggregation.Magic[:], make([]byte, 20)...)
	batch := []aggregation.Record{
		rec,
		{PartitionKey: "carol", Data: []byte("plain")},
		{PartitionKey: "dave", Data: corrupt},
	}

	d, _ := aggregation.NewDeaggregator()
	users, ends, err := d.AppendBatch(nil, nil, batch)
	start := 0
	for i, end := range ends {
		for _, u := range users[start:end] {
			fmt.Printf("record %d: %d %s %v\n", i, u.SubSequenceNumber, u.PartitionKey, u.Aggregated)
		}
		start = end
	}
	var be *aggregation.BatchError
	if errors.As(err, &be) {
		for _, r := range be.Records {
			fmt.Println("malformed:", r.Index, errors.Is(r.Err, aggregation.ErrChecksum))
		}
	}
	// Output:
	// record 0: 0 alice true
	// record 0: 1 bob true
	// record 1: 0 carol false
	// record 2: 0 dave false
	// malformed: 2 true
}

// Compression is opt-in: only Freshet consumers read compressed frames.
func ExampleWithCompression() {
	agg, _ := aggregation.NewAggregator(aggregation.WithCompression(aggregation.CodecZstd))
	for i := 0; i < 100; i++ {
		_ = agg.Add(aggregation.Record{PartitionKey: fmt.Sprint("user-", i%10), Data: []byte(`{"event":"click","page":"/home"}`)})
	}
	size := agg.Size()
	rec, _ := agg.Drain(nil)
	users, _ := aggregation.Deaggregate(rec)
	fmt.Println(len(users), len(rec.Data) < size/4)
	// Output:
	// 100 true
}

// Hash keys decide shards: a record belongs to the shard whose range holds
// its explicit hash key, or else the MD5 of its partition key.
func ExamplePartitionKeyHash() {
	k := aggregation.PartitionKeyHash("alice")
	shard, _ := aggregation.ParseHashKeyRange("0", "170141183460469231731687303715884105727")
	fmt.Println(k, shard.Contains(k))
	// Output:
	// 132283552702735894323332391932430538300 true
}

// A producer that sends several aggregates per PutRecords call drains them
// unsealed as shards fill, then writes all their MD5 trailers at once.
func ExampleSealer() {
	shards := []*aggregation.Aggregator{}
	for range 3 {
		agg, err := aggregation.NewAggregator()
		if err != nil {
			panic(err)
		}
		shards = append(shards, agg)
	}
	for i := range 30 {
		r := aggregation.Record{PartitionKey: fmt.Sprint("user-", i), Data: []byte("clicked")}
		if err := shards[i%len(shards)].Add(r); err != nil {
			panic(err)
		}
	}

	var batch []aggregation.Record
	var unsealed [][]byte
	for _, agg := range shards {
		rec, sealed, err := agg.DrainUnsealed(nil)
		if err != nil {
			panic(err)
		}
		batch = append(batch, rec)
		if !sealed {
			unsealed = append(unsealed, rec.Data)
		}
	}
	var sealer aggregation.Sealer // keep it to reuse its scratch space
	if err := sealer.Seal(unsealed); err != nil {
		panic(err)
	}
	for _, rec := range batch {
		users, err := aggregation.Deaggregate(rec)
		fmt.Println(len(rec.Data), "bytes,", len(users), "user records, error:", err)
	}
	// Output:
	// 236 bytes, 10 user records, error: <nil>
	// 237 bytes, 10 user records, error: <nil>
	// 237 bytes, 10 user records, error: <nil>
}
