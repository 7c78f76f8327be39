package tables_test

import (
	"fmt"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/tables"
)

func put(t testing.TB, c *dynamodb.Client, table string, it item) {
	t.Helper()
	if _, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: aws.String(table), Item: it}); err != nil {
		t.Fatalf("PutItem: %v", err)
	}
}

func get(t testing.TB, c *dynamodb.Client, table string, key item) item {
	t.Helper()
	out, err := c.GetItem(ctxT(t), &dynamodb.GetItemInput{TableName: aws.String(table), Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatalf("GetItem: %v", err)
	}
	return out.Item
}

func names(kv ...string) map[string]string {
	if len(kv) == 0 {
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// baseItem is the item every condition case runs against.
func baseItem() item {
	return item{
		"pk":      s("lease-1"),
		"owner":   s("worker-a"),
		"ctr":     n("7"),
		"big":     n("12345678901234567890123456789012345678"),
		"frac":    n("0.5"),
		"flag":    bl(true),
		"nothing": null(),
		"tags":    ss("x", "y"),
		"nums":    ns("1", "2"),
		"lst":     l(s("p"), n("3"), m(item{"deep": s("d")})),
		"mp":      m(item{"a": m(item{"b": s("c")}), "n": n("10")}),
		"bin":     b([]byte{1, 2, 3}),
		"empty":   s(""),
	}
}

func TestConditionExpressions(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "cond", "")
	put(t, c, "cond", baseItem())
	cases := []struct {
		expr   string
		names  map[string]string
		values item
		want   bool
	}{
		{"attribute_exists(pk)", nil, nil, true},
		{"attribute_not_exists(pk)", nil, nil, false},
		{"attribute_not_exists(absent)", nil, nil, true},
		{"#o = :w", names("#o", "owner"), item{":w": s("worker-a")}, true},
		{"#o = :w", names("#o", "owner"), item{":w": s("worker-b")}, false},
		{"#o <> :w", names("#o", "owner"), item{":w": s("worker-b")}, true},
		{"absent <> :w", nil, item{":w": s("x")}, true},
		{"absent = :w", nil, item{":w": s("x")}, false},
		{"ctr = :v", nil, item{":v": n("7.000")}, true},
		{"ctr = :v", nil, item{":v": s("7")}, false},
		{"ctr < :v", nil, item{":v": n("10")}, true},
		{"ctr <= :v", nil, item{":v": n("7")}, true},
		{"ctr > :v", nil, item{":v": n("-100")}, true},
		{"ctr >= :v", nil, item{":v": n("7.0000000001")}, false},
		{"big > :v", nil, item{":v": n("12345678901234567890123456789012345677")}, true},
		{"big < :v", nil, item{":v": n("1.2345678901234567890123456789012345679E37")}, true},
		{"frac < :v", nil, item{":v": n("5E-1")}, false},
		{"frac BETWEEN :a AND :b", nil, item{":a": n("0.1"), ":b": n("0.5")}, true},
		{"ctr BETWEEN :a AND :b", nil, item{":a": n("8"), ":b": n("9")}, false},
		{"#o BETWEEN :a AND :b", names("#o", "owner"), item{":a": s("worker-"), ":b": s("worker-b")}, true},
		{"ctr IN (:a, :b, :c)", nil, item{":a": n("1"), ":b": n("7"), ":c": s("7")}, true},
		{"ctr IN (:a)", nil, item{":a": s("7")}, false},
		{"begins_with(#o, :p)", names("#o", "owner"), item{":p": s("work")}, true},
		{"begins_with(#o, :p)", names("#o", "owner"), item{":p": s("nope")}, false},
		{"begins_with(bin, :p)", nil, item{":p": b([]byte{1, 2})}, true},
		{"contains(#o, :p)", names("#o", "owner"), item{":p": s("ker-")}, true},
		{"contains(tags, :p)", nil, item{":p": s("y")}, true},
		{"contains(tags, :p)", nil, item{":p": s("z")}, false},
		{"contains(nums, :p)", nil, item{":p": n("2.0")}, true},
		{"contains(lst, :p)", nil, item{":p": n("3")}, true},
		{"attribute_type(flag, :t)", nil, item{":t": s("BOOL")}, true},
		{"attribute_type(nothing, :t)", nil, item{":t": s("NULL")}, true},
		{"attribute_type(tags, :t)", nil, item{":t": s("NS")}, false},
		{"size(tags) = :two", nil, item{":two": n("2")}, true},
		{"size(#o) > :v", names("#o", "owner"), item{":v": n("7")}, true},
		{"size(mp) = :v", nil, item{":v": n("2")}, true},
		{"size(absent) = :v", nil, item{":v": n("0")}, false},
		{"mp.a.b = :c", nil, item{":c": s("c")}, true},
		{"#m.#a.b = :c", names("#m", "mp", "#a", "a"), item{":c": s("c")}, true},
		{"lst[2].deep = :d", nil, item{":d": s("d")}, true},
		{"lst[0] = :d", nil, item{":d": s("p")}, true},
		{"lst[9] = :d", nil, item{":d": s("p")}, false},
		{"mp.n > ctr", nil, nil, true},
		{"tags = :t", nil, item{":t": ss("y", "x")}, true},
		{"lst = :l", nil, item{":l": l(s("p"), n("3"), m(item{"deep": s("d")}))}, true},
		{"flag = :t AND ctr = :c", nil, item{":t": bl(true), ":c": n("7")}, true},
		{"flag = :t AND ctr = :c", nil, item{":t": bl(false), ":c": n("7")}, false},
		{"flag = :t OR ctr = :c", nil, item{":t": bl(false), ":c": n("7")}, true},
		{"NOT flag = :t", nil, item{":t": bl(false)}, true},
		{"NOT (flag = :t OR ctr = :c)", nil, item{":t": bl(false), ":c": n("7")}, false},
		{"(attribute_not_exists(pk) OR #o = :me) AND ctr = :c", names("#o", "owner"), item{":me": s("worker-a"), ":c": n("7")}, true},
		{"attribute_not_exists(pk) OR #o = :me AND ctr = :c", names("#o", "owner"), item{":me": s("worker-b"), ":c": n("7")}, false},
		{"#e = :e", names("#e", "empty"), item{":e": s("")}, true},
		{"nothing = :n", nil, item{":n": null()}, true},
	}
	for i, tc := range cases {
		t.Run(fmt.Sprintf("%d_%s", i, tc.expr), func(t *testing.T) {
			_, err := c.UpdateItem(ctxT(t), &dynamodb.UpdateItemInput{
				TableName:                 aws.String("cond"),
				Key:                       item{"pk": s("lease-1")},
				ConditionExpression:       aws.String(tc.expr),
				ExpressionAttributeNames:  tc.names,
				ExpressionAttributeValues: tc.values,
			})
			if tc.want && err != nil {
				t.Fatalf("want pass, got %v", err)
			}
			if !tc.want && errCode(err) != "ConditionalCheckFailedException" {
				t.Fatalf("want ConditionalCheckFailedException, got %v", err)
			}
		})
	}
	if got := get(t, c, "cond", item{"pk": s("lease-1")}); !reflect.DeepEqual(got, baseItem()) {
		t.Fatalf("item changed by empty updates: %#v", got)
	}
}

func TestUpdateExpressions(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "upd", "")
	cases := []struct {
		name   string
		start  item
		expr   string
		names  map[string]string
		values item
		want   item
		err    string
	}{
		{"set new", nil, "SET a = :v", nil, item{":v": s("x")}, item{"a": s("x")}, ""},
		{"set plus", item{"c": n("1")}, "SET c = c + :one", nil, item{":one": n("1")}, item{"c": n("2")}, ""},
		{"set minus to negative", item{"c": n("1")}, "SET c = c - :v", nil, item{":v": n("2.5")}, item{"c": n("-1.5")}, ""},
		{"exact big add", item{"c": n("99999999999999999999999999999999999998")}, "SET c = c + :one", nil, item{":one": n("1")}, item{"c": n("99999999999999999999999999999999999999")}, ""},
		{"add overflows precision", item{"c": n("99999999999999999999999999999999999999")}, "SET c = c + :v", nil, item{":v": n("0.1")}, nil, "ValidationException"},
		{"if_not_exists absent", nil, "SET c = if_not_exists(c, :z) + :one", nil, item{":z": n("0"), ":one": n("1")}, item{"c": n("1")}, ""},
		{"if_not_exists present", item{"c": n("5")}, "SET c = if_not_exists(c, :z) + :one", nil, item{":z": n("0"), ":one": n("1")}, item{"c": n("6")}, ""},
		{"list_append", item{"l": l(s("a"))}, "SET l = list_append(l, :more)", nil, item{":more": l(s("b"))}, item{"l": l(s("a"), s("b"))}, ""},
		{"list_append front", item{"l": l(s("a"))}, "SET l = list_append(:more, l)", nil, item{":more": l(s("b"))}, item{"l": l(s("b"), s("a"))}, ""},
		{"set nested", item{"m": m(item{"a": n("1")})}, "SET m.b = :v, m.a = :w", nil, item{":v": s("x"), ":w": n("2")}, item{"m": m(item{"a": n("2"), "b": s("x")})}, ""},
		{"set nested missing parent", nil, "SET m.b = :v", nil, item{":v": s("x")}, nil, "ValidationException"},
		{"set list index", item{"l": l(s("a"), s("b"))}, "SET l[1] = :v", nil, item{":v": s("z")}, item{"l": l(s("a"), s("z"))}, ""},
		{"set list past end appends", item{"l": l(s("a"))}, "SET l[5] = :v", nil, item{":v": s("z")}, item{"l": l(s("a"), s("z"))}, ""},
		{"remove", item{"a": s("x"), "b": s("y")}, "REMOVE a", nil, nil, item{"b": s("y")}, ""},
		{"remove list element", item{"l": l(s("a"), s("b"), s("c"))}, "REMOVE l[1]", nil, nil, item{"l": l(s("a"), s("c"))}, ""},
		{"remove nested", item{"m": m(item{"a": n("1"), "b": n("2")})}, "REMOVE m.a", nil, nil, item{"m": m(item{"b": n("2")})}, ""},
		{"add number new", nil, "ADD c :v", nil, item{":v": n("5")}, item{"c": n("5")}, ""},
		{"add number", item{"c": n("5")}, "ADD c :v", nil, item{":v": n("-7")}, item{"c": n("-2")}, ""},
		{"add set", item{"t": ss("a")}, "ADD t :v", nil, item{":v": ss("a", "b")}, item{"t": ss("a", "b")}, ""},
		{"add type mismatch", item{"t": ss("a")}, "ADD t :v", nil, item{":v": n("1")}, nil, "ValidationException"},
		{"delete from set", item{"t": ss("a", "b", "c")}, "DELETE t :v", nil, item{":v": ss("b", "z")}, item{"t": ss("a", "c")}, ""},
		{"delete last removes", item{"t": ns("1")}, "DELETE t :v", nil, item{":v": ns("1")}, item{}, ""},
		{"all clauses", item{"a": n("1"), "r": s("x"), "t": ss("q")}, "SET a = a + :one REMOVE r ADD t :add DELETE u :del", nil,
			item{":one": n("1"), ":add": ss("w"), ":del": ss("q")}, item{"a": n("2"), "t": ss("q", "w")}, ""},
		{"rhs uses old values", item{"a": n("1"), "b": n("2")}, "SET a = b, b = a", nil, nil, item{"a": n("2"), "b": n("1")}, ""},
		{"plus on string", item{"a": s("x")}, "SET a = a + :one", nil, item{":one": n("1")}, nil, "ValidationException"},
		{"plus on missing", nil, "SET a = a + :one", nil, item{":one": n("1")}, nil, "ValidationException"},
		{"overlapping paths", nil, "SET a = :v, a.b = :v", nil, item{":v": n("1")}, nil, "ValidationException"},
		{"key attribute", nil, "SET pk = :v", nil, item{":v": s("other")}, nil, "ValidationException"},
		{"clause twice", nil, "SET a = :v SET b = :v", nil, item{":v": n("1")}, nil, "ValidationException"},
		{"names", nil, "SET #s = :v", names("#s", "status"), item{":v": s("x")}, item{"status": s("x")}, ""},
		{"reserved word", nil, "SET status = :v", nil, item{":v": s("x")}, nil, "ValidationException"},
		{"too big", nil, "SET a = :v", nil, item{":v": s(strings.Repeat("x", 410*1024))}, nil, "ValidationException"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pk := fmt.Sprintf("item-%d", i)
			if tc.start != nil {
				it := item{"pk": s(pk)}
				for k, v := range tc.start {
					it[k] = v
				}
				put(t, c, "upd", it)
			}
			_, err := c.UpdateItem(ctxT(t), &dynamodb.UpdateItemInput{
				TableName:                 aws.String("upd"),
				Key:                       item{"pk": s(pk)},
				UpdateExpression:          aws.String(tc.expr),
				ExpressionAttributeNames:  tc.names,
				ExpressionAttributeValues: tc.values,
			})
			if tc.err != "" {
				if errCode(err) != tc.err {
					t.Fatalf("want %s, got %v", tc.err, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := item{"pk": s(pk)}
			for k, v := range tc.want {
				want[k] = v
			}
			got := get(t, c, "upd", item{"pk": s(pk)})
			if !reflect.DeepEqual(normalizeSets(got), normalizeSets(want)) {
				t.Fatalf("got %s\nwant %s", dump(got), dump(want))
			}
		})
	}
}

func TestReturnValues(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "retvals", "")
	key := item{"pk": s("k")}
	put(t, c, "retvals", item{"pk": s("k"), "a": n("1"), "b": s("keep")})
	cases := []struct {
		rv   types.ReturnValue
		want item
	}{
		{types.ReturnValueNone, nil},
		{types.ReturnValueAllOld, item{"pk": s("k"), "a": n("2"), "b": s("keep")}},
		{types.ReturnValueUpdatedOld, item{"a": n("3")}},
		{types.ReturnValueAllNew, item{"pk": s("k"), "a": n("5"), "b": s("keep")}},
		{types.ReturnValueUpdatedNew, item{"a": n("6")}},
	}
	for _, tc := range cases {
		out, err := c.UpdateItem(ctxT(t), &dynamodb.UpdateItemInput{
			TableName: aws.String("retvals"), Key: key, UpdateExpression: aws.String("SET a = a + :one"),
			ExpressionAttributeValues: item{":one": n("1")}, ReturnValues: tc.rv,
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.rv, err)
		}
		if !reflect.DeepEqual(out.Attributes, tc.want) && !(len(out.Attributes) == 0 && tc.want == nil) {
			t.Fatalf("%s: got %s want %s", tc.rv, dump(out.Attributes), dump(tc.want))
		}
	}
	pout, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: aws.String("retvals"), Item: item{"pk": s("k")}, ReturnValues: types.ReturnValueAllOld})
	if err != nil || pout.Attributes["a"].(*types.AttributeValueMemberN).Value != "6" {
		t.Fatalf("PutItem ALL_OLD: %v %s", err, dump(pout.Attributes))
	}
	if _, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: aws.String("retvals"), Item: key, ReturnValues: types.ReturnValueAllNew}); errCode(err) != "ValidationException" {
		t.Fatalf("PutItem ALL_NEW: %v", err)
	}
	dout, err := c.DeleteItem(ctxT(t), &dynamodb.DeleteItemInput{TableName: aws.String("retvals"), Key: key, ReturnValues: types.ReturnValueAllOld})
	if err != nil || dout.Attributes["pk"] == nil {
		t.Fatalf("DeleteItem ALL_OLD: %v %s", err, dump(dout.Attributes))
	}
	if got := get(t, c, "retvals", key); got != nil {
		t.Fatalf("deleted item still there: %s", dump(got))
	}
}

