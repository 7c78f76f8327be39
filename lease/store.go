package lease

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/clock"
)

// DynamoDBAPI is the part of *dynamodb.Client this package uses.
type DynamoDBAPI interface {
	CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, opts ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
	UpdateContinuousBackups(ctx context.Context, in *dynamodb.UpdateContinuousBackupsInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateContinuousBackupsOutput, error)
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Scan(ctx context.Context, in *dynamodb.ScanInput, opts ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, opts ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Key attribute names of the coordinator-state and worker-metrics tables of the
// three-table layout.
const (
	attrCoordinatorStateKey = "key"
	attrWorkerID            = "wid"
)

// Tables names the application's tables and chooses the layout.
type Tables struct {
	// Lease is the lease table; by convention the application name.
	Lease string
	// CoordinatorState holds the leader lock and migration state (key attribute "key");
	// ignored when SingleTable is set.
	CoordinatorState string
	// WorkerMetrics holds the workers' metrics (key attribute "wid"); ignored when
	// SingleTable is set.
	WorkerMetrics string
	// SingleTable selects the KCL 3.5 layout: every entity lives in the lease table under
	// leaseKey, told apart by entityType.
	SingleTable bool
}

// DefaultTables returns the three-table layout of KCL 3.x for application app: app,
// app-CoordinatorState and app-WorkerMetricStats.
func DefaultTables(app string) Tables {
	return Tables{Lease: app, CoordinatorState: app + "-CoordinatorState", WorkerMetrics: app + "-WorkerMetricStats"}
}

// SingleTableLayout returns the KCL 3.5 single-table layout for application app.
func SingleTableLayout(app string) Tables { return Tables{Lease: app, SingleTable: true} }

func (t Tables) validate() error {
	if t.Lease == "" {
		return fmt.Errorf("%w: empty lease table name", ErrInvalidOption)
	}
	if !t.SingleTable && (t.CoordinatorState == "" || t.WorkerMetrics == "") {
		return fmt.Errorf("%w: the three-table layout needs CoordinatorState and WorkerMetrics table names", ErrInvalidOption)
	}
	return nil
}

func (t Tables) stateTable() (table, keyAttr string) {
	if t.SingleTable {
		return t.Lease, attrLeaseKey
	}
	return t.CoordinatorState, attrCoordinatorStateKey
}

func (t Tables) metricsTable() (table, keyAttr string) {
	if t.SingleTable {
		return t.Lease, attrLeaseKey
	}
	return t.WorkerMetrics, attrWorkerID
}

// Store reads and writes leases, coordinator state and worker metrics. Every write that
// depends on ownership is a DynamoDB conditional write. It is safe for concurrent use.
type Store struct {
	db     DynamoDBAPI
	tables Tables
	clock  clock.Clock
	log    *zap.Logger
	poll   time.Duration
	// detect makes CreateTables choose the layout of the existing tables (DetectTables).
	detect bool
}

// NewStore returns a Store over db for the given tables.
func NewStore(db DynamoDBAPI, tables Tables, opts ...Option) (*Store, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil DynamoDB client", ErrInvalidOption)
	}
	if err := tables.validate(); err != nil {
		return nil, err
	}
	o, err := newOptions("NewStore", forStore, opts)
	if err != nil {
		return nil, err
	}
	return &Store{db: db, tables: tables, clock: o.clock, log: o.log, poll: o.poll, detect: o.detect}, nil
}

// Tables returns the store's table layout.
func (s *Store) Tables() Tables { return s.tables }

func (s *Store) fail(op, key string, err error) error {
	return &Error{Op: op, Table: s.tables.Lease, Key: key, Err: err}
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}

func isNotFound(err error) bool {
	var rnf *types.ResourceNotFoundException
	return errors.As(err, &rnf)
}

func leaseKeyOf(key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrLeaseKey: str(key)}
}

// names maps every placeholder used in lease expressions to its attribute.
var names = map[string]string{
	"#k": attrLeaseKey, "#o": attrLeaseOwner, "#c": attrLeaseCounter, "#sw": attrOwnerSwitches,
	"#cp": attrCheckpoint, "#cps": attrCheckpointSubSequence, "#cpt": attrCheckpointTimestamp,
	"#pc": attrPendingCheckpoint, "#pcs": attrPendingCheckpointSubSeq, "#pst": attrPendingCheckpointState,
	"#ch": attrChildShardIDs, "#t": attrThroughputKBps, "#co": attrCheckpointOwner,
}

