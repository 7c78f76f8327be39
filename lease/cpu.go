package lease

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/freshet/freshet/clock"
)

// cpuSource says where a CPUSampler reads CPU time.
type cpuSource int

// CPU sources, in the order NewCPUSampler prefers them.
const (
	// cpuCgroupV2 reads cpu.stat and cpu.max of the unified cgroup hierarchy.
	cpuCgroupV2 cpuSource = iota
	// cpuCgroupV1 reads cpuacct.usage and the CFS quota of the cpu controller.
	cpuCgroupV1
	// cpuProcStat reads the host's aggregate line of /proc/stat.
	cpuProcStat
)

func (s cpuSource) String() string {
	switch s {
	case cpuCgroupV2:
		return "cgroup-v2"
	case cpuCgroupV1:
		return "cgroup-v1"
	}
	return "proc-stat"
}

// ErrNoCPUSource reports that no CPU accounting files were found.
var ErrNoCPUSource = errors.New("lease: no cgroup or /proc/stat CPU accounting found")

// CPUSampler measures the CPU utilization of the worker's container (cgroup v2 or v1, as
// a share of its CPU quota or of all host CPUs when unlimited) or of the host
// (/proc/stat), as Java KCL's worker metrics do. It is safe for concurrent use.
type CPUSampler struct {
	fsys   fs.FS
	source cpuSource
	clock  clock.Clock

	mu       sync.Mutex
	havePrev bool
	prevBusy float64 // busy CPU-seconds (cgroups) or busy jiffies (proc)
	prevAll  float64 // total jiffies (proc)
	prevAt   time.Time
}

// NewCPUSampler returns a sampler reading the file system fsys (os.DirFS("/") when nil),
// timed by clk (clock.Real() when nil).
func NewCPUSampler(fsys fs.FS, clk clock.Clock) (*CPUSampler, error) {
	if fsys == nil {
		fsys = os.DirFS("/")
	}
	if clk == nil {
		clk = clock.Real()
	}
	s := &CPUSampler{fsys: fsys, clock: clk}
	switch {
	case exists(fsys, "sys/fs/cgroup/cpu.stat") && exists(fsys, "sys/fs/cgroup/cpu.max"):
		s.source = cpuCgroupV2
	case exists(fsys, "sys/fs/cgroup/cpu/cpuacct.usage") && exists(fsys, "sys/fs/cgroup/cpu/cpu.cfs_quota_us"):
		s.source = cpuCgroupV1
	case exists(fsys, "proc/stat"):
		s.source = cpuProcStat
	default:
		return nil, ErrNoCPUSource
	}
	return s, nil
}

func exists(fsys fs.FS, name string) bool {
	_, err := fs.Stat(fsys, name)
	return err == nil
}

// sample returns the CPU utilization in percent (0-100) since the previous call. The first
// call only takes a reference reading and returns ok == false.
func (s *CPUSampler) sample() (percent float64, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	var busy, all float64
	switch s.source {
	case cpuProcStat:
		busy, all, err = s.readProcStat()
	default:
		busy, err = s.readCgroupUsage()
	}
	if err != nil {
		return 0, false, err
	}
	defer func() { s.prevBusy, s.prevAll, s.prevAt, s.havePrev = busy, all, now, true }()
	if !s.havePrev {
		return 0, false, nil
	}
	if s.source == cpuProcStat {
		dAll := all - s.prevAll
		if dAll <= 0 {
			return 0, false, nil
		}
		return clampPercent(100 * (busy - s.prevBusy) / dAll), true, nil
	}
	wall := now.Sub(s.prevAt).Seconds()
	if wall <= 0 {
		return 0, false, nil
	}
	cores, err := s.cgroupCores()
	if err != nil {
		return 0, false, err
	}
	return clampPercent(100 * (busy - s.prevBusy) / (wall * cores)), true, nil
}

func clampPercent(p float64) float64 { return min(max(p, 0), 100) }

// readProcStat returns busy and total jiffies of the aggregate "cpu" line.
func (s *CPUSampler) readProcStat() (busy, total float64, err error) {
	b, err := fs.ReadFile(s.fsys, "proc/stat")
	if err != nil {
		return 0, 0, err
	}
	return parseProcStat(b)
}

func parseProcStat(b []byte) (busy, total float64, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[0] != "cpu" {
			continue
		}
		var idle float64
		// user nice system idle iowait irq softirq steal guest guest_nice; guest time is
		// already counted in user and nice.
		for i, x := range f[1:] {
			if i >= 8 {
				break
			}
			v, err := strconv.ParseFloat(x, 64)
			if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
				return 0, 0, fmt.Errorf("lease: /proc/stat: bad field %q", x)
			}
			total += v
			if i == 3 || i == 4 {
				idle += v
			}
		}
		return total - idle, total, nil
	}
	return 0, 0, errors.New("lease: /proc/stat has no aggregate cpu line")
}

// readCgroupUsage returns the cgroup's CPU time in seconds.
func (s *CPUSampler) readCgroupUsage() (float64, error) {
	if s.source == cpuCgroupV1 {
		v, err := readNumber(s.fsys, "sys/fs/cgroup/cpu/cpuacct.usage")
		return v / 1e9, err
	}
	b, err := fs.ReadFile(s.fsys, "sys/fs/cgroup/cpu.stat")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "usage_usec" {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil || v < 0 {
				return 0, fmt.Errorf("lease: cpu.stat: bad usage_usec %q", f[1])
			}
			return v / 1e6, nil
		}
	}
	return 0, errors.New("lease: cpu.stat has no usage_usec")
}

// cgroupCores returns the CPUs the cgroup may use: its quota, or every host CPU.
func (s *CPUSampler) cgroupCores() (float64, error) {
	if s.source == cpuCgroupV1 {
		quota, err := readNumber(s.fsys, "sys/fs/cgroup/cpu/cpu.cfs_quota_us")
		if err != nil {
			return 0, err
		}
		if quota > 0 {
			period, err := readNumber(s.fsys, "sys/fs/cgroup/cpu/cpu.cfs_period_us")
			if err != nil {
				return 0, err
			}
			if period > 0 {
				return quota / period, nil
			}
		}
		return s.hostCores()
	}
	b, err := fs.ReadFile(s.fsys, "sys/fs/cgroup/cpu.max")
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 2 && f[0] != "max" {
		quota, err1 := strconv.ParseFloat(f[0], 64)
		period, err2 := strconv.ParseFloat(f[1], 64)
		if err1 != nil || err2 != nil || quota <= 0 || period <= 0 {
			return 0, fmt.Errorf("lease: cpu.max: bad content %q", strings.TrimSpace(string(b)))
		}
		return quota / period, nil
	}
	return s.hostCores()
}

// hostCores counts the cpuN lines of /proc/stat.
func (s *CPUSampler) hostCores() (float64, error) {
	b, err := fs.ReadFile(s.fsys, "proc/stat")
	if err != nil {
		return 0, fmt.Errorf("lease: counting host CPUs: %w", err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "cpu") && len(line) > 3 && line[3] >= '0' && line[3] <= '9' {
			n++
		}
	}
	if n == 0 {
		return 0, errors.New("lease: /proc/stat lists no CPUs")
	}
	return float64(n), nil
}

func readNumber(fsys fs.FS, name string) (float64, error) {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return 0, err
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		return 0, fmt.Errorf("lease: %s: %w", name, err)
	}
	return v, nil
}
