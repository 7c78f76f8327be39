package lease_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/lease"
)

// TestCreateTablesSettingsOnEngine creates both layouts' tables with and without the
// optional settings (provisioned capacity, tags, point-in-time recovery, deletion
// protection) and reads each table's description, tags and backups back from the engine.
func TestCreateTablesSettingsOnEngine(t *testing.T) {
	e := enginetest.Start(t, engine.Config{})
	db := enginetest.DynamoDB(e)
	ctx := context.Background()
	tests := []struct {
		name     string
		settings lease.TableSettings
		rcu, wcu int64 // 0: on demand
	}{
		{name: "defaults"},
		{name: "provisioned defaults", settings: lease.TableSettings{Provisioned: true}, rcu: 10, wcu: 10},
		{name: "everything", settings: lease.TableSettings{Provisioned: true, ReadCapacity: 5, WriteCapacity: 7,
			Tags: map[string]string{"team": "streams", "env": "test"}, PointInTimeRecovery: true, DeletionProtection: true}, rcu: 5, wcu: 7},
		{name: "on demand with tags and recovery", settings: lease.TableSettings{Tags: map[string]string{"k": "v"}, PointInTimeRecovery: true}},
	}
	for i, tc := range tests {
		for _, single := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/single=%v", tc.name, single), func(t *testing.T) {
				app := fmt.Sprintf("settings-%d-%v", i, single)
				tables := lease.DefaultTables(app)
				if single {
					tables = lease.SingleTableLayout(app)
				}
				rec := &recordingDB{DynamoDBAPI: db}
				s, err := lease.NewStore(rec, tables, lease.WithTablePollInterval(10*time.Millisecond))
				if err != nil {
					t.Fatal(err)
				}
				if err := s.CreateTables(ctx, tc.settings); err != nil {
					t.Fatal(err)
				}
				names := []string{tables.Lease}
				if !single {
					names = append(names, tables.CoordinatorState, tables.WorkerMetrics)
				}
				// The engine neither keeps nor reports deletion protection: check the requests.
				if len(rec.created) != len(names) {
					t.Fatalf("%d CreateTable calls, want %d", len(rec.created), len(names))
				}
				for _, in := range rec.created {
					if got := aws.ToBool(in.DeletionProtectionEnabled); got != tc.settings.DeletionProtection {
						t.Errorf("%s: deletion protection requested %v, want %v", aws.ToString(in.TableName), got, tc.settings.DeletionProtection)
					}
				}
				for _, name := range names {
					out, err := db.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
					if err != nil {
						t.Fatal(err)
					}
					d := out.Table
					if d.TableStatus != types.TableStatusActive {
						t.Errorf("%s: status %s", name, d.TableStatus)
					}
					billing := types.BillingModeProvisioned
					if d.BillingModeSummary != nil {
						billing = d.BillingModeSummary.BillingMode
					}
					wantBilling := types.BillingModePayPerRequest
					if tc.rcu > 0 {
						wantBilling = types.BillingModeProvisioned
					}
					if billing != wantBilling {
						t.Errorf("%s: billing mode %s, want %s", name, billing, wantBilling)
					}
					checkThroughput(t, name, d.ProvisionedThroughput, tc.rcu, tc.wcu)
					for _, g := range d.GlobalSecondaryIndexes {
						checkThroughput(t, name+" index", g.ProvisionedThroughput, tc.rcu, tc.wcu)
					}
					if name == tables.Lease && len(d.GlobalSecondaryIndexes) != 1 {
						t.Errorf("%s: %d indexes", name, len(d.GlobalSecondaryIndexes))
					}
					tags, err := db.ListTagsOfResource(ctx, &dynamodb.ListTagsOfResourceInput{ResourceArn: d.TableArn})
					if err != nil {
						t.Fatal(err)
					}
					got := map[string]string{}
					for _, tg := range tags.Tags {
						got[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
					}
					if want := tc.settings.Tags; !maps.Equal(got, want) && !(len(got) == 0 && len(want) == 0) {
						t.Errorf("%s: tags %v, want %v", name, got, want)
					}
					cb, err := db.DescribeContinuousBackups(ctx, &dynamodb.DescribeContinuousBackupsInput{TableName: aws.String(name)})
					if err != nil {
						t.Fatal(err)
					}
					pitr := types.PointInTimeRecoveryStatusDisabled
					if desc := cb.ContinuousBackupsDescription; desc != nil && desc.PointInTimeRecoveryDescription != nil {
						pitr = desc.PointInTimeRecoveryDescription.PointInTimeRecoveryStatus
					}
					wantPITR := types.PointInTimeRecoveryStatusDisabled
					if tc.settings.PointInTimeRecovery {
						wantPITR = types.PointInTimeRecoveryStatusEnabled
					}
					if pitr != wantPITR {
						t.Errorf("%s: point-in-time recovery %s, want %s", name, pitr, wantPITR)
					}
				}
			})
		}
	}
	var s *lease.Store
	s, _ = lease.NewStore(db, lease.DefaultTables("bad"))
	if err := s.CreateTables(ctx, lease.TableSettings{ReadCapacity: -1}); err == nil {
		t.Fatal("negative capacity accepted")
	}
}

func checkThroughput(t *testing.T, name string, p *types.ProvisionedThroughputDescription, rcu, wcu int64) {
	t.Helper()
	var gotR, gotW int64
	if p != nil {
		gotR, gotW = aws.ToInt64(p.ReadCapacityUnits), aws.ToInt64(p.WriteCapacityUnits)
	}
	if gotR != rcu || gotW != wcu {
		t.Errorf("%s: throughput %d/%d, want %d/%d", name, gotR, gotW, rcu, wcu)
	}
}

// recordingDB records CreateTable requests.
type recordingDB struct {
	lease.DynamoDBAPI
	created []*dynamodb.CreateTableInput
}

func (r *recordingDB) CreateTable(ctx context.Context, in *dynamodb.CreateTableInput, o ...func(*dynamodb.Options)) (*dynamodb.CreateTableOutput, error) {
	r.created = append(r.created, in)
	return r.DynamoDBAPI.CreateTable(ctx, in, o...)
}
