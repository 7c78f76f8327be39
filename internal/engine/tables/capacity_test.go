package tables_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

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
