package aggregation

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/freshet/freshet/internal/hashkey"
)

// Record is one Kinesis record as a producer puts it: a partition key, an
// optional explicit hash key and the data. It is both what an Aggregator takes
// in (a user record) and what it drains to (the outer Kinesis record).
type Record struct {
	// PartitionKey groups records; unless ExplicitHashKey is set, its MD5
	// decides the shard. Kinesis requires 1 to 256 Unicode characters.
	PartitionKey string
	// ExplicitHashKey, when not empty, is a decimal integer in [0, 2^128-1]
	// that decides the shard instead of the partition key's MD5.
	ExplicitHashKey string
	// Data is the record's payload; it may be empty.
	Data []byte
	// Tags are the record's KPL tags (Record.tags in the aggregated format), carried
	// only inside an aggregate: a record with tags always drains as a KPL aggregate,
	// even alone. The Java KCL and aws-kinesis-agg read such aggregates and ignore the
	// tags. Keys must not be empty; keys and values must be valid UTF-8.
	Tags []Tag
}

// Tag is one key and value of a user record's KPL tags. Freshet's tracing carries a W3C
// trace context in them ("traceparent", "tracestate"). An empty Value is not written.
type Tag struct {
	// Key names the tag; it must not be empty.
	Key string
	// Value is the tag's value, which may be empty.
	Value string
}

// TagsSize returns the bytes tags add to a user record inside an aggregate.
func TagsSize(tags []Tag) int {
	n := 0
	for _, t := range tags {
		n += bytesFieldSize(tagMessageSize(t))
	}
	return n
}

func tagMessageSize(t Tag) int {
	n := bytesFieldSize(len(t.Key))
	if t.Value != "" {
		n += bytesFieldSize(len(t.Value))
	}
	return n
}

// ValidateTags reports whether tags can be carried: it fails with an error wrapping
// ErrInvalidRecord for an empty key or a key or value that is not valid UTF-8 (protobuf
// strings).
func ValidateTags(tags []Tag) error {
	for i, t := range tags {
		if t.Key == "" {
			return fmt.Errorf("%w: tag %d has an empty key", ErrInvalidRecord, i)
		}
		if !utf8.ValidString(t.Key) || !utf8.ValidString(t.Value) {
			return fmt.Errorf("%w: tag %q is not valid UTF-8", ErrInvalidRecord, t.Key)
		}
	}
	return nil
}

// HashKey returns the record's effective hash key: its explicit hash key when
// set, otherwise the MD5 of its partition key. It fails with an error wrapping
// ErrHashKeySyntax when the explicit hash key is malformed.
func (r Record) HashKey() (HashKey, error) {
	if r.ExplicitHashKey != "" {
		return ParseHashKey(r.ExplicitHashKey)
	}
	return PartitionKeyHash(r.PartitionKey), nil
}

// UserRecord is one record recovered by de-aggregation.
type UserRecord struct {
	// PartitionKey is the user record's own partition key (for a plain
	// record, the Kinesis record's partition key).
	PartitionKey string
	// ExplicitHashKey is the user record's explicit hash key in decimal, or
	// empty when it had none.
	ExplicitHashKey string
	// Data is the user record's payload. It is a sub-slice of the input data
	// (or, for a compressed aggregate, of one buffer shared by the records of
	// that aggregate): do not modify it while any record of the batch is in use.
	// A record's tags lie in Data's spare capacity (TagsSize bytes), so append
	// to a copy of Data, never to Data itself.
	Data []byte
	// SubSequenceNumber is the record's index in its aggregate, 0..n-1. It is
	// 0 for a plain record. Records dropped by a hash-range filter keep their
	// numbers taken, so numbers may have gaps.
	SubSequenceNumber int64
	// Aggregated reports whether the record came out of an aggregate (KPL or
	// compressed); false for a plain record, including a malformed aggregate
	// returned whole.
	Aggregated bool
	// tagBytes is the size of the record's tags after Data (TagsOf). It fills
	// the padding after Aggregated: untagged records carry no tag field.
	tagBytes uint32
}

// Tags returns the user record's KPL tags, nil when it has none (always for a plain
// record). They are decoded from the aggregate on each call; see TagsOf.
func (u *UserRecord) Tags() []Tag { return TagsOf(u.Data, int(u.tagBytes)) }

