package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
	"github.com/freshet/freshet/lease/leasetest"
)

// TestStoreLeaderLock reads the leader lock as the elector writes it, in both layouts:
// none before any worker leads, then the holder, its record version (new with each
// heartbeat) and lease duration, then released.
func TestStoreLeaderLock(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	ctx := context.Background()
	for _, single := range []bool{false, true} {
		s := leasetest.NewStore(t, enginetest.DynamoDB(e), single)
		if _, err := s.LeaderLock(ctx); !errors.Is(err, lease.ErrNotFound) {
			t.Fatalf("single=%v: no lock yet: %v", single, err)
		}
		el, err := lease.NewLeaderElector(s, "w1", lease.WithLeaderLeaseDuration(6*time.Second, 2*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if lead, err := el.Tick(ctx); err != nil || !lead {
			t.Fatalf("single=%v: tick: %v %v", single, lead, err)
		}
		l, err := s.LeaderLock(ctx)
		if err != nil || l.Owner != "w1" || l.RecordVersion == "" || l.LeaseDuration != 6*time.Second || l.Released {
			t.Fatalf("single=%v: held lock %+v, %v", single, l, err)
		}
		if _, err := el.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		if l2, err := s.LeaderLock(ctx); err != nil || l2.Owner != "w1" || l2.RecordVersion == l.RecordVersion {
			t.Fatalf("single=%v: after a heartbeat %+v (before %+v), %v", single, l2, l, err)
		}
		if err := el.Release(ctx); err != nil {
			t.Fatal(err)
		}
		if l, err := s.LeaderLock(ctx); err != nil || !l.Released {
			t.Fatalf("single=%v: released lock %+v, %v", single, l, err)
		}
	}
}
