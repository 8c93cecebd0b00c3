package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"text/template"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

// Data is what the template sees.
type Data struct {
	Watch    string
	Revision uint64 // the cursor revision of this render
	// Entries are the loaded keys in ascending key order.
	Entries []Entry
	// Values maps every loaded key to its value.
	Values map[string]string
}

// Entry is one loaded key.
type Entry struct {
	Key      string
	Value    string
	Revision uint64
}

var funcs = template.FuncMap{
	"trimPrefix": func(prefix, s string) string { return strings.TrimPrefix(s, prefix) },
	"hasPrefix":  func(prefix, s string) bool { return strings.HasPrefix(s, prefix) },
	"replace":    func(old, new, s string) string { return strings.ReplaceAll(s, old, new) },
	"split":      func(sep, s string) []string { return strings.Split(s, sep) },
	"join":       func(sep string, s []string) string { return strings.Join(s, sep) },
	"lower":      strings.ToLower,
	"upper":      strings.ToUpper,
	"json": func(s string) (any, error) {
		var v any
		err := json.Unmarshal([]byte(s), &v)
		return v, err
	},
}

// parsed caches the template of the last configuration seen, so an instance
// parses it once rather than on every batch.
var parsed struct {
	text string
	tmpl *template.Template
}

func parse(text string) (*template.Template, error) {
	if parsed.tmpl != nil && parsed.text == text {
		return parsed.tmpl, nil
	}
	t, err := template.New("config").Option("missingkey=error").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	parsed.text, parsed.tmpl = text, t
	return t, nil
}

type config struct {
	text, prefix, output, path, hook string
	mode                             fs.FileMode
}

func readConfig(h *sdk.Host) (config, error) {
	c := config{output: "out", path: "rendered", hook: "reload"}
	var ok bool
	if c.text, ok = h.Config("template"); !ok {
		return c, errors.New("template: config has no template")
	}
	c.prefix, _ = h.Config("prefix")
	for key, dst := range map[string]*string{"output": &c.output, "path": &c.path, "hook": &c.hook} {
		if v, ok := h.Config(key); ok {
			*dst = v
		}
	}
	if v, ok := h.Config("mode"); ok {
		m, err := strconv.ParseUint(v, 8, 32)
		if err != nil || m&^0o777 != 0 {
			return c, fmt.Errorf("template: config mode %q is not an octal permission", v)
		}
		c.mode = fs.FileMode(m)
	}
	return c, nil
}

// render rebuilds the file from the view; a batch and a full render are the
// same work for a template.
func render(h *sdk.Host, b *sdk.Batch) error {
	c, err := readConfig(h)
	if err != nil {
		return err
	}
	t, err := parse(c.text)
	if err != nil {
		return err
	}
	data := Data{Watch: b.Watch, Revision: b.Cursor.Revision, Values: map[string]string{}}
	for e, err := range h.Scan(c.prefix) {
		if err != nil {
			return err
		}
		data.Entries = append(data.Entries, Entry{Key: e.Key, Value: string(e.Value), Revision: e.Revision})
		data.Values[e.Key] = string(e.Value)
	}
	var out bytes.Buffer
	if err := t.Execute(&out, data); err != nil {
		return fmt.Errorf("template: %w", err)
	}
	changed, err := h.WriteFile(c.output, c.path, out.Bytes(), c.mode)
	if err != nil || !changed || c.hook == "" {
		return err
	}
	return h.RequestHook(c.hook)
}
