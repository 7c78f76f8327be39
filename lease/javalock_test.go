package lease_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/lease/leasetest"
)

// javaLock plays the leader election of a Java KCL 3.5.1 worker: its
// DynamoDBLockBasedLeaderDecider driving the DynamoDB lock client 1.4.0
// (awslabs/amazon-dynamodb-lock-client), with the requests that client sends, attribute
// for attribute, and its rules for reading the item and for expiry:
//
//   - the item: the table's key ("key" in the coordinator-state table, "leaseKey" in the
//     single-table layout) = "Leader", ownerName (S), leaseDuration (S, milliseconds),
//     recordVersionNumber (S, a UUID), data (B) when there is data, and the decider's
//     additional attributes (entityType S "LEADER"); isReleased (S "1") after a release
//     that keeps the item;
//   - acquiring: a PutItem of the whole item, conditional on attribute_not_exists(#pk)
//     for a new lock, on attribute_exists(#pk) AND #ir = :ir for a released one, and on
//     attribute_exists(#pk) AND #rvn = :rvn for an expired one;
//   - heartbeat: UpdateItem SET #ld = :ld, #rvn = :newRvn, conditional on
//     attribute_exists(#pk) AND #rvn = :rvn AND #on = :on; release: DeleteItem (the
//     default, deleteLockOnRelease) or UpdateItem SET #ir = :ir, on the same condition;
//   - reading (createLockItem, after a consistent GetItem): ownerName, leaseDuration and
//     recordVersionNumber must be strings (.s()), leaseDuration a Java long
//     (Long.parseLong), data if present a binary (.b()); isReleased counts by its
//     presence; every other attribute is kept as an additional attribute;
//   - expiry of another worker's lock (observedLockIsExpired): the record version seen
//     unchanged for more than its leaseDuration since the reader first saw it, on the
//     reader's clock.
type javaLock struct {
	t        *testing.T
	db       lease.DynamoDBAPI
	clk      *clock.Manual
	table    string
	pk       string
	owner    string
	duration time.Duration
	data     []byte // written with each acquisition when set

	rvn string // the record version of this worker's lock; empty when it holds none
	// The observation of another worker's lock: its record version and when first seen.
	seenRVN string
	seenAt  time.Time
}

// javaLockItem is a lock item as the Java lock client reads it.
type javaLockItem struct {
	owner      string
	duration   time.Duration
	rvn        string
	data       []byte
	released   bool
	additional map[string]types.AttributeValue
}

// parseJavaLock reads item as createLockItem does, failing where Java would throw (a
// missing or mistyped attribute, a lease duration that is no Java long).
func parseJavaLock(item map[string]types.AttributeValue, pk string) (javaLockItem, error) {
	rest := make(map[string]types.AttributeValue, len(item))
	for k, v := range item {
		rest[k] = v
	}
	var l javaLockItem
	if v, ok := rest["data"]; ok {
		b, isB := v.(*types.AttributeValueMemberB)
		if !isB {
			return l, fmt.Errorf("data is %T, not a binary", v)
		}
		l.data = b.Value
		delete(rest, "data")
	}
	s := func(name string) (string, error) {
		v, ok := rest[name]
		delete(rest, name)
		if sv, isS := v.(*types.AttributeValueMemberS); ok && isS {
			return sv.Value, nil
		}
		return "", fmt.Errorf("%s is %T, not a string", name, v)
	}
	var err error
	if l.owner, err = s("ownerName"); err != nil {
		return l, err
	}
	ld, err := s("leaseDuration")
	if err != nil {
		return l, err
	}
	ms, err := strconv.ParseInt(ld, 10, 64) // Long.parseLong: decimal digits, optional sign
	if err != nil {
		return l, fmt.Errorf("leaseDuration %q: %w", ld, err)
	}
	l.duration = time.Duration(ms) * time.Millisecond
	if l.rvn, err = s("recordVersionNumber"); err != nil {
		return l, err
	}
	_, l.released = rest["isReleased"]
	delete(rest, "isReleased")
	delete(rest, pk)
	l.additional = rest
	return l, nil
}

func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

func (j *javaLock) key() map[string]types.AttributeValue {
	return map[string]types.AttributeValue{j.pk: &types.AttributeValueMemberS{Value: "Leader"}}
}

