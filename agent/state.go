package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
	"github.com/slipstreamkv/slipstream/snapshot/pebblefold"
)

// watchState is what a watch's directory records about the fold beside it.
type watchState struct {
	Bucket   string   `json:"bucket"`
	Prefixes []string `json:"prefixes"`
	Fold     string   `json:"fold"`
	// Rendered identifies the plugin module, configuration and outputs the
	// outputs were last fully rendered with; a change asks for a full render.
	Rendered string `json:"rendered,omitempty"`
	// BucketID identifies the incarnation of the bucket the fold's cursor
	// was taken from (kvcore.BucketIdentifier); a bucket deleted and
	// re-created since is resynced, never resumed.
	BucketID string `json:"bucket_id,omitempty"`
	// Mark is the bucket's mark (kvcore.BucketMarker) when the fold last
	// matched it: a restart that finds the bucket still so skips listing
	// its keys.
	Mark string `json:"mark,omitempty"`
	// Folding: the watch's loop was folding records at or before its
	// cursor (a sync, a reconciliation's fixes), or removals past it, when
	// it last stopped, without their commit; it syncs first
	// (kvcore.AppliedConfig.Folding).
	Folding bool `json:"folding,omitempty"`
	// Unreconciled is the cursor the watch's earliest session not known to
	// be reconciled with the bucket resumed from
	// (kvcore.AppliedConfig.Unreconciled).
	Unreconciled kvcore.Cursor `json:"unreconciled,omitzero"`
}

const (
	stateFile   = "state.json"
	logFoldFile = "fold.snap"
	diskFoldDir = "fold.pebble"
	journalFile = "hooks.pending"
)

// renderKey identifies what a full render depends on besides the data.
func renderKey(w *WatchConf, p *PluginConf, moduleSHA string) string {
	type out struct {
		Name, Dir, Owner, Group string
		Mode                    os.FileMode
	}
	var outs []out
	for _, o := range w.Outputs {
		outs = append(outs, out{o.Name, o.Dir, o.Owner, o.Group, o.Mode})
	}
	b, _ := json.Marshal(struct {
		Module  string
		Config  map[string]string
		Outputs []out
	}{moduleSHA, p.ConfigMap, outs})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// renderedWith reports whether st records a render with the watch's
// outputs, plugin configuration and module: its render key, or the key an
// older slipagent computed for them (see legacyRenderKey). A full render is
// owed otherwise. The next batch applied records the current key.
func (st *watchState) renderedWith(w *WatchConf, p *PluginConf, moduleSHA string) bool {
	return st.Rendered == renderKey(w, p, moduleSHA) || st.Rendered != "" && st.Rendered == legacyRenderKey(w, p, moduleSHA)
}

// legacyRenderKey is the render key as slipagent computed it before it made
// the configuration's relative paths absolute: with output dirs relative to
// the working directory, as a relative -config path left them ("" without
// a working directory). A state recording it was rendered into the same
// directories when the agent runs where the older one ran, the usual case.
func legacyRenderKey(w *WatchConf, p *PluginConf, moduleSHA string) string {
	wd, err := os.Getwd()
	if err != nil {
		return ""
	}
	old := *w
	old.Outputs = make([]*OutputConf, len(w.Outputs))
	for i, o := range w.Outputs {
		rel := *o
		if rel.Dir, err = filepath.Rel(wd, o.Dir); err != nil {
			return ""
		}
		old.Outputs[i] = &rel
	}
	return renderKey(&old, p, moduleSHA)
}

// openFold opens the watch's fold in its directory, with the state file
// beside it. A fold that belongs to another bucket, another set of prefixes
// or another fold kind is discarded: it would be wrong for this watch, which
// then syncs from scratch. A state file or a fold that does not load is
// quarantined and the watch starts afresh: a fold is a cache of the bucket,
// rebuilt by a full sync, and a lost state file or fold asks for a full
// render. An I/O error reading either fails the session instead.
func (r *watchRunner) openFold() (kvcore.Fold, *watchState, error) {
	dir, w := r.dir, r.conf
	want := watchState{Bucket: w.Bucket, Prefixes: w.Prefixes, Fold: w.Fold}
	st, err := loadState(dir)
	var ce *corruptError
	if errors.As(err, &ce) {
		if err := r.quarantine(ce.kind, ce.path, ce.err); err != nil {
			return nil, nil, err
		}
		st, err = watchState{}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if st.Bucket != want.Bucket || !samePrefixes(st.Prefixes, want.Prefixes) || st.Fold != want.Fold {
		for _, name := range []string{logFoldFile, diskFoldDir} {
			if _, err := os.Lstat(filepath.Join(dir, name)); err == nil {
				r.log.Warn("discarding a fold kept for another bucket, prefixes or fold kind, or that no state.json describes; syncing from the bucket (to start a host from an artifact, use the watch's bootstrap block)",
					"fold", filepath.Join(dir, name), "state_bucket", st.Bucket, "state_fold", st.Fold)
			}
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return nil, nil, fmt.Errorf("agent: discarding the old fold: %w", err)
			}
		}
		st = want
		if err := st.save(dir); err != nil {
			return nil, nil, err
		}
	}
	path := filepath.Join(dir, logFoldFile)
	if w.Fold == FoldDisk {
		path = filepath.Join(dir, diskFoldDir)
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) && st.BucketID != "" {
		// A checkpoint was taken on a fold that is gone: removed by hand,
		// or lost with the disk it was on.
		r.log.Warn("the watch's fold is missing; syncing it from the bucket", "fold", path)
	}
	fold, err := openFoldAt(path, w.Fold, r.log)
	if err != nil && foldCorrupt(err) {
		if qerr := r.quarantine(stateKindFold, path, err); qerr != nil {
			return nil, nil, errors.Join(fmt.Errorf("agent: opening fold: %w", err), qerr)
		}
		st.Rendered = "" // the outputs may not match what the new fold syncs
		fold, err = openFoldAt(path, w.Fold, r.log)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("agent: opening fold: %w", err)
	}
	return fold, &st, nil
}

// loadState reads the state file in dir (the zero state when there is none).
// Content that does not parse is a *corruptError.
func loadState(dir string) (watchState, error) {
	path := filepath.Join(dir, stateFile)
	var st watchState
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return st, nil
	case err != nil:
		return st, fmt.Errorf("agent: reading watch state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return watchState{}, &corruptError{kind: stateKindState, path: path, err: err}
	}
	return st, nil
}

func openFoldAt(path, kind string, l *slog.Logger) (kvcore.Fold, error) {
	if kind == FoldDisk {
		// Bulk: a state sync's chunks, folded under the cursor from
		// before, go to Pebble as ingested tables, durable before the sync's
		// checkpoint moves the cursor.
		return pebblefold.Open(path, pebblefold.Options{Bulk: true, Logger: l})
	}
	return snapshot.Open(path, snapshot.Options{})
}

// samePrefixes compares prefix lists as sets (nil, the whole bucket, is not
// the same as an empty list).
func samePrefixes(a, b []string) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func (st *watchState) save(dir string) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, stateFile), b, 0o600); err != nil {
		return fmt.Errorf("agent: saving watch state: %w", err)
	}
	return nil
}
