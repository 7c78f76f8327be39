package leasetest

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/lease"
)

// stateTable returns the table and key attribute of the store's coordinator state.
func stateTable(s *lease.Store) (string, string) {
	if t := s.Tables(); !t.SingleTable {
		return t.CoordinatorState, "key"
	}
	return s.Tables().Lease, "leaseKey"
}

func rawState(t *testing.T, db lease.DynamoDBAPI, s *lease.Store, key string) map[string]types.AttributeValue {
	t.Helper()
	table, keyAttr := stateTable(s)
	out, err := db.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{keyAttr: &types.AttributeValueMemberS{Value: key}}})
	if err != nil {
		t.Fatal(err)
	}
	return out.Item
}

func putState(t *testing.T, db lease.DynamoDBAPI, table, keyAttr, key string, item map[string]types.AttributeValue) {
	t.Helper()
	item[keyAttr] = &types.AttributeValueMemberS{Value: key}
	if _, err := db.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(table), Item: item}); err != nil {
		t.Fatal(err)
	}
}

// checkMigrationItem checks the attribute types of a migration item as Java writes it.
func checkMigrationItem(t *testing.T, item map[string]types.AttributeValue, valueAttr, entityType, value, initial string) {
	t.Helper()
	for name, typ := range map[string]string{valueAttr: "S", "mb": "S", "mts": "N", "entityType": "S"} {
		if got := typeOf(item[name]); got != typ {
			t.Errorf("attribute %s stored as %s, want %s", name, got, typ)
		}
	}
	if v := item[valueAttr].(*types.AttributeValueMemberS).Value; v != value {
		t.Errorf("%s = %q, want %q", valueAttr, v, value)
	}
	if v := item["entityType"].(*types.AttributeValueMemberS).Value; v != entityType {
		t.Errorf("entityType = %q, want %q", v, entityType)
	}
	h, ok := item["h"].(*types.AttributeValueMemberL)
	if !ok || len(h.Value) != 1 {
		t.Fatalf("history h = %#v, want a list of one entry", item["h"])
	}
	e, ok := h.Value[0].(*types.AttributeValueMemberM)
	if !ok || len(e.Value) != 3 || typeOf(e.Value["mb"]) != "S" || typeOf(e.Value["mts"]) != "N" {
		t.Fatalf("history entry %#v, want M of %s, mb, mts", h.Value[0], valueAttr)
	}
	if v, _ := e.Value[valueAttr].(*types.AttributeValueMemberS); v == nil || v.Value != initial {
		t.Errorf("history entry %s = %#v, want %q", valueAttr, e.Value[valueAttr], initial)
	}
}

