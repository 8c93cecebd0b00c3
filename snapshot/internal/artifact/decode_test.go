package artifact

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const strictGood = `{"schema_version":1,"backend":"append-log","backend_version":"2","cursor_hex":"","created_at_unix":0,` +
	`"files":[{"path":"data/fold.snap","size":6,"blake3":"x"}]}`

// Manifests that the Rust crate's serde parser refuses and encoding/json
// accepted.
func TestDecodeIsAsStrictAsSerde(t *testing.T) {
	edit := func(old, new string) string {
		if !strings.Contains(strictGood, old) {
			t.Fatalf("%q not in the good manifest", old)
		}
		return strings.Replace(strictGood, old, new, 1)
	}
	for name, in := range map[string]string{
		"case-folded field":         edit(`"schema_version"`, `"SCHEMA_VERSION"`),
		"case-folded file field":    edit(`"path"`, `"PATH"`),
		"duplicate field":           edit(`"backend":"append-log"`, `"backend":"rocksdb","backend":"append-log"`),
		"duplicate file field":      edit(`"size":6`, `"size":6,"size":6`),
		"null files":                edit(`[{"path":"data/fold.snap","size":6,"blake3":"x"}]`, `null`),
		"null string":               edit(`"cursor_hex":""`, `"cursor_hex":null`),
		"null number":               edit(`"created_at_unix":0`, `"created_at_unix":null`),
		"missing fields":            `{"schema_version":1}`,
		"missing file field":        edit(`,"blake3":"x"`, ``),
		"negative size":             edit(`"size":6`, `"size":-1`),
		"fractional size":           edit(`"size":6`, `"size":6.0`),
		"exponent size":             edit(`"size":6`, `"size":6e0`),
		"size as a string":          edit(`"size":6`, `"size":"6"`),
		"size beyond int64":         edit(`"size":6`, `"size":18446744073709551615`),
		"negative created_at":       edit(`"created_at_unix":0`, `"created_at_unix":-1`),
		"number as a string":        edit(`"backend_version":"2"`, `"backend_version":2`),
		"object where string":       edit(`"backend":"append-log"`, `"backend":{}`),
		"files not an array":        edit(`[{"path":"data/fold.snap","size":6,"blake3":"x"}]`, `{}`),
		"file not an object":        edit(`{"path":"data/fold.snap","size":6,"blake3":"x"}`, `"data/fold.snap"`),
		"trailing object":           strictGood + `{}`,
		"trailing garbage":          strictGood + `x`,
		"not an object":             `[1]`,
		"empty input":               ``,
		"truncated":                 strictGood[:len(strictGood)-1],
		"unknown field":             edit(`"cursor_hex":""`, `"cursor_hex":"","extra":1`),
		"unknown file field":        edit(`"size":6`, `"size":6,"mode":7`),
		"case-folded unknown field": edit(`"backend_version"`, `"Backend_Version"`),
	} {
		if m, err := Decode([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Decode = %+v, %v; want ErrInvalid", name, m, err)
		}
	}
	for name, in := range map[string]string{
		"compact":                 strictGood,
		"white space around":      " \n" + strictGood + "\n\t ",
		"fields in another order": `{"files":[],"created_at_unix":7,"cursor_hex":"00","backend_version":"2","backend":"b","schema_version":1}`,
		"escaped field name":      edit(`"backend"`, `"back\u0065nd"`),
	} {
		if _, err := Decode([]byte(in)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// The empty files array decodes to an empty, non-nil list (encoded as []).
func TestDecodeEmptyFiles(t *testing.T) {
	m, err := Decode([]byte(`{"schema_version":1,"backend":"b","backend_version":"2","cursor_hex":"","created_at_unix":0,"files":[]}`))
	if err != nil || m.Files == nil || len(m.Files) != 0 {
		t.Fatalf("%+v, %v", m, err)
	}
}

// Whatever the strict decoder accepts, encoding/json reads the same way,
// and it survives an Encode/Decode round trip unchanged. Seeds are in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid: %v", err)
			}
			return
		}
		var lax Manifest
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&lax); err != nil {
			t.Fatalf("strict decoder accepted what encoding/json refuses (%v): %q", err, b)
		}
		if !reflect.DeepEqual(&lax, m) {
			t.Fatalf("strict %+v, encoding/json %+v for %q", m, lax, b)
		}
		enc, err := m.Encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := Decode(enc)
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip of %+v: %+v, %v", m, again, err)
		}
	})
}
