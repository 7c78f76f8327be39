package metrics_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/freshet/freshet/clock"
	"github.com/freshet/freshet/internal/engine/metrics"
)

// FuzzOperations feeds arbitrary bodies to every operation: the service must answer
// with a success or a client error, never panic or fail on its own.
func FuzzOperations(f *testing.F) {
	valid, _ := cbor.Marshal(map[string]any{"Namespace": "n", "MetricData": []any{map[string]any{"MetricName": "m", "Value": 1.5,
		"Dimensions": []any{map[string]any{"Name": "a", "Value": "b"}}, "Values": []any{1.0}, "Counts": []any{2.0}}}})
	stats, _ := cbor.Marshal(map[string]any{"Namespace": "n", "MetricData": []any{map[string]any{"MetricName": "m",
		"StatisticValues": map[string]any{"SampleCount": 1.0, "Sum": 2.0, "Minimum": 0.5, "Maximum": 1.5}, "Timestamp": cbor.Tag{Number: 1, Content: 1.9e9}}}})
	get, _ := cbor.Marshal(map[string]any{"StartTime": cbor.Tag{Number: 1, Content: 1.0}, "EndTime": cbor.Tag{Number: 1, Content: 2e9},
		"MetricDataQueries": []any{map[string]any{"Id": "q", "MetricStat": map[string]any{"Period": 60, "Stat": "Sum", "Metric": map[string]any{"Namespace": "n", "MetricName": "m"}}}}})
	for _, seed := range [][]byte{valid, stats, get, {0xa0}, {0xbf, 0xff}, {0x9f}, nil} {
		for op := uint8(0); op < 3; op++ {
			f.Add(op, seed)
		}
	}
	s, err := metrics.New(metrics.Config{MaxDatums: 1000}, clock.Real())
	if err != nil {
		f.Fatal(err)
	}
	ops := []string{"PutMetricData", "ListMetrics", "GetMetricData"}
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		name := ops[int(op)%len(ops)]
		r := httptest.NewRequest(http.MethodPost, "/service/GraniteServiceVersion20100801/operation/"+name, bytes.NewReader(body))
		w := httptest.NewRecorder()
		s.ServeOperation(w, r, name)
		if w.Code != 200 && (w.Code < 400 || w.Code >= 500) {
			t.Fatalf("%s: status %d", name, w.Code)
		}
		if w.Code != 200 && w.Header().Get("X-Amzn-Query-Error") == "" {
			t.Fatalf("%s: error without X-Amzn-Query-Error", name)
		}
	})
}
