package tables

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

type wireAttrDef struct {
	AttributeName string `json:"AttributeName"`
	AttributeType string `json:"AttributeType"`
}

type wireKeyElem struct {
	AttributeName string `json:"AttributeName"`
	KeyType       string `json:"KeyType"`
}

type wireThroughput struct {
	ReadCapacityUnits  *int64 `json:"ReadCapacityUnits,omitempty"`
	WriteCapacityUnits *int64 `json:"WriteCapacityUnits,omitempty"`
}

type wireProjection struct {
	ProjectionType   string   `json:"ProjectionType,omitempty"`
	NonKeyAttributes []string `json:"NonKeyAttributes,omitempty"`
}

type wireGSI struct {
	IndexName             string          `json:"IndexName"`
	KeySchema             []wireKeyElem   `json:"KeySchema"`
	Projection            *wireProjection `json:"Projection"`
	ProvisionedThroughput *wireThroughput `json:"ProvisionedThroughput"`
}

type wireTag struct {
	Key   string `json:"Key"`
	Value string `json:"Value"`
}

type createTableInput struct {
	TableName              string          `json:"TableName"`
	AttributeDefinitions   []wireAttrDef   `json:"AttributeDefinitions"`
	KeySchema              []wireKeyElem   `json:"KeySchema"`
	BillingMode            string          `json:"BillingMode"`
	ProvisionedThroughput  *wireThroughput `json:"ProvisionedThroughput"`
	GlobalSecondaryIndexes []wireGSI       `json:"GlobalSecondaryIndexes"`
	LocalSecondaryIndexes  []wireGSI       `json:"LocalSecondaryIndexes"`
	Tags                   []wireTag       `json:"Tags"`
	DeletionProtection     *bool           `json:"DeletionProtectionEnabled"`
}

func validateTableName(field, name string) error {
	if name == "" {
		return validationf("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", field)
	}
	if len(name) < 3 || len(name) > 255 {
		return validationf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must have length greater than or equal to 3", name, field)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(isIdentPart(c) || c == '-' || c == '.') {
			return validationf("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9_.-]+", name, field)
		}
	}
	return nil
}

func parseKeySchema(elems []wireKeyElem, defs map[string]Type, what string) (keySchema, error) {
	var k keySchema
	if len(elems) == 0 || len(elems) > 2 {
		return k, validationf("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length less than or equal to 2", what)
	}
	if elems[0].KeyType != "HASH" {
		return k, validationf("Invalid KeySchema: The first KeySchemaElement is not a HASH key type")
	}
	k.hash = elems[0].AttributeName
	if len(elems) == 2 {
		if elems[1].KeyType != "RANGE" {
			return k, validationf("Invalid KeySchema: The second KeySchemaElement is not a RANGE key type")
		}
		if elems[1].AttributeName == k.hash {
			return k, validationf("Both the Hash Key and the Range Key element in the KeySchema have the same name")
		}
		k.rng = elems[1].AttributeName
	}
	var missing []string
	for _, e := range elems {
		if _, ok := defs[e.AttributeName]; !ok {
			missing = append(missing, e.AttributeName)
		}
	}
	if len(missing) > 0 {
		var names []string
		for n := range defs {
			names = append(names, n)
		}
		sort.Strings(names)
		return k, validationf("One or more parameter values were invalid: Some index key attributes are not defined in AttributeDefinitions. Keys: [%s], AttributeDefinitions: [%s]", strings.Join(missing, ", "), strings.Join(names, ", "))
	}
	k.hashT = defs[k.hash]
	if k.hasRange() {
		k.rngT = defs[k.rng]
	}
	return k, nil
}

func parseAttrDefs(defs []wireAttrDef) (map[string]Type, error) {
	m := make(map[string]Type, len(defs))
	for _, d := range defs {
		t := typeFromName(d.AttributeType)
		if t != TypeS && t != TypeN && t != TypeB {
			return nil, validationf("1 validation error detected: Value '%s' at 'attributeDefinitions.member.attributeType' failed to satisfy constraint: Member must satisfy enum value set: [B, N, S]", d.AttributeType)
		}
		if _, dup := m[d.AttributeName]; dup {
			return nil, validationf("Cannot have two attributes with the same name. Attribute name: %s", d.AttributeName)
		}
		m[d.AttributeName] = t
	}
	return m, nil
}

