package aggregation

import (
	"bytes"
	"errors"
	"slices"
	"testing"
)

var traceTags = []Tag{
	{Key: "traceparent", Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
	{Key: "tracestate", Value: "congo=t61rcWkgMzE"},
	{Key: "flag"},
}

// TestTagsRoundTrip: tags written by the Aggregator come back on the user records they
// belong to, untagged records next to them have none, and Size stays exact.
func TestTagsRoundTrip(t *testing.T) {
	for _, codec := range []Codec{CodecNone, CodecZstd} {
		a, err := NewAggregator(WithCompression(codec), WithMinCompressSize(0))
		if err != nil {
			t.Fatal(err)
		}
		in := []Record{
			{PartitionKey: "a", Data: []byte("one"), Tags: traceTags},
			{PartitionKey: "b", Data: []byte("two")},
			{PartitionKey: "a", ExplicitHashKey: "12345", Data: bytes.Repeat([]byte("x"), 300), Tags: traceTags[:1]},
		}
		for _, r := range in {
			want := a.SizeWith(r)
			if err := a.Add(r); err != nil {
				t.Fatal(err)
			}
			if a.Size() != want {
				t.Fatalf("Size %d, SizeWith %d", a.Size(), want)
			}
		}
		size := a.Size()
		out, err := a.Drain(nil)
		if err != nil {
			t.Fatal(err)
		}
		if codec == CodecNone && len(out.Data) != size {
			t.Fatalf("drained %d bytes, Size said %d", len(out.Data), size)
		}
		checkDecodes(t, out, in)
	}
}

// TestTaggedSingleRecordStaysAggregated: a plain Kinesis record has no place for tags,
// so a lone tagged record drains as a KPL aggregate of one, with its own keys.
func TestTaggedSingleRecordStaysAggregated(t *testing.T) {
	a, _ := NewAggregator()
	r := Record{PartitionKey: "pk", Data: []byte("data"), Tags: traceTags}
	if err := a.Add(r); err != nil {
		t.Fatal(err)
	}
	out, err := a.Drain(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out.Data, Magic[:]) || out.PartitionKey != "pk" || out.ExplicitHashKey != "" {
		t.Fatalf("drained %+v, want a KPL aggregate with the record's keys", out)
	}
	got, err := Deaggregate(out)
	if err != nil || len(got) != 1 || !got[0].Aggregated || !slices.Equal(got[0].Tags, traceTags) || string(got[0].Data) != "data" {
		t.Fatalf("got %+v, %v", got, err)
	}
	// The aggregator forgets the tags once drained: the next lone record is plain again.
	if err := a.Add(Record{PartitionKey: "pk", Data: []byte("plain")}); err != nil {
		t.Fatal(err)
	}
	if out, _ := a.Drain(nil); string(out.Data) != "plain" {
		t.Fatalf("untagged single record drained as %x", out.Data)
	}
}

func TestInvalidTags(t *testing.T) {
	a, _ := NewAggregator()
	for _, tags := range [][]Tag{{{Key: ""}}, {{Key: "k\xff"}}, {{Key: "k", Value: "\xff"}}} {
		if err := a.Add(Record{PartitionKey: "pk", Data: []byte("d"), Tags: tags}); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("tags %q: %v", tags, err)
		}
		if err := ValidateTags(tags); !errors.Is(err, ErrInvalidRecord) {
			t.Fatalf("ValidateTags %q: %v", tags, err)
		}
	}
	if a.Len() != 0 {
		t.Fatal("a rejected record was added")
	}
}

// TestTagsInAnyOrder: a Record message whose tags come before its data, as another
// encoder may write, decodes with its tags.
func TestTagsInAnyOrder(t *testing.T) {
	tag := []byte{tagTagKey, 1, 'k', tagTagValue, 1, 'v'}
	rec := []byte{tagTags, byte(len(tag))}
	rec = append(rec, tag...)
	rec = append(rec, tagPartitionKeyIndex, 0, tagData, 2, 'h', 'i')
	body := []byte{tagPartitionKeyTable, 1, 'p', tagRecords, byte(len(rec))}
	body = append(body, rec...)
	got, err := Deaggregate(Record{PartitionKey: "outer", Data: kpl(body...)})
	if err != nil || len(got) != 1 || string(got[0].Data) != "hi" || !slices.Equal(got[0].Tags, []Tag{{Key: "k", Value: "v"}}) {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// BenchmarkAggregateTagged is the cost of a trace context per user record: 100 B records
// each with a traceparent tag.
func BenchmarkAggregateTagged(b *testing.B) {
	a, _ := NewAggregator()
	data := bytes.Repeat([]byte("x"), 100)
	r := Record{PartitionKey: "partition-key-1", Data: data, Tags: traceTags[:1]}
	buf := make([]byte, 0, DefaultMaxBytes)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := a.Add(r); errors.Is(err, ErrFull) {
			buf, _ = func() ([]byte, error) { out, err := a.Drain(buf); return out.Data, err }()
			_ = a.Add(r)
		}
	}
}

// BenchmarkDeaggregateTagged decodes aggregates of 100 B records that each carry a
// traceparent tag (the tags are copied out as strings).
func BenchmarkDeaggregateTagged(b *testing.B) {
	a, _ := NewAggregator()
	data := bytes.Repeat([]byte("x"), 100)
	n := 0
	for a.Add(Record{PartitionKey: "partition-key-1", Data: data, Tags: traceTags[:1]}) == nil {
		n++
	}
	out, _ := a.Drain(nil)
	d, _ := NewDeaggregator()
	var dst []UserRecord
	b.SetBytes(int64(len(out.Data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		dst, _ = d.Append(dst[:0], out)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/record")
}