// namesCache holds the names of each (update, condition) pair of expressions used. The
// expressions are assembled from constant fragments, so the cache stays small. Its maps
// are shared by concurrent requests and must never be modified.
var namesCache struct {
	sync.RWMutex
	m map[[2]string]map[string]string
}

// cachedNames returns namesFor(update, cond), computed once per pair.
func cachedNames(update, cond string) map[string]string {
	key := [2]string{update, cond}
	namesCache.RLock()
	m, ok := namesCache.m[key]
	namesCache.RUnlock()
	if ok {
		return m
	}
	m = namesFor(update, cond)
	namesCache.Lock()
	if namesCache.m == nil {
		namesCache.m = map[[2]string]map[string]string{}
	}
	namesCache.m[key] = m
	namesCache.Unlock()
	return m
}

// namesFor returns the subset of names an expression uses.
func namesFor(exprs ...string) map[string]string {
	out := map[string]string{}
	for p, a := range names {
		for _, e := range exprs {
			if containsPlaceholder(e, p) {
				out[p] = a
			}
		}
	}
	return out
}

func containsPlaceholder(expr, p string) bool {
	for i := 0; i+len(p) <= len(expr); i++ {
		if expr[i:i+len(p)] == p {
			end := i + len(p)
			if end == len(expr) || !isIdent(expr[end]) {
				return true
			}
		}
	}
	return false
}

func isIdent(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// update runs one conditional UpdateItem on a lease and returns the item after it.
func (s *Store) update(ctx context.Context, key, update, cond string, values map[string]types.AttributeValue) (map[string]types.AttributeValue, error) {
	in := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(s.tables.Lease),
		Key:                       leaseKeyOf(key),
		UpdateExpression:          aws.String(update),
		ExpressionAttributeNames:  cachedNames(update, cond),
		ExpressionAttributeValues: values,
		ReturnValues:              types.ReturnValueAllNew,
	}
	if cond != "" {
		in.ConditionExpression = aws.String(cond)
	}
	if len(in.ExpressionAttributeValues) == 0 {
		in.ExpressionAttributeValues = nil
	}
	out, err := s.db.UpdateItem(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.Attributes, nil
}

func (s *Store) leaseFrom(op, key string, item map[string]types.AttributeValue) (Lease, error) {
	l, err := unmarshalItem(item)
	if err != nil {
		return Lease{}, s.fail(op, key, err)
	}
	return l, nil
}

// Get returns the lease key (consistent read); ErrNotFound when it does not exist.
func (s *Store) Get(ctx context.Context, key string) (Lease, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(s.tables.Lease), Key: leaseKeyOf(key), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return Lease{}, s.fail("get", key, err)
	}
	if len(out.Item) == 0 || !isLeaseItem(out.Item) {
		return Lease{}, s.fail("get", key, ErrNotFound)
	}
	return s.leaseFrom("get", key, out.Item)
}

// List returns every lease of the table (a consistent, paginated scan). In the
// single-table layout rows of other entity types are skipped.
func (s *Store) List(ctx context.Context) ([]Lease, error) { return s.list(ctx, true) }

// ListEventuallyConsistent returns every lease of the table like List, by an eventually
// consistent scan, at half the read units. A lease written in the last second or so may
// be missing or older: fit for readers whose writes are conditional (the shard sync's
// creates and deletes).
func (s *Store) ListEventuallyConsistent(ctx context.Context) ([]Lease, error) {
	return s.list(ctx, false)
}

// list scans the lease table, consistently or not. An eventually consistent scan costs
// half the read units; the leader's Assigner uses one, since every write it bases on the
// scan is conditional on what it read, so a stale read only costs a refused write.
func (s *Store) list(ctx context.Context, consistent bool) ([]Lease, error) {
	leases, _, err := s.listWith(ctx, consistent, false)
	return leases, err
}