func TestConditionalCheckFailedCarriesOldItem(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "ccf", "")
	old := item{"pk": s("lease"), "leaseOwner": s("a"), "leaseCounter": n("3")}
	put(t, c, "ccf", old)
	cond := aws.String("leaseCounter = :c")
	vals := item{":c": n("2"), ":o": s("b")}
	upd := aws.String("SET leaseOwner = :o")
	for _, rv := range []types.ReturnValuesOnConditionCheckFailure{types.ReturnValuesOnConditionCheckFailureAllOld, types.ReturnValuesOnConditionCheckFailureNone} {
		_, err := c.UpdateItem(ctxT(t), &dynamodb.UpdateItemInput{TableName: aws.String("ccf"), Key: item{"pk": s("lease")}, ConditionExpression: cond,
			UpdateExpression: upd, ExpressionAttributeValues: vals, ReturnValuesOnConditionCheckFailure: rv})
		var ccf *types.ConditionalCheckFailedException
		if !errorsAs(err, &ccf) {
			t.Fatalf("%s: want ConditionalCheckFailedException, got %v", rv, err)
		}
		if rv == types.ReturnValuesOnConditionCheckFailureAllOld && !reflect.DeepEqual(ccf.Item, old) {
			t.Fatalf("ALL_OLD: item %s", dump(ccf.Item))
		}
		if rv == types.ReturnValuesOnConditionCheckFailureNone && ccf.Item != nil {
			t.Fatalf("NONE: item %s", dump(ccf.Item))
		}
	}
	_, err := c.DeleteItem(ctxT(t), &dynamodb.DeleteItemInput{TableName: aws.String("ccf"), Key: item{"pk": s("lease")}, ConditionExpression: aws.String("leaseOwner = :o"),
		ExpressionAttributeValues: item{":o": s("b")}, ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	var ccf *types.ConditionalCheckFailedException
	if !errorsAs(err, &ccf) || !reflect.DeepEqual(ccf.Item, old) {
		t.Fatalf("DeleteItem: %v", err)
	}
	_, err = c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: aws.String("ccf"), Item: item{"pk": s("new")}, ConditionExpression: aws.String("attribute_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld})
	if !errorsAs(err, &ccf) || ccf.Item != nil {
		t.Fatalf("PutItem on missing item: %v", err)
	}
}

func TestValidationErrors(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "val", types.ScalarAttributeTypeN)
	tbl := aws.String("val")
	key := item{"pk": s("a"), "sk": n("1")}
	cases := []struct {
		name string
		call func() error
		code string
		msg  string
	}{
		{"missing range key", func() error {
			_, err := c.GetItem(ctxT(t), &dynamodb.GetItemInput{TableName: tbl, Key: item{"pk": s("a")}})
			return err
		}, "ValidationException", "The provided key element does not match the schema"},
		{"extra key attribute", func() error {
			_, err := c.GetItem(ctxT(t), &dynamodb.GetItemInput{TableName: tbl, Key: item{"pk": s("a"), "sk": n("1"), "x": s("y")}})
			return err
		}, "ValidationException", "The provided key element does not match the schema"},
		{"key type mismatch", func() error {
			_, err := c.GetItem(ctxT(t), &dynamodb.GetItemInput{TableName: tbl, Key: item{"pk": s("a"), "sk": s("1")}})
			return err
		}, "ValidationException", "The provided key element does not match the schema"},
		{"put missing key", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: item{"pk": s("a")}})
			return err
		}, "ValidationException", "One or more parameter values were invalid: Missing the key sk in the item"},
		{"put key type", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: item{"pk": n("1"), "sk": n("1")}})
			return err
		}, "ValidationException", "One or more parameter values were invalid: Type mismatch for key pk expected: S actual: N"},
		{"empty string key", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: item{"pk": s(""), "sk": n("1")}})
			return err
		}, "ValidationException", "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: pk"},
		{"no such table", func() error {
			_, err := c.GetItem(ctxT(t), &dynamodb.GetItemInput{TableName: aws.String("nope"), Key: key})
			return err
		}, "ResourceNotFoundException", "Requested resource not found"},
		{"syntax error", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: key, ConditionExpression: aws.String("a = = :v"), ExpressionAttributeValues: item{":v": n("1")}})
			return err
		}, "ValidationException", `Invalid ConditionExpression: Syntax error; token: "=", near: "a = = :v"`},
		{"undefined value", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: key, ConditionExpression: aws.String("a = :nope")})
			return err
		}, "ValidationException", "Invalid ConditionExpression: An expression attribute value used in expression is not defined; attribute value: :nope"},
		{"undefined name", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: key, ConditionExpression: aws.String("attribute_exists(#n)")})
			return err
		}, "ValidationException", "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: #n"},
		{"unused value", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: key, ConditionExpression: aws.String("attribute_exists(a)"), ExpressionAttributeValues: item{":x": n("1")}})
			return err
		}, "ValidationException", "Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}"},
		{"unused name", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: key, ConditionExpression: aws.String("attribute_exists(a)"), ExpressionAttributeNames: names("#x", "x")})
			return err
		}, "ValidationException", "Value provided in ExpressionAttributeNames unused in expressions: keys: {#x}"},
		{"values without expression", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: key, ExpressionAttributeValues: item{":x": n("1")}})
			return err
		}, "ValidationException", "ExpressionAttributeValues can only be specified when using expressions"},
		{"unknown function", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: key, ConditionExpression: aws.String("exists(a)")})
			return err
		}, "ValidationException", "Invalid ConditionExpression: Invalid function name; function: exists"},
		{"bad number", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: item{"pk": s("a"), "sk": n("1"), "x": n("12abc")}})
			return err
		}, "ValidationException", "A value provided cannot be converted into a number"},
		{"too many digits", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: item{"pk": s("a"), "sk": n("1"), "x": n("1234567890123456789012345678901234567891")}})
			return err
		}, "ValidationException", "Attempting to store more than 38 significant digits in a Number"},
		{"empty set", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: item{"pk": s("a"), "sk": n("1"), "x": ss()}})
			return err
		}, "ValidationException", "One or more parameter values were invalid: An string set  may not be empty"},
		{"duplicate set member", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: item{"pk": s("a"), "sk": n("1"), "x": ns("1", "1.0")}})
			return err
		}, "ValidationException", "One or more parameter values were invalid: Input collection contains duplicates"},
		{"update return values on put", func() error {
			_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: tbl, Item: key, ReturnValues: types.ReturnValueUpdatedNew})
			return err
		}, "ValidationException", "Return values set to invalid value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if errCode(err) != tc.code || errMessage(err) != tc.msg {
				t.Fatalf("got %s %q\nwant %s %q", errCode(err), errMessage(err), tc.code, tc.msg)
			}
		})
	}
}