// Migration checks the coordinator state's migration items: what CreateTables writes for
// a new application in both layouts, items shaped as Java KCL 3.0-3.4 and 3.5 write them,
// and DetectTables.
func Migration(t *testing.T, db lease.DynamoDBAPI) {
	ctx := context.Background()
	for _, single := range []bool{false, true} {
		s := NewStore(t, db, single)
		before := time.Now().Add(-time.Minute)
		cv, err := s.ClientVersionState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cv.ClientVersion() != lease.ClientVersion3x || cv.ModifiedBy != lease.DefaultCreatedBy || cv.ModifiedAt.Before(before) ||
			len(cv.History) != 1 || cv.History[0].Value != string(lease.ClientVersionInit) || !cv.History[0].ModifiedAt.Equal(cv.ModifiedAt) {
			t.Fatalf("single=%v: client version of new tables %+v", single, cv)
		}
		if !cv.ClientVersion().Runs3x() {
			t.Fatal("CLIENT_VERSION_3X does not run the 3.x protocol")
		}
		checkMigrationItem(t, rawState(t, db, s, "Migration3.0"), "cv", "CLIENT_VERSION_MIGRATION", "CLIENT_VERSION_3X", "CLIENT_VERSION_INIT")
		tm, err := s.TableMigrationState(ctx)
		if single {
			if err != nil || tm.TableMigrationStatus() != lease.TableMigrationComplete || len(tm.History) != 1 {
				t.Fatalf("table migration of new single table: %+v, %v", tm, err)
			}
			checkMigrationItem(t, rawState(t, db, s, "TableMigration3.5"), "tm", "TABLE_MIGRATION", "TABLE_MIGRATION_STATUS_COMPLETE", "TABLE_MIGRATION_STATUS_INIT")
		} else if !errors.Is(err, lease.ErrNotFound) {
			t.Fatalf("table migration item in new three tables: %+v, %v", tm, err)
		}
		// Idempotent: an existing item (here one a Java fleet moved on) is never overwritten.
		if wrote, err := s.WriteFinalMigrationState(ctx, "other"); err != nil || wrote {
			t.Fatalf("second WriteFinalMigrationState = %v, %v", wrote, err)
		}
		if err := s.CreateTables(ctx, lease.TableSettings{CreatedBy: "again"}); err != nil {
			t.Fatal(err)
		}
		if again, _ := s.ClientVersionState(ctx); !reflect.DeepEqual(again, cv) {
			t.Fatalf("client version changed by a repeated write: %+v", again)
		}
		// The migration items are not leases.
		if all, err := s.List(ctx); err != nil || len(all) != 0 {
			t.Fatalf("List = %+v, %v", all, err)
		}
		if got, err := lease.DetectTables(ctx, db, s.Tables().Lease); err != nil || got != s.Tables() {
			t.Fatalf("DetectTables = %+v, %v; want %+v", got, err, s.Tables())
		}
	}

	S := func(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
	N := func(v string) types.AttributeValue { return &types.AttributeValueMemberN{Value: v} }
	M := func(kv ...string) types.AttributeValue {
		m := map[string]types.AttributeValue{}
		for i := 0; i < len(kv); i += 2 {
			if kv[i] == "mts" {
				m[kv[i]] = N(kv[i+1])
			} else {
				m[kv[i]] = S(kv[i+1])
			}
		}
		return &types.AttributeValueMemberM{Value: m}
	}
	ms := func(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

	// A KCL 3.0-3.4 application, upgraded from 2.x: three tables, no entityType, a history.
	s := NewStore(t, db, false)
	putState(t, db, s.Tables().CoordinatorState, "key", "Migration3.0", map[string]types.AttributeValue{
		"cv": S("CLIENT_VERSION_3X_WITH_ROLLBACK"), "mb": S("java-worker-7"), "mts": N("1767225600123"),
		"h": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			M("cv", "CLIENT_VERSION_UPGRADE_FROM_2X", "mb", "java-worker-2", "mts", "1767225500000"),
			M("cv", "CLIENT_VERSION_INIT", "mb", "java-worker-2", "mts", "1767225400000"),
		}},
	})
	want := lease.MigrationState{
		MigrationChange: lease.MigrationChange{Value: "CLIENT_VERSION_3X_WITH_ROLLBACK", ModifiedBy: "java-worker-7", ModifiedAt: ms(1767225600123)},
		History: []lease.MigrationChange{
			{Value: "CLIENT_VERSION_UPGRADE_FROM_2X", ModifiedBy: "java-worker-2", ModifiedAt: ms(1767225500000)},
			{Value: "CLIENT_VERSION_INIT", ModifiedBy: "java-worker-2", ModifiedAt: ms(1767225400000)},
		},
	}
	if got, err := s.ClientVersionState(ctx); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("Java 3.4 client version item read as\n %+v, %v\nwant %+v", got, err, want)
	}
	// A fleet still upgrading from 2.x: Freshet must not join it.
	putState(t, db, s.Tables().CoordinatorState, "key", "Migration3.0", map[string]types.AttributeValue{
		"cv": S("CLIENT_VERSION_UPGRADE_FROM_2X"), "mb": S("java-worker-2"), "mts": N("1767225500000"),
	})
	if got, err := s.ClientVersionState(ctx); err != nil || got.ClientVersion() != lease.ClientVersionUpgradeFrom2x ||
		got.ClientVersion().Runs3x() || !got.ClientVersion().Known() || got.History != nil {
		t.Fatalf("upgrading fleet read as %+v, %v", got, err)
	}
	// A KCL 3.5 application in phase 1 of its table migration still has three tables.
	putState(t, db, s.Tables().CoordinatorState, "key", "TableMigration3.5", map[string]types.AttributeValue{
		"tm": S("TABLE_MIGRATION_STATUS_DEPLOYED"), "mb": S("java-worker-7"), "mts": N("1767225700000"), "entityType": S("TABLE_MIGRATION"),
		"h": &types.AttributeValueMemberL{Value: []types.AttributeValue{M("tm", "TABLE_MIGRATION_STATUS_INIT", "mb", "java-worker-7", "mts", "1767225650000")}},
	})
	if got, err := s.TableMigrationState(ctx); err != nil || got.TableMigrationStatus() != lease.TableMigrationDeployed ||
		len(got.History) != 1 || got.History[0].Value != "TABLE_MIGRATION_STATUS_INIT" {
		t.Fatalf("phase-1 table migration item read as %+v, %v", got, err)
	}
	if got, err := lease.DetectTables(ctx, db, s.Tables().Lease); err != nil || got != s.Tables() {
		t.Fatalf("DetectTables during migration = %+v, %v", got, err)
	}
	// Once Java finished the move, the legacy item says COMPLETE: the lease table is used.
	putState(t, db, s.Tables().CoordinatorState, "key", "TableMigration3.5", map[string]types.AttributeValue{
		"tm": S("TABLE_MIGRATION_STATUS_COMPLETE"), "mb": S("java-worker-7"), "mts": N("1767229300000"), "entityType": S("TABLE_MIGRATION"),
	})
	if got, err := lease.DetectTables(ctx, db, s.Tables().Lease); err != nil || got != lease.SingleTableLayout(s.Tables().Lease) {
		t.Fatalf("DetectTables after the migration = %+v, %v", got, err)
	}
	// Malformed and unknown values.
	putState(t, db, s.Tables().CoordinatorState, "key", "Migration3.0", map[string]types.AttributeValue{"cv": N("3")})
	if _, err := s.ClientVersionState(ctx); !errors.Is(err, lease.ErrMalformedItem) {
		t.Fatalf("cv of type N read with %v, want ErrMalformedItem", err)
	}
	putState(t, db, s.Tables().CoordinatorState, "key", "Migration3.0", map[string]types.AttributeValue{
		"cv": S("CLIENT_VERSION_4X"), "mb": S("future"), "mts": N("1"), "h": S("not a list")})
	if _, err := s.ClientVersionState(ctx); !errors.Is(err, lease.ErrMalformedItem) {
		t.Fatalf("history of type S read with %v, want ErrMalformedItem", err)
	}
	putState(t, db, s.Tables().CoordinatorState, "key", "Migration3.0", map[string]types.AttributeValue{
		"cv": S("CLIENT_VERSION_4X"), "mb": S("future"), "mts": N("1")})
	if got, err := s.ClientVersionState(ctx); err != nil || got.ClientVersion().Known() || got.ClientVersion().Runs3x() {
		t.Fatalf("unknown version read as %+v, %v", got, err)
	}

	// A KCL 3.5 single-table application: the items live in the lease table.
	s = NewStore(t, db, true)
	putState(t, db, s.Tables().Lease, "leaseKey", "Migration3.0", map[string]types.AttributeValue{
		"cv": S("CLIENT_VERSION_3X"), "mb": S("java-worker-9"), "mts": N("1767225600000"), "entityType": S("CLIENT_VERSION_MIGRATION"),
		"h": &types.AttributeValueMemberL{Value: []types.AttributeValue{M("cv", "CLIENT_VERSION_INIT", "mb", "java-worker-9", "mts", "1767225600000")}},
	})
	putState(t, db, s.Tables().Lease, "leaseKey", "TableMigration3.5", map[string]types.AttributeValue{
		"tm": S("TABLE_MIGRATION_STATUS_COMPLETE"), "mb": S("java-worker-9"), "mts": N("1767229200000"), "entityType": S("TABLE_MIGRATION"),
		"h": &types.AttributeValueMemberL{Value: []types.AttributeValue{
			M("tm", "TABLE_MIGRATION_STATUS_PENDING", "mb", "java-worker-9", "mts", "1767225600000"),
			M("tm", "TABLE_MIGRATION_STATUS_DEPLOYED", "mb", "java-worker-9", "mts", "1767222000000"),
		}},
	})
	if got, err := s.ClientVersionState(ctx); err != nil || got.ModifiedBy != "java-worker-9" || got.ClientVersion() != lease.ClientVersion3x ||
		!got.ModifiedAt.Equal(ms(1767225600000)) {
		t.Fatalf("Java 3.5 client version item read as %+v, %v", got, err)
	}
	if got, err := s.TableMigrationState(ctx); err != nil || got.TableMigrationStatus() != lease.TableMigrationComplete ||
		len(got.History) != 2 || got.History[1].Value != "TABLE_MIGRATION_STATUS_DEPLOYED" {
		t.Fatalf("Java 3.5 table migration item read as %+v, %v", got, err)
	}
	// A lease row stored under the migration key is not a migration item.
	putState(t, db, s.Tables().Lease, "leaseKey", "TableMigration3.5", map[string]types.AttributeValue{
		"entityType": S("LEASE"), "tm": S("TABLE_MIGRATION_STATUS_COMPLETE")})
	if _, err := s.TableMigrationState(ctx); !errors.Is(err, lease.ErrMalformedItem) {
		t.Fatalf("lease row read as a table migration item: %v", err)
	}
}
