package fetch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"
	"go.uber.org/zap"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/retrypolicy"
)

// EventStream is the reader of one SubscribeToShard call (kinesis.SubscribeToShardEventStream
// satisfies it).
type EventStream interface {
	Events() <-chan types.SubscribeToShardEventStream
	Close() error
	Err() error
}

// SubscribeAPI opens enhanced fan-out subscriptions.
type SubscribeAPI interface {
	Subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (EventStream, error)
}

// OwnEventStreamCodec is a per-call option of SubscribeToShard that gives the call a
// protocol instance of its own. The SDK's JSON protocol keeps one event-stream decoder
// per client and uses it from every open subscription's reader goroutine, so concurrent
// subscriptions through one client race on it (go test -race reports it, and frames of
// two shards could be mixed). A client whose protocol is not the SDK's JSON protocol is
// left alone.
func OwnEventStreamCodec(o *kinesis.Options) {
	if _, ok := o.Protocol.(*awsjson.Protocol); ok {
		o.Protocol = kinesis.New(kinesis.Options{Region: o.Region}).Options().Protocol
	}
}

// SubscribeToShardFunc adapts a *kinesis.Client's SubscribeToShard to SubscribeAPI.
type SubscribeToShardFunc func(ctx context.Context, in *kinesis.SubscribeToShardInput, optFns ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error)

// Subscribe calls f and returns the subscription's event stream. Each call gets its own
// protocol instance (OwnEventStreamCodec).
func (f SubscribeToShardFunc) Subscribe(ctx context.Context, in *kinesis.SubscribeToShardInput) (EventStream, error) {
	out, err := f(ctx, in, OwnEventStreamCodec)
	if err != nil {
		return nil, err
	}
	s := out.GetStream()
	if s == nil {
		return nil, errors.New("fetch: SubscribeToShard returned no event stream")
	}
	return s, nil
}

// SubscriptionLifetime is how long Kinesis keeps a subscription open; the fetcher
// resubscribes after it at the latest.
const SubscriptionLifetime = 5 * time.Minute

// FanOutConfig configures an enhanced fan-out fetcher.
type FanOutConfig struct {
	// ConsumerARN is the registered stream consumer.
	ConsumerARN string
	// ShardID is the shard read.
	ShardID string
	// Start is where reading starts.
	Start Position
	// Prefetch is how many events may wait for the shard consumer (at least 1).
	Prefetch int
	// Lifetime bounds one subscription; SubscriptionLifetime when zero.
	Lifetime time.Duration
	// Retry decides which failed subscriptions are retried and how long each retry
	// waits (NewPolicy).
	Retry retrypolicy.Policy
	// Clock drives the pauses; clock.Real() when nil.
	Clock clock.Clock
	// Logger receives debug logs; no-op when nil.
	Logger *zap.Logger
	// Budget, when set, bounds the bytes fetched and not yet processed across the
	// worker's shards: no event is taken from the subscription while it is exhausted
	// (the service then waits on the stream's flow control).
	Budget *Budget
}

// FanOut is a Fetcher fed by SubscribeToShard. It resubscribes when a subscription ends
// (every five minutes) or fails, continuing after the last record received.
type FanOut struct {
	api SubscribeAPI
	cfg FanOutConfig
	handoff
}