func parseThroughput(billing string, tp *wireThroughput, what string) (rcu, wcu int64, err error) {
	switch billing {
	case "PAY_PER_REQUEST":
		if tp != nil && (tp.ReadCapacityUnits != nil || tp.WriteCapacityUnits != nil) {
			return 0, 0, validationf("One or more parameter values were invalid: Neither ReadCapacityUnits nor WriteCapacityUnits can be specified when BillingMode is PAY_PER_REQUEST")
		}
		return 0, 0, nil
	case "PROVISIONED":
		if tp == nil || tp.ReadCapacityUnits == nil || tp.WriteCapacityUnits == nil {
			return 0, 0, validationf("One or more parameter values were invalid: ReadCapacityUnits and WriteCapacityUnits must both be specified when BillingMode is PROVISIONED")
		}
		if *tp.ReadCapacityUnits < 1 || *tp.WriteCapacityUnits < 1 {
			return 0, 0, validationf("One or more parameter values were invalid: Read and write capacity units must both be greater than 0 for %s", what)
		}
		return *tp.ReadCapacityUnits, *tp.WriteCapacityUnits, nil
	}
	return 0, 0, validationf("1 validation error detected: Value '%s' at 'billingMode' failed to satisfy constraint: Member must satisfy enum value set: [PROVISIONED, PAY_PER_REQUEST]", billing)
}

func (s *Service) parseGSI(g wireGSI, defs map[string]Type, billing string, now time.Time) (*index, error) {
	if err := validateTableName("globalSecondaryIndexes.member.indexName", g.IndexName); err != nil {
		return nil, err
	}
	k, err := parseKeySchema(g.KeySchema, defs, "globalSecondaryIndexes.member.keySchema")
	if err != nil {
		return nil, err
	}
	ix := &index{name: g.IndexName, key: k, createdAt: now, activeAt: now.Add(s.cfg.TableActivationDelay)}
	if g.Projection == nil || g.Projection.ProjectionType == "" {
		return nil, validationf("One or more parameter values were invalid: Unknown ProjectionType: null")
	}
	ix.projection = g.Projection.ProjectionType
	switch ix.projection {
	case "ALL", "KEYS_ONLY":
		if len(g.Projection.NonKeyAttributes) > 0 {
			return nil, validationf("One or more parameter values were invalid: ProjectionType is %s, but NonKeyAttributes is specified", ix.projection)
		}
	case "INCLUDE":
		if len(g.Projection.NonKeyAttributes) == 0 {
			return nil, validationf("One or more parameter values were invalid: ProjectionType is INCLUDE, but NonKeyAttributes is not specified")
		}
		ix.nonKey = append([]string(nil), g.Projection.NonKeyAttributes...)
	default:
		return nil, validationf("One or more parameter values were invalid: Unknown ProjectionType: %s", ix.projection)
	}
	ix.rcu, ix.wcu, err = parseThroughput(billing, g.ProvisionedThroughput, "index "+g.IndexName)
	if err != nil {
		return nil, err
	}
	return ix, nil
}

