package tables

import (
	"slices"
	"strconv"
	"strings"
)

// expectedAttr is one entry of the legacy Expected parameter of PutItem, UpdateItem and
// DeleteItem, which the Java SDK still sends for some calls (KCL 3.x's coordinator-state
// DAO among them).
type expectedAttr struct {
	Value              *Value  `json:"Value"`
	Exists             *bool   `json:"Exists"`
	ComparisonOperator string  `json:"ComparisonOperator"`
	AttributeValueList []Value `json:"AttributeValueList"`
}

// legacyOperators maps a ComparisonOperator to its expression form and its number of
// values (-1: one or more).
var legacyOperators = map[string]struct {
	format string
	values int
}{
	"EQ": {"%n = %v", 1}, "NE": {"%n <> %v", 1},
	"LT": {"%n < %v", 1}, "LE": {"%n <= %v", 1}, "GT": {"%n > %v", 1}, "GE": {"%n >= %v", 1},
	"NULL": {"attribute_not_exists(%n)", 0}, "NOT_NULL": {"attribute_exists(%n)", 0},
	"BEGINS_WITH": {"begins_with(%n, %v)", 1}, "CONTAINS": {"contains(%n, %v)", 1},
	"NOT_CONTAINS": {"NOT contains(%n, %v)", 1}, "BETWEEN": {"%n BETWEEN %v AND %v", 2},
	"IN": {"%n IN (%v)", -1},
}

// expectedToCondition rewrites the legacy Expected and ConditionalOperator parameters as
// an equivalent ConditionExpression with its own placeholders (#legacyN, :legacyN), so
// one evaluator serves both forms. It fails as DynamoDB does when both forms are used.
func (l *legacyParams) expectedToCondition(condition *string, ea *exprAttrs) error {
	if l.Expected == nil {
		if l.ConditionalOperator != "" {
			return validationf("ConditionalOperator can only be used when Filter or Expected has two or more elements")
		}
		return nil
	}
	if *condition != "" || ea.ExpressionAttributeNames != nil || ea.ExpressionAttributeValues != nil {
		return validationf("Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected} Expression parameters: {ConditionExpression}")
	}
	join := " AND "
	switch l.ConditionalOperator {
	case "", "AND":
	case "OR":
		join = " OR "
	default:
		return validationf("1 validation error detected: Value '%s' at 'conditionalOperator' failed to satisfy constraint: Member must satisfy enum value set: [AND, OR]", l.ConditionalOperator)
	}
	if l.ConditionalOperator != "" && len(l.Expected) < 2 {
		return validationf("ConditionalOperator can only be used when Filter or Expected has two or more elements")
	}
	names := make([]string, 0, len(l.Expected))
	for n := range l.Expected {
		names = append(names, n)
	}
	slices.Sort(names)
	ea.ExpressionAttributeNames = map[string]string{}
	ea.ExpressionAttributeValues = map[string]Value{}
	var parts []string
	addValue := func(v Value) string {
		ph := ":legacy" + strconv.Itoa(len(ea.ExpressionAttributeValues))
		ea.ExpressionAttributeValues[ph] = v
		return ph
	}
	for i, n := range names {
		e := l.Expected[n]
		nph := "#legacy" + strconv.Itoa(i)
		ea.ExpressionAttributeNames[nph] = n
		part, err := expectedPart(n, nph, e, addValue)
		if err != nil {
			return err
		}
		parts = append(parts, "("+part+")")
	}
	if len(ea.ExpressionAttributeValues) == 0 {
		ea.ExpressionAttributeValues = nil
	}
	*condition = strings.Join(parts, join)
	l.Expected, l.ConditionalOperator = nil, ""
	return nil
}

func expectedPart(name, nph string, e expectedAttr, addValue func(Value) string) (string, error) {
	if e.ComparisonOperator == "" {
		switch {
		case e.AttributeValueList != nil:
			return "", validationf("One or more parameter values were invalid: AttributeValueList can only be used with a ComparisonOperator for Attribute: %s", name)
		case e.Exists != nil && !*e.Exists:
			if e.Value != nil {
				return "", validationf("One or more parameter values were invalid: Value cannot be used when Exists is false for Attribute: %s", name)
			}
			return "attribute_not_exists(" + nph + ")", nil
		case e.Value == nil:
			return "", validationf("One or more parameter values were invalid: Value must be provided when Exists is %s for Attribute: %s",
				map[bool]string{true: "true", false: "null"}[e.Exists != nil], name)
		}
		return nph + " = " + addValue(*e.Value), nil
	}
	if e.Value != nil || e.Exists != nil {
		return "", validationf("One or more parameter values were invalid: Value and Exists cannot be used with ComparisonOperator for Attribute: %s", name)
	}
	op, ok := legacyOperators[e.ComparisonOperator]
	if !ok {
		return "", validationf("One or more parameter values were invalid: Unsupported operator on ExpectedAttributeValue: %s", e.ComparisonOperator)
	}
	n := len(e.AttributeValueList)
	if (op.values >= 0 && n != op.values) || (op.values < 0 && n == 0) {
		return "", validationf("One or more parameter values were invalid: Invalid number of argument(s) for the %s ComparisonOperator", e.ComparisonOperator)
	}
	vals := make([]string, n)
	for i, v := range e.AttributeValueList {
		vals[i] = addValue(v)
	}
	s := strings.ReplaceAll(op.format, "%n", nph)
	switch op.values {
	case 1:
		s = strings.Replace(s, "%v", vals[0], 1)
	case 2:
		s = strings.Replace(strings.Replace(s, "%v", vals[0], 1), "%v", vals[1], 1)
	case -1:
		s = strings.Replace(s, "%v", strings.Join(vals, ", "), 1)
	}
	return s, nil
}
