//go:build amd64 && !purego

package lanehash

import (
	"fmt"
	"testing"
)

func TestMD5WorthLanes(t *testing.T) {
	batch := func(lens ...int) [][]byte {
		msgs := make([][]byte, len(lens))
		for i, n := range lens {
			msgs[i] = make([]byte, n)
		}
		return msgs
	}
	tests := []struct {
		msgs [][]byte
		want bool
	}{
		{batch(), false},
		{batch(1 << 20), false},
		{batch(0, 0), false},
		{batch(150, 149), false},
		{batch(150, 150), true},
		{batch(0, 1<<20), true},
		{batch(100, 100, 99), false},
		{batch(100, 100, 100), true},
		{batch(0, 0, 0, 0), true},
		{make([][]byte, 1000), true},
	}
	for _, tt := range tests {
		lens := make([]int, len(tt.msgs))
		for i, m := range tt.msgs {
			lens[i] = len(m)
		}
		name := fmt.Sprint(lens)
		if len(name) > 40 {
			name = fmt.Sprintf("%d messages", len(lens))
		}
		t.Run(name, func(t *testing.T) {
			if got := md5WorthLanes(tt.msgs); got != tt.want {
				t.Fatalf("md5WorthLanes = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMD5BlocksAVX2Kernel checks the AVX2 kernel also where md5Blocks picks the
// AVX-512 one.
func TestMD5BlocksAVX2Kernel(t *testing.T) {
	if !hasAVX2 {
		t.Skip("no AVX2 on this CPU")
	}
	checkMD5Kernel(t, md5BlocksAVX2)
}
