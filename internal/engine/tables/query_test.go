package tables_test

import (
	"fmt"
	"sort"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func seedRange(t *testing.T, c *dynamodb.Client, table string) {
	t.Helper()
	for _, p := range []string{"a", "b"} {
		for i := 1; i <= 12; i++ {
			put(t, c, table, item{"pk": s(p), "sk": n(fmt.Sprint(i)), "odd": bl(i%2 == 1), "name": s(fmt.Sprintf("n%02d", i))})
		}
	}
}

func skList(items []item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it["sk"].(*types.AttributeValueMemberN).Value
	}
	return out
}

func TestQueryRangeConditions(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "t-qr", types.ScalarAttributeTypeN)
	seedRange(t, c, "t-qr")
	cases := []struct {
		expr    string
		values  item
		forward bool
		want    string
	}{
		{"pk = :p", item{":p": s("a")}, true, "[1 2 3 4 5 6 7 8 9 10 11 12]"},
		{"pk = :p", item{":p": s("a")}, false, "[12 11 10 9 8 7 6 5 4 3 2 1]"},
		{"pk = :p AND sk = :v", item{":p": s("a"), ":v": n("3")}, true, "[3]"},
		{"pk = :p AND sk < :v", item{":p": s("a"), ":v": n("3")}, true, "[1 2]"},
		{"pk = :p AND sk <= :v", item{":p": s("a"), ":v": n("3")}, true, "[1 2 3]"},
		{"pk = :p AND sk > :v", item{":p": s("a"), ":v": n("10")}, true, "[11 12]"},
		{"pk = :p AND sk >= :v", item{":p": s("a"), ":v": n("10")}, true, "[10 11 12]"},
		{"pk = :p AND sk BETWEEN :x AND :y", item{":p": s("a"), ":x": n("4"), ":y": n("6")}, true, "[4 5 6]"},
		{":v < sk AND pk = :p", item{":p": s("a"), ":v": n("10")}, true, "[11 12]"},
		{"(pk = :p) AND (sk = :v)", item{":p": s("b"), ":v": n("12")}, true, "[12]"},
		{"pk = :p", item{":p": s("none")}, true, "[]"},
	}
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			out, err := c.Query(ctxT(t), &dynamodb.QueryInput{TableName: aws.String("t-qr"), KeyConditionExpression: aws.String(tc.expr),
				ExpressionAttributeValues: tc.values, ScanIndexForward: aws.Bool(tc.forward)})
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprint(skList(out.Items)); got != tc.want {
				t.Fatalf("got %s want %s", got, tc.want)
			}
		})
	}
}

func TestQueryBeginsWithOnStringRange(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "t-qs", types.ScalarAttributeTypeS)
	for _, sk := range []string{"shard-1", "shard-10", "shard-2", "other", "sh"} {
		put(t, c, "t-qs", item{"pk": s("p"), "sk": s(sk)})
	}
	out, err := c.Query(ctxT(t), &dynamodb.QueryInput{TableName: aws.String("t-qs"), KeyConditionExpression: aws.String("pk = :p AND begins_with(sk, :pre)"),
		ExpressionAttributeValues: item{":p": s("p"), ":pre": s("shard-")}})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range out.Items {
		got = append(got, it["sk"].(*types.AttributeValueMemberS).Value)
	}
	if fmt.Sprint(got) != "[shard-1 shard-10 shard-2]" {
		t.Fatalf("got %v", got)
	}
}

