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

// attributeUpdate is one entry of UpdateItem's legacy AttributeUpdates parameter.
type attributeUpdate struct {
	Value  *Value `json:"Value"`
	Action string `json:"Action"`
}

// legacyRewriter turns legacy parameters into expressions with their own placeholders
// (#legacyN, :legacyN), so one evaluator serves both forms.
type legacyRewriter struct {
	ea *exprAttrs
}

func (r *legacyRewriter) name(n string) string {
	ph := "#legacy" + strconv.Itoa(len(r.ea.ExpressionAttributeNames))
	r.ea.ExpressionAttributeNames[ph] = n
	return ph
}

func (r *legacyRewriter) value(v Value) string {
	ph := ":legacy" + strconv.Itoa(len(r.ea.ExpressionAttributeValues))
	r.ea.ExpressionAttributeValues[ph] = v
	return ph
}

// toExpressions rewrites the legacy Expected, ConditionalOperator and (update non-nil)
// AttributeUpdates parameters as the equivalent ConditionExpression and UpdateExpression.
// It fails as DynamoDB does when a request mixes both forms.
func (l *legacyParams) toExpressions(condition, update *string, ea *exprAttrs) error {
	if l.Expected == nil && l.AttributeUpdates == nil {
		if l.ConditionalOperator != "" {
			return validationf("ConditionalOperator can only be used when Filter or Expected has two or more elements")
		}
		return nil
	}
	if *condition != "" || (update != nil && *update != "") || ea.ExpressionAttributeNames != nil || ea.ExpressionAttributeValues != nil {
		return validationf("Can not use both expression and non-expression parameters in the same request: Non-expression parameters: {Expected, AttributeUpdates} Expression parameters: {ConditionExpression, UpdateExpression, ExpressionAttributeNames, ExpressionAttributeValues}")
	}
	if l.AttributeUpdates != nil && update == nil {
		return nil // check() reports it
	}
	r := &legacyRewriter{ea: &exprAttrs{ExpressionAttributeNames: map[string]string{}, ExpressionAttributeValues: map[string]Value{}}}
	if err := l.rewriteExpected(condition, r); err != nil {
		return err
	}
	if l.AttributeUpdates != nil {
		if err := l.rewriteUpdates(update, r); err != nil {
			return err
		}
	}
	if len(r.ea.ExpressionAttributeNames) > 0 {
		ea.ExpressionAttributeNames = r.ea.ExpressionAttributeNames
	}
	if len(r.ea.ExpressionAttributeValues) > 0 {
		ea.ExpressionAttributeValues = r.ea.ExpressionAttributeValues
	}
	l.Expected, l.AttributeUpdates, l.ConditionalOperator = nil, nil, ""
	return nil
}

func (l *legacyParams) rewriteUpdates(update *string, r *legacyRewriter) error {
	names := make([]string, 0, len(l.AttributeUpdates))
	for n := range l.AttributeUpdates {
		names = append(names, n)
	}
	slices.Sort(names)
	var set, remove, add, del []string
	for _, n := range names {
		u := l.AttributeUpdates[n]
		switch u.Action {
		case "", "PUT":
			if u.Value == nil {
				return validationf("One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified")
			}
			set = append(set, r.name(n)+" = "+r.value(*u.Value))
		case "DELETE":
			if u.Value == nil {
				remove = append(remove, r.name(n))
			} else {
				del = append(del, r.name(n)+" "+r.value(*u.Value))
			}
		case "ADD":
			if u.Value == nil {
				return validationf("One or more parameter values were invalid: Only DELETE action is allowed when no attribute value is specified")
			}
			add = append(add, r.name(n)+" "+r.value(*u.Value))
		default:
			return validationf("1 validation error detected: Value '%s' at 'attributeUpdates.%s.member.action' failed to satisfy constraint: Member must satisfy enum value set: [ADD, PUT, DELETE]", u.Action, n)
		}
	}
	var clauses []string
	for _, c := range []struct {
		kw    string
		parts []string
	}{{"SET", set}, {"REMOVE", remove}, {"ADD", add}, {"DELETE", del}} {
		if len(c.parts) > 0 {
			clauses = append(clauses, c.kw+" "+strings.Join(c.parts, ", "))
		}
	}
	*update = strings.Join(clauses, " ")
	return nil
}

func (l *legacyParams) rewriteExpected(condition *string, r *legacyRewriter) error {
	if l.Expected == nil {
		return nil
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
	var parts []string
	for _, n := range names {
		part, err := expectedPart(n, r.name(n), l.Expected[n], r.value)
		if err != nil {
			return err
		}
		parts = append(parts, "("+part+")")
	}
	*condition = strings.Join(parts, join)
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
