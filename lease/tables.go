package lease

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"go.uber.org/zap"
)

// TableSettings are the settings of tables created by CreateTables.
type TableSettings struct {
	// Provisioned selects provisioned capacity; on-demand (PAY_PER_REQUEST) otherwise.
	Provisioned bool
	// ReadCapacity and WriteCapacity are the provisioned units (of each table and of the
	// lease table's index); 10 each when zero.
	ReadCapacity, WriteCapacity int64
	// Tags are added to every table created.
	Tags map[string]string
	// PointInTimeRecovery enables continuous backups on the tables created.
	PointInTimeRecovery bool
	// DeletionProtection protects the tables created against deletion.
	DeletionProtection bool
	// ActiveTimeout bounds the wait for each table to become ACTIVE; 5 minutes when zero.
	ActiveTimeout time.Duration
	// CreatedBy is recorded as the modifiedBy (mb) of the migration items written into a
	// new application's coordinator state; DefaultCreatedBy when empty.
	CreatedBy string
}

func (ts *TableSettings) validate() error {
	if ts.ReadCapacity < 0 || ts.WriteCapacity < 0 || ts.ActiveTimeout < 0 {
		return fmt.Errorf("%w: negative capacity or timeout", ErrInvalidOption)
	}
	return nil
}

// CreateTables creates the tables of the store's layout (found first with
// WithLayoutDetection) that do not exist yet (the lease
// table with its LeaseOwnerToLeaseKeyIndex, and in the three-table layout the
// coordinator-state and worker-metrics tables), and waits until each is ACTIVE. Existing
// tables are left as they are. When it creates the lease table (a new application), it
// also records the final KCL 3.x migration state (WriteFinalMigrationState), so Java KCL
// 3.x workers joining the application start with the 3.x algorithms at once. ctx bounds
// the whole call.
func (s *Store) CreateTables(ctx context.Context, settings TableSettings) error {
	if err := settings.validate(); err != nil {
		return err
	}
	if s.detect {
		three := s.tables
		if three.SingleTable || three.CoordinatorState == "" {
			three = DefaultTables(s.tables.Lease)
		}
		t, err := detectTables(ctx, s.db, three)
		if err != nil {
			return err
		}
		s.log.Info("lease: table layout of the application", zap.String("leaseTable", t.Lease), zap.Bool("singleTable", t.SingleTable))
		s.tables, s.detect = t, false
	}
	type spec struct {
		name, key string
		gsi       bool
	}
	specs := []spec{{s.tables.Lease, attrLeaseKey, true}}
	if !s.tables.SingleTable {
		specs = append(specs, spec{s.tables.CoordinatorState, attrCoordinatorStateKey, false},
			spec{s.tables.WorkerMetrics, attrWorkerID, false})
	}
	newApp := false
	for i, sp := range specs {
		created, err := s.createTable(ctx, sp.name, sp.key, sp.gsi, settings)
		if err != nil {
			return err
		}
		if i == 0 {
			newApp = created
		}
		if err := s.waitActive(ctx, sp.name, settings.ActiveTimeout); err != nil {
			return err
		}
		if created && settings.PointInTimeRecovery {
			_, err := s.db.UpdateContinuousBackups(ctx, &dynamodb.UpdateContinuousBackupsInput{
				TableName: aws.String(sp.name),
				PointInTimeRecoverySpecification: &types.PointInTimeRecoverySpecification{
					PointInTimeRecoveryEnabled: aws.Bool(true),
				},
			})
			if err != nil {
				return &Error{Op: "enable-pitr", Table: sp.name, Err: err}
			}
		}
	}
	if newApp {
		by := settings.CreatedBy
		if by == "" {
			by = DefaultCreatedBy
		}
		if _, err := s.WriteFinalMigrationState(ctx, by); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) createTable(ctx context.Context, name, key string, gsi bool, st TableSettings) (bool, error) {
	in := &dynamodb.CreateTableInput{
		TableName:                 aws.String(name),
		KeySchema:                 []types.KeySchemaElement{{AttributeName: aws.String(key), KeyType: types.KeyTypeHash}},
		AttributeDefinitions:      []types.AttributeDefinition{{AttributeName: aws.String(key), AttributeType: types.ScalarAttributeTypeS}},
		BillingMode:               types.BillingModePayPerRequest,
		DeletionProtectionEnabled: aws.Bool(st.DeletionProtection),
	}
	var throughput *types.ProvisionedThroughput
	if st.Provisioned {
		rc, wc := st.ReadCapacity, st.WriteCapacity
		if rc == 0 {
			rc = 10
		}
		if wc == 0 {
			wc = 10
		}
		throughput = &types.ProvisionedThroughput{ReadCapacityUnits: aws.Int64(rc), WriteCapacityUnits: aws.Int64(wc)}
		in.BillingMode = types.BillingModeProvisioned
		in.ProvisionedThroughput = throughput
	}
	if gsi {
		in.AttributeDefinitions = append(in.AttributeDefinitions,
			types.AttributeDefinition{AttributeName: aws.String(attrLeaseOwner), AttributeType: types.ScalarAttributeTypeS})
		in.GlobalSecondaryIndexes = []types.GlobalSecondaryIndex{{
			IndexName: aws.String(indexLeaseOwnerToLeaseKey),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrLeaseOwner), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrLeaseKey), KeyType: types.KeyTypeRange},
			},
			Projection:            &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
			ProvisionedThroughput: throughput,
		}}
	}
	keys := make([]string, 0, len(st.Tags))
	for k := range st.Tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(st.Tags[k])})
	}
	_, err := s.db.CreateTable(ctx, in)
	if err == nil {
		s.log.Info("created table")
		return true, nil
	}
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		return false, nil
	}
	return false, &Error{Op: "create-table", Table: name, Err: err}
}

func (s *Store) waitActive(ctx context.Context, name string, timeout time.Duration) error {
	if timeout == 0 {
		timeout = 5 * time.Minute
	}
	deadline := s.clock.Now().Add(timeout)
	for {
		out, err := s.db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		if err != nil && !isNotFound(err) {
			return &Error{Op: "describe-table", Table: name, Err: err}
		}
		if err == nil && out.Table != nil && out.Table.TableStatus == types.TableStatusActive && indexesActive(out.Table) {
			return nil
		}
		if !s.clock.Now().Before(deadline) {
			return &Error{Op: "wait-active", Table: name, Err: ErrTableNotActive}
		}
		select {
		case <-ctx.Done():
			return &Error{Op: "wait-active", Table: name, Err: ctx.Err()}
		case <-s.clock.After(s.poll):
		}
	}
}

func indexesActive(t *types.TableDescription) bool {
	for _, g := range t.GlobalSecondaryIndexes {
		if g.IndexStatus != "" && g.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}
