package metrics_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"

	"context"
	"errors"
	"fmt"
	"github.com/fxamacker/cbor/v2"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/smithy-go"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
	"github.com/freshet/freshet/internal/engine/fault"
	"github.com/freshet/freshet/internal/engine/metrics"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

var t0 = time.Date(2030, 1, 2, 3, 4, 0, 0, time.UTC)

func start(t testing.TB) (*engine.Engine, *cloudwatch.Client) {
	e := enginetest.Start(t, engine.Config{Clock: clock.NewManual(t0)})
	return e, enginetest.CloudWatch(e)
}

func dim(n, v string) types.Dimension {
	return types.Dimension{Name: aws.String(n), Value: aws.String(v)}
}

func TestPutMetricDataKeepsDatums(t *testing.T) {
	e, c := start(t)
	ts := t0.Add(-time.Minute).Add(250 * time.Millisecond)
	_, err := c.PutMetricData(ctxT(t), &cloudwatch.PutMetricDataInput{
		Namespace: aws.String("Freshet/Producer"),
		MetricData: []types.MetricDatum{
			{MetricName: aws.String("UserRecordsPut"), Dimensions: []types.Dimension{dim("StreamName", "s1"), dim("ShardId", "shardId-000000000001")},
				Value: aws.Float64(42), Unit: types.StandardUnitCount, Timestamp: aws.Time(ts)},
			{MetricName: aws.String("BufferingTime"), StatisticValues: &types.StatisticSet{SampleCount: aws.Float64(4), Sum: aws.Float64(100), Minimum: aws.Float64(5), Maximum: aws.Float64(60)},
				Unit: types.StandardUnitMilliseconds, StorageResolution: aws.Int32(1)},
			{MetricName: aws.String("BufferingTime"), Values: []float64{1, 2.5}, Counts: []float64{3, 1}, Unit: types.StandardUnitMilliseconds},
			{MetricName: aws.String("UserRecordsPut"), Values: []float64{7}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	got := e.Metrics.Datums("Freshet/Producer", "UserRecordsPut")
	if len(got) != 2 {
		t.Fatalf("%d UserRecordsPut datums", len(got))
	}
	d := got[0]
	if d.Value == nil || *d.Value != 42 || d.Unit != "Count" || !d.Timestamp.Equal(ts) || len(d.Dimensions) != 2 || d.Dimensions[1] != (metrics.Dimension{Name: "ShardId", Value: "shardId-000000000001"}) {
		t.Fatalf("datum %+v", d)
	}
	if got[1].Unit != "None" || !got[1].Timestamp.Equal(t0) || got[1].Counts[0] != 1 {
		t.Fatalf("defaults %+v", got[1])
	}
	st := e.Metrics.Stats("Freshet/Producer", "BufferingTime")
	want := metrics.StatisticSet{SampleCount: 8, Sum: 100 + 3 + 2.5, Minimum: 1, Maximum: 60}
	if st != want {
		t.Fatalf("stats %+v want %+v", st, want)
	}
	if n := len(e.Metrics.Snapshot()); n != 4 {
		t.Fatalf("snapshot has %d", n)
	}
	e.Metrics.Reset()
	if n := len(e.Metrics.Snapshot()); n != 0 {
		t.Fatalf("after reset %d", n)
	}
}

func TestPutMetricDataLimits(t *testing.T) {
	e, c := start(t)
	datum := func(f func(*types.MetricDatum)) []types.MetricDatum {
		d := types.MetricDatum{MetricName: aws.String("m"), Value: aws.Float64(1)}
		f(&d)
		return []types.MetricDatum{d}
	}
	many := make([]types.MetricDatum, 1001)
	for i := range many {
		many[i] = types.MetricDatum{MetricName: aws.String("m"), Value: aws.Float64(1)}
	}
	var dims []types.Dimension
	for i := 0; i < 31; i++ {
		dims = append(dims, dim(fmt.Sprint("d", i), "v"))
	}
	var invalidValue *types.InvalidParameterValueException
	var combo *types.InvalidParameterCombinationException
	cases := []struct {
		name   string
		ns     *string
		data   []types.MetricDatum
		target any
		code   string
	}{
		{"1001 datums", aws.String("n"), many, &invalidValue, "InvalidParameterValue"},
		{"AWS namespace", aws.String("AWS/Kinesis"), many[:1], &invalidValue, "InvalidParameterValue"},
		{"31 dimensions", aws.String("n"), datum(func(d *types.MetricDatum) { d.Dimensions = dims }), &invalidValue, "InvalidParameterValue"},
		{"value and statistics", aws.String("n"), datum(func(d *types.MetricDatum) {
			d.StatisticValues = &types.StatisticSet{SampleCount: aws.Float64(1), Sum: aws.Float64(1), Minimum: aws.Float64(1), Maximum: aws.Float64(1)}
		}), &combo, "InvalidParameterCombination"},
		{"values counts size", aws.String("n"), datum(func(d *types.MetricDatum) { d.Value = nil; d.Values = []float64{1, 2}; d.Counts = []float64{1} }), &invalidValue, "InvalidParameterValue"},
		{"min above max", aws.String("n"), datum(func(d *types.MetricDatum) {
			d.Value = nil
			d.StatisticValues = &types.StatisticSet{SampleCount: aws.Float64(1), Sum: aws.Float64(1), Minimum: aws.Float64(2), Maximum: aws.Float64(1)}
		}), &invalidValue, "InvalidParameterValue"},
		{"NaN", aws.String("n"), datum(func(d *types.MetricDatum) { d.Value = aws.Float64(math.NaN()) }), &invalidValue, "InvalidParameterValue"},
		{"too old", aws.String("n"), datum(func(d *types.MetricDatum) { d.Timestamp = aws.Time(t0.Add(-15 * 24 * time.Hour)) }), &invalidValue, "InvalidParameterValue"},
		{"future", aws.String("n"), datum(func(d *types.MetricDatum) { d.Timestamp = aws.Time(t0.Add(3 * time.Hour)) }), &invalidValue, "InvalidParameterValue"},
		{"bad resolution", aws.String("n"), datum(func(d *types.MetricDatum) { d.StorageResolution = aws.Int32(5) }), &invalidValue, "InvalidParameterValue"},
		{"bad unit", aws.String("n"), datum(func(d *types.MetricDatum) { d.Unit = "Furlongs" }), &invalidValue, "InvalidParameterValue"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutMetricData(ctxT(t), &cloudwatch.PutMetricDataInput{Namespace: tc.ns, MetricData: tc.data})
			if !errors.As(err, tc.target) {
				t.Fatalf("want %T, got %v", tc.target, err)
			}
			var ae smithy.APIError
			if !errors.As(err, &ae) || ae.ErrorCode() != tc.code || ae.ErrorFault() != smithy.FaultClient {
				t.Fatalf("code %v", err)
			}
		})
	}
	if n := len(e.Metrics.Snapshot()); n != 0 {
		t.Fatalf("rejected calls stored %d datums", n)
	}
	if _, err := c.PutMetricData(ctxT(t), &cloudwatch.PutMetricDataInput{Namespace: aws.String("n"), MetricData: many[:1000]}); err != nil {
		t.Fatalf("1000 datums: %v", err)
	}
}

func TestInjectedFaultsParse(t *testing.T) {
	e, c := start(t)
	e.Faults.Set("CloudWatch.PutMetricData", fault.Rule{ErrorRate: 1, ErrorCode: "InternalServiceFault", StatusCode: 500})
	cc := cloudwatch.NewFromConfig(e.AWSConfig(), func(o *cloudwatch.Options) { o.RetryMaxAttempts = 1 })
	_, err := cc.PutMetricData(ctxT(t), &cloudwatch.PutMetricDataInput{Namespace: aws.String("n"), MetricData: []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}}})
	var isf *types.InternalServiceFault
	if !errors.As(err, &isf) {
		t.Fatalf("want InternalServiceFault, got %v", err)
	}
	e.Faults.Set("CloudWatch.PutMetricData", fault.Rule{ErrorRate: 1, ErrorCode: "Throttling", ErrorMessage: "Rate exceeded"})
	_, err = cc.PutMetricData(ctxT(t), &cloudwatch.PutMetricDataInput{Namespace: aws.String("n"), MetricData: []types.MetricDatum{{MetricName: aws.String("m"), Value: aws.Float64(1)}}})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "Throttling" || ae.ErrorMessage() != "Rate exceeded" {
		t.Fatalf("throttling: %v", err)
	}
	_ = c
}

func TestListAndGetMetricData(t *testing.T) {
	_, c := start(t)
	put := func(name string, v float64, ts time.Time, dims ...types.Dimension) {
		t.Helper()
		_, err := c.PutMetricData(ctxT(t), &cloudwatch.PutMetricDataInput{Namespace: aws.String("Freshet/Consumer"),
			MetricData: []types.MetricDatum{{MetricName: aws.String(name), Value: aws.Float64(v), Timestamp: aws.Time(ts), Dimensions: dims}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	base := t0.Add(-10 * time.Minute)
	for i := 0; i < 6; i++ {
		put("MillisBehindLatest", float64(i*10), base.Add(time.Duration(i)*30*time.Second), dim("ShardId", "s1"))
	}
	put("MillisBehindLatest", 999, base, dim("ShardId", "s2"))
	put("RecordsProcessed", 5, base)
	lm, err := c.ListMetrics(ctxT(t), &cloudwatch.ListMetricsInput{Namespace: aws.String("Freshet/Consumer"), MetricName: aws.String("MillisBehindLatest")})
	if err != nil || len(lm.Metrics) != 2 {
		t.Fatalf("ListMetrics: %v %d", err, len(lm.Metrics))
	}
	lm, err = c.ListMetrics(ctxT(t), &cloudwatch.ListMetricsInput{Dimensions: []types.DimensionFilter{{Name: aws.String("ShardId"), Value: aws.String("s2")}}})
	if err != nil || len(lm.Metrics) != 1 || *lm.Metrics[0].Dimensions[0].Value != "s2" {
		t.Fatalf("ListMetrics by dimension: %v %+v", err, lm.Metrics)
	}
	out, err := c.GetMetricData(ctxT(t), &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(base), EndTime: aws.Time(base.Add(3 * time.Minute)), ScanBy: types.ScanByTimestampAscending,
		MetricDataQueries: []types.MetricDataQuery{
			{Id: aws.String("max"), MetricStat: &types.MetricStat{Period: aws.Int32(60), Stat: aws.String("Maximum"),
				Metric: &types.Metric{Namespace: aws.String("Freshet/Consumer"), MetricName: aws.String("MillisBehindLatest"), Dimensions: []types.Dimension{dim("ShardId", "s1")}}}},
			{Id: aws.String("avg"), MetricStat: &types.MetricStat{Period: aws.Int32(120), Stat: aws.String("Average"),
				Metric: &types.Metric{Namespace: aws.String("Freshet/Consumer"), MetricName: aws.String("MillisBehindLatest"), Dimensions: []types.Dimension{dim("ShardId", "s1")}}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.MetricDataResults) != 2 {
		t.Fatalf("%d results", len(out.MetricDataResults))
	}
	mx := out.MetricDataResults[0]
	if fmt.Sprint(mx.Values) != "[10 30 50]" || len(mx.Timestamps) != 3 || !mx.Timestamps[1].Equal(base.Add(time.Minute)) || mx.StatusCode != types.StatusCodeComplete {
		t.Fatalf("max %v %v", mx.Values, mx.Timestamps)
	}
	if avg := out.MetricDataResults[1]; fmt.Sprint(avg.Values) != "[15 45]" {
		t.Fatalf("avg %v", avg.Values)
	}
}

func TestMaxDatumsDropsOldest(t *testing.T) {
	e := enginetest.Start(t, engine.Config{Clock: clock.NewManual(t0), Metrics: metrics.Config{MaxDatums: 5}})
	c := enginetest.CloudWatch(e)
	for i := 0; i < 3; i++ {
		var data []types.MetricDatum
		for j := 0; j < 3; j++ {
			data = append(data, types.MetricDatum{MetricName: aws.String("m"), Value: aws.Float64(float64(i*3 + j))})
		}
		if _, err := c.PutMetricData(ctxT(t), &cloudwatch.PutMetricDataInput{Namespace: aws.String("n"), MetricData: data}); err != nil {
			t.Fatal(err)
		}
	}
	var vals []string
	for _, d := range e.Metrics.Datums("n", "m") {
		vals = append(vals, fmt.Sprint(*d.Value))
	}
	if strings.Join(vals, ",") != "4,5,6,7,8" {
		t.Fatalf("kept %v", vals)
	}
}

func TestConfigValidation(t *testing.T) {
	if _, err := metrics.New(metrics.Config{MaxDatums: -1}, nil); !errors.Is(err, metrics.ErrInvalidOption) {
		t.Fatalf("negative MaxDatums: %v", err)
	}
}

// TestServerSideValidation sends CBOR the SDK's own validation would refuse to send.
func TestServerSideValidation(t *testing.T) {
	e, _ := start(t)
	cases := []struct {
		name  string
		body  any
		query string
	}{
		{"no metric name", map[string]any{"Namespace": "n", "MetricData": []any{map[string]any{"Value": 1.0}}}, "MissingParameter;Sender"},
		{"no value", map[string]any{"Namespace": "n", "MetricData": []any{map[string]any{"MetricName": "m"}}}, "MissingParameter;Sender"},
		{"incomplete statistics", map[string]any{"Namespace": "n", "MetricData": []any{map[string]any{"MetricName": "m", "StatisticValues": map[string]any{"Sum": 1.0}}}}, "MissingParameter;Sender"},
		{"no data", map[string]any{"Namespace": "n"}, "MissingParameter;Sender"},
		{"no namespace", map[string]any{"MetricData": []any{map[string]any{"MetricName": "m", "Value": 1.0}}}, "MissingParameter;Sender"},
		{"wrong types", map[string]any{"Namespace": 7, "MetricData": "x"}, "SerializationException;Sender"},
		{"not a map", []any{1, 2}, "SerializationException;Sender"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body, err := cbor.Marshal(tc.body)
			if err != nil {
				t.Fatal(err)
			}
			resp, out := postCBOR(t, e.URL()+"/service/GraniteServiceVersion20100801/operation/PutMetricData", body, false)
			if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-Query-Error") != tc.query {
				t.Fatalf("status %d query error %q body %x", resp.StatusCode, resp.Header.Get("X-Amzn-Query-Error"), out)
			}
			var m map[string]any
			if err := cbor.Unmarshal(out, &m); err != nil || m["__type"] == nil || m["message"] == "" {
				t.Fatalf("error body %v: %v", m, err)
			}
		})
	}
	body, _ := cbor.Marshal(map[string]any{"Namespace": "n", "MetricData": []any{map[string]any{"MetricName": "m", "Value": 2.0}}})
	if resp, out := postCBOR(t, e.URL()+"/service/GraniteServiceVersion20100801/operation/PutMetricData", body, true); resp.StatusCode != 200 {
		t.Fatalf("gzip body: %d %x", resp.StatusCode, out)
	}
	if got := e.Metrics.Stats("n", "m"); got.Sum != 2 {
		t.Fatalf("stored %+v", got)
	}
}

func postCBOR(t *testing.T, url string, body []byte, gz bool) (*http.Response, []byte) {
	t.Helper()
	enc := ""
	if gz {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body, enc = buf.Bytes(), "gzip"
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/cbor")
	req.Header.Set("Smithy-Protocol", "rpc-v2-cbor")
	if enc != "" {
		req.Header.Set("Content-Encoding", enc)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp, out
}
