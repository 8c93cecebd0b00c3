package host

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// listing is one directory's entries as output_list pages them: sorted by
// name, without staging files or names too long for the encoding.
type listing struct {
	dir  outPath
	ents []abi.DirEntry
}

// maxListings is how many listings one call keeps. Paging through a
// directory while recursing into its subdirectories (a render's prune) needs
// one per level, and a path has at most abi.MaxPathDepth levels below the
// output's root.
const maxListings = 2 * (abi.MaxPathDepth + 1)

// list returns one page of the entries of output/dir sorted by name, after
// the name after, hiding staging files. A directory is read once per call,
// when its first page is asked for; later pages come from that listing, so
// paging through n entries costs one read, not one per page.
func (s *stage) list(output, dir, after string, capacity, soft int) ([]byte, int, *refusal) {
	r, _, ref := s.root(output)
	if ref != nil {
		return nil, 0, ref
	}
	if err := abi.CheckDir(dir); err != nil {
		return nil, 0, refuse(abi.ErrInvalid, ErrDenied, "output %q: %v", output, err)
	}
	ents, ref := s.listing(r, outPath{output, dir})
	if ref != nil {
		return nil, 0, ref
	}
	i, found := slices.BinarySearchFunc(ents, after, func(e abi.DirEntry, name string) int { return strings.Compare(e.Name, name) })
	if found {
		i++
	}
	w := abi.NewPageWriter(capacity, soft)
	for _, e := range ents[i:] {
		if !w.AddDirEntry(e) {
			break
		}
	}
	page, need := w.Finish()
	return page, need, nil
}

// listing returns the sorted entries of d, reading the directory only if
// this call has not (recently) read it.
func (s *stage) listing(r *os.Root, d outPath) ([]abi.DirEntry, *refusal) {
	if i := slices.IndexFunc(s.listings, func(l listing) bool { return l.dir == d }); i >= 0 {
		l := s.listings[i]
		s.listings = append(slices.Delete(s.listings, i, i+1), l)
		return l.ents, nil
	}
	name := d.path
	if name == "" {
		name = "."
	}
	// Directories this call's staging created were not on disk when it
	// began: like its staged files, they are not listed, and listing one
	// finds nothing.
	made := map[string]bool{}
	for _, c := range s.created {
		switch {
		case c.output != d.output:
		case c.path == d.path:
			return nil, &refusal{status: abi.ErrNotFound}
		case path.Dir(c.path) == name:
			made[path.Base(c.path)] = true
		}
	}
	all, err := s.readDir(r, name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, &refusal{status: abi.ErrNotFound}
	case errors.Is(err, syscall.ENOTDIR):
		return nil, refuse(abi.ErrInvalid, ErrDenied, "list %s: not a directory", abi.Quote(name))
	case err != nil:
		return nil, fsRefusal("list", name, err)
	}
	ents := make([]abi.DirEntry, 0, len(all))
	for _, e := range all {
		if n := e.Name(); !strings.HasPrefix(n, abi.StagePrefix) && len(n) <= abi.MaxNameLen && !made[n] {
			ents = append(ents, abi.DirEntry{Type: entryType(e.Type()), Name: n})
		}
	}
	slices.SortFunc(ents, func(a, b abi.DirEntry) int { return strings.Compare(a.Name, b.Name) })
	if len(s.listings) == maxListings {
		s.listings = slices.Delete(s.listings, 0, 1)
	}
	s.listings = append(s.listings, listing{dir: d, ents: ents})
	return ents, nil
}

// forgetListings drops the call's listings once it has returned: a Result
// may wait a while for its commit.
func (s *stage) forgetListings() { s.listings = nil }

// readDir reads the directory dir of r. It opens it with openDirFlags, so
// anything but a directory fails at once rather than blocking.
func readDir(r *os.Root, dir string) ([]fs.DirEntry, error) {
	f, err := r.OpenFile(dir, openDirFlags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.ReadDir(-1)
}

func entryType(m fs.FileMode) abi.EntryType {
	switch {
	case m.IsRegular():
		return abi.TypeFile
	case m.IsDir():
		return abi.TypeDir
	case m&fs.ModeSymlink != 0:
		return abi.TypeSymlink
	}
	return abi.TypeOther
}
