package tables_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startDB(t testing.TB) (*engine.Engine, *dynamodb.Client) {
	e := enginetest.Start(t, engine.Config{})
	return e, enginetest.DynamoDB(e)
}

func s(v string) types.AttributeValue     { return &types.AttributeValueMemberS{Value: v} }
func n(v string) types.AttributeValue     { return &types.AttributeValueMemberN{Value: v} }
func b(v []byte) types.AttributeValue     { return &types.AttributeValueMemberB{Value: v} }
func bl(v bool) types.AttributeValue      { return &types.AttributeValueMemberBOOL{Value: v} }
func null() types.AttributeValue          { return &types.AttributeValueMemberNULL{Value: true} }
func ss(v ...string) types.AttributeValue { return &types.AttributeValueMemberSS{Value: v} }
func ns(v ...string) types.AttributeValue { return &types.AttributeValueMemberNS{Value: v} }
func l(v ...types.AttributeValue) types.AttributeValue {
	return &types.AttributeValueMemberL{Value: v}
}
func m(v map[string]types.AttributeValue) types.AttributeValue {
	return &types.AttributeValueMemberM{Value: v}
}

type item = map[string]types.AttributeValue

// createTable creates a table with hash key pk (S) and, when rangeType is set, range key sk.
func createTable(t testing.TB, c *dynamodb.Client, name string, rangeType types.ScalarAttributeType, gsis ...types.GlobalSecondaryIndex) {
	t.Helper()
	in := &dynamodb.CreateTableInput{
		TableName:              aws.String(name),
		BillingMode:            types.BillingModePayPerRequest,
		AttributeDefinitions:   []types.AttributeDefinition{{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS}},
		KeySchema:              []types.KeySchemaElement{{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash}},
		GlobalSecondaryIndexes: gsis,
	}
	if rangeType != "" {
		in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: aws.String("sk"), AttributeType: rangeType})
		in.KeySchema = append(in.KeySchema, types.KeySchemaElement{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange})
	}
	for _, g := range gsis {
		for _, k := range g.KeySchema {
			found := false
			for _, d := range in.AttributeDefinitions {
				found = found || *d.AttributeName == *k.AttributeName
			}
			if !found {
				in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{AttributeName: k.AttributeName, AttributeType: types.ScalarAttributeTypeS})
			}
		}
	}
	if _, err := c.CreateTable(ctxT(t), in); err != nil {
		t.Fatalf("CreateTable %s: %v", name, err)
	}
}

func errCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "non-API error: " + err.Error()
	}
	return ""
}

func errMessage(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorMessage()
	}
	return ""
}

func errorsAs(err error, target any) bool { return errors.As(err, target) }

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// normalizeSets sorts set members so items compare regardless of set order.
func normalizeSets(it item) item {
	out := item{}
	for k, v := range it {
		out[k] = normalizeValue(v)
	}
	return out
}

func normalizeValue(v types.AttributeValue) types.AttributeValue {
	switch x := v.(type) {
	case *types.AttributeValueMemberSS:
		c := append([]string(nil), x.Value...)
		sort.Strings(c)
		return &types.AttributeValueMemberSS{Value: c}
	case *types.AttributeValueMemberNS:
		c := append([]string(nil), x.Value...)
		sort.Strings(c)
		return &types.AttributeValueMemberNS{Value: c}
	case *types.AttributeValueMemberM:
		return &types.AttributeValueMemberM{Value: normalizeSets(x.Value)}
	case *types.AttributeValueMemberL:
		c := make([]types.AttributeValue, len(x.Value))
		for i, e := range x.Value {
			c[i] = normalizeValue(e)
		}
		return &types.AttributeValueMemberL{Value: c}
	}
	return v
}

// dump renders an item for failure messages.
func dump(it item) string {
	keys := make([]string, 0, len(it))
	for k := range it {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sb strings.Builder
	sb.WriteString("{")
	for i, k := range keys {
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%s: %s", k, dumpValue(it[k]))
	}
	sb.WriteString("}")
	return sb.String()
}

func dumpValue(v types.AttributeValue) string {
	switch x := v.(type) {
	case *types.AttributeValueMemberS:
		return fmt.Sprintf("S:%q", x.Value)
	case *types.AttributeValueMemberN:
		return "N:" + x.Value
	case *types.AttributeValueMemberB:
		return fmt.Sprintf("B:%x", x.Value)
	case *types.AttributeValueMemberBOOL:
		return fmt.Sprint("BOOL:", x.Value)
	case *types.AttributeValueMemberNULL:
		return "NULL"
	case *types.AttributeValueMemberSS:
		return fmt.Sprint("SS:", x.Value)
	case *types.AttributeValueMemberNS:
		return fmt.Sprint("NS:", x.Value)
	case *types.AttributeValueMemberBS:
		return fmt.Sprint("BS:", x.Value)
	case *types.AttributeValueMemberM:
		return "M:" + dump(x.Value)
	case *types.AttributeValueMemberL:
		parts := make([]string, len(x.Value))
		for i, e := range x.Value {
			parts[i] = dumpValue(e)
		}
		return "L:[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprintf("%T", v)
}
