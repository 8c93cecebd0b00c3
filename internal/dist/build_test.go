package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestBuildPackagesHoldTheSameFiles builds every artifact from stand-ins for
// the binary and the plugins (the real ones are installed by .ci/run) and
// reads each back: the same files at the same paths with the same modes,
// the configuration a config file the package manager keeps on upgrade.
func TestBuildPackagesHoldTheSameFiles(t *testing.T) {
	in := t.TempDir()
	binary := filepath.Join(in, "slipagent")
	writeFile(t, binary, "#!/bin/sh\necho stand-in\n")
	plugins := filepath.Join(in, "plugins")
	writeFile(t, filepath.Join(plugins, "files.wasm"), "\x00asm files")
	writeFile(t, filepath.Join(plugins, "template.wasm"), "\x00asm template")
	writeFile(t, filepath.Join(plugins, "README.md"), "not a plugin")
	out := filepath.Join(t.TempDir(), "dist")
	built, err := build(options{Version: "v1.2.3-4-gabcdef0", Arch: "arm64", Binary: binary, Plugins: plugins, Root: "../..", Out: out})
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, len(built))
	for i, p := range built {
		names[i] = filepath.Base(p)
	}
	wantNames := []string{"slipagent_1.2.3+git4.abcdef0_linux_arm64.tar.gz", "slipagent_1.2.3+git4.abcdef0_arm64.deb", "slipagent-1.2.3+git4.abcdef0-1.aarch64.rpm"}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("built %q, want %q", names, wantNames)
	}
	unit, _ := os.ReadFile("../../contrib/slipagent.service")
	dropIn, _ := os.ReadFile("../../contrib/slipagent.service.d/hooks-restart-services.conf")
	config, _ := os.ReadFile("../../agent.hcl.example")
	want := map[string]file{
		binaryPath:                     {mode: 0o755, data: "#!/bin/sh\necho stand-in\n"},
		unitPath:                       {mode: 0o644, data: string(unit)},
		dropInPath:                     {mode: 0o644, data: string(dropIn)},
		configPath:                     {mode: 0o640, data: string(config)},
		pluginsPath + "/files.wasm":    {mode: 0o644, data: "\x00asm files"},
		pluginsPath + "/template.wasm": {mode: 0o644, data: "\x00asm template"},
	}

	tarFiles := readTarGz(t, mustOpen(t, built[0]), "slipagent_1.2.3+git4.abcdef0_linux_arm64/")
	checkFiles(t, "tarball", tarFiles, want)

	members := readAr(t, built[1])
	debFiles := readTarGz(t, bytes.NewReader(members["data.tar.gz"]), "./")
	checkFiles(t, "deb", debFiles, want)
	control := readTarGz(t, bytes.NewReader(members["control.tar.gz"]), "./")
	if got := control["/conffiles"].data; got != configPath+"\n" {
		t.Errorf("deb conffiles %q, want %q", got, configPath+"\n")
	}
	for script, from := range map[string]string{"/postinst": "deb-postinst", "/prerm": "deb-prerm", "/postrm": "deb-postrm"} {
		want, _ := os.ReadFile("../../contrib/packaging/" + from)
		if got := control[script]; got.data != string(want) || got.mode&0o111 == 0 {
			t.Errorf("deb %s: mode %o, %d bytes; want contrib/packaging/%s, executable", script, got.mode, len(got.data), from)
		}
	}
	for _, field := range []string{"Package: slipagent\n", "Version: 1.2.3+git4.abcdef0\n", "Architecture: arm64\n"} {
		if !strings.Contains(control["/control"].data, field) {
			t.Errorf("deb control lacks %q:\n%s", field, control["/control"].data)
		}
	}

	rpm := readRPM(t, built[2])
	for path, w := range want {
		f, ok := rpm[path]
		switch {
		case !ok:
			t.Errorf("rpm lacks %s", path)
		case f.mode != w.mode:
			t.Errorf("rpm %s: mode %o, want %o", path, f.mode, w.mode)
		}
	}
	if extra := slices.DeleteFunc(slices.Sorted(maps.Keys(rpm)), func(p string) bool { _, ok := want[p]; return ok }); len(extra) > 0 {
		t.Errorf("rpm holds files not asked for: %q", extra)
	}
	const rpmConfig, rpmNoReplace = 1, 16
	if f := rpm[configPath]; f.flags != rpmConfig|rpmNoReplace {
		t.Errorf("rpm %s: flags %d, want config|noreplace", configPath, f.flags)
	}
	if f := rpm[binaryPath]; f.flags != 0 {
		t.Errorf("rpm %s: flags %d, want none", binaryPath, f.flags)
	}
}

