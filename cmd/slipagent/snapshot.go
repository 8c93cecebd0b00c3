package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot"
)

const snapshotUsage = `usage: slipagent snapshot <inspect|verify|dump|repair> [flags] FILE
       slipagent snapshot export FILE DIR
       slipagent snapshot import DIR FILE

  inspect FILE        record counts, cursor, keys, size, compaction ratio,
                      first bad offset and what loading would do
  verify FILE         exit 0 if the file loads, 1 if it is refused
  dump [--json] FILE  the entries and cursor loading the file gives
  repair [-force] FILE
                      do to the file what loading does (drop a torn tail,
                      compact, reset an empty state to the bare header); a
                      file loading refuses is cut back to the records before
                      its damage (a zero hole, a bad record); one with a
                      damaged header cannot be salvaged: -force moves it
                      aside (FILE.quarantined-<UTC time>)
  export FILE DIR     write the fold as an artifact into DIR (absent or
                      empty): data/fold.snap compacted and MANIFEST.json
                      with BLAKE3 digests, the format of the Rust crate
                      beyond-slipstream; prints its cursor
  import DIR FILE     verify the artifact in DIR (manifest, digests, a
                      fold that loads at the manifest's cursor) and make it
                      the fold FILE, which must not exist; a bad artifact
                      is refused and nothing is written

inspect, verify, dump and export never modify the file and work while an
agent has it open; repair refuses to touch a file an agent has open. A fold is a
cache of its bucket: the agent moves a fold that does not load aside and
rebuilds it from the bucket by itself.`

func runSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, snapshotUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("slipagent snapshot "+sub, stderr)
	asJSON, force := false, false
	switch sub {
	case "dump":
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	case "repair":
		fs.BoolVar(&force, "force", false, "move aside a file that cannot be salvaged")
	}
	var do func(path string, stdout, stderr io.Writer) int
	var do2 func(a, b string) int // for the subcommands of two arguments
	switch sub {
	case "inspect":
		do = snapshotInspect
	case "verify":
		do = snapshotVerify
	case "dump":
		do = func(path string, stdout, stderr io.Writer) int { return snapshotDump(path, asJSON, stdout, stderr) }
	case "repair":
		do = func(path string, stdout, stderr io.Writer) int { return snapshotRepair(path, force, stdout, stderr) }
	case "export":
		do2 = func(path, dir string) int { return snapshotExport(ctx, path, dir, stdout, stderr) }
	case "import":
		do2 = func(dir, path string) int { return snapshotImport(dir, path, stdout, stderr) }
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, snapshotUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "slipagent snapshot: unknown subcommand %q\n%s\n", sub, snapshotUsage)
		return exitUsage
	}
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseFailed(fs, snapshotUsage, err, stdout, stderr)
	}
	if do2 != nil {
		if len(pos) != 2 {
			fmt.Fprintf(stderr, "slipagent snapshot %s: want two arguments\n%s\n", sub, snapshotUsage)
			return exitUsage
		}
		return do2(pos[0], pos[1])
	}
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "slipagent snapshot %s: want exactly one FILE\n%s\n", sub, snapshotUsage)
		return exitUsage
	}
	return do(pos[0], stdout, stderr)
}

// keysAt is "N keys at cursor C".
func keysAt(n int, c kvcore.Cursor) string {
	return count(n, "key", "keys") + " at cursor " + cursorText(c)
}

func cursorText(c kvcore.Cursor) string {
	if c.IsNone() {
		return "none"
	}
	return c.String() + " (0x" + c.Hex() + ")"
}

