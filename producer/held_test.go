package producer

import (
	"testing"

	"github.com/freshet/freshet/internal/hashkey"
)

// heldShard is an ordered plain shard with no producer running, for tests of its queue.
func heldShard() *shard {
	p := &Producer{cfg: config{ordered: true, aggregate: false}}
	return newShard(&stream{p: p}, "shardId-000000000000", hashkey.Range{End: hashkey.Max})
}

// take takes the next record an ordered plain shard sends in build gen, as takeOne
// does, or returns nil.
func take(sh *shard, gen uint64) *krec {
	k, from := sh.nextPlain(gen, 0)
	if k == nil {
		return nil
	}
	sh.remove(from)
	sh.keysOut.add(k.kh)
	return k
}

// TestOrderedPlainHoldsBusyKeys: an ordered plain shard sends the records behind a
// front record whose key is out instead of stopping there, holds the busy ones aside,
// sends a held record before any later one of its key once the key is back (even when
// the key comes back in the middle of a build), puts records to send again ahead of
// the held ones of their key, and stops holding at maxHeld.
func TestOrderedPlainHoldsBusyKeys(t *testing.T) {
	const a, b, c = 1, 2, 3
	sh := heldShard()
	rec := func(kh uint64, n int) *krec { return &krec{kh: kh, size: n, deadline: noDeadline} }
	a1, b1, a2, c1 := rec(a, 2), rec(b, 3), rec(a, 4), rec(c, 5)
	sh.keysOut.add(a) // a record of key a is in flight
	for _, k := range []*krec{a1, b1, a2, c1} {
		sh.pushBack(k)
	}
	if sh.waitsForCall() {
		t.Fatal("a shard with free keys behind a busy front waits for a call")
	}
	if got := take(sh, 1); got != b1 {
		t.Fatalf("first record taken: %v, want b1 past the busy a1", got)
	}
	if got := take(sh, 1); got != c1 {
		t.Fatalf("second record taken: %v, want c1 (a2 held behind a1)", got)
	}
	if sh.heldN != 2 || sh.waiting() != 2 || sh.qBytes != a1.size+a2.size {
		t.Fatalf("held %d, waiting %d, bytes %d; want a1 and a2 held (6 bytes)", sh.heldN, sh.waiting(), sh.qBytes)
	}
	if got := take(sh, 1); got != nil {
		t.Fatalf("took %v while key a is out", got)
	}
	// That record's call settles in the middle of the build; a3 arrives behind a2.
	sh.keysOut.remove(a)
	sh.rescanHeld()
	a3 := rec(a, 6)
	sh.pushBack(a3)
	if got := take(sh, 1); got != a1 {
		t.Fatalf("after key a came back took %v, want the oldest held a1", got)
	}
	if got := take(sh, 1); got != nil {
		t.Fatalf("took %v with a1 out", got)
	}
	// a1 is throttled: sent again ahead of a2 and a3.
	sh.keysOut.remove(a)
	sh.keysOut.remove(b)
	sh.keysOut.remove(c)
	sh.requeue([]*krec{a1})
	for i, want := range []*krec{a1, nil} {
		if got := take(sh, 2); got != want {
			t.Fatalf("build 2, record %d: %v, want %v", i, got, want)
		}
	}
	for _, want := range []*krec{a2, a3} {
		sh.keysOut.remove(a)
		sh.rescanHeld()
		if got := take(sh, 3); got != want {
			t.Fatalf("took %v, want %v", got, want)
		}
	}
	if sh.waiting() != 0 || sh.qBytes != 0 || len(sh.heldKeys) != 0 {
		t.Fatalf("waiting %d, %d bytes, %d held keys after everything was taken", sh.waiting(), sh.qBytes, len(sh.heldKeys))
	}

	// With maxHeld records held, a busy front stops the shard.
	for i := 0; i < maxHeld; i++ {
		sh.pushBack(rec(a, 1))
	}
	bn := rec(b, 1)
	sh.pushBack(bn)
	if got := take(sh, 4); got != bn {
		t.Fatalf("took %v, want the record behind %d busy ones", got, maxHeld)
	}
	sh.pushBack(rec(a, 1))
	sh.pushBack(rec(c, 1))
	if got := take(sh, 5); got != nil {
		t.Fatalf("took %v past a busy front with %d records held", got, sh.heldN)
	}
	sh.calls = 1
	if !sh.waitsForCall() {
		t.Fatal("a shard with maxHeld records held and a busy front does not wait for its call")
	}
	sh.calls = 0
	out := sh.retire()
	if len(out) != maxHeld+2 || sh.qBytes != 0 || sh.waiting() != 0 {
		t.Fatalf("retire returned %d records (want %d), left %d bytes", len(out), maxHeld+2, sh.qBytes)
	}
	for i, k := range out[:maxHeld+1] {
		if k.kh != a {
			t.Fatalf("retired record %d has key %d: held records come first, in order", i, k.kh)
		}
	}
}
