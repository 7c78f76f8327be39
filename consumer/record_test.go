package consumer

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/freshet/freshet/aggregation"
	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/consumer/internal/fetch"
)

// tagProc keeps every delivered record's position and tags, and checkpoints after
// every batch.
type tagProc struct {
	mu   sync.Mutex
	tags map[string][]Tag
}

func (p *tagProc) Initialize(context.Context, InitializeInput) error { return nil }
func (p *tagProc) ProcessRecords(ctx context.Context, in ProcessRecordsInput) error {
	p.mu.Lock()
	for i := range in.Records {
		r := &in.Records[i]
		p.tags[r.SequenceNumber+"/"+strconv.FormatInt(r.SubSequenceNumber, 10)] = r.Tags()
	}
	p.mu.Unlock()
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *tagProc) LeaseLost(context.Context, LeaseLostInput) {}
func (p *tagProc) ShardEnded(ctx context.Context, in ShardEndedInput) error {
	return in.Checkpointer.Checkpoint(ctx)
}
func (p *tagProc) ShutdownRequested(context.Context, ShutdownRequestedInput) error { return nil }

// TestTaggedRecordsDelivered: a processor reads each user record's own tags from
// Record.Tags (none on untagged records beside them, none on plain records even when
// their data has spare capacity), also after a restart resumed inside the aggregate.
func TestTaggedRecordsDelivered(t *testing.T) {
	a, err := aggregation.NewAggregator()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]Tag{}
	for i := 0; i < 6; i++ {
		r := aggregation.Record{PartitionKey: "pk" + strconv.Itoa(i), Data: []byte("user record " + strconv.Itoa(i))}
		if i%2 == 0 {
			r.Tags = []Tag{{Key: "traceparent", Value: fmt.Sprintf("00-%032x-%016x-01", i+1, i+1)}, {Key: "n", Value: strconv.Itoa(i)}}
		}
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
		if i > 1 {
			want[sq(10)+"/"+strconv.Itoa(i)] = r.Tags
		}
	}
	out, err := a.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	plain := make([]byte, 3, 64)
	copy(plain, "abc")
	batches := []fetch.Batch{{Records: []types.Record{
		{SequenceNumber: aws.String(sq(10)), PartitionKey: aws.String(out.PartitionKey), Data: out.Data},
		{SequenceNumber: aws.String(sq(11)), PartitionKey: aws.String("k"), Data: plain},
	}, ShardEnd: true}}
	want[sq(11)+"/0"] = nil
	proc := &tagProc{tags: map[string][]Tag{}}
	// The checkpoint is inside the aggregate: records 0 and 1 were processed before.
	h := newHarnessFor(t, context.Background(), newMemStore("w1"), checkpoint.Value{SequenceNumber: sq(10), SubSequenceNumber: 1}, batches, proc)
	h.start()
	if r := h.wait(t); r != reasonShardEnd {
		t.Fatalf("stopped with %v", r)
	}
	if len(proc.tags) != len(want) {
		t.Fatalf("delivered %v, want %v", proc.tags, want)
	}
	for k, w := range want {
		if g, ok := proc.tags[k]; !ok || !slices.Equal(g, w) {
			t.Errorf("record %s: tags %+v, want %+v", k, g, w)
		}
	}
}

// TestNewRecord: NewRecord gives a de-aggregated user record's fields and tags, as a
// worker delivers it; replacing its Data drops the tags.
func TestNewRecord(t *testing.T) {
	a, _ := aggregation.NewAggregator()
	tags := []Tag{{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	if err := a.Add(aggregation.Record{PartitionKey: "pk", ExplicitHashKey: "7", Data: []byte("d"), Tags: tags}); err != nil {
		t.Fatal(err)
	}
	out, _ := a.Drain(nil)
	users, err := aggregation.Deaggregate(out)
	if err != nil || len(users) != 1 {
		t.Fatal(users, err)
	}
	at := time.Unix(1700000000, 0)
	r := NewRecord("4960", at, &users[0])
	if r.SequenceNumber != "4960" || r.SubSequenceNumber != 0 || r.PartitionKey != "pk" || r.ExplicitHashKey != "7" ||
		string(r.Data) != "d" || !r.ApproximateArrivalTimestamp.Equal(at) || !r.Aggregated || !slices.Equal(r.Tags(), tags) {
		t.Fatalf("NewRecord gave %+v with tags %+v", r, r.Tags())
	}
	r.Data = []byte("d")
	if r.Tags() != nil {
		t.Fatalf("replaced data still has tags %+v", r.Tags())
	}
	if (&Record{Data: make([]byte, 1, 100)}).Tags() != nil {
		t.Fatal("a record built by hand has tags")
	}
}
