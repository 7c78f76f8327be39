package tables_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/internal/engine/tables"
)

// TestConsumedCapacityAccounting checks that the engine counts the read and write units
// of every call, whether or not the caller asked for ReturnConsumedCapacity: writes per
// started KB, consistent reads per started 4 KB, eventually consistent reads at half,
// and scans by their total size.
func TestConsumedCapacityAccounting(t *testing.T) {
	e, c := startDB(t)
	ctx := ctxT(t)
	createTable(t, c, "cap", "")
	big := strings.Repeat("x", 1500) // an item of about 1.5 KB: 2 write units
	for _, k := range []string{"a", "b", "c"} {
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("cap"), Item: item{"pk": s(k), "v": s(big)}}); err != nil {
			t.Fatal(err)
		}
	}
	want := tables.Capacity{WriteUnits: 6}
	if got := e.Tables.Consumed()["cap"]; got != want {
		t.Fatalf("after three puts: %+v, want %+v", got, want)
	}
	if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("cap"), Key: item{"pk": s("a")}, ConsistentRead: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String("cap"), Key: item{"pk": s("b")}}); err != nil {
		t.Fatal(err)
	}
	want.ReadUnits = 1.5
	if got := e.Tables.Consumed()["cap"]; got != want {
		t.Fatalf("after two gets: %+v, want %+v", got, want)
	}
	// A consistent scan of about 4.5 KB: 2 read units.
	if _, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("cap"), ConsistentRead: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	want.ReadUnits = 3.5
	if got := e.Tables.Consumed()["cap"]; got != want {
		t.Fatalf("after a scan: %+v, want %+v", got, want)
	}
}

// TestIndexQueryCostsProjectedSize checks that a query of a keys-only global secondary
// index costs the size of the index entries (keys), not of the whole items, as in
// DynamoDB: ten items of 1.5 KB cost half a unit through the index, two through the table.
func TestIndexQueryCostsProjectedSize(t *testing.T) {
	e, c := startDB(t)
	ctx := ctxT(t)
	createTable(t, c, "capidx", "", types.GlobalSecondaryIndex{IndexName: aws.String("byOwner"),
		KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String("o"), KeyType: types.KeyTypeHash}},
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly}})
	big := strings.Repeat("x", 1500)
	for i := 0; i < 10; i++ {
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String("capidx"),
			Item: item{"pk": s(strings.Repeat("k", i+1)), "o": s("w1"), "v": s(big)}}); err != nil {
			t.Fatal(err)
		}
	}
	before := e.Tables.Consumed()["capidx"].ReadUnits
	out, err := c.Query(ctx, &dynamodb.QueryInput{TableName: aws.String("capidx"), IndexName: aws.String("byOwner"),
		KeyConditionExpression: aws.String("o = :o"), ExpressionAttributeValues: item{":o": s("w1")}})
	if err != nil || len(out.Items) != 10 {
		t.Fatalf("query: %v, %d items", err, len(out.Items))
	}
	if got := e.Tables.Consumed()["capidx"].ReadUnits - before; got != 0.5 {
		t.Fatalf("keys-only index query of 10 items: %v read units, want 0.5", got)
	}
	before += 0.5
	if _, err := c.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String("capidx")}); err != nil {
		t.Fatal(err)
	}
	if got := e.Tables.Consumed()["capidx"].ReadUnits - before; got != 2 {
		t.Fatalf("eventually consistent scan of 15 KB: %v read units, want 2", got)
	}
	if got, want := e.Tables.ReadsByOperation()["capidx"], map[string]float64{"GetItem": 0, "Query": 0.5, "Scan": 2, "BatchGetItem": 0}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reads by operation %v, want %v", got, want)
	}
}