// NewFanOut starts the subscription loop.
func NewFanOut(ctx context.Context, api SubscribeAPI, cfg FanOutConfig) (*FanOut, error) {
	if api == nil {
		return nil, errors.New("fetch: nil subscribe API")
	}
	if cfg.ConsumerARN == "" || cfg.ShardID == "" {
		return nil, errors.New("fetch: consumer ARN and shard are required")
	}
	if cfg.Prefetch < 1 {
		cfg.Prefetch = 1
	}
	if cfg.Lifetime <= 0 {
		cfg.Lifetime = SubscriptionLifetime
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.Real()
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(ctx)
	f := &FanOut{api: api, cfg: cfg, handoff: newHandoff(cfg.Prefetch, cancel, cfg.Budget)}
	go f.run(ctx)
	return f, nil
}

func startingPosition(p Position) *types.StartingPosition {
	sp := &types.StartingPosition{Type: p.Type}
	switch p.Type {
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		sp.SequenceNumber = aws.String(p.SequenceNumber)
	case types.ShardIteratorTypeAtTimestamp:
		sp.Timestamp = aws.Time(p.Timestamp)
	}
	return sp
}

func (f *FanOut) run(ctx context.Context) {
	defer f.stopped()
	st := &fanOutState{start: f.cfg.Start}
	attempt := 0
	for ctx.Err() == nil {
		ended, progressed, err := f.subscribeOnce(ctx, st)
		if ended || ctx.Err() != nil {
			return
		}
		if err != nil {
			act, class := decide(f.cfg.Retry, err)
			if act != retrypolicy.Retry && act != retrypolicy.NewIterator {
				f.emit(ctx, result{err: &Error{Op: "SubscribeToShard", ShardID: f.cfg.ShardID, Err: err}})
				return
			}
			f.cfg.Logger.Debug("subscription failed", zap.String("shard", f.cfg.ShardID), zap.Error(err))
			if progressed {
				attempt = 0
			}
			d := f.cfg.Retry.Delay(class, attempt)
			if class == retrypolicy.Throttled && d < time.Second {
				// SubscribeToShard allows one call per second per shard and consumer.
				d = time.Second
			}
			attempt++
			if clock.Sleep(ctx, f.cfg.Clock, d) != nil {
				return
			}
			continue
		}
		attempt = 0
	}
}

// fanOutState remembers where the next subscription starts.
type fanOutState struct {
	start        Position
	lastSeq      string // last record received
	continuation string // last continuation sequence number received
}

func (s *fanOutState) position() Position {
	switch {
	case s.lastSeq != "":
		return Position{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: s.lastSeq}
	case s.continuation != "":
		return Position{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: s.continuation}
	}
	return s.start
}

// subscribeOnce runs one subscription until it ends. ended reports that the shard ended
// (or the fetcher must stop); progressed that at least one event arrived.
func (f *FanOut) subscribeOnce(ctx context.Context, st *fanOutState) (ended, progressed bool, err error) {
	sctx, cancel := context.WithTimeout(ctx, f.cfg.Lifetime)
	defer cancel()
	stream, err := f.api.Subscribe(sctx, &kinesis.SubscribeToShardInput{
		ConsumerARN:      aws.String(f.cfg.ConsumerARN),
		ShardId:          aws.String(f.cfg.ShardID),
		StartingPosition: startingPosition(st.position()),
	})
	if err != nil {
		return false, false, err
	}
	defer stream.Close()
	events := stream.Events()
	for {
		if !f.budget.wait(sctx) {
			if ctx.Err() != nil {
				return true, progressed, nil
			}
			return false, progressed, nil // lifetime reached: resubscribe
		}
		var ev types.SubscribeToShardEventStream
		var ok bool
		select {
		case ev, ok = <-events:
		case <-sctx.Done():
			if ctx.Err() != nil {
				return true, progressed, nil
			}
			return false, progressed, nil // lifetime reached: resubscribe
		}
		if !ok {
			if err := stream.Err(); err != nil {
				return false, progressed, err
			}
			return false, progressed, nil
		}
		m, isEvent := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEvent {
			continue
		}
		progressed = true
		e := m.Value
		recs := e.Records
		// Drop anything at or before the last record already handed on (a resubscription
		// may start at the continuation point).
		if st.lastSeq != "" {
			i := 0
			for i < len(recs) && CompareSequence(aws.ToString(recs[i].SequenceNumber), st.lastSeq) <= 0 {
				i++
			}
			recs = recs[i:]
		}
		b := Batch{Records: recs, ChildShards: e.ChildShards, Bytes: batchBytes(recs)}
		if e.MillisBehindLatest != nil {
			b.MillisBehindLatest = *e.MillisBehindLatest
		}
		if n := len(recs); n > 0 {
			st.lastSeq = aws.ToString(recs[n-1].SequenceNumber)
		}
		if e.ContinuationSequenceNumber != nil {
			st.continuation = *e.ContinuationSequenceNumber
		} else if len(e.ChildShards) > 0 {
			b.ShardEnd = true
			f.emit(ctx, result{batch: b})
			return true, true, nil
		}
		if !f.emit(ctx, result{batch: b}) {
			return true, true, nil
		}
	}
}

// ConsumerAPI registers and describes stream consumers.
type ConsumerAPI interface {
	RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error)
	DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, optFns ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error)
}

// RegisterConsumer registers consumer name on streamARN, or finds it when it already
// exists, and waits until it is ACTIVE. It returns the consumer's ARN.
func RegisterConsumer(ctx context.Context, api ConsumerAPI, clk clock.Clock, streamARN, name string, poll time.Duration) (string, error) {
	if clk == nil {
		clk = clock.Real()
	}
	if poll <= 0 {
		poll = time.Second
	}
	arn := ""
	out, err := api.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(name)})
	switch {
	case err == nil:
		arn = aws.ToString(out.Consumer.ConsumerARN)
		if out.Consumer.ConsumerStatus == types.ConsumerStatusActive {
			return arn, nil
		}
	case isCode(err, "ResourceInUseException"):
	default:
		return "", fmt.Errorf("fetch: register stream consumer %s: %w", name, err)
	}
	for {
		in := &kinesis.DescribeStreamConsumerInput{StreamARN: aws.String(streamARN), ConsumerName: aws.String(name)}
		if arn != "" {
			in = &kinesis.DescribeStreamConsumerInput{ConsumerARN: aws.String(arn)}
		}
		d, err := api.DescribeStreamConsumer(ctx, in)
		if err != nil && retrypolicy.ErrorClass(err) == retrypolicy.Fatal {
			return "", fmt.Errorf("fetch: describe stream consumer %s: %w", name, err)
		}
		if err == nil && d.ConsumerDescription != nil {
			arn = aws.ToString(d.ConsumerDescription.ConsumerARN)
			if d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive {
				return arn, nil
			}
		}
		if err := clock.Sleep(ctx, clk, poll); err != nil {
			return "", err
		}
	}
}
