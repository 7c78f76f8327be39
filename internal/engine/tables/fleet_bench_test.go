package tables_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine/tables"
)

// The fleet benchmarks measure the engine's own cost (no HTTP, no SDK) of each call a
// consumer fleet makes against its lease table: a table of fleetLeases lease items of
// about 400 bytes, held by fleetOwners workers, with KCL's keys-only owner index.
const (
	fleetLeases = 10000
	fleetOwners = 100
)

// bufWriter is a ResponseWriter that keeps the last response, reused across calls.
type bufWriter struct {
	h    http.Header
	code int
	buf  bytes.Buffer
}

func (w *bufWriter) Header() http.Header         { return w.h }
func (w *bufWriter) Write(b []byte) (int, error) { return w.buf.Write(b) }
func (w *bufWriter) WriteHeader(code int)        { w.code = code }

type fleetTable struct {
	svc *tables.Service
	w   *bufWriter
}

func (f *fleetTable) call(b *testing.B, op, body string) []byte {
	f.w.buf.Reset()
	f.w.code = http.StatusOK
	clear(f.w.h)
	f.svc.ServeOperation(f.w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), op)
	if f.w.code != http.StatusOK {
		b.Fatalf("%s: %d %s", op, f.w.code, f.w.buf.String())
	}
	return f.w.buf.Bytes()
}

// cycle times calls of op with each of bodies in turn, after resetting the timer.
func (f *fleetTable) cycle(b *testing.B, op string, bodies []string) {
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := range b.N {
		f.call(b, op, bodies[i%len(bodies)])
	}
}

func fleetLeaseKey(i int) string { return fmt.Sprintf("shardId-%012d", i) }
func fleetOwner(i int) string    { return fmt.Sprintf("worker-%03d-5f0c1c4e-9d7a-4b8e", i%fleetOwners) }

// newFleetTable builds the lease table of a fleet.
func newFleetTable(b *testing.B) *fleetTable {
	svc, err := tables.New(tables.Config{}, clock.Real())
	if err != nil {
		b.Fatal(err)
	}
	f := &fleetTable{svc: svc, w: &bufWriter{h: make(http.Header)}}
	f.call(b, "CreateTable", `{"TableName":"leases","BillingMode":"PAY_PER_REQUEST",`+
		`"AttributeDefinitions":[{"AttributeName":"leaseKey","AttributeType":"S"},{"AttributeName":"leaseOwner","AttributeType":"S"}],`+
		`"KeySchema":[{"AttributeName":"leaseKey","KeyType":"HASH"}],`+
		`"GlobalSecondaryIndexes":[{"IndexName":"LeaseOwnerToLeaseKeyIndex","KeySchema":[{"AttributeName":"leaseOwner","KeyType":"HASH"},{"AttributeName":"leaseKey","KeyType":"RANGE"}],"Projection":{"ProjectionType":"KEYS_ONLY"}}]}`)
	for i := range fleetLeases {
		f.call(b, "PutItem", fmt.Sprintf(`{"TableName":"leases","Item":{"leaseKey":{"S":%q},"leaseOwner":{"S":%q},"leaseCounter":{"N":"%d"},`+
			`"ownerSwitchesSinceCheckpoint":{"N":"0"},"checkpoint":{"S":"49590338271490256608559692538361571095921575989136588898"},`+
			`"checkpointSubSequenceNumber":{"N":"0"},"startingHashKey":{"S":"%039d"},"endingHashKey":{"S":"%039d"},`+
			`"throughputKBps":{"N":"1.25"},"leaseDurationMillis":{"N":"10000"},"parentShardId":{"SS":["shardId-000000000001"]}}}`,
			fleetLeaseKey(i), fleetOwner(i), i, i, i+1))
	}
	return f
}

