package streams

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
)

func putRecordsBody(stream string, n, size int) []byte {
	data := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), size))
	var b bytes.Buffer
	fmt.Fprintf(&b, `{"StreamName":%q,"Records":[`, stream)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"Data":%q,"PartitionKey":"pk-%d"}`, data, i)
	}
	b.WriteString("]}")
	return b.Bytes()
}

type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(b []byte) (int, error) { return len(b), nil }
func (w *nopWriter) WriteHeader(int)             {}

// BenchmarkServePutRecords measures the service's own cost of a PutRecords call of
// 500 x 100 B records, without HTTP or SDK.
func BenchmarkServePutRecords(b *testing.B) {
	s, err := New(Config{MaintenanceInterval: -1}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateStream("bench", 8); err != nil {
		b.Fatal(err)
	}
	body := putRecordsBody("bench", 500, 100)
	w := &nopWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.SetBytes(500 * 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		s.ServeOperation(w, r, "PutRecords")
	}
	b.ReportMetric(float64(b.N)*500/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkServeGetRecords measures the service's own cost of a GetRecords call that
// returns 10,000 x 100 B records.
func BenchmarkServeGetRecords(b *testing.B) {
	s, err := New(Config{MaintenanceInterval: -1}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateStream("bench", 1); err != nil {
		b.Fatal(err)
	}
	body := putRecordsBody("bench", 500, 100)
	w := &nopWriter{h: make(http.Header)}
	for i := 0; i < 20; i++ {
		s.ServeOperation(w, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)), "PutRecords")
	}
	rec := httptest.NewRecorder()
	s.ServeOperation(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(`{"StreamName":"bench","ShardId":"shardId-000000000000","ShardIteratorType":"TRIM_HORIZON"}`))), "GetShardIterator")
	req := []byte(`{"ShardIterator":` + string(bytes.TrimSuffix(bytes.TrimPrefix(rec.Body.Bytes(), []byte(`{"ShardIterator":`)), []byte("}"))) + `}`)
	b.ReportAllocs()
	b.SetBytes(10000 * 100)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.ServeOperation(w, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(req)), "GetRecords")
	}
	b.ReportMetric(float64(b.N)*10000/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkServeGetRecordsIdle measures the service's own cost of a GetRecords call at the
// tip of an empty shard, the call an idle lease's poller makes, in a stream of 10,000
// shards.
func BenchmarkServeGetRecordsIdle(b *testing.B) {
	s, err := New(Config{MaintenanceInterval: -1, ShardLimit: 10000}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateStream("bench", 10000); err != nil {
		b.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.ServeOperation(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader([]byte(`{"StreamName":"bench","ShardId":"shardId-000000004321","ShardIteratorType":"LATEST"}`))), "GetShardIterator")
	if rec.Code != http.StatusOK {
		b.Fatalf("GetShardIterator: %d %s", rec.Code, rec.Body)
	}
	req := []byte(`{"ShardIterator":` + string(bytes.TrimSuffix(bytes.TrimPrefix(rec.Body.Bytes(), []byte(`{"ShardIterator":`)), []byte("}"))) + `}`)
	rec = httptest.NewRecorder()
	s.ServeOperation(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(req)), "GetRecords")
	if rec.Code != http.StatusOK || !bytes.Contains(rec.Body.Bytes(), []byte(`"Records":[]`)) {
		b.Fatalf("GetRecords: %d %s", rec.Code, rec.Body)
	}
	w := &nopWriter{h: make(http.Header)}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s.ServeOperation(w, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(req)), "GetRecords")
	}
}
