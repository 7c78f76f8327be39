package tables_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/fault"
	"github.com/freshet/freshet/internal/engine/tables"
)

func TestListTablesPaginates(t *testing.T) {
	_, c := startDB(t)
	var want []string
	for i := 0; i < 7; i++ {
		name := fmt.Sprintf("tbl-%02d", i)
		want = append(want, name)
		createTable(t, c, name, "")
	}
	var got []string
	p := dynamodb.NewListTablesPaginator(c, &dynamodb.ListTablesInput{Limit: aws.Int32(3)})
	pages := 0
	for p.HasMorePages() {
		out, err := p.NextPage(ctxT(t))
		if err != nil {
			t.Fatal(err)
		}
		pages++
		got = append(got, out.TableNames...)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || pages != 3 {
		t.Fatalf("got %v in %d pages", got, pages)
	}
}

func TestCreateDescribeDeleteTable(t *testing.T) {
	_, c := startDB(t)
	out, err := c.CreateTable(ctxT(t), &dynamodb.CreateTableInput{
		TableName: aws.String("prov"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("h"), AttributeType: types.ScalarAttributeTypeB},
			{AttributeName: aws.String("r"), AttributeType: types.ScalarAttributeTypeN}},
		KeySchema:             []types.KeySchemaElement{{AttributeName: aws.String("h"), KeyType: types.KeyTypeHash}, {AttributeName: aws.String("r"), KeyType: types.KeyTypeRange}},
		ProvisionedThroughput: &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(5), WriteCapacityUnits: aws.Int64(7)},
		Tags:                  []types.Tag{{Key: aws.String("team"), Value: aws.String("freshet")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := out.TableDescription
	if *d.TableName != "prov" || d.TableStatus != types.TableStatusActive || *d.ProvisionedThroughput.WriteCapacityUnits != 7 || len(d.KeySchema) != 2 ||
		!strings.HasSuffix(*d.TableArn, ":table/prov") || d.CreationDateTime == nil {
		t.Fatalf("description %+v", d)
	}
	put(t, c, "prov", item{"h": b([]byte{0, 1}), "r": n("-3")})
	desc, err := c.DescribeTable(ctxT(t), &dynamodb.DescribeTableInput{TableName: aws.String("prov")})
	if err != nil || *desc.Table.ItemCount != 1 {
		t.Fatalf("describe: %v", err)
	}
	tags, err := c.ListTagsOfResource(ctxT(t), &dynamodb.ListTagsOfResourceInput{ResourceArn: d.TableArn})
	if err != nil || len(tags.Tags) != 1 || *tags.Tags[0].Value != "freshet" {
		t.Fatalf("tags %v %v", tags, err)
	}
	if _, err := c.TagResource(ctxT(t), &dynamodb.TagResourceInput{ResourceArn: d.TableArn, Tags: []types.Tag{{Key: aws.String("team"), Value: aws.String("kcl")}, {Key: aws.String("env"), Value: aws.String("test")}}}); err != nil {
		t.Fatal(err)
	}
	tags, _ = c.ListTagsOfResource(ctxT(t), &dynamodb.ListTagsOfResourceInput{ResourceArn: d.TableArn})
	if len(tags.Tags) != 2 || *tags.Tags[0].Value != "kcl" {
		t.Fatalf("after TagResource %v", tags.Tags)
	}
	pitr, err := c.UpdateContinuousBackups(ctxT(t), &dynamodb.UpdateContinuousBackupsInput{TableName: aws.String("prov"),
		PointInTimeRecoverySpecification: &types.PointInTimeRecoverySpecification{PointInTimeRecoveryEnabled: aws.Bool(true)}})
	if err != nil || pitr.ContinuousBackupsDescription.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus != types.PointInTimeRecoveryStatusEnabled {
		t.Fatalf("UpdateContinuousBackups: %v", err)
	}
	if _, err := c.CreateTable(ctxT(t), &dynamodb.CreateTableInput{TableName: aws.String("prov"), BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("h"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:            []types.KeySchemaElement{{AttributeName: aws.String("h"), KeyType: types.KeyTypeHash}}}); errCode(err) != "ResourceInUseException" {
		t.Fatalf("duplicate create: %v", err)
	}
	del, err := c.DeleteTable(ctxT(t), &dynamodb.DeleteTableInput{TableName: aws.String("prov")})
	if err != nil || del.TableDescription.TableStatus != types.TableStatusDeleting {
		t.Fatalf("delete: %v", err)
	}
	if _, err := c.DescribeTable(ctxT(t), &dynamodb.DescribeTableInput{TableName: aws.String("prov")}); errCode(err) != "ResourceNotFoundException" {
		t.Fatalf("describe after delete: %v", err)
	}
	if _, err := c.DeleteTable(ctxT(t), &dynamodb.DeleteTableInput{TableName: aws.String("prov")}); errCode(err) != "ResourceNotFoundException" {
		t.Fatalf("second delete: %v", err)
	}
}

func TestCreateTableValidation(t *testing.T) {
	_, c := startDB(t)
	def := func(name string, ty types.ScalarAttributeType) types.AttributeDefinition {
		return types.AttributeDefinition{AttributeName: aws.String(name), AttributeType: ty}
	}
	hash := []types.KeySchemaElement{{AttributeName: aws.String("h"), KeyType: types.KeyTypeHash}}
	cases := []struct {
		name string
		in   dynamodb.CreateTableInput
		msg  string
	}{
		{"undefined key", dynamodb.CreateTableInput{TableName: aws.String("bad1"), BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{def("x", "S")}, KeySchema: hash},
			"One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [h], AttributeDefinitions: [x]"},
		{"extra definition", dynamodb.CreateTableInput{TableName: aws.String("bad2"), BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{def("h", "S"), def("x", "S")}, KeySchema: hash},
			"One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions"},
		{"provisioned without throughput", dynamodb.CreateTableInput{TableName: aws.String("bad3"),
			AttributeDefinitions: []types.AttributeDefinition{def("h", "S")}, KeySchema: hash},
			"One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED"},
		{"on-demand with throughput", dynamodb.CreateTableInput{TableName: aws.String("bad4"), BillingMode: types.BillingModePayPerRequest,
			ProvisionedThroughput: &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(1), WriteCapacityUnits: aws.Int64(1)},
			AttributeDefinitions:  []types.AttributeDefinition{def("h", "S")}, KeySchema: hash},
			"One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST"},
		{"range first", dynamodb.CreateTableInput{TableName: aws.String("bad5"), BillingMode: types.BillingModePayPerRequest,
			AttributeDefinitions: []types.AttributeDefinition{def("h", "S")}, KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("h"), KeyType: types.KeyTypeRange}}},
			"Invalid KeySchema: The first KeySchemaElement is not a HASH key type"},
	}
	for _, tc := range cases {
		in := tc.in
		if _, err := c.CreateTable(ctxT(t), &in); errCode(err) != "ValidationException" || errMessage(err) != tc.msg {
			t.Errorf("%s: got %s %q", tc.name, errCode(err), errMessage(err))
		}
	}
}

func TestUpdateTableAddsIndex(t *testing.T) {
	clk := clock.NewManual(time.Unix(1_700_000_000, 0))
	e := enginetest.Start(t, engine.Config{Clock: clk, Tables: tables.Config{TableActivationDelay: time.Second}})
	c := enginetest.DynamoDB(e)
	createTable(t, c, "grow", "")
	clk.Advance(time.Second)
	put(t, c, "grow", item{"pk": s("a"), "owner": s("w1")})
	put(t, c, "grow", item{"pk": s("b"), "owner": s("w2")})
	out, err := c.UpdateTable(ctxT(t), &dynamodb.UpdateTableInput{
		TableName:            aws.String("grow"),
		AttributeDefinitions: []types.AttributeDefinition{{AttributeName: aws.String("owner"), AttributeType: types.ScalarAttributeTypeS}},
		GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
			IndexName: aws.String("by-owner"), KeySchema: []types.KeySchemaElement{{AttributeName: aws.String("owner"), KeyType: types.KeyTypeHash}},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if gsis := out.TableDescription.GlobalSecondaryIndexes; len(gsis) != 1 || gsis[0].IndexStatus != types.IndexStatusCreating {
		t.Fatalf("new index %+v", gsis)
	}
	clk.Advance(time.Second)
	d, _ := c.DescribeTable(ctxT(t), &dynamodb.DescribeTableInput{TableName: aws.String("grow")})
	if d.Table.GlobalSecondaryIndexes[0].IndexStatus != types.IndexStatusActive || len(d.Table.AttributeDefinitions) != 2 {
		t.Fatalf("index after delay %+v", d.Table.GlobalSecondaryIndexes[0])
	}
	q, err := c.Query(ctxT(t), &dynamodb.QueryInput{TableName: aws.String("grow"), IndexName: aws.String("by-owner"), KeyConditionExpression: aws.String("#o = :o"),
		ExpressionAttributeNames: names("#o", "owner"), ExpressionAttributeValues: item{":o": s("w2")}})
	if err != nil || len(q.Items) != 1 {
		t.Fatalf("query new index: %v %v", err, q)
	}
	if _, err := c.PutItem(ctxT(t), &dynamodb.PutItemInput{TableName: aws.String("grow"), Item: item{"pk": s("c"), "owner": n("1")}}); errCode(err) != "ValidationException" {
		t.Fatalf("index key type mismatch: %v", err)
	}
}

func TestInjectedFaultsMapToTypedErrors(t *testing.T) {
	e, _ := startDB(t)
	c := dynamodb.NewFromConfig(e.AWSConfig(), func(o *dynamodb.Options) { o.RetryMaxAttempts = 1 })
	createTable(t, c, "faulty", "")
	e.Faults.Set("DynamoDB.GetItem", fault.Rule{ErrorRate: 1, ErrorCode: "ProvisionedThroughputExceededException"})
	_, err := c.GetItem(ctxT(t), &dynamodb.GetItemInput{TableName: aws.String("faulty"), Key: item{"pk": s("a")}})
	var pte *types.ProvisionedThroughputExceededException
	if !errorsAs(err, &pte) {
		t.Fatalf("want ProvisionedThroughputExceededException, got %v", err)
	}
	e.Faults.Set("DynamoDB.GetItem", fault.Rule{ErrorRate: 1, ErrorCode: "InternalServerError"})
	_, err = c.GetItem(ctxT(t), &dynamodb.GetItemInput{TableName: aws.String("faulty"), Key: item{"pk": s("a")}})
	var ise *types.InternalServerError
	if !errorsAs(err, &ise) {
		t.Fatalf("want InternalServerError, got %v", err)
	}
}

func TestHostileBodies(t *testing.T) {
	e, _ := startDB(t)
	post := func(op, body string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, e.URL(), bytes.NewReader([]byte(body)))
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810."+op)
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	deep := `{"TableName":"x","Item":{"a":` + strings.Repeat(`{"L":[`, 5000) + strings.Repeat(`]}`, 5000) + `}}`
	cases := []struct{ op, body, want string }{
		{"PutItem", deep, "Nesting Levels have exceeded supported limits"},
		{"PutItem", `{"TableName":`, "SerializationException"},
		{"PutItem", `{"TableName":"x","Item":{"a":{}}}`, "Supplied AttributeValue is empty"},
		{"PutItem", `{"TableName":"x","Item":{"a":{"S":"x","N":"1"}}}`, "more than one datatypes"},
		{"PutItem", `{"TableName":"x","Item":{"a":{"NULL":false}}}`, "Null attribute value types must have the value of true"},
		{"Frobnicate", `{}`, "UnknownOperationException"},
	}
	for _, tc := range cases {
		code, body := post(tc.op, tc.body)
		if code != 400 || !strings.Contains(body, tc.want) {
			t.Errorf("%s %.40s: %d %s", tc.op, tc.body, code, body)
		}
	}
}

func TestDeletionProtection(t *testing.T) {
	_, c := startDB(t)
	ctx := ctxT(t)
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:                 aws.String("guarded"),
		BillingMode:               types.BillingModePayPerRequest,
		AttributeDefinitions:      []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:                 []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		DeletionProtectionEnabled: aws.Bool(true),
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := c.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String("guarded")})
	if err != nil {
		t.Fatal(err)
	}
	if !aws.ToBool(d.Table.DeletionProtectionEnabled) {
		t.Fatal("DescribeTable does not report deletion protection")
	}
	_, err = c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("guarded")})
	if err == nil || !strings.Contains(err.Error(), "protected against deletion") {
		t.Fatalf("DeleteTable of a protected table: %v", err)
	}
	if _, err := c.UpdateTable(ctx, &dynamodb.UpdateTableInput{TableName: aws.String("guarded"), DeletionProtectionEnabled: aws.Bool(false)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String("guarded")}); err != nil {
		t.Fatalf("DeleteTable after protection was disabled: %v", err)
	}
}