func (s *Service) createTable(body []byte) (any, error) {
	var in createTableInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := validateTableName("tableName", in.TableName); err != nil {
		return nil, err
	}
	if in.BillingMode == "" {
		in.BillingMode = "PROVISIONED"
	}
	defs, err := parseAttrDefs(in.AttributeDefinitions)
	if err != nil {
		return nil, err
	}
	k, err := parseKeySchema(in.KeySchema, defs, "keySchema")
	if err != nil {
		return nil, err
	}
	if len(in.LocalSecondaryIndexes) > 0 {
		return nil, validationf("One or more parameter values were invalid: LocalSecondaryIndexes are not supported by this engine")
	}
	rcu, wcu, err := parseThroughput(in.BillingMode, in.ProvisionedThroughput, "table")
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	t := newTable(in.TableName)
	t.key, t.attrDefs, t.billing, t.rcu, t.wcu = k, defs, in.BillingMode, rcu, wcu
	t.createdAt, t.activeAt = now, now.Add(s.cfg.TableActivationDelay)
	t.protected = in.DeletionProtection != nil && *in.DeletionProtection
	t.arn = fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", s.cfg.Region, s.cfg.AccountID, in.TableName)
	t.id = fmt.Sprintf("%08x-0000-4000-8000-%012x", now.UnixNano()&0xffffffff, s.requestID.Add(1))
	used := map[string]bool{k.hash: true, k.rng: true}
	seen := map[string]bool{}
	for _, g := range in.GlobalSecondaryIndexes {
		if seen[g.IndexName] {
			return nil, validationf("One or more parameter values were invalid: Duplicate index name: %s", g.IndexName)
		}
		seen[g.IndexName] = true
		ix, err := s.parseGSI(g, defs, in.BillingMode, now)
		if err != nil {
			return nil, err
		}
		ix.activeAt = t.activeAt
		used[ix.key.hash], used[ix.key.rng] = true, true
		t.gsis = append(t.gsis, ix)
	}
	if len(t.gsis) > 20 {
		return nil, validationf("One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of 20")
	}
	for _, ix := range t.gsis {
		ix.entries = newIxEntries()
	}
	t.setLive(t.gsis)
	for n := range defs {
		if !used[n] {
			return nil, validationf("One or more parameter values were invalid: Number of attributes in KeySchema does not exactly match number of attributes defined in AttributeDefinitions")
		}
	}
	for _, tg := range in.Tags {
		t.tags = setTag(t.tags, tg.Key, tg.Value)
	}
	s.mu.Lock()
	if _, exists := s.tables[in.TableName]; exists {
		s.mu.Unlock()
		return nil, inUse("Table already exists: %s", in.TableName)
	}
	if len(s.tables) >= 2500 {
		s.mu.Unlock()
		return nil, &APIError{Code: codeLimitExceeded, Message: "Subscriber limit exceeded: There is a limit of 2500 tables per account", Status: 400}
	}
	s.tables[in.TableName] = t
	s.mu.Unlock()
	return map[string]any{"TableDescription": s.describe(t)}, nil
}

func setTag(tags []tag, k, v string) []tag {
	for i := range tags {
		if tags[i].key == k {
			tags[i].value = v
			return tags
		}
	}
	return append(tags, tag{k, v})
}

type wireIndexDesc struct {
	IndexName             string         `json:"IndexName"`
	KeySchema             []wireKeyElem  `json:"KeySchema"`
	Projection            wireProjection `json:"Projection"`
	IndexStatus           string         `json:"IndexStatus"`
	Backfilling           *bool          `json:"Backfilling,omitempty"`
	ProvisionedThroughput map[string]any `json:"ProvisionedThroughput"`
	IndexSizeBytes        int64          `json:"IndexSizeBytes"`
	ItemCount             int64          `json:"ItemCount"`
	IndexArn              string         `json:"IndexArn"`
}

type wireTableDesc struct {
	TableName                 string            `json:"TableName"`
	TableArn                  string            `json:"TableArn"`
	TableId                   string            `json:"TableId"`
	TableStatus               string            `json:"TableStatus"`
	CreationDateTime          float64           `json:"CreationDateTime"`
	AttributeDefinitions      []wireAttrDef     `json:"AttributeDefinitions"`
	KeySchema                 []wireKeyElem     `json:"KeySchema"`
	ItemCount                 int64             `json:"ItemCount"`
	TableSizeBytes            int64             `json:"TableSizeBytes"`
	BillingModeSummary        map[string]any    `json:"BillingModeSummary,omitempty"`
	ProvisionedThroughput     map[string]any    `json:"ProvisionedThroughput"`
	GlobalSecondaryIndexes    []wireIndexDesc   `json:"GlobalSecondaryIndexes,omitempty"`
	DeletionProtectionEnabled bool              `json:"DeletionProtectionEnabled"`
	TableClassSummary         map[string]string `json:"TableClassSummary,omitempty"`
}

func keyElems(k keySchema) []wireKeyElem {
	out := []wireKeyElem{{k.hash, "HASH"}}
	if k.hasRange() {
		out = append(out, wireKeyElem{k.rng, "RANGE"})
	}
	return out
}

func throughputDesc(rcu, wcu int64) map[string]any {
	return map[string]any{"ReadCapacityUnits": rcu, "WriteCapacityUnits": wcu, "NumberOfDecreasesToday": 0}
}

