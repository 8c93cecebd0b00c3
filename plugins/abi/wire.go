package abi

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// ErrMalformed is returned by the Parse functions for bytes that are not a
// valid encoding. Parsers never panic and never read past their input.
var ErrMalformed = errors.New("abi: malformed encoding")

// Encoding sizes.
const (
	// HeaderSize is the fixed part of a call input, before the cursor
	// version and the watch name.
	HeaderSize = 20
	// RecordHeaderSize is the fixed part of a record, before its version, key and value.
	RecordHeaderSize = 20
	// PageHeaderSize is the fixed start of a page returned by view_scan and output_list.
	PageHeaderSize = 8
	// DirEntryHeaderSize is the fixed part of a directory entry, before its name.
	DirEntryHeaderSize = 4
	// MaxVersionLen is the longest opaque version the host sends.
	MaxVersionLen = 16
)

// Kind says which export a call input is for.
type Kind uint8

// Call kinds.
const (
	KindApply  Kind = 1 // an incremental batch (ExportApply)
	KindRender Kind = 2 // a full render with no updates (ExportRender)
)

// String returns "apply", "render" or "kind(N)".
func (k Kind) String() string {
	switch k {
	case KindApply:
		return "apply"
	case KindRender:
		return "render"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Op is the operation of a record.
type Op uint8

// Operations. View entries (view_get, view_scan) are always OpPut.
const (
	OpPut    Op = 1
	OpDelete Op = 2
	OpPurge  Op = 3
)

// String returns "put", "delete", "purge" or "op(N)".
func (o Op) String() string {
	switch o {
	case OpPut:
		return "put"
	case OpDelete:
		return "delete"
	case OpPurge:
		return "purge"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Cursor is the watch position a call brings the plugin to: the revision
// (0 when the backend has none) and the backend's opaque version bytes.
type Cursor struct {
	Revision uint64
	Version  []byte
}

// Header starts every call input:
//
//	offset size field
//	0      1    kind (1 apply, 2 render)
//	1      1    cursor version length V (0..16)
//	2      2    reserved, zero
//	4      4    watch name length W
//	8      4    record count N (0 for render)
//	12     8    cursor revision
//	20     V    cursor version bytes
//	20+V   W    watch name (UTF-8)
//
// N records follow.
type Header struct {
	Kind   Kind
	Watch  string
	Cursor Cursor
	Count  uint32
}

// AppendHeader appends the encoding of h to dst.
// It panics if the cursor version is longer than [MaxVersionLen] (a host bug).
func AppendHeader(dst []byte, h Header) []byte {
	if len(h.Cursor.Version) > MaxVersionLen {
		panic("abi: cursor version longer than MaxVersionLen")
	}
	dst = append(dst, byte(h.Kind), byte(len(h.Cursor.Version)), 0, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(h.Watch)))
	dst = binary.LittleEndian.AppendUint32(dst, h.Count)
	dst = binary.LittleEndian.AppendUint64(dst, h.Cursor.Revision)
	dst = append(dst, h.Cursor.Version...)
	return append(dst, h.Watch...)
}

// ParseHeader decodes the header at the start of b and returns it with the
// number of bytes it occupies. The cursor version aliases b.
func ParseHeader(b []byte) (Header, int, error) {
	if len(b) < HeaderSize {
		return Header{}, 0, fmt.Errorf("%w: header needs %d bytes, have %d", ErrMalformed, HeaderSize, len(b))
	}
	h := Header{Kind: Kind(b[0])}
	if h.Kind != KindApply && h.Kind != KindRender {
		return Header{}, 0, fmt.Errorf("%w: unknown call kind %d", ErrMalformed, b[0])
	}
	vlen := int(b[1])
	if vlen > MaxVersionLen {
		return Header{}, 0, fmt.Errorf("%w: cursor version of %d bytes", ErrMalformed, vlen)
	}
	if b[2] != 0 || b[3] != 0 {
		return Header{}, 0, fmt.Errorf("%w: reserved header bytes are not zero", ErrMalformed)
	}
	wlen := uint64(binary.LittleEndian.Uint32(b[4:]))
	h.Count = binary.LittleEndian.Uint32(b[8:])
	h.Cursor.Revision = binary.LittleEndian.Uint64(b[12:])
	end := uint64(HeaderSize) + uint64(vlen) + wlen
	if end > uint64(len(b)) {
		return Header{}, 0, fmt.Errorf("%w: header of %d bytes, have %d", ErrMalformed, end, len(b))
	}
	if vlen > 0 {
		h.Cursor.Version = b[HeaderSize : HeaderSize+vlen : HeaderSize+vlen]
	}
	h.Watch = string(b[HeaderSize+vlen : end])
	return h, int(end), nil
}

// Record is one update of a batch or one entry of the view:
//
//	offset size field
//	0      1    op (1 put, 2 delete, 3 purge)
//	1      1    version length V (0..16)
//	2      2    reserved, zero
//	4      4    key length K
//	8      4    value length L (0 for delete and purge)
//	12     8    revision (0 when the backend has none)
//	20     V    version bytes (opaque)
//	20+V   K    key
//	20+V+K L    value
type Record struct {
	Op       Op
	Revision uint64
	Version  []byte
	Key      string
	Value    []byte
}

// IsRemoval reports whether the record removes its key (delete or purge).
func (r Record) IsRemoval() bool { return r.Op == OpDelete || r.Op == OpPurge }

// Entry is one key of a watch's view: what view_get and view_scan return
// (as records with op put).
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Version  []byte
}

// Record returns e as the put record that encodes it.
func (e Entry) Record() Record {
	return Record{Op: OpPut, Revision: e.Revision, Version: e.Version, Key: e.Key, Value: e.Value}
}

// Size is the number of bytes the encoding of r occupies.
func (r Record) Size() int { return RecordHeaderSize + len(r.Version) + len(r.Key) + len(r.Value) }

// AppendRecord appends the encoding of r to dst.
// It panics if the version is longer than [MaxVersionLen] (a host bug).
func AppendRecord(dst []byte, r Record) []byte {
	if len(r.Version) > MaxVersionLen {
		panic("abi: record version longer than MaxVersionLen")
	}
	dst = append(dst, byte(r.Op), byte(len(r.Version)), 0, 0)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Key)))
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(r.Value)))
	dst = binary.LittleEndian.AppendUint64(dst, r.Revision)
	dst = append(dst, r.Version...)
	dst = append(dst, r.Key...)
	return append(dst, r.Value...)
}

