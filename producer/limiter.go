package producer

import (
	"time"

	"github.com/freshet/freshet/internal/retrypolicy"
)

// limiter is one shard's token buckets, for bytes and for Kinesis records, each refilled
// at a rate that is the smaller of the configured cap and an adaptive rate. The adaptive
// rate is unset (no limit) until the shard first throttles; it then starts from what the
// shard accepted over the last second, drops by a fixed fraction on each further throttle
// (at most once per decreaseGap) and grows back slowly while everything is accepted.
// Buckets may go into debt so a record larger than the burst still passes. A limiter is
// guarded by its shard's mutex.
type limiter struct {
	capBytes, capRecs     float64 // configured caps, 0 = none
	floorBytes, floorRecs float64 // adaptive rates never go below these
	adaptive              bool
	rateBytes, rateRecs   float64 // adaptive rates, 0 = unset
	tokBytes, tokRecs     float64
	last                  int64 // producer time of the last refill

	// accepted traffic, for the adaptive start rate
	winStart          int64
	winBytes, winRecs float64
	prevBytes         float64 // bytes/s of the previous full window
	prevRecs          float64
	lastDecrease      int64
	lastIncrease      int64

	// entries sent and failed (throttled or not) in this window and the previous one,
	// to tell sporadic failures from sustained ones (outcome)
	winSent, winFailed   int
	prevSent, prevFailed int
}

const (
	limiterBurst     = 0.25 // seconds of rate a bucket holds
	limiterDecrease  = 0.85 // factor applied on throttling
	limiterIncrease  = 0.05 // fraction of the rate added per second without throttling
	decreaseGap      = int64(200 * time.Millisecond)
	limiterWindowDur = int64(time.Second)
)

func (l *limiter) init(capBytes, capRecs, floorBytes, floorRecs float64, adaptive bool) {
	l.capBytes, l.capRecs, l.adaptive = capBytes, capRecs, adaptive
	l.floorBytes, l.floorRecs = floorBytes, floorRecs
	l.tokBytes = capBytes * limiterBurst
	l.tokRecs = capRecs * limiterBurst
}

func minRate(a, b float64) float64 {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	case a < b:
		return a
	}
	return b
}

func (l *limiter) rates() (bytes, recs float64) {
	return minRate(l.capBytes, l.rateBytes), minRate(l.capRecs, l.rateRecs)
}

// limited reports whether any bucket applies.
func (l *limiter) limited() bool {
	b, r := l.rates()
	return b > 0 || r > 0
}

func (l *limiter) refill(now int64) {
	if now <= l.last {
		return
	}
	dt := float64(now-l.last) / 1e9
	l.last = now
	rb, rr := l.rates()
	if rb > 0 {
		l.tokBytes = min(l.tokBytes+rb*dt, rb*limiterBurst)
	}
	if rr > 0 {
		l.tokRecs = min(l.tokRecs+rr*dt, max(rr*limiterBurst, 1))
	}
}

// ready reports whether a record may be taken now; otherwise it returns how long until
// one may.
func (l *limiter) ready(now int64) (bool, int64) {
	if !l.limited() {
		return true, 0
	}
	l.refill(now)
	rb, rr := l.rates()
	var wait float64
	if rb > 0 && l.tokBytes <= 0 {
		wait = max(wait, -l.tokBytes/rb+0.001)
	}
	if rr > 0 && l.tokRecs <= 0 {
		wait = max(wait, -l.tokRecs/rr+0.001)
	}
	if wait > 0 {
		return false, int64(wait * 1e9)
	}
	return true, 0
}

// take spends tokens for one Kinesis record of size bytes.
func (l *limiter) take(size int) {
	rb, rr := l.rates()
	if rb > 0 {
		l.tokBytes -= float64(size)
	}
	if rr > 0 {
		l.tokRecs--
	}
}

// refund gives back tokens of a record taken but not sent.
func (l *limiter) refund(size int) {
	rb, rr := l.rates()
	if rb > 0 {
		l.tokBytes += float64(size)
	}
	if rr > 0 {
		l.tokRecs++
	}
}

func (l *limiter) roll(now int64) {
	if l.winStart == 0 {
		l.winStart = now
		return
	}
	if d := now - l.winStart; d >= limiterWindowDur {
		secs := float64(d) / 1e9
		l.prevBytes, l.prevRecs = l.winBytes/secs, l.winRecs/secs
		l.prevSent, l.prevFailed = l.winSent, l.winFailed
		if d >= 2*limiterWindowDur {
			l.prevBytes, l.prevRecs = 0, 0
			l.prevSent, l.prevFailed = 0, 0
		}
		l.winStart, l.winBytes, l.winRecs = now, 0, 0
		l.winSent, l.winFailed = 0, 0
	}
}

// outcome records that the shard was sent sent entries in one call, of which throttled
// were throttled and failed failed otherwise, and reports whether its failures are
// sustained over this window and the previous one (retrypolicy.Policy.Saturated)
// rather than sporadic.
func (l *limiter) outcome(now int64, pol *retrypolicy.Policy, sent, throttled, failed int) bool {
	l.roll(now)
	l.winSent += sent
	l.winFailed += throttled + failed
	return pol.Saturated(l.winSent+l.prevSent, l.winFailed+l.prevFailed)
}

// accepted records that the shard took recs Kinesis records of bytes bytes in all.
func (l *limiter) accepted(now int64, bytes, recs int) {
	l.roll(now)
	l.winBytes += float64(bytes)
	l.winRecs += float64(recs)
	if !l.adaptive || l.rateBytes == 0 {
		return
	}
	if l.lastIncrease == 0 {
		l.lastIncrease = now
		return
	}
	if dt := float64(now-l.lastIncrease) / 1e9; dt > 0.01 {
		f := 1 + limiterIncrease*dt
		l.rateBytes *= f
		l.rateRecs *= f
		l.lastIncrease = now
	}
}

// throttled records a throttling answer from the shard.
func (l *limiter) throttled(now int64) {
	if !l.adaptive {
		return
	}
	l.roll(now)
	if l.rateBytes == 0 {
		// First throttle: start from what the shard accepted recently.
		cur := l.winBytes / max(float64(now-l.winStart)/1e9, 0.05)
		curR := l.winRecs / max(float64(now-l.winStart)/1e9, 0.05)
		l.rateBytes = max(max(l.prevBytes, cur), l.floorBytes)
		l.rateRecs = max(max(l.prevRecs, curR), l.floorRecs)
		l.tokBytes, l.tokRecs = 0, 0
		l.last = now
		l.lastDecrease, l.lastIncrease = now, now
		return
	}
	if now-l.lastDecrease < decreaseGap {
		return
	}
	l.rateBytes = max(l.rateBytes*limiterDecrease, l.floorBytes)
	l.rateRecs = max(l.rateRecs*limiterDecrease, l.floorRecs)
	l.tokBytes = min(l.tokBytes, 0)
	l.tokRecs = min(l.tokRecs, 0)
	l.lastDecrease, l.lastIncrease = now, now
}
