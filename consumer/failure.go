package consumer

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/freshet/freshet/checkpoint"
	"github.com/freshet/freshet/internal/retrypolicy"
)

// Metric names of the failure policy and the lanes (Freshet's own: the KCL has neither).
const (
	// MetricRecordsRetried counts the records handed to the handler again after a
	// failed call (per shard).
	MetricRecordsRetried = "RecordsRetried"
	// MetricBatchesBisected counts the failing batches split in two (per shard).
	MetricBatchesBisected = "BatchesBisected"
	// MetricRecordsToDestination counts the records stored in the failure policy's
	// destination (per shard).
	MetricRecordsToDestination = "RecordsSentToDestination"
	// MetricDestinationFailures counts failed Destination.Send calls, which are retried.
	MetricDestinationFailures = "DestinationSend.Failure"
	// MetricLaneQueueDepth is how many user records of the shard are queued in its lanes
	// or being handled, observed at each dispatch and each finished call.
	MetricLaneQueueDepth = "LaneQueueDepth"
	// MetricOldestUnfinishedAge is the age (now - ApproximateArrivalTimestamp) of the
	// shard's oldest record delivered but neither handled nor sent to the destination;
	// 0 when there is none. With lanes it is the lag MillisBehindLatest cannot show.
	MetricOldestUnfinishedAge = "OldestUnfinishedRecordAge"
)

// errStopped is how a policy run reports that it stopped before every record was done
// (shutdown, lease lost or worker abort).
var errStopped = errors.New("consumer: processing stopped")

// policyRunner applies a shard's failure policy to the records handed to it: it calls
// the handler, retries with backoff, bisects, sends what exhausts the policy to the
// destination, and reports progress as the number of leading records finished.
type policyRunner struct {
	sc  *shardConsumer
	pol FailurePolicy
	// stop ends retries (shutdown requested, lease lost, worker aborted); a call in
	// progress finishes with ctx.
	stop <-chan struct{}
}

// segment is a part of the records being run: [lo, hi) with the failed attempts of its
// current head and those of the larger batches it was split from.
type segment struct {
	lo, hi   int
	attempts int
	prior    int
}

func (r *policyRunner) stopped() bool {
	select {
	case <-r.stop:
		return true
	default:
		return false
	}
}

// pause waits d unless the run is stopped first.
func (r *policyRunner) pause(d int) bool {
	b := retrypolicy.Backoff{Min: r.pol.Backoff, Max: r.pol.MaxBackoff}
	select {
	case <-r.sc.env.cfg.clock.After(b.Delay(d)):
		return true
	case <-r.stop:
		return false
	}
}

