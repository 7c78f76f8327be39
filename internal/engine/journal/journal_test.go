package journal

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
)

func TestAppendSyncReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.wal")
	l, err := Open(path, func(Entry) error { t.Fatal("replay of a new log"); return nil })
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{Kind: KindCall, Time: 1, Service: "Kinesis", Op: "PutRecords", Headers: []string{"Content-Type", "application/x-amz-json-1.1"}, Status: 200, Body: []byte(`{"a":1}`)},
		{Kind: KindMaintain, Time: 2, Body: []byte{}},
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e := Entry{Kind: KindCall, Time: int64(10 + i), Service: "DynamoDB", Op: "PutItem", Status: 400, Body: []byte{byte(i)}}
			if err := l.Sync(l.Append(e)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for _, e := range want {
		if err := l.Sync(l.Append(e)); err != nil {
			t.Fatal(err)
		}
	}
	if n, size := l.Stats(); n != 52 || size == 0 {
		t.Fatalf("stats %d entries %d bytes", n, size)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	var got []Entry
	l, err = Open(path, func(e Entry) error {
		e.Body = append([]byte{}, e.Body...)
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if len(got) != 52 || !reflect.DeepEqual(got[50:], want) {
		t.Fatalf("replayed %d entries, last two %+v", len(got), got[50:])
	}
	if l.Appended() != 52 {
		t.Fatalf("appended %d after reopen", l.Appended())
	}
}

func TestCorruptFrameEndsTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.wal")
	var b []byte
	b = AppendFrame(b, Entry{Kind: KindCall, Service: "Kinesis", Op: "A", Status: 200})
	good := len(b)
	b = AppendFrame(b, Entry{Kind: KindCall, Service: "Kinesis", Op: "B", Status: 200})
	b[len(b)-1] ^= 0xff // payload no longer matches its checksum
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	var ops []string
	l, err := Open(path, func(e Entry) error { ops = append(ops, e.Op); return nil })
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if fi, _ := os.Stat(path); len(ops) != 1 || ops[0] != "A" || fi.Size() != int64(good) {
		t.Fatalf("replayed %v, file %d bytes (want [A], %d)", ops, fi.Size(), good)
	}
}

// FuzzDecodePayload checks that the entry decoder never panics, and that whatever it
// accepts encodes back to the same payload.
func FuzzDecodePayload(f *testing.F) {
	for _, e := range []Entry{
		{Kind: KindCall, Time: 5, Service: "Kinesis", Op: "PutRecords", Headers: []string{"Content-Type", "application/x-amz-cbor-1.1"}, Status: 200, Body: []byte{0xa0}},
		{Kind: KindMaintain, Time: -1},
	} {
		frame := AppendFrame(nil, e)
		f.Add(frame[8:])
	}
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, p []byte) {
		e, err := DecodePayload(p)
		if err != nil {
			return
		}
		frame := AppendFrame(nil, e)
		if !bytes.Equal(frame[8:], p) && canonical(p) {
			t.Fatalf("payload %x decodes to %+v, which encodes to %x", p, e, frame[8:])
		}
		if binary.BigEndian.Uint32(frame[:4]) != uint32(len(frame)-8) {
			t.Fatal("frame length")
		}
	})
}

// canonical reports whether p's varints are minimal (only then must re-encoding match).
func canonical(p []byte) bool {
	e, err := DecodePayload(p)
	if err != nil {
		return false
	}
	return len(AppendFrame(nil, e))-8 == len(p)
}
