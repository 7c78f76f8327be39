package tables

// maxItemSize is DynamoDB's item size limit (400 KB, names and values included).
const maxItemSize = 400 * 1024

type exprAttrs struct {
	ExpressionAttributeNames  map[string]string `json:"ExpressionAttributeNames"`
	ExpressionAttributeValues map[string]Value  `json:"ExpressionAttributeValues"`
}

type legacyParams struct {
	Expected            map[string]expectedAttr    `json:"Expected"`
	AttributesToGet     []string                   `json:"AttributesToGet"`
	AttributeUpdates    map[string]attributeUpdate `json:"AttributeUpdates"`
	ConditionalOperator string                     `json:"ConditionalOperator"`
	KeyConditions       map[string]any             `json:"KeyConditions"`
	QueryFilter         map[string]any             `json:"QueryFilter"`
	ScanFilter          map[string]any             `json:"ScanFilter"`
}

func (l legacyParams) check() error {
	switch {
	case l.Expected != nil:
		return validationf("The legacy parameter Expected is only supported by PutItem, UpdateItem and DeleteItem")
	case l.AttributesToGet != nil:
		return validationf("The legacy parameter AttributesToGet is not supported by this engine; use ProjectionExpression")
	case l.AttributeUpdates != nil:
		return validationf("The legacy parameter AttributeUpdates is only supported by UpdateItem")
	case l.ConditionalOperator != "":
		return validationf("The legacy parameter ConditionalOperator is not supported by this engine")
	case l.KeyConditions != nil:
		return validationf("The legacy parameter KeyConditions is not supported by this engine; use KeyConditionExpression")
	case l.QueryFilter != nil || l.ScanFilter != nil:
		return validationf("The legacy filter parameters are not supported by this engine; use FilterExpression")
	}
	return nil
}

// newParser validates the substitution maps and returns a parser over them. anyExpr says
// whether the request has at least one expression.
func (e exprAttrs) newParser(anyExpr bool) (*exprParser, error) {
	if e.ExpressionAttributeNames != nil {
		if !anyExpr {
			return nil, validationf("ExpressionAttributeNames can only be specified when using expressions")
		}
		if len(e.ExpressionAttributeNames) == 0 {
			return nil, validationf("ExpressionAttributeNames must not be empty")
		}
		for k, v := range e.ExpressionAttributeNames {
			if len(k) < 2 || k[0] != '#' || !allIdent(k[1:]) {
				return nil, validationf("ExpressionAttributeNames contains invalid key: Syntax error; key: %q", k)
			}
			if v == "" {
				return nil, validationf("ExpressionAttributeNames contains invalid value: Empty attribute name; for key: %q", k)
			}
		}
	}
	if e.ExpressionAttributeValues != nil {
		if !anyExpr {
			return nil, validationf("ExpressionAttributeValues can only be specified when using expressions")
		}
		if len(e.ExpressionAttributeValues) == 0 {
			return nil, validationf("ExpressionAttributeValues must not be empty")
		}
		for k := range e.ExpressionAttributeValues {
			if len(k) < 2 || k[0] != ':' || !allIdent(k[1:]) {
				return nil, validationf("ExpressionAttributeValues contains invalid key: Syntax error; key: %q", k)
			}
		}
	}
	return newExprParser(e.ExpressionAttributeNames, e.ExpressionAttributeValues), nil
}

func allIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isIdentPart(s[i]) {
			return false
		}
	}
	return true
}

// checkKey validates a Key parameter against the table's key schema.
func checkKey(k keySchema, key Item) error {
	want := 1
	if k.hasRange() {
		want = 2
	}
	if len(key) != want {
		return errKeyMismatch
	}
	for _, a := range []struct {
		name string
		t    Type
	}{{k.hash, k.hashT}, {k.rng, k.rngT}} {
		if a.name == "" {
			continue
		}
		v, ok := key[a.name]
		if !ok || v.T != a.t {
			return errKeyMismatch
		}
		if v.S == "" {
			return validationf("One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty %s value. Key: %s", emptyKind(v.T), a.name)
		}
	}
	return nil
}

func emptyKind(t Type) string {
	if t == TypeB {
		return "binary"
	}
	return "string"
}

