package snapshot

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"unicode/utf8"

	"github.com/slipstreamkv/slipstream/kvcore"
)

// The PGSS v2 file format (byte-compatible with the Rust crate beyond-slipstream 0.7.3):
//
//	header:  "PGSS" | version u16 LE (= 2)
//	record:  crc u32 LE | type u8 | payload
//	         crc = CRC-32/IEEE over type..end of record
//	PUT    (0x01): key_len u16 | key | value_len u32 | value | ver_len u8 | version
//	DELETE (0x02): key_len u16 | key | ver_len u8 | version
//	CURSOR (0x03): cur_len u8 | cursor
//
// Integers are little-endian; versions and cursors are opaque token bytes.
const (
	headerLen     = 6
	formatVersion = 2

	recPut    = 0x01
	recDelete = 0x02
	recCursor = 0x03

	// maxTokenLen is the longest version or cursor a reader accepts.
	maxTokenLen = kvcore.MaxVersionLen
	// MaxValueLen is the largest value a reader loads (16 MiB). Writers in
	// this package refuse larger values with [ErrTooLarge] so that every file
	// they write stays loadable (the Rust writer accepts them and then cannot
	// load its own file).
	MaxValueLen = 16 << 20
	// MaxKeyLen is the longest key the format can hold.
	MaxKeyLen = 1<<16 - 1

	minRecordLen = 6 // the shortest record: a CURSOR with a none cursor
)

var header = [headerLen]byte{'P', 'G', 'S', 'S', formatVersion, 0}

// checkUpdate refuses what the writer must not write.
func checkUpdate(u *kvcore.Update) error {
	if len(u.Key) > MaxKeyLen {
		return fmt.Errorf("%w: key of %d bytes (max %d)", ErrTooLarge, len(u.Key), MaxKeyLen)
	}
	if len(u.Value) > MaxValueLen {
		return fmt.Errorf("%w: value of key %q is %d bytes (max %d)", ErrTooLarge, u.Key, len(u.Value), MaxValueLen)
	}
	if !utf8.ValidString(u.Key) {
		return fmt.Errorf("%w: key %q is not valid UTF-8", ErrInvalidFormat, u.Key)
	}
	switch u.Op {
	case kvcore.OpPut, kvcore.OpDelete, kvcore.OpPurge:
		return nil
	}
	return fmt.Errorf("snapshot: update of key %q has unknown operation %v", u.Key, u.Op)
}

// updateRecordLen is the encoded size of u's record.
func updateRecordLen(u *kvcore.Update) int {
	if u.IsRemoval() {
		return 8 + len(u.Key) + u.Version.Len()
	}
	return 12 + len(u.Key) + len(u.Value) + u.Version.Len()
}

// appendUpdate appends u's record (PUT, or DELETE for deletes and purges).
// The caller has checked u with checkUpdate.
func appendUpdate(dst []byte, u *kvcore.Update) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	if u.IsRemoval() {
		dst = append(dst, recDelete)
		dst = binary.LittleEndian.AppendUint16(dst, uint16(len(u.Key)))
		dst = append(dst, u.Key...)
	} else {
		dst = append(dst, recPut)
		dst = appendPutPayload(dst, u.Key, u.Value, u.Version)
		return sealRecord(dst, start)
	}
	dst = append(dst, byte(u.Version.Len()))
	dst = u.Version.AppendBytes(dst)
	return sealRecord(dst, start)
}

// appendPutPayload appends a PUT payload: key_len | key | value_len | value | ver_len | version.
// The in-memory arena stores entries in exactly this form.
func appendPutPayload(dst []byte, key string, value []byte, ver kvcore.Version) []byte {
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(key)))
	dst = append(dst, key...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(value)))
	dst = append(dst, value...)
	dst = append(dst, byte(ver.Len()))
	return ver.AppendBytes(dst)
}

// appendPutRecord appends a PUT record whose payload is given pre-encoded.
func appendPutRecord(dst, payload []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, recPut)
	dst = append(dst, payload...)
	return sealRecord(dst, start)
}

// appendCursor appends a CURSOR record.
func appendCursor(dst []byte, c kvcore.Cursor) []byte {
	start := len(dst)
	v := c.Version()
	dst = append(dst, 0, 0, 0, 0, recCursor, byte(v.Len()))
	dst = v.AppendBytes(dst)
	return sealRecord(dst, start)
}

func cursorRecordLen(c kvcore.Cursor) int { return 6 + c.Version().Len() }

// sealRecord fills in the CRC of the record that starts at dst[start].
func sealRecord(dst []byte, start int) []byte {
	binary.LittleEndian.PutUint32(dst[start:], crc32.ChecksumIEEE(dst[start+4:]))
	return dst
}
