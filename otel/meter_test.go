package otelfreshet

import (
	"context"
	"errors"
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/freshet/freshet/metrics"
)

// TestMeterRecordsThroughOTel: observations become histograms (gauges for levels) with
// the metric's unit and its dimensions as attributes.
func TestMeterRecordsThroughOTel(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	m, err := NewMeter(WithMeterProvider(mp))
	if err != nil {
		t.Fatal(err)
	}
	shard := metrics.Dimension{Name: metrics.DimShardID, Value: "shardId-000000000001"}
	m.Record("RecordsProcessed", metrics.UnitCount, 10, shard)
	m.Record("RecordsProcessed", metrics.UnitCount, 5, shard)
	m.Record("RecordsProcessed", metrics.UnitCount, 7)
	m.Record("MillisBehindLatest", metrics.UnitMilliseconds, 900, shard)
	m.Record("MillisBehindLatest", metrics.UnitMilliseconds, 30, shard)
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, sm := range rm.ScopeMetrics {
		for _, md := range sm.Metrics {
			switch md.Name {
			case "RecordsProcessed":
				h := md.Data.(metricdata.Histogram[float64])
				if md.Unit != "1" || len(h.DataPoints) != 2 {
					t.Fatalf("%s: unit %q, %d points", md.Name, md.Unit, len(h.DataPoints))
				}
				for _, dp := range h.DataPoints {
					v, ok := dp.Attributes.Value(metrics.DimShardID)
					if ok && (v.AsString() != shard.Value || dp.Count != 2 || dp.Sum != 15) || !ok && (dp.Count != 1 || dp.Sum != 7) {
						t.Fatalf("point %+v", dp)
					}
				}
				found++
			case "MillisBehindLatest":
				g := md.Data.(metricdata.Gauge[float64])
				if md.Unit != "ms" || len(g.DataPoints) != 1 || g.DataPoints[0].Value != 30 {
					t.Fatalf("gauge %+v", g)
				}
				found++
			}
		}
	}
	if found != 2 {
		t.Fatalf("found %d of 2 metrics in %+v", found, rm)
	}
	if n := testing.AllocsPerRun(100, func() { m.Record("RecordsProcessed", metrics.UnitCount, 1, shard) }); n > 1 {
		t.Fatalf("%v allocations per Record of a known series", n)
	}
}

func TestNewMeterValidates(t *testing.T) {
	if _, err := NewMeter(WithMeterProvider(nil)); !errors.Is(err, ErrInvalidOption) {
		t.Fatal(err)
	}
	if _, err := NewMeter(WithGauges("")); !errors.Is(err, ErrInvalidOption) {
		t.Fatal(err)
	}
}