// TestConcurrentConditionalWrites is the lease-fencing property: many writers race to
// move one item from counter c to c+1; for every counter value exactly one wins.
func TestConcurrentConditionalWrites(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "race", "")
	put(t, c, "race", item{"pk": s("lease"), "leaseCounter": n("0"), "leaseOwner": s("none")})
	const workers, attempts = 12, 40
	var wins atomic.Int64
	winners := make([]map[string]string, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			winners[w] = map[string]string{}
			me := fmt.Sprintf("worker-%d", w)
			for i := 0; i < attempts; i++ {
				cur := get(t, c, "race", item{"pk": s("lease")})
				ctr := cur["leaseCounter"].(*types.AttributeValueMemberN).Value
				_, err := c.UpdateItem(ctxT(t), &dynamodb.UpdateItemInput{
					TableName:                 aws.String("race"),
					Key:                       item{"pk": s("lease")},
					ConditionExpression:       aws.String("leaseCounter = :c"),
					UpdateExpression:          aws.String("SET leaseCounter = leaseCounter + :one, leaseOwner = :me"),
					ExpressionAttributeValues: item{":c": n(ctr), ":one": n("1"), ":me": s(me)},
				})
				switch errCode(err) {
				case "":
					wins.Add(1)
					winners[w][ctr] = me
				case "ConditionalCheckFailedException":
				default:
					t.Errorf("UpdateItem: %v", err)
					return
				}
			}
		}(w)
	}
	wg.Wait()
	final := get(t, c, "race", item{"pk": s("lease")})
	ctr := final["leaseCounter"].(*types.AttributeValueMemberN).Value
	if ctr != fmt.Sprint(wins.Load()) {
		t.Fatalf("counter %s after %d successful conditional increments", ctr, wins.Load())
	}
	seen := map[string]string{}
	for _, m := range winners {
		for k, who := range m {
			if prev, dup := seen[k]; dup {
				t.Fatalf("counter value %s won by both %s and %s", k, prev, who)
			}
			seen[k] = who
		}
	}
	if wins.Load() == 0 {
		t.Fatal("no writer ever won")
	}
}