func (s *Service) describe(t *table) wireTableDesc {
	now := s.clock.Now()
	t.meta.RLock()
	defer t.meta.RUnlock()
	d := wireTableDesc{
		TableName:                 t.name,
		TableArn:                  t.arn,
		TableId:                   t.id,
		TableStatus:               t.status(now),
		CreationDateTime:          formatEpoch(t.createdAt),
		KeySchema:                 keyElems(t.key),
		ItemCount:                 t.itemCount.Load(),
		TableSizeBytes:            t.sizeBytes.Load(),
		ProvisionedThroughput:     throughputDesc(t.rcu, t.wcu),
		DeletionProtectionEnabled: t.protected,
	}
	if t.deleted {
		d.TableStatus = "DELETING"
	}
	names := make([]string, 0, len(t.attrDefs))
	for n := range t.attrDefs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d.AttributeDefinitions = append(d.AttributeDefinitions, wireAttrDef{n, t.attrDefs[n].String()})
	}
	if t.billing == "PAY_PER_REQUEST" {
		d.BillingModeSummary = map[string]any{"BillingMode": "PAY_PER_REQUEST", "LastUpdateToPayPerRequestDateTime": formatEpoch(t.createdAt)}
	}
	for _, ix := range t.gsis {
		w := wireIndexDesc{
			IndexName:             ix.name,
			KeySchema:             keyElems(ix.key),
			Projection:            wireProjection{ProjectionType: ix.projection, NonKeyAttributes: ix.nonKey},
			IndexStatus:           "ACTIVE",
			ProvisionedThroughput: throughputDesc(ix.rcu, ix.wcu),
			IndexArn:              t.arn + "/index/" + ix.name,
			ItemCount:             t.itemCount.Load(),
		}
		if now.Before(ix.activeAt) {
			w.IndexStatus = "CREATING"
			if !now.Before(t.activeAt) {
				b := true
				w.Backfilling = &b
			}
		}
		d.GlobalSecondaryIndexes = append(d.GlobalSecondaryIndexes, w)
	}
	return d
}

type tableNameInput struct {
	TableName string `json:"TableName"`
}

func (s *Service) describeTable(body []byte) (any, error) {
	var in tableNameInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.lookupAny(in.TableName)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Table": s.describe(t)}, nil
}

