package benchdata

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strings"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// Stream is the workload of [Data] for sizes that do not fit in memory: n
// keys of the same shape, generated as they are delivered. Delivery
// position i carries key Perm(i), a permutation that scatters consecutive
// deliveries over the whole key space (as a bucket's initial sync, in
// revision order, does), so a batch's keys are as far apart as random ones.
type Stream struct {
	n    uint64
	pool []byte
	step uint64 // coprime with n
}

// NewStream returns the stream of n keys.
func NewStream(n int) *Stream {
	// The pool of [Get], without generating its keys.
	rng := rand.New(rand.NewPCG(1, 2))
	s := &Stream{n: uint64(n), pool: make([]byte, 1<<20)}
	for i := range s.pool {
		s.pool[i] = byte(rng.Uint32())
	}
	// A step near n/φ, coprime with n, spreads the deliveries evenly.
	s.step = uint64(float64(n)*0.6180339887) | 1
	for gcd(s.step, s.n) != 1 {
		s.step += 2
	}
	return s
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// N is the number of keys.
func (s *Stream) N() int { return int(s.n) }

// Perm is the index of the key delivered at position i.
func (s *Stream) Perm(i int) int { return int((uint64(i)*s.step + 12345) % s.n) }

// Key is key j: KeyLen bytes, the shape of [Data]'s keys.
func (s *Stream) Key(j int) string {
	k := fmt.Sprintf("route.svc-%06d.%08d.", j/1000, j%1000)
	return k + strings.Repeat("x", KeyLen-len(k))
}

// Value is the value delivered at position i: ValueLen bytes of the pool.
func (s *Stream) Value(i int) []byte {
	off := (i * 7919) % (len(s.pool) - ValueLen)
	return s.pool[off : off+ValueLen : off+ValueLen]
}

// Batches calls fn with the puts of every key in delivery order, in
// batches of BatchSize, revisions counting from 1, and each batch's cursor.
// The batch slice is reused: fn must not keep it.
func (s *Stream) Batches(fn func(batch []kvcore.Update, cursor kvcore.Cursor) error) error {
	batch := make([]kvcore.Update, 0, BatchSize)
	for i := range int(s.n) {
		rev := uint64(i) + 1
		batch = append(batch, kvcore.Update{Op: kvcore.OpPut, Key: s.Key(s.Perm(i)), Value: s.Value(i), Version: kvcore.RevisionVersion(rev)})
		if len(batch) == BatchSize || i == int(s.n)-1 {
			if err := fn(batch, kvcore.RevisionCursor(rev)); err != nil {
				return err
			}
			batch = batch[:0]
		}
	}
	return nil
}

// ResetPeakRSS resets the process's peak resident set size (VmHWM), so that
// [PeakRSS] measures from now on.
func ResetPeakRSS() error {
	return os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}
