package agent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

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

// openFold opens the watch's fold in dir. A fold that belongs to another
// bucket, another set of prefixes or another fold kind is discarded: it would
// be wrong for this watch, which then syncs from scratch.
func openFold(dir string, w *WatchConf) (kvcore.Fold, *watchState, error) {
	want := watchState{Bucket: w.Bucket, Prefixes: w.Prefixes, Fold: w.Fold}
	statePath := filepath.Join(dir, stateFile)
	var st watchState
	b, err := os.ReadFile(statePath)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, nil, fmt.Errorf("agent: %w", err)
	default:
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, nil, fmt.Errorf("agent: %s is corrupt: %w", statePath, err)
		}
	}
	if st.Bucket != want.Bucket || !samePrefixes(st.Prefixes, want.Prefixes) || st.Fold != want.Fold {
		for _, name := range []string{logFoldFile, diskFoldDir} {
			if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
				return nil, nil, fmt.Errorf("agent: discarding the old fold: %w", err)
			}
		}
		st = want
		if err := st.save(dir); err != nil {
			return nil, nil, err
		}
	}
	var fold kvcore.Fold
	if w.Fold == FoldDisk {
		fold, err = pebblefold.Open(filepath.Join(dir, diskFoldDir), pebblefold.Options{})
	} else {
		fold, err = snapshot.Open(filepath.Join(dir, logFoldFile), snapshot.Options{})
	}
	if err != nil {
		return nil, nil, fmt.Errorf("agent: opening fold: %w", err)
	}
	return fold, &st, nil
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
	if err := writeFileAtomic(filepath.Join(dir, stateFile), b); err != nil {
		return fmt.Errorf("agent: saving watch state: %w", err)
	}
	return nil
}