// TagsSize returns the bytes the user record's tags take in its aggregate (as
// TagsSize(u.Tags()) counts them), 0 when it has none.
func (u *UserRecord) TagsSize() int { return int(u.tagBytes) }

// MaxPartitionKeyLength is the largest partition key Kinesis accepts, in
// Unicode characters.
const MaxPartitionKeyLength = 256

var (
	// ErrInvalidOption is wrapped by every error about a bad option value.
	ErrInvalidOption = errors.New("aggregation: invalid option")
	// ErrInvalidRecord is wrapped by every error about a user record that
	// Kinesis would reject (empty or too long partition key, malformed
	// explicit hash key).
	ErrInvalidRecord = errors.New("aggregation: invalid record")
	// ErrFull reports that adding a record would exceed the aggregator's
	// record-count or byte limit; drain the aggregator and add it again.
	ErrFull = errors.New("aggregation: aggregate full")
	// ErrEmpty reports a drain of an aggregator that holds no records.
	ErrEmpty = errors.New("aggregation: aggregate empty")
	// ErrMalformed is wrapped by every error about an input that carried an
	// aggregate's magic but could not be decoded.
	ErrMalformed = errors.New("aggregation: malformed aggregated record")
	// ErrChecksum reports an aggregate whose MD5 trailer does not match.
	ErrChecksum = errors.New("aggregation: MD5 checksum mismatch")
	// ErrProtobuf reports an aggregate whose protobuf body is invalid (bad
	// wire format, missing required field, table index out of range).
	ErrProtobuf = errors.New("aggregation: invalid protobuf")
	// ErrTooShort reports an aggregate shorter than its magic and trailer.
	ErrTooShort = errors.New("aggregation: record too short for an aggregate")
)

// MalformedError describes an input that looked like an aggregate (it began
// with a magic number) but could not be decoded. De-aggregation then returns
// the whole input as one plain record, as the Kinesis Client Library does,
// together with this error. It matches ErrMalformed and its Err with errors.Is.
type MalformedError struct {
	// Err is the specific cause: ErrChecksum, ErrProtobuf, ErrTooShort, or a
	// compression framing error (ErrFraming, ErrUnknownCodec,
	// ErrDecompressedTooLarge, ErrDecompress).
	Err error
	// Detail is a short human-readable explanation, possibly empty.
	Detail string
}

// Error implements error.
func (e *MalformedError) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("%v: %v: %s", ErrMalformed, e.Err, e.Detail)
	}
	return fmt.Sprintf("%v: %v", ErrMalformed, e.Err)
}

// Unwrap returns ErrMalformed and the specific cause.
func (e *MalformedError) Unwrap() []error { return []error{ErrMalformed, e.Err} }

func malformed(err error, detail string) *MalformedError {
	return &MalformedError{Err: err, Detail: detail}
}

// ValidateRecord reports whether Kinesis would accept r's keys: a partition key
// of 1 to 256 Unicode characters in valid UTF-8, and an explicit hash key that
// is empty or a canonical decimal integer in [0, 2^128-1]. Errors wrap
// ErrInvalidRecord.
func ValidateRecord(r Record) error {
	if err := validatePartitionKey(r.PartitionKey); err != nil {
		return err
	}
	if r.ExplicitHashKey != "" {
		if _, err := hashkey.Parse(r.ExplicitHashKey); err != nil {
			return fmt.Errorf("%w: explicit hash key %q: %w", ErrInvalidRecord, r.ExplicitHashKey, err)
		}
	}
	return nil
}

func validatePartitionKey(pk string) error {
	if pk == "" {
		return fmt.Errorf("%w: empty partition key", ErrInvalidRecord)
	}
	if len(pk) > MaxPartitionKeyLength {
		// A key longer than 256 bytes may still be at most 256 characters.
		if len(pk) > 4*MaxPartitionKeyLength || utf8.RuneCountInString(pk) > MaxPartitionKeyLength {
			return fmt.Errorf("%w: partition key longer than %d characters", ErrInvalidRecord, MaxPartitionKeyLength)
		}
	}
	if !utf8.ValidString(pk) {
		return fmt.Errorf("%w: partition key is not valid UTF-8", ErrInvalidRecord)
	}
	return nil
}
