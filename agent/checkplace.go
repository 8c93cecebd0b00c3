package agent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
	"github.com/slipstreamkv/slipstream/plugins/abi"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// A check with check_in_place = true runs with the new files at their final
// paths, because a tool such as `nginx -t` reads the live configuration
// (nginx.conf's `include conf.d/*.conf` never sees a staged hidden file).
// The agent keeps the old files as hard links beside them and puts them back
// when the check fails, like consul-template rendering before running its
// command, but undoable:
//
//  1. the placement journal (check.pending in the watch's directory) lists
//     every target and the name of its backup, durably, before anything moves;
//  2. each existing target is hard-linked to its backup (a hidden file in
//     its output's directory, on the same file system) and that directory
//     is fsynced;
//  3. the staged files are committed (renamed into place);
//  4. the checks run;
//  5. pass: the hooks are journaled, the journal is marked passed, the
//     backups are removed and the journal with them;
//     fail: every target is restored from its backup (or removed when it did
//     not exist), then the journal is removed.
//
// A crash (SIGKILL) anywhere from 1 to 5 leaves the journal: the next session
// of the watch finishes what it says before anything else. Not marked
// passed, the old files are restored, whatever step the crash interrupted
// (restoring is idempotent: a backup already renamed back is skipped), and
// the batch, whose cursor never moved, is delivered again and checked again.
// Marked passed, only the backups are removed.
const placementFile = "check.pending"

// stateKindPlacement names a placement journal in quarantines.
const stateKindPlacement = "placement"

// backupSuffix ends the names of backups; with abi.StagePrefix in front, no
// plugin can write such a name and SweepStaged (which removes ".tmp" files)
// leaves them to the placement journal.
const backupSuffix = ".bak"

// placedFile is one target of a placement.
type placedFile struct {
	Target string `json:"target"`
	// Backup is the hard link to the target's old content; "" when there was
	// no file to keep (the target did not exist, or was a directory).
	Backup string `json:"backup,omitempty"`
	// Existed is false when nothing was at Target: undoing removes what the
	// commit put there.
	Existed bool `json:"existed"`
	// WasDir: Target was a directory, which a file may have replaced:
	// undoing removes that file and makes the directory again.
	WasDir bool `json:"was_dir,omitempty"`
}

// placement is the journal of one check run with the files in place.
type placement struct {
	path   string
	Files  []placedFile `json:"files"`
	Passed bool         `json:"passed,omitempty"`
}

// place commits res with a backup of every target it replaces or removes,
// journaled so that undo (or, after a crash, the next session) can restore
// them. On error the files are as they were.
func (r *watchRunner) place(ctx context.Context, res result, staged []host.StagedFile) (*placement, error) {
	p := &placement{path: filepath.Join(r.dir, placementFile)}
	seen := map[string]bool{}
	for _, f := range staged {
		if seen[f.Target] {
			continue
		}
		seen[f.Target] = true
		pf := placedFile{Target: f.Target}
		fi, err := os.Lstat(f.Target)
		switch {
		case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			// Nothing there yet (or a file stands where the commit makes
			// its directory: that file is a target of its own).
		case err != nil:
			res.Discard()
			return nil, fmt.Errorf("check in place: %w", err)
		case fi.IsDir():
			pf.Existed, pf.WasDir = true, true // a directory a file replaces: its files are removals listed on their own
		default:
			pf.Existed = true
			// In the output's own directory, which no commit removes (one
			// beside the target could keep a directory the commit replaces
			// from being removed), on the target's file system.
			root := strings.TrimSuffix(f.Target, string(filepath.Separator)+filepath.FromSlash(f.Path))
			pf.Backup = filepath.Join(root, abi.StagePrefix+"check-"+randomHex()+backupSuffix)
		}
		p.Files = append(p.Files, pf)
	}
	if err := p.save(); err != nil {
		res.Discard()
		return nil, err
	}
	var dirs []string
	for _, f := range p.Files {
		if f.Backup == "" {
			continue
		}
		if err := os.Link(f.Target, f.Backup); err != nil {
			res.Discard()
			return nil, errors.Join(fmt.Errorf("check in place: keeping the old %s: %w", f.Target, err), p.undo())
		}
		dirs = append(dirs, filepath.Dir(f.Backup))
	}
	slices.Sort(dirs)
	for _, d := range slices.Compact(dirs) {
		if err := atomicfile.SyncDir(d); err != nil {
			res.Discard()
			return nil, errors.Join(fmt.Errorf("check in place: %w", err), p.undo())
		}
	}
	if err := res.Commit(ctx); err != nil {
		return nil, errors.Join(fmt.Errorf("committing files for the check: %w", err), p.undo())
	}
	return p, nil
}

// keep ends a placement whose checks passed: the new files stay.
func (p *placement) keep() error {
	p.Passed = true
	if err := p.save(); err != nil {
		return err
	}
	return p.finish()
}

// finish removes the backups of a passed placement, then its journal.
func (p *placement) finish() error {
	for _, f := range p.Files {
		if f.Backup != "" {
			if err := os.Remove(f.Backup); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("check in place: removing the backup of %s: %w", f.Target, err)
			}
		}
	}
	return removeSynced(p.path)
}

