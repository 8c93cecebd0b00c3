package pebblefold

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/snapshot"
)

// A second Open of a fold this process holds is refused with
// snapshot.ErrLocked, as a second Open of a held log is, and the fold
// opens again once the first is closed.
func TestASecondOpenIsLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fold")
	f, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, open := range map[string]func(string, Options) (*Fold, error){"Open": Open, "OpenReadOnly": OpenReadOnly} {
		if _, err := open(dir, Options{}); !errors.Is(err, snapshot.ErrLocked) || !strings.Contains(err.Error(), dir) {
			t.Errorf("%s of a fold held open: %v, want snapshot.ErrLocked naming %s", name, err, dir)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f, err = Open(dir, Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	f.Close()
}

// A fold another process holds is refused with snapshot.ErrLocked too
// (Pebble's lock is fcntl's, which fails with EAGAIN or EACCES there).
func TestAFoldOpenInAnotherProcessIsLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "fold")
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), "SLIPSTREAM_HOLD_FOLD="+dir)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer child.Wait()
	defer stdin.Close() // the child closes its fold and exits
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "held\n" {
		t.Fatalf("child said %q (%v)", line, err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, snapshot.ErrLocked) {
		t.Fatalf("Open of a fold another process holds: %v, want snapshot.ErrLocked", err)
	}
}

// holdFold opens the fold in dir, says "held" and keeps it open until its
// standard input ends.
func holdFold(dir string) {
	f, err := Open(dir, Options{})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	fmt.Println("held")
	io.Copy(io.Discard, os.Stdin)
	f.Close()
}

// A directory that holds other files and no fold is refused, and left as
// it was; an empty one, or a file system's root with only lost+found,
// takes a fold.
func TestOpenRefusesADirectoryOfOtherFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "nginx.conf") || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open of a directory of other files: %v, want a refusal naming it and its file", err)
	}
	if names, _ := os.ReadDir(dir); len(names) != 1 {
		t.Errorf("the refused Open left %d entries, want the 1 that was there", len(names))
	}

	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "lost+found"), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := Open(root, Options{})
	if err != nil {
		t.Fatalf("Open of a directory with only lost+found: %v", err)
	}
	f.Close()
	f, err = Open(root, Options{}) // again, now that it holds a fold
	if err != nil {
		t.Fatalf("reopening: %v", err)
	}
	f.Close()
}

// A directory holding Pebble's tables without the files that describe them
// (a fold that lost its manifest) is damage to move aside, not someone
// else's directory.
func TestADirectoryOfTablesWithoutAManifestIsCorrupted(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "000123.sst"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{}); !errors.Is(err, snapshot.ErrCorrupted) {
		t.Fatalf("Open: %v, want snapshot.ErrCorrupted", err)
	}
}