func TestQueryPaginationFilterAndCount(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "t-qp", types.ScalarAttributeTypeN)
	seedRange(t, c, "t-qp")
	for _, forward := range []bool{true, false} {
		var got []string
		pages := 0
		p := dynamodb.NewQueryPaginator(c, &dynamodb.QueryInput{TableName: aws.String("t-qp"), KeyConditionExpression: aws.String("pk = :p"),
			FilterExpression: aws.String("odd = :t"), ExpressionAttributeValues: item{":p": s("a"), ":t": bl(true)}, Limit: aws.Int32(5), ScanIndexForward: aws.Bool(forward)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if out.ScannedCount > 5 {
				t.Fatalf("scanned %d > limit", out.ScannedCount)
			}
			pages++
			got = append(got, skList(out.Items)...)
		}
		want := "[1 3 5 7 9 11]"
		if !forward {
			want = "[11 9 7 5 3 1]"
		}
		if fmt.Sprint(got) != want || pages < 3 {
			t.Fatalf("forward=%v: got %v in %d pages", forward, got, pages)
		}
	}
	out, err := c.Query(ctxT(t), &dynamodb.QueryInput{TableName: aws.String("t-qp"), KeyConditionExpression: aws.String("pk = :p"),
		FilterExpression: aws.String("odd = :f"), ExpressionAttributeValues: item{":p": s("b"), ":f": bl(false)}, Select: types.SelectCount})
	if err != nil || out.Count != 6 || out.ScannedCount != 12 || out.Items != nil {
		t.Fatalf("COUNT: %v count=%d scanned=%d items=%d", err, out.Count, out.ScannedCount, len(out.Items))
	}
	out, err = c.Query(ctxT(t), &dynamodb.QueryInput{TableName: aws.String("t-qp"), KeyConditionExpression: aws.String("pk = :p AND sk = :s"),
		ProjectionExpression: aws.String("#n"), ExpressionAttributeNames: names("#n", "name"), ExpressionAttributeValues: item{":p": s("b"), ":s": n("2")}})
	if err != nil || len(out.Items) != 1 || len(out.Items[0]) != 1 || out.Items[0]["name"] == nil {
		t.Fatalf("projection: %v %v", err, out.Items)
	}
}

func TestQueryKeyConditionErrors(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "t-qe", types.ScalarAttributeTypeN)
	cases := []struct {
		expr   string
		values item
		msg    string
	}{
		{"sk = :v", item{":v": n("1")}, "Query condition missed key schema element: pk"},
		{"pk = :p OR sk = :v", item{":p": s("a"), ":v": n("1")}, "Invalid operator used in KeyConditionExpression: OR"},
		{"pk < :p", item{":p": s("a")}, "Query key condition not supported"},
		{"pk = :p AND attr1 = :v", item{":p": s("a"), ":v": n("1")}, "Query condition missed key schema element: sk"},
		{"pk = :p", item{":p": n("1")}, "One or more parameter values were invalid: Condition parameter type does not match schema type"},
		{"pk = :p AND sk = :v AND sk = :v", item{":p": s("a"), ":v": n("1")}, "Invalid KeyConditionExpression: The expression has too many conditions; KeyConditionExpressions must only contain one condition per key"},
	}
	for _, tc := range cases {
		_, err := c.Query(ctxT(t), &dynamodb.QueryInput{TableName: aws.String("t-qe"), KeyConditionExpression: aws.String(tc.expr), ExpressionAttributeValues: tc.values})
		if errCode(err) != "ValidationException" || errMessage(err) != tc.msg {
			t.Errorf("%s: got %s %q want %q", tc.expr, errCode(err), errMessage(err), tc.msg)
		}
	}
}

func gsi(name, hash, rng string, proj types.ProjectionType, nonKey ...string) types.GlobalSecondaryIndex {
	g := types.GlobalSecondaryIndex{
		IndexName:  aws.String(name),
		KeySchema:  []types.KeySchemaElement{{AttributeName: aws.String(hash), KeyType: types.KeyTypeHash}},
		Projection: &types.Projection{ProjectionType: proj},
	}
	if rng != "" {
		g.KeySchema = append(g.KeySchema, types.KeySchemaElement{AttributeName: aws.String(rng), KeyType: types.KeyTypeRange})
	}
	if len(nonKey) > 0 {
		g.Projection.NonKeyAttributes = nonKey
	}
	return g
}

