package tables

import (
	"sort"
	"strings"
)

// maxPageBytes is the most item data one Query or Scan page reads (1 MB).
const maxPageBytes = 1 << 20

// keyCond is a parsed key-condition expression: equality on the hash key and an optional
// condition on the range key.
type keyCond struct {
	hash    Value
	rng     *cond
	hasRng  bool
	rngName string
}

func flattenAnd(c *cond, out []*cond) []*cond {
	if c.kind == condAnd {
		return flattenAnd(c.r, flattenAnd(c.l, out))
	}
	return append(out, c)
}

var condKindOps = map[condKind]string{condOr: "OR", condNot: "NOT", condIn: "IN", condExists: "attribute_exists",
	condNotExists: "attribute_not_exists", condType: "attribute_type", condContains: "contains"}

// analyzeKeyCondition checks a key condition against key k.
func analyzeKeyCondition(c *cond, k keySchema) (keyCond, error) {
	var kc keyCond
	parts := flattenAnd(c, nil)
	if len(parts) > 2 {
		return kc, validationf("Invalid KeyConditionExpression: The expression has too many conditions; KeyConditionExpressions must only contain one condition per key")
	}
	seenHash := false
	for _, p := range parts {
		if op, bad := condKindOps[p.kind]; bad {
			return kc, validationf("Invalid operator used in KeyConditionExpression: %s", op)
		}
		if p.kind == condCompare && p.op == "<>" {
			return kc, validationf("Unsupported operator on KeyConditionExpression: operator: <>")
		}
		// Put the attribute on the left.
		if p.kind == condCompare && p.args[0].kind == operandValue && p.args[1].kind == operandPath {
			flip := map[string]string{"=": "=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}
			p = &cond{kind: condCompare, op: flip[p.op], args: []*operand{p.args[1], p.args[0]}}
		}
		attr := p.args[0]
		if attr.kind != operandPath {
			return kc, validationf("Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition")
		}
		if len(attr.path) > 1 {
			return kc, validationf("KeyConditionExpressions cannot have conditions on nested attributes")
		}
		for _, o := range p.args[1:] {
			if o.kind != operandValue {
				return kc, validationf("Invalid condition in KeyConditionExpression: Multiple attribute names used in one condition")
			}
		}
		name := attr.path[0].name
		switch name {
		case k.hash:
			if seenHash {
				return kc, validationf("KeyConditionExpressions must only contain one condition per key")
			}
			seenHash = true
			if p.kind != condCompare || p.op != "=" {
				return kc, validationf("Query key condition not supported")
			}
			if p.args[1].val.T != k.hashT {
				return kc, validationf("One or more parameter values were invalid: Condition parameter type does not match schema type")
			}
			kc.hash = p.args[1].val
		case k.rng:
			if kc.hasRng {
				return kc, validationf("KeyConditionExpressions must only contain one condition per key")
			}
			for _, o := range p.args[1:] {
				if o.val.T != k.rngT {
					return kc, validationf("One or more parameter values were invalid: Condition parameter type does not match schema type")
				}
			}
			if p.kind == condBeginsWith && k.rngT == TypeN {
				return kc, validationf("Invalid KeyConditionExpression: Incorrect operand type for operator or function; operator or function: begins_with, operand type: N")
			}
			kc.rng, kc.hasRng, kc.rngName = p, true, name
		default:
			missing := k.hash
			if seenHash && k.hasRange() {
				missing = k.rng
			}
			return kc, validationf("Query condition missed key schema element: %s", missing)
		}
	}
	if !seenHash {
		return kc, validationf("Query condition missed key schema element: %s", k.hash)
	}
	return kc, nil
}

type queryInput struct {
	TableName              string `json:"TableName"`
	IndexName              string `json:"IndexName"`
	KeyConditionExpression string `json:"KeyConditionExpression"`
	FilterExpression       string `json:"FilterExpression"`
	ProjectionExpression   string `json:"ProjectionExpression"`
	Select                 string `json:"Select"`
	Limit                  *int   `json:"Limit"`
	ScanIndexForward       *bool  `json:"ScanIndexForward"`
	ExclusiveStartKey      Item   `json:"ExclusiveStartKey"`
	ConsistentRead         bool   `json:"ConsistentRead"`
	ReturnConsumedCapacity string `json:"ReturnConsumedCapacity"`
	Segment                *int   `json:"Segment"`
	TotalSegments          *int   `json:"TotalSegments"`
	exprAttrs
	legacyParams
}

type queryOutput struct {
	Items            []Item    `json:"Items,omitempty"`
	Count            int       `json:"Count"`
	ScannedCount     int       `json:"ScannedCount"`
	LastEvaluatedKey Item      `json:"LastEvaluatedKey,omitempty"`
	ConsumedCapacity *consumed `json:"ConsumedCapacity,omitempty"`
}

// readPlan is what Query and Scan share: the source, ordering, filter and projection.
type readPlan struct {
	t        *table
	ix       *index // nil for the table
	filter   *cond
	proj     []docPath
	count    bool
	limit    int
	start    Item
	rcu      string
	consist  bool
	keyNames []string
	op       readOp
	// fromEntries says the items read come from the index's entries (a Query of an
	// index), projected when they were written.
	fromEntries bool
}

func (s *Service) prepareRead(in *queryInput, isQuery bool) (*readPlan, *exprParser, error) {
	if err := in.legacyParams.check(); err != nil {
		return nil, nil, err
	}
	if isQuery {
		if in.KeyConditionExpression == "" {
			return nil, nil, validationf("Either the KeyConditions or KeyConditionExpression parameter must be specified in the request.")
		}
	}
	p, err := in.exprAttrs.newParser(in.KeyConditionExpression != "" || in.FilterExpression != "" || in.ProjectionExpression != "")
	if err != nil {
		return nil, nil, err
	}
	rp := &readPlan{limit: -1, start: in.ExclusiveStartKey, rcu: in.ReturnConsumedCapacity, consist: in.ConsistentRead, op: readScan}
	if isQuery {
		rp.op = readQuery
	}
	if in.Limit != nil {
		if *in.Limit < 1 {
			return nil, nil, validationf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.Limit)
		}
		rp.limit = *in.Limit
	}
	if in.FilterExpression != "" {
		if rp.filter, err = p.parseCondition("FilterExpression", in.FilterExpression); err != nil {
			return nil, nil, err
		}
	}
	if in.ProjectionExpression != "" {
		if rp.proj, err = p.parseProjection(in.ProjectionExpression); err != nil {
			return nil, nil, err
		}
	}
	switch in.Select {
	case "", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES":
		if in.ProjectionExpression != "" && in.Select != "" {
			return nil, nil, validationf("Cannot specify the ProjectionExpression when choosing to get %s", in.Select)
		}
	case "COUNT":
		if in.ProjectionExpression != "" {
			return nil, nil, validationf("Cannot specify the ProjectionExpression when choosing to get only the Count")
		}
		rp.count = true
	case "SPECIFIC_ATTRIBUTES":
		if in.ProjectionExpression == "" {
			return nil, nil, validationf("SPECIFIC_ATTRIBUTES is only valid when a ProjectionExpression or AttributesToGet is given")
		}
	default:
		return nil, nil, validationf("1 validation error detected: Value '%s' at 'select' failed to satisfy constraint: Member must satisfy enum value set: [SPECIFIC_ATTRIBUTES, COUNT, ALL_ATTRIBUTES, ALL_PROJECTED_ATTRIBUTES]", in.Select)
	}
	t, err := s.lookup(in.TableName)
	if err != nil {
		return nil, nil, err
	}
	rp.t = t
	if in.IndexName != "" {
		for _, ix := range t.indexes() {
			if ix.name == in.IndexName {
				rp.ix = ix
			}
		}
		if rp.ix == nil {
			return nil, nil, validationf("The table does not have the specified index: %s", in.IndexName)
		}
		if in.ConsistentRead {
			return nil, nil, validationf("Consistent reads are not supported on global secondary indexes")
		}
		if in.Select == "ALL_ATTRIBUTES" && rp.ix.projection != "ALL" {
			return nil, nil, validationf("One or more parameter values were invalid: Select type ALL_ATTRIBUTES is not supported for global secondary index %s because its projection type is not ALL", rp.ix.name)
		}
	}
	rp.keyNames = []string{t.key.hash}
	if t.key.hasRange() {
		rp.keyNames = append(rp.keyNames, t.key.rng)
	}
	if rp.ix != nil {
		for _, n := range []string{rp.ix.key.hash, rp.ix.key.rng} {
			if n != "" && n != t.key.hash && n != t.key.rng {
				rp.keyNames = append(rp.keyNames, n)
			}
		}
	}
	if rp.start != nil {
		if err := rp.checkStartKey(); err != nil {
			return nil, nil, err
		}
	}
	return rp, p, nil
}

