package lease

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/internal/hashkey"
)

// Attribute names of the lease table, as Java KCL 3.x writes them. leaseKey is the key
// of every item in the single-table layout.
const (
	attrLeaseKey                = "leaseKey"
	attrLeaseOwner              = "leaseOwner"
	attrLeaseCounter            = "leaseCounter"
	attrOwnerSwitches           = "ownerSwitchesSinceCheckpoint"
	attrCheckpoint              = "checkpoint"
	attrCheckpointSubSequence   = "checkpointSubSequenceNumber"
	attrPendingCheckpoint       = "pendingCheckpoint"
	attrPendingCheckpointSubSeq = "pendingCheckpointSubSequenceNumber"
	attrPendingCheckpointState  = "pendingCheckpointState"
	attrParentShardID           = "parentShardId"
	attrChildShardIDs           = "childShardIds"
	attrStartingHashKey         = "startingHashKey"
	attrEndingHashKey           = "endingHashKey"
	attrThroughputKBps          = "throughputKBps"
	attrCheckpointOwner         = "checkpointOwner"
	attrEntityType              = "entityType"
	attrStreamName              = "streamName"
	attrShardID                 = "shardId"
	// attrCheckpointTimestamp is a Freshet extension: the epoch milliseconds of an
	// AT_TIMESTAMP checkpoint set by Replay. Java KCL ignores it (and takes the timestamp
	// from its own configuration).
	attrCheckpointTimestamp = "checkpointTimestamp"

	// indexLeaseOwnerToLeaseKey is the lease table's global secondary index: leaseOwner
	// (HASH), leaseKey (RANGE), keys only.
	indexLeaseOwnerToLeaseKey = "LeaseOwnerToLeaseKeyIndex"
)

// Values of the entityType attribute.
const (
	entityLease                  = "LEASE"
	entityLeader                 = "LEADER"
	entityClientVersionMigration = "CLIENT_VERSION_MIGRATION"
	entityTableMigration         = "TABLE_MIGRATION"
	entityWorkerMetricStats      = "WORKER_METRIC_STATS"
)

// itemValues holds the attribute values of one marshalled lease, allocated together.
type itemValues struct {
	s      [11]types.AttributeValueMemberS
	n      [7]types.AttributeValueMemberN
	ns, nn int
}

func (v *itemValues) str(x string) types.AttributeValue {
	a := &v.s[v.ns]
	v.ns++
	a.Value = x
	return a
}

func (v *itemValues) num(x int64) types.AttributeValue {
	a := &v.n[v.nn]
	v.nn++
	a.Value = strconv.FormatInt(x, 10)
	return a
}

// marshalItem returns the lease-table item of l, with the attribute names and types Java
// KCL 3.x writes (plus entityType LEASE). Empty optional fields are omitted.
func marshalItem(l *Lease) map[string]types.AttributeValue {
	item := make(map[string]types.AttributeValue, 17)
	v := new(itemValues)
	item[attrLeaseKey] = v.str(l.Key)
	item[attrLeaseCounter] = v.num(l.Counter)
	if l.Owner != "" {
		item[attrLeaseOwner] = v.str(l.Owner)
	}
	item[attrOwnerSwitches] = v.num(l.OwnerSwitchesSinceCheckpoint)
	cp := l.Checkpoint
	if cp.IsZero() {
		cp = checkpoint.TrimHorizon
	}
	item[attrCheckpoint] = v.str(cp.SequenceNumber)
	item[attrCheckpointSubSequence] = v.num(cp.SubSequenceNumber)
	if !cp.Timestamp.IsZero() {
		item[attrCheckpointTimestamp] = v.num(cp.Timestamp.UnixMilli())
	}
	if len(l.ParentShardIDs) > 0 {
		item[attrParentShardID] = strSet(l.ParentShardIDs)
	}
	if len(l.ChildShardIDs) > 0 {
		item[attrChildShardIDs] = strSet(l.ChildShardIDs)
	}
	if !l.PendingCheckpoint.IsZero() {
		item[attrPendingCheckpoint] = v.str(l.PendingCheckpoint.SequenceNumber)
		item[attrPendingCheckpointSubSeq] = v.num(l.PendingCheckpoint.SubSequenceNumber)
	}
	if l.PendingCheckpointState != nil {
		item[attrPendingCheckpointState] = &types.AttributeValueMemberB{Value: slices.Clone(l.PendingCheckpointState)}
	}
	if l.StartingHashKey != "" && l.EndingHashKey != "" {
		item[attrStartingHashKey] = v.str(l.StartingHashKey)
		item[attrEndingHashKey] = v.str(l.EndingHashKey)
	}
	if l.ThroughputKBps != 0 {
		a := &v.n[v.nn]
		v.nn++
		a.Value = strconv.FormatFloat(l.ThroughputKBps, 'f', -1, 64)
		item[attrThroughputKBps] = a
	}
	if l.CheckpointOwner != "" {
		item[attrCheckpointOwner] = v.str(l.CheckpointOwner)
	}
	if l.StreamIdentifier != "" {
		item[attrStreamName] = v.str(l.StreamIdentifier)
		item[attrShardID] = v.str(l.ShardID)
	}
	item[attrEntityType] = v.str(entityLease)
	return item
}