func snapshotInspect(path string, stdout, stderr io.Writer) int {
	rep, err := snapshot.Inspect(path)
	if rep == nil {
		fmt.Fprintf(stderr, "slipagent snapshot inspect: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "file:             %s\n", path)
	fmt.Fprintf(stdout, "size:             %d bytes\n", rep.Size)
	fmt.Fprintf(stdout, "records:          %d put, %d delete, %d cursor\n", rep.Puts, rep.Deletes, rep.Cursors)
	fmt.Fprintf(stdout, "keys:             %d\n", rep.Keys)
	fmt.Fprintf(stdout, "cursor:           %s\n", cursorText(rep.Cursor))
	off, bad := rep.BadOffset()
	if err == nil {
		fmt.Fprintf(stdout, "compacted size:   %d bytes (ratio %.2f)\n", rep.CompactedSize, rep.Ratio())
	}
	switch {
	case err != nil:
		fmt.Fprintf(stdout, "first bad offset: %d (%v)\n", off, err)
		fmt.Fprintf(stdout, "load:             refuses the file and leaves it untouched\n")
		return exitFailure
	case bad:
		fmt.Fprintf(stdout, "first bad offset: %d (torn tail of %d bytes, dropped by load)\n", off, rep.Size-off)
	default:
		fmt.Fprintf(stdout, "first bad offset: none\n")
	}
	fmt.Fprintf(stdout, "load:             %s\n", actionText(rep.Action))
	return exitOK
}

func actionText(a snapshot.Action) string {
	switch a {
	case snapshot.ActionCompact:
		return "rewrites it compacted"
	case snapshot.ActionReset:
		return "rewrites it to the bare header (no entries, no cursor)"
	}
	return "leaves it as it is"
}

func snapshotVerify(path string, stdout, stderr io.Writer) int {
	rep, err := snapshot.Inspect(path)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent snapshot verify: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "%s: ok, %s", path, keysAt(rep.Keys, rep.Cursor))
	if rep.Action != snapshot.ActionNone {
		fmt.Fprintf(stdout, "; load %s", actionText(rep.Action))
	}
	fmt.Fprintln(stdout)
	return exitOK
}

type dumpJSON struct {
	Cursor  *string     `json:"cursor"`
	Entries []dumpEntry `json:"entries"`
}

type dumpEntry struct {
	Key     string `json:"key"`
	Value   []byte `json:"value"` // base64
	Version string `json:"version"`
}

type dumpError struct {
	Error struct {
		Kind    string `json:"kind"`
		Message string `json:"message"`
		Offset  int64  `json:"offset"`
	} `json:"error"`
}

func snapshotDump(path string, asJSON bool, stdout, stderr io.Writer) int {
	rep, err := snapshot.Inspect(path)
	if err != nil {
		if asJSON {
			var e dumpError
			e.Error.Kind, e.Error.Message = "io", err.Error()
			var fe *snapshot.FormatError
			if errors.As(err, &fe) {
				e.Error.Kind, e.Error.Offset = fe.Kind.String(), fe.Offset
			}
			writeJSON(stdout, e)
		}
		fmt.Fprintf(stderr, "slipagent snapshot dump: %v\n", err)
		return exitFailure
	}
	s := rep.Snapshot()
	if asJSON {
		out := dumpJSON{Entries: []dumpEntry{}}
		if s != nil {
			if !s.Cursor.IsNone() {
				h := s.Cursor.Hex()
				out.Cursor = &h
			}
			for _, e := range s.Entries {
				out.Entries = append(out.Entries, dumpEntry{Key: e.Key, Value: e.Value, Version: e.Version.Hex()})
			}
		}
		writeJSON(stdout, out)
		return exitOK
	}
	if s == nil {
		fmt.Fprintln(stdout, "cursor: none\n(no entries)")
		return exitOK
	}
	fmt.Fprintf(stdout, "cursor: %s\n", cursorText(s.Cursor))
	for _, e := range s.Entries {
		fmt.Fprintf(stdout, "%s\t%s\t%q\n", e.Key, e.Version, e.Value)
	}
	return exitOK
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

func snapshotRepair(path string, force bool, stdout, stderr io.Writer) int {
	// One read, under the log's lock: the report describes the file as
	// Repair found it, and nothing else writes it meanwhile.
	rep, err := snapshot.Repair(path)
	var fe *snapshot.FormatError
	if errors.As(err, &fe) {
		return snapshotSalvage(path, force, stdout, stderr)
	}
	if err != nil {
		return repairFailed(err, stderr)
	}
	var changes []string
	if off, torn := rep.BadOffset(); torn {
		changes = append(changes, fmt.Sprintf("dropped %d bytes of torn tail at offset %d", rep.Size-off, off))
	}
	switch rep.Action {
	case snapshot.ActionNone:
		fmt.Fprintf(stdout, "%s: nothing to repair (%s)\n", path, keysAt(rep.Keys, rep.Cursor))
		return exitOK
	case snapshot.ActionReset:
		changes = append(changes, "no entries and no cursor: reset to the bare header")
	case snapshot.ActionCompact:
		if n := rep.Puts - rep.Keys + rep.Deletes; n > 0 {
			changes = append(changes, fmt.Sprintf("dropped %d overwritten or deleting records", n))
		}
		if rep.Cursors > 1 {
			changes = append(changes, fmt.Sprintf("dropped %d stale cursor records", rep.Cursors-1))
		}
		changes = append(changes, "rewrote it compacted")
	}
	fmt.Fprintf(stdout, "%s: %s; %d -> %d bytes, %s\n", path, strings.Join(changes, "; "),
		rep.Size, rep.CompactedSize, keysAt(rep.Keys, rep.Cursor))
	return exitOK
}

// snapshotSalvage handles a file loading refuses: it cuts it back to the
// records before the damage or, when nothing can be kept, explains that the
// fold is a cache and moves it aside with -force.
func snapshotSalvage(path string, force bool, stdout, stderr io.Writer) int {
	rep, err := snapshot.Salvage(path)
	switch {
	case err == nil && rep.Err == nil: // repaired meanwhile: nothing left to cut
		fmt.Fprintf(stdout, "%s: loads as it is now (%s)\n", path, keysAt(rep.Keys, rep.Cursor))
		return exitOK
	case err == nil:
		cut, _ := rep.BadOffset()
		fmt.Fprintf(stdout, "%s: cut the damaged tail at offset %d (%s); dropped %d of %d bytes; kept %d put, %d delete, %d cursor records: %s\n",
			path, cut, damage(rep.Err), rep.Size-cut, rep.Size, rep.Puts, rep.Deletes, rep.Cursors, keysAt(rep.Keys, rep.Cursor))
		fmt.Fprintln(stdout, "the agent fetches what followed the cut from the bucket, and compacts the file when it loads it")
		return exitOK
	case errors.Is(err, snapshot.ErrUnsalvageable) && force:
		dst, qerr := snapshot.Quarantine(path)
		if qerr != nil {
			return repairFailed(qerr, stderr)
		}
		fmt.Fprintf(stdout, "%s: cannot be salvaged (%s); moved it aside to %s: the agent rebuilds the fold from the bucket\n", path, damage(rep.Err), dst)
		return exitOK
	case errors.Is(err, snapshot.ErrUnsalvageable):
		fmt.Fprintf(stderr, "slipagent snapshot repair: %v\n", err)
		fmt.Fprintf(stderr, "the file was left untouched. A fold is a cache of its bucket: the agent moves a fold that does not load aside and rebuilds it from the bucket; to move it aside now, run: slipagent snapshot repair -force %s\n", path)
		return exitFailure
	}
	return repairFailed(err, stderr)
}

// repairFailed reports a repair that failed.
func repairFailed(err error, stderr io.Writer) int {
	fmt.Fprintf(stderr, "slipagent snapshot repair: %v\n", err)
	if errors.Is(err, snapshot.ErrLocked) {
		fmt.Fprintln(stderr, "stop the agent that has it open first (inspect, verify and dump work while it runs); the file was left untouched")
	}
	return exitFailure
}

// damage names what is wrong in a refused file: "corrupted: <reason>".
func damage(err error) string {
	var fe *snapshot.FormatError
	if errors.As(err, &fe) {
		return fe.Kind.String() + ": " + fe.Reason
	}
	return err.Error()
}
