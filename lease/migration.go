package lease

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Keys and attribute names of the two migration items Java KCL 3.x keeps in the
// coordinator state (the CoordinatorState table, or the lease table in the single-table
// layout).
//
// The client-version item (key Migration3.0) records whether the fleet runs the KCL 2.x
// algorithms, is migrating, or runs the 3.x ones: attribute cv (S, a ClientVersion), mb (S,
// the worker that last changed it), mts (N, epoch milliseconds of that change) and h (L of
// M, up to 10 previous {cv, mb, mts}, newest first). KCL 3.5 adds entityType
// CLIENT_VERSION_MIGRATION; earlier 3.x versions write no entityType.
//
// The table-migration item of KCL 3.5 (key TableMigration3.5) tracks the move of the
// coordinator state and worker metrics into the lease table: tm (S, a
// TableMigrationStatus), mb, mts and h as above, and entityType TABLE_MIGRATION. A
// finished move leaves it with tm TABLE_MIGRATION_STATUS_COMPLETE in the lease table.
const (
	migrationKey      = "Migration3.0"
	tableMigrationKey = "TableMigration3.5"

	attrMigrationClientVersion = "cv"
	attrMigrationModifiedBy    = "mb"
	attrMigrationModifiedAt    = "mts"
	attrMigrationHistory       = "h"
	attrTableMigrationStatus   = "tm"

	// maxMigrationHistory is how many history entries Java keeps.
	maxMigrationHistory = 10
)

// DefaultCreatedBy is the modified-by (mb) value of the migration items CreateTables
// writes when TableSettings.CreatedBy is empty.
const DefaultCreatedBy = "freshet"

// ClientVersion is the fleet's KCL client version, as recorded in the client-version
// migration item.
type ClientVersion string

// Client versions Java KCL 3.x records.
const (
	// ClientVersionInit is the transient state before any version is recorded.
	ClientVersionInit ClientVersion = "CLIENT_VERSION_INIT"
	// ClientVersionUpgradeFrom2x: a fleet upgrading from KCL 2.x; workers report metrics
	// but still elect and assign with the 2.x algorithms.
	ClientVersionUpgradeFrom2x ClientVersion = "CLIENT_VERSION_UPGRADE_FROM_2X"
	// ClientVersion2x: the fleet rolled back to the 2.x algorithms.
	ClientVersion2x ClientVersion = "CLIENT_VERSION_2X"
	// ClientVersion3xWithRollback: the fleet runs the 3.x algorithms but may still roll
	// back.
	ClientVersion3xWithRollback ClientVersion = "CLIENT_VERSION_3X_WITH_ROLLBACK"
	// ClientVersion3x: the final state; the fleet runs the 3.x algorithms (what a new
	// KCL 3.x application records, and what Freshet writes into tables it creates).
	ClientVersion3x ClientVersion = "CLIENT_VERSION_3X"
)

// Known reports whether v is one of the versions above.
func (v ClientVersion) Known() bool {
	switch v {
	case ClientVersionInit, ClientVersionUpgradeFrom2x, ClientVersion2x, ClientVersion3xWithRollback, ClientVersion3x:
		return true
	}
	return false
}

// Runs3x reports whether a fleet at version v elects its leader on the lock item and
// assigns leases from worker metrics, the protocol Freshet implements. Freshet workers
// should not join a fleet for which it is false: its Java workers take leases by the 2.x
// rules.
func (v ClientVersion) Runs3x() bool {
	return v == ClientVersion3x || v == ClientVersion3xWithRollback
}

// TableMigrationStatus is the state of KCL 3.5's move of the coordinator state and worker
// metrics into the lease table.
type TableMigrationStatus string

// Table migration statuses Java KCL 3.5 records.
const (
	TableMigrationInit     TableMigrationStatus = "TABLE_MIGRATION_STATUS_INIT"
	TableMigrationDeployed TableMigrationStatus = "TABLE_MIGRATION_STATUS_DEPLOYED"
	TableMigrationPending  TableMigrationStatus = "TABLE_MIGRATION_STATUS_PENDING"
	// TableMigrationComplete: every entity lives in the lease table (single-table layout).
	TableMigrationComplete TableMigrationStatus = "TABLE_MIGRATION_STATUS_COMPLETE"
)

// MigrationChange is one recorded value of a migration item: the value (a ClientVersion
// or TableMigrationStatus), who wrote it and when.
type MigrationChange struct {
	// Value is the cv or tm attribute.
	Value string
	// ModifiedBy is the mb attribute: the worker that wrote the value.
	ModifiedBy string
	// ModifiedAt is the mts attribute (epoch milliseconds).
	ModifiedAt time.Time
}

// MigrationState is a migration item: its current value and up to 10 previous ones,
// newest first.
type MigrationState struct {
	MigrationChange
	// History holds the previous values, newest first.
	History []MigrationChange
}

// ClientVersion returns the value of a client-version item as a ClientVersion.
func (m *MigrationState) ClientVersion() ClientVersion { return ClientVersion(m.Value) }