func (rp *readPlan) checkStartKey() error {
	if len(rp.start) != len(rp.keyNames) {
		return validationf("The provided starting key is invalid: The provided key element does not match the schema")
	}
	for _, n := range rp.keyNames {
		v, ok := rp.start[n]
		if !ok || !v.isScalarKeyType() {
			return validationf("The provided starting key is invalid: The provided key element does not match the schema")
		}
	}
	return nil
}

// source returns the key schema that orders the read: the index's or the table's.
func (rp *readPlan) source() keySchema {
	if rp.ix != nil {
		return rp.ix.key
	}
	return rp.t.key
}

// inIndex reports whether it appears in the index (GSIs are sparse).
func (rp *readPlan) inIndex(it Item) bool {
	if rp.ix == nil {
		return true
	}
	if _, ok := it[rp.ix.key.hash]; !ok {
		return false
	}
	if rp.ix.key.hasRange() {
		if _, ok := it[rp.ix.key.rng]; !ok {
			return false
		}
	}
	return true
}

// projectIndex reduces a table item to the attributes the index projects; items read
// from an index's entries are projected already.
func (rp *readPlan) projectIndex(it Item) Item {
	if rp.ix == nil || rp.fromEntries {
		return it
	}
	return rp.ix.project(rp.t.key, it)
}

