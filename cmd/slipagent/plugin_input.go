package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// jsonBatch is the -batch file of plugin run (its usage shows an example).
// Its updates are decoded one by one, so that errors name the update.
type jsonBatch struct {
	Cursor  *uint64           `json:"cursor"`
	Updates []json.RawMessage `json:"updates"`
}

// jsonRecord is one update of a batch or one entry of a view.
type jsonRecord struct {
	Op          string  `json:"op"` // put (default), delete, purge; batches only
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	ValueBase64 *string `json:"value_base64"`
	Revision    uint64  `json:"revision"`
}

func (r jsonRecord) value() ([]byte, error) {
	switch {
	case r.Value != nil && r.ValueBase64 != nil:
		return nil, errors.New("has both value and value_base64")
	case r.Value != nil:
		return []byte(*r.Value), nil
	case r.ValueBase64 != nil:
		v, err := base64.StdEncoding.DecodeString(*r.ValueBase64)
		var bad base64.CorruptInputError
		if errors.As(err, &bad) {
			return nil, fmt.Errorf("value_base64 is not standard base64: bad data at character %d", int64(bad))
		}
		return v, err
	}
	return []byte{}, nil
}

// readRecord decodes record i of the input file path, an "update" or an
// "entry" (kind), and checks its key. Its errors name the file, the record
// and its key.
func readRecord(path, kind string, i int, raw json.RawMessage) (jsonRecord, error) {
	var r jsonRecord
	err := decodeStrict(raw, &r) // on a type error, the other fields are still decoded
	if err != nil {
		err = describeJSON(err, "the "+kind)
	} else {
		err = checkKey(r.Key)
	}
	if err != nil {
		return r, recordError(path, kind, i, r.Key, err)
	}
	return r, nil
}

// checkKey refuses a key the store would refuse, as kv does.
func checkKey(key string) error {
	switch {
	case key == "":
		return errors.New("has no key")
	case !kvcore.ValidKey(key):
		return fmt.Errorf("invalid key: %s", keySyntax)
	}
	return nil
}

// recordError names record i (of kind "update" or "entry", with key when
// known) of the input file path in err.
func recordError(path, kind string, i int, key string, err error) error {
	if key == "" {
		return fmt.Errorf("%s: %s %d: %w", path, kind, i, err)
	}
	return fmt.Errorf("%s: %s %d (key %q): %w", path, kind, i, key, err)
}

// revisionVersion is the version NATS sends with a revision (none for 0).
func revisionVersion(rev uint64) []byte {
	if rev == 0 {
		return nil
	}
	return kvcore.RevisionVersion(rev).Bytes()
}

// readCallInput reads the batch and view files of plugin run; either path
// may be empty (an empty batch, an empty view).
func readCallInput(batchPath, viewPath string) (host.Batch, *host.MemView, error) {
	var b host.Batch
	view := host.NewMemView()
	if batchPath != "" {
		var err error
		if b, err = readBatch(batchPath); err != nil {
			return b, nil, err
		}
	}
	if viewPath != "" {
		entries, err := readView(viewPath)
		if err != nil {
			return b, nil, err
		}
		for _, e := range entries {
			view.Put(e)
		}
	}
	return b, view, nil
}

// readBatch reads a batch file.
func readBatch(path string) (host.Batch, error) {
	var b host.Batch
	data, err := os.ReadFile(path)
	if err != nil {
		return b, err
	}
	var jb jsonBatch
	if err := decodeStrict(data, &jb); err != nil {
		return b, fmt.Errorf("%s: %w", path, describeJSON(err, "the file"))
	}
	for i, raw := range jb.Updates {
		r, err := readRecord(path, "update", i, raw)
		if err != nil {
			return b, err
		}
		u := host.Update{Key: r.Key, Revision: r.Revision, Version: revisionVersion(r.Revision)}
		switch r.Op {
		case "put", "":
			u.Op = host.OpPut
			if u.Value, err = r.value(); err != nil {
				return b, recordError(path, "update", i, r.Key, err)
			}
		case "delete":
			u.Op = host.OpDelete
		case "purge":
			u.Op = host.OpPurge
		default:
			return b, recordError(path, "update", i, r.Key, fmt.Errorf("op %q is not put, delete or purge", r.Op))
		}
		b.Updates = append(b.Updates, u)
		b.Cursor.Revision = max(b.Cursor.Revision, r.Revision)
	}
	if jb.Cursor != nil {
		b.Cursor.Revision = *jb.Cursor
	}
	b.Cursor.Version = revisionVersion(b.Cursor.Revision)
	return b, nil
}

