package main

import (
	"context"
	"flag"
	"fmt"
	"io"
)

// Exit codes.
const (
	exitOK          = 0   // success
	exitFailure     = 1   // the command ran and failed (e.g. a refused snapshot file)
	exitUsage       = 2   // bad command line
	exitInterrupted = 130 // a second SIGINT/SIGTERM forced the exit
)

// command is one top-level subcommand (or group). Each lives in its own
// file; add new ones to commands.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{"run", "run the agent (the systemd service)", runRun},
	{"dev", "run the agent on an embedded NATS server with the example plugins", runDev},
	{"validate", "check a configuration and its plugin modules", runValidate},
	{"status", "show the watches of a running agent", runStatus},
	{"resync", "confirm a mass deletion the guard holds (--confirm WATCH)", runResync},
	{"kv", "get, put, delete, list or watch keys of a bucket", runKV},
	{"snapshot", "inspect, verify, dump or repair a snapshot (fold) file", runSnapshot},
}

// run is the whole program: main only wires the process to it, so tests
// call it with buffers.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "slipagent: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: slipagent <command> [arguments]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'slipagent <command> -h' for a command's usage.")
}

// parseArgs parses flags that may come before or after the positional
// arguments ("dump --json FILE" and "dump FILE --json").
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}
