package engine_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/freshet/freshet/internal/engine"
	"github.com/freshet/freshet/internal/engine/enginetest"
)

// BenchmarkPutRecordsJournal measures PutRecords calls of 500 x 100 B from 8 concurrent
// clients, in memory and with the journal (Config.DataDir: applied one at a time,
// fsynced before the answer, fsyncs shared).
func BenchmarkPutRecordsJournal(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"StreamName":"s","Records":[`)
	data := base64.StdEncoding.EncodeToString(make([]byte, 100))
	for i := range 500 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"Data":"%s","PartitionKey":"k%d"}`, data, i)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	for _, mode := range []string{"memory", "journal"} {
		b.Run(mode, func(b *testing.B) {
			cfg := engine.Config{}
			if mode == "journal" {
				cfg.DataDir = b.TempDir()
			}
			e := enginetest.Start(b, cfg)
			if err := e.Streams.CreateStream("s", 8); err != nil {
				b.Fatal(err)
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.ReportAllocs()
			b.SetBytes(500 * 100)
			b.SetParallelism(4) // 8 clients on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, _ := http.NewRequest(http.MethodPost, e.URL(), bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/x-amz-json-1.1")
					req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecords")
					resp, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)*500/b.Elapsed().Seconds(), "records/s")
		})
	}
}
