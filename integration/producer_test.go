package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/integration/peers"
	"github.com/freshet/freshet/internal/hashkey"
	"github.com/freshet/freshet/producer"
)

// TestProducerOnKinesalite runs the producer against kinesalite, a Kinesis written by
// others, over the JSON protocol and over CBOR (the producer's default), aggregated and
// plain, and reads every shard back, de-aggregating. Records written over JSON are read
// with the SDK. Kinesalite stores a blob that arrived in CBOR as a serialized Node
// Buffer ({"type":"Buffer","data":[...]}) and returns that object instead of base64 (the
// SDK rightly rejects it), so records written over CBOR are read with a signed JSON
// GetRecords that accepts both forms. Kinesalite also cuts CBOR responses off past
// 16 KiB (node-cbor encodeOne), so the CBOR cases keep PutRecords calls at 100 entries.
// Checks:
// every user record is stored exactly once, in the shard its hash key belongs to, with
// its own partition key and explicit hash key; with ordering on, records of one key are
// stored in Put order; each Result names the shard and sequence number that hold the
// record. This proves the CBOR codec and the aggregated wire format independently of
// the bundled engine. A record put to a deleted stream fails with the service's error
// code, decoded from the peer's error response.
func TestProducerOnKinesalite(t *testing.T) {
	kp := peers.Kinesalite(t)
	kin := kinesis.NewFromConfig(kp.AWSConfig())
	for i, tc := range []struct {
		name    string
		json    bool
		ordered bool
		plain   bool
	}{
		{"json-aggregated-ordered", true, true, false},
		{"cbor-aggregated-ordered", false, true, false},
		{"json-plain", true, false, true},
		{"cbor-plain-ordered", false, true, true},
		{"cbor-aggregated", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			stream := fmt.Sprintf("producer-%d", i)
			if _, err := kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(3)}); err != nil {
				t.Fatal(err)
			}
			waitStreamActive(ctx, t, kin, stream)
			opts := []producer.Option{producer.WithStream(stream), producer.WithLinger(10 * time.Millisecond),
				producer.WithOrdering(tc.ordered), producer.WithAggregation(!tc.plain)}
			if tc.json {
				opts = append(opts, producer.WithCBOR(false))
			} else {
				// Kinesalite's CBOR responses are cut off past 16 KiB: keep PutRecords
				// responses (about 110 bytes per entry) under that.
				opts = append(opts, producer.WithCollectionMaxCount(100))
			}
			p, err := producer.New(kin, opts...)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = p.Close(context.Background()) }()

			n, keys := 4000, 150
			if tc.plain {
				n = 1500 // one PutRecords entry per record: kinesalite is slow per entry
			}
			results := make([]producer.Result, n)
			var wg sync.WaitGroup
			for i := 0; i < n; i++ {
				rec := producer.Record{PartitionKey: fmt.Sprintf("pk-%d", i%keys), Data: kinesaliteRecordData(i)}
				if i%10 == 3 {
					// Some records are routed by an explicit hash key instead.
					rec.ExplicitHashKey = hashkey.FromPartitionKey(fmt.Sprintf("ehk-%d", i%keys)).String()
				}
				wg.Add(1)
				if err := p.Put(ctx, rec, func(r producer.Result) { results[i] = r; wg.Done() }); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			for i, r := range results {
				if r.Err != nil {
					t.Fatalf("record %d failed: %v", i, r.Err)
				}
			}

			stored := readKinesalite(ctx, t, kp, kin, stream, !tc.json)
			seen := make(map[int]int, n)
			last := map[string]int{}
			for _, s := range stored {
				var idx int
				if _, err := fmt.Sscanf(string(s.data), "user-record-%07d", &idx); err != nil || idx < 0 || idx >= n {
					t.Fatalf("unexpected data %q in shard %s", s.data, s.shardID)
				}
				seen[idx]++
				if want := fmt.Sprintf("pk-%d", idx%keys); s.pk != want {
					t.Fatalf("record %d has partition key %q, want %q", idx, s.pk, want)
				}
				wantEHK := ""
				hk := hashkey.FromPartitionKey(s.pk)
				if idx%10 == 3 {
					hk = hashkey.FromPartitionKey(fmt.Sprintf("ehk-%d", idx%keys))
					wantEHK = hk.String()
				}
				// GetRecords does not return a plain record's explicit hash key; an
				// aggregate carries each user record's.
				if s.aggregated && s.ehk != wantEHK {
					t.Fatalf("record %d has explicit hash key %q, want %q", idx, s.ehk, wantEHK)
				}
				if !s.rng.Contains(hk) {
					t.Fatalf("record %d stored in shard %s, whose range does not hold its hash key", idx, s.shardID)
				}
				r := results[idx]
				if r.ShardID != s.shardID || r.SequenceNumber != s.seq || r.SubSequenceNumber != s.sub {
					t.Fatalf("record %d: Result says %s/%s/%d, stored at %s/%s/%d", idx, r.ShardID, r.SequenceNumber, r.SubSequenceNumber, s.shardID, s.seq, s.sub)
				}
				// Per-key order: keys routed by partition key only, since a key's explicit
				// hash key records may live in another shard.
				if idx%10 != 3 {
					if prev, ok := last[s.pk]; ok && idx < prev && tc.ordered {
						t.Fatalf("key %s: record %d stored after record %d", s.pk, idx, prev)
					}
					last[s.pk] = idx
				}
			}
			for i := 0; i < n; i++ {
				if seen[i] != 1 {
					t.Fatalf("record %d stored %d times, want once", i, seen[i])
				}
			}
			t.Logf("%d user records in %d Kinesis records", n, countKinesisRecords(stored))

			// A stream deleted under the producer: PutRecords fails with the service's
			// code, which the CBOR codec must decode from the peer's error response.
			if _, err := kin.DeleteStream(ctx, &kinesis.DeleteStreamInput{StreamName: aws.String(stream)}); err != nil {
				t.Fatal(err)
			}
			waitStreamGone(ctx, t, kin, stream)
			res, err := p.PutSync(ctx, producer.Record{PartitionKey: "gone", Data: []byte("x")})
			var se *producer.ServiceError
			if !errors.As(err, &se) || se.Code != "ResourceNotFoundException" || producer.IsRetryable(err) {
				t.Fatalf("put to a deleted stream: %v (result %+v), want a non-retryable ResourceNotFoundException", err, res)
			}
		})
	}
}

