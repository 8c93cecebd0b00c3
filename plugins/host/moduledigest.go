package host

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"

	"github.com/slipstreamkv/slipstream/internal/atomicfile"
)

// digestsName is the file in a compilation cache directory where the engine
// records the sha256 of the module files it read, by stat fingerprint.
const digestsName = "slipagent-modules.json"

// moduleDigests records the sha256 of module files by path, with the file's
// stat fingerprint (statFingerprint) when it was read: while the file keeps
// that fingerprint it has the content that was hashed, so a restart learns
// its module's digest (a watch's render key) without reading and hashing
// megabytes of code. The record lives beside the compile cache's ledger and
// is as trustworthy as the directory. It only ever names a module: what
// runs is what [Engine.LoadFile] read and hashed, and it records that.
type moduleDigests struct {
	path string
	mu   sync.Mutex // read-modify-write of the file, within the process
}

// digestRecord is one module file's record.
type digestRecord struct {
	Stat   string `json:"stat"`   // statFingerprint when it was read
	SHA256 string `json:"sha256"` // of the content read
}

// digestsFile is the record's JSON: records by absolute module path.
type digestsFile struct {
	Version int                     `json:"version"`
	Modules map[string]digestRecord `json:"modules"`
}

// ModuleDigest returns the hex sha256 of the module file at path. With a
// cache directory, a digest recorded for the file (by an earlier call or
// [Engine.LoadFile], in this process or an earlier one) is returned without
// reading the file as long as its stat fingerprint (device, inode, size,
// change time) is the one recorded; otherwise, and always outside Linux,
// the file is read and hashed, and recorded. A file replaced meanwhile is
// caught by comparing the digest with the loaded plugin's [Plugin.SHA256].
func (e *Engine) ModuleDigest(path string) (string, error) {
	if e.digests == nil {
		return fileSHA256(path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	stat := statFingerprint(abs) // before hashing: a later write changes it
	if stat != "" {
		if rec, ok := e.digests.lookup(abs); ok && rec.Stat == stat {
			return rec.SHA256, nil
		}
	}
	sum, err := fileSHA256(abs)
	if err != nil {
		return "", err
	}
	e.digests.record(e, abs, digestRecord{Stat: stat, SHA256: sum})
	return sum, nil
}

// LoadFile reads the module file at path and loads it as [Engine.Load]
// does, recording its digest for [Engine.ModuleDigest]. A file that cannot
// be read fails with the read's *fs.PathError.
func (e *Engine) LoadFile(ctx context.Context, path string, cfg PluginConfig) (*Plugin, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	stat := ""
	if e.digests != nil {
		stat = statFingerprint(abs) // before reading: a later write changes it
	}
	wasm, err := os.ReadFile(abs)
	if err != nil {
		return nil, err
	}
	p, err := e.Load(ctx, wasm, cfg)
	if err != nil {
		return nil, err
	}
	if e.digests != nil {
		e.digests.record(e, abs, digestRecord{Stat: stat, SHA256: p.SHA256()})
	}
	return p, nil
}

func (d *moduleDigests) lookup(abs string) (digestRecord, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec, ok := d.read().Modules[abs]
	return rec, ok
}

// record sets abs's record unless it holds already. A record without a
// fingerprint is dropped (it could never be used). Failing to write is
// logged: the next start hashes the file again.
func (d *moduleDigests) record(e *Engine, abs string, rec digestRecord) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := d.read()
	old, had := f.Modules[abs]
	switch {
	case rec.Stat == "" && !had:
		return
	case rec.Stat == "":
		delete(f.Modules, abs)
	case had && old == rec:
		return
	default:
		f.Modules[abs] = rec
	}
	if err := d.write(f); err != nil {
		e.logger.Warn("cannot record a plugin module's digest; the next start hashes the module again", "path", d.path, "err", err)
	}
}

// read loads the record; a missing or unreadable one is empty.
func (d *moduleDigests) read() *digestsFile {
	f := &digestsFile{Version: 1, Modules: map[string]digestRecord{}}
	b, err := os.ReadFile(d.path)
	if err != nil {
		return f
	}
	var got digestsFile
	if json.Unmarshal(b, &got) != nil || got.Version != 1 || got.Modules == nil {
		return f
	}
	return &got
}

func (d *moduleDigests) write(f *digestsFile) error {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(d.path, append(b, '\n'), 0o600)
}
