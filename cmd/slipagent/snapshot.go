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

  inspect FILE        record counts, cursor, keys, size, compaction ratio,
                      first bad offset and what loading would do
  verify FILE         exit 0 if the file loads, 1 if it is refused
  dump [--json] FILE  the entries and cursor loading the file gives
  repair FILE         do to the file what loading does (drop a torn tail,
                      compact, reset an empty state to the bare header)

inspect, verify and dump never modify the file and work while an agent
has it open; repair refuses to touch a file an agent has open.`

func runSnapshot(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, snapshotUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	fs := newFlagSet("slipagent snapshot "+sub, stderr)
	asJSON := false
	if sub == "dump" {
		fs.BoolVar(&asJSON, "json", false, "print JSON")
	}
	var do func(path string, stdout, stderr io.Writer) int
	switch sub {
	case "inspect":
		do = snapshotInspect
	case "verify":
		do = snapshotVerify
	case "dump":
		do = func(path string, stdout, stderr io.Writer) int { return snapshotDump(path, asJSON, stdout, stderr) }
	case "repair":
		do = snapshotRepair
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
	if len(pos) != 1 {
		fmt.Fprintf(stderr, "slipagent snapshot %s: want exactly one FILE\n%s\n", sub, snapshotUsage)
		return exitUsage
	}
	return do(pos[0], stdout, stderr)
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
	fmt.Fprintf(stdout, "%s: ok, %d keys at cursor %s", path, rep.Keys, cursorText(rep.Cursor))
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

func snapshotRepair(path string, stdout, stderr io.Writer) int {
	// One read, under the log's lock: the report describes the file as
	// Repair found it, and nothing else writes it meanwhile.
	rep, err := snapshot.Repair(path)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent snapshot repair: %v\n", err)
		var fe *snapshot.FormatError
		switch {
		case errors.Is(err, snapshot.ErrLocked):
			fmt.Fprintln(stderr, "stop the agent that has it open first (inspect, verify and dump work while it runs); the file was left untouched")
		case errors.As(err, &fe):
			fmt.Fprintln(stderr, "the file was left untouched")
		}
		return exitFailure
	}
	var changes []string
	if off, torn := rep.BadOffset(); torn {
		changes = append(changes, fmt.Sprintf("dropped %d bytes of torn tail at offset %d", rep.Size-off, off))
	}
	switch rep.Action {
	case snapshot.ActionNone:
		fmt.Fprintf(stdout, "%s: nothing to repair (%d keys at cursor %s)\n", path, rep.Keys, cursorText(rep.Cursor))
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
	fmt.Fprintf(stdout, "%s: %s; %d -> %d bytes, %d keys at cursor %s\n", path, strings.Join(changes, "; "),
		rep.Size, rep.CompactedSize, rep.Keys, cursorText(rep.Cursor))
	return exitOK
}
