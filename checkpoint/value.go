package checkpoint

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Sentinel checkpoint strings, stored in the lease table's checkpoint attribute in place of
// a sequence number (the names Java KCL writes).
const (
	// SentinelTrimHorizon starts processing at the oldest record the shard retains.
	SentinelTrimHorizon = "TRIM_HORIZON"
	// SentinelLatest starts processing just after the newest record of the shard.
	SentinelLatest = "LATEST"
	// SentinelAtTimestamp starts processing at the first record at or after a timestamp.
	SentinelAtTimestamp = "AT_TIMESTAMP"
	// SentinelShardEnd marks a closed shard that has been processed to its end.
	SentinelShardEnd = "SHARD_END"
)

// MaxSequenceNumberDigits is the longest decimal sequence number accepted: the Kinesis API
// defines sequence numbers by the pattern 0|([1-9]\d{0,128}), so up to 129 digits. Real
// ones have 56 digits (about 185 bits), more than a 64- or 128-bit integer holds, which is
// why they are kept as strings and compared by length, then digit by digit.
const MaxSequenceNumberDigits = 129

// ErrInvalidSequenceNumber reports a sequence number that is neither a sentinel nor an
// unsigned decimal integer of at most MaxSequenceNumberDigits digits.
var ErrInvalidSequenceNumber = errors.New("checkpoint: invalid sequence number")

// Value is a position in a shard: a sequence number (or a sentinel) and a sub-sequence
// number, the index of a user record inside a KPL-aggregated record. The zero Value is
// "no checkpoint"; IsZero reports it.
type Value struct {
	// SequenceNumber is a decimal sequence number without leading zeros or one of the
	// Sentinel* strings.
	SequenceNumber string
	// SubSequenceNumber is the index of the user record inside its aggregated Kinesis
	// record; 0 for records that were not aggregated and for sentinels.
	SubSequenceNumber int64
	// Timestamp is the starting time of an AT_TIMESTAMP checkpoint, zero otherwise.
	Timestamp time.Time
}

// Predefined sentinel values.
var (
	// TrimHorizon starts at the oldest retained record.
	TrimHorizon = Value{SequenceNumber: SentinelTrimHorizon}
	// Latest starts after the newest record.
	Latest = Value{SequenceNumber: SentinelLatest}
	// ShardEnd marks a shard processed to its end.
	ShardEnd = Value{SequenceNumber: SentinelShardEnd}
)

// AtTimestamp returns an AT_TIMESTAMP checkpoint starting at t.
func AtTimestamp(t time.Time) Value {
	return Value{SequenceNumber: SentinelAtTimestamp, Timestamp: t}
}

// At returns the checkpoint at sequence number seq and sub-sequence number sub, after
// validating both. Leading zeros of seq are removed.
func At(seq string, sub int64) (Value, error) {
	norm, err := ParseSequenceNumber(seq)
	if err != nil {
		return Value{}, err
	}
	if sub < 0 {
		return Value{}, fmt.Errorf("%w: negative sub-sequence number %d", ErrInvalidSequenceNumber, sub)
	}
	return Value{SequenceNumber: norm, SubSequenceNumber: sub}, nil
}

// Parse reads a checkpoint as stored in a lease table: a sentinel or a sequence number, and
// a sub-sequence number. Sentinels keep their sub-sequence number only if it is zero.
func Parse(seq string, sub int64) (Value, error) {
	if IsSentinel(seq) {
		if sub != 0 {
			return Value{}, fmt.Errorf("%w: sentinel %s with sub-sequence number %d", ErrInvalidSequenceNumber, seq, sub)
		}
		return Value{SequenceNumber: seq}, nil
	}
	return At(seq, sub)
}

