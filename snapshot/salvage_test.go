package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Salvage cuts a refused file back to the records before its damage, byte
// for byte, whatever the damage after a valid header is.
func TestSalvageCutsAtTheFirstBadRecord(t *testing.T) {
	kept := image(put("a", "1", 1), cur(1), put("b", "2", 2), del("a", 3), cur(3))
	last := image(put("c", "3", 4), cur(4))[headerLen:]
	hole := make([]byte, 4096)
	for _, tc := range []struct {
		name string
		tail []byte // what follows the kept records
	}{
		{"zero hole at a record boundary, then data", append(append([]byte{}, hole...), last...)},
		{"zero hole at a record boundary, then garbage", append(append([]byte{}, hole...), 0x5a, 0x17, 0x01, 0x01, 0x00, 'x', 0x01)},
		{"zero hole inside a record, then a record", func() []byte {
			torn := append([]byte{}, last...)
			clear(torn[8:14]) // the PUT's key and value-length bytes
			return append(torn, image(cur(5))[headerLen:]...)
		}()},
		{"unknown record type with data after", append([]byte{0xde, 0xad, 0xbe, 0xef, 0x7f}, last...)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := writeTemp(t, append(append([]byte{}, kept...), tc.tail...))
			if _, err := Load(p); err == nil {
				t.Fatal("the damaged file loads: the test damages it wrongly")
			}
			rep, err := Salvage(p)
			if err != nil {
				t.Fatal(err)
			}
			if off, bad := rep.BadOffset(); !bad || off != int64(len(kept)) {
				t.Errorf("cut at %d (%v), want %d", off, bad, len(kept))
			}
			if rep.Puts != 2 || rep.Deletes != 1 || rep.Cursors != 2 {
				t.Errorf("report counts %d put %d delete %d cursor, want the kept 2/1/2", rep.Puts, rep.Deletes, rep.Cursors)
			}
			assertFile(t, p, kept) // only cut: the kept bytes are the file's own
			s := mustLoad(t, p)
			if got := kvs(s.Entries); !equalStrings(got, []string{"b=2@rev 2"}) || s.Cursor != cur(3) {
				t.Errorf("after the cut: %v at %v", got, s.Cursor)
			}
		})
	}
}

// A refused file whose first record is bad is cut to the bare header, which
// loads as an empty fold.
func TestSalvageDamagedFirstRecordLeavesTheHeader(t *testing.T) {
	b := image(put("a", "1", 1), cur(1))
	b[headerLen] ^= 0xff // CRC of the first record, with a record after it
	p := writeTemp(t, b)
	if _, err := Salvage(p); err != nil {
		t.Fatal(err)
	}
	assertFile(t, p, header[:])
	if s := mustLoad(t, p); s != nil {
		t.Errorf("the bare header loads as %+v", s)
	}
}

func TestSalvageLeavesLoadableAndUnsalvageableFilesAlone(t *testing.T) {
	clean := image(put("a", "1", 1), cur(1), []byte{0, 0, 0}) // torn (zero slack): loading handles it
	p := writeTemp(t, clean)
	if rep, err := Salvage(p); err != nil || rep.Err != nil {
		t.Fatalf("Salvage of a loadable file: %v %v", rep.Err, err)
	}
	assertFile(t, p, clean)

	for _, bad := range [][]byte{[]byte("PGS"), []byte("XXXX\x02\x00garbage"), []byte("PGSS\x01\x00")} {
		p := writeTemp(t, bad)
		_, err := Salvage(p)
		var fe *FormatError
		if !errors.Is(err, ErrUnsalvageable) || !errors.As(err, &fe) {
			t.Errorf("Salvage of %q: %v, want ErrUnsalvageable with the refusal", bad, err)
		}
		assertFile(t, p, bad)
	}

	if _, err := Salvage(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Salvage of a missing file: %v", err)
	}
}

func TestSalvageAndQuarantineRespectTheLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fold.snap")
	l, err := Open(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Salvage(p); !errors.Is(err, ErrLocked) {
		t.Errorf("Salvage of an open log: %v, want ErrLocked", err)
	}
	if _, err := Quarantine(p); !errors.Is(err, ErrLocked) {
		t.Errorf("Quarantine of an open log: %v, want ErrLocked", err)
	}
	l.Close()

	dst, err := Quarantine(p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dst, p+".quarantined-") {
		t.Errorf("moved to %s", dst)
	}
	if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the log is still in place (%v)", err)
	}
	assertFile(t, dst, header[:])
}