func TestBuildRefusesMissingInputs(t *testing.T) {
	in := t.TempDir()
	writeFile(t, filepath.Join(in, "slipagent"), "x")
	_, err := build(options{Version: "v1.0.0", Arch: "amd64", Binary: filepath.Join(in, "slipagent"), Plugins: in, Root: "../..", Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "make plugins-go") {
		t.Errorf("without plugins: %v", err)
	}
	_, err = build(options{Version: "v1.0.0", Arch: "amd64", Binary: filepath.Join(in, "nope"), Plugins: in, Root: "../..", Out: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("without the binary: %v", err)
	}
}

func TestPackageVersion(t *testing.T) {
	for describe, want := range map[string]string{
		"v1.2.3":                  "1.2.3",
		"v1.2.3-dirty":            "1.2.3+dirty",
		"v1.2.3-4-gabcdef0":       "1.2.3+git4.abcdef0",
		"v1.2.3-4-gabcdef0-dirty": "1.2.3+git4.abcdef0.dirty",
		"v0.0.0-904-g59c3b82":     "0.0.0+git904.59c3b82", // the Makefile's for a tree without a tag
		"59c3b82":                 "0.0.0+git59c3b82",
		"59c3b82-dirty":           "0.0.0+git59c3b82.dirty",
		"v1.2.3-rc1":              "0.0.0+git1.2.3.rc1",
	} {
		if got := packageVersion(describe); got != want {
			t.Errorf("packageVersion(%q) = %q, want %q", describe, got, want)
		}
	}
}

type file struct {
	mode  fs.FileMode
	data  string
	flags int32 // rpm file flags
}

func checkFiles(t *testing.T, what string, got, want map[string]file) {
	t.Helper()
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Errorf("%s holds %q, want %q", what, g, w)
	}
	for path, w := range want {
		if g, ok := got[path]; ok && (g.mode != w.mode || g.data != w.data) {
			t.Errorf("%s %s: mode %o, %d bytes; want mode %o, %d bytes", what, path, g.mode, len(g.data), w.mode, len(w.data))
		}
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustOpen(t *testing.T, path string) io.Reader {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.NewReader(data)
}

// readTarGz returns the regular files of a gzipped tar by absolute path
// (the name without prefix, after a "/").
func readTarGz(t *testing.T, r io.Reader, prefix string) map[string]file {
	t.Helper()
	zr, err := gzip.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	files := map[string]file{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h.Name, prefix) {
			t.Errorf("tar entry %q outside %q", h.Name, prefix)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimPrefix(h.Name, prefix)
		if prefix == "./" {
			name = strings.TrimPrefix(h.Name, ".") // the deb's data is rooted at "./"
		} else {
			name = "/" + name
		}
		files[name] = file{mode: fs.FileMode(h.Mode).Perm(), data: string(data)}
	}
}

// readAr returns the members of an ar archive (a .deb) by name.
func readAr(t *testing.T, path string) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, []byte("!<arch>\n")) {
		t.Fatalf("%s is not an ar archive", path)
	}
	members := map[string][]byte{}
	for rest := data[8:]; len(rest) >= 60; {
		name := strings.TrimSuffix(strings.TrimSpace(string(rest[:16])), "/")
		size, err := strconv.Atoi(strings.TrimSpace(string(rest[48:58])))
		if err != nil || 60+size > len(rest) {
			t.Fatalf("%s: bad ar member header %q", path, rest[:60])
		}
		members[name] = rest[60 : 60+size]
		rest = rest[60+size+size%2:]
	}
	return members
}

// readRPM returns the regular files an .rpm lists in its header, with their
// modes and flags.
func readRPM(t *testing.T, path string) map[string]file {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const leadSize = 96
	sig, sigLen, err := rpmHeader(data[leadSize:])
	if err != nil || sig == nil {
		t.Fatalf("%s: signature header: %v", path, err)
	}
	off := leadSize + (sigLen+7)/8*8
	h, _, err := rpmHeader(data[off:])
	if err != nil {
		t.Fatalf("%s: header: %v", path, err)
	}
	const (
		tagFileModes   = 1030
		tagFileFlags   = 1037
		tagDirIndexes  = 1116
		tagBaseNames   = 1117
		tagDirNames    = 1118
		modeTypeMask   = 0o170000
		modeTypeRegFil = 0o100000
	)
	base, dirs := h.strings(tagBaseNames), h.strings(tagDirNames)
	idx, flags, modes := h.int32s(tagDirIndexes), h.int32s(tagFileFlags), h.int16s(tagFileModes)
	if len(idx) != len(base) || len(flags) != len(base) || len(modes) != len(base) {
		t.Fatalf("%s: %d names, %d dir indexes, %d flags, %d modes", path, len(base), len(idx), len(flags), len(modes))
	}
	files := map[string]file{}
	for i, b := range base {
		if int(modes[i])&modeTypeMask != modeTypeRegFil {
			continue
		}
		files[dirs[idx[i]]+b] = file{mode: fs.FileMode(modes[i]).Perm(), flags: flags[i]}
	}
	return files
}

// rpmIndex is one RPM header structure: its index entries by tag and its
// data store.
type rpmIndex struct {
	entries map[int32][3]uint32 // type, offset, count
	store   []byte
}

// rpmHeader parses the header structure at the start of b and returns it
// with its length.
func rpmHeader(b []byte) (*rpmIndex, int, error) {
	if len(b) < 16 || !bytes.Equal(b[:3], []byte{0x8e, 0xad, 0xe8}) {
		return nil, 0, fmt.Errorf("no header magic")
	}
	n, size := int(binary.BigEndian.Uint32(b[8:])), int(binary.BigEndian.Uint32(b[12:]))
	end := 16 + n*16 + size
	if end > len(b) {
		return nil, 0, fmt.Errorf("header of %d entries and %d bytes is truncated", n, size)
	}
	h := &rpmIndex{entries: map[int32][3]uint32{}, store: b[16+n*16 : end]}
	for i := range n {
		e := b[16+i*16:]
		h.entries[int32(binary.BigEndian.Uint32(e))] = [3]uint32{binary.BigEndian.Uint32(e[4:]), binary.BigEndian.Uint32(e[8:]), binary.BigEndian.Uint32(e[12:])}
	}
	return h, end, nil
}

func (h *rpmIndex) strings(tag int32) []string {
	e, ok := h.entries[tag]
	if !ok {
		return nil
	}
	parts := strings.SplitN(string(h.store[e[1]:]), "\x00", int(e[2])+1)
	return parts[:min(len(parts), int(e[2]))]
}

func (h *rpmIndex) int32s(tag int32) []int32 {
	e := h.entries[tag]
	out := make([]int32, e[2])
	for i := range out {
		out[i] = int32(binary.BigEndian.Uint32(h.store[int(e[1])+4*i:]))
	}
	return out
}

func (h *rpmIndex) int16s(tag int32) []uint16 {
	e := h.entries[tag]
	out := make([]uint16, e[2])
	for i := range out {
		out[i] = binary.BigEndian.Uint16(h.store[int(e[1])+2*i:])
	}
	return out
}
