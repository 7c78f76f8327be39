//go:build !race

package aggregation

// raceEnabled reports a -race build.
const raceEnabled = false
