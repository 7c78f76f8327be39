package producer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/freshet/freshet/internal/kinesiswire"
	"github.com/freshet/freshet/internal/lanehash"
)

// SigV4 signs the SHA-256 of every request body, and for a producer of small
// records that hash is the largest CPU cost there is: every byte of every
// PutRecords body passes through it once. One SHA-256 cannot be split, but
// several can share a core's SIMD lanes (internal/lanehash). So when the
// dispatcher has more than one call's worth of records ready it starts the
// calls together as a wave, and each call's payload-hash step waits until every
// call of its wave has serialized its body; the last one to get there hashes
// them all at once and hands each call its hash. A call alone, or on a CPU
// without lanes, hashes its own body as the SDK would.

// payloadHashID is the SDK's ID of the finalize middleware that hashes the body.
const payloadHashID = "ComputePayloadHash"

// withWaveGrace sets how long a wave member waits for the others (tests only: a
// loaded test machine can spread the members of a wave further than waveGrace).
func withWaveGrace(d time.Duration) Option {
	return func(c *config) error {
		c.waveGrace = d
		return nil
	}
}

// minWaveCallBytes is the smallest call the dispatcher makes to fill another
// lane of a wave: below it a call's fixed cost (HTTP, SDK middleware, the
// service's per-call work) outweighs what sharing the lanes saves.
const minWaveCallBytes = 256 << 10

// waveGrace is how long, by default, a call that has its body waits for the rest
// of its wave before it hashes its body alone and leaves. The calls of a wave start together
// and only serialize their bodies before the hash (a few milliseconds at most, even
// on a busy machine); a call held back longer, by a user's middleware or a slow
// credentials fetch, then delays the others by this much and no more.
const waveGrace = 25 * time.Millisecond

// wave is a group of PutRecords calls started together whose bodies are hashed
// together.
type wave struct {
	signed *atomic.Int64 // counts the bodies hashed in waves
	grace  time.Duration
	mu     sync.Mutex
	bodies [][]byte // nil for a member that has not arrived or has left
	sums   [][sha256.Size]byte
	// pending counts the members that have not arrived. When it reaches zero the
	// last one hashes every body still in the wave; hashing is then set, and a
	// member can no longer leave: it waits for done, its body being read.
	pending int
	hashing bool
	done    chan struct{}
}

func newWave(n int, signed *atomic.Int64, grace time.Duration) *wave {
	return &wave{
		signed:  signed,
		grace:   grace,
		bodies:  make([][]byte, n),
		sums:    make([][sha256.Size]byte, n),
		pending: n,
		done:    make(chan struct{}),
	}
}

// waveMember is one call's place in its wave. It arrives exactly once: with its
// body from the payload-hash step, or with none (arriveEmpty) when the call ended
// before it was signed, so that the others never wait for it.
type waveMember struct {
	w       *wave
	i       int
	arrived bool
}

type waveKey struct{}

// arrive gives the wave this member's body and returns the body's SHA-256: from
// the wave once every member has arrived, or computed alone if that takes longer
// than the wave's grace period. It returns ctx's error if ctx ends first. Either way the wave
// holds no reference to body once arrive has returned.
func (m *waveMember) arrive(ctx context.Context, body []byte) ([sha256.Size]byte, error) {
	m.arrived = true
	w := m.w
	w.mu.Lock()
	w.bodies[m.i] = body
	w.pending--
	last := w.pending == 0
	w.hashing = last
	w.mu.Unlock()
	if last {
		lanehash.SHA256(w.sums, w.bodies)
		n := 0
		for _, b := range w.bodies {
			if b != nil {
				n++
			}
		}
		w.signed.Add(int64(n))
		clear(w.bodies)
		close(w.done)
		return w.sums[m.i], nil
	}
	if body == nil {
		return [sha256.Size]byte{}, nil
	}
	grace := time.NewTimer(w.grace)
	defer grace.Stop()
	select {
	case <-w.done:
		return w.sums[m.i], nil
	case <-grace.C:
		if !w.leave(m.i) {
			return w.sums[m.i], nil
		}
		return sha256.Sum256(body), nil
	case <-ctx.Done():
		if !w.leave(m.i) {
			return w.sums[m.i], nil
		}
		return [sha256.Size]byte{}, ctx.Err()
	}
}

// leave takes member i's body out of the wave. It reports false when the wave
// is already hashing it; it then returns once the hash is done.
func (w *wave) leave(i int) bool {
	w.mu.Lock()
	if w.hashing {
		w.mu.Unlock()
		<-w.done
		return false
	}
	w.bodies[i] = nil
	w.mu.Unlock()
	return true
}

// arriveEmpty releases the member's place if the call never reached the
// payload-hash step.
func (m *waveMember) arriveEmpty() {
	if m == nil || m.arrived {
		return
	}
	_, _ = m.arrive(context.Background(), nil)
}

// usePayloadHash is the per-call option that replaces the SDK's body hashing
// with payloadHash.
func usePayloadHash(o *kinesis.Options) {
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		if _, ok := s.Finalize.Get(payloadHashID); !ok {
			return nil
		}
		_, err := s.Finalize.Swap(payloadHashID, payloadHash{})
		return err
	})
}

// payloadHash is a finalize middleware that sets the SigV4 payload hash of a
// PutRecords call: from its wave when the call belongs to one, otherwise by
// hashing the body itself.
type payloadHash struct{}

// ID implements middleware.FinalizeMiddleware under the SDK's own ID, so that
// the signer finds the hash where it expects it.
func (payloadHash) ID() string { return payloadHashID }

// HandleFinalize implements middleware.FinalizeMiddleware.
func (payloadHash) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
	if v4.GetPayloadHash(ctx) != "" {
		return next.HandleFinalize(ctx, in)
	}
	req, ok := in.Request.(*smithyhttp.Request)
	if !ok {
		return middleware.FinalizeOutput{}, middleware.Metadata{}, &v4.HashComputationError{Err: fmt.Errorf("unexpected request type %T", in.Request)}
	}
	var sum [sha256.Size]byte
	m, _ := ctx.Value(waveKey{}).(*waveMember)
	body, known := serializedBody(ctx, req)
	switch {
	case known && m != nil && !m.arrived:
		var err error
		if sum, err = m.arrive(ctx, body); err != nil {
			return middleware.FinalizeOutput{}, middleware.Metadata{}, &v4.HashComputationError{Err: err}
		}
	case known:
		sum = sha256.Sum256(body)
	default:
		h := sha256.New()
		if stream := req.GetStream(); stream != nil {
			if _, err := io.Copy(h, stream); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, &v4.HashComputationError{Err: fmt.Errorf("hash body: %w", err)}
			}
			if err := req.RewindStream(); err != nil {
				return middleware.FinalizeOutput{}, middleware.Metadata{}, &v4.HashComputationError{Err: fmt.Errorf("rewind body: %w", err)}
			}
		}
		h.Sum(sum[:0])
	}
	return next.HandleFinalize(v4.SetPayloadHash(ctx, hex.EncodeToString(sum[:])), in)
}

// serializedBody returns the body the producer's serializer wrote for this
// call, if the request still streams exactly those bytes.
func serializedBody(ctx context.Context, req *smithyhttp.Request) ([]byte, bool) {
	bp := kinesiswire.BodyOf(ctx)
	if bp == nil {
		return nil, false
	}
	r, ok := req.GetStream().(*bytes.Reader)
	if !ok || r.Size() != int64(len(*bp)) || r.Len() != len(*bp) {
		return nil, false
	}
	return *bp, true
}
