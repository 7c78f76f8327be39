package lease

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/freshet/freshet/checkpoint"
)

// echoDB answers every UpdateItem with a fixed lease item, so benchmarks measure the
// client-side cost of building requests and reading responses.
type echoDB struct {
	DynamoDBAPI
	out *dynamodb.UpdateItemOutput
}

func (e *echoDB) UpdateItem(context.Context, *dynamodb.UpdateItemInput, ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return e.out, nil
}

func benchStore(b *testing.B) (*Store, Lease) {
	l := fullLease()
	l.CheckpointOwner = ""
	s, err := NewStore(&echoDB{out: &dynamodb.UpdateItemOutput{Attributes: marshalItem(&l)}}, DefaultTables("bench"))
	if err != nil {
		b.Fatal(err)
	}
	return s, l
}

// BenchmarkRenewClientSide is the client-side cost of one renewal: request and response.
func BenchmarkRenewClientSide(b *testing.B) {
	s, l := benchStore(b)
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := s.Renew(ctx, l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWriteCheckpointClientSide is the client-side cost of one checkpoint write.
func BenchmarkWriteCheckpointClientSide(b *testing.B) {
	s, l := benchStore(b)
	ctx := context.Background()
	cp := checkpoint.Value{SequenceNumber: seq56, SubSequenceNumber: 3}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := s.WriteCheckpoint(ctx, l, cp); err != nil {
			b.Fatal(err)
		}
	}
}
