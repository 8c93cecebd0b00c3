package main

import (
	"bytes"
	"fmt"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

// last is what the instance knows about the outputs of its last call, kept
// across calls (instances are reused) to skip templates a batch cannot
// change.
var last struct {
	cfg    *config
	watch  string
	cursor uint64  // the cursor the call brought the watch to
	deps   []*deps // per template of cfg
}

// out is the render buffer of text/template, reused across templates and
// calls; a plan renders into its template's own (listing.go).
var out []byte

// render renders the templates a call can change: all of them on a full
// render, which then removes the files no template writes (prune.go), those
// whose keys a batch changed otherwise.
func render(h *sdk.Host, b *sdk.Batch) error {
	cfg, err := loadConfig(h)
	if err != nil {
		return err
	}
	skip := skippable(cfg, b)
	last.cfg = nil // until this call succeeds
	v := newView(h, cfg.separator)
	active = v
	defer func() { active = nil }()
	read := make([]*deps, len(cfg.templates))
	for i, t := range cfg.templates {
		if skip != nil && skip[i] {
			read[i] = last.deps[i]
			continue
		}
		v.deps = &deps{}
		data := &Data{v: v, watch: b.Watch, revision: b.Cursor.Revision, prefix: t.prefix}
		rendered, err := t.execute(data, b, skip != nil)
		if err != nil {
			return err
		}
		read[i] = v.deps
		changed, err := h.WriteFile(t.output, t.path, rendered, t.mode)
		if err != nil {
			return fmt.Errorf("template %q: %w", t.name, err)
		}
		if changed && t.hook != "" {
			if err := h.RequestHook(t.hook); err != nil {
				return fmt.Errorf("template %q: %w", t.name, err)
			}
		}
	}
	if b.Render {
		if err := prune(h, cfg); err != nil {
			return err
		}
	}
	last.cfg, last.watch, last.cursor, last.deps = cfg, b.Watch, b.Cursor.Revision, read
	return nil
}

// skippable tells, for each template, whether an incremental batch leaves
// its output as it is: the template read none of the changed keys when this
// instance last rendered it, and the outputs of that call were committed.
// nil means render everything.
//
// The host moves a watch's cursor only after committing a call's outputs,
// and delivers the next batch from the cursor on, so a batch that starts
// after the last call's cursor proves that call committed; a batch that
// starts at or before it is a retry, after which everything is rendered.
func skippable(cfg *config, b *sdk.Batch) []bool {
	if b.Render || len(b.Updates) == 0 || last.cfg != cfg || last.watch != b.Watch {
		return nil
	}
	for _, u := range b.Updates {
		if u.Revision <= last.cursor {
			return nil
		}
	}
	skip := make([]bool, len(cfg.templates))
	for i, d := range last.deps {
		skip[i] = true
		for _, u := range b.Updates {
			if d.touched(u.Key) {
				skip[i] = false
				break
			}
		}
	}
	return skip
}

// execute renders t: with its plan when it has one (patching its last
// output with the batch when patch says that output is the view before the
// batch), into the shared buffer with text/template otherwise.
func (t *tmpl) execute(data *Data, b *sdk.Batch, patch bool) ([]byte, error) {
	if t.plan != nil {
		return t.runPlan(data, b, patch)
	}
	w := bytes.NewBuffer(out[:0])
	err := t.t.Execute(w, data)
	out = w.Bytes()
	return out, err
}
