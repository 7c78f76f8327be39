package consumer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// memStream is a fake Kinesis stream with resharding.
type memStream struct {
	mu     sync.Mutex
	name   string
	shards []*memShard
	next   int
	seq    int
}

type memShard struct {
	id      string
	parents []string
	recs    []types.Record
	closed  bool
	kids    []string
}

func newMemStream(name string, n int) *memStream {
	s := &memStream{name: name}
	for i := 0; i < n; i++ {
		s.addShard(nil)
	}
	return s
}

func (s *memStream) addShard(parents []string) *memShard {
	sh := &memShard{id: fmt.Sprintf("shardId-%012d", s.next), parents: parents}
	s.next++
	s.shards = append(s.shards, sh)
	return sh
}

func (s *memStream) shard(id string) *memShard {
	for _, sh := range s.shards {
		if sh.id == id {
			return sh
		}
	}
	return nil
}

func (s *memStream) open() []*memShard {
	var out []*memShard
	for _, sh := range s.shards {
		if !sh.closed {
			out = append(out, sh)
		}
	}
	return out
}

// put appends a record with key pk to the open shard chosen by the key's hash.
func (s *memStream) put(pk string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	open := s.open()
	h := 0
	for _, c := range pk {
		h = h*31 + int(c)
	}
	if h < 0 {
		h = -h
	}
	sh := open[h%len(open)]
	s.seq++
	sh.recs = append(sh.recs, types.Record{SequenceNumber: aws.String(fmt.Sprintf("4960%020d", s.seq)), PartitionKey: aws.String(pk), Data: data,
		ApproximateArrivalTimestamp: aws.Time(time.Now())})
}

// split closes one open shard and adds two children.
func (s *memStream) split(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.shard(id)
	p.closed = true
	a, b := s.addShard([]string{id}), s.addShard([]string{id})
	p.kids = []string{a.id, b.id}
}

// merge closes two open shards and adds their child.
func (s *memStream) merge(x, y string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.addShard([]string{x, y})
	for _, id := range []string{x, y} {
		p := s.shard(id)
		p.closed = true
		p.kids = []string{c.id}
	}
}

func notFound(msg string) error {
	return &smithy.GenericAPIError{Code: "ResourceNotFoundException", Message: msg}
}

// memKinesis serves memStreams through KinesisAPI.
type memKinesis struct {
	streams map[string]*memStream
}

func (k *memKinesis) stream(name *string) (*memStream, error) {
	s := k.streams[aws.ToString(name)]
	if s == nil {
		return nil, notFound("stream " + aws.ToString(name))
	}
	return s, nil
}

func (k *memKinesis) DescribeStreamSummary(ctx context.Context, in *kinesis.DescribeStreamSummaryInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamSummaryOutput, error) {
	if _, err := k.stream(in.StreamName); err != nil {
		return nil, err
	}
	return &kinesis.DescribeStreamSummaryOutput{StreamDescriptionSummary: &types.StreamDescriptionSummary{
		StreamName: in.StreamName, StreamARN: aws.String("arn:aws:kinesis:us-east-1:123456789012:stream/" + *in.StreamName),
		StreamCreationTimestamp: aws.Time(time.Unix(1700000000, 0)),
	}}, nil
}

func (k *memKinesis) ListShards(ctx context.Context, in *kinesis.ListShardsInput, _ ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	s, err := k.stream(in.StreamName)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := &kinesis.ListShardsOutput{}
	for _, sh := range s.shards {
		t := types.Shard{ShardId: aws.String(sh.id), SequenceNumberRange: &types.SequenceNumberRange{StartingSequenceNumber: aws.String("0")}}
		if len(sh.parents) > 0 {
			t.ParentShardId = aws.String(sh.parents[0])
		}
		if len(sh.parents) > 1 {
			t.AdjacentParentShardId = aws.String(sh.parents[1])
		}
		if sh.closed {
			t.SequenceNumberRange.EndingSequenceNumber = aws.String("9")
		}
		out.Shards = append(out.Shards, t)
	}
	return out, nil
}

func (k *memKinesis) GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, _ ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error) {
	s, err := k.stream(in.StreamName)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shard(aws.ToString(in.ShardId))
	if sh == nil {
		return nil, notFound("shard")
	}
	pos := 0
	switch in.ShardIteratorType {
	case types.ShardIteratorTypeLatest:
		pos = len(sh.recs)
	case types.ShardIteratorTypeAtSequenceNumber, types.ShardIteratorTypeAfterSequenceNumber:
		want := aws.ToString(in.StartingSequenceNumber)
		pos = sort.Search(len(sh.recs), func(i int) bool { return *sh.recs[i].SequenceNumber >= want })
		if in.ShardIteratorType == types.ShardIteratorTypeAfterSequenceNumber && pos < len(sh.recs) && *sh.recs[pos].SequenceNumber == want {
			pos++
		}
	}
	return &kinesis.GetShardIteratorOutput{ShardIterator: aws.String(s.name + "|" + sh.id + "|" + strconv.Itoa(pos))}, nil
}

func (k *memKinesis) GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error) {
	parts := strings.Split(aws.ToString(in.ShardIterator), "|")
	if len(parts) != 3 {
		return nil, errors.New("bad iterator")
	}
	s, err := k.stream(&parts[0])
	if err != nil {
		return nil, err
	}
	pos, _ := strconv.Atoi(parts[2])
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := s.shard(parts[1])
	end := min(pos+int(aws.ToInt32(in.Limit)), len(sh.recs))
	out := &kinesis.GetRecordsOutput{Records: append([]types.Record(nil), sh.recs[pos:end]...), MillisBehindLatest: aws.Int64(0)}
	if sh.closed && end == len(sh.recs) {
		for _, kid := range sh.kids {
			out.ChildShards = append(out.ChildShards, types.ChildShard{ShardId: aws.String(kid), ParentShards: s.shard(kid).parents})
		}
		return out, nil
	}
	out.NextShardIterator = aws.String(parts[0] + "|" + parts[1] + "|" + strconv.Itoa(end))
	return out, nil
}

func (k *memKinesis) RegisterStreamConsumer(ctx context.Context, in *kinesis.RegisterStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.RegisterStreamConsumerOutput, error) {
	return nil, errors.New("not supported")
}

func (k *memKinesis) DescribeStreamConsumer(ctx context.Context, in *kinesis.DescribeStreamConsumerInput, _ ...func(*kinesis.Options)) (*kinesis.DescribeStreamConsumerOutput, error) {
	return nil, errors.New("not supported")
}

func (k *memKinesis) SubscribeToShard(ctx context.Context, in *kinesis.SubscribeToShardInput, _ ...func(*kinesis.Options)) (*kinesis.SubscribeToShardOutput, error) {
	return nil, errors.New("not supported")
}
