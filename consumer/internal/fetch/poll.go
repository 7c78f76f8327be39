package fetch

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/kinesiswire"
	"github.com/freshet/freshet/internal/retrypolicy"
)

// PollingAPI is the part of *kinesis.Client a polling fetcher uses.
type PollingAPI interface {
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, optFns ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// PollingConfig configures a polling fetcher.
type PollingConfig struct {
	// StreamName or StreamARN names the stream (the ARN wins when both are set).
	StreamName string
	StreamARN  string
	// ShardID is the shard read.
	ShardID string
	// Start is where reading starts.
	Start Position
	// MaxRecords is GetRecords' Limit (1..10000).
	MaxRecords int32
	// Prefetch is how many batches may wait for the shard consumer (at least 1).
	Prefetch int
	// IdleTime is the pause after a call returned no record at the tip of the shard.
	IdleTime time.Duration
	// Retry decides which failures are retried and how long each retry waits
	// (NewPolicy).
	Retry retrypolicy.Policy
	// Clock drives every pause; clock.Real() when nil.
	Clock clock.Clock
	// Logger receives debug logs; no-op when nil.
	Logger *zap.Logger
	// CBOR, while set, sends GetRecords in the Kinesis CBOR protocol (raw record bytes,
	// no base64) when the client is a *kinesis.Client; nil means never. It may be shared
	// by the pollers of a worker: the first to get a CBOR response it cannot decode
	// clears it, and every poller reads in JSON from then on.
	CBOR *atomic.Bool
	// Budget, when set, bounds the bytes fetched and not yet processed across the
	// worker's shards: no GetRecords call starts while it is exhausted.
	Budget *Budget
}

type result struct {
	batch Batch
	err   error
}

// firstLimit is the GetRecords limit of a poller's first call.
const firstLimit = 500

// Poller is a Fetcher that calls GetRecords in a loop.
type Poller struct {
	api PollingAPI
	cfg PollingConfig
	handoff
}

// NewPoller starts polling cfg.ShardID with api. The goroutine lives until Close, a
// fatal error, the shard's end, or ctx ends.
func NewPoller(ctx context.Context, api PollingAPI, cfg PollingConfig) (*Poller, error) {
	if api == nil {
		return nil, errors.New("fetch: nil Kinesis API")
	}
	if cfg.ShardID == "" || (cfg.StreamName == "" && cfg.StreamARN == "") {
		return nil, errors.New("fetch: stream and shard are required")
	}
	if cfg.MaxRecords <= 0 || cfg.MaxRecords > 10000 {
		return nil, fmt.Errorf("fetch: MaxRecords %d outside 1..10000", cfg.MaxRecords)
	}
	if cfg.Prefetch < 1 {
		cfg.Prefetch = 1
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(ctx)
	p := &Poller{api: api, cfg: cfg, handoff: newHandoff(cfg.Prefetch, cancel, cfg.Budget)}
	go p.run(ctx)
	return p, nil
}

func (p *Poller) streamArgs() (name, arn *string) {
	if p.cfg.StreamARN != "" {
		return nil, aws.String(p.cfg.StreamARN)
	}
	return aws.String(p.cfg.StreamName), nil
}

func (p *Poller) iterator(ctx context.Context, pos Position) (*string, error) {
	name, arn := p.streamArgs()
	in := &kinesis.GetShardIteratorInput{
		StreamName:        name,
		StreamARN:         arn,
		ShardId:           aws.String(p.cfg.ShardID),
		ShardIteratorType: pos.Type,
	}
	switch pos.Type {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		in.StartingSequenceNumber = aws.String(pos.SequenceNumber)
	case types.ShardIteratorTypeAtTimestamp:
		in.Timestamp = aws.Time(pos.Timestamp)
	}
	out, err := p.api.GetShardIterator(ctx, in)
	if err != nil {
		return nil, err
	}
	return out.ShardIterator, nil
}

func (p *Poller) fail(ctx context.Context, op string, err error) {
	p.emit(ctx, result{err: &Error{Op: op, ShardID: p.cfg.ShardID, Err: err}})
}

func (p *Poller) run(ctx context.Context) {
	defer p.stopped()
	clk, log := p.cfg.Clock, p.cfg.Logger
	pos := p.cfg.Start
	lastSeq := ""
	var iter *string
	attempt := 0
	// The first calls ask for fewer records, so the first batch arrives (and the
	// processor starts) before a whole 10 MiB response has been read; the limit doubles
	// with every full batch up to MaxRecords.
	limit := min(p.cfg.MaxRecords, firstLimit)
	for ctx.Err() == nil {
		if iter == nil {
			start := pos
			if lastSeq != "" {
				start = Position{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: lastSeq}
			}
			it, err := p.iterator(ctx, start)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				act, class := decide(p.cfg.Retry, err)
				if act != retrypolicy.Retry && act != retrypolicy.NewIterator {
					p.fail(ctx, "GetShardIterator", err)
					return
				}
				_ = clock.Sleep(ctx, clk, p.cfg.Retry.Delay(class, attempt))
				attempt++
				log.Debug("get shard iterator failed", zap.String("shard", p.cfg.ShardID), zap.Error(err))
				continue
			}
			if it == nil {
				// A closed shard read past its end: nothing more will come.
				p.emit(ctx, result{batch: Batch{ShardEnd: true}})
				return
			}
			iter = it
			attempt = 0
		}
		var opts []func(*kinesis.Options)
		cbor := p.cfg.CBOR != nil && p.cfg.CBOR.Load()
		if cbor {
			opts = append(opts, kinesiswire.UseCBOR)
		}
		if !p.budget.wait(ctx) {
			return
		}
		callStart := clk.Now()
		out, err := p.api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(limit)}, opts...)
		callTime := clk.Since(callStart)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			var nce *kinesiswire.NotCBORError
			if cbor && errors.As(err, &nce) {
				if p.cfg.CBOR.CompareAndSwap(true, false) {
					log.Warn("consumer: GetRecords not answered in CBOR; reading in JSON from now on",
						zap.String("shard", p.cfg.ShardID), zap.Error(err))
				}
				// The iterator is still good: the same read again, in JSON.
				continue
			}
			act, class := decide(p.cfg.Retry, err)
			switch act {
			case retrypolicy.NewIterator:
				iter = nil
				log.Debug("shard iterator expired", zap.String("shard", p.cfg.ShardID))
				continue
			case retrypolicy.Retry:
				_ = clock.Sleep(ctx, clk, p.cfg.Retry.Delay(class, attempt))
			default:
				p.fail(ctx, "GetRecords", err)
				return
			}
			attempt++
			continue
		}
		attempt = 0
		b := Batch{Records: out.Records, ChildShards: out.ChildShards, Bytes: batchBytes(out.Records), CallTime: max(callTime, 1)}
		if out.MillisBehindLatest != nil {
			b.MillisBehindLatest = *out.MillisBehindLatest
		}
		if n := len(out.Records); n > 0 {
			lastSeq = aws.ToString(out.Records[n-1].SequenceNumber)
			if int32(n) >= limit {
				limit = min(p.cfg.MaxRecords, 2*limit)
			}
		}
		iter = out.NextShardIterator
		if iter == nil {
			b.ShardEnd = true
			p.emit(ctx, result{batch: b})
			return
		}
		if len(b.Records) > 0 {
			if !p.emit(ctx, result{batch: b}) {
				return
			}
			continue
		}
		if b.MillisBehindLatest > 0 {
			// Empty but behind: the shard has a gap; read on at once.
			continue
		}
		// At the tip: report the lag so the consumer sees it, then idle.
		select {
		case p.out <- result{batch: b}:
		default:
		}
		if clock.Sleep(ctx, clk, p.cfg.IdleTime) != nil {
			return
		}
	}
}
