package lease_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
)

// TestLayoutDetectionAsJava35 checks that a store with WithLayoutDetection picks the
// layout Java KCL 3.5 picks: single table for a new application and for one whose
// coordinator-state table is absent or records a finished table migration, three tables
// for one whose coordinator-state table exists without that record.
func TestLayoutDetectionAsJava35(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	db := enginetest.DynamoDB(e)
	ctx := context.Background()
	exists := func(name string) bool {
		_, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		var nf *types.ResourceNotFoundException
		if err != nil && !errors.As(err, &nf) {
			t.Fatal(err)
		}
		return err == nil
	}
	create := func(t *testing.T, tables lease.Tables, opts ...lease.Option) *lease.Store {
		t.Helper()
		s, err := lease.NewStore(db, tables, append(opts, lease.WithTablePollInterval(10*time.Millisecond))...)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.CreateTables(ctx, lease.TableSettings{}); err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("new application", func(t *testing.T) {
		s := create(t, lease.DefaultTables("new-app"), lease.WithLayoutDetection())
		if got := s.Tables(); got != lease.SingleTableLayout("new-app") {
			t.Fatalf("layout %+v, want the single-table layout", got)
		}
		if exists("new-app-CoordinatorState") || exists("new-app-WorkerMetricStats") {
			t.Fatal("coordinator-state or worker-metrics table created for a new application")
		}
		tm, err := s.TableMigrationState(ctx)
		if err != nil || tm.TableMigrationStatus() != lease.TableMigrationComplete {
			t.Fatalf("table migration item %+v, %v; want COMPLETE in the lease table", tm, err)
		}
	})

	t.Run("single-table application", func(t *testing.T) {
		create(t, lease.SingleTableLayout("java35"))
		s := create(t, lease.DefaultTables("java35"), lease.WithLayoutDetection())
		if !s.Tables().SingleTable || exists("java35-CoordinatorState") {
			t.Fatalf("layout %+v on a single-table application", s.Tables())
		}
	})

	t.Run("three-table application", func(t *testing.T) {
		tables := lease.Tables{Lease: "java34", CoordinatorState: "java34-state", WorkerMetrics: "java34-metrics"}
		create(t, tables)
		// Detection looks for the table the store was given.
		s := create(t, tables, lease.WithLayoutDetection())
		if got := s.Tables(); got != tables {
			t.Fatalf("layout %+v, want %+v", got, tables)
		}
	})

	t.Run("finished table migration", func(t *testing.T) {
		tables := lease.DefaultTables("migrated")
		create(t, tables)
		_, err := db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(tables.CoordinatorState), Item: map[string]types.AttributeValue{
			"key":        &types.AttributeValueMemberS{Value: "TableMigration3.5"},
			"tm":         &types.AttributeValueMemberS{Value: string(lease.TableMigrationComplete)},
			"mb":         &types.AttributeValueMemberS{Value: "java-worker"},
			"mts":        &types.AttributeValueMemberN{Value: "1765000000000"},
			"entityType": &types.AttributeValueMemberS{Value: "TABLE_MIGRATION"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		s := create(t, tables, lease.WithLayoutDetection())
		if !s.Tables().SingleTable {
			t.Fatalf("layout %+v after a finished table migration, want single table", s.Tables())
		}
	})
}
