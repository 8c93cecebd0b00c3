package artifact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// Decode parses and validates a manifest as strictly as the Rust crate's
// serde parser (upstream spec §9.2): field names match exactly (no case
// folding), every field appears exactly once at both levels and no other
// does, no value is null, numbers are unsigned integers, and nothing but
// white space follows the object. encoding/json's Unmarshal accepts all of
// these, so the manifest is read token by token.
func Decode(b []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m Manifest
	err := decodeObject(dec, []member{
		{"schema_version", unsigned(&m.SchemaVersion)},
		{"backend", str(&m.Backend)},
		{"backend_version", str(&m.BackendVersion)},
		{"cursor_hex", str(&m.CursorHex)},
		{"created_at_unix", unsigned(&m.CreatedAtUnix)},
		{"files", files(&m.Files)},
	})
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("trailing data after the object")
		}
	}
	if err != nil {
		return nil, invalidf("malformed manifest: %v", err)
	}
	if m.SchemaVersion != SchemaVersion {
		return nil, invalidf("unsupported artifact schema_version %d (this build supports %d)", m.SchemaVersion, SchemaVersion)
	}
	for _, f := range m.Files {
		if err := checkPath(f.Path); err != nil {
			return nil, err
		}
	}
	if _, err := m.Cursor(); err != nil {
		return nil, err
	}
	return &m, nil
}

// member is a required field of a JSON object and how to read its value.
type member struct {
	name string
	read func(dec *json.Decoder) error
}

// decodeObject reads the JSON object at dec's position, which must hold
// each of members exactly once and nothing else.
func decodeObject(dec *json.Decoder, members []member) error {
	if err := expectDelim(dec, '{'); err != nil {
		return err
	}
	seen := make([]bool, len(members))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		name, _ := tok.(string) // an object key is always a string
		i := slices.IndexFunc(members, func(m member) bool { return m.name == name })
		switch {
		case i < 0:
			return fmt.Errorf("unknown field %q", name)
		case seen[i]:
			return fmt.Errorf("duplicate field %q", name)
		}
		seen[i] = true
		if err := members[i].read(dec); err != nil {
			return fmt.Errorf("field %q: %w", name, err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return err
	}
	for i, m := range members {
		if !seen[i] {
			return fmt.Errorf("missing field %q", m.name)
		}
	}
	return nil
}

func expectDelim(dec *json.Decoder, d json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != d {
		return fmt.Errorf("expected %v, found %v", d, tok)
	}
	return nil
}

func str(dst *string) func(*json.Decoder) error {
	return func(dec *json.Decoder) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		s, ok := tok.(string)
		if !ok {
			return fmt.Errorf("expected a string, found %v", tok)
		}
		*dst = s
		return nil
	}
}

// unsigned reads a non-negative integer written without a fraction or an
// exponent (serde refuses -1, 1.0 and 1e3 for an unsigned field) that fits
// in T.
func unsigned[T int | int64](dst *T) func(*json.Decoder) error {
	return func(dec *json.Decoder) error {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return fmt.Errorf("expected an unsigned integer, found %v", tok)
		}
		n, err := strconv.ParseUint(string(num), 10, 64)
		if err != nil || n > math.MaxInt64 || uint64(T(n)) != n {
			return fmt.Errorf("expected an unsigned integer, found %s", num)
		}
		*dst = T(n)
		return nil
	}
}

func files(dst *[]File) func(*json.Decoder) error {
	return func(dec *json.Decoder) error {
		if err := expectDelim(dec, '['); err != nil {
			return err
		}
		fs := []File{}
		for dec.More() {
			var f File
			if err := decodeObject(dec, []member{
				{"path", str(&f.Path)},
				{"size", unsigned(&f.Size)},
				{"blake3", str(&f.Blake3)},
			}); err != nil {
				return fmt.Errorf("files[%d]: %w", len(fs), err)
			}
			fs = append(fs, f)
		}
		if _, err := dec.Token(); err != nil { // the closing bracket
			return err
		}
		*dst = fs
		return nil
	}
}