// TableMigrationStatus returns the value of a table-migration item as a status.
func (m *MigrationState) TableMigrationStatus() TableMigrationStatus {
	return TableMigrationStatus(m.Value)
}

func marshalChange(c *MigrationChange, valueAttr string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		valueAttr:               str(c.Value),
		attrMigrationModifiedBy: str(c.ModifiedBy),
		attrMigrationModifiedAt: num(c.ModifiedAt.UnixMilli()),
	}
}

// marshalMigration returns the item of a migration state, without its key.
func marshalMigration(m *MigrationState, valueAttr, entityType string) map[string]types.AttributeValue {
	item := marshalChange(&m.MigrationChange, valueAttr)
	item[attrEntityType] = str(entityType)
	if len(m.History) > 0 {
		h := make([]types.AttributeValue, 0, min(len(m.History), maxMigrationHistory))
		for i := range m.History {
			if i == maxMigrationHistory {
				break
			}
			h = append(h, &types.AttributeValueMemberM{Value: marshalChange(&m.History[i], valueAttr)})
		}
		item[attrMigrationHistory] = &types.AttributeValueMemberL{Value: h}
	}
	return item
}

func unmarshalChange(item map[string]types.AttributeValue, valueAttr string) (MigrationChange, error) {
	r := itemReader{item: item}
	c := MigrationChange{Value: r.str(valueAttr, true), ModifiedBy: r.str(attrMigrationModifiedBy, false)}
	if _, ok := item[attrMigrationModifiedAt]; ok {
		c.ModifiedAt = time.UnixMilli(r.int(attrMigrationModifiedAt)).UTC()
	}
	return c, r.err
}

// unmarshalMigration reads a migration item as Java KCL 3.x writes it.
func unmarshalMigration(item map[string]types.AttributeValue, valueAttr string) (MigrationState, error) {
	var m MigrationState
	var err error
	if m.MigrationChange, err = unmarshalChange(item, valueAttr); err != nil {
		return MigrationState{}, err
	}
	switch h := item[attrMigrationHistory].(type) {
	case nil, *types.AttributeValueMemberNULL:
	case *types.AttributeValueMemberL:
		for i, e := range h.Value {
			em, ok := e.(*types.AttributeValueMemberM)
			if !ok {
				return MigrationState{}, fmt.Errorf("%w: attribute %s[%d]: type %s, want M", ErrMalformedItem, attrMigrationHistory, i, describe(e))
			}
			c, err := unmarshalChange(em.Value, valueAttr)
			if err != nil {
				return MigrationState{}, err
			}
			m.History = append(m.History, c)
		}
	default:
		return MigrationState{}, fmt.Errorf("%w: attribute %s: type %s, want L", ErrMalformedItem, attrMigrationHistory, describe(h))
	}
	return m, nil
}

// getState reads the coordinator-state item key from table (consistent read).
func (s *Store) getState(ctx context.Context, op, table, keyAttr, key string) (map[string]types.AttributeValue, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]types.AttributeValue{keyAttr: str(key)},
	})
	if err != nil {
		return nil, &Error{Op: op, Table: table, Key: key, Err: err}
	}
	if len(out.Item) == 0 {
		return nil, &Error{Op: op, Table: table, Key: key, Err: ErrNotFound}
	}
	return out.Item, nil
}

// ClientVersionState reads the client-version migration item (key Migration3.0) from the
// coordinator state of the store's layout. It fails with ErrNotFound when there is none
// (a KCL 1.x/2.x application, or one created by a 3.x worker that has not started yet)
// and with ErrMalformedItem when the item cannot be read.
func (s *Store) ClientVersionState(ctx context.Context) (MigrationState, error) {
	table, keyAttr := s.tables.stateTable()
	item, err := s.getState(ctx, "get-client-version", table, keyAttr, migrationKey)
	if err != nil {
		return MigrationState{}, err
	}
	if et := stringAttr(item, attrEntityType); et != "" && et != entityClientVersionMigration {
		return MigrationState{}, &Error{Op: "get-client-version", Table: table, Key: migrationKey,
			Err: fmt.Errorf("%w: entityType %q", ErrMalformedItem, et)}
	}
	m, err := unmarshalMigration(item, attrMigrationClientVersion)
	if err != nil {
		return MigrationState{}, &Error{Op: "get-client-version", Table: table, Key: migrationKey, Err: err}
	}
	return m, nil
}

// TableMigrationState reads KCL 3.5's table-migration item (key TableMigration3.5) from
// the coordinator state of the store's layout: the CoordinatorState table in the
// three-table layout (where Java keeps it while migrating), the lease table in the
// single-table layout. It fails with ErrNotFound when there is none.
func (s *Store) TableMigrationState(ctx context.Context) (MigrationState, error) {
	table, keyAttr := s.tables.stateTable()
	return s.tableMigrationState(ctx, table, keyAttr)
}

