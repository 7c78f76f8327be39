package freshettest

import (
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/internal/engine/tables"
)

// TableNames returns the names of every DynamoDB table, sorted.
func (e *Engine) TableNames() []string { return e.e.Tables.TableNames() }

// Items returns every item of a table in scan order, with the SDK's attribute value
// types, or a ResourceNotFoundException ServiceError when the table does not exist.
func (e *Engine) Items(table string) ([]map[string]types.AttributeValue, error) {
	in, ok := e.e.Tables.Items(table)
	if !ok {
		return nil, &ServiceError{Code: "ResourceNotFoundException", Message: "Requested resource not found: Table: " + table + " not found"}
	}
	out := make([]map[string]types.AttributeValue, len(in))
	for i, item := range in {
		out[i] = attributeMap(item)
	}
	return out, nil
}

func attributeMap(m map[string]tables.Value) map[string]types.AttributeValue {
	out := make(map[string]types.AttributeValue, len(m))
	for k, v := range m {
		out[k] = attributeValue(v)
	}
	return out
}

func attributeValue(v tables.Value) types.AttributeValue {
	switch v.T {
	case tables.TypeS:
		return &types.AttributeValueMemberS{Value: v.S}
	case tables.TypeN:
		return &types.AttributeValueMemberN{Value: v.S}
	case tables.TypeB:
		return &types.AttributeValueMemberB{Value: []byte(v.S)}
	case tables.TypeBOOL:
		return &types.AttributeValueMemberBOOL{Value: v.Bool}
	case tables.TypeNULL:
		return &types.AttributeValueMemberNULL{Value: true}
	case tables.TypeL:
		l := make([]types.AttributeValue, len(v.L))
		for i, x := range v.L {
			l[i] = attributeValue(x)
		}
		return &types.AttributeValueMemberL{Value: l}
	case tables.TypeM:
		return &types.AttributeValueMemberM{Value: attributeMap(v.M)}
	case tables.TypeSS:
		return &types.AttributeValueMemberSS{Value: append([]string(nil), v.Set...)}
	case tables.TypeNS:
		return &types.AttributeValueMemberNS{Value: append([]string(nil), v.Set...)}
	case tables.TypeBS:
		bs := make([][]byte, len(v.Set))
		for i, s := range v.Set {
			bs[i] = []byte(s)
		}
		return &types.AttributeValueMemberBS{Value: bs}
	}
	return &types.AttributeValueMemberS{Value: "invalid attribute type " + strconv.Itoa(int(v.T))}
}