func (s *Service) listTables(body []byte) (any, error) {
	var in struct {
		ExclusiveStartTableName string `json:"ExclusiveStartTableName"`
		Limit                   *int   `json:"Limit"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	limit := 100
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > 100 {
			return nil, validationf("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value less than or equal to 100", *in.Limit)
		}
		limit = *in.Limit
	}
	names := s.TableNames()
	i := sort.SearchStrings(names, in.ExclusiveStartTableName)
	if i < len(names) && names[i] == in.ExclusiveStartTableName {
		i++
	}
	names = names[i:]
	out := map[string]any{}
	if len(names) > limit {
		names = names[:limit]
		out["LastEvaluatedTableName"] = names[limit-1]
	}
	out["TableNames"] = append([]string{}, names...)
	return out, nil
}

func (s *Service) deleteTable(body []byte) (any, error) {
	var in tableNameInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.lookupAny(in.TableName)
	if err != nil {
		return nil, err
	}
	if t.status(s.clock.Now()) != "ACTIVE" {
		return nil, inUse("Attempt to change a resource which is still in use: Table is being created: %s", t.name)
	}
	t.meta.RLock()
	protected := t.protected
	t.meta.RUnlock()
	if protected {
		return nil, validationf("Resource cannot be deleted as it is currently protected against deletion. Disable deletion protection first.")
	}
	s.mu.Lock()
	if s.tables[t.name] != t {
		s.mu.Unlock()
		return nil, notFound()
	}
	delete(s.tables, t.name)
	s.mu.Unlock()
	t.meta.Lock()
	t.deleted = true
	t.meta.Unlock()
	return map[string]any{"TableDescription": s.describe(t)}, nil
}

func (s *Service) updateTable(body []byte) (any, error) {
	var in struct {
		TableName                   string          `json:"TableName"`
		AttributeDefinitions        []wireAttrDef   `json:"AttributeDefinitions"`
		BillingMode                 string          `json:"BillingMode"`
		ProvisionedThroughput       *wireThroughput `json:"ProvisionedThroughput"`
		GlobalSecondaryIndexUpdates []gsiUpdate     `json:"GlobalSecondaryIndexUpdates"`
		DeletionProtection          *bool           `json:"DeletionProtectionEnabled"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.lookupAny(in.TableName)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	if t.status(now) != "ACTIVE" {
		return nil, inUse("Attempt to change a resource which is still in use: Table is being created: %s", t.name)
	}
	newDefs, err := parseAttrDefs(in.AttributeDefinitions)
	if err != nil {
		return nil, err
	}
	if err := s.applyTableUpdate(t, now, newDefs, in.BillingMode, in.ProvisionedThroughput, in.GlobalSecondaryIndexUpdates); err != nil {
		return nil, err
	}
	if in.DeletionProtection != nil {
		t.meta.Lock()
		t.protected = *in.DeletionProtection
		t.meta.Unlock()
	}
	return map[string]any{"TableDescription": s.describe(t)}, nil
}

type gsiUpdate struct {
	Create *wireGSI `json:"Create"`
	Delete *struct {
		IndexName string `json:"IndexName"`
	} `json:"Delete"`
	Update *struct {
		IndexName             string          `json:"IndexName"`
		ProvisionedThroughput *wireThroughput `json:"ProvisionedThroughput"`
	} `json:"Update"`
}

func (s *Service) applyTableUpdate(t *table, now time.Time, newDefs map[string]Type, billingMode string, throughput *wireThroughput, updates []gsiUpdate) error {
	t.meta.Lock()
	defer t.meta.Unlock()
	var err error
	defs := make(map[string]Type, len(t.attrDefs)+len(newDefs))
	for n, ty := range t.attrDefs {
		defs[n] = ty
	}
	for n, ty := range newDefs {
		if old, ok := defs[n]; ok && old != ty {
			return validationf("One or more parameter values were invalid: Attribute %s has conflicting types", n)
		}
		defs[n] = ty
	}
	billing := t.billing
	if billingMode != "" {
		billing = billingMode
	}
	rcu, wcu := t.rcu, t.wcu
	if billingMode != "" || throughput != nil {
		tp := throughput
		if tp == nil && billing == "PROVISIONED" && t.billing == "PROVISIONED" {
			tp = &wireThroughput{ReadCapacityUnits: &t.rcu, WriteCapacityUnits: &t.wcu}
		}
		if rcu, wcu, err = parseThroughput(billing, tp, "table"); err != nil {
			return err
		}
	}
	gsis := append([]*index(nil), t.gsis...)
	for _, u := range updates {
		switch {
		case u.Create != nil:
			for _, ix := range gsis {
				if ix.name == u.Create.IndexName {
					return validationf("One or more parameter values were invalid: Index %s already exists", ix.name)
				}
			}
			ix, err := s.parseGSI(*u.Create, defs, billing, now)
			if err != nil {
				return err
			}
			gsis = append(gsis, ix)
		case u.Delete != nil:
			found := false
			for i, ix := range gsis {
				if ix.name == u.Delete.IndexName {
					gsis = append(gsis[:i:i], gsis[i+1:]...)
					found = true
					break
				}
			}
			if !found {
				return &APIError{Code: codeResourceNotFound, Message: "Requested resource not found: Index: " + u.Delete.IndexName + " not found", Status: 400}
			}
		case u.Update != nil:
			found := false
			for i, ix := range gsis {
				if ix.name == u.Update.IndexName {
					c := *ix
					if c.rcu, c.wcu, err = parseThroughput(billing, u.Update.ProvisionedThroughput, "index "+ix.name); err != nil {
						return err
					}
					gsis[i] = &c
					found = true
				}
			}
			if !found {
				return &APIError{Code: codeResourceNotFound, Message: "Requested resource not found: Index: " + u.Update.IndexName + " not found", Status: 400}
			}
		}
	}
	if len(gsis) > 20 {
		return validationf("One or more parameter values were invalid: GlobalSecondaryIndex count exceeds the per-table limit of 20")
	}
	used := map[string]bool{t.key.hash: true, t.key.rng: true}
	for _, ix := range gsis {
		used[ix.key.hash], used[ix.key.rng] = true, true
	}
	for n := range defs {
		if !used[n] {
			delete(defs, n)
		}
	}
	t.attrDefs, t.billing, t.rcu, t.wcu, t.gsis = defs, billing, rcu, wcu, gsis
	t.maintain(gsis)
	return nil
}

func (s *Service) updateContinuousBackups(body []byte) (any, error) {
	var in struct {
		TableName                        string `json:"TableName"`
		PointInTimeRecoverySpecification *struct {
			PointInTimeRecoveryEnabled *bool `json:"PointInTimeRecoveryEnabled"`
		} `json:"PointInTimeRecoverySpecification"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.lookupAny(in.TableName)
	if err != nil {
		return nil, err
	}
	if in.PointInTimeRecoverySpecification == nil || in.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled == nil {
		return nil, validationf("1 validation error detected: Value null at 'pointInTimeRecoverySpecification' failed to satisfy constraint: Member must not be null")
	}
	t.meta.Lock()
	t.pitr = *in.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled
	t.meta.Unlock()
	return s.continuousBackups(t), nil
}

func (s *Service) continuousBackups(t *table) any {
	t.meta.RLock()
	defer t.meta.RUnlock()
	status := "DISABLED"
	if t.pitr {
		status = "ENABLED"
	}
	return map[string]any{"ContinuousBackupsDescription": map[string]any{
		"ContinuousBackupsStatus":        "ENABLED",
		"PointInTimeRecoveryDescription": map[string]any{"PointInTimeRecoveryStatus": status},
	}}
}

func (s *Service) describeContinuousBackups(body []byte) (any, error) {
	var in tableNameInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.lookupAny(in.TableName)
	if err != nil {
		return nil, err
	}
	return s.continuousBackups(t), nil
}

func (s *Service) describeTimeToLive(body []byte) (any, error) {
	var in tableNameInput
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if _, err := s.lookupAny(in.TableName); err != nil {
		return nil, err
	}
	return map[string]any{"TimeToLiveDescription": map[string]any{"TimeToLiveStatus": "DISABLED"}}, nil
}

func (s *Service) tableByARN(arn string) (*table, error) {
	if arn == "" {
		return nil, validationf("1 validation error detected: Value null at 'resourceArn' failed to satisfy constraint: Member must not be null")
	}
	if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":table/") {
		return nil, validationf("Invalid TableArn: Invalid ResourceArn provided as input %s", arn)
	}
	return s.lookupAny(arn)
}

func (s *Service) tagResource(body []byte) (any, error) {
	var in struct {
		ResourceArn string    `json:"ResourceArn"`
		Tags        []wireTag `json:"Tags"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.tableByARN(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	if len(in.Tags) == 0 {
		return nil, validationf("1 validation error detected: Value null at 'tags' failed to satisfy constraint: Member must not be null")
	}
	t.meta.Lock()
	defer t.meta.Unlock()
	tags := append([]tag(nil), t.tags...)
	for _, tg := range in.Tags {
		if tg.Key == "" || len(tg.Key) > 128 || len(tg.Value) > 256 {
			return nil, validationf("One or more parameter values were invalid: Tag key or value has an invalid length")
		}
		tags = setTag(tags, tg.Key, tg.Value)
	}
	if len(tags) > 50 {
		return nil, validationf("One or more parameter values were invalid: The number of tags exceeds the limit of 50")
	}
	t.tags = tags
	return struct{}{}, nil
}

func (s *Service) untagResource(body []byte) (any, error) {
	var in struct {
		ResourceArn string   `json:"ResourceArn"`
		TagKeys     []string `json:"TagKeys"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.tableByARN(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	t.meta.Lock()
	defer t.meta.Unlock()
	var kept []tag
	for _, tg := range t.tags {
		drop := false
		for _, k := range in.TagKeys {
			drop = drop || k == tg.key
		}
		if !drop {
			kept = append(kept, tg)
		}
	}
	t.tags = kept
	return struct{}{}, nil
}

func (s *Service) listTagsOfResource(body []byte) (any, error) {
	var in struct {
		ResourceArn string `json:"ResourceArn"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	t, err := s.tableByARN(in.ResourceArn)
	if err != nil {
		return nil, err
	}
	t.meta.RLock()
	defer t.meta.RUnlock()
	tags := make([]wireTag, 0, len(t.tags))
	for _, tg := range t.tags {
		tags = append(tags, wireTag{tg.key, tg.value})
	}
	return map[string]any{"Tags": tags}, nil
}