// RawRecord is a [Record] whose fields all alias the buffer it was parsed
// from, for decoders that avoid copying (such as the SDK, which turns Key into
// a string sharing the buffer's memory).
type RawRecord struct {
	Op       Op
	Revision uint64
	Version  []byte
	Key      []byte
	Value    []byte
}

// ParseRawRecord decodes the record at the start of b without copying and
// returns it with the number of bytes it occupies.
func ParseRawRecord(b []byte) (RawRecord, int, error) {
	var one [1]RawRecord
	rs, n, err := AppendRawRecords(one[:0], b, 1)
	if err != nil {
		return RawRecord{}, 0, err
	}
	return rs[0], n, nil
}

// AppendRawRecords decodes count records from the start of b, appends them
// to dst without copying their bytes, and returns dst with the number of
// bytes consumed. It decodes in one loop without calls, which matters in a
// guest where every function call may cost an exit to the host (see
// plugins/host: interruptible guests).
func AppendRawRecords(dst []RawRecord, b []byte, count uint32) ([]RawRecord, int, error) {
	off := uint64(0)
	for i := uint32(0); i < count; i++ {
		rest := b[off:]
		if len(rest) < RecordHeaderSize {
			return dst, 0, fmt.Errorf("%w: record %d needs %d bytes, have %d", ErrMalformed, i, RecordHeaderSize, len(rest))
		}
		op := Op(rest[0])
		vlen := uint64(rest[1])
		klen := uint64(binary.LittleEndian.Uint32(rest[4:]))
		llen := uint64(binary.LittleEndian.Uint32(rest[8:]))
		end := RecordHeaderSize + vlen + klen + llen
		switch {
		case op < OpPut || op > OpPurge:
			return dst, 0, fmt.Errorf("%w: record %d: unknown op %d", ErrMalformed, i, rest[0])
		case vlen > MaxVersionLen:
			return dst, 0, fmt.Errorf("%w: record %d: version of %d bytes", ErrMalformed, i, vlen)
		case rest[2] != 0 || rest[3] != 0:
			return dst, 0, fmt.Errorf("%w: record %d: reserved bytes are not zero", ErrMalformed, i)
		case op != OpPut && llen != 0:
			return dst, 0, fmt.Errorf("%w: record %d: %s with a %d-byte value", ErrMalformed, i, op, llen)
		case end > uint64(len(rest)):
			return dst, 0, fmt.Errorf("%w: record %d of %d bytes, have %d", ErrMalformed, i, end, len(rest))
		}
		k := RecordHeaderSize + vlen
		r := RawRecord{Op: op, Revision: binary.LittleEndian.Uint64(rest[12:]), Key: rest[k : k+klen : k+klen], Value: rest[k+klen : end : end]}
		if vlen > 0 {
			r.Version = rest[RecordHeaderSize:k:k]
		}
		dst = append(dst, r)
		off += end
	}
	return dst, int(off), nil
}

