package aggregation

import (
	"cmp"
	"crypto/md5"
	"runtime"
	"slices"
	"sync"

	"github.com/klauspost/cpuid/v2"
	md5simd "github.com/minio/md5-simd"
)

const (
	// md5Lanes is how many MD5s one md5-simd server computes together:
	// 16 with AVX-512 on one core, 8 + 8 with AVX2.
	md5Lanes = 16
	// md5LaneChunk is md5-simd's block size: larger writes are split.
	md5LaneChunk = 32 << 10
	// md5LaneMinBody is the shortest aggregate body worth a lane: below it
	// the per-hash round trips to the md5-simd server cost more than
	// crypto/md5 (measured: 16 lanes of 1 KiB are slower, of 4 KiB faster).
	md5LaneMinBody = 4 << 10
	// md5LaneMinJobs is the fewest long bodies worth a round of lanes:
	// with 4 lanes md5-simd only matches crypto/md5, with 8 it is 2.4x.
	md5LaneMinJobs = 6
	// maxMD5Engines bounds the process-wide md5-simd servers.
	maxMD5Engines = 8
)

// md5LanesSupported reports whether md5-simd has SIMD code for this CPU
// (AVX2 or AVX-512 on amd64). Without it its servers fall back to
// crypto/md5 with extra overhead, so AppendBatch uses crypto/md5 directly.
var md5LanesSupported = runtime.GOARCH == "amd64" && cpuid.CPU.Supports(cpuid.AVX2)

// md5Job is one aggregate body to hash for AppendBatch.
type md5Job struct {
	body []byte
	sum  [md5.Size]byte
	item int32 // index of the batch item it belongs to
}

// sumMD5s sets the sum of every job. With lanes, bodies long enough share
// md5-simd lanes when there are enough of them and an engine is free; the
// rest use crypto/md5. order is scratch space, returned for reuse.
func sumMD5s(jobs []md5Job, order []int32, lanes bool) []int32 {
	order = order[:0]
	for k := range jobs {
		if lanes && len(jobs[k].body) >= md5LaneMinBody {
			order = append(order, int32(k))
		} else {
			jobs[k].sum = md5.Sum(jobs[k].body)
		}
	}
	rest := order
	if len(rest) >= md5LaneMinJobs {
		if e := md5Engines.get(); e != nil {
			// Longest first, so that each round of lanes holds bodies of
			// similar length: a round costs as much as its longest lane.
			slices.SortFunc(rest, func(a, b int32) int {
				return cmp.Compare(len(jobs[b].body), len(jobs[a].body))
			})
			for len(rest) >= md5LaneMinJobs {
				n := min(len(rest), md5Lanes)
				e.sum(jobs, rest[:n])
				rest = rest[n:]
			}
			md5Engines.put(e)
		}
	}
	for _, k := range rest {
		jobs[k].sum = md5.Sum(jobs[k].body)
	}
	return order[:0]
}

// md5Engine is one md5-simd server with a hasher per lane. It serves one
// AppendBatch at a time.
type md5Engine struct {
	srv   md5simd.Server
	lanes [md5Lanes]md5simd.Hasher
	out   [md5.Size]byte
}

func newMD5Engine() *md5Engine {
	e := &md5Engine{srv: md5simd.NewServer()}
	for i := range e.lanes {
		e.lanes[i] = e.srv.NewHash()
	}
	return e
}

// sum hashes the bodies of jobs[k] for k in group (at most md5Lanes), all
// in flight together. Writes go round-robin in md5-simd's block size so that
// long bodies keep every lane busy in every round.
func (e *md5Engine) sum(jobs []md5Job, group []int32) {
	var failed [md5Lanes]bool
	for i := range group {
		e.lanes[i].Reset()
	}
	for off, more := 0, true; more; off += md5LaneChunk {
		more = false
		for i, k := range group {
			b := jobs[k].body
			if off >= len(b) || failed[i] {
				continue
			}
			// A Hasher fails only once closed, which these never are;
			// crypto/md5 takes over below if one ever does.
			if _, err := e.lanes[i].Write(b[off:min(off+md5LaneChunk, len(b))]); err != nil {
				failed[i] = true
			}
			more = true
		}
	}
	for i, k := range group {
		if failed[i] {
			jobs[k].sum = md5.Sum(jobs[k].body)
			continue
		}
		copy(jobs[k].sum[:], e.lanes[i].Sum(e.out[:0]))
	}
}

// md5Engines holds the process-wide md5-simd engines. They are created on
// first use, at most min(GOMAXPROCS, maxMD5Engines) of them, and live as
// long as the process: each is one parked goroutine and about 1.5 MiB of
// md5-simd buffers. A batch that finds none free uses crypto/md5.
var md5Engines md5EnginePool

type md5EnginePool struct {
	mu   sync.Mutex
	free []*md5Engine
	made int
}

func (p *md5EnginePool) get() *md5Engine {
	p.mu.Lock()
	if n := len(p.free); n > 0 {
		e := p.free[n-1]
		p.free = p.free[:n-1]
		p.mu.Unlock()
		return e
	}
	if p.made >= min(runtime.GOMAXPROCS(0), maxMD5Engines) {
		p.mu.Unlock()
		return nil
	}
	p.made++
	p.mu.Unlock()
	return newMD5Engine()
}

func (p *md5EnginePool) put(e *md5Engine) {
	p.mu.Lock()
	p.free = append(p.free, e)
	p.mu.Unlock()
}
