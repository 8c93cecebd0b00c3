package host

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
)

// ledgerName is the file in a compilation cache directory where the engine
// records every entry it wrote (see [Config.CacheDir]).
const ledgerName = "slipagent-cache.json"

// cacheEntryRE matches the path, relative to the cache directory, of a file
// wazero may load as compiled code: <version dir>/<hex of a 32-byte key>.
// Its temporary files (*.tmp) are never loaded.
var cacheEntryRE = regexp.MustCompile(`^[^/]+/[0-9a-f]{64}$`)

// cacheLedger guards wazero's file compilation cache, which finds an entry
// by a hash of the module but loads it unverified (a CRC over the code
// catches corruption, not tampering). The ledger records, for each entry the
// engine wrote, the sha256 of the module it was compiled from and of the
// entry file. Before every compile, an entry the ledger does not know is
// removed and one whose content differs from its record is removed (logged
// at ERROR): wazero then compiles the module again and the fresh entry is
// recorded. The ledger lives in the cache directory with mode 0600, so it
// is as trustworthy as the directory: it turns "anything that writes a file
// there" into "anything that also rewrites the ledger consistently", and the
// agent refuses a cache directory others can write. An entry whose stat
// fingerprint (statFingerprint) is the one recorded when it was hashed is
// not hashed again.
type cacheLedger struct {
	dir    string
	logger *slog.Logger

	// mu holds compiles one at a time, so that the entries a compile
	// adds are the module's.
	mu sync.Mutex
}

// ledgerEntry is the record of one cache entry.
type ledgerEntry struct {
	Module string `json:"module"` // sha256 of the wasm module it was compiled from
	SHA256 string `json:"sha256"` // sha256 of the entry file
	// Stat is the file's stat fingerprint when it was hashed
	// (statFingerprint): while it holds, the file is not hashed again.
	Stat string `json:"stat,omitempty"`
}

// ledgerFile is the ledger's JSON: entries by path relative to the cache
// directory.
type ledgerFile struct {
	Version int                    `json:"version"`
	Entries map[string]ledgerEntry `json:"entries"`
}

// compile runs compile once every entry wazero may load has been checked
// against the ledger, and records the entries it wrote as compiled from
// the module whose sha256 compile returns.
func (l *cacheLedger) compile(compile func() (digest string, err error)) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	led := l.read()
	changed := l.verify(led)
	digest, err := compile()
	files, lerr := l.entries()
	if lerr != nil {
		return errors.Join(err, lerr)
	}
	for _, rel := range files {
		if _, ok := led.Entries[rel]; ok {
			continue
		}
		path := filepath.Join(l.dir, rel)
		stat := statFingerprint(path) // before hashing: a later write changes it
		sum, herr := fileSHA256(path)
		if herr != nil {
			continue // removed meanwhile: nothing to record
		}
		led.Entries[rel] = ledgerEntry{Module: digest, SHA256: sum, Stat: stat}
		changed = true
	}
	if changed {
		if werr := l.write(led); werr != nil {
			// Unrecorded entries are only removed and compiled again.
			l.logger.Warn("cannot record the compile cache's entries; they will be compiled again", "path", filepath.Join(l.dir, ledgerName), "err", werr)
		}
	}
	return err
}

// verify removes every cache entry the ledger does not vouch for, and drops
// records of entries that are gone. It reports whether led changed.
func (l *cacheLedger) verify(led *ledgerFile) (changed bool) {
	files, err := l.entries()
	if err != nil {
		l.logger.Warn("cannot list the compile cache", "dir", l.dir, "err", err)
	}
	present := make(map[string]bool, len(files))
	for _, rel := range files {
		path := filepath.Join(l.dir, rel)
		rec, ok := led.Entries[rel]
		if !ok {
			l.logger.Warn("compile cache entry not recorded by the agent (written by an older version or by something else): removed, the module will be compiled again", "path", path)
			l.remove(path)
			continue
		}
		// An entry still as it was hashed needs no hash (statFingerprint).
		if stat := statFingerprint(path); stat == "" || stat != rec.Stat {
			if sum, err := fileSHA256(path); err != nil || sum != rec.SHA256 {
				l.logger.Error("compile cache entry differs from the one compiled for its module: rejected and removed, the module will be compiled again", "path", path, "module_sha256", rec.Module, "recorded_sha256", rec.SHA256, "sha256", sum, "err", err)
				l.remove(path)
				delete(led.Entries, rel)
				changed = true
				continue
			}
			if stat != rec.Stat { // taken before hashing: a later write changes it
				rec.Stat = stat
				led.Entries[rel] = rec
				changed = true
			}
		}
		present[rel] = true
	}
	for rel := range led.Entries {
		if !present[rel] {
			delete(led.Entries, rel)
			changed = true
		}
	}
	return changed
}

func (l *cacheLedger) remove(path string) {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		l.logger.Error("cannot remove a compile cache entry", "path", path, "err", err)
	}
}

// entries lists the files wazero may load, relative to the cache directory.
func (l *cacheLedger) entries() ([]string, error) {
	files, err := filepath.Glob(filepath.Join(l.dir, "*", "*"))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range files {
		rel, err := filepath.Rel(l.dir, f)
		if err != nil || !cacheEntryRE.MatchString(filepath.ToSlash(rel)) {
			continue
		}
		out = append(out, rel)
	}
	return out, nil
}

// read loads the ledger; a missing or unreadable one is empty (so every
// entry is compiled again).
func (l *cacheLedger) read() *ledgerFile {
	path := filepath.Join(l.dir, ledgerName)
	led := &ledgerFile{Version: 1, Entries: map[string]ledgerEntry{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return led
	}
	var got ledgerFile
	if err == nil {
		err = json.Unmarshal(b, &got)
	}
	if err == nil && got.Version != 1 {
		err = fmt.Errorf("version %d, want 1", got.Version)
	}
	if err != nil {
		l.logger.Warn("compile cache ledger unreadable; every cached entry will be compiled again", "path", path, "err", err)
		return led
	}
	if got.Entries != nil {
		led.Entries = got.Entries
	}
	return led
}

func (l *cacheLedger) write(led *ledgerFile) error {
	b, err := json.MarshalIndent(led, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(l.dir, ledgerName), append(b, '\n'), 0o600)
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
