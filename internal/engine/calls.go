package engine

import "sync/atomic"

// callCounters counts the calls the engine served, by service name and operation, for
// every operation it serves; the maps are built once and only read after, so counting
// takes no lock.
type callCounters map[string]map[string]*atomic.Uint64

func newCallCounters() callCounters {
	c := callCounters{}
	for svc, ops := range Operations() {
		c[svc] = map[string]*atomic.Uint64{}
		for _, op := range ops {
			c[svc][op] = new(atomic.Uint64)
		}
	}
	return c
}

func (c callCounters) count(svc, op string) {
	if n := c[svc][op]; n != nil {
		n.Add(1)
	}
}

// Calls returns how many calls of each operation the engine has routed to its services
// since it started (faulted ones included), by "<Service>.<Operation>" as fault rules
// spell them, for operations called at least once. Benchmarks divide the difference of
// two readings by the time between them for calls per second.
func (e *Engine) Calls() map[string]uint64 {
	out := map[string]uint64{}
	for svc, ops := range e.calls {
		for op, n := range ops {
			if v := n.Load(); v > 0 {
				out[svc+"."+op] = v
			}
		}
	}
	return out
}
