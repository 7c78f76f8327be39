// Package journal is the write-ahead log that lets the standalone engine keep its state
// (streams, shards, records, consumers, tables, items, metrics) across restarts and
// crashes.
//
// # Place in the data flow
//
// With engine.Config.DataDir set, the engine's router applies every call of an operation
// that can change state (everything but SubscribeToShard and the Describe*, List*,
// Get*, Query, Scan and BatchGetItem reads) one at a time, appends the call to the log
// as an Entry (the time the services saw, the service, the operation, the request
// body and the status it got), and sends the response only after the log is on disk:
// a call that was answered is never lost. Concurrent calls share fsyncs (group commit):
// each waits only until its own entry is durable, and one fsync covers every entry
// appended before it. At start the engine replays the log through the same services on
// a clock pinned to each entry's time, so the state, sequence numbers, ARNs and
// throttling decisions come out as they were, and each replayed call must get the
// status it got the first time.
//
// # Format
//
// The log is a sequence of frames: the payload's length (uint32, big-endian), its
// CRC-32C, and the payload. A frame cut short or failing its checksum ends the log: it
// can only be the tail of a write that was never acknowledged, and Open truncates it.
//
// # Adding state
//
// New operations persist with no code here: the services' operations are deterministic
// functions of their state, the request and the clock, so replaying the calls rebuilds
// any state they keep. A new operation needs a line in engine's read-only list only if
// it never changes state (to skip the log); state it keeps must come only from the
// request and the engine's clock (never time.Now or unseeded randomness).
package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sync"
)

// Entry kinds.
const (
	// KindCall is one call of an operation.
	KindCall byte = 1
	// KindMaintain is one run of the services' periodic work.
	KindMaintain byte = 2
)

// Entry is one logged event.
type Entry struct {
	// Kind is KindCall or KindMaintain.
	Kind byte
	// Time is the engine's clock, Unix nanoseconds, while the event ran.
	Time int64
	// Service and Op name the call ("Kinesis", "PutRecords"); empty for KindMaintain.
	Service, Op string
	// Headers holds the request headers the services read (name, value, name,
	// value...): Content-Type, Content-Encoding and Smithy-Protocol.
	Headers []string
	// Status is the HTTP status the call got.
	Status int
	// Body is the call's request body.
	Body []byte
}

// MaxEntryBytes bounds one entry's payload.
const MaxEntryBytes = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrCorrupt reports an entry whose frame is intact but whose payload cannot be read.
var ErrCorrupt = errors.New("journal: corrupt entry")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendFrame appends e's frame to b.
func AppendFrame(b []byte, e Entry) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, 0, 0, 0, 0)
	b = append(b, e.Kind)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time))
	b = appendString(b, e.Service)
	b = appendString(b, e.Op)
	b = binary.AppendUvarint(b, uint64(len(e.Headers)))
	for _, h := range e.Headers {
		b = appendString(b, h)
	}
	b = binary.AppendUvarint(b, uint64(e.Status))
	b = append(b, e.Body...)
	payload := b[start+8:]
	binary.BigEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

// DecodePayload reads one frame's payload (after its length and checksum were checked).
// The entry's Body aliases p.
func DecodePayload(p []byte) (Entry, error) {
	var e Entry
	if len(p) < 9 {
		return e, fmt.Errorf("%w: %d-byte payload", ErrCorrupt, len(p))
	}
	e.Kind = p[0]
	e.Time = int64(binary.BigEndian.Uint64(p[1:9]))
	p = p[9:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return "", false
		}
		s := string(p[k : k+int(n)])
		p = p[k+int(n):]
		return s, true
	}
	var ok1, ok2 bool
	e.Service, ok1 = str()
	e.Op, ok2 = str()
	if !ok1 || !ok2 {
		return Entry{}, fmt.Errorf("%w: bad string field", ErrCorrupt)
	}
	nh, k := binary.Uvarint(p)
	if k <= 0 || nh > 64 {
		return Entry{}, fmt.Errorf("%w: bad header count", ErrCorrupt)
	}
	p = p[k:]
	for range nh {
		h, ok := str()
		if !ok {
			return Entry{}, fmt.Errorf("%w: bad header", ErrCorrupt)
		}
		e.Headers = append(e.Headers, h)
	}
	st, k := binary.Uvarint(p)
	if k <= 0 || st > 999 {
		return Entry{}, fmt.Errorf("%w: bad status", ErrCorrupt)
	}
	e.Status = int(st)
	e.Body = p[k:]
	if e.Kind != KindCall && e.Kind != KindMaintain {
		return Entry{}, fmt.Errorf("%w: kind %d", ErrCorrupt, e.Kind)
	}
	return e, nil
}

