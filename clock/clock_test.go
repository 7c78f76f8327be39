package clock

import (
	"testing"
	"time"
)

func TestManualAfterFiresOnlyWhenDue(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewManual(start)
	ch := m.After(10 * time.Second)
	m.Advance(9 * time.Second)
	select {
	case <-ch:
		t.Fatal("timer fired before it was due")
	default:
	}
	m.Advance(time.Second)
	select {
	case got := <-ch:
		if !got.Equal(start.Add(10 * time.Second)) {
			t.Fatalf("fired at %v, want %v", got, start.Add(10*time.Second))
		}
	default:
		t.Fatal("timer did not fire when due")
	}
	if d := m.Since(start); d != 10*time.Second {
		t.Fatalf("Since = %v, want 10s", d)
	}
}

func TestManualSetNeverMovesBackwards(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewManual(start)
	m.Set(start.Add(-time.Hour))
	if !m.Now().Equal(start) {
		t.Fatalf("Set moved the clock backwards to %v", m.Now())
	}
	ch := m.After(0)
	select {
	case <-ch:
	default:
		t.Fatal("After(0) must fire immediately")
	}
}
