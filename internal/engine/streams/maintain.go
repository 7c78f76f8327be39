package streams

import (
	"math/big"
	"time"

	"github.com/freshet/freshet/internal/hashkey"
)

// Maintain runs the periodic work now: it removes deleted streams and consumers whose
// delay has passed, drops records and closed shards past retention, and scales ON_DEMAND
// streams whose observation window has ended. The background loop calls it; tests on a
// manual clock call it after advancing the clock.
func (s *Service) Maintain() {
	now := s.clock.Now()
	s.mu.Lock()
	var live []*stream
	for name, st := range s.streams {
		st.mu.RLock()
		gone := st.deleting && !now.Before(st.goneAt)
		st.mu.RUnlock()
		if gone {
			delete(s.streams, name)
			continue
		}
		live = append(live, st)
	}
	s.mu.Unlock()
	for _, st := range live {
		s.maintainStream(st, now)
	}
	s.maintainQueues(now)
}

func (s *Service) maintainStream(st *stream, now time.Time) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for name, c := range st.consumers {
		if c.deleting && !now.Before(c.goneAt) {
			delete(st.consumers, name)
		}
	}
	if !st.deleting { // a deleted stream's bytes were released by deleteStream
		cutoff := now.Add(-st.retention).UnixNano()
		var dropped int64
		for _, sh := range st.shards {
			sh.mu.Lock()
			dropped += sh.trimLocked(cutoff)
			sh.mu.Unlock()
		}
		s.storedBytes.Add(-dropped)
	}
	if st.mode == modeOnDemand && s.cfg.OnDemandWindow > 0 && st.statusAt(now) == statusActive &&
		now.Sub(st.windowStart) >= s.cfg.OnDemandWindow {
		s.autoscaleLocked(st, now)
		st.windowStart = now
	}
}

// autoscaleLocked splits hot shards and merges cold adjacent pairs of an ON_DEMAND
// stream, based on the write traffic of the window that just ended. The caller holds
// st.mu exclusively.
func (s *Service) autoscaleLocked(st *stream, now time.Time) {
	secs := now.Sub(st.windowStart).Seconds()
	if secs <= 0 {
		return
	}
	type load struct {
		sh   *shard
		frac float64
		hot  bool
	}
	loads := make([]load, 0, len(st.open))
	for _, sh := range st.open {
		sh.mu.Lock()
		bf := float64(sh.winBytes) / secs / s.cfg.WriteBytesPerSecond
		rf := float64(sh.winRecords) / secs / s.cfg.WriteRecordsPerSecond
		f := max(bf, rf)
		hot := f >= s.cfg.OnDemandHotFraction || sh.winThrottled > 0
		sh.winBytes, sh.winRecords, sh.winThrottled = 0, 0, 0
		sh.mu.Unlock()
		loads = append(loads, load{sh: sh, frac: f, hot: hot})
	}
	split := false
	for _, l := range loads {
		if l.hot && canSplit(l.sh.rng) && s.checkShardLimit(1) == nil {
			s.splitLocked(st, l.sh, l.sh.rng.Midpoint().Add1(), now)
			split = true
		}
	}
	if split {
		return // merge only after a window without splits
	}
	floor := max(s.cfg.OnDemandShards, warmShards(st.warmMiBps))
	for i := 0; i+1 < len(loads) && len(st.open) > floor; i++ {
		a, b := loads[i], loads[i+1]
		if a.sh.closed() || b.sh.closed() || !adjacent(a.sh, b.sh) {
			continue
		}
		if a.frac < s.cfg.OnDemandColdFraction && b.frac < s.cfg.OnDemandColdFraction && !a.hot && !b.hot {
			s.mergeLocked(st, a.sh, b.sh, now)
			i++
		}
	}
}

func canSplit(r hashkey.Range) bool {
	return r.Start.Add1().Less(r.End)
}

// scaleUpToWarmLocked splits the widest open shards until the stream has the shards its
// warm throughput needs, or until the account's shard limit stops it: then it returns
// LimitExceededException, keeping the splits made. The caller holds st.mu exclusively.
func (s *Service) scaleUpToWarmLocked(st *stream, now time.Time) *APIError {
	want := warmShards(st.warmMiBps)
	for len(st.open) < want {
		if e := s.checkShardLimit(1); e != nil {
			return e
		}
		var widest *shard
		var wmax *big.Int
		for _, sh := range st.open {
			w := new(big.Int).Sub(sh.rng.End.Big(), sh.rng.Start.Big())
			if wmax == nil || w.Cmp(wmax) > 0 {
				widest, wmax = sh, w
			}
		}
		if widest == nil || !canSplit(widest.rng) {
			break
		}
		s.splitLocked(st, widest, widest.rng.Midpoint().Add1(), now)
	}
	return nil
}