func TestQueryGlobalSecondaryIndexes(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "t-gs", "",
		gsi("by-owner", "owner", "", types.ProjectionTypeAll),
		gsi("by-owner-keys", "owner", "shardId", types.ProjectionTypeKeysOnly),
		gsi("by-owner-inc", "owner", "shardId", types.ProjectionTypeInclude, "checkpoint"))
	for i := 0; i < 10; i++ {
		it := item{"pk": s(fmt.Sprint("lease-", i)), "shardId": s(fmt.Sprintf("shard-%03d", 9-i)), "checkpoint": s("TRIM_HORIZON"), "extra": n("1")}
		if i%3 != 0 {
			it["owner"] = s(fmt.Sprint("w", i%3))
		}
		put(t, c, "t-gs", it)
	}
	query := func(index string, limit int32) ([]item, int) {
		var all []item
		pages := 0
		p := dynamodb.NewQueryPaginator(c, &dynamodb.QueryInput{TableName: aws.String("t-gs"), IndexName: aws.String(index),
			KeyConditionExpression: aws.String("#o = :w"), ExpressionAttributeNames: names("#o", "owner"), ExpressionAttributeValues: item{":w": s("w1")}, Limit: aws.Int32(limit)})
		for p.HasMorePages() {
			out, err := p.NextPage(ctxT(t))
			if err != nil {
				t.Fatalf("%s: %v", index, err)
			}
			pages++
			all = append(all, out.Items...)
		}
		return all, pages
	}
	all, _ := query("by-owner", 100)
	if len(all) != 3 || len(all[0]) != 5 {
		t.Fatalf("ALL: %d items, first %v", len(all), dump(all[0]))
	}
	keys, pages := query("by-owner-keys", 1)
	if len(keys) != 3 || pages < 3 {
		t.Fatalf("KEYS_ONLY: %d items in %d pages", len(keys), pages)
	}
	var shards []string
	for _, it := range keys {
		if len(it) != 3 {
			t.Fatalf("KEYS_ONLY projected %s", dump(it))
		}
		shards = append(shards, it["shardId"].(*types.AttributeValueMemberS).Value)
	}
	if !sort.StringsAreSorted(shards) {
		t.Fatalf("index range order: %v", shards)
	}
	inc, _ := query("by-owner-inc", 2)
	for _, it := range inc {
		if len(it) != 4 || it["checkpoint"] == nil || it["extra"] != nil {
			t.Fatalf("INCLUDE projected %s", dump(it))
		}
	}
	_, err := c.Query(ctxT(t), &dynamodb.QueryInput{TableName: aws.String("t-gs"), IndexName: aws.String("nope"), KeyConditionExpression: aws.String("pk = :p"), ExpressionAttributeValues: item{":p": s("x")}})
	if errMessage(err) != "The table does not have the specified index: nope" {
		t.Fatalf("unknown index: %v", err)
	}
	_, err = c.Query(ctxT(t), &dynamodb.QueryInput{TableName: aws.String("t-gs"), IndexName: aws.String("by-owner"), ConsistentRead: aws.Bool(true), KeyConditionExpression: aws.String("#o = :w"),
		ExpressionAttributeNames: names("#o", "owner"), ExpressionAttributeValues: item{":w": s("w1")}})
	if errMessage(err) != "Consistent reads are not supported on global secondary indexes" {
		t.Fatalf("consistent GSI read: %v", err)
	}
	// The index sees writes at once, including removal of the index key.
	if _, err := c.UpdateItem(ctxT(t), &dynamodb.UpdateItemInput{TableName: aws.String("t-gs"), Key: item{"pk": s("lease-1")}, UpdateExpression: aws.String("REMOVE #o"), ExpressionAttributeNames: names("#o", "owner")}); err != nil {
		t.Fatal(err)
	}
	if all, _ := query("by-owner", 100); len(all) != 2 {
		t.Fatalf("after REMOVE: %d items", len(all))
	}
}

