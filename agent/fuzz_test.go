package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParseConfig feeds arbitrary text to the configuration loader: it
// never panics, and a refusal is a *ConfigError whose every diagnostic has
// a message and renders.
func FuzzParseConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, src []byte) {
		cfg, err := Parse("fuzz.hcl", src)
		if err == nil {
			if cfg == nil {
				t.Fatal("no configuration and no error")
			}
			return
		}
		var ce *ConfigError
		if !errors.As(err, &ce) || len(ce.Diags) == 0 {
			t.Fatalf("refusal %v (%T) is not a *ConfigError with diagnostics", err, err)
		}
		for _, d := range ce.Diags {
			if d.Summary == "" && d.Detail == "" {
				t.Fatalf("a diagnostic without a message: %#v", d)
			}
		}
		var out bytes.Buffer
		if err := ce.Render(&out); err != nil || out.Len() == 0 {
			t.Fatalf("Render = %v, %d bytes", err, out.Len())
		}
	})
}

// FuzzHookJournal feeds arbitrary files to the hook journal's loader: a
// refusal is a *corruptError (the watch quarantines the file), and what it
// accepts is stored back and loaded to the same hooks and cursor.
func FuzzHookJournal(f *testing.F) {
	dir := f.TempDir()
	j := hookJournal{path: filepath.Join(dir, journalFile)}
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(j.path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		hooks, c, err := j.load()
		if err != nil {
			var ce *corruptError
			if !errors.As(err, &ce) || err.Error() == "" {
				t.Fatalf("refusal %v (%T) is not a *corruptError", err, err)
			}
			return
		}
		if err := j.store(hooks, c); err != nil {
			t.Fatal(err)
		}
		again, c2, err := j.load()
		if err != nil || !slices.Equal(hooks, again) || (len(hooks) > 0 && c2 != c) {
			t.Fatalf("stored %q %v, loaded %q %v %v", hooks, c, again, c2, err)
		}
	})
}

// FuzzWatchState feeds arbitrary files to the state.json loader: a refusal
// is a *corruptError, and what it accepts saves and loads to the same state.
func FuzzWatchState(f *testing.F) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, stateFile), b, 0o600); err != nil {
			t.Fatal(err)
		}
		st, err := loadState(dir)
		if err != nil {
			var ce *corruptError
			if !errors.As(err, &ce) || err.Error() == "" {
				t.Fatalf("refusal %v (%T) is not a *corruptError", err, err)
			}
			return
		}
		saved, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, stateFile), saved, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := loadState(dir)
		if err != nil || !reflect.DeepEqual(normalState(st), normalState(again)) {
			t.Fatalf("saved %+v, loaded %+v %v", st, again, err)
		}
	})
}

// normalState treats an empty prefix list as none, as JSON does.
func normalState(st watchState) watchState {
	if len(st.Prefixes) == 0 {
		st.Prefixes = nil
	}
	return st
}

// FuzzHeldRecord feeds arbitrary files to the guard's held.json loader: a
// refusal names the file and says how to lift the hold; what it accepts is
// reported in the watch's status.
func FuzzHeldRecord(f *testing.F) {
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, heldFile)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		w := &WatchConf{Name: "w", Bucket: "b"}
		g := &guard{watch: w.Name, dir: dir, status: newWatchStatus(w, nil, time.Now)}
		if err := g.load(); err != nil {
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "remove it") {
				t.Fatalf("refusal %v does not name %s", err, path)
			}
			return
		}
		if g.held == nil || g.status.get().Held == nil {
			t.Fatalf("an accepted hold is not in force: %+v", g.held)
		}
	})
}

// FuzzPlacementJournal feeds arbitrary files to the check-in-place journal's
// loader: a refusal is a *corruptError (the watch quarantines the file), and
// what it accepts names only paths inside the watch's outputs, which is all
// an undo may touch.
func FuzzPlacementJournal(f *testing.F) {
	dir := f.TempDir()
	path := filepath.Join(dir, placementFile)
	outputs := []*OutputConf{{Name: "files", Dir: "/srv/out"}}
	f.Add([]byte(`{"files":[{"target":"/srv/out/a.conf","backup":"/srv/out/.slipstream-check-1f.bak","existed":true},{"target":"/srv/out/d","existed":true,"was_dir":true}]}`))
	f.Add([]byte(`{"files":[{"target":"/etc/passwd"}],"passed":true}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := loadPlacement(path, outputs)
		if err != nil {
			var ce *corruptError
			if !errors.As(err, &ce) || err.Error() == "" {
				t.Fatalf("refusal %v (%T) is not a *corruptError", err, err)
			}
			return
		}
		for _, pf := range p.Files {
			for _, name := range []string{pf.Target, pf.Backup} {
				if name != "" && !strings.HasPrefix(name, "/srv/out/") {
					t.Fatalf("accepted a journal naming %q", name)
				}
			}
		}
	})
}