// checkItem validates a whole item: key attributes, index key types and size.
func (t *table) checkItem(it Item, gsis []*index) error {
	for _, a := range []struct {
		name string
		t    Type
	}{{t.key.hash, t.key.hashT}, {t.key.rng, t.key.rngT}} {
		if a.name == "" {
			continue
		}
		v, ok := it[a.name]
		if !ok {
			return validationf("One or more parameter values were invalid: Missing the key %s in the item", a.name)
		}
		if v.T != a.t {
			return validationf("One or more parameter values were invalid: Type mismatch for key %s expected: %s actual: %s", a.name, a.t, v.T)
		}
		if v.S == "" {
			return validationf("One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty %s value. Key: %s", emptyKind(v.T), a.name)
		}
	}
	for _, ix := range gsis {
		for _, a := range []struct {
			name string
			t    Type
		}{{ix.key.hash, ix.key.hashT}, {ix.key.rng, ix.key.rngT}} {
			if a.name == "" {
				continue
			}
			v, ok := it[a.name]
			if !ok {
				continue
			}
			if v.T != a.t {
				return validationf("One or more parameter values were invalid: Type mismatch for Index Key %s Expected: %s Actual: %s IndexName: %s", a.name, a.t, v.T, ix.name)
			}
			if v.S == "" {
				return validationf("One or more parameter values are not valid. A value specified for a secondary index key is not supported. The AttributeValue for a key attribute cannot contain an empty %s value. IndexName: %s, IndexKey: %s", emptyKind(v.T), ix.name, a.name)
			}
		}
	}
	if itemSize(it) > maxItemSize {
		return errItemTooLarge
	}
	return nil
}

func (t *table) indexes() []*index {
	t.meta.RLock()
	defer t.meta.RUnlock()
	return t.gsis
}

func (t *table) keyOf(it Item) Item {
	k := Item{t.key.hash: it[t.key.hash]}
	if t.key.hasRange() {
		k[t.key.rng] = it[t.key.rng]
	}
	return k
}

type consumed struct {
	TableName     string  `json:"TableName"`
	CapacityUnits float64 `json:"CapacityUnits"`
}

// consumedCapacity accounts units of read (or write) capacity to t and returns the
// ConsumedCapacity member of the response when the caller asked for it.
func consumedCapacity(mode string, t *table, units float64, write bool) *consumed {
	t.account(units, write)
	if mode != "TOTAL" && mode != "INDEXES" {
		return nil
	}
	return &consumed{TableName: t.name, CapacityUnits: units}
}

func writeUnits(it Item) float64 {
	n := (itemSize(it) + 1023) / 1024
	if n < 1 {
		n = 1
	}
	return float64(n)
}

func readUnits(it Item, consistent bool) float64 {
	n := (itemSize(it) + 4095) / 4096
	if n < 1 {
		n = 1
	}
	if consistent {
		return float64(n)
	}
	return float64(n) / 2
}

type getItemInput struct {
	TableName              string `json:"TableName"`
	Key                    Item   `json:"Key"`
	ConsistentRead         bool   `json:"ConsistentRead"`
	ProjectionExpression   string `json:"ProjectionExpression"`
	ReturnConsumedCapacity string `json:"ReturnConsumedCapacity"`
	exprAttrs
	legacyParams
}

type getItemOutput struct {
	Item             Item      `json:"Item,omitempty"`
	ConsumedCapacity *consumed `json:"ConsumedCapacity,omitempty"`
}

func (s *Service) getItemOp(body []byte) (any, error) {
	var in getItemInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.legacyParams.check(); err != nil {
		return nil, err
	}
	p, err := in.exprAttrs.newParser(in.ProjectionExpression != "")
	if err != nil {
		return nil, err
	}
	var proj []docPath
	if in.ProjectionExpression != "" {
		if proj, err = p.parseProjection(in.ProjectionExpression); err != nil {
			return nil, err
		}
	}
	if err := p.checkUnused(); err != nil {
		return nil, err
	}
	t, err := s.lookup(in.TableName)
	if err != nil {
		return nil, err
	}
	if err := checkKey(t.key, in.Key); err != nil {
		return nil, err
	}
	it := t.getItem(in.Key)
	if proj != nil {
		it = project(it, proj)
	}
	units := readUnits(it, in.ConsistentRead)
	t.readBy[readGetItem].Add(uint64(units*1000 + 0.5))
	return getItemOutput{Item: it, ConsumedCapacity: consumedCapacity(in.ReturnConsumedCapacity, t, units, false)}, nil
}

type writeOutput struct {
	Attributes       Item      `json:"Attributes,omitempty"`
	ConsumedCapacity *consumed `json:"ConsumedCapacity,omitempty"`
}

