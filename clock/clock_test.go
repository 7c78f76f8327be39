package clock

import (
	"context"
	"errors"
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

func TestSleepWaitsForTheClock(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	m := NewManual(start)
	done := make(chan error, 1)
	go func() { done <- Sleep(context.Background(), m, 5*time.Second) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Sleep = %v, want nil", err)
			}
			if d := m.Since(start); d < 5*time.Second {
				t.Fatalf("Sleep returned after %v of clock time, want at least 5s", d)
			}
			return
		case <-time.After(10 * time.Millisecond):
			m.Advance(time.Second)
		}
	}
}

func TestSleepEndsWithTheContext(t *testing.T) {
	m := NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Sleep(ctx, m, time.Hour) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep = %v, want context.Canceled", err)
	}
	if err := Sleep(ctx, nil, 0); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep(0) on an ended context = %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), nil, -time.Second); err != nil {
		t.Fatalf("Sleep(-1s) = %v, want nil", err)
	}
	if err := Sleep(context.Background(), nil, time.Millisecond); err != nil {
		t.Fatalf("Sleep(1ms) on the real clock = %v, want nil", err)
	}
}