// TestConcurrentCreateOnce: of many writers creating the same item with
// attribute_not_exists, exactly one succeeds.
func TestConcurrentCreateOnce(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "once", "")
	const workers, rounds = 16, 10
	for r := 0; r < rounds; r++ {
		var wins atomic.Int64
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{
					TableName: aws.String("once"), Item: item{"pk": s(fmt.Sprint("lease-", r)), "owner": s(fmt.Sprint(w))},
					ConditionExpression: aws.String("attribute_not_exists(pk)"),
				})
				switch errCode(err) {
				case "":
					wins.Add(1)
				case "ConditionalCheckFailedException":
				default:
					t.Errorf("PutItem: %v", err)
				}
			}(w)
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners", r, wins.Load())
		}
	}
}

func TestTableActivationDelay(t *testing.T) {
	clk := clock.NewManual(time.Unix(1_700_000_000, 0))
	e := enginetest.Start(t, engine.Config{Clock: clk, Tables: tables.Config{TableActivationDelay: 5 * time.Second}})
	c := enginetest.DynamoDB(e)
	createTable(t, c, "slow", "")
	d, err := c.DescribeTable(ctxT(t), &dynamodb.DescribeTableInput{TableName: aws.String("slow")})
	if err != nil || d.Table.TableStatus != types.TableStatusCreating {
		t.Fatalf("status %v err %v", d, err)
	}
	if _, err := c.GetItem(ctxT(t), &dynamodb.GetItemInput{TableName: aws.String("slow"), Key: item{"pk": s("a")}}); errCode(err) != "ResourceNotFoundException" {
		t.Fatalf("GetItem on CREATING table: %v", err)
	}
	clk.Advance(5 * time.Second)
	d, err = c.DescribeTable(ctxT(t), &dynamodb.DescribeTableInput{TableName: aws.String("slow")})
	if err != nil || d.Table.TableStatus != types.TableStatusActive {
		t.Fatalf("status %v err %v", d.Table.TableStatus, err)
	}
	w := dynamodb.NewTableExistsWaiter(c)
	if err := w.Wait(ctxT(t), &dynamodb.DescribeTableInput{TableName: aws.String("slow")}, time.Second); err != nil {
		t.Fatal(err)
	}
	put(t, c, "slow", item{"pk": s("a")})
}

func TestConfigValidation(t *testing.T) {
	if _, err := tables.New(tables.Config{TableActivationDelay: -time.Second}, nil); !errorsIs(err, tables.ErrInvalidOption) {
		t.Fatalf("negative delay: %v", err)
	}
	if _, err := tables.New(tables.Config{}, nil); err != nil {
		t.Fatal(err)
	}
}