func TestScanPaginationSegmentsAndCount(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "t-sc", "")
	for i := 0; i < 57; i++ {
		put(t, c, "t-sc", item{"pk": s(fmt.Sprint("k", i)), "v": n(fmt.Sprint(i))})
	}
	seen := map[string]int{}
	p := dynamodb.NewScanPaginator(c, &dynamodb.ScanInput{TableName: aws.String("t-sc"), Limit: aws.Int32(10)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, it := range out.Items {
			seen[it["pk"].(*types.AttributeValueMemberS).Value]++
		}
	}
	if len(seen) != 57 || pages < 6 {
		t.Fatalf("scan saw %d distinct items in %d pages", len(seen), pages)
	}
	for k, cnt := range seen {
		if cnt != 1 {
			t.Fatalf("item %s seen %d times", k, cnt)
		}
	}
	total := 0
	for seg := int32(0); seg < 3; seg++ {
		out, err := c.Scan(ctxT(t), &dynamodb.ScanInput{TableName: aws.String("t-sc"), Segment: aws.Int32(seg), TotalSegments: aws.Int32(3)})
		if err != nil {
			t.Fatal(err)
		}
		total += len(out.Items)
	}
	if total != 57 {
		t.Fatalf("segments hold %d items", total)
	}
	out, err := c.Scan(ctxT(t), &dynamodb.ScanInput{TableName: aws.String("t-sc"), Select: types.SelectCount, FilterExpression: aws.String("v >= :x"), ExpressionAttributeValues: item{":x": n("50")}})
	if err != nil || out.Count != 7 || out.ScannedCount != 57 {
		t.Fatalf("count: %v %d/%d", err, out.Count, out.ScannedCount)
	}
}

func TestBatchOperations(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "t-b1", "")
	createTable(t, c, "t-b2", types.ScalarAttributeTypeN)
	var w1 []types.WriteRequest
	for i := 0; i < 20; i++ {
		w1 = append(w1, types.WriteRequest{PutRequest: &types.PutRequest{Item: item{"pk": s(fmt.Sprint(i)), "v": n(fmt.Sprint(i))}}})
	}
	w2 := []types.WriteRequest{{PutRequest: &types.PutRequest{Item: item{"pk": s("x"), "sk": n("1")}}}}
	out, err := c.BatchWriteItem(ctxT(t), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t-b1": w1, "t-b2": w2}})
	if err != nil || len(out.UnprocessedItems) != 0 {
		t.Fatalf("BatchWriteItem: %v %v", err, out)
	}
	_, err = c.BatchWriteItem(ctxT(t), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t-b1": {
		{DeleteRequest: &types.DeleteRequest{Key: item{"pk": s("0")}}}, {DeleteRequest: &types.DeleteRequest{Key: item{"pk": s("1")}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	g, err := c.BatchGetItem(ctxT(t), &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{
		"t-b1": {Keys: []item{{"pk": s("0")}, {"pk": s("2")}, {"pk": s("3")}}, ProjectionExpression: aws.String("v")},
		"t-b2": {Keys: []item{{"pk": s("x"), "sk": n("1")}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Responses["t-b1"]) != 2 || len(g.Responses["t-b2"]) != 1 || g.Responses["t-b1"][0]["pk"] != nil {
		t.Fatalf("BatchGetItem: %v", g.Responses)
	}
	dup := []types.WriteRequest{{PutRequest: &types.PutRequest{Item: item{"pk": s("d")}}}, {DeleteRequest: &types.DeleteRequest{Key: item{"pk": s("d")}}}}
	_, err = c.BatchWriteItem(ctxT(t), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t-b1": dup}})
	if errMessage(err) != "Provided list of item keys contains duplicates" {
		t.Fatalf("duplicates: %v", err)
	}
	var many []types.WriteRequest
	for i := 0; i < 26; i++ {
		many = append(many, types.WriteRequest{PutRequest: &types.PutRequest{Item: item{"pk": s(fmt.Sprint("m", i))}}})
	}
	if _, err = c.BatchWriteItem(ctxT(t), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{"t-b1": many}}); errCode(err) != "ValidationException" {
		t.Fatalf("26 writes: %v", err)
	}
	if get(t, c, "t-b1", item{"pk": s("m0")}) != nil {
		t.Fatal("rejected batch wrote an item")
	}
}