// undo puts the old files back: first it removes what the commit created
// where nothing was (in reverse, so a file goes before the directory the
// commit made for it), then renames every backup onto its target, then
// removes the journal. It is idempotent, so a crash during undo is undone
// again at the next start.
func (p *placement) undo() error {
	var errs []error
	for _, f := range slices.Backward(p.Files) {
		if f.Existed && !f.WasDir {
			continue
		}
		if err := removeNotDir(f.Target); err != nil {
			errs = append(errs, err)
		}
		if f.WasDir {
			if err := os.MkdirAll(f.Target, 0o755); err != nil {
				errs = append(errs, fmt.Errorf("check in place: restoring the directory %s: %w", f.Target, err))
			}
		}
	}
	dirs := map[string]bool{}
	for _, f := range p.Files {
		if f.Backup == "" {
			continue
		}
		if _, err := os.Lstat(f.Backup); errors.Is(err, os.ErrNotExist) {
			continue // restored already, or never made (the target was not touched)
		}
		dir := filepath.Dir(f.Target)
		if fi, err := os.Lstat(f.Target); err == nil && fi.IsDir() {
			// The commit made a directory of it; its new files were removed above.
			if err := os.Remove(f.Target); err != nil {
				errs = append(errs, fmt.Errorf("check in place: restoring %s: %w", f.Target, err))
				continue
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			errs = append(errs, fmt.Errorf("check in place: restoring %s: %w", f.Target, err))
			continue
		}
		if err := os.Rename(f.Backup, f.Target); err != nil {
			errs = append(errs, fmt.Errorf("check in place: restoring %s: %w", f.Target, err))
			continue
		}
		dirs[dir], dirs[filepath.Dir(f.Backup)] = true, true
	}
	for _, f := range p.Files {
		dirs[filepath.Dir(f.Target)] = true
	}
	for d := range dirs {
		if err := atomicfile.SyncDir(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("check in place: %w", err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...) // the journal stays: the next session undoes again
	}
	return removeSynced(p.path)
}

// removeNotDir removes the file at path, if any; a directory there is one
// the commit made, which undo removes only once empty.
func removeNotDir(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		return nil
	case err != nil:
		return fmt.Errorf("check in place: %w", err)
	}
	err = os.Remove(path)
	if err != nil && fi.IsDir() {
		return nil // it holds files that were there before: leave it
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check in place: removing the new %s: %w", path, err)
	}
	return nil
}

func (p *placement) save() error {
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(p.path, b, 0o600); err != nil {
		return fmt.Errorf("check in place: writing %s: %w", p.path, err)
	}
	return nil
}

// removeSynced removes path (if present) and fsyncs its directory.
func removeSynced(path string) error {
	err := os.Remove(path)
	if err == nil {
		err = atomicfile.SyncDir(filepath.Dir(path))
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// recoverPlacement finishes a placement a crash interrupted, before the
// watch does anything else: the old files come back unless the checks had
// passed. It reports whether it restored files (the outputs then lag the
// watch's fold, so the caller renders in full). A journal
// that does not load is quarantined: which files it placed is unknown, so
// they stay as they are and the watch renders in full.
func (r *watchRunner) recoverPlacement() (restored bool, err error) {
	path := filepath.Join(r.dir, placementFile)
	p, err := loadPlacement(path, r.conf.Outputs)
	var corrupt *corruptError
	switch {
	case errors.As(err, &corrupt):
		if qerr := r.quarantine(stateKindPlacement, path, corrupt.err); qerr != nil {
			return false, qerr
		}
		return true, nil
	case err != nil || p == nil:
		return false, err
	}
	if p.Passed {
		return false, p.finish()
	}
	r.log.Warn("a check with the new files in place was interrupted; restoring the old files", "files", len(p.Files))
	return true, p.undo()
}

// loadPlacement loads the placement journal at path, nil if there is
// none. A journal that does not decode, or names paths outside outputs
// (see checkPaths), is a *corruptError.
func loadPlacement(path string, outputs []*OutputConf) (*placement, error) {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("agent: reading %s: %w", path, err)
	}
	p := &placement{path: path}
	err = json.Unmarshal(b, p)
	if err == nil {
		err = p.checkPaths(outputs)
	}
	if err != nil {
		return nil, &corruptError{kind: stateKindPlacement, path: path, err: err}
	}
	return p, nil
}

// checkPaths refuses a journal naming a target outside the watch's outputs,
// or a backup other than those place makes (a hidden .bak file in the
// target's output directory): undo renames and removes what the journal
// names, so no journal may reach anything else.
func (p *placement) checkPaths(outputs []*OutputConf) error {
	for _, f := range p.Files {
		dir := outputHolding(outputs, f.Target)
		if dir == "" {
			return fmt.Errorf("target %q is in none of the watch's output directories (an output moved since? the old files' backups it lists, hidden %scheck-*%s files, are left where they are)", f.Target, abi.StagePrefix, backupSuffix)
		}
		name := filepath.Base(f.Backup)
		if f.Backup != "" && (filepath.Dir(f.Backup) != dir || f.Backup != filepath.Join(dir, name) ||
			!strings.HasPrefix(name, abi.StagePrefix+"check-") || !strings.HasSuffix(name, backupSuffix)) {
			return fmt.Errorf("backup %q of %q is not a backup the agent makes in its output directory", f.Backup, f.Target)
		}
	}
	return nil
}

// outputHolding returns the directory of the output that path lies in
// (below it, spelled clean), or "".
func outputHolding(outputs []*OutputConf, path string) string {
	for _, o := range outputs {
		dir := filepath.Clean(o.Dir)
		rel, err := filepath.Rel(dir, path)
		if err == nil && rel != "." && filepath.IsLocal(rel) && path == filepath.Join(dir, rel) {
			return dir
		}
	}
	return ""
}

// placedEnv is what a check in place sees: each new file is at its target.
func placedEnv(staged []host.StagedFile) []host.StagedFile {
	out := slices.Clone(staged)
	for i := range out {
		if !out[i].Remove {
			out[i].File = out[i].Target
		}
	}
	return out
}

func randomHex() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