// read returns the lock item as the Java client reads it; ok is false when there is none.
func (j *javaLock) read(ctx context.Context) (javaLockItem, bool) {
	j.t.Helper()
	out, err := j.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(j.table), Key: j.key(), ConsistentRead: aws.Bool(true)})
	if err != nil {
		j.t.Fatal(err)
	}
	if len(out.Item) == 0 {
		return javaLockItem{}, false
	}
	l, err := parseJavaLock(out.Item, j.pk)
	if err != nil {
		j.t.Fatalf("the Java lock client cannot read the lock item %v: %v", out.Item, err)
	}
	return l, true
}

// tryAcquire is one isLeader call of a worker that does not hold the lock (tryAcquireLock
// with shouldSkipBlockingWait): it reports whether the worker leads afterwards.
func (j *javaLock) tryAcquire(ctx context.Context) bool {
	j.t.Helper()
	l, exists := j.read(ctx)
	names := map[string]string{"#pk": j.pk}
	values := map[string]types.AttributeValue{}
	var cond string
	switch {
	case !exists:
		cond = "attribute_not_exists(#pk)"
	case l.released:
		cond = "attribute_exists(#pk) AND #ir = :ir"
		names["#ir"] = "isReleased"
		values[":ir"] = &types.AttributeValueMemberS{Value: "1"}
	default:
		now := j.clk.Now()
		if l.rvn != j.seenRVN {
			j.seenRVN, j.seenAt = l.rvn, now
			return false
		}
		if now.Sub(j.seenAt) <= l.duration {
			return false
		}
		cond = "attribute_exists(#pk) AND #rvn = :rvn"
		names["#rvn"] = "recordVersionNumber"
		values[":rvn"] = &types.AttributeValueMemberS{Value: l.rvn}
	}
	data := j.data
	if exists && l.data != nil {
		data = l.data // the client keeps the existing data unless told to replace it
	}
	next := newUUID()
	item := map[string]types.AttributeValue{
		"entityType":          &types.AttributeValueMemberS{Value: "LEADER"},
		j.pk:                  &types.AttributeValueMemberS{Value: "Leader"},
		"ownerName":           &types.AttributeValueMemberS{Value: j.owner},
		"leaseDuration":       &types.AttributeValueMemberS{Value: strconv.FormatInt(j.duration.Milliseconds(), 10)},
		"recordVersionNumber": &types.AttributeValueMemberS{Value: next},
	}
	if data != nil {
		item["data"] = &types.AttributeValueMemberB{Value: data}
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(j.table), Item: item, ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names}
	if len(values) > 0 {
		in.ExpressionAttributeValues = values
	}
	if _, err := j.db.PutItem(ctx, in); err != nil {
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return false
		}
		j.t.Fatal(err)
	}
	j.rvn, j.seenRVN = next, ""
	return true
}

// ownerCondition is the condition of the client's heartbeats and releases.
func (j *javaLock) ownerCondition() (string, map[string]string, map[string]types.AttributeValue) {
	return "attribute_exists(#pk) AND #rvn = :rvn AND #on = :on",
		map[string]string{"#pk": j.pk, "#rvn": "recordVersionNumber", "#on": "ownerName"},
		map[string]types.AttributeValue{":rvn": &types.AttributeValueMemberS{Value: j.rvn}, ":on": &types.AttributeValueMemberS{Value: j.owner}}
}

// heartbeat is sendHeartbeat: it reports whether the lock is still this worker's.
func (j *javaLock) heartbeat(ctx context.Context) bool {
	j.t.Helper()
	cond, names, values := j.ownerCondition()
	next := newUUID()
	names["#ld"] = "leaseDuration"
	values[":ld"] = &types.AttributeValueMemberS{Value: strconv.FormatInt(j.duration.Milliseconds(), 10)}
	values[":newRvn"] = &types.AttributeValueMemberS{Value: next}
	_, err := j.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(j.table), Key: j.key(),
		UpdateExpression: aws.String("SET #ld = :ld, #rvn = :newRvn"), ConditionExpression: aws.String(cond),
		ExpressionAttributeNames: names, ExpressionAttributeValues: values})
	var ccf *types.ConditionalCheckFailedException
	switch {
	case errors.As(err, &ccf):
		j.rvn = ""
		return false
	case err != nil:
		j.t.Fatal(err)
	}
	j.rvn = next
	return true
}

