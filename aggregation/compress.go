package aggregation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
)

// CompressedMagic is the 4-byte prefix of a Freshet compressed frame: 0xF5,
// a byte that never occurs in UTF-8 text, then ASCII "FRZ". It differs from
// the KPL's Magic in its first byte.
var CompressedMagic = [4]byte{0xF5, 'F', 'R', 'Z'}

// Codec names the compression of a Freshet compressed frame. Its value is
// the codec byte of the frame.
type Codec uint8

const (
	// CodecNone disables compression: aggregates are plain KPL aggregates
	// that any KCL reads. The default.
	CodecNone Codec = 0
	// CodecZstd is Zstandard (RFC 8878), one frame.
	CodecZstd Codec = 1
	// CodecSnappy is the Snappy block format (not the framing format).
	CodecSnappy Codec = 2
	// CodecGzip is gzip (RFC 1952), one member.
	CodecGzip Codec = 3
)

// String returns the codec's name.
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecZstd:
		return "zstd"
	case CodecSnappy:
		return "snappy"
	case CodecGzip:
		return "gzip"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

const (
	// DefaultMinCompressSize is the aggregate size below which compression is
	// not attempted.
	DefaultMinCompressSize = 512
	// DefaultMaxDecompressedSize bounds a frame's decompressed size unless
	// WithMaxDecompressedSize says otherwise: the largest Kinesis record.
	DefaultMaxDecompressedSize = 10 << 20

	frameHeaderSize = len(CompressedMagic) + 1 + 4
)

var (
	// ErrFraming reports a compressed frame whose header or content is
	// inconsistent (truncated header, wrong decompressed length, content
	// that is not a KPL aggregate).
	ErrFraming = errors.New("aggregation: bad compressed frame")
	// ErrUnknownCodec reports a compressed frame with an unknown codec byte.
	ErrUnknownCodec = errors.New("aggregation: unknown compression codec")
	// ErrDecompressedTooLarge reports a compressed frame whose decompressed
	// size exceeds the configured maximum.
	ErrDecompressedTooLarge = errors.New("aggregation: decompressed size above limit")
	// ErrDecompress reports a compressed payload the codec rejects.
	ErrDecompress = errors.New("aggregation: decompression failed")
)

// WithCompression makes the aggregator emit Freshet compressed frames with
// the given codec instead of plain KPL aggregates, whenever the frame is
// smaller than what it replaces. Only Freshet reads these frames: the Java
// KCL and other KPL-compatible consumers see them as opaque plain records.
// CodecNone (the default) turns compression off.
func WithCompression(codec Codec) AggregatorOption {
	return func(c *aggregatorConfig) error {
		switch codec {
		case CodecNone, CodecZstd, CodecSnappy, CodecGzip:
		default:
			return fmt.Errorf("%w: unknown codec %v", ErrInvalidOption, codec)
		}
		c.codec = codec
		return nil
	}
}

// WithMinCompressSize sets the encoded aggregate size, in bytes, below which
// compression is not attempted (it rarely pays on small payloads). Default
// 512; 0 compresses everything.
func WithMinCompressSize(n int) AggregatorOption {
	return func(c *aggregatorConfig) error {
		if n < 0 || n > MaxMaxBytes {
			return fmt.Errorf("%w: min compress size %d not in [0, %d]", ErrInvalidOption, n, MaxMaxBytes)
		}
		c.minCompress = n
		return nil
	}
}

// compressor holds an aggregator's encoder state and scratch space.
type compressor struct {
	codec   Codec
	zstd    *zstd.Encoder
	gzip    *gzip.Writer
	scratch []byte
}

func newCompressor(codec Codec, _ int) (*compressor, error) {
	c := &compressor{codec: codec}
	switch codec {
	case CodecZstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithZeroFrames(true))
		if err != nil {
			return nil, fmt.Errorf("aggregation: zstd encoder: %w", err)
		}
		c.zstd = enc
	case CodecGzip:
		c.gzip = gzip.NewWriter(io.Discard)
	}
	return c, nil
}

// frame writes a's records as a compressed frame to dst[:0]. ok is false when
// the frame would not be smaller than the uncompressed form; dst is then
// returned (possibly grown) for reuse.
func (c *compressor) frame(dst []byte, a *Aggregator) (out []byte, ok bool) {
	c.scratch = a.encode(c.scratch[:0])
	inner := c.scratch
	plainLen := len(inner)
	if a.n == 1 {
		plainLen = a.firstEnd - a.firstData
	}
	out = appendFrame(dst[:0], c, inner)
	if len(out) >= plainLen {
		return out[:0], false
	}
	return out, true
}