// tableOrder compares two items by the table's scan order.
func tableOrder(k keySchema, a, b Item) int {
	ah, bh := a[k.hash], b[k.hash]
	if ao, bo := valueOrder(ah), valueOrder(bh); ao != bo {
		if ao < bo {
			return -1
		}
		return 1
	}
	// keyString order: the type's character, then the text.
	if ah.T != bh.T {
		if ah.T < bh.T {
			return -1
		}
		return 1
	}
	if c := strings.Compare(ah.S, bh.S); c != 0 {
		return c
	}
	if k.hasRange() {
		return compareKeyValues(a[k.rng], b[k.rng])
	}
	return 0
}

// page runs the read over the items next yields (in order, after the start key) and
// builds the response.
func (rp *readPlan) page(next func() (Item, bool)) queryOutput {
	var out queryOutput
	bytes := 0
	units := 0.0
	var last Item
	more := false
	for {
		it, ok := next()
		if !ok {
			break
		}
		if rp.limit >= 0 && out.ScannedCount >= rp.limit || bytes > maxPageBytes {
			more = true
			break
		}
		out.ScannedCount++
		last = it
		it = rp.projectIndex(it)
		// An index read costs what the index holds of each item (its projected
		// attributes), a table read the whole item, as in DynamoDB.
		bytes += itemSize(it)
		if rp.filter != nil && !rp.filter.eval(it) {
			continue
		}
		out.Count++
		if rp.count {
			continue
		}
		if rp.proj != nil {
			it = project(it, rp.proj)
		}
		out.Items = append(out.Items, it)
	}
	units = float64((bytes+4095)/4096) / 2
	if rp.consist {
		units *= 2
	}
	if units == 0 {
		units = 0.5
	}
	if more || (rp.limit >= 0 && out.ScannedCount >= rp.limit && last != nil) {
		if last != nil {
			lek := Item{}
			for _, n := range rp.keyNames {
				lek[n] = last[n]
			}
			out.LastEvaluatedKey = lek
		}
	}
	if out.Items == nil && !rp.count {
		out.Items = []Item{}
	}
	rp.t.readBy[rp.op].Add(uint64(units*1000 + 0.5))
	out.ConsumedCapacity = consumedCapacity(rp.rcu, rp.t, units, false)
	return out
}