// Log is an open journal file. It is safe for concurrent use.
type Log struct {
	f *os.File

	mu       sync.Mutex
	cond     *sync.Cond
	buf      []byte // frames appended and not yet written
	appended uint64 // entries appended
	durable  uint64 // entries written and fsynced
	syncing  bool
	err      error // sticky write or sync error
	size     int64 // bytes in the file, including buf once written
}

// Open opens (or creates) the log at path, calls replay for each intact entry in order,
// truncates a torn tail, and returns the log positioned for appending. A replay error
// stops Open and is returned.
func Open(path string, replay func(Entry) error) (*Log, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	good, n, err := readAll(f, replay)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := f.Truncate(good); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("journal: truncate torn tail: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("journal: %w", err)
	}
	l := &Log{f: f, size: good, appended: n, durable: n}
	l.cond = sync.NewCond(&l.mu)
	return l, nil
}

// readAll replays the intact entries and returns the offset after the last one and
// their number.
func readAll(f *os.File, replay func(Entry) error) (int64, uint64, error) {
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	var n uint64
	var head [8]byte
	var payload []byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return off, n, nil // EOF or a torn length
		}
		size := binary.BigEndian.Uint32(head[:4])
		if size > MaxEntryBytes {
			return off, n, nil
		}
		if cap(payload) < int(size) {
			payload = make([]byte, size)
		}
		payload = payload[:size]
		if _, err := io.ReadFull(r, payload); err != nil {
			return off, n, nil
		}
		if crc32.Checksum(payload, castagnoli) != binary.BigEndian.Uint32(head[4:]) {
			return off, n, nil
		}
		e, err := DecodePayload(payload)
		if err != nil {
			return off, n, fmt.Errorf("journal: entry %d at offset %d: %w", n, off, err)
		}
		if err := replay(e); err != nil {
			return off, n, fmt.Errorf("journal: replay entry %d (%s %s): %w", n, e.Service, e.Op, err)
		}
		off += 8 + int64(size)
		n++
	}
}

// Append adds e to the log and returns its position for Sync. It does not wait for the
// disk.
func (l *Log) Append(e Entry) uint64 {
	l.mu.Lock()
	l.buf = AppendFrame(l.buf, e)
	l.appended++
	pos := l.appended
	l.mu.Unlock()
	return pos
}

// Sync returns once the entry at pos (and every entry before it) is on disk, or the
// error that stopped the log. Concurrent callers share one write and fsync.
func (l *Log) Sync(pos uint64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.durable < pos && l.err == nil {
		if l.syncing {
			l.cond.Wait()
			continue
		}
		l.syncing = true
		buf, upto := l.buf, l.appended
		l.buf = nil
		l.mu.Unlock()
		_, err := l.f.Write(buf)
		if err == nil {
			err = l.f.Sync()
		}
		l.mu.Lock()
		l.syncing = false
		if err != nil {
			l.err = fmt.Errorf("journal: %w", err)
		} else {
			l.durable = upto
			l.size += int64(len(buf))
			if cap(buf) <= 1<<20 && l.buf == nil {
				l.buf = buf[:0]
			}
		}
		l.cond.Broadcast()
	}
	return l.err
}

// Appended returns the number of entries appended so far (the position of the last).
func (l *Log) Appended() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.appended
}

// Stats reports the entries and bytes on disk.
func (l *Log) Stats() (entries uint64, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable, l.size
}

// Close writes and fsyncs what was appended, then closes the file.
func (l *Log) Close() error {
	err := l.Sync(l.Appended())
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	return err
}