// strSet returns an SS of the distinct strings of ss, sorted.
func strSet(ss []string) types.AttributeValue {
	if len(ss) == 1 || slices.IsSorted(ss) && !hasAdjacentDup(ss) {
		return &types.AttributeValueMemberSS{Value: slices.Clone(ss)}
	}
	out := slices.Clone(ss)
	slices.Sort(out)
	return &types.AttributeValueMemberSS{Value: slices.Compact(out)}
}

func hasAdjacentDup(ss []string) bool {
	for i := 1; i < len(ss); i++ {
		if ss[i] == ss[i-1] {
			return true
		}
	}
	return false
}

// isLeaseItem reports whether item is a lease: its entityType is LEASE or absent (rows
// written before KCL 3.5 have none).
func isLeaseItem(item map[string]types.AttributeValue) bool {
	et, ok := item[attrEntityType].(*types.AttributeValueMemberS)
	return !ok || et.Value == entityLease
}

// unmarshalItem reads a lease-table item written by Freshet or by Java KCL (1.x to 3.x).
// pendingCheckpointState may be binary or, as some Java versions write it, a number; a
// number carries no application state and is read as none. Items of other entity types
// fail with ErrMalformedItem (use isLeaseItem to skip them).
func unmarshalItem(item map[string]types.AttributeValue) (Lease, error) {
	var l Lease
	if !isLeaseItem(item) {
		return l, fmt.Errorf("%w: entityType %v is not %s", ErrMalformedItem, describe(item[attrEntityType]), entityLease)
	}
	var err error
	r := itemReader{item: item}
	l.Key = r.str(attrLeaseKey, true)
	l.Owner = r.str(attrLeaseOwner, false)
	l.Counter = r.int(attrLeaseCounter)
	l.OwnerSwitchesSinceCheckpoint = r.int(attrOwnerSwitches)
	if seq := r.str(attrCheckpoint, false); seq != "" {
		l.Checkpoint, err = checkpoint.Parse(seq, r.int(attrCheckpointSubSequence))
		if err != nil {
			r.fail(attrCheckpoint, err)
		}
		if ms := r.int(attrCheckpointTimestamp); ms != 0 && l.Checkpoint.SequenceNumber == checkpoint.SentinelAtTimestamp {
			l.Checkpoint.Timestamp = time.UnixMilli(ms).UTC()
		}
	}
	if seq := r.str(attrPendingCheckpoint, false); seq != "" {
		l.PendingCheckpoint, err = checkpoint.Parse(seq, r.int(attrPendingCheckpointSubSeq))
		if err != nil {
			r.fail(attrPendingCheckpoint, err)
		}
	}
	switch v := item[attrPendingCheckpointState].(type) {
	case nil, *types.AttributeValueMemberN, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberB:
		l.PendingCheckpointState = slices.Clone(v.Value)
		if l.PendingCheckpointState == nil {
			l.PendingCheckpointState = []byte{}
		}
	default:
		r.fail(attrPendingCheckpointState, fmt.Errorf("type %s, want B or N", describe(v)))
	}
	l.ParentShardIDs = r.strSet(attrParentShardID)
	l.ChildShardIDs = r.strSet(attrChildShardIDs)
	l.StartingHashKey = r.str(attrStartingHashKey, false)
	l.EndingHashKey = r.str(attrEndingHashKey, false)
	if l.StartingHashKey != "" || l.EndingHashKey != "" {
		if _, err := hashkey.ParseRange(l.StartingHashKey, l.EndingHashKey); err != nil {
			r.fail(attrStartingHashKey, err)
		}
	}
	l.ThroughputKBps = r.float(attrThroughputKBps)
	l.CheckpointOwner = r.str(attrCheckpointOwner, false)
	l.StreamIdentifier = r.str(attrStreamName, false)
	l.ShardID = r.str(attrShardID, false)
	if r.err != nil {
		return Lease{}, r.err
	}
	return l, nil
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

func numFloat(f float64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatFloat(f, 'f', -1, 64)}
}

