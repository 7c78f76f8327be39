package main

import (
	"context"
	"io"
)

// runDemo runs the launch against t and returns its summary.
func runDemo(ctx context.Context, o options, c *curve, t *target, stdout io.Writer, ansi bool) (summary, error) {
	return summary{}, errServiceUnavailable
}