func (s *Store) tableMigrationState(ctx context.Context, table, keyAttr string) (MigrationState, error) {
	item, err := s.getState(ctx, "get-table-migration", table, keyAttr, tableMigrationKey)
	if err != nil {
		return MigrationState{}, err
	}
	if et := stringAttr(item, attrEntityType); et != "" && et != entityTableMigration {
		return MigrationState{}, &Error{Op: "get-table-migration", Table: table, Key: tableMigrationKey,
			Err: fmt.Errorf("%w: entityType %q", ErrMalformedItem, et)}
	}
	m, err := unmarshalMigration(item, attrTableMigrationStatus)
	if err != nil {
		return MigrationState{}, &Error{Op: "get-table-migration", Table: table, Key: tableMigrationKey, Err: err}
	}
	return m, nil
}

// finalMigrationState is what a new KCL 3.x application records: the final value,
// with the initial one as its only history entry.
func finalMigrationState(value, initial, by string, at time.Time) MigrationState {
	at = at.Truncate(time.Millisecond)
	return MigrationState{
		MigrationChange: MigrationChange{Value: value, ModifiedBy: by, ModifiedAt: at},
		History:         []MigrationChange{{Value: initial, ModifiedBy: by, ModifiedAt: at}},
	}
}

// putStateIfAbsent writes a coordinator-state item unless its key exists, and reports
// whether it wrote it.
func (s *Store) putStateIfAbsent(ctx context.Context, op, table, keyAttr, key string, item map[string]types.AttributeValue) (bool, error) {
	item[keyAttr] = str(key)
	_, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                aws.String(table),
		Item:                     item,
		ConditionExpression:      aws.String("attribute_not_exists(#k)"),
		ExpressionAttributeNames: map[string]string{"#k": keyAttr},
	})
	switch {
	case err == nil:
		return true, nil
	case isConditionFailed(err):
		return false, nil
	}
	return false, &Error{Op: op, Table: table, Key: key, Err: err}
}

// WriteFinalMigrationState records, unless already present, the final KCL 3.x migration
// state a new application has: the client-version item at CLIENT_VERSION_3X and, in the
// single-table layout, the table-migration item at TABLE_MIGRATION_STATUS_COMPLETE, both
// with modifiedBy and the store clock's time, and the initial value as their one history
// entry, shaped as Java KCL 3.5 writes them. It reports whether it wrote the client-version
// item. CreateTables calls it for a lease table it creates; call it only for an application
// no KCL 2.x worker runs, since Java 3.x workers then skip the 2.x-compatible migration
// steps.
func (s *Store) WriteFinalMigrationState(ctx context.Context, modifiedBy string) (bool, error) {
	if modifiedBy == "" {
		return false, fmt.Errorf("%w: empty modifiedBy", ErrInvalidOption)
	}
	table, keyAttr := s.tables.stateTable()
	now := s.clock.Now()
	cv := finalMigrationState(string(ClientVersion3x), string(ClientVersionInit), modifiedBy, now)
	wrote, err := s.putStateIfAbsent(ctx, "put-client-version", table, keyAttr, migrationKey,
		marshalMigration(&cv, attrMigrationClientVersion, entityClientVersionMigration))
	if err != nil {
		return false, err
	}
	if s.tables.SingleTable {
		tm := finalMigrationState(string(TableMigrationComplete), string(TableMigrationInit), modifiedBy, now)
		if _, err := s.putStateIfAbsent(ctx, "put-table-migration", table, keyAttr, tableMigrationKey,
			marshalMigration(&tm, attrTableMigrationStatus, entityTableMigration)); err != nil {
			return wrote, err
		}
	}
	return wrote, nil
}

// DetectTables finds the layout of application app's existing tables the way Java KCL
// 3.5 does: when the table app-CoordinatorState does not exist, or holds a table-migration
// item at TABLE_MIGRATION_STATUS_COMPLETE, the application uses the single-table layout;
// otherwise the three-table layout (a KCL 3.0-3.4 application, or a 3.5 one still
// migrating). It does not check that the lease table exists.
func DetectTables(ctx context.Context, db DynamoDBAPI, app string) (Tables, error) {
	if db == nil || app == "" {
		return Tables{}, fmt.Errorf("%w: DetectTables needs a client and an application name", ErrInvalidOption)
	}
	return detectTables(ctx, db, DefaultTables(app))
}

// detectTables returns three, or the single-table layout of its lease table when its
// coordinator-state table does not exist or records a finished table migration.
func detectTables(ctx context.Context, db DynamoDBAPI, three Tables) (Tables, error) {
	app := three.Lease
	_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(three.CoordinatorState)})
	if isNotFound(err) {
		return SingleTableLayout(app), nil
	}
	if err != nil {
		return Tables{}, &Error{Op: "detect-tables", Table: three.CoordinatorState, Err: err}
	}
	s := &Store{db: db, tables: three}
	m, err := s.tableMigrationState(ctx, three.CoordinatorState, attrCoordinatorStateKey)
	switch {
	case errors.Is(err, ErrNotFound):
		return three, nil
	case err != nil:
		return Tables{}, err
	case m.TableMigrationStatus() == TableMigrationComplete:
		return SingleTableLayout(app), nil
	}
	return three, nil
}