// ParseRecord decodes the record at the start of b and returns it with the
// number of bytes it occupies. Version and Value alias b; Key is a copy.
func ParseRecord(b []byte) (Record, int, error) {
	r, n, err := ParseRawRecord(b)
	if err != nil {
		return Record{}, 0, err
	}
	return Record{Op: r.Op, Revision: r.Revision, Version: r.Version, Key: string(r.Key), Value: r.Value}, n, nil
}

// Page is the header of a page returned by view_scan and output_list:
//
//	offset size field
//	0      4    item count N
//	4      4    flags; bit 0: more items follow this page
//
// N records (view_scan) or directory entries (output_list) follow.
type Page struct {
	Count uint32
	More  bool
}

// pageMore is the flag bit of Page.More.
const pageMore = 1

// PutPageHeader writes p into the first [PageHeaderSize] bytes of dst.
func PutPageHeader(dst []byte, p Page) {
	var flags uint32
	if p.More {
		flags |= pageMore
	}
	binary.LittleEndian.PutUint32(dst, p.Count)
	binary.LittleEndian.PutUint32(dst[4:], flags)
}

// ParsePageHeader decodes the page header at the start of b.
func ParsePageHeader(b []byte) (Page, int, error) {
	if len(b) < PageHeaderSize {
		return Page{}, 0, fmt.Errorf("%w: page header needs %d bytes, have %d", ErrMalformed, PageHeaderSize, len(b))
	}
	flags := binary.LittleEndian.Uint32(b[4:])
	if flags&^pageMore != 0 {
		return Page{}, 0, fmt.Errorf("%w: unknown page flags %#x", ErrMalformed, flags)
	}
	return Page{Count: binary.LittleEndian.Uint32(b), More: flags&pageMore != 0}, PageHeaderSize, nil
}

// EntryType is the type of a directory entry.
type EntryType uint8

// Directory entry types.
const (
	TypeFile    EntryType = 1 // a regular file
	TypeDir     EntryType = 2 // a directory
	TypeSymlink EntryType = 3 // a symbolic link (never followed)
	TypeOther   EntryType = 4 // anything else (device, socket, FIFO)
)

