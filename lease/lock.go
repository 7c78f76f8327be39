package lease

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// LeaderLock is the leader lock item as stored, in the format of the DynamoDB lock client
// Java KCL 3.x uses.
type LeaderLock struct {
	// Owner is the worker named in the lock (ownerName).
	Owner string
	// RecordVersion is the record version number the holder's heartbeats replace.
	RecordVersion string
	// LeaseDuration is how long a silent holder keeps the lock; zero when not recorded.
	LeaseDuration time.Duration
	// Released is set when the holder gave the lock up; it then names no leader.
	Released bool
}

// LeaderLock reads the leader lock item from the coordinator state of the store's layout
// (a consistent read); ErrNotFound when there is none. LeaderElector decides leadership
// on the record version it sees change on its own clock, not on this snapshot.
func (s *Store) LeaderLock(ctx context.Context) (LeaderLock, error) {
	table, attr := s.tables.stateTable()
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{attr: str(leaderLockKey)}, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return LeaderLock{}, &Error{Op: "leader-get", Table: table, Key: leaderLockKey, Err: err}
	}
	if len(out.Item) == 0 {
		return LeaderLock{}, &Error{Op: "leader-get", Table: table, Key: leaderLockKey, Err: ErrNotFound}
	}
	l := LeaderLock{Owner: stringAttr(out.Item, attrLockOwnerName), RecordVersion: stringAttr(out.Item, attrLockRecordVersion)}
	_, l.Released = out.Item[attrLockIsReleased]
	var ms string
	switch v := out.Item[attrLockLeaseDuration].(type) {
	case *types.AttributeValueMemberS:
		ms = v.Value
	case *types.AttributeValueMemberN:
		ms = v.Value
	}
	if n, err := strconv.ParseInt(ms, 10, 64); err == nil && n > 0 {
		l.LeaseDuration = time.Duration(n) * time.Millisecond
	}
	return l, nil
}
