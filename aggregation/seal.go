package aggregation

import (
	"crypto/md5"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/freshet/freshet/internal/lanehash"
)

// ErrNotUnsealed is wrapped by the error Seal returns for an element that
// is not an unsealed KPL aggregate.
var ErrNotUnsealed = errors.New("aggregation: not an unsealed KPL aggregate")

// SealError reports an element of a batch given to Seal that is not an
// unsealed KPL aggregate. Seal then wrote nothing, to that element or any
// other. It matches ErrNotUnsealed with errors.Is.
type SealError struct {
	// Index is the element's position in the batch.
	Index int
	// Detail says what is wrong with it.
	Detail string
}

// Error implements error.
func (e *SealError) Error() string {
	return fmt.Sprintf("%v: element %d: %s", ErrNotUnsealed, e.Index, e.Detail)
}

// Unwrap returns ErrNotUnsealed.
func (e *SealError) Unwrap() error { return ErrNotUnsealed }

// Sealer writes the MD5 trailers of aggregates drained with DrainUnsealed,
// a whole batch in one pass over the SIMD lanes of the calling goroutine's
// core (internal/lanehash; crypto/md5 per aggregate on CPUs without
// AVX-512 or for batches too small for lanes to pay off). It keeps scratch
// space sized to the largest batch it has sealed, so that sealing allocates
// nothing in steady state, and holds no reference to any data once Seal
// returns. The zero value is ready to use. A Sealer is not safe for
// concurrent use; the package-level Seal is.
type Sealer struct {
	bodies [][]byte
	sums   [][md5.Size]byte
}

// Seal writes the MD5 trailer of every element of datas, in place. Each
// element must be the data of a record that DrainUnsealed returned with
// sealed false, unchanged: the KPL magic, a protobuf body that begins with
// a partition key table entry, and a 16-byte trailer of zeros. The elements
// must not overlap one another.
//
// Seal checks the shape of every element before it writes anything: when
// one is not an unsealed aggregate (a plain record, a compressed frame, an
// aggregate already sealed, a truncated one), it returns a *SealError for
// the first such element and leaves every element as it was. It does not
// parse the bodies: an element of the right shape whose body was damaged
// after DrainUnsealed gets an MD5 that matches its damaged body.
func (s *Sealer) Seal(datas [][]byte) error {
	for i, d := range datas {
		if detail := unsealedShape(d); detail != "" {
			return &SealError{Index: i, Detail: detail}
		}
	}
	n := len(datas)
	s.bodies = slices.Grow(s.bodies[:0], n)[:n]
	s.sums = slices.Grow(s.sums[:0], n)[:n]
	for i, d := range datas {
		s.bodies[i] = d[len(Magic) : len(d)-md5.Size]
	}
	lanehash.MD5(s.sums, s.bodies)
	for i, d := range datas {
		copy(d[len(d)-md5.Size:], s.sums[i][:])
	}
	clear(s.bodies)
	return nil
}

// unsealedShape returns why d is not an unsealed KPL aggregate as
// DrainUnsealed writes it, or "" when it is one.
func unsealedShape(d []byte) string {
	switch {
	case len(d) <= overhead:
		return fmt.Sprintf("%d bytes, too short for an aggregate", len(d))
	case !hasPrefix(d, Magic[:]):
		return "no KPL magic"
	case d[len(Magic)] != tagPartitionKeyTable:
		return "body does not begin with a partition key table entry"
	}
	for _, c := range d[len(d)-md5.Size:] {
		if c != 0 {
			return "MD5 trailer already written"
		}
	}
	return ""
}

var sealerPool = sync.Pool{New: func() any { return new(Sealer) }}

// Seal is Sealer.Seal with a Sealer taken from a process-wide pool, for
// callers that do not keep their own. It is safe for concurrent use.
func Seal(datas [][]byte) error {
	s := sealerPool.Get().(*Sealer)
	err := s.Seal(datas)
	sealerPool.Put(s)
	return err
}
