package lanehash_test

import (
	"fmt"

	"github.com/freshet/freshet/internal/lanehash"
)

func ExampleMD5() {
	bodies := [][]byte{
		[]byte(""),
		[]byte("abc"),
		[]byte("message digest"),
		[]byte("12345678901234567890123456789012345678901234567890123456789012345678901234567890"),
	}
	sums := make([][16]byte, len(bodies))
	lanehash.MD5(sums, bodies)
	for _, sum := range sums {
		fmt.Printf("%x\n", sum)
	}
	// Output:
	// d41d8cd98f00b204e9800998ecf8427e
	// 900150983cd24fb0d6963f7d28e17f72
	// f96b697d7cb7938d525a2f31aaf161d0
	// 57edf4a22be3c955ac49da2e2107b67a
}
