package lanehash

import (
	"math/rand/v2"
	"syscall"
	"testing"
)

// guardedRegion maps size bytes (a multiple of the page size) between two
// PROT_NONE pages, so any read just before or just after it faults.
func guardedRegion(t *testing.T, size int) []byte {
	t.Helper()
	page := syscall.Getpagesize()
	if size%page != 0 {
		t.Fatalf("size %d is not a multiple of the page size %d", size, page)
	}
	mem, err := syscall.Mmap(-1, 0, size+2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Munmap(mem) })
	if err := syscall.Mprotect(mem[:page], syscall.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	if err := syscall.Mprotect(mem[page+size:], syscall.PROT_NONE); err != nil {
		t.Fatalf("mprotect: %v", err)
	}
	return mem[page : page+size : page+size]
}

// TestMD5NeverReadsOutsideMessages hashes messages that end right before,
// or start right after, an unreadable page: a read past either end of a
// message crashes the test.
func TestMD5NeverReadsOutsideMessages(t *testing.T) {
	region := guardedRegion(t, 4*syscall.Getpagesize())
	r := rand.New(rand.NewPCG(15, 16))
	for i := range region {
		region[i] = byte(r.Uint32())
	}
	end := func(n int) []byte { return region[len(region)-n:] }
	start := func(n int) []byte { return region[:n:n] }

	var lens []int
	for n := 0; n <= 300; n++ {
		lens = append(lens, n)
	}
	lens = append(lens, 1000, 1023, 1024, 1025, 4095, 4096, 4097, 8000, len(region)-1, len(region))

	for _, place := range []struct {
		name string
		msg  func(int) []byte
	}{{"at end", end}, {"at start", start}} {
		t.Run(place.name, func(t *testing.T) {
			// Batches of several sizes, from one message (lanes forced) up
			// to all of them, so every length meets idle and busy lanes.
			for _, batch := range []int{1, 3, 16, 17, len(lens)} {
				for i := 0; i < len(lens); i += batch {
					var msgs [][]byte
					for _, n := range lens[i:min(i+batch, len(lens))] {
						msgs = append(msgs, place.msg(n))
					}
					checkMD5(t, msgs)
				}
			}
		})
	}
}
