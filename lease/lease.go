package lease

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/freshet/freshet/checkpoint"
)

// Lease is one row of the lease table: the right to process one shard.
type Lease struct {
	// Key is the lease key: the shard ID, or account:stream:creationEpoch:shardId for
	// multi-stream applications.
	Key string
	// Owner is the worker that holds the lease (or, during a graceful handoff, the worker
	// it is being handed to); empty when unassigned.
	Owner string
	// Counter is the lease counter, incremented by every renewal and ownership change. It
	// fences all ownership-sensitive writes.
	Counter int64
	// OwnerSwitchesSinceCheckpoint counts owner changes since the last checkpoint.
	OwnerSwitchesSinceCheckpoint int64
	// Checkpoint is the last committed checkpoint.
	Checkpoint checkpoint.Value
	// PendingCheckpoint is a prepared checkpoint not yet committed (zero when none).
	PendingCheckpoint checkpoint.Value
	// PendingCheckpointState is the application state stored with PendingCheckpoint.
	PendingCheckpointState []byte
	// ParentShardIDs are the shards this shard was split or merged from.
	ParentShardIDs []string
	// ChildShardIDs are the shards this shard was split or merged into.
	ChildShardIDs []string
	// StartingHashKey and EndingHashKey are the shard's hash key range (decimal), empty
	// when unknown.
	StartingHashKey, EndingHashKey string
	// ThroughputKBps is the owner's last reported throughput of the shard in KB/s.
	ThroughputKBps float64
	// CheckpointOwner is set during a graceful handoff: the previous owner, which may still
	// checkpoint until it releases the lease.
	CheckpointOwner string
	// StreamIdentifier is account:stream:creationEpoch for multi-stream leases, empty
	// otherwise.
	StreamIdentifier string
	// ShardID is the shard of a multi-stream lease (for single-stream leases Key is the
	// shard ID and ShardID may be empty).
	ShardID string
}

// Shard returns the shard ID of the lease.
func (l *Lease) Shard() string {
	if l.ShardID != "" {
		return l.ShardID
	}
	return l.Key
}

// HandoffPending reports whether a graceful handoff is under way: the lease is assigned to
// Owner but CheckpointOwner has not released it yet.
func (l *Lease) HandoffPending() bool { return l.CheckpointOwner != "" }

// Clone returns a deep copy of l.
func (l Lease) Clone() Lease {
	l.PendingCheckpointState = slices.Clone(l.PendingCheckpointState)
	l.ParentShardIDs = slices.Clone(l.ParentShardIDs)
	l.ChildShardIDs = slices.Clone(l.ChildShardIDs)
	return l
}

// MultiStreamKey returns the lease key of a shard of a multi-stream application: the
// stream identifier (account:stream:creationEpoch) and the shard ID joined by ':'.
func MultiStreamKey(streamIdentifier, shardID string) string {
	return streamIdentifier + ":" + shardID
}

// ParseMultiStreamKey splits a multi-stream lease key into its stream identifier and
// shard ID.
func ParseMultiStreamKey(key string) (streamIdentifier, shardID string, err error) {
	parts := strings.Split(key, ":")
	if len(parts) != 4 || parts[0] == "" || parts[1] == "" || parts[2] == "" || parts[3] == "" {
		return "", "", fmt.Errorf("%w: %q is not account:stream:creationEpoch:shardId", ErrMalformedItem, key)
	}
	for _, p := range []string{parts[0], parts[2]} {
		for i := 0; i < len(p); i++ {
			if p[i] < '0' || p[i] > '9' {
				return "", "", fmt.Errorf("%w: %q: account and creation epoch must be decimal", ErrMalformedItem, key)
			}
		}
	}
	return strings.Join(parts[:3], ":"), parts[3], nil
}

// Sentinel errors. Errors returned by this package are *Error values wrapping one of them
// (or the DynamoDB client's error).
var (
	// ErrLeaseLost reports that the caller no longer holds the lease; nothing was
	// written. It is the same value as checkpoint.ErrLeaseLost.
	ErrLeaseLost = checkpoint.ErrLeaseLost
	// ErrConflict reports that the lease changed since it was observed, so a take, evict,
	// handoff or delete based on that observation was refused.
	ErrConflict = errors.New("lease: changed since observed")
	// ErrNotFound reports a lease (or item) that does not exist.
	ErrNotFound = errors.New("lease: not found")
	// ErrMalformedItem reports an item that cannot be read as the expected entity.
	ErrMalformedItem = errors.New("lease: malformed item")
	// ErrInvalidOption reports a bad option, setting or argument.
	ErrInvalidOption = errors.New("lease: invalid option")
	// ErrTableNotActive reports a table that did not become ACTIVE in time.
	ErrTableNotActive = errors.New("lease: table not active")
)

// Error describes a failed lease-table operation.
type Error struct {
	// Op is the operation: "renew", "take", "checkpoint", ...
	Op string
	// Table is the DynamoDB table.
	Table string
	// Key is the lease key or item key, when the operation concerns one item.
	Key string
	// Err is the cause: a sentinel of this package or the client's error.
	Err error
}

func (e *Error) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("lease: %s %s in %s: %v", e.Op, e.Key, e.Table, e.Err)
	}
	return fmt.Sprintf("lease: %s in %s: %v", e.Op, e.Table, e.Err)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }
