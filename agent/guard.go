package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// The deletion guard (DESIGN.md, invariant 11) holds a batch that would
// remove more than guard.max_delete_fraction of a watch's keys (and at least
// guard.min_deletes of them): a bucket that comes back empty (re-created,
// purged, or credentials that reach another account) must not make every
// host delete every output at once.
//
// The check runs before the plugin. It counts the keys the batch removes
// (deletes and purges, including the synthetic deletes of a resync, once
// per key, and not a key the batch puts back afterwards) and, only when
// they reach min_deletes, the fold's keys in scope: since the fold already
// holds the batch, the keys before it are those plus the removals. A held
// batch is not applied (outputs stay as they are) and the cursor does not
// move. Because the fold already lost the keys, the hold is written to
// data_dir/watches/NAME/held.json, and every apply is held while that file
// exists, across restarts, until:
//   - `slipagent resync --confirm NAME` writes data_dir/watches/NAME/confirm
//     (the held apply polls for it every holdPoll, so it works whether or
//     not the agent runs or serves HTTP);
//   - guard.allow = true is configured;
//   - the bucket's keys come back to within the fraction of the keys held
//     before (someone restored it).
//
// Then the batch is applied as a full render, so the outputs equal the
// bucket, and the hold is removed once that committed.
//
// A second look, at commit, counts outputs rather than keys: a plugin
// result that removes at least min_deletes files and more than the
// fraction of the files below the watch's outputs is held the same way
// (a bucket replaced by one with other keys keeps its key count but would
// replace every file). Only a confirmation or guard.allow lets such a
// result through; keys coming back do not. The count depends on the
// configuration (prefixes, plugin, its config), so a watch that starts with
// such a hold (a reload that restarts it, or the agent's start) renders in
// full again and looks at commit once more: a result that no longer
// removes most files lifts the hold, one that still does keeps it, with
// its new count and its first time.
const (
	heldFile    = "held.json"
	confirmFile = "confirm"
	// holdPoll is how often a held apply looks for a confirmation;
	// holdRecheck how often it counts the bucket's live keys.
	holdPoll    = 500 * time.Millisecond
	holdRecheck = 5 * time.Second
)

// Errors of [ConfirmHold].
var (
	ErrNotHeld      = errors.New("the watch is not held")
	ErrUnknownWatch = errors.New("no such watch in the configuration")
)

// HeldError is the failure of a held apply.
type HeldError struct {
	Watch      string
	KeysBefore int
	Removals   int
	Outputs    bool // KeysBefore and Removals count output files
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("watch %s: held: the batch would remove %d of %d %s (guard.max_delete_fraction); confirm with `slipagent resync --confirm %s`", e.Watch, e.Removals, e.KeysBefore, holdUnit(e.Outputs), e.Watch)
}

// holdUnit is what a hold counts.
func holdUnit(outputs bool) string {
	if outputs {
		return "output files"
	}
	return "keys"
}

// holdRecord is held.json.
type holdRecord struct {
	KeysBefore int       `json:"keys_before"`
	Removals   int       `json:"removals"`
	Since      time.Time `json:"since"`
	// Outputs is set for a hold taken at commit: KeysBefore and Removals
	// count files, and only a confirmation lifts it.
	Outputs bool `json:"outputs,omitempty"`
}

// guard is one watch's deletion guard.
type guard struct {
	watch  string
	conf   *GuardConf
	scope  kvcore.Scope
	dir    string
	log    *slog.Logger
	status *watchStatus
	now    func() time.Time
	held   *holdRecord // the hold in force, as held.json records it
	// released is set once a hold was confirmed or cured: the next apply
	// renders in full, and clears the hold once committed. confirmed says
	// an operator (or guard.allow) let it through, which the look at
	// commit honours too. reevaluating says a hold counting output files
	// was released only for the look at commit to judge again (see
	// reevaluate).
	released, confirmed, reevaluating bool
}

// load reads a hold an earlier run left.
func (g *guard) load() error {
	h, err := readHold(g.dir)
	if errors.Is(err, os.ErrNotExist) {
		g.held = nil
		g.status.hold(nil)
		return nil
	}
	if err != nil {
		return err
	}
	g.held = h
	g.status.hold(&HoldStatus{KeysBefore: h.KeysBefore, Removals: h.Removals, Outputs: h.Outputs, Since: h.Since})
	return nil
}

// readHold reads the hold in the watch directory dir: an error wrapping
// os.ErrNotExist when there is none.
func readHold(dir string) (*holdRecord, error) {
	path := filepath.Join(dir, heldFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("agent: reading the hold: %w", err)
	}
	var h holdRecord
	if err := json.Unmarshal(b, &h); err != nil {
		return nil, fmt.Errorf("agent: %s is corrupt (remove it to lift the hold): %w", path, err)
	}
	return &h, nil
}