func renewBody(i int) string {
	return fmt.Sprintf(`{"TableName":"leases","Key":{"leaseKey":{"S":%q}},`+
		`"ConditionExpression":"attribute_exists(#k) AND #o = :o AND #c = :c",`+
		`"UpdateExpression":"SET #c = #c + :one",`+
		`"ExpressionAttributeNames":{"#k":"leaseKey","#o":"leaseOwner","#c":"leaseCounter"},`+
		`"ExpressionAttributeValues":{":o":{"S":%q},":c":{"N":"%d"},":one":{"N":"1"}}}`, fleetLeaseKey(i), fleetOwner(i), 0)
}

// BenchmarkServeFleetRenew is a lease renewal (a conditional UpdateItem of the lease
// counter) in a 10,000-lease table with its owner index.
func BenchmarkServeFleetRenew(b *testing.B) {
	f := newFleetTable(b)
	// Each lease is renewed with the counter it holds, so the condition holds.
	counters := make([]int, fleetLeases)
	for i := range counters {
		counters[i] = i
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	for i := range b.N {
		k := i % fleetLeases
		body := strings.Replace(renewBody(k), `":c":{"N":"0"}`, fmt.Sprintf(`":c":{"N":"%d"}`, counters[k]), 1)
		f.call(b, "UpdateItem", body)
		counters[k]++
	}
}

// BenchmarkServeFleetGetItem is a consistent read of one lease.
func BenchmarkServeFleetGetItem(b *testing.B) {
	f := newFleetTable(b)
	bodies := make([]string, 256)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"TableName":"leases","Key":{"leaseKey":{"S":%q}},"ConsistentRead":true}`, fleetLeaseKey(i*37))
	}
	f.cycle(b, "GetItem", bodies)
}

// BenchmarkServeFleetOwnerQuery is a follower's discovery: a Query of the owner index for
// the 100 leases one worker holds.
func BenchmarkServeFleetOwnerQuery(b *testing.B) {
	f := newFleetTable(b)
	bodies := make([]string, fleetOwners)
	for i := range bodies {
		bodies[i] = fmt.Sprintf(`{"TableName":"leases","IndexName":"LeaseOwnerToLeaseKeyIndex",`+
			`"KeyConditionExpression":"#o = :o","ExpressionAttributeNames":{"#o":"leaseOwner"},"ExpressionAttributeValues":{":o":{"S":%q}}}`, fleetOwner(i))
	}
	var out struct{ Count int }
	if err := json.Unmarshal(f.call(b, "Query", bodies[0]), &out); err != nil || out.Count != fleetLeases/fleetOwners {
		b.Fatalf("query: %v, %d items, want %d", err, out.Count, fleetLeases/fleetOwners)
	}
	f.cycle(b, "Query", bodies)
}

// BenchmarkServeFleetScan is the leader's strongly consistent Scan of the whole lease
// table, every page (about 4 MB in 1 MB pages); one op is the whole scan.
func BenchmarkServeFleetScan(b *testing.B) {
	f := newFleetTable(b)
	scan := func() (items, pages int) {
		start := ""
		for {
			body := `{"TableName":"leases","ConsistentRead":true` + start + `}`
			var out struct {
				Count            int
				LastEvaluatedKey json.RawMessage
			}
			// Only the members after the items are decoded: the benchmark measures the
			// engine, not a client's decoding of 4 MB.
			resp := f.call(b, "Scan", body)
			i := bytes.LastIndex(resp, []byte(`,"Count":`))
			if i < 0 {
				b.Fatalf("scan answer without a count: %.200s", resp)
			}
			if err := json.Unmarshal(append([]byte("{"), resp[i+1:]...), &out); err != nil {
				b.Fatal(err)
			}
			items += out.Count
			pages++
			if len(out.LastEvaluatedKey) == 0 {
				return items, pages
			}
			start = `,"ExclusiveStartKey":` + string(out.LastEvaluatedKey)
		}
	}
	if items, _ := scan(); items != fleetLeases {
		b.Fatalf("scan: %d items, want %d", items, fleetLeases)
	}
	b.ReportAllocs()
	b.ResetTimer()
	defer reportCPU(b)()
	pages := 0
	for range b.N {
		_, p := scan()
		pages += p
	}
	b.ReportMetric(float64(pages)/float64(b.N), "pages/op")
}
