package clock_test

import (
	"fmt"
	"time"

	"github.com/freshet/freshet/clock"
)

// A Manual clock fires its timers only when the test moves it past their deadline.
func ExampleManual() {
	m := clock.NewManual(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	timer := m.After(10 * time.Second)
	m.Advance(9 * time.Second)
	select {
	case <-timer:
		fmt.Println("fired early")
	default:
		fmt.Println("not yet after 9 s")
	}
	m.Advance(time.Second)
	fmt.Println("fired at", (<-timer).Format(time.TimeOnly))
	// Output:
	// not yet after 9 s
	// fired at 00:00:10
}