func appendFrame(dst []byte, c *compressor, inner []byte) []byte {
	dst = append(dst, CompressedMagic[:]...)
	dst = append(dst, byte(c.codec))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(inner)))
	switch c.codec {
	case CodecZstd:
		dst = c.zstd.EncodeAll(inner, dst)
	case CodecSnappy:
		n := len(dst)
		need := snappy.MaxEncodedLen(len(inner))
		if cap(dst)-n < need {
			grown := make([]byte, n, n+need)
			copy(grown, dst)
			dst = grown
		}
		enc := snappy.Encode(dst[n:n+need], inner)
		dst = dst[:n+len(enc)]
	case CodecGzip:
		w := appendWriter{b: dst}
		c.gzip.Reset(&w)
		// Writes to appendWriter cannot fail.
		_, _ = c.gzip.Write(inner)
		_ = c.gzip.Close()
		dst = w.b
	}
	return dst
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// decompressor holds a deaggregator's decoder state.
type decompressor struct {
	zstd *zstd.Decoder
	gzip *gzip.Reader
	src  bytes.Reader
}

// decompress validates a compressed frame and returns its decompressed
// content in a new buffer (user records will alias it).
func (d *Deaggregator) decompress(frame []byte) ([]byte, error) {
	if len(frame) < frameHeaderSize {
		return nil, malformed(ErrFraming, "truncated header")
	}
	codec := Codec(frame[len(CompressedMagic)])
	size := binary.BigEndian.Uint32(frame[len(CompressedMagic)+1:])
	payload := frame[frameHeaderSize:]
	if uint64(size) > uint64(d.cfg.maxDecompressed) {
		return nil, malformed(ErrDecompressedTooLarge, fmt.Sprintf("frame declares %d bytes, limit %d", size, d.cfg.maxDecompressed))
	}
	if size < uint32(overhead) {
		return nil, malformed(ErrFraming, fmt.Sprintf("declared size %d is below a KPL aggregate's minimum", size))
	}
	if d.dec == nil {
		d.dec = &decompressor{}
	}
	switch codec {
	case CodecZstd:
		if d.dec.zstd == nil {
			dec, err := zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxMemory(uint64(d.cfg.maxDecompressed)),
				zstd.WithDecodeAllCapLimit(true))
			if err != nil {
				return nil, malformed(ErrDecompress, err.Error())
			}
			d.dec.zstd = dec
		}
		out, err := d.dec.zstd.DecodeAll(payload, make([]byte, 0, size))
		if err != nil {
			return nil, malformed(ErrDecompress, err.Error())
		}
		if len(out) != int(size) {
			return nil, malformed(ErrFraming, fmt.Sprintf("decompressed %d bytes, frame declares %d", len(out), size))
		}
		return out, nil
	case CodecSnappy:
		n, err := snappy.DecodedLen(payload)
		if err != nil {
			return nil, malformed(ErrDecompress, err.Error())
		}
		if n != int(size) {
			return nil, malformed(ErrFraming, fmt.Sprintf("snappy block holds %d bytes, frame declares %d", n, size))
		}
		out, err := snappy.Decode(make([]byte, size), payload)
		if err != nil {
			return nil, malformed(ErrDecompress, err.Error())
		}
		return out, nil
	case CodecGzip:
		d.dec.src.Reset(payload)
		var err error
		if d.dec.gzip == nil {
			d.dec.gzip, err = gzip.NewReader(&d.dec.src)
		} else {
			err = d.dec.gzip.Reset(&d.dec.src)
		}
		if err != nil {
			return nil, malformed(ErrDecompress, err.Error())
		}
		d.dec.gzip.Multistream(false)
		out := make([]byte, size)
		if _, err := io.ReadFull(d.dec.gzip, out); err != nil {
			return nil, malformed(ErrDecompress, err.Error())
		}
		var one [1]byte
		if n, err := d.dec.gzip.Read(one[:]); n != 0 || err != io.EOF {
			return nil, malformed(ErrFraming, "gzip payload longer than declared")
		}
		return out, nil
	}
	return nil, malformed(ErrUnknownCodec, codec.String())
}
