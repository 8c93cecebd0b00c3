package pebblefold

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

const dataPrefix = 'd'

var cursorKey = []byte("mcursor")

// dataKey appends the stored key of key to dst[:0], growing dst at most
// once.
func dataKey(dst []byte, key string) []byte {
	if n := 1 + len(key); cap(dst) < n {
		dst = make([]byte, 0, n)
	}
	return append(append(dst[:0], dataPrefix), key...)
}

// prefixBounds returns the iteration bounds of data keys starting with prefix.
func prefixBounds(prefix string) (lower, upper []byte) {
	lower = dataKey(nil, prefix)
	upper = append([]byte{}, lower...)
	for i := len(upper) - 1; i >= 0; i-- {
		if upper[i] != 0xff {
			upper[i]++
			return lower, upper[:i+1]
		}
	}
	return lower, nil
}

// checkUpdate refuses an update the fold cannot store.
func checkUpdate(u *kvcore.Update) error {
	if !utf8.ValidString(u.Key) {
		return fmt.Errorf("%w: key %q is not valid UTF-8", snapshot.ErrInvalidFormat, u.Key)
	}
	if !u.IsRemoval() && u.Op != kvcore.OpPut {
		return fmt.Errorf("update of key %q has unknown operation %v", u.Key, u.Op)
	}
	return nil
}

// addUpdate encodes u into b, the key and value written in place.
func addUpdate(b *pebble.Batch, u *kvcore.Update) error {
	if err := checkUpdate(u); err != nil {
		return err
	}
	var op *pebble.DeferredBatchOp
	if u.IsRemoval() {
		op = b.DeleteDeferred(1 + len(u.Key))
	} else {
		op = b.SetDeferred(1+len(u.Key), valueLen(u))
		putValue(op.Value, u)
	}
	op.Key[0] = dataPrefix
	copy(op.Key[1:], u.Key)
	return op.Finish()
}

// valueLen is the length of the stored value of the put u.
func valueLen(u *kvcore.Update) int { return 1 + u.Version.Len() + len(u.Value) }

// putValue encodes the stored value of the put u into dst, which is
// valueLen(u) bytes long: ver_len u8 | version | value.
func putValue(dst []byte, u *kvcore.Update) {
	n := u.Version.Len()
	dst[0] = byte(n)
	u.Version.AppendBytes(dst[1:1]) // within dst: no allocation
	copy(dst[1+n:], u.Value)
}

// sortedOrder returns the indexes of updates in ascending key order, equal
// keys in their order in updates, reusing dst.
func sortedOrder(dst []int32, updates []kvcore.Update) []int32 {
	dst = dst[:0]
	for i := range updates {
		dst = append(dst, int32(i))
	}
	slices.SortFunc(dst, func(a, b int32) int {
		if c := strings.Compare(updates[a].Key, updates[b].Key); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	return dst
}

// decodeEntry decodes a stored value into an entry that owns its bytes.
func decodeEntry(key string, raw []byte) (kvcore.Entry, error) {
	if len(raw) == 0 {
		return kvcore.Entry{}, fmt.Errorf("%w: empty record for key %q", snapshot.ErrInvalidFormat, key)
	}
	n := int(raw[0])
	if n > kvcore.MaxVersionLen {
		return kvcore.Entry{}, fmt.Errorf("%w: version of %d bytes for key %q", snapshot.ErrInvalidFormat, n, key)
	}
	if len(raw) < 1+n {
		return kvcore.Entry{}, fmt.Errorf("%w: record of key %q shorter than its version", snapshot.ErrInvalidFormat, key)
	}
	v, _ := kvcore.VersionFromBytes(raw[1 : 1+n])
	return kvcore.Entry{Key: key, Value: append([]byte{}, raw[1+n:]...), Version: v}, nil
}
