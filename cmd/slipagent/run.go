package main

import (
	"context"
	"fmt"
	"io"
)

// Exit codes. exitCodes documents them for "slipagent help"; the README's
// "Exit codes" section repeats the table.
const (
	exitOK          = 0   // success
	exitFailure     = 1   // the command ran and failed (e.g. a refused snapshot file)
	exitUsage       = 2   // bad command line
	exitNotFound    = 3   // kv: the key (or bucket) does not exist
	exitUnreachable = 4   // kv: no NATS server could be reached
	exitConflict    = 5   // kv create: the key exists; kv update: its revision differs
	exitTimeout     = 6   // fleet wait: the hosts did not apply the revision in time
	exitHeld        = 7   // once: the deletion guard holds a watch
	exitInterrupted = 130 // a second SIGINT/SIGTERM forced the exit
)

const exitCodes = `exit codes:
  0    success
  1    the command ran and failed (a refused file, a failing watch, a plugin error)
  2    bad command line (unknown command or flag, missing argument, a -server
       that is no server URL)
       plan -detailed-exitcode: changes present (terraform's convention)
  3    kv: the key or bucket does not exist
       fleet status: the report bucket; fleet wait -after-put: the bucket; plugin run -bucket: the bucket
  4    kv: no NATS server could be reached
       once, plan, fleet: likewise; plugin run -bucket too
  5    kv create: the key exists; kv update: the key's revision differs
  6    fleet wait: the hosts did not apply the revision before -timeout
  7    once: the deletion guard holds a watch (slipagent resync --confirm)
  130  a second SIGINT or SIGTERM forced the exit`

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
	{"once", "catch every watch up with its bucket, then exit", runOnce},
	{"plan", "show what once would change (a diff per file, the hooks), changing nothing", runPlan},
	{"validate", "check a configuration and its plugin modules", runValidate},
	{"status", "show the watches of a running agent", runStatus},
	{"resync", "confirm a mass deletion the guard holds (--confirm WATCH)", runResync},
	{"kv", "get, put, create, update, delete, purge, list, watch or show the history of keys of a bucket", runKV},
	{"snapshot", "inspect, verify, dump, repair, export or import a snapshot (fold) file", runSnapshot},
	{"fleet", "which hosts applied a revision: status, wait, serve a rollout page", runFleet},
	{"plugin", "inspect, compile or run a plugin module without an agent", runPlugin},
	{"version", "print the version, commit, Go version and plugin ABI", runVersion},
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
		if len(args) > 1 && args[0] == "help" {
			return help(ctx, args[1:], stdout, stderr)
		}
		usage(stdout)
		return exitOK
	}
	if c, ok := findCommand(args[0]); ok {
		return c.run(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "slipagent: unknown command %q\n\n", args[0])
	usage(stderr)
	return exitUsage
}

// help prints the usage of one command or subcommand ("slipagent help kv",
// "slipagent help plugin run"): what "slipagent kv -h" or "slipagent plugin
// run -h" prints, every command printing its usage to stdout for -h.
func help(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	c, ok := findCommand(args[0])
	if !ok {
		fmt.Fprintf(stderr, "slipagent help: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitUsage
	}
	return c.run(ctx, append(args[1:len(args):len(args)], "-h"), stdout, stderr)
}

func findCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: slipagent <command> [arguments]\n\ncommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'slipagent help <command> [<subcommand>]' (or 'slipagent <command> [<subcommand>] -h') for its usage.")
	fmt.Fprintln(w, "\n"+exitCodes)
}
