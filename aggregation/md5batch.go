package aggregation

import (
	"crypto/md5"

	"github.com/freshet/freshet/internal/lanehash"
)

// md5LanesSupported reports whether lanehash has SIMD lanes for MD5 on this
// CPU (16 with AVX-512 on amd64). Without them lanehash.MD5 is crypto/md5
// per message, which is what AppendBatch then does itself.
var md5LanesSupported = lanehash.MD5Lanes() > 1

// md5ChunkBytes is about how many bytes of aggregates AppendBatch hashes
// before it decodes them: few enough that they are still in the core's L2
// cache (1 MiB or more on CPUs with AVX-512) when decoded, while every
// chunk still fills all MD5 lanes at least once.
const md5ChunkBytes = 768 << 10

// sumMD5s sets sums[i] to the MD5 of bodies[i]: with lanes in one
// lanehash.MD5 call, which shares the SIMD lanes of this core among the
// bodies (and itself uses crypto/md5 when the batch is too small for lanes
// to pay off), otherwise with crypto/md5 one body at a time.
func sumMD5s(sums [][md5.Size]byte, bodies [][]byte, lanes bool) {
	if lanes {
		lanehash.MD5(sums, bodies)
		return
	}
	for i, b := range bodies {
		sums[i] = md5.Sum(b)
	}
}

// aggregatesPerChunk plans how many aggregates each chunk of a batch holds
// when their MD5s are computed in lanes. A chunk holds whole rounds of
// lanes (lanes aggregates each) up to about md5ChunkBytes, and the
// aggregates are spread evenly over as few chunks as that allows, so that
// no chunk ends with a round of mostly idle lanes. avg is the aggregates'
// mean size in bytes.
func aggregatesPerChunk(n, avg, lanes int) int {
	if n == 0 {
		return 1
	}
	per := lanes * max(1, md5ChunkBytes/max(1, avg)/lanes)
	chunks := (n + per - 1) / per
	return (n + chunks - 1) / chunks
}
