package sdk

import (
	"fmt"
	"io/fs"
	"iter"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// Level is a log level; the values are those of log/slog.
type Level int32

// Log levels.
const (
	LevelDebug Level = Level(abi.LevelDebug)
	LevelInfo  Level = Level(abi.LevelInfo)
	LevelWarn  Level = Level(abi.LevelWarn)
	LevelError Level = Level(abi.LevelError)
)

// Host gives a call access to the host: the view, the plugin's config,
// logging, staged file writes and hook requests. It is valid only during the
// call it was passed to.
//
// Staging methods (WriteFile, RemoveFile, RequestHook) fail the whole call
// when they return an error, whatever the plugin returns afterwards: the host
// never commits a partial set of outputs. Check paths with [CheckPath] first
// to skip bad keys instead.
type Host struct{}

// pageBufSize is the initial buffer of a paged read; it grows when one entry
// needs more. transientPageSize is that of [Host.ScanTransient], allocated
// once: the host's bound on a page (ABI.md, view_scan), so a render takes a
// quarter of the host calls.
const (
	pageBufSize       = 64 << 10
	transientPageSize = 256 << 10
)

// Log writes a line to the host's log.
func (h *Host) Log(level Level, msg string) { hostLog(int32(level), msg) }

// Logf formats and logs a line.
func (h *Host) Logf(level Level, format string, args ...any) {
	hostLog(int32(level), fmt.Sprintf(format, args...))
}

// Config returns the value of key in the plugin's configuration.
func (h *Host) Config(key string) (string, bool) {
	v, st := fetch(nil, func(b []byte) int64 { return hostConfigGet(key, b) })
	if st != abi.OK {
		return "", false
	}
	return string(v), true
}

// ConfigKeys returns the names of every key of the plugin's configuration,
// sorted. Like [Host.Config], it works in [Configurer.Configure]; see
// [CheckConfigKeys] for refusing the keys a plugin does not read.
func (h *Host) ConfigKeys() ([]string, error) {
	b, st := fetch(nil, hostConfigKeys)
	if st != abi.OK {
		return nil, fmt.Errorf("sdk: config keys: %w", st)
	}
	keys, err := abi.ParseConfigKeys(b)
	if err != nil {
		return nil, fmt.Errorf("sdk: config keys: %w", err)
	}
	return keys, nil
}

// Get returns the entry of key in the view (as of after this batch).
func (h *Host) Get(key string) (Entry, bool, error) {
	rec, st := fetch(make([]byte, 256), func(b []byte) int64 { return hostViewGet(key, b) })
	switch {
	case st == abi.ErrNotFound:
		return Entry{}, false, nil
	case st != abi.OK:
		return Entry{}, false, fmt.Errorf("sdk: get %q: %w", key, st)
	}
	r, _, err := abi.ParseRecord(rec)
	if err != nil {
		return Entry{}, false, fmt.Errorf("sdk: get %q: %w", key, err)
	}
	return Entry{Key: r.Key, Value: r.Value, Revision: r.Revision, Version: r.Version}, true, nil
}

// Scan yields the view's entries whose keys start with prefix ("" = all), in
// ascending byte order of keys, fetching them a page at a time: memory use
// is bounded by the page, not the view. An error ends the sequence. Every
// page gets a new buffer, so iterations can nest and entries can be kept;
// [Host.ScanTransient] is the cheaper form for entries used and dropped.
func (h *Host) Scan(prefix string) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		var records []abi.RawRecord
		var entries []Entry
		scan(prefix, pageBufSize, func(size int) []byte { return make([]byte, size) }, &records, &entries, func(page []Entry, err error) bool {
			if err != nil {
				yield(Entry{}, err)
				return false
			}
			for _, e := range page {
				if !yield(e, nil) {
					return false
				}
			}
			return true
		})
	}
}

