package tables

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
)

func mustServe(t *testing.T, s *Service, op, body string) []byte {
	t.Helper()
	w := httptest.NewRecorder()
	s.ServeOperation(w, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body)), op)
	if w.Code != http.StatusOK {
		t.Errorf("%s %s: %d %s", op, body, w.Code, w.Body)
	}
	return w.Body.Bytes()
}

// randomWrite writes, changes or deletes one of 150 items at random: items move between
// index partitions, leave and join the (sparse) indexes and change their range keys.
func randomWrite(t *testing.T, s *Service, r *rand.Rand) {
	t.Helper()
	pk := fmt.Sprintf(`{"pk":{"S":"k%03d"}}`, r.IntN(150))
	owner := fmt.Sprintf(`{"S":"w%d"}`, r.IntN(6))
	var op, body string
	switch r.IntN(6) {
	case 0, 1:
		attrs := `"pk":` + pk[6:len(pk)-1]
		if r.IntN(4) > 0 {
			attrs += `,"o":` + owner
		}
		if r.IntN(4) > 0 {
			attrs += fmt.Sprintf(`,"r":{"N":"%d"}`, r.IntN(8))
		}
		op, body = "PutItem", `{"TableName":"tbl","Item":{`+attrs+`}}`
	case 2:
		op, body = "UpdateItem", `{"TableName":"tbl","Key":`+pk+`,"UpdateExpression":"SET o = :o","ExpressionAttributeValues":{":o":`+owner+`}}`
	case 3:
		op, body = "UpdateItem", `{"TableName":"tbl","Key":`+pk+`,"UpdateExpression":"REMOVE o"}`
	case 4:
		op, body = "UpdateItem", fmt.Sprintf(`{"TableName":"tbl","Key":%s,"UpdateExpression":"SET r = :r, v = :v","ExpressionAttributeValues":{":r":{"N":"%d"},":v":{"N":"%d"}}}`, pk, r.IntN(8), r.IntN(100))
	default:
		op, body = "DeleteItem", `{"TableName":"tbl","Key":`+pk+`}`
	}
	mustServe(t, s, op, body)
}

// checkIndexes compares every index partition with the index derived from the table's
// items: the members with that hash key, sorted by range key, then table order.
func checkIndexes(t *testing.T, s *Service) {
	t.Helper()
	tb := s.tables["tbl"]
	all := tb.allItems()
	for _, ix := range tb.indexes() {
		for w := range 6 {
			hash := Value{T: TypeS, S: fmt.Sprintf("w%d", w)}
			var want []Item
			for _, it := range all {
				if ix.member(it) && equalValues(it[ix.key.hash], hash) {
					want = append(want, ix.project(tb.key, it))
				}
			}
			sort.SliceStable(want, func(i, j int) bool { return ixCompare(ix.key, tb.key, want[i], want[j]) < 0 })
			if got := ix.partition(hash); !reflect.DeepEqual(got, want) {
				t.Fatalf("index %s, partition %s: %d items %v, want %d %v", ix.name, hash.S, len(got), got, len(want), want)
			}
		}
	}
}

// scanAll pages through a Scan of the table with Limit limit, returning the keys read.
func scanAll(t *testing.T, s *Service, limit, seg, total int) []string {
	t.Helper()
	var keys []string
	start := ""
	for {
		body := fmt.Sprintf(`{"TableName":"tbl","Limit":%d,"Segment":%d,"TotalSegments":%d%s}`, limit, seg, total, start)
		var out struct {
			Items            []map[string]map[string]string
			LastEvaluatedKey json.RawMessage
		}
		if err := json.Unmarshal(mustServe(t, s, "Scan", body), &out); err != nil {
			t.Fatal(err)
		}
		for _, it := range out.Items {
			keys = append(keys, it["pk"]["S"])
		}
		if len(out.LastEvaluatedKey) == 0 {
			return keys
		}
		start = `,"ExclusiveStartKey":` + string(out.LastEvaluatedKey)
	}
}

