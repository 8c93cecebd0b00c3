package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// jsonBatch is the -batch file of plugin run (its usage shows an example).
type jsonBatch struct {
	Cursor  *uint64      `json:"cursor"`
	Updates []jsonRecord `json:"updates"`
}

// jsonRecord is one update of a batch or one entry of a view.
type jsonRecord struct {
	Op          string  `json:"op"` // put (default), delete, purge; batches only
	Key         string  `json:"key"`
	Value       *string `json:"value"`
	ValueBase64 []byte  `json:"value_base64"`
	Revision    uint64  `json:"revision"`
}

func (r jsonRecord) value() ([]byte, error) {
	switch {
	case r.Value != nil && r.ValueBase64 != nil:
		return nil, fmt.Errorf("key %q has both value and value_base64", r.Key)
	case r.Value != nil:
		return []byte(*r.Value), nil
	case r.ValueBase64 != nil:
		return r.ValueBase64, nil
	}
	return []byte{}, nil
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
		var jb jsonBatch
		if err := decodeJSONFile(batchPath, &jb); err != nil {
			return b, nil, err
		}
		for i, r := range jb.Updates {
			u := host.Update{Key: r.Key, Revision: r.Revision, Version: revisionVersion(r.Revision)}
			switch r.Op {
			case "put", "":
				u.Op = host.OpPut
				v, err := r.value()
				if err != nil {
					return b, nil, fmt.Errorf("%s: update %d: %w", batchPath, i, err)
				}
				u.Value = v
			case "delete":
				u.Op = host.OpDelete
			case "purge":
				u.Op = host.OpPurge
			default:
				return b, nil, fmt.Errorf("%s: update %d: op %q is not put, delete or purge", batchPath, i, r.Op)
			}
			if r.Key == "" {
				return b, nil, fmt.Errorf("%s: update %d has no key", batchPath, i)
			}
			b.Updates = append(b.Updates, u)
			b.Cursor.Revision = max(b.Cursor.Revision, r.Revision)
		}
		if jb.Cursor != nil {
			b.Cursor.Revision = *jb.Cursor
		}
		b.Cursor.Version = revisionVersion(b.Cursor.Revision)
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

// readView reads a view file: a list of entries or an object of key to
// string value.
func readView(path string) ([]host.Entry, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var entries []host.Entry
	if t := bytes.TrimSpace(data); len(t) > 0 && t[0] == '{' {
		var m map[string]string
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		for k, v := range m {
			entries = append(entries, host.Entry{Key: k, Value: []byte(v)})
		}
		return entries, nil
	}
	var list []jsonRecord
	if err := decodeJSON(path, data, &list); err != nil {
		return nil, err
	}
	for i, r := range list {
		if r.Op != "" {
			return nil, fmt.Errorf("%s: entry %d: a view entry has no op", path, i)
		}
		if r.Key == "" {
			return nil, fmt.Errorf("%s: entry %d has no key", path, i)
		}
		v, err := r.value()
		if err != nil {
			return nil, fmt.Errorf("%s: entry %d: %w", path, i, err)
		}
		entries = append(entries, host.Entry{Key: r.Key, Value: v, Revision: r.Revision, Version: revisionVersion(r.Revision)})
	}
	return entries, nil
}

func decodeJSONFile(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return decodeJSON(path, data, v)
}

// decodeJSON decodes one JSON value, refusing unknown fields (a misspelt
// "value" would otherwise be an empty value).
func decodeJSON(path string, data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if dec.More() {
		return fmt.Errorf("%s: %w", path, errors.New("data after the JSON value"))
	}
	return nil
}
