// Package clock is the time source of Freshet's components: the consumer's lease
// expiry and pauses (consumer.WithClock), the lease protocol's coordinator, leader
// election, assigner, reporter and store (lease's With...Clock options), and the bundled
// engine's expiry, retention and throttling. It sits beside the data flow: nothing
// reads records through it.
//
// Every component defaults to Real, and every pause of a component is a Sleep, which
// waits on any Clock and ends early with its context. A test passes a *Manual and moves
// time forward itself, so lease expiry, retention and token-bucket refill happen exactly
// when the test says; users testing their own code against Freshet can do the same.
package clock

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock tells the time and creates timers.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has elapsed.
	After(d time.Duration) <-chan time.Time
	// Since returns the time elapsed since t.
	Since(t time.Time) time.Duration
}

// Real returns the wall clock, the default of every Freshet component.
func Real() Clock { return realClock{} }

// Sleep waits until c has advanced by d or ctx is done, whichever comes first. It
// returns nil after the whole wait and ctx's error otherwise; a d of zero or less
// returns ctx's error at once. A nil c is Real.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	if c == nil {
		c = Real()
	}
	select {
	case <-c.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
func (realClock) Since(t time.Time) time.Duration        { return time.Since(t) }

// Manual is a clock that moves only when Advance or Set is called. It is safe for
// concurrent use.
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewManual returns a manual clock reading start.
func NewManual(start time.Time) *Manual { return &Manual{now: start} }

// Now returns the clock's current reading.
func (m *Manual) Now() time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.now
}

// Since returns the manual time elapsed since t.
func (m *Manual) Since(t time.Time) time.Duration { return m.Now().Sub(t) }

// After returns a channel that fires once the clock has been advanced by at least d.
func (m *Manual) After(d time.Duration) <-chan time.Time {
	m.mu.Lock()
	defer m.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- m.now
		return ch
	}
	m.waiters = append(m.waiters, waiter{at: m.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock forward by d and fires every timer that became due.
func (m *Manual) Advance(d time.Duration) {
	m.mu.Lock()
	m.now = m.now.Add(d)
	m.fireLocked()
	m.mu.Unlock()
}

// Set moves the clock to t (which must not be before the current reading) and fires
// every timer that became due.
func (m *Manual) Set(t time.Time) {
	m.mu.Lock()
	if t.After(m.now) {
		m.now = t
	}
	m.fireLocked()
	m.mu.Unlock()
}

func (m *Manual) fireLocked() {
	sort.Slice(m.waiters, func(i, j int) bool { return m.waiters[i].at.Before(m.waiters[j].at) })
	n := 0
	for _, w := range m.waiters {
		if !w.at.After(m.now) {
			w.ch <- m.now
			continue
		}
		m.waiters[n] = w
		n++
	}
	m.waiters = m.waiters[:n]
}