func newIndexedTable(t *testing.T) *Service {
	s, err := New(Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustServe(t, s, "CreateTable", `{"TableName":"tbl","BillingMode":"PAY_PER_REQUEST",`+
		`"AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"o","AttributeType":"S"},{"AttributeName":"r","AttributeType":"N"}],`+
		`"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"GlobalSecondaryIndexes":[`+
		`{"IndexName":"byOwner","KeySchema":[{"AttributeName":"o","KeyType":"HASH"},{"AttributeName":"pk","KeyType":"RANGE"}],"Projection":{"ProjectionType":"KEYS_ONLY"}},`+
		`{"IndexName":"byOwnerRank","KeySchema":[{"AttributeName":"o","KeyType":"HASH"},{"AttributeName":"r","KeyType":"RANGE"}],"Projection":{"ProjectionType":"ALL"}},`+
		`{"IndexName":"byOwnerWithV","KeySchema":[{"AttributeName":"o","KeyType":"HASH"}],"Projection":{"ProjectionType":"INCLUDE","NonKeyAttributes":["v"]}}]}`)
	return s
}

// TestIndexEntriesFollowTheTable checks that the entries each index keeps always equal
// the index derived from the table's items, through puts, updates that move an item
// between partitions, into and out of the index, deletes, and an index created by
// UpdateTable over existing items (its backfill); and that paged Scans (with segments)
// read every item once, in the table's scan order.
func TestIndexEntriesFollowTheTable(t *testing.T) {
	s := newIndexedTable(t)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 3000 {
		randomWrite(t, s, r)
		if i%100 == 99 {
			checkIndexes(t, s)
		}
		if i == 1500 {
			mustServe(t, s, "UpdateTable", `{"TableName":"tbl","AttributeDefinitions":[{"AttributeName":"o","AttributeType":"S"}],`+
				`"GlobalSecondaryIndexUpdates":[{"Create":{"IndexName":"late","KeySchema":[{"AttributeName":"o","KeyType":"HASH"}],"Projection":{"ProjectionType":"ALL"}}}]}`)
			if n := len(s.tables["tbl"].indexes()); n != 4 {
				t.Fatalf("%d indexes after UpdateTable, want 4", n)
			}
			checkIndexes(t, s)
		}
	}
	var want []string
	for _, it := range s.tables["tbl"].allItems() {
		want = append(want, it["pk"].S)
	}
	for _, limit := range []int{1, 7, 1000} {
		if got := scanAll(t, s, limit, 0, 1); !reflect.DeepEqual(got, want) {
			t.Fatalf("scan with limit %d: %v, want %v", limit, got, want)
		}
	}
	var segs []string
	for seg := range 3 {
		segs = append(segs, scanAll(t, s, 5, seg, 3)...)
	}
	sort.Strings(segs)
	sorted := append([]string(nil), want...)
	sort.Strings(sorted)
	if !reflect.DeepEqual(segs, sorted) {
		t.Fatalf("three segments read %v, want %v", segs, sorted)
	}
}

// TestIndexEntriesUnderConcurrentWrites runs writers and index readers at once (under
// -race) and then checks the entries against the table.
func TestIndexEntriesUnderConcurrentWrites(t *testing.T) {
	s := newIndexedTable(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for i := range 400 {
				randomWrite(t, s, r)
				if i%10 == 0 {
					body := fmt.Sprintf(`{"TableName":"tbl","IndexName":"byOwnerRank","KeyConditionExpression":"o = :o","ExpressionAttributeValues":{":o":{"S":"w%d"}}}`, r.IntN(6))
					out := mustServe(t, s, "Query", body)
					if !bytes.Contains(out, []byte(`"Count":`)) {
						t.Errorf("query answer %s", out)
					}
				}
			}
		}()
	}
	wg.Wait()
	checkIndexes(t, s)
}

// TestScanOrderIsFNVOfTheKeyString pins the scan order: partitions by the FNV-1a hash of
// their key string, then the key string, whichever way the order is computed.
func TestScanOrderIsFNVOfTheKeyString(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var vals []Value
	for range 300 {
		ty := []Type{TypeS, TypeN, TypeB}[r.IntN(3)]
		vals = append(vals, Value{T: ty, S: fmt.Sprintf("%x", r.Uint64()>>(r.IntN(64)))})
	}
	vals = append(vals, Value{T: TypeS, S: "same"}, Value{T: TypeB, S: "same"})
	tk := keySchema{hash: "pk", hashT: TypeS}
	for i, a := range vals {
		h := fnv.New32a()
		h.Write([]byte(keyString(a)))
		if valueOrder(a) != h.Sum32() || hashOrder(keyString(a)) != h.Sum32() {
			t.Fatalf("%+v: valueOrder %d, hashOrder %d, FNV-1a %d", a, valueOrder(a), hashOrder(keyString(a)), h.Sum32())
		}
		b := vals[(i*7+1)%len(vals)]
		ra, rb := partRef{hashOrder(keyString(a)), keyString(a)}, partRef{hashOrder(keyString(b)), keyString(b)}
		want := 0
		switch {
		case ra.before(rb):
			want = -1
		case rb.before(ra):
			want = 1
		}
		if got := tableOrder(tk, Item{"pk": a}, Item{"pk": b}); got != want {
			t.Fatalf("tableOrder(%+v, %+v) = %d, want %d", a, b, got, want)
		}
	}
}