// release is releaseLock: a delete of the item (KCL's default) or, with keep, isReleased.
func (j *javaLock) release(ctx context.Context, keep bool) {
	j.t.Helper()
	cond, names, values := j.ownerCondition()
	var err error
	if keep {
		names["#ir"] = "isReleased"
		values[":ir"] = &types.AttributeValueMemberS{Value: "1"}
		_, err = j.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: aws.String(j.table), Key: j.key(),
			UpdateExpression: aws.String("SET #ir = :ir"), ConditionExpression: aws.String(cond),
			ExpressionAttributeNames: names, ExpressionAttributeValues: values})
	} else {
		_, err = j.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(j.table), Key: j.key(),
			ConditionExpression: aws.String(cond), ExpressionAttributeNames: names, ExpressionAttributeValues: values})
	}
	if err != nil {
		j.t.Fatal(err)
	}
	j.rvn = ""
}

// javaLockSim is a Freshet worker f, wired as consumer.Worker wires it (its elector
// fences on the lock through its self-fencing Reporter, its Assigner follows the
// elector; failover time 10 s, lock 6.67 s, heartbeats every 3.33 s, reports every
// 2.5 s, rounds every 500 ms while it leads), beside a Java worker j (lock lease 120 s,
// heartbeats every 30 s) that holds one lease, advanced in 100 ms ticks on one clock.
type javaLockSim struct {
	t       *testing.T
	ctx     context.Context
	clk     *clock.Manual
	store   *lease.Store
	j       *javaLock
	e       *lease.LeaderElector
	r       *lease.Reporter
	a       *lease.Assigner
	jLease  string
	f       *simWorker
	i       int
	fLeads  time.Time // when f last began to lead
	jBeats  bool      // j heartbeats every 30 s while it holds the lock
	nextJ   time.Time
	jLeader bool
}

const javaLockDuration, javaLockBeat = 120 * time.Second, 30 * time.Second

func newJavaLockSim(t *testing.T, single bool) *javaLockSim {
	t.Helper()
	e := enginetest.Start(t, engine.Config{})
	db := enginetest.DynamoDB(e)
	st := leasetest.NewStore(t, db, single)
	clk := clock.NewManual(epoch)
	tables := st.Tables()
	table, pk := tables.CoordinatorState, "key"
	if tables.SingleTable {
		table, pk = tables.Lease, "leaseKey"
	}
	s := &javaLockSim{t: t, ctx: context.Background(), clk: clk, store: st,
		j: &javaLock{t: t, db: db, clk: clk, table: table, pk: pk, owner: "java", duration: javaLockDuration}}
	if !single {
		s.j.data = []byte("lock data") // the client's optional data attribute
	}
	var err error
	if s.r, err = lease.NewReporter(st, "f", lease.WithClock(clk), lease.WithSelfFence(simFailover),
		lease.WithReportIntervals(time.Second, simFailover/4)); err != nil {
		t.Fatal(err)
	}
	if s.e, err = lease.NewLeaderElector(st, "f", lease.WithClock(clk), lease.WithLeaderLeaseDuration(simLock, simBeat),
		lease.WithLeaderFence(s.r)); err != nil {
		t.Fatal(err)
	}
	if s.a, err = lease.NewAssigner(st, lease.WithClock(clk), lease.WithFailoverTime(simFailover),
		lease.WithLeaderElector(s.e)); err != nil {
		t.Fatal(err)
	}
	s.jLease = takeNewLeases(t, s.ctx, st, "java", 1, map[string]lease.Lease{})[0]
	s.f = &simWorker{e: s.e, r: s.r, a: s.a, next: [2]time.Time{clk.Now(), clk.Now()}}
	return s
}

// tick advances the clock by 100 ms and runs what is due: j's heartbeat, f's election
// tick, f's report and, while f leads, an assignment round every fifth tick.
func (s *javaLockSim) tick() {
	s.t.Helper()
	s.i++
	s.clk.Advance(100 * time.Millisecond)
	now := s.clk.Now()
	if s.jLeader && s.jBeats && !now.Before(s.nextJ) {
		s.nextJ = now.Add(javaLockBeat)
		s.jLeader = s.j.heartbeat(s.ctx)
	}
	if s.f.step(s.t, s.ctx, now, s.i%5 == 0) {
		s.fLeads = now
	}
}

// until ticks until done reports true, failing after d.
func (s *javaLockSim) until(d time.Duration, what string, done func() bool) {
	s.t.Helper()
	for end := s.clk.Now().Add(d); !done(); s.tick() {
		if !s.clk.Now().Before(end) {
			s.t.Fatalf("not within %v: %s", d, what)
		}
	}
}