func checkReturnValues(rv string, allowed ...string) error {
	if rv == "" {
		return nil
	}
	for _, a := range allowed {
		if rv == a {
			return nil
		}
	}
	if rv == "NONE" || rv == "ALL_OLD" || rv == "UPDATED_OLD" || rv == "ALL_NEW" || rv == "UPDATED_NEW" {
		return validationf("Return values set to invalid value")
	}
	return validationf("1 validation error detected: Value '%s' at 'returnValues' failed to satisfy constraint: Member must satisfy enum value set: [ALL_NEW, UPDATED_OLD, ALL_OLD, NONE, UPDATED_NEW]", rv)
}

func checkReturnOnFailure(rv string) error {
	if rv == "" || rv == "NONE" || rv == "ALL_OLD" {
		return nil
	}
	return validationf("1 validation error detected: Value '%s' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]", rv)
}

func failedCondition(old Item, rv string) error {
	if rv == "ALL_OLD" && old != nil {
		return conditionFailed(old)
	}
	return conditionFailed(nil)
}

// writeParams are the parameters PutItem, DeleteItem and UpdateItem share.
type writeParams struct {
	TableName                           string `json:"TableName"`
	ConditionExpression                 string `json:"ConditionExpression"`
	ReturnValues                        string `json:"ReturnValues"`
	ReturnValuesOnConditionCheckFailure string `json:"ReturnValuesOnConditionCheckFailure"`
	ReturnConsumedCapacity              string `json:"ReturnConsumedCapacity"`
	exprAttrs
	legacyParams
}

// normalize turns the legacy parameters into expressions (update is nil for an
// operation without an update expression) and checks the return-value parameters
// against the values the operation allows.
func (w *writeParams) normalize(update *string, returnValues ...string) error {
	if err := w.legacyParams.toExpressions(&w.ConditionExpression, update, &w.exprAttrs); err != nil {
		return err
	}
	if err := w.legacyParams.check(); err != nil {
		return err
	}
	if err := checkReturnValues(w.ReturnValues, returnValues...); err != nil {
		return err
	}
	return checkReturnOnFailure(w.ReturnValuesOnConditionCheckFailure)
}

// parseOnlyCondition parses a write's condition (nil when there is none) for an
// operation that has no other expression, and checks that every substitution is used.
func (e exprAttrs) parseOnlyCondition(condition string) (*cond, error) {
	p, err := e.newParser(condition != "")
	if err != nil {
		return nil, err
	}
	var c *cond
	if condition != "" {
		if c, err = p.parseCondition("ConditionExpression", condition); err != nil {
			return nil, err
		}
	}
	if err := p.checkUnused(); err != nil {
		return nil, err
	}
	return c, nil
}

type putItemInput struct {
	Item Item `json:"Item"`
	writeParams
}

// preparedWrite is a validated PutItem or DeleteItem (item nil) ready to run
// against a table: the one conditional replace both operations and BatchWriteItem run.
type preparedWrite struct {
	t    *table
	key  Item
	item Item
	cond *cond
}

// prepareTarget parses a write's condition expression and finds its table: the
// steps a put and a delete share, condition errors first.
func (s *Service) prepareTarget(tableName, condition string, ea exprAttrs) (*table, *cond, error) {
	c, err := ea.parseOnlyCondition(condition)
	if err != nil {
		return nil, nil, err
	}
	t, err := s.lookup(tableName)
	if err != nil {
		return nil, nil, err
	}
	return t, c, nil
}

func (s *Service) preparePut(tableName string, item Item, condition string, ea exprAttrs) (preparedWrite, error) {
	t, c, err := s.prepareTarget(tableName, condition, ea)
	if err != nil {
		return preparedWrite{}, err
	}
	if item == nil {
		return preparedWrite{}, validationf("1 validation error detected: Value null at 'item' failed to satisfy constraint: Member must not be null")
	}
	if err := t.checkItem(item, t.indexes()); err != nil {
		return preparedWrite{}, err
	}
	return preparedWrite{t: t, key: t.keyOf(item), item: item, cond: c}, nil
}

func (s *Service) prepareDelete(tableName string, key Item, condition string, ea exprAttrs) (preparedWrite, error) {
	t, c, err := s.prepareTarget(tableName, condition, ea)
	if err != nil {
		return preparedWrite{}, err
	}
	if err := checkKey(t.key, key); err != nil {
		return preparedWrite{}, err
	}
	return preparedWrite{t: t, key: key, cond: c}, nil
}

