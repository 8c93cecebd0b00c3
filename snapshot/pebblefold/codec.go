package pebblefold

import (
	"fmt"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

const dataPrefix = 'd'

var cursorKey = []byte("mcursor")

func dataKey(dst []byte, key string) []byte {
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

func encodeValue(dst []byte, u kvcore.Update) []byte {
	dst = append(dst[:0], byte(u.Version.Len()))
	dst = u.Version.AppendBytes(dst)
	return append(dst, u.Value...)
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
