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
	if err != nil || len(got) != 1 || !got[0].Aggregated || !slices.Equal(got[0].Tags(), traceTags) || string(got[0].Data) != "data" {
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
	if err != nil || len(got) != 1 || string(got[0].Data) != "hi" || !slices.Equal(got[0].Tags(), []Tag{{Key: "k", Value: "v"}}) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if got[0].TagsSize() != 2+len(tag) || cap(got[0].Data) != 2+got[0].TagsSize() {
		t.Fatalf("TagsSize %d, data capacity %d", got[0].TagsSize(), cap(got[0].Data))
	}
}

// TestTagsAroundData: tags before and after the data, with an unknown field between
// them, all come back in order, and the record's data and tags do not share the input.
func TestTagsAroundData(t *testing.T) {
	tagField := func(k, v string) []byte {
		m := append([]byte{tagTagKey, byte(len(k))}, k...)
		if v != "" {
			m = append(append(m, tagTagValue, byte(len(v))), v...)
		}
		return append([]byte{tagTags, byte(len(m))}, m...)
	}
	rec := tagField("a", "1")
	rec = append(rec, tagPartitionKeyIndex, 0, tagData, 3, 'x', 'y', 'z')
	rec = append(rec, tagField("b", "")...)
	rec = append(rec, 7<<3|wireVarint, 5) // unknown field 7
	rec = append(rec, tagField("c", "3")...)
	body := append([]byte{tagPartitionKeyTable, 1, 'p', tagRecords, byte(len(rec))}, rec...)
	in := kpl(body...)
	got, err := Deaggregate(Record{PartitionKey: "outer", Data: in})
	want := []Tag{{Key: "a", Value: "1"}, {Key: "b"}, {Key: "c", Value: "3"}}
	if err != nil || len(got) != 1 || string(got[0].Data) != "xyz" || !slices.Equal(got[0].Tags(), want) {
		t.Fatalf("got %+v %v, %v", got, got[0].Tags(), err)
	}
	clear(in)
	if string(got[0].Data) != "xyz" || !slices.Equal(got[0].Tags(), want) {
		t.Fatalf("after the input was cleared: data %q tags %+v", got[0].Data, got[0].Tags())
	}
}

// TestTagsOfChangedData: a record whose Data was replaced, resliced or appended to
// reports no tags (never another record's bytes, never a panic), and TagsOf refuses
// sizes that do not match.
func TestTagsOfChangedData(t *testing.T) {
	a, _ := NewAggregator()
	for _, r := range []Record{{PartitionKey: "a", Data: []byte("one"), Tags: traceTags}, {PartitionKey: "b", Data: []byte("two")}} {
		if err := a.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	out, _ := a.Drain(nil)
	got, err := Deaggregate(out)
	if err != nil || len(got) != 2 || !slices.Equal(got[0].Tags(), traceTags) || got[1].Tags() != nil || got[1].TagsSize() != 0 {
		t.Fatalf("got %+v, %v", got, err)
	}
	size := got[0].TagsSize()
	if size != TagsSize(traceTags) {
		t.Fatalf("TagsSize %d, want %d", size, TagsSize(traceTags))
	}
	for name, data := range map[string][]byte{
		"replaced":         []byte("one"),
		"replaced, spare":  make([]byte, 3, 3+size),
		"resliced":         got[0].Data[:2],
		"appended to":      append(got[0].Data, '!'),
		"grown to its cap": got[0].Data[:cap(got[0].Data)],
	} {
		u := got[0]
		u.Data = data
		if tags := u.Tags(); tags != nil {
			t.Errorf("%s: tags %+v", name, tags)
		}
	}
	if TagsOf(got[0].Data, size-1) != nil || TagsOf(got[0].Data, 0) != nil || TagsOf(nil, size) != nil {
		t.Fatal("TagsOf accepted a wrong size")
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
// traceparent tag, leaving the tags in the aggregate (BenchmarkUserRecordTags reads them).
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

// BenchmarkUserRecordTags reads one de-aggregated record's traceparent tag.
func BenchmarkUserRecordTags(b *testing.B) {
	a, _ := NewAggregator()
	_ = a.Add(Record{PartitionKey: "partition-key-1", Data: []byte("x"), Tags: traceTags[:1]})
	out, _ := a.Drain(nil)
	got, err := Deaggregate(out)
	if err != nil || len(got) != 1 {
		b.Fatal(got, err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if tags := got[0].Tags(); len(tags) != 1 {
			b.Fatal(tags)
		}
	}
}