// listWith scans the lease table like list and, in the single-table layout when rows is
// set, also returns the worker-metrics rows the scan read anyway.
func (s *Store) listWith(ctx context.Context, consistent, rows bool) ([]Lease, []WorkerMetrics, error) {
	var out []Lease
	var metrics []WorkerMetrics
	_, keyAttr := s.tables.metricsTable()
	in := &dynamodb.ScanInput{TableName: aws.String(s.tables.Lease), ConsistentRead: aws.Bool(consistent)}
	for {
		page, err := s.db.Scan(ctx, in)
		if err != nil {
			return nil, nil, s.fail("list", "", err)
		}
		for _, item := range page.Items {
			if !isLeaseItem(item) {
				if rows && s.tables.SingleTable && stringAttr(item, attrEntityType) == entityWorkerMetricStats {
					m, err := unmarshalWorkerMetrics(item, keyAttr)
					if err != nil {
						return nil, nil, s.fail("list", "", err)
					}
					metrics = append(metrics, m)
				}
				continue
			}
			l, err := unmarshalItem(item)
			if err != nil {
				return nil, nil, s.fail("list", "", err)
			}
			out = append(out, l)
		}
		if len(page.LastEvaluatedKey) == 0 {
			sort.Slice(metrics, func(i, j int) bool { return metrics[i].WorkerID < metrics[j].WorkerID })
			return out, metrics, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// ListKeysOwnedBy returns the keys of the leases whose leaseOwner is owner, from the
// LeaseOwnerToLeaseKeyIndex (eventually consistent).
func (s *Store) ListKeysOwnedBy(ctx context.Context, owner string) ([]string, error) {
	var keys []string
	in := &dynamodb.QueryInput{
		TableName:                 aws.String(s.tables.Lease),
		IndexName:                 aws.String(indexLeaseOwnerToLeaseKey),
		KeyConditionExpression:    aws.String("#o = :o"),
		ExpressionAttributeNames:  map[string]string{"#o": attrLeaseOwner},
		ExpressionAttributeValues: map[string]types.AttributeValue{":o": str(owner)},
	}
	for {
		page, err := s.db.Query(ctx, in)
		if err != nil {
			return nil, s.fail("list-owned", owner, err)
		}
		for _, item := range page.Items {
			if k, ok := item[attrLeaseKey].(*types.AttributeValueMemberS); ok {
				keys = append(keys, k.Value)
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return keys, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// CreateIfAbsent writes l unless a lease with its key exists, and reports whether it
// wrote it. Shard sync uses it to create leases for new shards with their parents.
func (s *Store) CreateIfAbsent(ctx context.Context, l Lease) (bool, error) {
	if l.Key == "" {
		return false, s.fail("create", "", fmt.Errorf("%w: empty lease key", ErrInvalidOption))
	}
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(s.tables.Lease),
		Item:                     marshalItem(&l),
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": attrLeaseKey},
	})
	switch {
	case err == nil:
		return true, nil
	case isConditionFailed(err):
		return false, nil
	}
	return false, s.fail("create", l.Key, err)
}

// Renew extends the holder's lease: leaseCounter becomes held.Counter+1 and, when
// held.ThroughputKBps is positive, throughputKBps is recorded. It succeeds only while the
// counter is still held.Counter and held.Owner is the lease owner or, during a handoff, its
// checkpoint owner; otherwise it fails with ErrLeaseLost. It returns the lease as stored
// after the renewal: a holder that finds CheckpointOwner == itself and Owner != itself has
// been asked to hand the lease over.
func (s *Store) Renew(ctx context.Context, held Lease) (Lease, error) {
	if held.Owner == "" {
		return Lease{}, s.fail("renew", held.Key, fmt.Errorf("%w: no owner", ErrInvalidOption))
	}
	me := holderOf(&held)
	update := "SET #c = :next"
	values := map[string]types.AttributeValue{
		":held": num(held.Counter), ":next": num(held.Counter + 1), ":me": str(me),
	}
	if held.ThroughputKBps > 0 {
		update += ", #t = :t"
		values[":t"] = numFloat(held.ThroughputKBps)
	}
	item, err := s.update(ctx, held.Key, update, "#c = :held AND (#o = :me OR #co = :me)", values)
	if err == nil {
		return s.leaseFrom("renew", held.Key, item)
	}
	if !isConditionFailed(err) {
		return Lease{}, s.fail("renew", held.Key, err)
	}
	// A retried request whose first attempt succeeded fails its condition: accept the
	// renewal if the stored lease is exactly what it would have written.
	cur, err := s.recheck(ctx, "renew", held.Key)
	if err != nil {
		return Lease{}, err
	}
	if cur.Counter == held.Counter+1 && (cur.Owner == me || cur.CheckpointOwner == me) {
		return cur, nil
	}
	return Lease{}, s.fail("renew", held.Key, ErrLeaseLost)
}

// recheck reads the lease key after a holder's write (op) failed its condition. A lease
// that no longer exists is lost (ErrLeaseLost). A read that fails is returned, wrapped:
// the lease may still be held, so the caller retries rather than drop it.
func (s *Store) recheck(ctx context.Context, op, key string) (Lease, error) {
	cur, err := s.Get(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return Lease{}, s.fail(op, key, ErrLeaseLost)
	case err != nil:
		return Lease{}, s.fail(op, key, fmt.Errorf("reading the lease after a failed condition: %w", errors.Unwrap(err)))
	}
	return cur, nil
}

// Take makes newOwner the owner of the lease observed, incrementing its counter and ending
// any handoff. It succeeds only if the counter and owner are still those observed, and
// fails with ErrConflict otherwise. The leader uses it to assign unassigned and expired
// leases; a new owner uses it to finish a handoff the old owner did not release in time.
func (s *Store) Take(ctx context.Context, observed Lease, newOwner string) (Lease, error) {
	if newOwner == "" {
		return Lease{}, s.fail("take", observed.Key, fmt.Errorf("%w: empty new owner", ErrInvalidOption))
	}
	values := map[string]types.AttributeValue{
		":obs": num(observed.Counter), ":next": num(observed.Counter + 1), ":new": str(newOwner),
	}
	update := "SET #o = :new, #c = :next"
	if observed.Owner != newOwner || observed.CheckpointOwner == newOwner {
		update += ", #sw = :sw"
		values[":sw"] = num(observed.OwnerSwitchesSinceCheckpoint + 1)
	}
	update += " REMOVE #co"
	cond := "#c = :obs AND attribute_not_exists(#o)"
	if observed.Owner != "" {
		cond = "#c = :obs AND #o = :old"
		values[":old"] = str(observed.Owner)
	}
	item, err := s.update(ctx, observed.Key, update, cond, values)
	if err != nil {
		if isConditionFailed(err) {
			return Lease{}, s.fail("take", observed.Key, ErrConflict)
		}
		return Lease{}, s.fail("take", observed.Key, err)
	}
	return s.leaseFrom("take", observed.Key, item)
}

// ownerCondition matches the owner and checkpoint owner observed.
func ownerCondition(observed Lease, values map[string]types.AttributeValue) string {
	cond := "attribute_exists(#k)"
	if observed.Owner == "" {
		cond += " AND attribute_not_exists(#o)"
	} else {
		cond += " AND #o = :oo"
		values[":oo"] = str(observed.Owner)
	}
	if observed.CheckpointOwner == "" {
		cond += " AND attribute_not_exists(#co)"
	} else {
		cond += " AND #co = :oco"
		values[":oco"] = str(observed.CheckpointOwner)
	}
	return cond
}

// Evict takes the lease away from its owner without giving it to anyone: it removes the
// checkpoint owner when a handoff is under way (so the new owner may start at once),
// otherwise the owner, and increments the counter. It fails with ErrConflict when the
// owner or checkpoint owner differ from observed.
func (s *Store) Evict(ctx context.Context, observed Lease) (Lease, error) {
	values := map[string]types.AttributeValue{":one": num(1)}
	cond := ownerCondition(observed, values)
	update := "SET #c = #c + :one REMOVE #co"
	if observed.CheckpointOwner == "" {
		update += ", #o"
	}
	item, err := s.update(ctx, observed.Key, update, cond, values)
	if err != nil {
		if isConditionFailed(err) {
			return Lease{}, s.fail("evict", observed.Key, ErrConflict)
		}
		return Lease{}, s.fail("evict", observed.Key, err)
	}
	return s.leaseFrom("evict", observed.Key, item)
}

// Release gives up a lease held by me: after a handoff (me is the checkpoint owner) it
// removes the checkpoint owner so the new owner starts; otherwise it removes the owner so
// the leader reassigns the lease at once. The counter is incremented. It fails with
// ErrLeaseLost when me no longer holds the lease in that role.
func (s *Store) Release(ctx context.Context, key, me string) error {
	values := map[string]types.AttributeValue{":one": num(1), ":me": str(me)}
	// Handoff first: the common case when a lease is released while the worker runs.
	_, err := s.update(ctx, key, "SET #c = #c + :one REMOVE #co", "#co = :me", values)
	if err == nil {
		return nil
	}
	if !isConditionFailed(err) {
		return s.fail("release", key, err)
	}
	_, err = s.update(ctx, key, "SET #c = #c + :one REMOVE #o", "#o = :me AND attribute_not_exists(#co)", values)
	if err == nil {
		return nil
	}
	if isConditionFailed(err) {
		return s.fail("release", key, ErrLeaseLost)
	}
	return s.fail("release", key, err)
}

// Handoff starts a graceful handoff of the lease observed to newOwner: leaseOwner becomes
// newOwner and checkpointOwner the old owner, which keeps renewing and may checkpoint
// until it calls Release. The counter is left alone so the old owner's renewals continue.
// It fails with ErrConflict unless the owner is still observed.Owner and no handoff is
// under way.
func (s *Store) Handoff(ctx context.Context, observed Lease, newOwner string) (Lease, error) {
	if observed.Owner == "" || newOwner == "" || newOwner == observed.Owner {
		return Lease{}, s.fail("handoff", observed.Key,
			fmt.Errorf("%w: handoff from %q to %q", ErrInvalidOption, observed.Owner, newOwner))
	}
	values := map[string]types.AttributeValue{":old": str(observed.Owner), ":new": str(newOwner)}
	item, err := s.update(ctx, observed.Key, "SET #o = :new, #co = :old",
		"#o = :old AND attribute_not_exists(#co)", values)
	if err != nil {
		if isConditionFailed(err) {
			return Lease{}, s.fail("handoff", observed.Key, ErrConflict)
		}
		return Lease{}, s.fail("handoff", observed.Key, err)
	}
	return s.leaseFrom("handoff", observed.Key, item)
}

// Delete removes the lease key unconditionally.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(s.tables.Lease), Key: leaseKeyOf(key)})
	if err != nil {
		return s.fail("delete", key, err)
	}
	return nil
}

// deleteShardEnded removes the lease key only if its checkpoint is SHARD_END.
func (s *Store) deleteShardEnded(ctx context.Context, key string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 aws.String(s.tables.Lease),
		Key:                       leaseKeyOf(key),
		ConditionExpression:       aws.String("#cp = :end"),
		ExpressionAttributeNames:  map[string]string{"#cp": attrCheckpoint},
		ExpressionAttributeValues: map[string]types.AttributeValue{":end": str(checkpoint.SentinelShardEnd)},
	})
	if err != nil {
		if isConditionFailed(err) {
			return s.fail("delete", key, ErrConflict)
		}
		return s.fail("delete", key, err)
	}
	return nil
}

// holderCondition lets me write while it holds the lease at the counter :held: as its
// owner without a handoff, or as the checkpoint owner of a handoff.
const holderCondition = "#c = :held AND ((#o = :me AND attribute_not_exists(#co)) OR #co = :me)"

// holderOf returns the worker that holds l: its checkpoint owner during a handoff,
// otherwise its owner.
func holderOf(l *Lease) string {
	if l.CheckpointOwner != "" {
		return l.CheckpointOwner
	}
	return l.Owner
}

// WriteCheckpoint stores cp as the checkpoint of the lease held, resets its owner-switch
// count and clears its pending checkpoint. Like Java KCL 3.x's checkpoint it is a
// conditional update on the lease counter (held.Counter) that increments the counter, and
// like Renew it also requires the holder (held's checkpoint owner during a handoff,
// otherwise its owner) to still hold the lease. It returns the lease as stored after the
// write, whose counter the holder's next renewal or checkpoint must use; ErrLeaseLost when
// the lease changed hands (nothing is written). A holder that checkpoints and renews the
// same lease concurrently must serialize the two (Coordinator does), as each moves the
// counter the other conditions on.
func (s *Store) WriteCheckpoint(ctx context.Context, held Lease, cp checkpoint.Value) (Lease, error) {
	if cp.IsZero() {
		return Lease{}, s.fail("checkpoint", held.Key, fmt.Errorf("%w: empty checkpoint", ErrInvalidOption))
	}
	update := "SET #cp = :seq, #cps = :sub, #sw = :zero, #c = :next"
	remove := " REMOVE #pc, #pcs, #pst"
	values := map[string]types.AttributeValue{":seq": str(cp.SequenceNumber), ":sub": num(cp.SubSequenceNumber), ":zero": num(0)}
	if !cp.Timestamp.IsZero() {
		update += ", #cpt = :ts"
		values[":ts"] = num(cp.Timestamp.UnixMilli())
	} else {
		remove += ", #cpt"
	}
	return s.holderWrite(ctx, "checkpoint", held, update+remove, values, func(cur *Lease) bool {
		return cur.Checkpoint == cp && cur.PendingCheckpoint.IsZero()
	})
}

// WritePendingCheckpoint stores cp as the pending checkpoint of the lease held, with the
// application's state (removed when state is nil): a conditional update on the lease
// counter and holder that increments the counter, as WriteCheckpoint.
func (s *Store) WritePendingCheckpoint(ctx context.Context, held Lease, cp checkpoint.Value, state []byte) (Lease, error) {
	if cp.IsZero() {
		return Lease{}, s.fail("prepare", held.Key, fmt.Errorf("%w: empty checkpoint", ErrInvalidOption))
	}
	values := map[string]types.AttributeValue{":seq": str(cp.SequenceNumber), ":sub": num(cp.SubSequenceNumber)}
	update := "SET #pc = :seq, #pcs = :sub, #c = :next"
	if state != nil {
		update += ", #pst = :st"
		values[":st"] = &types.AttributeValueMemberB{Value: append([]byte(nil), state...)}
	} else {
		update += " REMOVE #pst"
	}
	return s.holderWrite(ctx, "prepare", held, update, values, func(cur *Lease) bool {
		return cur.PendingCheckpoint == cp && bytes.Equal(cur.PendingCheckpointState, state)
	})
}

// holderWrite runs a write of the lease's holder fenced by holderCondition, which sets
// the counter to held.Counter+1. When the condition fails it reads the lease once: a
// lease still held by the same worker one counter further on is either this write,
// applied by an attempt whose answer was lost (written reports it), or the holder's own
// renewal whose answer was lost (as Renew accepts it); the first is success, the second
// is retried once at the stored counter. A read that fails is returned (recheck).
// Anything else (a lease gone, at another counter or with another holder) is
// ErrLeaseLost.
func (s *Store) holderWrite(ctx context.Context, op string, held Lease, update string,
	values map[string]types.AttributeValue, written func(cur *Lease) bool) (Lease, error) {
	me := holderOf(&held)
	if me == "" {
		return Lease{}, s.fail(op, held.Key, fmt.Errorf("%w: no owner", ErrInvalidOption))
	}
	values[":me"] = str(me)
	for attempt := 0; ; attempt++ {
		values[":held"], values[":next"] = num(held.Counter), num(held.Counter+1)
		item, err := s.update(ctx, held.Key, update, holderCondition, values)
		if err == nil {
			return s.leaseFrom(op, held.Key, item)
		}
		if !isConditionFailed(err) {
			return Lease{}, s.fail(op, held.Key, err)
		}
		cur, err := s.recheck(ctx, op, held.Key)
		if err != nil {
			return Lease{}, err
		}
		if cur.Counter != held.Counter+1 || holderOf(&cur) != me {
			return Lease{}, s.fail(op, held.Key, ErrLeaseLost)
		}
		if written(&cur) {
			return cur, nil
		}
		if attempt > 0 {
			return Lease{}, s.fail(op, held.Key, ErrLeaseLost)
		}
		held = cur
	}
}

// UpdateChildShards records the child shards of a lease (at shard end, from the
// GetRecords response) so shard sync and cleanup can follow the lineage.
func (s *Store) UpdateChildShards(ctx context.Context, key string, children []string) error {
	if len(children) == 0 {
		return nil
	}
	_, err := s.update(ctx, key, "SET #ch = :ch", "attribute_exists(#k)",
		map[string]types.AttributeValue{":ch": strSet(children)})
	if err != nil {
		if isConditionFailed(err) {
			return s.fail("update-children", key, ErrNotFound)
		}
		return s.fail("update-children", key, err)
	}
	return nil
}