func describe(v types.AttributeValue) string {
	switch v := v.(type) {
	case nil:
		return "absent"
	case *types.AttributeValueMemberS:
		return strconv.Quote(v.Value)
	case *types.AttributeValueMemberN:
		return "N"
	case *types.AttributeValueMemberB:
		return "B"
	case *types.AttributeValueMemberSS:
		return "SS"
	case *types.AttributeValueMemberNS:
		return "NS"
	case *types.AttributeValueMemberBS:
		return "BS"
	case *types.AttributeValueMemberM:
		return "M"
	case *types.AttributeValueMemberL:
		return "L"
	case *types.AttributeValueMemberBOOL:
		return "BOOL"
	case *types.AttributeValueMemberNULL:
		return "NULL"
	}
	return fmt.Sprintf("%T", v)
}

// itemReader reads typed attributes and keeps the first error.
type itemReader struct {
	item map[string]types.AttributeValue
	err  error
}

func (r *itemReader) fail(name string, err error) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: attribute %s: %v", ErrMalformedItem, name, err)
	}
}

func (r *itemReader) str(name string, required bool) string {
	switch v := r.item[name].(type) {
	case nil:
		if required {
			r.fail(name, fmt.Errorf("missing"))
		}
		return ""
	case *types.AttributeValueMemberS:
		if required && v.Value == "" {
			r.fail(name, fmt.Errorf("empty"))
		}
		return v.Value
	default:
		r.fail(name, fmt.Errorf("type %s, want S", describe(v)))
		return ""
	}
}

func (r *itemReader) int(name string) int64 {
	switch v := r.item[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			// DynamoDB may normalize integers written by other clients, e.g. "1E+1".
			f, ferr := strconv.ParseFloat(v.Value, 64)
			if ferr != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
				r.fail(name, err)
				return 0
			}
			n = int64(f)
		}
		return n
	default:
		r.fail(name, fmt.Errorf("type %s, want N", describe(v)))
		return 0
	}
}

func (r *itemReader) float(name string) float64 {
	switch v := r.item[name].(type) {
	case nil:
		return 0
	case *types.AttributeValueMemberN:
		f, err := strconv.ParseFloat(v.Value, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			r.fail(name, fmt.Errorf("bad number %q", v.Value))
			return 0
		}
		return f
	default:
		r.fail(name, fmt.Errorf("type %s, want N", describe(v)))
		return 0
	}
}

func (r *itemReader) strSet(name string) []string {
	switch v := r.item[name].(type) {
	case nil:
		return nil
	case *types.AttributeValueMemberSS:
		out := slices.Clone(v.Value)
		slices.Sort(out)
		return out
	default:
		r.fail(name, fmt.Errorf("type %s, want SS", describe(v)))
		return nil
	}
}
