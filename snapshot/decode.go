package snapshot

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"strconv"
	"unicode/utf8"
)

// record is one decoded record. Its slices alias the decoded buffer.
type record struct {
	typ     byte
	off     int    // offset of the record's first byte (its CRC)
	payload []byte // for PUT: key_len..end, the arena's entry form
	key     []byte
	value   []byte
	token   []byte // PUT/DELETE version, CURSOR cursor
}

// decoder walks the records of a PGSS v2 image following the replay rules
// of the Rust crate exactly (upstream spec §6.4):
//
//   - a record that runs past the end of the file is a torn tail: decoding
//     stops and keeps what came before;
//   - a CRC failure is a torn tail too when fewer than 6 bytes (the shortest
//     record) follow it, and [ErrCorrupted] otherwise;
//   - zero bytes up to the end of the file are slack; zero bytes followed by
//     anything else are a hole and refused;
//   - an unknown type, an over-long version or cursor, or a key that is not
//     UTF-8 is refused with [ErrInvalidFormat] (even at the tail).
//
// Typical use: for d.next(&r) { ... }; then check d.err, d.torn and d.pos.
type decoder struct {
	buf  []byte
	pos  int          // start of the next record; where decoding stopped
	torn bool         // stopped at a torn tail (or zero slack) rather than clean EOF
	err  *FormatError // refused
}

// checkHeader validates the 6-byte header.
func checkHeader(buf []byte) *FormatError {
	if len(buf) < headerLen {
		return invalidf(0, "file too short")
	}
	if !bytes.Equal(buf[:4], header[:4]) {
		return invalidf(0, "bad magic "+strconv.Quote(string(buf[:4])))
	}
	if v := binary.LittleEndian.Uint16(buf[4:]); v != formatVersion {
		return invalidf(4, "unsupported version "+strconv.Itoa(int(v)))
	}
	return nil
}

func newDecoder(buf []byte) *decoder {
	d := &decoder{buf: buf, pos: headerLen}
	if err := checkHeader(buf); err != nil {
		d.err, d.pos = err, 0
	}
	return d
}

// next decodes the record at d.pos into r. It returns false at clean EOF,
// at a torn tail and on a refusal.
func (d *decoder) next(r *record) bool {
	if d.err != nil || d.torn || d.pos >= len(d.buf) {
		return false
	}
	pos, rest := d.pos, d.buf[d.pos:]
	if len(rest) < 5 {
		return d.stopTorn()
	}
	typ := rest[4]
	var full int
	switch typ {
	case recPut:
		if len(rest) < 7 {
			return d.stopTorn()
		}
		klen := int(binary.LittleEndian.Uint16(rest[5:]))
		if len(rest) < 11+klen {
			return d.stopTorn()
		}
		vlen := binary.LittleEndian.Uint32(rest[7+klen:])
		if vlen > MaxValueLen {
			return d.crcFailure(pos, 11+klen)
		}
		verAt := 11 + klen + int(vlen)
		if len(rest) < verAt+1 {
			return d.stopTorn()
		}
		verLen := int(rest[verAt])
		if verLen > maxTokenLen {
			return d.refuse(pos, "version of "+strconv.Itoa(verLen)+" bytes exceeds 10")
		}
		full = verAt + 1 + verLen
		if len(rest) < full {
			return d.stopTorn()
		}
		*r = record{typ: typ, off: pos, payload: rest[5:full], key: rest[7 : 7+klen],
			value: rest[11+klen : verAt], token: rest[verAt+1 : full]}
	case recDelete:
		if len(rest) < 7 {
			return d.stopTorn()
		}
		klen := int(binary.LittleEndian.Uint16(rest[5:]))
		if len(rest) < 8+klen {
			return d.stopTorn()
		}
		verLen := int(rest[7+klen])
		if verLen > maxTokenLen {
			return d.refuse(pos, "version of "+strconv.Itoa(verLen)+" bytes exceeds 10")
		}
		full = 8 + klen + verLen
		if len(rest) < full {
			return d.stopTorn()
		}
		*r = record{typ: typ, off: pos, key: rest[7 : 7+klen], token: rest[8+klen : full]}
	case recCursor:
		if len(rest) < 6 {
			return d.stopTorn()
		}
		curLen := int(rest[5])
		if curLen > maxTokenLen {
			return d.refuse(pos, "cursor of "+strconv.Itoa(curLen)+" bytes exceeds 10")
		}
		full = 6 + curLen
		if len(rest) < full {
			return d.stopTorn()
		}
		*r = record{typ: typ, off: pos, token: rest[6:full]}
	default:
		if typ == 0 && binary.LittleEndian.Uint32(rest) == 0 {
			if allZero(rest) {
				return d.stopTorn()
			}
			return d.refuse(pos, "mid-file zero hole before a non-zero suffix")
		}
		return d.refuse(pos, "unknown record type: 0x"+strconv.FormatUint(uint64(typ), 16))
	}
	if crc32.ChecksumIEEE(rest[4:full]) != binary.LittleEndian.Uint32(rest) {
		return d.crcFailure(pos, full)
	}
	if typ != recCursor && !utf8.Valid(r.key) {
		return d.refuse(pos, "key is not valid UTF-8")
	}
	d.pos = pos + full
	return true
}

func (d *decoder) stopTorn() bool {
	d.torn = true
	return false
}

func (d *decoder) refuse(pos int, reason string) bool {
	d.err = invalidf(pos, reason)
	return false
}

// crcFailure handles a record at pos that failed its CRC (or declared an
// impossible value length) after consumed bytes: a torn tail when less than
// a minimal record follows, corruption otherwise.
func (d *decoder) crcFailure(pos, consumed int) bool {
	if end := pos + consumed; end >= len(d.buf) || len(d.buf)-end < minRecordLen {
		return d.stopTorn()
	}
	d.err = &FormatError{Kind: KindCorrupted, Offset: int64(pos), Reason: "record fails its CRC with data after it"}
	return false
}

func allZero(b []byte) bool {
	for len(b) >= 8 {
		if binary.LittleEndian.Uint64(b) != 0 {
			return false
		}
		b = b[8:]
	}
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