// TestProducerCBORFallbackOnKinesalite: with its defaults (CBOR, 500-entry calls) the
// producer meets kinesalite's 16 KiB cut-off of CBOR responses on its first full call,
// switches to JSON and loses nothing; exactly the records of the cut-off call, whose
// first attempt shows the undecodable response, are stored twice.
func TestProducerCBORFallbackOnKinesalite(t *testing.T) {
	kp := peers.Kinesalite(t)
	kin := kinesis.NewFromConfig(kp.AWSConfig())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const stream = "producer-fallback"
	if _, err := kin.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(stream), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	waitStreamActive(ctx, t, kin, stream)
	// Unordered: an ordered call carries one record per partition key (97 here), too few
	// for a CBOR response to reach the cut-off.
	p, err := producer.New(kin, producer.WithStream(stream), producer.WithAggregation(false), producer.WithLinger(time.Hour), producer.WithMaxInFlight(1), producer.WithOrdering(false))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close(context.Background()) }()
	const n = 1200
	futures := make([]*producer.Future, n)
	for i := range futures {
		if futures[i], err = p.PutAsync(ctx, producer.Record{PartitionKey: fmt.Sprintf("pk-%d", i%97), Data: kinesaliteRecordData(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	count := map[int]int{}
	for _, s := range readKinesalite(ctx, t, kp, kin, stream, true) {
		var idx int
		if _, err := fmt.Sscanf(string(s.data), "user-record-%07d", &idx); err != nil {
			t.Fatalf("unexpected data %q", s.data)
		}
		count[idx]++
	}
	dups := 0
	for i, f := range futures {
		r := f.Result()
		if r.Err != nil {
			t.Fatalf("record %d failed: %v", i, r.Err)
		}
		failedCBOR := len(r.Attempts) == 2 && strings.Contains(r.Attempts[0].ErrorMessage, "decode PutRecords response")
		switch c := count[i]; {
		case c == 1 && len(r.Attempts) == 1:
		case c == 2 && failedCBOR:
			dups++
		default:
			t.Fatalf("record %d stored %d times after attempts %+v", i, c, r.Attempts)
		}
	}
	if dups == 0 || dups > producer.MaxPutRecordsCount {
		t.Fatalf("%d records stored twice, want those of the first call (1..%d)", dups, producer.MaxPutRecordsCount)
	}
	t.Logf("%d of %d records stored twice (the cut-off CBOR call's)", dups, n)
}

// storedUserRecord is one user record read back from a stream.
type storedUserRecord struct {
	shardID, seq string
	sub          int64
	pk, ehk      string
	data         []byte
	aggregated   bool
	rng          hashkey.Range // the storing shard's hash key range
}

func countKinesisRecords(recs []storedUserRecord) int {
	type key struct{ shard, seq string }
	seen := map[key]bool{}
	for _, r := range recs {
		seen[key{r.shardID, r.seq}] = true
	}
	return len(seen)
}

// readKinesalite reads every shard from TRIM_HORIZON with GetRecords (with the SDK, or
// raw when rawJSON is set) and de-aggregates.
func readKinesalite(ctx context.Context, t *testing.T, kp *peers.Peer, kin *kinesis.Client, stream string, rawJSON bool) []storedUserRecord {
	t.Helper()
	ls, err := kin.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	var out []storedUserRecord
	for _, sh := range ls.Shards {
		rng, err := hashkey.ParseRange(*sh.HashKeyRange.StartingHashKey, *sh.HashKeyRange.EndingHashKey)
		if err != nil {
			t.Fatal(err)
		}
		it, err := kin.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream), ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			var gr *kinesis.GetRecordsOutput
			if rawJSON {
				gr, err = getRecordsRaw(ctx, kp, *iter)
			} else {
				gr, err = kin.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range gr.Records {
				urs, err := aggregation.Deaggregate(aggregation.Record{PartitionKey: aws.ToString(r.PartitionKey), Data: r.Data})
				if err != nil {
					t.Fatal(err)
				}
				for _, u := range urs {
					out = append(out, storedUserRecord{shardID: *sh.ShardId, seq: aws.ToString(r.SequenceNumber), sub: u.SubSequenceNumber,
						pk: u.PartitionKey, ehk: u.ExplicitHashKey, data: append([]byte(nil), u.Data...), aggregated: u.Aggregated, rng: rng})
				}
			}
			if len(gr.Records) == 0 {
				break
			}
			iter = gr.NextShardIterator
		}
	}
	return out
}

func kinesaliteRecordData(i int) []byte {
	b := make([]byte, 100)
	copy(b, fmt.Sprintf("user-record-%07d:", i))
	for j := 19; j < len(b); j++ {
		b[j] = byte(i + j) // binary, including bytes that are not UTF-8
	}
	return b
}

func waitStreamActive(ctx context.Context, t *testing.T, kin *kinesis.Client, name string) {
	t.Helper()
	for {
		d, err := kin.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && d.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s not active: %v", name, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitStreamGone(ctx context.Context, t *testing.T, kin *kinesis.Client, name string) {
	t.Helper()
	for {
		_, err := kin.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		var nf *types.ResourceNotFoundException
		if errors.As(err, &nf) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("stream %s not deleted: %v", name, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// getRecordsRaw makes a signed JSON GetRecords call and accepts record data either as
// base64 text or as kinesalite's serialized Node Buffer.
func getRecordsRaw(ctx context.Context, kp *peers.Peer, iterator string) (*kinesis.GetRecordsOutput, error) {
	body, err := json.Marshal(map[string]any{"ShardIterator": iterator, "Limit": 10000})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, kp.URL+"/", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Amz-Target", "Kinesis_20131202.GetRecords")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	cfg := kp.AWSConfig()
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "kinesis", cfg.Region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GetRecords: status %d: %s", resp.StatusCode, raw)
	}
	var v struct {
		Records []struct {
			Data           json.RawMessage
			PartitionKey   string
			SequenceNumber string
		}
		NextShardIterator *string
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("GetRecords response: %w", err)
	}
	out := &kinesis.GetRecordsOutput{NextShardIterator: v.NextShardIterator}
	for _, r := range v.Records {
		var data []byte
		var text string
		var buf struct {
			Type string `json:"type"`
			Data []int  `json:"data"`
		}
		switch {
		case json.Unmarshal(r.Data, &text) == nil:
			if data, err = base64.StdEncoding.DecodeString(text); err != nil {
				return nil, err
			}
		case json.Unmarshal(r.Data, &buf) == nil && buf.Type == "Buffer":
			data = make([]byte, len(buf.Data))
			for i, b := range buf.Data {
				data[i] = byte(b)
			}
		default:
			return nil, fmt.Errorf("record data %.40s is neither base64 nor a Buffer", r.Data)
		}
		out.Records = append(out.Records, types.Record{Data: data, PartitionKey: aws.String(r.PartitionKey), SequenceNumber: aws.String(r.SequenceNumber)})
	}
	return out, nil
}
