package aggregation

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

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

	// maxMaxDecompressed is the largest WithMaxDecompressedSize accepts.
	maxMaxDecompressed = 256 << 20
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

// Compression levels for WithCompressionLevel.
const (
	// DefaultCompressionLevel leaves the codec at its default: zstd's
	// SpeedDefault (level 2), gzip's level 6.
	DefaultCompressionLevel = 0
	// ZstdSpeedFastest to ZstdSpeedBestCompression are the zstd levels, as
	// klauspost/compress/zstd names them; roughly zstd's 1, 3, 7 and 11.
	ZstdSpeedFastest         = 1
	ZstdSpeedDefault         = 2
	ZstdSpeedBetter          = 3
	ZstdSpeedBestCompression = 4
)

// WithCompressionLevel sets the compression level of the codec chosen with
// WithCompression: for CodecZstd one of ZstdSpeedFastest (1) to
// ZstdSpeedBestCompression (4), for CodecGzip 1 (fastest) to 9 (smallest).
// Snappy has no levels. DefaultCompressionLevel (0, the default) keeps the
// codec's default; without compression the level is ignored. A level the
// codec does not have makes NewAggregator fail with an error wrapping
// ErrInvalidOption. Readers need no setting: every level decodes the same
// way. Higher levels trade producer CPU for smaller records.
func WithCompressionLevel(level int) AggregatorOption {
	return func(c *aggregatorConfig) error {
		if level < 0 || level > 9 {
			return fmt.Errorf("%w: compression level %d not in [0, 9]", ErrInvalidOption, level)
		}
		c.level = level
		return nil
	}
}

// validLevel checks a compression level against the codec.
func validLevel(codec Codec, level int) error {
	if level == DefaultCompressionLevel {
		return nil
	}
	switch codec {
	case CodecZstd:
		if level <= ZstdSpeedBestCompression {
			return nil
		}
		return fmt.Errorf("%w: zstd compression level %d not in [%d, %d]", ErrInvalidOption, level, ZstdSpeedFastest, ZstdSpeedBestCompression)
	case CodecGzip:
		return nil
	}
	return fmt.Errorf("%w: codec %v has no compression level %d", ErrInvalidOption, codec, level)
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

// Encoders and decoders are shared by every aggregator and deaggregator in
// the process, created on first use (an encoder per level used): a zstd
// encoder or decoder holds megabytes of state, which one per shard would
// multiply. zstd's EncodeAll and DecodeAll are safe for concurrent use; gzip
// state is pooled per level.
var (
	sharedZstdEncoders [ZstdSpeedBestCompression + 1]func() (*zstd.Encoder, error)
	sharedZstdDecoder  = sync.OnceValues(func() (*zstd.Decoder, error) {
		return zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(runtime.GOMAXPROCS(0)),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(maxMaxDecompressed),
			zstd.WithDecodeAllCapLimit(true))
	})
	gzipWriters [gzip.BestCompression + 1]sync.Pool
	gzipReaders sync.Pool
	scratchPool = sync.Pool{New: func() any { return new([]byte) }}
)

func init() {
	for level := range sharedZstdEncoders {
		speed := zstd.SpeedDefault
		if level != DefaultCompressionLevel {
			speed = zstd.EncoderLevel(level)
		}
		sharedZstdEncoders[level] = sync.OnceValues(func() (*zstd.Encoder, error) {
			return zstd.NewWriter(nil, zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)),
				zstd.WithZeroFrames(true), zstd.WithEncoderLevel(speed))
		})
	}
	for level := range gzipWriters {
		gzLevel := level
		if level == DefaultCompressionLevel {
			gzLevel = gzip.DefaultCompression
		}
		gzipWriters[level].New = func() any {
			// The level is in range, so NewWriterLevel cannot fail.
			w, _ := gzip.NewWriterLevel(io.Discard, gzLevel)
			return w
		}
	}
}

// compressor is an aggregator's compression setting.
type compressor struct {
	codec Codec
	level int
}

func newCompressor(codec Codec, level int) (*compressor, error) {
	if err := validLevel(codec, level); err != nil {
		return nil, err
	}
	return &compressor{codec: codec, level: level}, nil
}

// frame writes a's records as a compressed frame to dst[:0]. ok is false when
// the frame would not be smaller than the uncompressed form; dst is then
// returned (possibly grown) for reuse.
func (c *compressor) frame(dst []byte, a *Aggregator) (out []byte, ok bool) {
	scratch := scratchPool.Get().(*[]byte)
	defer scratchPool.Put(scratch)
	*scratch = a.encode((*scratch)[:0], true)
	inner := *scratch
	plainLen := len(inner)
	if a.n == 1 {
		plainLen = a.firstEnd - a.firstData
	}
	out, err := appendFrame(dst[:0], c.codec, c.level, inner)
	if err != nil || len(out) >= plainLen {
		return out[:0], false
	}
	return out, true
}

func appendFrame(dst []byte, codec Codec, level int, inner []byte) ([]byte, error) {
	dst = append(dst, CompressedMagic[:]...)
	dst = append(dst, byte(codec))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(inner)))
	switch codec {
	case CodecZstd:
		enc, err := sharedZstdEncoders[level]()
		if err != nil {
			return dst, err
		}
		dst = enc.EncodeAll(inner, dst)
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
		gw := gzipWriters[level].Get().(*gzip.Writer)
		gw.Reset(&w)
		// Writes to appendWriter cannot fail.
		_, _ = gw.Write(inner)
		_ = gw.Close()
		gw.Reset(io.Discard)
		gzipWriters[level].Put(gw)
		dst = w.b
	}
	return dst, nil
}

type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
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
	switch codec {
	case CodecZstd:
		dec, err := sharedZstdDecoder()
		if err != nil {
			return nil, malformed(ErrDecompress, err.Error())
		}
		out, err := dec.DecodeAll(payload, make([]byte, 0, size))
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
		return gunzip(payload, int(size))
	}
	return nil, malformed(ErrUnknownCodec, codec.String())
}

// gunzip decompresses one gzip member that must hold exactly size bytes,
// reading at most size+1 of them.
func gunzip(payload []byte, size int) ([]byte, error) {
	src := bytes.NewReader(payload)
	var zr *gzip.Reader
	var err error
	if v := gzipReaders.Get(); v != nil {
		zr = v.(*gzip.Reader)
		err = zr.Reset(src)
	} else {
		zr, err = gzip.NewReader(src)
	}
	if err != nil {
		return nil, malformed(ErrDecompress, err.Error())
	}
	defer gzipReaders.Put(zr)
	zr.Multistream(false)
	out := make([]byte, size)
	if _, err := io.ReadFull(zr, out); err != nil {
		return nil, malformed(ErrDecompress, err.Error())
	}
	var one [1]byte
	if n, err := zr.Read(one[:]); n != 0 || err != io.EOF {
		return nil, malformed(ErrFraming, "gzip payload longer than declared")
	}
	return out, nil
}
