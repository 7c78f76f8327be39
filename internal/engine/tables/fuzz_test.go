package tables

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/freshet/freshet/clock"
)

func fuzzItem() Item {
	return Item{
		"pk":  {T: TypeS, S: "k"},
		"n":   {T: TypeN, S: "12.5"},
		"s":   {T: TypeS, S: "hello"},
		"l":   {T: TypeL, L: []Value{{T: TypeN, S: "1"}, {T: TypeM, M: map[string]Value{"x": {T: TypeBOOL, Bool: true}}}}},
		"m":   {T: TypeM, M: map[string]Value{"a": {T: TypeM, M: map[string]Value{"b": {T: TypeS, S: "c"}}}}},
		"ss":  {T: TypeSS, Set: []string{"a", "b"}},
		"ns":  {T: TypeNS, Set: []string{"1", "2"}},
		"nul": {T: TypeNULL, Bool: true},
	}
}

// FuzzExpressions parses arbitrary condition, update and projection expressions and runs
// whatever parses against an item: parsing and evaluation must never panic.
func FuzzExpressions(f *testing.F) {
	for _, seed := range []string{
		"attribute_exists(pk) AND #a = :s", "NOT (n BETWEEN :n AND :n) OR s IN (:s, :n)", "size(l) > :n AND contains(ss, :s)",
		"begins_with(s, :s) AND attribute_type(m, :s)", "m.a.b = :s AND l[1].x <> :n", "((((n < :n))))",
		"SET n = n + :n, #a = if_not_exists(#a, :s) REMOVE l[0] ADD ns :ns DELETE ss :ss", "SET l = list_append(l, :l), m.a.c = :s",
		"pk, m.a.b, l[1], #a", "SET a = b - c", "REMOVE m.a.b, l[5]", "ADD n :n", "",
	} {
		f.Add(uint8(0), seed)
		f.Add(uint8(1), seed)
		f.Add(uint8(2), seed)
	}
	vals := map[string]Value{
		":s":  {T: TypeS, S: "hello"},
		":n":  {T: TypeN, S: "3"},
		":l":  {T: TypeL, L: []Value{{T: TypeS, S: "z"}}},
		":ns": {T: TypeNS, Set: []string{"7"}},
		":ss": {T: TypeSS, Set: []string{"a"}},
	}
	names := map[string]string{"#a": "attr"}
	f.Fuzz(func(t *testing.T, kind uint8, expr string) {
		p := newExprParser(names, vals)
		it := fuzzItem()
		switch kind % 3 {
		case 0:
			c, err := p.parseCondition("ConditionExpression", expr)
			if err == nil {
				c.eval(it)
				c.eval(nil)
				_, _ = analyzeKeyCondition(c, keySchema{hash: "pk", hashT: TypeS, rng: "n", rngT: TypeN})
			} else if _, ok := asValidation(err); !ok {
				t.Fatalf("non-validation error %v", err)
			}
		case 1:
			acts, err := p.parseUpdate(expr)
			if err == nil {
				if nw, err := applyUpdate(it, acts); err == nil {
					_ = itemSize(nw)
					_ = changedAttributes(nw, acts)
				}
				if !equalItems(it, fuzzItem()) {
					t.Fatal("update changed the original item")
				}
			}
		case 2:
			paths, err := p.parseProjection(expr)
			if err == nil {
				_ = project(it, paths)
			}
		}
		_ = p.checkUnused()
	})
}

func equalItems(a, b Item) bool {
	return equalValues(Value{T: TypeM, M: a}, Value{T: TypeM, M: b})
}

// FuzzNumbers checks that canonical number text parses back to the same number and that
// ordering agrees with addition.
func FuzzNumbers(f *testing.F) {
	for _, s := range []string{"0", "-0.0", "1e10", "1.5E-3", "99999999999999999999999999999999999999", "-1E-130", "9.9E125", ".5", "12abc", "+7"} {
		f.Add(s, "1")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		da, err := parseNumber(a)
		if err != nil {
			return
		}
		back, err := parseNumber(da.String())
		if err != nil || cmpDecimal(da, back) != 0 || back.String() != da.String() {
			t.Fatalf("%q -> %q does not round-trip (%v)", a, da.String(), err)
		}
		db, err := parseNumber(b)
		if err != nil {
			return
		}
		diff, err := addDecimal(da, negDecimal(db))
		if err != nil {
			return
		}
		c := cmpDecimal(da, db)
		z := cmpDecimal(diff, decimal{})
		if c != z {
			t.Fatalf("cmp(%s, %s) = %d but difference %s has sign %d", da, db, c, diff, z)
		}
	})
}

