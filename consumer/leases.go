package consumer

import (
	"context"
	"errors"

	"github.com/freshet/freshet/checkpoint"
)

// leaseRow is the worker's view of one row of the lease table.
type leaseRow struct {
	Key          string
	Owner        string
	Counter      int64
	Checkpoint   checkpoint.Value
	Pending      checkpoint.Value
	PendingState []byte
	Parents      []string
	// ShardID is the shard (equal to Key for single-stream applications).
	ShardID string
	// StreamIdentifier is account:stream:creationEpoch for multi-stream leases.
	StreamIdentifier string
}

// errLeaseConflict reports that a lease changed since it was observed.
var errLeaseConflict = errors.New("consumer: lease changed since observed")

// leaseTable is what the worker needs of the lease table. Every write is conditional:
// Renew and Release succeed only for the holder at the counter it holds (otherwise an
// error matching checkpoint.ErrLeaseLost, nothing written), Take only when the lease is
// unchanged since it was observed (otherwise errLeaseConflict), Create only when no
// lease has the key (an existing lease is not an error). The checkpoint writes are
// conditional on ownership too.
type leaseTable interface {
	checkpoint.Store
	// List returns every lease of the application.
	List(ctx context.Context) ([]leaseRow, error)
	// Get returns one lease; found is false when it does not exist.
	Get(ctx context.Context, key string) (row leaseRow, found bool, err error)
	// Create writes l unless a lease with its key exists.
	Create(ctx context.Context, l leaseRow) error
	// Renew increments the counter of l, held by owner, and returns the new row.
	Renew(ctx context.Context, l leaseRow, owner string) (leaseRow, error)
	// Take makes owner the holder of l as observed (its owner and counter).
	Take(ctx context.Context, l leaseRow, owner string) (leaseRow, error)
	// Release clears the owner of l held by owner.
	Release(ctx context.Context, l leaseRow, owner string) error
}
