package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// memStore is an in-memory Store: one lease per key with an owner, like the lease table.
type memStore struct {
	mu     sync.Mutex
	owner  map[string]string
	cp     map[string]Value
	pend   map[string]Value
	state  map[string][]byte
	writes int
}

func newMemStore() *memStore {
	return &memStore{owner: map[string]string{}, cp: map[string]Value{}, pend: map[string]Value{}, state: map[string][]byte{}}
}

func (m *memStore) WriteCheckpoint(_ context.Context, key, owner string, cp Value) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owner[key] != owner {
		return fmt.Errorf("lease %s owned by %q: %w", key, m.owner[key], ErrLeaseLost)
	}
	m.writes++
	m.cp[key] = cp
	delete(m.pend, key)
	delete(m.state, key)
	return nil
}

func (m *memStore) WritePendingCheckpoint(_ context.Context, key, owner string, cp Value, state []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.owner[key] != owner {
		return fmt.Errorf("lease %s owned by %q: %w", key, m.owner[key], ErrLeaseLost)
	}
	m.writes++
	m.pend[key] = cp
	m.state[key] = append([]byte(nil), state...)
	return nil
}

func mustAt(t *testing.T, seq string, sub int64) Value {
	t.Helper()
	v, err := At(seq, sub)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNewValidates(t *testing.T) {
	s := newMemStore()
	tests := []struct {
		name  string
		store Store
		key   string
		owner string
		cur   Value
		opts  []Option
	}{
		{"nil store", nil, "k", "w", TrimHorizon, nil},
		{"empty key", s, "", "w", TrimHorizon, nil},
		{"empty owner", s, "k", "", TrimHorizon, nil},
		{"bad current", s, "k", "w", Value{SequenceNumber: "x"}, nil},
		{"bad pending", s, "k", "w", TrimHorizon, []Option{WithPending(Value{SequenceNumber: "x"}, nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := New(tt.store, tt.key, tt.owner, tt.cur, tt.opts...); !errors.Is(err, ErrInvalidOption) {
				t.Fatalf("New err = %v, want ErrInvalidOption", err)
			}
		})
	}
}

func TestCheckpointValidation(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name      string
		stored    Value
		delivered Value
		ended     bool
		seq       string
		sub       int64
		want      error
	}{
		{"at delivered", TrimHorizon, Value{SequenceNumber: "100", SubSequenceNumber: 2}, false, "100", 2, nil},
		{"before delivered", TrimHorizon, Value{SequenceNumber: "100"}, false, "50", 0, nil},
		{"beyond delivered", TrimHorizon, Value{SequenceNumber: "100"}, false, "101", 0, ErrBeyondDelivered},
		{"beyond delivered sub", TrimHorizon, Value{SequenceNumber: "100", SubSequenceNumber: 1}, false, "100", 2, ErrBeyondDelivered},
		{"nothing delivered", TrimHorizon, Value{}, false, "1", 0, ErrBeyondDelivered},
		{"backwards", Value{SequenceNumber: "90"}, Value{SequenceNumber: "100"}, false, "89", 0, ErrBackwards},
		{"backwards sub", Value{SequenceNumber: "90", SubSequenceNumber: 4}, Value{SequenceNumber: "100"}, false, "90", 3, ErrBackwards},
		{"numeric not lexical", Value{SequenceNumber: "9"}, Value{SequenceNumber: "100"}, false, "10", 0, nil},
		{"shard end early", TrimHorizon, Value{SequenceNumber: "100"}, false, SentinelShardEnd, 0, ErrShardNotEnded},
		{"shard end", TrimHorizon, Value{SequenceNumber: "100"}, true, SentinelShardEnd, 0, nil},
		{"after shard end", ShardEnd, Value{SequenceNumber: "100"}, true, "100", 0, ErrBackwards},
		{"trim horizon refused", TrimHorizon, Value{SequenceNumber: "100"}, false, SentinelTrimHorizon, 0, ErrInvalidSequenceNumber},
		{"garbage", TrimHorizon, Value{SequenceNumber: "100"}, false, "1e5", 0, ErrInvalidSequenceNumber},
		{"negative sub", TrimHorizon, Value{SequenceNumber: "100"}, false, "100", -1, ErrInvalidSequenceNumber},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newMemStore()
			s.owner["shardId-0"] = "w1"
			c, err := New(s, "shardId-0", "w1", tt.stored)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.delivered.IsZero() {
				c.Delivered(tt.delivered)
			}
			if tt.ended {
				c.ShardEnded()
			}
			err = c.CheckpointAt(ctx, tt.seq, tt.sub)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("CheckpointAt(%s, %d) = %v, want %v", tt.seq, tt.sub, err, tt.want)
			}
			if err != nil {
				var ce *Error
				if !errors.As(err, &ce) || ce.LeaseKey != "shardId-0" {
					t.Fatalf("error %v is not a *Error for the lease", err)
				}
				if s.writes != 0 {
					t.Fatalf("refused checkpoint wrote %d times", s.writes)
				}
				return
			}
			want, _ := Parse(tt.seq, tt.sub)
			if got := s.cp["shardId-0"]; got.Compare(want) != 0 {
				t.Fatalf("stored %v, want %v", got, want)
			}
			if c.Stored().Compare(want) != 0 {
				t.Fatalf("Stored() = %v, want %v", c.Stored(), want)
			}
		})
	}
}