func (s *Service) query(body []byte) (any, error) {
	var in queryInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	rp, p, err := s.prepareRead(&in, true)
	if err != nil {
		return nil, err
	}
	kcExpr, err := p.parseCondition("KeyConditionExpression", in.KeyConditionExpression)
	if err != nil {
		return nil, err
	}
	if err := p.checkUnused(); err != nil {
		return nil, err
	}
	k := rp.source()
	kc, err := analyzeKeyCondition(kcExpr, k)
	if err != nil {
		return nil, err
	}
	if in.Segment != nil || in.TotalSegments != nil {
		return nil, validationf("Segment and TotalSegments are only valid for Scan")
	}
	var items []Item
	if rp.ix == nil {
		items = rp.t.partitionItems(kc.hash)
	} else {
		items = rp.ix.partition(kc.hash)
		rp.fromEntries = true
	}
	if kc.hasRng {
		kept := items[:0:0]
		for _, it := range items {
			if kc.rng.eval(it) {
				kept = append(kept, it)
			}
		}
		items = kept
	}
	forward := in.ScanIndexForward == nil || *in.ScanIndexForward
	if !forward {
		for i, j := 0, len(items)-1; i < j; i, j = i+1, j-1 {
			items[i], items[j] = items[j], items[i]
		}
	}
	if rp.start != nil && !equalValues(rp.start[k.hash], kc.hash) {
		return nil, validationf("The provided starting key does not match the range key predicate")
	}
	tk := rp.t.key
	after := func(it Item) bool {
		c := 0
		if k.hasRange() {
			c = compareKeyValues(it[k.rng], rp.start[k.rng])
		}
		if c == 0 && rp.ix != nil {
			c = tableOrder(tk, it, rp.start)
		}
		if !forward {
			c = -c
		}
		return c > 0
	}
	i := 0
	if rp.start != nil {
		for i < len(items) && !after(items[i]) {
			i++
		}
	}
	return rp.page(func() (Item, bool) {
		if i == len(items) {
			return nil, false
		}
		i++
		return items[i-1], true
	}), nil
}

func (s *Service) scan(body []byte) (any, error) {
	var in queryInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if in.KeyConditionExpression != "" {
		return nil, validationf("KeyConditionExpression is not valid for Scan")
	}
	if in.ScanIndexForward != nil {
		return nil, validationf("ScanIndexForward is not valid for Scan")
	}
	rp, p, err := s.prepareRead(&in, false)
	if err != nil {
		return nil, err
	}
	if err := p.checkUnused(); err != nil {
		return nil, err
	}
	seg, total := 0, 1
	if in.Segment != nil || in.TotalSegments != nil {
		if in.Segment == nil || in.TotalSegments == nil {
			return nil, validationf("The TotalSegments parameter is required but was not present in the request when Segment parameter is present")
		}
		seg, total = *in.Segment, *in.TotalSegments
		if total < 1 || total > 1000000 {
			return nil, validationf("1 validation error detected: Value '%d' at 'totalSegments' failed to satisfy constraint: Member must have value less than or equal to 1000000", total)
		}
		if seg < 0 || seg >= total {
			return nil, validationf("The Segment parameter is zero-based and must be less than parameter TotalSegments: Segment: %d is not less than TotalSegments: %d", seg, total)
		}
	}
	return rp.page(rp.scanItems(seg, total)), nil
}

// scanItems yields the items of segment seg of total that the scan reads, in scan order,
// from just after the start key, reading one partition at a time.
func (rp *readPlan) scanItems(seg, total int) func() (Item, bool) {
	tk := rp.t.key
	refs := rp.t.scanOrder()
	p := 0
	startHK := ""
	if rp.start != nil {
		first := partRef{hashOrder(keyString(rp.start[tk.hash])), keyString(rp.start[tk.hash])}
		startHK = first.hk
		p = sort.Search(len(refs), func(i int) bool { return !refs[i].before(first) })
	}
	var items []Item
	return func() (Item, bool) {
		for {
			for len(items) > 0 {
				it := items[0]
				items = items[1:]
				if rp.inIndex(it) {
					return it, true
				}
			}
			if p == len(refs) {
				return nil, false
			}
			ref := refs[p]
			p++
			if total > 1 && int(ref.order%uint32(total)) != seg {
				continue
			}
			items = rp.t.partitionByKey(ref.hk)
			if ref.hk == startHK {
				for len(items) > 0 && tableOrder(tk, items[0], rp.start) <= 0 {
					items = items[1:]
				}
			}
		}
	}
}

type batchGetInput struct {
	RequestItems map[string]struct {
		Keys                 []Item `json:"Keys"`
		ProjectionExpression string `json:"ProjectionExpression"`
		ConsistentRead       bool   `json:"ConsistentRead"`
		exprAttrs
		legacyParams
	} `json:"RequestItems"`
	ReturnConsumedCapacity string `json:"ReturnConsumedCapacity"`
}

