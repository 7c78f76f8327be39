package tables_test

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// The legacy Expected parameter (still sent by the Java SDK, e.g. by KCL 3.x's
// coordinator-state DAO) is evaluated like the equivalent ConditionExpression.
func TestLegacyExpected(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "tbl", "")
	put(t, c, "tbl", baseItem())
	key := item{"pk": s("lease-1")}
	yes, no := aws.Bool(true), aws.Bool(false)
	cases := []struct {
		name  string
		exp   map[string]types.ExpectedAttributeValue
		op    types.ConditionalOperator
		holds bool
	}{
		{"value equal", map[string]types.ExpectedAttributeValue{"owner": {Value: s("worker-a")}}, "", true},
		{"value differs", map[string]types.ExpectedAttributeValue{"owner": {Value: s("worker-b")}}, "", false},
		{"exists true with value", map[string]types.ExpectedAttributeValue{"ctr": {Value: n("7"), Exists: yes}}, "", true},
		{"exists false on present", map[string]types.ExpectedAttributeValue{"owner": {Exists: no}}, "", false},
		{"exists false on absent", map[string]types.ExpectedAttributeValue{"missing": {Exists: no}}, "", true},
		{"GT", map[string]types.ExpectedAttributeValue{"ctr": {ComparisonOperator: types.ComparisonOperatorGt, AttributeValueList: []types.AttributeValue{n("6")}}}, "", true},
		{"LT fails", map[string]types.ExpectedAttributeValue{"ctr": {ComparisonOperator: types.ComparisonOperatorLt, AttributeValueList: []types.AttributeValue{n("6")}}}, "", false},
		{"BETWEEN", map[string]types.ExpectedAttributeValue{"ctr": {ComparisonOperator: types.ComparisonOperatorBetween, AttributeValueList: []types.AttributeValue{n("1"), n("9")}}}, "", true},
		{"IN", map[string]types.ExpectedAttributeValue{"owner": {ComparisonOperator: types.ComparisonOperatorIn, AttributeValueList: []types.AttributeValue{s("x"), s("worker-a")}}}, "", true},
		{"NULL on absent", map[string]types.ExpectedAttributeValue{"missing": {ComparisonOperator: types.ComparisonOperatorNull}}, "", true},
		{"NOT_NULL on absent", map[string]types.ExpectedAttributeValue{"missing": {ComparisonOperator: types.ComparisonOperatorNotNull}}, "", false},
		{"BEGINS_WITH", map[string]types.ExpectedAttributeValue{"owner": {ComparisonOperator: types.ComparisonOperatorBeginsWith, AttributeValueList: []types.AttributeValue{s("work")}}}, "", true},
		{"AND one fails", map[string]types.ExpectedAttributeValue{"owner": {Value: s("worker-a")}, "ctr": {Value: n("8")}}, types.ConditionalOperatorAnd, false},
		{"OR one holds", map[string]types.ExpectedAttributeValue{"owner": {Value: s("worker-a")}, "ctr": {Value: n("8")}}, types.ConditionalOperatorOr, true},
		{"default AND", map[string]types.ExpectedAttributeValue{"owner": {Value: s("worker-a")}, "ctr": {Value: n("7")}}, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.UpdateItem(ctxT(t), &dynamodb.UpdateItemInput{
				TableName: aws.String("tbl"), Key: key, Expected: tc.exp, ConditionalOperator: tc.op,
				UpdateExpression:          aws.String("SET touched = :t"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":t": n("1")},
			})
			// UpdateExpression with Expected mixes the two forms: DynamoDB refuses it.
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
				t.Fatalf("UpdateExpression with Expected: %v, want ValidationException", err)
			}
			_, err = c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: aws.String("tbl"), Item: baseItem(), Expected: tc.exp, ConditionalOperator: tc.op})
			var failed *types.ConditionalCheckFailedException
			switch {
			case tc.holds && err != nil:
				t.Fatalf("PutItem: %v, want success", err)
			case !tc.holds && !errors.As(err, &failed):
				t.Fatalf("PutItem: %v, want ConditionalCheckFailedException", err)
			}
			_, err = c.DeleteItem(ctxT(t), &dynamodb.DeleteItemInput{TableName: aws.String("tbl"), Key: key, Expected: tc.exp, ConditionalOperator: tc.op})
			if tc.holds != (err == nil) {
				t.Fatalf("DeleteItem: %v, holds %v", err, tc.holds)
			}
			put(t, c, "tbl", baseItem())
		})
	}
	for name, exp := range map[string]map[string]types.ExpectedAttributeValue{
		"exists false with value": {"owner": {Value: s("x"), Exists: no}},
		"exists true no value":    {"owner": {Exists: yes}},
		"operator and value":      {"owner": {Value: s("x"), ComparisonOperator: types.ComparisonOperatorEq}},
		"BETWEEN one value":       {"ctr": {ComparisonOperator: types.ComparisonOperatorBetween, AttributeValueList: []types.AttributeValue{n("1")}}},
	} {
		_, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: aws.String("tbl"), Item: baseItem(), Expected: exp})
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "ValidationException" {
			t.Errorf("%s: %v, want ValidationException", name, err)
		}
	}
}