// run hands recs to call until every record succeeded or reached the destination, and
// reports after each step how many leading records are finished. It returns nil when all
// are, errStopped when the run was stopped first, and an error matching
// checkpoint.ErrLeaseLost when call reported a lost lease.
func (r *policyRunner) run(ctx context.Context, recs []Record, call func(ctx context.Context, recs []Record, attempt int) error, done func(n int)) error {
	sc := r.sc
	stack := []segment{{lo: 0, hi: len(recs)}}
	var lastErr error
	for len(stack) > 0 {
		s := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		for s.lo < s.hi {
			if r.stopped() || ctx.Err() != nil {
				return errStopped
			}
			if n := r.expired(recs[s.lo:s.hi]); n > 0 {
				if err := r.giveUp(ctx, recs[s.lo:s.lo+n], ReasonMaxRecordAge, s.prior+s.attempts, lastErr); err != nil {
					return err
				}
				s.lo += n
				done(s.lo)
				continue
			}
			err := call(ctx, recs[s.lo:s.hi], s.prior+s.attempts)
			if err == nil {
				s.lo = s.hi
				done(s.lo)
				break
			}
			if errors.Is(err, checkpoint.ErrLeaseLost) {
				return err
			}
			if ctx.Err() != nil {
				return errStopped
			}
			var pf *PartialFailureError
			named := errors.As(err, &pf) && pf.Index >= 0 && pf.Index < s.hi-s.lo
			if named {
				if pf.Index > 0 {
					// Progress: the attempts count for the new head record only.
					s.lo += pf.Index
					s.prior, s.attempts = 0, 0
					done(s.lo)
				}
			}
			lastErr = err
			s.attempts++
			sc.env.metrics.Record(MetricRecordsRetried, UnitCount, float64(s.hi-s.lo), sc.dims...)
			if r.pol.MaxAttempts > 0 && s.attempts >= r.pol.MaxAttempts {
				if named {
					// The handler named the failing record: only it is given up.
					if err := r.giveUp(ctx, recs[s.lo:s.lo+1], ReasonMaxAttempts, s.prior+s.attempts, err); err != nil {
						return err
					}
					s.lo++
					s.prior, s.attempts = 0, 0
					done(s.lo)
					continue
				}
				if r.pol.BisectOnError && s.hi-s.lo > 1 {
					mid := s.lo + (s.hi-s.lo)/2
					prior := s.prior + s.attempts
					stack = append(stack, segment{lo: mid, hi: s.hi, prior: prior})
					s = segment{lo: s.lo, hi: mid, prior: prior}
					sc.env.metrics.Record(MetricBatchesBisected, UnitCount, 1, sc.dims...)
					continue
				}
				if err := r.giveUp(ctx, recs[s.lo:s.hi], ReasonMaxAttempts, s.prior+s.attempts, err); err != nil {
					return err
				}
				s.lo = s.hi
				done(s.lo)
				break
			}
			sc.env.log.Warn("consumer: handler failed; retrying", zap.String("shard", sc.shard.LeaseKey),
				zap.Int("records", s.hi-s.lo), zap.Int("attempt", s.attempts), zap.Error(err))
			if !r.pause(s.attempts - 1) {
				return errStopped
			}
		}
	}
	return nil
}

// expired returns how many leading records are older than the policy's maximum age.
func (r *policyRunner) expired(recs []Record) int {
	if r.pol.MaxRecordAge <= 0 {
		return 0
	}
	cutoff := r.sc.env.cfg.clock.Now().Add(-r.pol.MaxRecordAge)
	n := 0
	for n < len(recs) && !recs[n].ApproximateArrivalTimestamp.IsZero() && recs[n].ApproximateArrivalTimestamp.Before(cutoff) {
		n++
	}
	return n
}

// giveUp stores recs in the destination, retrying for as long as the run is not stopped.
func (r *policyRunner) giveUp(ctx context.Context, recs []Record, reason FailureReason, attempts int, cause error) error {
	sc := r.sc
	now := sc.env.cfg.clock.Now()
	msg := ""
	if cause != nil {
		msg = cause.Error()
	}
	frs := make([]FailedRecord, len(recs))
	for i := range recs {
		rec := &recs[i]
		frs[i] = FailedRecord{Stream: sc.shard.StreamName, ShardID: sc.shard.ShardID, SequenceNumber: rec.SequenceNumber,
			SubSequenceNumber: rec.SubSequenceNumber, PartitionKey: rec.PartitionKey, ExplicitHashKey: rec.ExplicitHashKey,
			ApproximateArrivalTimestamp: rec.ApproximateArrivalTimestamp, Attempts: attempts, Reason: reason, Error: msg,
			FailedAt: now, Data: rec.Data}
	}
	for try := 0; ; try++ {
		err := r.pol.Destination.Send(ctx, frs)
		if err == nil {
			sc.env.metrics.Record(MetricRecordsToDestination, UnitCount, float64(len(frs)), sc.dims...)
			sc.env.log.Warn("consumer: records sent to the failure destination", zap.String("shard", sc.shard.LeaseKey),
				zap.Int("records", len(frs)), zap.String("reason", string(reason)), zap.String("first", recs[0].SequenceNumber),
				zap.Int64("firstSub", recs[0].SubSequenceNumber), zap.Int("attempts", attempts))
			return nil
		}
		sc.env.metrics.Record(MetricDestinationFailures, UnitCount, 1, sc.dims...)
		if ctx.Err() != nil {
			return errStopped
		}
		sc.env.log.Warn("consumer: sending to the failure destination failed; retrying", zap.String("shard", sc.shard.LeaseKey),
			zap.Int("records", len(frs)), zap.Error(err))
		if !r.pause(try) {
			return errStopped
		}
	}
}