func TestCheckpointLeaseLostWritesNothing(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	s.owner["k"] = "w1"
	c, err := New(s, "k", "w1", TrimHorizon)
	if err != nil {
		t.Fatal(err)
	}
	c.Delivered(mustAt(t, "10", 0))
	if err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	s.owner["k"] = "w2"
	s.mu.Unlock()
	c.Delivered(mustAt(t, "20", 0))
	if err := c.Checkpoint(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Checkpoint after takeover = %v, want ErrLeaseLost", err)
	}
	// Ownership returns in the table, but this Checkpointer has learnt the lease is lost.
	s.mu.Lock()
	s.owner["k"] = "w1"
	writes := s.writes
	s.mu.Unlock()
	if err := c.CheckpointAt(ctx, "15", 0); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("CheckpointAt after loss = %v, want ErrLeaseLost", err)
	}
	if _, err := c.Prepare(ctx, []byte("x")); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Prepare after loss = %v, want ErrLeaseLost", err)
	}
	if s.writes != writes {
		t.Fatalf("writes after loss: %d, want %d", s.writes, writes)
	}
	if got := s.cp["k"]; got.Compare(mustAt(t, "10", 0)) != 0 {
		t.Fatalf("stored %v, want 10", got)
	}

	c2, _ := New(s, "k", "w1", TrimHorizon)
	c2.Delivered(mustAt(t, "5", 0))
	c2.LeaseLost()
	if err := c2.Checkpoint(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Checkpoint after LeaseLost() = %v", err)
	}
}

func TestCheckpointNoopAndShardEnd(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	s.owner["k"] = "w1"
	c, _ := New(s, "k", "w1", TrimHorizon)
	if err := c.Checkpoint(ctx); err != nil || s.writes != 0 {
		t.Fatalf("Checkpoint with nothing delivered: err=%v writes=%d", err, s.writes)
	}
	c.Delivered(mustAt(t, "7", 1))
	c.Delivered(mustAt(t, "6", 0)) // ignored: before the last delivered
	if err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Checkpoint(ctx); err != nil || s.writes != 1 {
		t.Fatalf("repeated checkpoint: err=%v writes=%d, want 1 write", err, s.writes)
	}
	if s.cp["k"].Compare(mustAt(t, "7", 1)) != 0 {
		t.Fatalf("stored %v", s.cp["k"])
	}
	c.ShardEnded()
	if err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.cp["k"].IsShardEnd() {
		t.Fatalf("stored %v, want SHARD_END", s.cp["k"])
	}
}

