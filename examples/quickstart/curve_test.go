package main

import (
	"errors"
	"math"
	"testing"
	"time"
)

func TestCurveRateAndPhase(t *testing.T) {
	c, err := newCurve(defaultCurvePoints(100, 30000), 100*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at    time.Duration
		rate  float64
		phase string
	}{
		{0, 100, "launch"},
		{6 * time.Second, 100, "launch"},
		{12 * time.Second, 100, "launch"},
		{15 * time.Second, 1550, "launch"}, // halfway up the repost ramp
		{18 * time.Second, 3000, "celebrity-repost"},
		{37500 * time.Millisecond, 18000, "celebrity-repost"}, // halfway up the viral jump
		{40 * time.Second, 30000, "viral-peak"},
		{55 * time.Second, 30000, "viral-peak"},
		{72 * time.Second, 100, "back-to-baseline"},
		{100 * time.Second, 100, "back-to-baseline"},
		{200 * time.Second, 100, "back-to-baseline"}, // clamped past the end
		{-time.Second, 100, "launch"},                // clamped before the start
	}
	for _, tt := range tests {
		t.Run(tt.at.String(), func(t *testing.T) {
			if got := c.Rate(tt.at); math.Abs(got-tt.rate) > 1e-6 {
				t.Errorf("Rate(%v) = %v, want %v", tt.at, got, tt.rate)
			}
			if got := c.Phase(tt.at); got != tt.phase {
				t.Errorf("Phase(%v) = %q, want %q", tt.at, got, tt.phase)
			}
		})
	}
	if c.Peak() != 30000 {
		t.Errorf("Peak = %v", c.Peak())
	}
	start, end := c.PeakWindow()
	if start != 40*time.Second || end != 62*time.Second {
		t.Errorf("PeakWindow = %v, %v; want 40s, 62s", start, end)
	}
}

func TestCurveDueIsIntegral(t *testing.T) {
	// 0 -> 10 s at 100/s, then a ramp to 300/s over 10 s: 1000 + 2000 posts.
	c, err := newCurve([]curvePoint{{0, 100, ""}, {0.5, 100, ""}, {1, 300, ""}}, 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		at   time.Duration
		want float64
	}{
		{0, 0},
		{5 * time.Second, 500},
		{10 * time.Second, 1000},
		{15 * time.Second, 1000 + 5*150},
		{20 * time.Second, 3000},
		{30 * time.Second, 3000},
	}
	for _, tt := range tests {
		if got := c.Due(tt.at); math.Abs(got-tt.want) > 1e-6 {
			t.Errorf("Due(%v) = %v, want %v", tt.at, got, tt.want)
		}
	}
	if c.Total() != 3000 {
		t.Errorf("Total = %v", c.Total())
	}
	// Due grows monotonically and its slope is the rate.
	prev := -1.0
	for ms := 0; ms <= 20000; ms += 37 {
		d := c.Due(time.Duration(ms) * time.Millisecond)
		if d < prev {
			t.Fatalf("Due decreased at %dms: %v < %v", ms, d, prev)
		}
		prev = d
	}
}

func TestParseCurve(t *testing.T) {
	tests := []struct {
		spec    string
		want    []curvePoint
		wantErr bool
	}{
		{spec: "0:100:launch, 0.5:2000:viral ,1:100", want: []curvePoint{{0, 100, "launch"}, {0.5, 2000, "viral"}, {1, 100, ""}}},
		{spec: "", wantErr: true},
		{spec: "0", wantErr: true},
		{spec: "x:1,1:1", wantErr: true},
		{spec: "0:y,1:1", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := parseCurve(tt.spec)
			if tt.wantErr {
				if !errors.Is(err, errCurve) {
					t.Fatalf("err = %v, want errCurve", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("point %d = %v, want %v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestNewCurveRejects(t *testing.T) {
	tests := map[string][]curvePoint{
		"one point":         {{0, 1, ""}},
		"not from 0":        {{0.1, 1, ""}, {1, 1, ""}},
		"not to 1":          {{0, 1, ""}, {0.9, 1, ""}},
		"negative rate":     {{0, -1, ""}, {1, 1, ""}},
		"NaN rate":          {{0, math.NaN(), ""}, {1, 1, ""}},
		"infinite":          {{0, math.Inf(1), ""}, {1, 1, ""}},
		"not increasing":    {{0, 1, ""}, {0.5, 1, ""}, {0.5, 1, ""}, {1, 1, ""}},
		"position past one": {{0, 1, ""}, {1.5, 1, ""}, {1, 1, ""}},
	}
	for name, pts := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := newCurve(pts, time.Second); !errors.Is(err, errCurve) {
				t.Fatalf("err = %v, want errCurve", err)
			}
		})
	}
	if _, err := newCurve(defaultCurvePoints(1, 2), 0); !errors.Is(err, errCurve) {
		t.Fatalf("zero duration: err = %v", err)
	}
}

func FuzzParseCurve(f *testing.F) {
	f.Add("0:100:launch,0.2:5000:repost,0.5:30000:viral,0.8:100,1:100")
	f.Add("0:1,1:1")
	f.Add("0:NaN,1:Inf")
	f.Fuzz(func(t *testing.T, spec string) {
		pts, err := parseCurve(spec)
		if err != nil {
			return
		}
		c, err := newCurve(pts, 10*time.Second)
		if err != nil {
			return
		}
		// A valid curve has finite, non-negative rates and a monotone integral.
		prev := 0.0
		for ms := 0; ms <= 10000; ms += 250 {
			at := time.Duration(ms) * time.Millisecond
			r, d := c.Rate(at), c.Due(at)
			if math.IsNaN(r) || r < 0 || math.IsNaN(d) || d < prev-1e-6 {
				t.Fatalf("spec %q at %v: rate %v due %v (prev %v)", spec, at, r, d, prev)
			}
			prev = d
		}
	})
}