// reevaluate releases a hold counting output files, as a watch starts, for
// the look at commit to judge with the watch's current configuration: the
// next apply renders in full and either commits, lifting the hold, or is
// held again. A hold already confirmed is left to wait, which applies it.
func (g *guard) reevaluate() error {
	if g.held == nil || !g.held.Outputs || g.released {
		return nil
	}
	switch _, err := os.Stat(filepath.Join(g.dir, confirmFile)); {
	case err == nil:
		return nil
	case !errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("agent: looking for a confirmation: %w", err)
	}
	g.released, g.reevaluating = true, true
	g.log.Info("the watch starts held: rendering in full to judge the hold again with the current configuration",
		"removals", g.held.Removals, "before", g.held.KeysBefore, "counting", holdUnit(true))
	return nil
}

// check decides whether batch b may be applied. It returns full = true when
// the batch must be applied as a full render (a hold was released), and a
// *HeldError while it is held; it waits up to the end of stop for a
// confirmation before returning that. src lists the bucket's live keys.
func (g *guard) check(stop context.Context, fold kvcore.Fold, src kvcore.Reader, b kvcore.Batch) (full bool, err error) {
	if g.released {
		return true, nil
	}
	if g.held == nil {
		if g.conf.Allow || fold.Cursor().IsNone() {
			// Allowed, or nothing was ever applied: no output to protect.
			return false, nil
		}
		removals := removedKeys(b.Updates)
		if removals < g.conf.Min {
			return false, nil
		}
		keys, err := countKeys(stop, g.scope, func(ctx context.Context, p string) (int, error) { return countFold(ctx, fold, p) })
		if err != nil {
			return false, err
		}
		before := keys + removals
		if float64(removals) <= g.conf.Fraction*float64(before) {
			return false, nil
		}
		// A confirmation left from an earlier hold must not confirm this one.
		if err := os.Remove(filepath.Join(g.dir, confirmFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return false, fmt.Errorf("agent: removing an old confirmation: %w", err)
		}
		if err := g.hold(&holdRecord{KeysBefore: before, Removals: removals, Since: g.now().UTC()}); err != nil {
			return false, err
		}
	}
	return g.wait(stop, fold, src)
}

// hold records h as the hold in force.
func (g *guard) hold(h *holdRecord) error {
	// A confirmation left from an earlier hold must not confirm this one;
	// one given while a hold was judged again is for that same hold.
	if g.reevaluating {
		h.Since = g.held.Since
	} else if err := os.Remove(filepath.Join(g.dir, confirmFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agent: removing an old confirmation: %w", err)
	}
	data, _ := json.Marshal(h)
	if err := atomicfile.WriteFile(filepath.Join(g.dir, heldFile), data, 0o600); err != nil {
		return fmt.Errorf("agent: recording the hold: %w", err)
	}
	g.held, g.released, g.reevaluating = h, false, false
	g.status.hold(&HoldStatus{KeysBefore: h.KeysBefore, Removals: h.Removals, Outputs: h.Outputs, Since: h.Since})
	g.log.Error("HELD: a batch would remove most of the watch's "+holdUnit(h.Outputs)+"; its outputs stay as they are until confirmed",
		"removals", h.Removals, "before", h.KeysBefore, "counting", holdUnit(h.Outputs), "max_delete_fraction", g.conf.Fraction,
		"confirm", "slipagent resync --confirm "+g.watch)
	return nil
}

// checkCommit is the look at commit: a result that removes removals files
// is held when they reach min_deletes and exceed the fraction of the files
// count finds below the outputs, unless the hold was confirmed.
func (g *guard) checkCommit(removals int, count func() (int, error)) error {
	if g.conf.Allow || g.confirmed || removals < g.conf.Min {
		return nil
	}
	files, err := count()
	if err != nil {
		return fmt.Errorf("agent: counting output files: %w", err)
	}
	if float64(removals) <= g.conf.Fraction*float64(files) {
		return nil
	}
	if err := g.hold(&holdRecord{KeysBefore: files, Removals: removals, Since: g.now().UTC(), Outputs: true}); err != nil {
		return err
	}
	return &HeldError{Watch: g.watch, KeysBefore: files, Removals: removals, Outputs: true}
}

// wait holds an apply until the hold is confirmed, allowed or cured, or
// stop ends.
func (g *guard) wait(stop context.Context, fold kvcore.Fold, src kvcore.Reader) (bool, error) {
	// A hold counting keys is cured by the keys coming back; one counting
	// files (taken at commit) only by a confirmation.
	curable := !g.held.Outputs
	cured := func(keys int) bool {
		return float64(g.held.KeysBefore-keys) <= g.conf.Fraction*float64(g.held.KeysBefore)
	}
	if curable {
		keys, err := countKeys(stop, g.scope, func(ctx context.Context, p string) (int, error) { return countFold(ctx, fold, p) })
		if err != nil {
			return false, err
		}
		if cured(keys) {
			g.log.Warn("the bucket's keys came back; lifting the hold with a full render", "keys", keys, "keys_before", g.held.KeysBefore)
			g.released = true
			return true, nil
		}
	}
	poll := time.NewTicker(holdPoll)
	defer poll.Stop()
	lastCount := g.now()
	for {
		switch _, err := os.Stat(filepath.Join(g.dir, confirmFile)); {
		case g.conf.Allow:
			g.log.Warn("guard.allow is set; applying the held batch with a full render")
			g.released, g.confirmed = true, true
			return true, nil
		case err == nil:
			g.log.Warn("hold confirmed; applying the held batch with a full render")
			g.released, g.confirmed = true, true
			return true, nil
		case !errors.Is(err, os.ErrNotExist):
			return false, fmt.Errorf("agent: looking for a confirmation: %w", err)
		}
		// Only now is the batch held in this run: Once stops at this, not
		// at a hold an earlier run left, which may be confirmed already.
		g.status.holding(g.now())
		if curable && g.now().Sub(lastCount) >= holdRecheck {
			lastCount = g.now()
			keys, err := countKeys(stop, g.scope, func(ctx context.Context, p string) (int, error) {
				ks, err := src.Keys(ctx, p)
				return len(ks), err
			})
			if err == nil && cured(keys) {
				// Let the loop fold the keys that came back, then look
				// again: the fold decides.
				return false, &HeldError{Watch: g.watch, KeysBefore: g.held.KeysBefore, Removals: g.held.Removals, Outputs: g.held.Outputs}
			}
		}
		select {
		case <-stop.Done():
			return false, stop.Err()
		case <-poll.C:
		}
	}
}

// committed ends a released hold once its full render committed.
func (g *guard) committed() error {
	if !g.released {
		return nil
	}
	// The confirmation goes first: a crash in between leaves a hold to
	// confirm again, never a confirmation for the next hold.
	for _, name := range []string{confirmFile, heldFile} {
		if err := os.Remove(filepath.Join(g.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("agent: lifting the hold: %w", err)
		}
	}
	if err := atomicfile.SyncDir(g.dir); err != nil {
		return fmt.Errorf("agent: lifting the hold: %w", err)
	}
	if g.reevaluating {
		g.log.Info("the current configuration no longer removes most of the watch's output files", "removals_held", g.held.Removals, "before", g.held.KeysBefore)
	}
	g.held, g.released, g.confirmed, g.reevaluating = nil, false, false, false
	g.status.hold(nil)
	g.log.Info("hold lifted; outputs reflect the bucket again")
	return nil
}

// removedKeys counts the keys updates leave removed: a key deleted or purged
// and not put back later in the batch, once.
func removedKeys(updates []kvcore.Update) int {
	last := make(map[string]bool, len(updates))
	for _, u := range updates {
		last[u.Key] = u.IsRemoval()
	}
	n := 0
	for _, removed := range last {
		if removed {
			n++
		}
	}
	return n
}

// countKeys adds up count over the scope's prefixes.
func countKeys(ctx context.Context, scope kvcore.Scope, count func(context.Context, string) (int, error)) (int, error) {
	n := 0
	for _, p := range scope.List() {
		c, err := count(ctx, p)
		if err != nil {
			return 0, fmt.Errorf("agent: counting keys under %q: %w", p, err)
		}
		n += c
	}
	return n, nil
}

// countFiles counts the regular files below dirs, staging files aside.
func countFiles(dirs []string) (int, error) {
	n := 0
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), abi.StagePrefix) {
				n++
			}
			return nil
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return 0, err
		}
	}
	return n, nil
}

func countFold(ctx context.Context, fold kvcore.Fold, prefix string) (int, error) {
	n := 0
	err := fold.Range(ctx, prefix, "", func(kvcore.Entry) error { n++; return nil })
	return n, err
}

// ConfirmHold confirms the held batch of watch watch of cfg: the agent (now,
// or when it next starts) applies it with a full render, which may remove
// most of the watch's outputs. It fails with ErrNotHeld when the watch is
// not held, ErrUnknownWatch when cfg has no such watch.
func ConfirmHold(cfg *Config, watch string) error {
	var w *WatchConf
	for _, c := range cfg.Watches {
		if c.Name == watch {
			w = c
		}
	}
	if w == nil {
		return fmt.Errorf("watch %q: %w", watch, ErrUnknownWatch)
	}
	dir := filepath.Join(cfg.DataDir, "watches", watch)
	if _, err := readHold(dir); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("watch %s: %w", watch, ErrNotHeld)
	} else if err != nil {
		return err // a corrupt hold: the agent cannot apply it
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, confirmFile), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o600); err != nil {
		return fmt.Errorf("watch %s: writing the confirmation: %w", watch, err)
	}
	return nil
}