// ParseSequenceNumber validates a decimal sequence number of at most
// MaxSequenceNumberDigits significant digits and returns it without leading zeros.
func ParseSequenceNumber(seq string) (string, error) {
	if seq == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidSequenceNumber)
	}
	for i := 0; i < len(seq); i++ {
		if seq[i] < '0' || seq[i] > '9' {
			return "", fmt.Errorf("%w: %q is not a decimal number", ErrInvalidSequenceNumber, truncate(seq))
		}
	}
	trimmed := seq
	for len(trimmed) > 1 && trimmed[0] == '0' {
		trimmed = trimmed[1:]
	}
	if len(trimmed) > MaxSequenceNumberDigits {
		return "", fmt.Errorf("%w: %q has more than %d digits", ErrInvalidSequenceNumber, truncate(seq), MaxSequenceNumberDigits)
	}
	return trimmed, nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// IsSentinel reports whether s is one of the sentinel checkpoint strings.
func IsSentinel(s string) bool {
	switch s {
	case SentinelTrimHorizon, SentinelLatest, SentinelAtTimestamp, SentinelShardEnd:
		return true
	}
	return false
}

// IsZero reports whether v is the zero Value (no checkpoint at all).
func (v Value) IsZero() bool {
	return v.SequenceNumber == "" && v.SubSequenceNumber == 0 && v.Timestamp.IsZero()
}

// IsSentinel reports whether v is a sentinel rather than a position at a record.
func (v Value) IsSentinel() bool { return IsSentinel(v.SequenceNumber) }

// IsShardEnd reports whether v is SHARD_END.
func (v Value) IsShardEnd() bool { return v.SequenceNumber == SentinelShardEnd }

// IsStart reports whether v is a starting position (TRIM_HORIZON, LATEST, AT_TIMESTAMP)
// that precedes every record of the shard.
func (v Value) IsStart() bool {
	switch v.SequenceNumber {
	case SentinelTrimHorizon, SentinelLatest, SentinelAtTimestamp:
		return true
	}
	return false
}

// String returns "seq" or "seq/sub" when the sub-sequence number is not zero, and
// "AT_TIMESTAMP(time)" for timestamp checkpoints.
func (v Value) String() string {
	switch {
	case v.IsZero():
		return "<none>"
	case v.SequenceNumber == SentinelAtTimestamp && !v.Timestamp.IsZero():
		return SentinelAtTimestamp + "(" + v.Timestamp.UTC().Format(time.RFC3339Nano) + ")"
	case v.SubSequenceNumber != 0:
		return v.SequenceNumber + "/" + strconv.FormatInt(v.SubSequenceNumber, 10)
	}
	return v.SequenceNumber
}

// rank orders the kinds of checkpoint: no checkpoint, start sentinels, records, SHARD_END.
func (v Value) rank() int {
	switch {
	case v.IsZero():
		return 0
	case v.IsStart():
		return 1
	case v.IsShardEnd():
		return 3
	}
	return 2
}

// Compare orders checkpoints: the zero Value, then the start sentinels (TRIM_HORIZON,
// LATEST and AT_TIMESTAMP all compare equal: each precedes every record), then positions
// at records by sequence number compared numerically and then by sub-sequence number, then
// SHARD_END. It returns -1, 0 or +1.
func (v Value) Compare(o Value) int {
	rv, ro := v.rank(), o.rank()
	if rv != ro {
		if rv < ro {
			return -1
		}
		return 1
	}
	if rv != 2 {
		return 0
	}
	if c := CompareSequenceNumbers(v.SequenceNumber, o.SequenceNumber); c != 0 {
		return c
	}
	switch {
	case v.SubSequenceNumber < o.SubSequenceNumber:
		return -1
	case v.SubSequenceNumber > o.SubSequenceNumber:
		return 1
	}
	return 0
}

// Before reports whether v is strictly before o in the order of Compare.
func (v Value) Before(o Value) bool { return v.Compare(o) < 0 }

// CompareSequenceNumbers compares two decimal sequence numbers numerically (leading zeros
// ignored) without allocating; both must be valid decimal strings.
func CompareSequenceNumbers(a, b string) int {
	for len(a) > 1 && a[0] == '0' {
		a = a[1:]
	}
	for len(b) > 1 && b[0] == '0' {
		b = b[1:]
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