// ScanTransient yields what [Host.Scan] yields, but every page is read into
// one buffer the SDK keeps across pages and calls, and each entry's Key,
// Value and Version alias it: they are valid only until the loop asks for
// the next entry. Copy what you keep (strings.Clone, bytes.Clone). It suits
// a loop that prints or folds each entry, such as a full render, and saves
// a page-sized allocation per page and the guest's collector the garbage.
// A ScanTransient nested in another gets a buffer of its own.
func (h *Host) ScanTransient(prefix string) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		for page, err := range h.ScanPages(prefix) {
			if err != nil {
				yield(Entry{}, err)
				return
			}
			for _, e := range page {
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}

// ScanPages yields what [Host.ScanTransient] yields, a page of the host at
// a time, in order, never an empty one. The slice and its entries' Key,
// Value and Version alias buffers the SDK reuses: they are valid only until
// the loop asks for the next page. A loop over a page's entries makes no
// function call per entry, which is most of what an entry costs a Go guest:
// it is the cheapest way to read a whole view. A ScanPages (or
// ScanTransient) nested in another gets buffers of its own.
func (h *Host) ScanPages(prefix string) iter.Seq2[[]Entry, error] {
	return func(yield func([]Entry, error) bool) {
		if scratch.busy {
			var own pageScratch
			own.scan(prefix, pageBufSize, yield)
			return
		}
		scratch.busy = true
		defer func() { scratch.busy = false }()
		scratch.scan(prefix, transientPageSize, yield)
	}
}

// scratch holds the buffers of [Host.ScanPages], kept across calls (a guest
// runs one call at a time); busy while an iteration reads into them.
var scratch struct {
	pageScratch
	busy bool
}

// pageScratch is the memory a paged scan decodes into: the page, its
// records and its entries, reused from page to page.
type pageScratch struct {
	page    []byte
	records []abi.RawRecord
	entries []Entry
}

// scan runs the paged view_scan loop of prefix into s, starting with a
// page buffer of size bytes, and yields each page's entries.
func (s *pageScratch) scan(prefix string, size int, yield func([]Entry, error) bool) {
	scan(prefix, size, func(size int) []byte {
		if cap(s.page) < size {
			s.page = make([]byte, size)
		}
		return s.page[:cap(s.page)]
	}, &s.records, &s.entries, yield)
}

// scan runs the paged view_scan loop of prefix, reading every page into
// buffer(n), n starting at size and growing when one entry needs more, and
// yields each page's entries, decoded in one loop into *records and
// *entries (reused), which alias that buffer.
func scan(prefix string, size int, buffer func(size int) []byte, records *[]abi.RawRecord, entries *[]Entry, yield func([]Entry, error) bool) {
	var after []byte // the last key yielded, copied out of the page buffer
	for {
		page, err := nextPage(buffer, &size, func(b []byte) int64 { return hostViewScan(prefix, aliasString(after), b) })
		if err != nil {
			yield(nil, fmt.Errorf("sdk: scan %q: %w", prefix, err))
			return
		}
		rs, _, err := abi.AppendRawRecords((*records)[:0], page.items, page.Count)
		*records = rs
		if err != nil {
			yield(nil, fmt.Errorf("sdk: scan %q: %w", prefix, err))
			return
		}
		es := (*entries)[:0]
		for i := range rs {
			r := &rs[i]
			es = append(es, Entry{Key: aliasString(r.Key), Value: r.Value, Revision: r.Revision, Version: r.Version})
		}
		*entries = es
		if len(es) == 0 { // nothing under prefix: nextPage refuses an empty page with more
			return
		}
		after = append(after[:0], rs[len(rs)-1].Key...)
		if !yield(es, nil) || !page.More {
			return
		}
	}
}

// DirEntry is one name in an output directory.
type DirEntry struct {
	Name string
	Type abi.EntryType
}

// IsDir reports whether the entry is a directory.
func (d DirEntry) IsDir() bool { return d.Type == abi.TypeDir }

// ReadDir yields the entries of dir ("" = the output directory itself) in the
// named output, sorted by name, as they were on disk when this call first
// listed dir (not including this call's staged changes). Staging files are
// never listed. A missing directory yields nothing; a path that is not a
// directory yields an error.
func (h *Host) ReadDir(output, dir string) iter.Seq2[DirEntry, error] {
	return func(yield func(DirEntry, error) bool) {
		after := ""
		size := pageBufSize
		for {
			page, err := nextPage(func(size int) []byte { return make([]byte, size) }, &size, func(b []byte) int64 { return hostOutputList(output, dir, after, b) })
			if err == abi.ErrNotFound {
				return
			}
			if err != nil {
				yield(DirEntry{}, fmt.Errorf("sdk: read dir %q in output %q: %w", dir, output, err))
				return
			}
			rest := page.items
			for range page.Count {
				e, m, err := abi.ParseDirEntry(rest)
				if err != nil {
					yield(DirEntry{}, fmt.Errorf("sdk: read dir %q in output %q: %w", dir, output, err))
					return
				}
				rest = rest[m:]
				after = e.Name
				if !yield(DirEntry{Name: e.Name, Type: e.Type}, nil) {
					return
				}
			}
			if !page.More {
				return
			}
		}
	}
}

type page struct {
	abi.Page
	items []byte
}

// nextPage fetches one page into buffer(*size), at least *size bytes,
// remembering a larger size when one entry needed it.
func nextPage(buffer func(size int) []byte, size *int, call func([]byte) int64) (page, error) {
	b, st := fetch(buffer(*size), call)
	if st != abi.OK {
		return page{}, st
	}
	*size = max(*size, cap(b))
	p, n, err := abi.ParsePageHeader(b)
	if err != nil {
		return page{}, err
	}
	if p.More && p.Count == 0 {
		return page{}, fmt.Errorf("%w: host returned an empty page with more to come", abi.ErrMalformed)
	}
	return page{Page: p, items: b[n:]}, nil
}

// fetch runs call under the output-buffer convention: a result larger than
// the buffer means "retry with this capacity".
func fetch(buf []byte, call func([]byte) int64) ([]byte, abi.Status) {
	for range 4 {
		n := call(buf)
		if n < 0 {
			return nil, abi.Status(n)
		}
		if n <= int64(len(buf)) {
			return buf[:n], abi.OK
		}
		buf = make([]byte, n)
	}
	return nil, abi.ErrIO // the host kept asking for more: give up
}

// WriteFile stages data as the file at path (relative, slash-separated) in
// the named output, with mode (0 = the output's default; only permission
// bits). It reports whether anything changed: false means the file already
// has exactly this content and mode. The file reaches its target only if the
// call succeeds. Writing below a file, or onto a directory, needs the call to
// remove that file, or every file below that directory (before or after the
// write; ABI.md section 6).
func (h *Host) WriteFile(output, path string, data []byte, mode fs.FileMode) (changed bool, err error) {
	st := hostStageWrite(output, path, data, uint32(mode))
	if st.IsError() {
		return false, fmt.Errorf("sdk: write %q in output %q: %w", path, output, st)
	}
	return st == abi.OK, nil
}

// RemoveFile stages the removal of the file at path in the named output. It
// reports whether anything changed: false means there was no such file.
func (h *Host) RemoveFile(output, path string) (changed bool, err error) {
	st := hostStageRemove(output, path)
	if st.IsError() {
		return false, fmt.Errorf("sdk: remove %q in output %q: %w", path, output, st)
	}
	return st == abi.OK, nil
}

// RequestHook asks the host to run the named hook after committing this
// call's outputs. Requests are deduplicated.
func (h *Host) RequestHook(name string) error {
	if st := hostHookRequest(name); st.IsError() {
		return fmt.Errorf("sdk: request hook %q: %w", name, st)
	}
	return nil
}

// CheckPath reports whether path is acceptable to WriteFile and RemoveFile
// (the host additionally refuses symlink escapes).
func CheckPath(path string) error { return abi.CheckPath(path) }