// DirEntry is one name in an output directory:
//
//	offset size field
//	0      1    type (1 file, 2 directory, 3 symlink, 4 other)
//	1      1    reserved, zero
//	2      2    name length L
//	4      L    name (one path component)
type DirEntry struct {
	Type EntryType
	Name string
}

// Size is the number of bytes the encoding of e occupies.
func (e DirEntry) Size() int { return DirEntryHeaderSize + len(e.Name) }

// AppendDirEntry appends the encoding of e to dst.
// It panics if the name is longer than [MaxNameLen] (a host bug).
func AppendDirEntry(dst []byte, e DirEntry) []byte {
	if len(e.Name) > MaxNameLen {
		panic("abi: directory entry name longer than MaxNameLen")
	}
	dst = append(dst, byte(e.Type), 0)
	dst = binary.LittleEndian.AppendUint16(dst, uint16(len(e.Name)))
	return append(dst, e.Name...)
}

// ParseDirEntry decodes the directory entry at the start of b and returns it
// with the number of bytes it occupies.
func ParseDirEntry(b []byte) (DirEntry, int, error) {
	if len(b) < DirEntryHeaderSize {
		return DirEntry{}, 0, fmt.Errorf("%w: directory entry needs %d bytes, have %d", ErrMalformed, DirEntryHeaderSize, len(b))
	}
	e := DirEntry{Type: EntryType(b[0])}
	if e.Type < TypeFile || e.Type > TypeOther {
		return DirEntry{}, 0, fmt.Errorf("%w: unknown entry type %d", ErrMalformed, b[0])
	}
	if b[1] != 0 {
		return DirEntry{}, 0, fmt.Errorf("%w: reserved entry byte is not zero", ErrMalformed)
	}
	n := int(binary.LittleEndian.Uint16(b[2:]))
	if n == 0 || n > MaxNameLen {
		return DirEntry{}, 0, fmt.Errorf("%w: entry name of %d bytes", ErrMalformed, n)
	}
	end := DirEntryHeaderSize + n
	if end > len(b) {
		return DirEntry{}, 0, fmt.Errorf("%w: directory entry of %d bytes, have %d", ErrMalformed, end, len(b))
	}
	e.Name = string(b[DirEntryHeaderSize:end])
	return e, end, nil
}

// AppendConfigKeys appends the result of config_keys for a configuration:
// the names of its keys in ascending byte order, each followed by a NUL
// byte. It panics if a key holds a NUL byte (a host bug: the host refuses
// such a configuration, see [CheckConfigKey]).
func AppendConfigKeys(dst []byte, config map[string]string) []byte {
	for _, k := range slices.Sorted(maps.Keys(config)) {
		if CheckConfigKey(k) != nil {
			panic("abi: configuration key holds a NUL byte")
		}
		dst = append(append(dst, k...), 0)
	}
	return dst
}

// ParseConfigKeys decodes the result of config_keys: names each followed by
// a NUL byte, in strictly ascending byte order.
func ParseConfigKeys(b []byte) ([]string, error) {
	var keys []string
	for len(b) > 0 {
		i := bytes.IndexByte(b, 0)
		if i < 0 {
			return nil, fmt.Errorf("%w: configuration key %s is not NUL-terminated", ErrMalformed, Quote(string(b)))
		}
		k := string(b[:i])
		if n := len(keys); n > 0 && keys[n-1] >= k {
			return nil, fmt.Errorf("%w: configuration key %s does not sort after %s", ErrMalformed, Quote(k), Quote(keys[n-1]))
		}
		keys = append(keys, k)
		b = b[i+1:]
	}
	return keys, nil
}

// CheckConfigKey reports whether key can name a setting of a plugin's
// configuration: any string without a NUL byte, which ends each name in
// the result of config_keys.
func CheckConfigKey(key string) error {
	if strings.IndexByte(key, 0) >= 0 {
		return fmt.Errorf("configuration key %s holds a NUL byte", Quote(key))
	}
	return nil
}