// viewForms says what a view file holds, for errors.
const viewForms = "want a list of entries or an object of key to string value"

// readView reads a view file: a list of entries or an object of key to
// string value.
func readView(path string) ([]host.Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := bytes.TrimSpace(data)
	switch {
	case len(t) == 0:
		return nil, fmt.Errorf("%s: the file is empty, %s", path, viewForms)
	case t[0] == '{':
		return readViewObject(path, data)
	case t[0] != '[':
		return nil, fmt.Errorf("%s: the file is not JSON starting with [ or {, %s", path, viewForms)
	}
	var list []json.RawMessage
	if err := decodeStrict(data, &list); err != nil {
		return nil, fmt.Errorf("%s: %w", path, describeJSON(err, "the file"))
	}
	var entries []host.Entry
	for i, raw := range list {
		r, err := readRecord(path, "entry", i, raw)
		if err != nil {
			return nil, err
		}
		if r.Op != "" {
			return nil, recordError(path, "entry", i, r.Key, errors.New("a view entry has no op"))
		}
		v, err := r.value()
		if err != nil {
			return nil, recordError(path, "entry", i, r.Key, err)
		}
		entries = append(entries, host.Entry{Key: r.Key, Value: v, Revision: r.Revision, Version: revisionVersion(r.Revision)})
	}
	return entries, nil
}

// readViewObject reads a view file holding an object of key to string
// value, in order, so that errors name the entry.
func readViewObject(path string, data []byte) ([]host.Entry, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	fail := func(err error) ([]host.Entry, error) {
		return nil, fmt.Errorf("%s: %w", path, atPosition(data, err))
	}
	if _, err := dec.Token(); err != nil { // {
		return fail(err)
	}
	var entries []host.Entry
	for i := 0; dec.More(); i++ {
		tok, err := dec.Token()
		if err != nil {
			return fail(err)
		}
		key, _ := tok.(string) // an object's keys are strings
		var v string
		if err := dec.Decode(&v); err != nil {
			return nil, recordError(path, "entry", i, key, describeJSON(atPosition(data, err), "value"))
		}
		if err := checkKey(key); err != nil {
			return nil, recordError(path, "entry", i, key, err)
		}
		entries = append(entries, host.Entry{Key: key, Value: []byte(v)})
	}
	if _, err := dec.Token(); err != nil { // }
		return fail(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail(errors.New("data after the JSON value"))
	}
	return entries, nil
}

// decodeStrict decodes one JSON value, refusing unknown fields (a misspelt
// "value" would otherwise be an empty value) and data after it.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return atPosition(data, err)
	}
	if dec.More() {
		return errors.New("data after the JSON value")
	}
	return nil
}

// atPosition says where in data a JSON syntax error is, as line:column
// (in bytes), or that data ends early (a truncated file). A decoder's
// offsets count from where its last read began, so the place is found by
// scanning the whole of data, which meets the same first error.
func atPosition(data []byte, err error) error {
	var se *json.SyntaxError
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("the JSON ends before its value does (a truncated file?): %w", err)
	case !errors.As(err, &se):
		return err
	}
	var whole *json.SyntaxError
	if !errors.As(json.Unmarshal(data, new(any)), &whole) || whole.Offset < 1 {
		return err
	}
	before := data[:min(whole.Offset-1, int64(len(data)))] // Offset counts the offending byte
	line := 1 + bytes.Count(before, []byte("\n"))
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// describeJSON rewrites a JSON value of the wrong type in the input files'
// terms: encoding/json's message names Go types (main.jsonRecord, uint64).
// whole names the decoded value itself ("the file", "the entry").
func describeJSON(err error, whole string) error {
	var te *json.UnmarshalTypeError
	if !errors.As(err, &te) {
		return err
	}
	what := whole
	if te.Field != "" {
		what = te.Field
	}
	return fmt.Errorf("%s is a JSON %s, want %s", what, te.Value, jsonWant(te.Type))
}

// jsonWant names the JSON value a Go type decodes from.
func jsonWant(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Pointer:
		return jsonWant(t.Elem())
	case reflect.String:
		return "a string"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number of 0 or more"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Struct, reflect.Map:
		return "an object"
	case reflect.Bool:
		return "true or false"
	}
	return t.String()
}
