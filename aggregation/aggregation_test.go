package aggregation

import (
	"bytes"
	"errors"
	"testing"
)

func mustAggregator(t testing.TB, opts ...AggregatorOption) *Aggregator {
	t.Helper()
	a, err := NewAggregator(opts...)
	if err != nil {
		t.Fatalf("NewAggregator: %v", err)
	}
	return a
}

func TestRoundTripBasic(t *testing.T) {
	in := []Record{
		{PartitionKey: "alpha", Data: []byte("one")},
		{PartitionKey: "beta", ExplicitHashKey: "12345", Data: []byte("two")},
		{PartitionKey: "alpha", Data: nil},
		{PartitionKey: "gamma", ExplicitHashKey: "12345", Data: []byte("four")},
	}
	a := mustAggregator(t)
	for i, r := range in {
		want := a.SizeWith(r)
		if err := a.Add(r); err != nil {
			t.Fatalf("Add %d: %v", i, err)
		}
		if a.Size() != want {
			t.Fatalf("after Add %d: Size %d, SizeWith said %d", i, a.Size(), want)
		}
	}
	size := a.Size()
	out, err := a.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Data) != size {
		t.Fatalf("drained %d bytes, Size said %d", len(out.Data), size)
	}
	if !bytes.HasPrefix(out.Data, Magic[:]) || out.PartitionKey != "a" {
		t.Fatalf("drained %q %x", out.PartitionKey, out.Data[:4])
	}
	if want := PartitionKeyHash("alpha").String(); out.ExplicitHashKey != want {
		t.Fatalf("outer explicit hash key %q, want %q", out.ExplicitHashKey, want)
	}
	got, err := Deaggregate(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(in) {
		t.Fatalf("got %d records, want %d", len(got), len(in))
	}
	for i, g := range got {
		w := in[i]
		if g.PartitionKey != w.PartitionKey || g.ExplicitHashKey != w.ExplicitHashKey || !bytes.Equal(g.Data, w.Data) || g.SubSequenceNumber != int64(i) || !g.Aggregated {
			t.Errorf("record %d: got %+v, want %+v", i, g, w)
		}
	}
	if a.Len() != 0 || a.Size() != 0 {
		t.Fatalf("aggregator not empty after Drain: %d records, %d bytes", a.Len(), a.Size())
	}
	if _, err := a.Drain(nil); !errors.Is(err, ErrEmpty) {
		t.Fatalf("Drain of empty: %v", err)
	}
}

func TestKnownBytes(t *testing.T) {
	a := mustAggregator(t)
	for _, r := range []Record{
		{PartitionKey: "k", Data: []byte{0xAA}},
		{PartitionKey: "k", ExplicitHashKey: "7", Data: nil},
	} {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	out, err := a.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte{
		0x0A, 0x01, 'k', // partition_key_table "k"
		0x12, 0x01, '7', // explicit_hash_key_table "7"
		0x1A, 0x05, 0x08, 0x00, 0x1A, 0x01, 0xAA, // record: pk 0, data AA
		0x1A, 0x06, 0x08, 0x00, 0x10, 0x00, 0x1A, 0x00, // record: pk 0, ehk 0, empty data
	}
	if got := out.Data[4 : len(out.Data)-16]; !bytes.Equal(got, body) {
		t.Fatalf("body\n got %x\nwant %x", got, body)
	}
}

func TestSingleRecordDrainsPlain(t *testing.T) {
	a := mustAggregator(t)
	r := Record{PartitionKey: "pk", ExplicitHashKey: "99", Data: []byte("payload")}
	if err := a.Add(r); err != nil {
		t.Fatal(err)
	}
	out, err := a.Drain(make([]byte, 0, 64))
	if err != nil {
		t.Fatal(err)
	}
	if out.PartitionKey != "pk" || out.ExplicitHashKey != "99" || string(out.Data) != "payload" {
		t.Fatalf("got %+v", out)
	}
}

func TestLimits(t *testing.T) {
	a := mustAggregator(t, WithMaxRecords(2))
	r := Record{PartitionKey: "p", Data: []byte("x")}
	for i := 0; i < 2; i++ {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Add(r); !errors.Is(err, ErrFull) {
		t.Fatalf("third Add: %v, want ErrFull", err)
	}
	if a.Len() != 2 {
		t.Fatalf("Len %d after refused Add", a.Len())
	}
	b := mustAggregator(t, WithMaxBytes(100))
	big := Record{PartitionKey: "p", Data: make([]byte, 500)}
	if err := b.Add(big); err != nil {
		t.Fatalf("empty aggregator refused a large record: %v", err)
	}
	if err := b.Add(r); !errors.Is(err, ErrFull) {
		t.Fatalf("Add after large: %v, want ErrFull", err)
	}
}
