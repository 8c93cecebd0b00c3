package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/slipstreamkv/slipstream/agent"
)

const resyncUsage = `usage: slipagent resync --confirm WATCH [-config PATH]

Confirms the batch the deletion guard holds for WATCH (see the watch's guard
block): a resync or batch that would remove more than max_delete_fraction of
the watch's keys waits for this. The agent, running or started later, then
applies it with a full render, so the watch's outputs equal its bucket again
(which may remove most of them). Exits 1 if the watch is not held.`

func runResync(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent resync", stderr)
	path := fs.String("config", defaultConfig, "configuration file, or directory of *.hcl files")
	watch := fs.String("confirm", "", "the held watch whose batch to apply")
	if err := fs.Parse(args); err != nil {
		return parseFailed(fs, resyncUsage, err, stdout, stderr)
	}
	switch {
	case *watch == "":
		fmt.Fprintln(stderr, "slipagent resync: give the held watch with --confirm WATCH")
		printUsage(stderr, fs, resyncUsage)
		return exitUsage
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "slipagent resync: unexpected argument %q (the watch is given with --confirm WATCH)\n", fs.Arg(0))
		printUsage(stderr, fs, resyncUsage)
		return exitUsage
	}
	cfg, code := loadConfig(*path, stderr)
	if cfg == nil {
		return code
	}
	err := agent.ConfirmHold(cfg, *watch)
	switch {
	case errors.Is(err, agent.ErrUnknownWatch):
		fmt.Fprintf(stderr, "slipagent resync: %s declares no watch %q\n", *path, *watch)
		return exitFailure
	case errors.Is(err, agent.ErrNotHeld):
		fmt.Fprintf(stderr, "slipagent resync: watch %q of %s (data_dir %s) is not held: nothing to confirm\n", *watch, *path, cfg.DataDir)
		return exitFailure
	case err != nil:
		fmt.Fprintf(stderr, "slipagent resync: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "confirmed: the agent applies the held batch of watch %q with a full render\n", *watch)
	return exitOK
}
