package tables_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine/tables"
)

func benchLease(b *testing.B) (*dynamodb.Client, *dynamodb.UpdateItemInput) {
	_, c := startDB(b)
	createTable(b, c, "bench", "")
	put(b, c, "bench", item{"pk": s("lease"), "leaseOwner": s("me"), "leaseCounter": n("0"), "checkpoint": s("49590338271490256608559692538361571095921575989136588898")})
	return c, &dynamodb.UpdateItemInput{
		TableName:                 aws.String("bench"),
		Key:                       item{"pk": s("lease")},
		ConditionExpression:       aws.String("leaseOwner = :me AND leaseCounter >= :zero"),
		UpdateExpression:          aws.String("SET leaseCounter = leaseCounter + :one"),
		ExpressionAttributeValues: item{":me": s("me"), ":zero": n("0"), ":one": n("1")},
	}
}

// BenchmarkSDKConditionalUpdateItem is one lease renewal round trip through the SDK.
func BenchmarkSDKConditionalUpdateItem(b *testing.B) {
	c, in := benchLease(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for range b.N {
		if _, err := c.UpdateItem(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkSDKConditionalUpdateItemParallel runs renewals of distinct leases from many
// goroutines, as a worker holding many leases does.
func BenchmarkSDKConditionalUpdateItemParallel(b *testing.B) {
	c, shared := benchLease(b)
	ctx := context.Background()
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprint("lease-", next.Add(1))
		in := *shared
		in.Key = item{"pk": s(key)}
		if _, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: in.TableName, Item: item{"pk": s(key), "leaseOwner": s("me"), "leaseCounter": n("0")}}); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if _, err := c.UpdateItem(ctx, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkSDKGetItem is one consistent lease read through the SDK.
func BenchmarkSDKGetItem(b *testing.B) {
	c, _ := benchLease(b)
	ctx := context.Background()
	in := &dynamodb.GetItemInput{TableName: aws.String("bench"), Key: item{"pk": s("lease")}, ConsistentRead: aws.Bool(true)}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for range b.N {
		if _, err := c.GetItem(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// BenchmarkServeConditionalUpdateItem is the engine's own share of a renewal: decoding,
// parsing, the conditional write and the response, without HTTP or the SDK.
func BenchmarkServeConditionalUpdateItem(b *testing.B) {
	svc, err := tables.New(tables.Config{}, clock.Real())
	if err != nil {
		b.Fatal(err)
	}
	call := func(op, body string) {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(body)))
		w := httptest.NewRecorder()
		svc.ServeOperation(w, r, op)
		if w.Code != 200 {
			b.Fatalf("%s: %d %s", op, w.Code, w.Body)
		}
	}
	call("CreateTable", `{"TableName":"bench","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"}],"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}`)
	call("PutItem", `{"TableName":"bench","Item":{"pk":{"S":"lease"},"leaseOwner":{"S":"me"},"leaseCounter":{"N":"0"}}}`)
	body := `{"TableName":"bench","Key":{"pk":{"S":"lease"}},"ConditionExpression":"leaseOwner = :me AND leaseCounter >= :zero",` +
		`"UpdateExpression":"SET leaseCounter = leaseCounter + :one","ExpressionAttributeValues":{":me":{"S":"me"},":zero":{"N":"0"},":one":{"N":"1"}}}`
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for range b.N {
		call("UpdateItem", body)
	}
}