// AttributeUpdates (KCL 3.x's lease assignment sends it) applies PUT, ADD and DELETE as
// the matching UpdateExpression clauses, under a legacy Expected condition.
func TestLegacyAttributeUpdates(t *testing.T) {
	_, c := startDB(t)
	createTable(t, c, "tbl", "")
	put(t, c, "tbl", baseItem())
	key := item{"pk": s("lease-1")}
	_, err := c.UpdateItem(ctxT(t), &dynamodb.UpdateItemInput{
		TableName: aws.String("tbl"), Key: key,
		Expected: map[string]types.ExpectedAttributeValue{"ctr": {Value: n("7")}},
		AttributeUpdates: map[string]types.AttributeValueUpdate{
			"owner": {Value: s("worker-b"), Action: types.AttributeActionPut},
			"ctr":   {Value: n("1"), Action: types.AttributeActionAdd},
			"frac":  {Action: types.AttributeActionDelete},
			"tags":  {Value: ss("x"), Action: types.AttributeActionDelete},
			"fresh": {Value: s("new")},
		},
		ReturnValues: types.ReturnValueAllNew,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := get(t, c, "tbl", key)
	if got["owner"].(*types.AttributeValueMemberS).Value != "worker-b" || got["ctr"].(*types.AttributeValueMemberN).Value != "8" ||
		got["fresh"].(*types.AttributeValueMemberS).Value != "new" {
		t.Fatalf("after update: %v", got)
	}
	if _, ok := got["frac"]; ok {
		t.Fatalf("frac not removed: %v", got)
	}
	if tags := got["tags"].(*types.AttributeValueMemberSS).Value; len(tags) != 1 || tags[0] != "y" {
		t.Fatalf("tags after DELETE x: %v", tags)
	}
	// The condition no longer holds (ctr is 8): nothing changes.
	_, err = c.UpdateItem(ctxT(t), &dynamodb.UpdateItemInput{
		TableName: aws.String("tbl"), Key: key,
		Expected:         map[string]types.ExpectedAttributeValue{"ctr": {Value: n("7")}},
		AttributeUpdates: map[string]types.AttributeValueUpdate{"owner": {Value: s("worker-c")}},
	})
	var failed *types.ConditionalCheckFailedException
	if !errors.As(err, &failed) {
		t.Fatalf("stale counter: %v, want ConditionalCheckFailedException", err)
	}
	if _, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: aws.String("tbl"), Item: baseItem(),
		Expected: map[string]types.ExpectedAttributeValue{"ctr": {Value: n("8")}}, ConditionExpression: aws.String("attribute_exists(pk)")}); err == nil {
		t.Fatal("Expected with ConditionExpression: no error")
	}
}
