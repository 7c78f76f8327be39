package lease

import (
	"math"
	"os"
	"testing"
	"testing/fstest"
	"time"

	"github.com/freshet/freshet/clock"
)

const procStat1 = "cpu  1000 0 1000 7000 1000 0 0 0 0 0\ncpu0 500 0 500 3500 500 0 0 0 0 0\ncpu1 500 0 500 3500 500 0 0 0 0 0\nintr 1\n"
const procStat2 = "cpu  1600 0 1400 7600 1400 0 0 0 0 0\ncpu0 800 0 700 3800 700 0 0 0 0 0\ncpu1 800 0 700 3800 700 0 0 0 0 0\nintr 1\n"

func TestCPUSamplerSources(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		before fstest.MapFS
		after  fstest.MapFS
		source cpuSource
		want   float64
	}{
		{
			// busy +1000 of total +2000 jiffies.
			name:   "proc stat",
			before: fstest.MapFS{"proc/stat": {Data: []byte(procStat1)}},
			after:  fstest.MapFS{"proc/stat": {Data: []byte(procStat2)}},
			source: cpuProcStat, want: 50,
		},
		{
			// 1.5 CPU-seconds in 2 s with a quota of 1 CPU: 75%.
			name: "cgroup v2 with quota",
			before: fstest.MapFS{"sys/fs/cgroup/cpu.stat": {Data: []byte("usage_usec 1000000\nuser_usec 1\n")},
				"sys/fs/cgroup/cpu.max": {Data: []byte("100000 100000\n")}},
			after: fstest.MapFS{"sys/fs/cgroup/cpu.stat": {Data: []byte("usage_usec 2500000\nuser_usec 1\n")},
				"sys/fs/cgroup/cpu.max": {Data: []byte("100000 100000\n")}},
			source: cpuCgroupV2, want: 75,
		},
		{
			// Unlimited: 1.5 CPU-seconds in 2 s on 2 host CPUs: 37.5%.
			name: "cgroup v2 unlimited",
			before: fstest.MapFS{"sys/fs/cgroup/cpu.stat": {Data: []byte("usage_usec 1000000\n")},
				"sys/fs/cgroup/cpu.max": {Data: []byte("max 100000\n")}, "proc/stat": {Data: []byte(procStat1)}},
			after: fstest.MapFS{"sys/fs/cgroup/cpu.stat": {Data: []byte("usage_usec 2500000\n")},
				"sys/fs/cgroup/cpu.max": {Data: []byte("max 100000\n")}, "proc/stat": {Data: []byte(procStat1)}},
			source: cpuCgroupV2, want: 37.5,
		},
		{
			// 1 CPU-second in 2 s with a quota of 0.5 CPU: 100%.
			name: "cgroup v1 with quota",
			before: fstest.MapFS{"sys/fs/cgroup/cpu/cpuacct.usage": {Data: []byte("5000000000\n")},
				"sys/fs/cgroup/cpu/cpu.cfs_quota_us": {Data: []byte("50000\n")}, "sys/fs/cgroup/cpu/cpu.cfs_period_us": {Data: []byte("100000\n")}},
			after: fstest.MapFS{"sys/fs/cgroup/cpu/cpuacct.usage": {Data: []byte("6000000000\n")},
				"sys/fs/cgroup/cpu/cpu.cfs_quota_us": {Data: []byte("50000\n")}, "sys/fs/cgroup/cpu/cpu.cfs_period_us": {Data: []byte("100000\n")}},
			source: cpuCgroupV1, want: 100,
		},
		{
			// Unlimited (-1): 1 CPU-second in 2 s on 2 CPUs: 25%.
			name: "cgroup v1 unlimited",
			before: fstest.MapFS{"sys/fs/cgroup/cpu/cpuacct.usage": {Data: []byte("5000000000\n")},
				"sys/fs/cgroup/cpu/cpu.cfs_quota_us": {Data: []byte("-1\n")}, "proc/stat": {Data: []byte(procStat1)}},
			after: fstest.MapFS{"sys/fs/cgroup/cpu/cpuacct.usage": {Data: []byte("6000000000\n")},
				"sys/fs/cgroup/cpu/cpu.cfs_quota_us": {Data: []byte("-1\n")}, "proc/stat": {Data: []byte(procStat1)}},
			source: cpuCgroupV1, want: 25,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := clock.NewManual(start)
			fsys := fstest.MapFS{}
			for k, v := range tt.before {
				fsys[k] = v
			}
			s, err := NewCPUSampler(fsys, clk)
			if err != nil {
				t.Fatal(err)
			}
			if s.source != tt.source {
				t.Fatalf("source %v, want %v", s.source, tt.source)
			}
			if _, ok, err := s.sample(); ok || err != nil {
				t.Fatalf("first sample: ok=%v err=%v, want a reference reading", ok, err)
			}
			for k, v := range tt.after {
				fsys[k] = v
			}
			clk.Advance(2 * time.Second)
			got, ok, err := s.sample()
			if err != nil || !ok {
				t.Fatalf("Sample: ok=%v err=%v", ok, err)
			}
			if math.Abs(got-tt.want) > 1e-9 {
				t.Fatalf("utilization %.3f%%, want %.3f%%", got, tt.want)
			}
		})
	}
}

func TestCPUSamplerErrors(t *testing.T) {
	if _, err := NewCPUSampler(fstest.MapFS{}, nil); err != ErrNoCPUSource {
		t.Fatalf("empty fs: %v", err)
	}
	s, err := NewCPUSampler(fstest.MapFS{"proc/stat": {Data: []byte("cpu  x y z w v\n")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.sample(); err == nil {
		t.Fatal("garbage /proc/stat accepted")
	}
}

// TestCPUSamplerThisMachine reads the real files of the test machine when it is Linux.
func TestCPUSamplerThisMachine(t *testing.T) {
	s, err := NewCPUSampler(nil, nil)
	if _, statErr := os.Stat("/proc/stat"); statErr != nil {
		if err != ErrNoCPUSource {
			t.Fatalf("no /proc/stat, NewCPUSampler = %v", err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.sample(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	p, _, err := s.sample()
	if err != nil || p < 0 || p > 100 {
		t.Fatalf("Sample = %v, %v", p, err)
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add([]byte(procStat1))
	f.Add([]byte("cpu 1 2 3\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		busy, total, err := parseProcStat(b)
		if err == nil && (busy < 0 || busy > total) {
			t.Fatalf("busy %v total %v", busy, total)
		}
	})
}
