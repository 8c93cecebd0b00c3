package agent

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
	"github.com/slipstreamkv/slipstream/kvcore"
)

// hookJournal persists the hooks a watch owes: it records them, with the
// cursor of the batch that calls for them, before that batch's files are
// committed, and clears them once they ran. A crash or a failed hook in
// between leaves them recorded, so they run on the next attempt even though
// the plugin, finding its files already in place, no longer asks for them.
type hookJournal struct{ path string }

type journalRecord struct {
	Hooks  []string `json:"hooks"`
	Cursor string   `json:"cursor"` // hex of the cursor's bytes
}

// load returns the recorded hooks and cursor (nothing when there is no
// journal). A journal that does not parse is a *corruptError.
func (j hookJournal) load() ([]string, kvcore.Cursor, error) {
	b, err := os.ReadFile(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, kvcore.Cursor{}, nil
	}
	if err != nil {
		return nil, kvcore.Cursor{}, fmt.Errorf("agent: reading hook journal: %w", err)
	}
	var rec journalRecord
	err = json.Unmarshal(b, &rec)
	var raw []byte
	if err == nil {
		raw, err = hex.DecodeString(rec.Cursor)
	}
	var c kvcore.Cursor
	if err == nil {
		c, err = kvcore.CursorFromBytes(raw)
	}
	if err != nil {
		return nil, kvcore.Cursor{}, &corruptError{kind: stateKindJournal, path: j.path, err: err}
	}
	return rec.Hooks, c, nil
}

// store records hooks and their batch's cursor durably; no hooks removes
// the journal.
func (j hookJournal) store(hooks []string, c kvcore.Cursor) error {
	if len(hooks) == 0 {
		err := os.Remove(j.path)
		if err == nil {
			err = atomicfile.SyncDir(filepath.Dir(j.path))
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("agent: clearing hook journal: %w", err)
		}
		return nil
	}
	b, err := json.Marshal(journalRecord{Hooks: hooks, Cursor: c.Hex()})
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(j.path, b, 0o600); err != nil {
		return fmt.Errorf("agent: writing hook journal: %w", err)
	}
	return nil
}

// recoverJournal handles err from loading the journal at the start of a
// session. A journal that does not load is quarantined and replaced by one
// owing every declared hook at cursor: what it owed is unknown, and hooks
// are idempotent, so they all run once more (and the caller forces a full
// render). Any other error is returned as it is.
func (r *watchRunner) recoverJournal(j hookJournal, err error, cursor kvcore.Cursor) ([]string, kvcore.Cursor, error) {
	var ce *corruptError
	if !errors.As(err, &ce) {
		return nil, kvcore.Cursor{}, err
	}
	if err := r.quarantine(ce.kind, ce.path, ce.err); err != nil {
		return nil, kvcore.Cursor{}, err
	}
	owed := hookNames(r.conf.Hooks)
	if err := j.store(owed, cursor); err != nil {
		return nil, kvcore.Cursor{}, err
	}
	return owed, cursor, nil
}
