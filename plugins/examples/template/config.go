package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"text/template"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

// configKeys are the plugin-level settings, in the order they make up a
// configuration's signature.
var configKeys = []string{"template", "templates", "name", "prefix", "output", "path", "mode", "hook", "separator"}

// config is a parsed plugin configuration.
type config struct {
	templates []*tmpl
	separator string // of ls, tree and byKey
}

// tmpl is one template and where its output goes.
type tmpl struct {
	t      *template.Template
	plan   plan   // nil: run t
	name   string // in error messages
	prefix string // what .Entries and .Values hold
	output string
	path   string
	mode   fs.FileMode
	hook   string // "" for none

	last, spare listing // a plan's output at the last call, and the buffers of the next (listing.go)
}

// templateSpec is one element of the templates setting.
type templateSpec struct {
	Source         *string `json:"source"`
	Destination    string  `json:"destination"`
	Name           string  `json:"name"`
	Perms          any     `json:"perms"` // a string; a number is refused
	Prefix         *string `json:"prefix"`
	Output         *string `json:"output"`
	Hook           *string `json:"hook"`
	LeftDelimiter  string  `json:"left_delimiter"`
	RightDelimiter string  `json:"right_delimiter"`
}

// parsed caches the configuration last seen, so an instance parses its
// templates once rather than on every batch.
var parsed struct {
	signature string
	cfg       *config
}

// plugin is the template plugin: batches and renders rebuild the outputs
// (render), and its configuration is parsed when the host loads it.
type plugin struct{ sdk.RenderFunc }

var _ sdk.Configurer = plugin{}

// Configure refuses a key the plugin does not read, and parses the
// configuration, so that the host refuses a module with a misspelt setting
// or templates that do not parse; calls reuse the parse (loadConfig's
// cache). A module loaded with no configuration at all (slipagent plugin
// compile or inspect of the bare module) is not refused: a call refuses it.
func (plugin) Configure(h *sdk.Host) error {
	if err := sdk.CheckConfigKeys(h, configKeys...); err != nil {
		return fmt.Errorf("template: config: %w", err)
	}
	for _, k := range configKeys {
		if _, ok := h.Config(k); ok {
			_, err := loadConfig(h)
			return err
		}
	}
	return nil
}

// loadConfig returns the plugin's parsed configuration.
func loadConfig(h *sdk.Host) (*config, error) {
	raw := map[string]string{}
	var sig strings.Builder
	for _, k := range configKeys {
		v, ok := h.Config(k)
		if ok {
			raw[k] = v
			sig.WriteString(k)
		}
		sig.WriteByte(0)
		sig.WriteString(v)
		sig.WriteByte(0)
	}
	if parsed.cfg != nil && parsed.signature == sig.String() {
		return parsed.cfg, nil
	}
	cfg, err := parseConfig(raw)
	var perr parseError
	switch {
	case errors.As(err, &perr):
		return nil, err // "template: NAME:LINE: ..." says it all
	case err != nil:
		return nil, fmt.Errorf("template: config: %w", err)
	}
	parsed.signature, parsed.cfg = sig.String(), cfg
	return cfg, nil
}

// parseConfig turns the plugin's settings into templates.
func parseConfig(raw map[string]string) (*config, error) {
	def := tmpl{output: "out", hook: "reload", prefix: raw["prefix"]}
	for key, dst := range map[string]*string{"output": &def.output, "hook": &def.hook} {
		if v, ok := raw[key]; ok {
			*dst = v
		}
	}
	cfg := &config{separator: "/"}
	if v, ok := raw["separator"]; ok {
		if v == "" {
			return nil, errors.New(`separator is empty`)
		}
		cfg.separator = v
	}
	text, single := raw["template"]
	list, multi := raw["templates"]
	switch {
	case single && multi:
		return nil, errors.New("has both template and templates: move the template into the templates list")
	case single:
		t := def
		t.path = "rendered"
		if v, ok := raw["path"]; ok {
			t.path = v
		}
		var err error
		if t.mode, err = parseMode("mode", raw["mode"]); err != nil {
			return nil, err
		}
		t.name = raw["name"]
		if t.name == "" {
			t.name = t.path
		}
		if err := t.parse(text, "", ""); err != nil {
			return nil, err
		}
		cfg.templates = []*tmpl{&t}
	case multi:
		for _, key := range []string{"path", "mode", "name"} {
			if _, ok := raw[key]; ok {
				return nil, fmt.Errorf("%s is a setting of each element of templates (as destination, perms, name)", key)
			}
		}
		var err error
		if cfg.templates, err = parseTemplates(list, def); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("has no template (or templates)")
	}
	return cfg, nil
}

// parseTemplates parses the templates setting: a list of objects.
func parseTemplates(list string, def tmpl) ([]*tmpl, error) {
	var specs []templateSpec
	dec := json.NewDecoder(strings.NewReader(list))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&specs); err != nil {
		return nil, fmt.Errorf("templates: %w (want a list of objects such as { source = file(\"a.tmpl\"), destination = \"a.conf\", perms = \"0644\" })", err)
	}
	if len(specs) == 0 {
		return nil, errors.New("templates is empty")
	}
	seen := map[string]string{}
	out := make([]*tmpl, len(specs))
	for i, s := range specs {
		t := def
		t.path, t.name = s.Destination, s.Name
		if t.name == "" {
			t.name = t.path
		}
		for dst, v := range map[*string]*string{&t.prefix: s.Prefix, &t.output: s.Output, &t.hook: s.Hook} {
			if v != nil {
				*dst = *v
			}
		}
		where := fmt.Sprintf("templates[%d]", i)
		switch {
		case s.Destination == "":
			return nil, fmt.Errorf("%s has no destination", where)
		case s.Source == nil:
			return nil, fmt.Errorf("%s (%s) has no source: set source = file(\"%s.tmpl\") or the template text", where, t.path, t.path)
		}
		if err := sdk.CheckPath(t.path); err != nil {
			return nil, fmt.Errorf("%s: destination %q: %w", where, t.path, err)
		}
		if other, dup := seen[t.output+"\x00"+t.path]; dup {
			return nil, fmt.Errorf("%s and %s both write %q in output %q", other, where, t.path, t.output)
		}
		seen[t.output+"\x00"+t.path] = where
		perms, ok := s.Perms.(string)
		if !ok && s.Perms != nil {
			return nil, fmt.Errorf("%s: perms %v is not a string: write it as \"0%v\" (HCL reads 0644 as the number 644)", where, s.Perms, s.Perms)
		}
		var err error
		if t.mode, err = parseMode("perms", perms); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := t.parse(*s.Source, s.LeftDelimiter, s.RightDelimiter); err != nil {
			return nil, err
		}
		out[i] = &t
	}
	return out, nil
}

// parseError is a template that does not parse.
type parseError struct{ error }

func (e parseError) Unwrap() error { return e.error }

// parse parses the template text, named by t.name so that errors read
// "template: NAME:LINE: ...".
func (t *tmpl) parse(text, left, right string) error {
	var err error
	t.t, err = template.New(t.name).Option("missingkey=error").Delims(left, right).Funcs(funcs).Parse(text)
	if err != nil {
		return parseError{err}
	}
	t.plan = compile(t.t.Tree)
	return nil
}

// parseMode parses the octal permission of a setting ("" = the output's
// default).
func parseMode(setting, s string) (fs.FileMode, error) {
	if s == "" {
		return 0, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m&^0o777 != 0 {
		return 0, fmt.Errorf("%s %q is not an octal permission such as \"0644\"", setting, s)
	}
	return fs.FileMode(m), nil
}