// FuzzRequests sends arbitrary JSON bodies to every operation: the service must answer
// with a success or a client error (a recovered panic would be a 500).
func FuzzRequests(f *testing.F) {
	seeds := []string{
		`{"TableName":"tb1","Key":{"pk":{"S":"a"}}}`,
		`{"TableName":"tb1","Item":{"pk":{"S":"a"},"n":{"N":"1"},"l":{"L":[{"M":{"x":{"NULL":true}}}]},"b":{"B":"AAE="},"bs":{"BS":["AA=="]}}}`,
		`{"TableName":"tb1","Key":{"pk":{"S":"a"}},"UpdateExpression":"SET n = n + :o","ExpressionAttributeValues":{":o":{"N":"1"}},"ReturnValues":"ALL_NEW"}`,
		`{"TableName":"tb1","KeyConditionExpression":"pk = :p","ExpressionAttributeValues":{":p":{"S":"a"}},"Limit":1}`,
		`{"TableName":"tb1","ExclusiveStartKey":{"pk":{"S":"a"}},"Segment":0,"TotalSegments":2}`,
		`{"RequestItems":{"tb1":{"Keys":[{"pk":{"S":"a"}}]}}}`,
		`{"RequestItems":{"tb1":[{"PutRequest":{"Item":{"pk":{"S":"b"}}}},{"DeleteRequest":{"Key":{"pk":{"S":"a"}}}}]}}`,
		`{"TableName":"tb2","AttributeDefinitions":[{"AttributeName":"h","AttributeType":"S"}],"KeySchema":[{"AttributeName":"h","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST"}`,
		`{"TableName":"tb1","GlobalSecondaryIndexUpdates":[{"Create":{"IndexName":"ix","KeySchema":[{"AttributeName":"g","KeyType":"HASH"}],"Projection":{"ProjectionType":"ALL"}}}],"AttributeDefinitions":[{"AttributeName":"g","AttributeType":"S"}]}`,
		`{"ResourceArn":"arn:aws:dynamodb:us-east-1:000000000000:table/tb1","Tags":[{"Key":"k","Value":"v"}]}`,
		`{"TableName":"tb1","Item":{"pk":{"S":"a"},"x":{"S":"1","N":"1"}}}`, `[]`, `{"TableName":5}`, ``,
	}
	ops := []string{"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem",
		"CreateTable", "DescribeTable", "UpdateTable", "DeleteTable", "ListTables", "TagResource", "ListTagsOfResource", "UpdateContinuousBackups"}
	for i, s := range seeds {
		f.Add(uint8(i), s)
	}
	f.Fuzz(func(t *testing.T, op uint8, body string) {
		s, err := New(Config{}, clock.Real())
		if err != nil {
			t.Fatal(err)
		}
		create := `{"TableName":"tb1","AttributeDefinitions":[{"AttributeName":"pk","AttributeType":"S"},{"AttributeName":"g","AttributeType":"S"}],` +
			`"KeySchema":[{"AttributeName":"pk","KeyType":"HASH"}],"BillingMode":"PAY_PER_REQUEST",` +
			`"GlobalSecondaryIndexes":[{"IndexName":"gix","KeySchema":[{"AttributeName":"g","KeyType":"HASH"}],"Projection":{"ProjectionType":"KEYS_ONLY"}}]}`
		if code := serve(s, "CreateTable", create); code != 200 {
			t.Fatalf("CreateTable: %d", code)
		}
		name := ops[int(op)%len(ops)]
		code := serve(s, name, body)
		if code != 200 && code != 400 {
			t.Fatalf("%s %q: status %d", name, body, code)
		}
	})
}

func serve(s *Service, op, body string) int {
	r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(body)))
	w := httptest.NewRecorder()
	s.ServeOperation(w, r, op)
	if w.Code == 200 && !json.Valid(w.Body.Bytes()) {
		return 599
	}
	return w.Code
}

// FuzzValueDecoding checks that the compact-scalar fast path of Value.UnmarshalJSON reads
// every JSON value exactly as the wire-struct decoding does: the same value, or an
// error in both.
func FuzzValueDecoding(f *testing.F) {
	for _, seed := range []string{`{"S":"shardId-000000000001"}`, `{"N":"0012.50"}`, `{"N":"x"}`, `{"S":""}`, `{"S":"a\"b"}`,
		`{"S":"\u00e9"}`, "{\"S\":\"\xff\"}", `{"S":"a","N":"1"}`, `{"N":"1e400"}`, `{ "S":"a"}`, `{"SS":["a"]}`, `{"B":"AA=="}`, `null`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		var fast, slow Value
		errFast, errSlow := fast.UnmarshalJSON(b), slow.unmarshalWire(b)
		if (errFast == nil) != (errSlow == nil) || errFast == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast path %+v, %v; wire decoding %+v, %v", b, fast, errFast, slow, errSlow)
		}
		if errFast != nil && errFast.Error() != errSlow.Error() {
			t.Fatalf("%q: fast path error %v, wire decoding %v", b, errFast, errSlow)
		}
	})
}
