package streams

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

var fuzzOps = []string{"PutRecords", "PutRecord", "GetRecords", "GetShardIterator", "CreateStream", "ListShards",
	"DescribeStream", "SplitShard", "MergeShards", "UpdateShardCount", "ListStreams", "AddTagsToStream",
	"RegisterStreamConsumer", "SubscribeToShard", "UpdateStreamMode", "IncreaseStreamRetentionPeriod"}

// FuzzServeOperation feeds arbitrary bodies, as JSON or CBOR, to every decoder. A panic
// would surface as a 500 InternalFailure, which no input may cause.
func FuzzServeOperation(f *testing.F) {
	f.Add(uint8(0), []byte(`{"StreamName":"s","Records":[{"Data":"eA==","PartitionKey":"k"}]}`), false)
	f.Add(uint8(1), []byte(`{"StreamName":"s","Data":"eA==","PartitionKey":"k","ExplicitHashKey":"5"}`), false)
	f.Add(uint8(2), []byte(`{"ShardIterator":"AAAA","Limit":5}`), false)
	f.Add(uint8(3), []byte(`{"StreamName":"s","ShardId":"shardId-000000000000","ShardIteratorType":"AT_TIMESTAMP","Timestamp":1.5e9}`), false)
	f.Add(uint8(5), []byte(`{"StreamName":"s","ShardFilter":{"Type":"AT_TIMESTAMP","Timestamp":"2020-01-01T00:00:00Z"}}`), false)
	f.Add(uint8(7), []byte(`{"StreamName":"s","ShardToSplit":"shardId-000000000000","NewStartingHashKey":"100"}`), false)
	f.Add(uint8(0), []byte{0xa2, 0x6a, 'S', 't', 'r', 'e', 'a', 'm', 'N', 'a', 'm', 'e', 0x61, 's', 0x67, 'R', 'e', 'c', 'o', 'r', 'd', 's', 0x80}, true)
	f.Fuzz(func(t *testing.T, op uint8, body []byte, isCBOR bool) {
		s, err := New(Config{MaintenanceInterval: -1, SubscriptionDuration: 1, SubscribeHeartbeat: 1}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.CreateStream("s", 2); err != nil {
			t.Fatal(err)
		}
		name := fuzzOps[int(op)%len(fuzzOps)]
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if isCBOR {
			r.Header.Set("Content-Type", contentCBOR)
		} else {
			r.Header.Set("Content-Type", contentJSON)
		}
		w := httptest.NewRecorder()
		s.ServeOperation(w, r, name)
		if w.Code >= 500 {
			t.Fatalf("%s: status %d body %s", name, w.Code, w.Body.Bytes())
		}
	})
}

// FuzzLexer checks that the hand-written JSON reader accepts all valid JSON, never
// panics, and always terminates.
func FuzzLexer(f *testing.F) {
	f.Add([]byte(`{"a":[1,2,{"b":"c\u00e9\ud83d\ude00"}],"d":null,"e":true,"f":-1.5e3}`))
	f.Add([]byte(`[[[[[]]]]]`))
	f.Add([]byte(`"\"`))
	f.Fuzz(func(t *testing.T, b []byte) {
		l := lexer{b: b}
		l.skip()
		l.end()
		if json.Valid(b) && l.err != nil && bytes.Count(b, []byte("["))+bytes.Count(b, []byte("{")) < maxDepth {
			t.Fatalf("valid JSON rejected: %q", b)
		}
		var got []byte
		l = lexer{b: b}
		if l.peek() == '"' {
			got = l.str()
			var want string
			if json.Unmarshal(b, &want) == nil && l.err == nil && bytes.IndexFunc([]byte(want), func(r rune) bool { return r == 0xfffd }) < 0 && string(got) != want {
				t.Fatalf("string %q decoded as %q, want %q", b, got, want)
			}
		}
	})
}

// FuzzIterator checks that arbitrary iterator strings never panic the parser and that
// encoded iterators round-trip.
func FuzzIterator(f *testing.F) {
	f.Add([]byte("AQAAAA=="), int64(5), uint64(7), 3, "stream")
	f.Fuzz(func(t *testing.T, raw []byte, ms int64, pos uint64, shard int, name string) {
		if it, ok := parseIterator(raw); ok && it.stream == "" {
			t.Fatalf("iterator %q accepted without a stream", raw)
		}
		if shard < 0 || len(name) > 128 || name == "" {
			return
		}
		it := iterator{issuedMs: ms, epoch: ms * 3, pos: pos, shardNum: shard & 0x7fffffff, stream: name}
		got, ok := parseIterator(appendIterator(nil, it))
		if !ok || got != it {
			t.Fatalf("round trip %+v -> %+v %v", it, got, ok)
		}
	})
}

// FuzzSequenceNumber checks parseSeq against appendSeq.
func FuzzSequenceNumber(f *testing.F) {
	f.Add(uint64(1), 0, "49000000000000000000010000000000000000000000000000000000")
	f.Fuzz(func(t *testing.T, counter uint64, shard int, s string) {
		if c, n, ok := parseSeq(s); ok && formatSeq(c, n) != s {
			t.Fatalf("%q parsed as %d/%d but formats as %q", s, c, n, formatSeq(c, n))
		}
		counter %= 1e19
		if shard < 0 {
			shard = -shard
		}
		shard %= 1e9
		c, n, ok := parseSeq(formatSeq(counter, shard))
		if !ok || c != counter || n != shard {
			t.Fatalf("round trip %d/%d -> %d/%d %v", counter, shard, c, n, ok)
		}
	})
}

var fuzzQueueOps = []string{"CreateQueue", "UpdateQueue", "DeleteQueue", "DescribeQueue", "ListQueues",
	"ReceiveQueueRecords", "ReceiveDeadLetterQueueRecords", "AcknowledgeQueueRecords", "AcknowledgeDeadLetterQueueRecords",
	"UpdateQueueRecordsVisibility", "UpdateDeadLetterQueueRecordsVisibility", "RestoreDeadLetterQueueRecords",
	"UpdateStreamRecordDistributionStrategy"}

// FuzzQueueOperations feeds arbitrary bodies to the queue and distribution decoders,
// against a stream with records and a queue. No input may cause a 500.
func FuzzQueueOperations(f *testing.F) {
	arn := "arn:aws:kinesis:us-east-1:000000000000:queue/q-1-0"
	f.Add(uint8(0), []byte(`{"QueueName":"n","StreamConfigurationList":[{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","StartingPosition":{"Type":"AT_TIMESTAMP","Timestamp":1}}],"QueueAttributes":{"VisibilityTimeoutSeconds":5,"DeadLetterConfiguration":{"TargetType":"BUILT_IN","MaxReceiveCount":2}}}`), false)
	f.Add(uint8(5), []byte(`{"QueueARN":"`+arn+`","Limit":3,"WaitTimeSeconds":0,"VisibilityTimeoutSeconds":0}`), false)
	f.Add(uint8(7), []byte(`{"QueueARN":"`+arn+`","Entries":[{"ReceiptHandle":"AQAAAAAAAAABAAAAAAAAAAEAAAAAAAAAAQAAAAA"}]}`), false)
	f.Add(uint8(9), []byte(`{"QueueARN":"`+arn+`","Entries":[{"ReceiptHandle":"x","VisibilityTimeoutSeconds":1}]}`), false)
	f.Add(uint8(4), []byte(`{"MaxResults":1,"StreamFilter":[{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s"}]}`), false)
	f.Add(uint8(12), []byte(`{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s","RecordDistributionStrategy":"AUTO"}`), false)
	f.Fuzz(func(t *testing.T, op uint8, body []byte, isCBOR bool) {
		s, err := New(Config{MaintenanceInterval: -1}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.CreateOnDemandStream("s", 0); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		for i, name := range []string{"CreateQueue", fuzzQueueOps[int(op)%len(fuzzQueueOps)]} {
			b := body
			ct := contentJSON
			if i == 0 {
				b = []byte(`{"QueueName":"q","StreamConfigurationList":[{"StreamARN":"arn:aws:kinesis:us-east-1:000000000000:stream/s"}]}`)
			} else if isCBOR {
				ct = contentCBOR
			}
			r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(b)).WithContext(ctx)
			r.Header.Set("Content-Type", ct)
			w := httptest.NewRecorder()
			s.ServeOperation(w, r, name)
			if w.Code >= 500 {
				t.Fatalf("%s: status %d body %s", name, w.Code, w.Body.Bytes())
			}
		}
	})
}

// FuzzReceiptHandle checks that arbitrary receipt handles never panic the parser and
// that encoded handles round-trip.
func FuzzReceiptHandle(f *testing.F) {
	f.Add("AQAAAAAAAAABAAAAAAAAAAEAAAAAAAAAAQAAAAA", uint64(1), uint64(2), uint64(3))
	f.Fuzz(func(t *testing.T, h string, q, seq, delivery uint64) {
		if gq, gs, gd, ok := parseReceipt(h); ok && string(appendReceipt(nil, gq, gs, gd)) != h {
			t.Fatalf("%q parsed but does not re-encode", h)
		}
		gq, gs, gd, ok := parseReceipt(string(appendReceipt(nil, q, seq, delivery)))
		if !ok || gq != q || gs != seq || gd != delivery {
			t.Fatalf("round trip %d/%d/%d -> %d/%d/%d %v", q, seq, delivery, gq, gs, gd, ok)
		}
	})
}