func TestPrepareCommit(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	s.owner["k"] = "w1"
	c, _ := New(s, "k", "w1", TrimHorizon, WithPending(Value{SequenceNumber: "3"}, []byte("old")))
	if p, st := c.Pending(); p.SequenceNumber != "3" || string(st) != "old" {
		t.Fatalf("Pending() = %v %q", p, st)
	}
	c.Delivered(mustAt(t, "40", 0))
	p, err := c.PrepareAt(ctx, "30", 0, []byte("app-state"))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.pend["k"]; got.SequenceNumber != "30" || string(s.state["k"]) != "app-state" {
		t.Fatalf("pending stored %v %q", got, s.state["k"])
	}
	if !s.cp["k"].IsZero() {
		t.Fatalf("prepare changed the checkpoint to %v", s.cp["k"])
	}
	if err := p.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if s.cp["k"].SequenceNumber != "30" || !s.pend["k"].IsZero() {
		t.Fatalf("after commit: checkpoint %v pending %v", s.cp["k"], s.pend["k"])
	}
	if err := p.Commit(ctx); !errors.Is(err, ErrNoPending) {
		t.Fatalf("second Commit = %v, want ErrNoPending", err)
	}
	// A prepare superseded by a plain checkpoint cannot be committed.
	p2, err := c.Prepare(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CheckpointAt(ctx, "35", 0); err != nil {
		t.Fatal(err)
	}
	if err := p2.Commit(ctx); !errors.Is(err, ErrNoPending) {
		t.Fatalf("superseded Commit = %v, want ErrNoPending", err)
	}
	if _, err := c.PrepareAt(ctx, "31", 0, nil); !errors.Is(err, ErrBackwards) {
		t.Fatalf("backwards PrepareAt = %v", err)
	}
}

// TestConcurrentCheckpointsNeverMoveBackwards has many goroutines checkpoint random
// delivered positions; the store must see a non-decreasing sequence.
func TestConcurrentCheckpointsNeverMoveBackwards(t *testing.T) {
	ctx := context.Background()
	rec := &recordingStore{memStore: newMemStore()}
	rec.owner["k"] = "w1"
	c, _ := New(rec, "k", "w1", TrimHorizon)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				seq := fmt.Sprint(i*8 + g + 1)
				c.Delivered(mustAt(t, seq, 0))
				err := c.CheckpointAt(ctx, seq, 0)
				if err != nil && !errors.Is(err, ErrBackwards) {
					t.Errorf("CheckpointAt(%s) = %v", seq, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	for i := 1; i < len(rec.seen); i++ {
		if rec.seen[i].Before(rec.seen[i-1]) {
			t.Fatalf("checkpoint moved backwards: %v after %v", rec.seen[i], rec.seen[i-1])
		}
	}
	if len(rec.seen) == 0 {
		t.Fatal("no checkpoint written")
	}
}

type recordingStore struct {
	*memStore
	seen []Value
}

func (r *recordingStore) WriteCheckpoint(ctx context.Context, key, owner string, cp Value) error {
	if err := r.memStore.WriteCheckpoint(ctx, key, owner, cp); err != nil {
		return err
	}
	r.mu.Lock()
	r.seen = append(r.seen, cp)
	r.mu.Unlock()
	return nil
}

func BenchmarkCheckpointAt(b *testing.B) {
	ctx := context.Background()
	s := newMemStore()
	s.owner["k"] = "w1"
	c, _ := New(s, "k", "w1", TrimHorizon)
	seqs := make([]string, 1024)
	for i := range seqs {
		seqs[i] = fmt.Sprintf("4959033827149025660855969253836157109592157598913658%04d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%len(seqs) == 0 {
			c, _ = New(s, "k", "w1", TrimHorizon)
		}
		seq := seqs[i%len(seqs)]
		c.Delivered(Value{SequenceNumber: seq})
		if err := c.CheckpointAt(ctx, seq, 0); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRedeliverMovesDeliveredBack hands part of a failed batch again: Checkpoint stores
// the end of that part, not the end of the batch, and never goes before the stored
// checkpoint.
func TestRedeliverMovesDeliveredBack(t *testing.T) {
	ctx := context.Background()
	s := newMemStore()
	s.owner["k"] = "w1"
	c, _ := New(s, "k", "w1", TrimHorizon)
	c.Delivered(mustAt(t, "20", 0))
	c.Redeliver(mustAt(t, "10", 2))
	if err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if got := s.cp["k"]; got.Compare(mustAt(t, "10", 2)) != 0 {
		t.Fatalf("stored %v, want 10/2", got)
	}
	c.Redeliver(mustAt(t, "5", 0))
	if got := c.LastDelivered(); got.Compare(mustAt(t, "10", 2)) != 0 {
		t.Fatalf("delivered %v after a redelivery before the checkpoint, want 10/2", got)
	}
	if err := c.CheckpointAt(ctx, "20", 0); !errors.Is(err, ErrBeyondDelivered) {
		t.Fatalf("CheckpointAt past the redelivered part = %v, want ErrBeyondDelivered", err)
	}
}

// TestObserverSeesEveryWrite: the observer hears each write the store got, with its
// value and outcome, and nothing for refused requests or no-ops.
func TestObserverSeesEveryWrite(t *testing.T) {
	s := newMemStore()
	s.owner["k"] = "w"
	c, err := New(s, "k", "w", TrimHorizon)
	if err != nil {
		t.Fatal(err)
	}
	var got []Written
	c.SetObserver(func(w Written) { got = append(got, w) })
	ctx := context.Background()
	v1 := mustAt(t, "49590338271490256608559692538361571095921575989136588898", 3)
	c.Delivered(v1)
	if err := c.Checkpoint(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Checkpoint(ctx); err != nil { // no-op: already stored
		t.Fatal(err)
	}
	if _, err := c.PrepareAt(ctx, "49590338271490256608559692538361571095921575989136588999", 0, nil); err == nil {
		t.Fatal("prepare beyond the delivered record accepted")
	}
	if _, err := c.Prepare(ctx, []byte("state")); err != nil {
		t.Fatal(err)
	}
	s.owner["k"] = "other"
	if err := c.Checkpoint(ctx); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("checkpoint after the lease moved: %v", err)
	}
	if len(got) != 3 || got[0] != (Written{LeaseKey: "k", Checkpoint: v1}) ||
		!got[1].Pending || got[1].Checkpoint != v1 || got[1].Err != nil ||
		got[2].Pending || !errors.Is(got[2].Err, ErrLeaseLost) {
		t.Fatalf("observed %+v", got)
	}
}