// run replaces the item at the key (removes it for a delete) if the condition holds;
// it returns the item it replaced and the write units consumed.
func (pw preparedWrite) run(onFailure string) (Item, float64, error) {
	l := pw.t.lockItem(pw.key)
	defer l.unlock()
	old := l.get()
	if pw.cond != nil && !pw.cond.eval(old) {
		return nil, 0, failedCondition(old, onFailure)
	}
	l.put(pw.item)
	if pw.item == nil {
		return old, writeUnits(old), nil
	}
	return old, writeUnits(pw.item), nil
}

// answer runs a single-item write and builds its response from the parameters.
func (pw preparedWrite) answer(in *writeParams) (any, error) {
	old, units, err := pw.run(in.ReturnValuesOnConditionCheckFailure)
	if err != nil {
		return nil, err
	}
	out := writeOutput{ConsumedCapacity: consumedCapacity(in.ReturnConsumedCapacity, pw.t, units, true)}
	if in.ReturnValues == "ALL_OLD" {
		out.Attributes = old
	}
	return out, nil
}

func (s *Service) putItemOp(body []byte) (any, error) {
	var in putItemInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.normalize(nil, "NONE", "ALL_OLD"); err != nil {
		return nil, err
	}
	pw, err := s.preparePut(in.TableName, in.Item, in.ConditionExpression, in.exprAttrs)
	if err != nil {
		return nil, err
	}
	return pw.answer(&in.writeParams)
}

type deleteItemInput struct {
	Key Item `json:"Key"`
	writeParams
}

func (s *Service) deleteItemOp(body []byte) (any, error) {
	var in deleteItemInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.normalize(nil, "NONE", "ALL_OLD"); err != nil {
		return nil, err
	}
	pw, err := s.prepareDelete(in.TableName, in.Key, in.ConditionExpression, in.exprAttrs)
	if err != nil {
		return nil, err
	}
	return pw.answer(&in.writeParams)
}

type updateItemInput struct {
	Key              Item   `json:"Key"`
	UpdateExpression string `json:"UpdateExpression"`
	writeParams
}

func (s *Service) updateItemOp(body []byte) (any, error) {
	var in updateItemInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := in.normalize(&in.UpdateExpression, "NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"); err != nil {
		return nil, err
	}
	p, err := in.exprAttrs.newParser(in.ConditionExpression != "" || in.UpdateExpression != "")
	if err != nil {
		return nil, err
	}
	var actions []updateAction
	if in.UpdateExpression != "" {
		if actions, err = p.parseUpdate(in.UpdateExpression); err != nil {
			return nil, err
		}
	}
	var c *cond
	if in.ConditionExpression != "" {
		if c, err = p.parseCondition("ConditionExpression", in.ConditionExpression); err != nil {
			return nil, err
		}
	}
	if err := p.checkUnused(); err != nil {
		return nil, err
	}
	t, err := s.lookup(in.TableName)
	if err != nil {
		return nil, err
	}
	if err := checkKey(t.key, in.Key); err != nil {
		return nil, err
	}
	for _, a := range actions {
		if a.path[0].name == t.key.hash || a.path[0].name == t.key.rng {
			return nil, validationf("One or more parameter values were invalid: Cannot update attribute %s. This attribute is part of the key", a.path[0].name)
		}
	}
	gsis := t.indexes()

	l := t.lockItem(in.Key)
	old := l.get()
	if c != nil && !c.eval(old) {
		l.unlock()
		return nil, failedCondition(old, in.ReturnValuesOnConditionCheckFailure)
	}
	base := old
	if base == nil {
		base = Item{}
		for k, v := range in.Key {
			base[k] = v
		}
	}
	nw, err := applyUpdate(base, actions)
	if err == nil {
		err = t.checkItem(nw, gsis)
	}
	if err != nil {
		l.unlock()
		return nil, err
	}
	l.put(nw)
	l.unlock()

	out := writeOutput{ConsumedCapacity: consumedCapacity(in.ReturnConsumedCapacity, t, writeUnits(nw), true)}
	switch in.ReturnValues {
	case "ALL_OLD":
		out.Attributes = old
	case "ALL_NEW":
		out.Attributes = nw
	case "UPDATED_OLD":
		out.Attributes = changedAttributes(old, actions)
	case "UPDATED_NEW":
		out.Attributes = changedAttributes(nw, actions)
	}
	return out, nil
}