// javaAcquires makes j take the lock (a new item) and heartbeat; f then watches it.
func (s *javaLockSim) javaAcquires() {
	s.t.Helper()
	if !s.j.tryAcquire(s.ctx) {
		s.t.Fatal("the Java worker could not create the lock")
	}
	s.jLeader, s.jBeats, s.nextJ = true, true, s.clk.Now().Add(javaLockBeat)
}

// TestJavaLeaderLock: Freshet's leader election and its lock fence beside Java KCL's
// lock, in both layouts. While a Java worker holds the lock and heartbeats, Freshet never
// leads; once the Java worker stops, Freshet takes the lock only after the record version
// stood still for Java's lease duration (120 s, read from the item) on its own clock, and
// leaves the Java leader's lease to expire by its counter rather than taking it with the
// lock (the Java lock carries no freshetLeaderFence). After a Java release (the item
// deleted, or kept with isReleased) Freshet takes the lock at its next look, without
// waiting. The reverse: the item Freshet writes is one the Java client reads (its
// required attributes, their types, the extra attributes kept aside), honours while
// Freshet heartbeats, takes over on expiry by its own rule and takes at once after
// Freshet's release.
func TestJavaLeaderLock(t *testing.T) {
	for _, single := range []bool{false, true} {
		layout := map[bool]string{false: "three tables", true: "single table"}[single]
		t.Run(layout+"/Java holds, then stops", func(t *testing.T) {
			s := newJavaLockSim(t, single)
			s.javaAcquires()
			for end := s.clk.Now().Add(4 * time.Minute); s.clk.Now().Before(end); s.tick() {
				if s.e.IsLeader() {
					t.Fatalf("Freshet leads at %v while Java heartbeats", s.clk.Now().Sub(epoch))
				}
			}
			if leader, err := s.e.Leader(s.ctx); err != nil || leader != "java" {
				t.Fatalf("leader %q, %v", leader, err)
			}
			if s.e.LeaderHints() {
				t.Fatal("a follower of a Java leader expects discovery hints")
			}
			// The Java worker dies after its last heartbeat: its record version stands still.
			lastBeat := s.nextJ.Add(-javaLockBeat)
			s.jBeats = false
			s.until(javaLockDuration+simLock, "Freshet takes the expired Java lock", s.e.IsLeader)
			// Java's rule: the version unchanged for its lease duration since the reader
			// first saw it, which is no earlier than the heartbeat that wrote it; the
			// reader looks again at least every watch period (the heartbeat period plus
			// up to 2 s).
			if took := s.fLeads.Sub(lastBeat); took < javaLockDuration || took > javaLockDuration+simBeat+2*time.Second+time.Second {
				t.Fatalf("Freshet took the Java lock %v after its last heartbeat (Java's lease %v)", took, javaLockDuration)
			}
			item, ok := s.j.read(s.ctx)
			if !ok || item.owner != "f" || item.released || item.duration != simLock.Truncate(time.Millisecond) {
				t.Fatalf("lock after the takeover, as Java reads it: %+v (present %v)", item, ok)
			}
			if _, kept := item.additional["freshetLeaderFence"]; !kept {
				t.Fatalf("Freshet's lock lacks its fence marker: %+v", item.additional)
			}
			// The Java leader's lease: no fence marker on its lock, so the new leader
			// takes it only once its counter stood still for the failover time from its
			// own first sight of it (its first round as leader).
			var moved time.Time
			s.until(3*simFailover, "the dead Java leader's lease is taken", func() bool {
				l, err := s.store.Get(s.ctx, s.jLease)
				if err != nil {
					t.Fatal(err)
				}
				if l.Owner != "java" {
					moved = s.clk.Now()
					return true
				}
				return false
			})
			if after := moved.Sub(s.fLeads); after < simFailover {
				t.Fatalf("the Java leader's lease was taken %v after Freshet took its lock, before the failover time %v", after, simFailover)
			}
		})
		for _, keep := range []bool{false, true} {
			how := map[bool]string{false: "deleted", true: "kept, isReleased"}[keep]
			t.Run(layout+"/after a Java release ("+how+")", func(t *testing.T) {
				s := newJavaLockSim(t, single)
				s.javaAcquires()
				for end := s.clk.Now().Add(time.Minute); s.clk.Now().Before(end); s.tick() {
				}
				if s.e.IsLeader() {
					t.Fatal("Freshet leads while Java heartbeats")
				}
				s.j.release(s.ctx, keep)
				s.jLeader = false
				released := s.clk.Now()
				s.until(simBeat+2*time.Second+time.Second, "Freshet takes the released Java lock", s.e.IsLeader)
				item, ok := s.j.read(s.ctx)
				if !ok || item.owner != "f" || item.released {
					t.Fatalf("lock after the takeover, as Java reads it: %+v (present %v)", item, ok)
				}
				t.Logf("Freshet led %v after the Java release", s.fLeads.Sub(released))
				// Nothing was taken with the lock: the Java worker's lease stays its own
				// until its counter expires.
				for end := s.fLeads.Add(simFailover - time.Second); s.clk.Now().Before(end); s.tick() {
				}
				if l, err := s.store.Get(s.ctx, s.jLease); err != nil || l.Owner != "java" {
					t.Fatalf("the Java worker's lease moved with a released lock: %+v, %v", l, err)
				}
			})
		}
		t.Run(layout+"/Java reads Freshet's lock", func(t *testing.T) {
			s := newJavaLockSim(t, single)
			s.until(simBeat, "Freshet creates the lock", s.e.IsLeader)
			item, ok := s.j.read(s.ctx)
			if !ok {
				t.Fatal("no lock item")
			}
			if item.owner != "f" || item.rvn == "" || item.released || item.data != nil ||
				item.duration != simLock.Truncate(time.Millisecond) {
				t.Fatalf("Freshet's lock as Java reads it: %+v", item)
			}
			for _, a := range []string{"freshetLeaderFence", "freshetLeaderHints", "entityType"} {
				if _, ok := item.additional[a]; !ok {
					t.Fatalf("additional attributes %v lack %s", item.additional, a)
				}
			}
			// While Freshet heartbeats, Java never takes the lock.
			for end := s.clk.Now().Add(time.Minute); s.clk.Now().Before(end); s.tick() {
				if s.j.tryAcquire(s.ctx) {
					t.Fatalf("Java took the lock at %v while Freshet heartbeats", s.clk.Now().Sub(epoch))
				}
			}
			// Freshet stops: Java takes the lock once the version stood still for
			// Freshet's lease duration on its own clock, and replaces the whole item.
			var lastRVN string
			if l, ok := s.j.read(s.ctx); ok {
				lastRVN = l.rvn
			}
			stopped := s.clk.Now()
			for !s.j.tryAcquire(s.ctx) {
				s.clk.Advance(100 * time.Millisecond)
				if s.clk.Since(stopped) > 2*simLock {
					t.Fatal("Java never took the expired Freshet lock")
				}
			}
			if took := s.clk.Since(stopped); took > simLock+time.Second {
				t.Fatalf("Java took Freshet's lock %v after Freshet stopped, not by the lease duration Freshet wrote (%v)", took, simLock)
			}
			item, _ = s.j.read(s.ctx)
			if item.owner != "java" || item.rvn == lastRVN || string(item.data) != string(s.j.data) {
				t.Fatalf("Java's lock: %+v", item)
			}
			if _, marked := item.additional["freshetLeaderFence"]; marked {
				t.Fatal("Java's takeover kept Freshet's fence marker")
			}
			// Freshet wakes: its heartbeat fails, it follows the Java leader and does not
			// take the lock back while Java heartbeats.
			s.jLeader, s.jBeats, s.nextJ = true, true, s.clk.Now()
			for end := s.clk.Now().Add(time.Minute); s.clk.Now().Before(end); s.tick() {
				if s.e.IsLeader() && s.clk.Since(stopped) > simLock {
					t.Fatalf("Freshet leads at %v beside the Java leader", s.clk.Now().Sub(epoch))
				}
			}
			if s.e.LeaderHints() {
				t.Fatal("Freshet expects hints from a Java leader")
			}
			// Java releases; Freshet leads again, and after Freshet's own release Java's
			// client takes the released lock at once.
			s.j.release(s.ctx, false)
			s.jLeader = false
			s.until(simBeat+3*time.Second, "Freshet takes the released lock", s.e.IsLeader)
			if err := s.e.Release(s.ctx); err != nil {
				t.Fatal(err)
			}
			item, ok = s.j.read(s.ctx)
			if !ok || !item.released || item.owner != "f" {
				t.Fatalf("Freshet's released lock as Java reads it: %+v (present %v)", item, ok)
			}
			if !s.j.tryAcquire(s.ctx) {
				t.Fatal("Java did not take Freshet's released lock at once")
			}
			if item, _ := s.j.read(s.ctx); item.owner != "java" || item.released {
				t.Fatalf("lock after Java took the released one: %+v", item)
			}
		})
	}
}