func (s *Service) batchGetItem(body []byte) (any, error) {
	var in batchGetInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.RequestItems) == 0 {
		return nil, validationf("1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	total := 0
	type plan struct {
		t    *table
		keys []Item
		proj []docPath
	}
	var plans []plan
	for name, req := range in.RequestItems {
		total += len(req.Keys)
		if total > 100 {
			return nil, validationf("Too many items requested for the BatchGetItem call")
		}
		if len(req.Keys) == 0 {
			return nil, validationf("1 validation error detected: Value at 'requestItems.%s.member.keys' failed to satisfy constraint: Member must have length greater than or equal to 1", name)
		}
		if err := req.legacyParams.check(); err != nil {
			return nil, err
		}
		p, err := req.exprAttrs.newParser(req.ProjectionExpression != "")
		if err != nil {
			return nil, err
		}
		var proj []docPath
		if req.ProjectionExpression != "" {
			if proj, err = p.parseProjection(req.ProjectionExpression); err != nil {
				return nil, err
			}
		}
		if err := p.checkUnused(); err != nil {
			return nil, err
		}
		t, err := s.lookup(name)
		if err != nil {
			return nil, err
		}
		seen := map[string]bool{}
		for _, k := range req.Keys {
			if err := checkKey(t.key, k); err != nil {
				return nil, err
			}
			ks := keyString(k[t.key.hash])
			if t.key.hasRange() {
				ks += "\x00" + keyString(k[t.key.rng])
			}
			if seen[ks] {
				return nil, validationf("Provided list of item keys contains duplicates")
			}
			seen[ks] = true
		}
		plans = append(plans, plan{t, req.Keys, proj})
	}
	responses := map[string][]Item{}
	var caps []*consumed
	for _, p := range plans {
		got := []Item{}
		units := 0.0
		for _, k := range p.keys {
			it := p.t.getItem(k)
			if it == nil {
				continue
			}
			units += readUnits(it, false)
			if p.proj != nil {
				it = project(it, p.proj)
			}
			got = append(got, it)
		}
		responses[p.t.name] = got
		p.t.readBy[readBatchGetItem].Add(uint64(units*1000 + 0.5))
		if c := consumedCapacity(in.ReturnConsumedCapacity, p.t, units, false); c != nil {
			caps = append(caps, c)
		}
	}
	out := map[string]any{"Responses": responses, "UnprocessedKeys": map[string]any{}}
	if caps != nil {
		out["ConsumedCapacity"] = caps
	}
	return out, nil
}

type batchWriteInput struct {
	RequestItems map[string][]struct {
		PutRequest *struct {
			Item Item `json:"Item"`
		} `json:"PutRequest"`
		DeleteRequest *struct {
			Key Item `json:"Key"`
		} `json:"DeleteRequest"`
	} `json:"RequestItems"`
	ReturnConsumedCapacity string `json:"ReturnConsumedCapacity"`
}

func (s *Service) batchWriteItem(body []byte) (any, error) {
	var in batchWriteInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if len(in.RequestItems) == 0 {
		return nil, validationf("1 validation error detected: Value null at 'requestItems' failed to satisfy constraint: Member must have length greater than or equal to 1")
	}
	var writes []preparedWrite
	total := 0
	for name, reqs := range in.RequestItems {
		total += len(reqs)
		if total > 25 || len(reqs) == 0 {
			return nil, validationf("1 validation error detected: Value at 'requestItems' failed to satisfy constraint: Map value must satisfy constraint: [Member must have length less than or equal to 25, Member must have length greater than or equal to 1]")
		}
		seen := map[string]bool{}
		for _, r := range reqs {
			if (r.PutRequest == nil) == (r.DeleteRequest == nil) {
				return nil, validationf("Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes")
			}
			var pw preparedWrite
			var err error
			if r.PutRequest != nil {
				pw, err = s.preparePut(name, r.PutRequest.Item, "", exprAttrs{})
			} else {
				pw, err = s.prepareDelete(name, r.DeleteRequest.Key, "", exprAttrs{})
			}
			if err != nil {
				return nil, err
			}
			ks := string(appendItem(nil, pw.key))
			if seen[ks] {
				return nil, validationf("Provided list of item keys contains duplicates")
			}
			seen[ks] = true
			writes = append(writes, pw)
		}
	}
	units := map[*table]float64{}
	for _, pw := range writes {
		_, u, err := pw.run("")
		if err != nil {
			return nil, err
		}
		units[pw.t] += u
	}
	out := map[string]any{"UnprocessedItems": map[string]any{}}
	var caps []*consumed
	for t, u := range units {
		if c := consumedCapacity(in.ReturnConsumedCapacity, t, u, true); c != nil {
			caps = append(caps, c)
		}
	}
	if caps != nil {
		out["ConsumedCapacity"] = caps
	}
	return out, nil
}
