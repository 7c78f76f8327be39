package lanehash

import (
	"math/rand/v2"
	"syscall"
	"testing"
)

// TestSHA256StaysInsideMessages hashes messages that end right before, or
// start right after, a page that cannot be read: any read past either end
// of a message kills the test binary with SIGSEGV.
func TestSHA256StaysInsideMessages(t *testing.T) {
	page := syscall.Getpagesize()
	// guard | data (3 pages) | guard
	mem, err := syscall.Mmap(-1, 0, 5*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	defer func() {
		if err := syscall.Munmap(mem); err != nil {
			t.Errorf("munmap: %v", err)
		}
	}()
	r := rand.New(rand.NewPCG(13, 14))
	for i := range mem {
		mem[i] = byte(r.Uint32())
	}
	for _, guard := range [][]byte{mem[:page], mem[4*page:]} {
		if err := syscall.Mprotect(guard, syscall.PROT_NONE); err != nil {
			t.Fatalf("mprotect: %v", err)
		}
	}
	data := mem[page : 4*page : 4*page]

	var lengths []int
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	for n := 512; n <= len(data); n += 448 {
		lengths = append(lengths, n, n+63, n-1)
	}
	lengths = append(lengths, len(data))

	var atEnd, atStart [][]byte
	for _, n := range lengths {
		if n > len(data) {
			continue
		}
		atEnd = append(atEnd, data[len(data)-n:])
		atStart = append(atStart, data[:n:n])
	}
	checkSHA256(t, atEnd)
	checkSHA256(t, atStart)
	// Lanes that keep reading while others finish their tails.
	for _, n := range []int{64, 128, 1000, len(data)} {
		batch := [][]byte{data[len(data)-n:], data[:n:n]}
		for range 20 {
			batch = append(batch, data[len(data)-r.IntN(100):])
		}
		checkSHA256(t, batch)
	}
}
