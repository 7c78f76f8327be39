package lease

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func TestMigrationStateRoundTrip(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 123e6, time.UTC)
	tests := []struct {
		name       string
		m          MigrationState
		valueAttr  string
		entityType string
		histLen    int
	}{
		{"final client version", finalMigrationState(string(ClientVersion3x), string(ClientVersionInit), "w", at), attrMigrationClientVersion, entityClientVersionMigration, 1},
		{"final table migration", finalMigrationState(string(TableMigrationComplete), string(TableMigrationInit), "w", at), attrTableMigrationStatus, entityTableMigration, 1},
		{"no history", MigrationState{MigrationChange: MigrationChange{Value: "CLIENT_VERSION_2X", ModifiedBy: "x", ModifiedAt: at}}, attrMigrationClientVersion, entityClientVersionMigration, 0},
	}
	long := MigrationState{MigrationChange: MigrationChange{Value: "CLIENT_VERSION_3X", ModifiedBy: "x", ModifiedAt: at}}
	for i := 0; i < 12; i++ {
		long.History = append(long.History, MigrationChange{Value: "CLIENT_VERSION_2X", ModifiedBy: "y", ModifiedAt: at.Add(-time.Duration(i) * time.Second)})
	}
	tests = append(tests, struct {
		name       string
		m          MigrationState
		valueAttr  string
		entityType string
		histLen    int
	}{"history capped at 10", long, attrMigrationClientVersion, entityClientVersionMigration, 10})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			item := marshalMigration(&tc.m, tc.valueAttr, tc.entityType)
			if et := stringAttr(item, attrEntityType); et != tc.entityType {
				t.Fatalf("entityType %q", et)
			}
			got, err := unmarshalMigration(item, tc.valueAttr)
			if err != nil {
				t.Fatal(err)
			}
			want := tc.m
			want.History = want.History[:tc.histLen]
			if tc.histLen == 0 {
				want.History = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func FuzzUnmarshalMigration(f *testing.F) {
	f.Add("CLIENT_VERSION_3X", "w", "1767225600000", "CLIENT_VERSION_INIT", "1", true)
	f.Add("", "", "x", "", "", false)
	f.Add("TABLE_MIGRATION_STATUS_COMPLETE", "w", "1E+3", "TABLE_MIGRATION_STATUS_INIT", "-5", true)
	f.Fuzz(func(t *testing.T, cv, mb, mts, hcv, hmts string, withHistory bool) {
		item := map[string]types.AttributeValue{"cv": S(cv), "mb": S(mb), "mts": N(mts)}
		if withHistory {
			item["h"] = &types.AttributeValueMemberL{Value: []types.AttributeValue{
				&types.AttributeValueMemberM{Value: map[string]types.AttributeValue{"cv": S(hcv), "mb": S(mb), "mts": N(hmts)}},
			}}
		}
		m, err := unmarshalMigration(item, attrMigrationClientVersion)
		if err != nil {
			if !errors.Is(err, ErrMalformedItem) {
				t.Fatalf("error %v does not wrap ErrMalformedItem", err)
			}
			return
		}
		again, err := unmarshalMigration(marshalMigration(&m, attrMigrationClientVersion, entityClientVersionMigration), attrMigrationClientVersion)
		if err != nil {
			t.Fatalf("re-reading a marshalled state: %v", err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip changed the state:\n got %+v\nwant %+v", again, m)
		}
	})
}
