package main

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// errCurve marks a launch curve that cannot be used.
var errCurve = errors.New("quickstart: invalid launch curve")

// curvePoint is one corner of the piecewise-linear launch curve: at the fraction At of
// the run (0 to 1) the producer aims for Rate posts per second. A non-empty Label names
// the phase that starts there.
type curvePoint struct {
	At    float64
	Rate  float64
	Label string
}

// curve is the launch traffic of seed 001 scaled to a run: a baseline, a celebrity
// repost that ramps up, a viral peak and the return to baseline. Rates between points
// are interpolated linearly, so the number of posts due by a time is the curve's
// integral, which the producer loop uses for pacing.
type curve struct {
	points   []curvePoint
	duration time.Duration
}

// defaultCurvePoints is seed 001's launch scaled to one run: ~100 posts/s after the
// announcement, a celebrity repost that ramps to a tenth of the peak, the viral moment at
// the peak, and the hype bubbling back down to baseline.
func defaultCurvePoints(baseline, peak float64) []curvePoint {
	return []curvePoint{
		{At: 0, Rate: baseline, Label: "launch"},
		{At: 0.12, Rate: baseline},
		{At: 0.18, Rate: peak / 10, Label: "celebrity-repost"},
		{At: 0.35, Rate: peak / 5},
		{At: 0.40, Rate: peak, Label: "viral-peak"},
		{At: 0.62, Rate: peak},
		{At: 0.72, Rate: baseline, Label: "back-to-baseline"},
		{At: 1, Rate: baseline},
	}
}

// newCurve validates points (sorted by At, starting at 0 and ending at 1, finite
// non-negative rates) and binds them to a run of the given duration.
func newCurve(points []curvePoint, duration time.Duration) (*curve, error) {
	if duration <= 0 {
		return nil, fmt.Errorf("%w: duration %v must be positive", errCurve, duration)
	}
	if len(points) < 2 {
		return nil, fmt.Errorf("%w: need at least 2 points, have %d", errCurve, len(points))
	}
	if points[0].At != 0 || points[len(points)-1].At != 1 {
		return nil, fmt.Errorf("%w: points must start at 0 and end at 1", errCurve)
	}
	for i, p := range points {
		if math.IsNaN(p.Rate) || math.IsInf(p.Rate, 0) || p.Rate < 0 {
			return nil, fmt.Errorf("%w: point %d: rate %v must be finite and >= 0", errCurve, i, p.Rate)
		}
		if math.IsNaN(p.At) || p.At < 0 || p.At > 1 {
			return nil, fmt.Errorf("%w: point %d: position %v must be within [0, 1]", errCurve, i, p.At)
		}
		if i > 0 && p.At <= points[i-1].At {
			return nil, fmt.Errorf("%w: point %d: positions must increase", errCurve, i)
		}
	}
	if points[0].Label == "" {
		points = append([]curvePoint(nil), points...)
		points[0].Label = "launch"
	}
	return &curve{points: points, duration: duration}, nil
}

// parseCurve reads a curve spec: comma-separated "fraction:rate[:label]" points, for
// example "0:100:launch,0.2:5000:repost,0.5:30000:viral,0.8:100,1:100".
func parseCurve(spec string) ([]curvePoint, error) {
	spec = strings.TrimSpace(spec)
	if spec == "" {
		return nil, fmt.Errorf("%w: empty spec", errCurve)
	}
	parts := strings.Split(spec, ",")
	points := make([]curvePoint, 0, len(parts))
	for i, part := range parts {
		fields := strings.SplitN(strings.TrimSpace(part), ":", 3)
		if len(fields) < 2 {
			return nil, fmt.Errorf("%w: point %d %q: want fraction:rate[:label]", errCurve, i, part)
		}
		at, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("%w: point %d: fraction: %v", errCurve, i, err)
		}
		rate, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%w: point %d: rate: %v", errCurve, i, err)
		}
		p := curvePoint{At: at, Rate: rate}
		if len(fields) == 3 {
			p.Label = strings.TrimSpace(fields[2])
		}
		points = append(points, p)
	}
	return points, nil
}

// frac converts elapsed time to a position on the curve, clamped to [0, 1].
func (c *curve) frac(elapsed time.Duration) float64 {
	f := float64(elapsed) / float64(c.duration)
	return math.Min(1, math.Max(0, f))
}

// segment returns the index i such that points[i].At <= f <= points[i+1].At.
func (c *curve) segment(f float64) int {
	for i := 0; i < len(c.points)-2; i++ {
		if f < c.points[i+1].At {
			return i
		}
	}
	return len(c.points) - 2
}

// Rate returns the target posts per second at elapsed.
func (c *curve) Rate(elapsed time.Duration) float64 {
	f := c.frac(elapsed)
	i := c.segment(f)
	a, b := c.points[i], c.points[i+1]
	t := (f - a.At) / (b.At - a.At)
	return a.Rate + t*(b.Rate-a.Rate)
}

// Due returns how many posts the curve asks for from the start up to elapsed (its
// integral over time), so a producer that has sent Due(elapsed) posts is on schedule.
func (c *curve) Due(elapsed time.Duration) float64 {
	f := c.frac(elapsed)
	secs := c.duration.Seconds()
	total := 0.0
	for i := 0; i < len(c.points)-1; i++ {
		a, b := c.points[i], c.points[i+1]
		if f <= a.At {
			break
		}
		end := math.Min(f, b.At)
		rateEnd := a.Rate + (end-a.At)/(b.At-a.At)*(b.Rate-a.Rate)
		total += (a.Rate + rateEnd) / 2 * (end - a.At) * secs
	}
	return total
}

// Total returns the number of posts of the whole run.
func (c *curve) Total() float64 { return c.Due(c.duration) }

// Peak returns the highest target rate of the curve.
func (c *curve) Peak() float64 {
	peak := 0.0
	for _, p := range c.points {
		peak = math.Max(peak, p.Rate)
	}
	return peak
}

// Phase returns the label of the phase the run is in at elapsed.
func (c *curve) Phase(elapsed time.Duration) string {
	f := c.frac(elapsed)
	label := c.points[0].Label
	for _, p := range c.points {
		if p.At > f {
			break
		}
		if p.Label != "" {
			label = p.Label
		}
	}
	return label
}

// PeakWindow returns the elapsed times at which the curve first reaches and last leaves
// its peak rate; the demo's midway failover is placed relative to it.
func (c *curve) PeakWindow() (start, end time.Duration) {
	peak := c.Peak()
	first, last := -1, -1
	for i, p := range c.points {
		if p.Rate == peak {
			if first < 0 {
				first = i
			}
			last = i
		}
	}
	d := float64(c.duration)
	return time.Duration(c.points[first].At * d), time.Duration(c.points[last].At * d)
}
