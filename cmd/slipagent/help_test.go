package main

import (
	"strings"
	"testing"
)

// TestHelp checks that every command prints its usage to stdout and exits
// 0, both for "CMD -h" and for "help CMD".
func TestHelp(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{c.name, "-h"}, {"help", c.name}} {
			code, out, errOut := runCmd(t, args...)
			if code != exitOK || !strings.Contains(out, "usage: slipagent "+c.name) || errOut != "" {
				t.Errorf("%q = %d, stdout %q, stderr %q; want the usage on stdout and exit 0", args, code, out, errOut)
			}
		}
	}
	for _, args := range [][]string{{"snapshot", "dump", "-h"}} {
		code, out, errOut := runCmd(t, args...)
		if code != exitOK || !strings.Contains(out, "usage: slipagent "+args[0]) || errOut != "" {
			t.Errorf("%q = %d, stdout %q, stderr %q; want the usage on stdout and exit 0", args, code, out, errOut)
		}
	}
	// "help A B" prints what "A B -h" prints.
	for _, sub := range [][]string{{"plugin", "run"}, {"fleet", "wait"}, {"snapshot", "dump"}, {"kv", "get"}} {
		code, out, errOut := runCmd(t, append([]string{"help"}, sub...)...)
		_, want, _ := runCmd(t, append(sub, "-h")...)
		if code != exitOK || out != want || errOut != "" {
			t.Errorf("help %s = %d, stdout %q, stderr %q; want what %[1]s -h prints:\n%[5]s", strings.Join(sub, " "), code, out, errOut, want)
		}
	}
	code, out, _ := runCmd(t, "help")
	if code != exitOK || !strings.Contains(out, "exit codes:") || !strings.Contains(out, "4    kv: no NATS server could be reached") {
		t.Errorf("help = %d %q; want the commands and the exit-code table", code, out)
	}
	if code, _, errOut := runCmd(t, "help", "frobnicate"); code != exitUsage || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("help frobnicate = %d %q", code, errOut)
	}
	// An unknown subcommand is a usage error under -h and help too, as
	// for every command that has subcommands.
	for _, args := range [][]string{
		{"help", "kv", "bogus"}, {"kv", "bogus", "-h"}, {"kv", "-server", "nats://127.0.0.1:1", "bogus", "-h"},
		{"help", "snapshot", "bogus"}, {"plugin", "bogus", "-h"}, {"help", "fleet", "bogus"},
	} {
		if code, out, errOut := runCmd(t, args...); code != exitUsage || out != "" || !strings.Contains(errOut, `"bogus"`) {
			t.Errorf("%q = %d, stdout %q, stderr %q; want exit 2 naming the subcommand", args, code, out, errOut)
		}
	}
	// A bad flag is a usage error, with the usage on stderr.
	if code, out, errOut := runCmd(t, "status", "-frobnicate"); code != exitUsage || out != "" || !strings.Contains(errOut, "usage: slipagent status") {
		t.Errorf("status -frobnicate = %d %q %q", code, out, errOut)
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCmd(t, "version")
	if code != exitOK || !strings.HasPrefix(out, "slipagent ") || !strings.Contains(out, "plugin ABI: 1") || !strings.Contains(out, "go:         go1.") {
		t.Errorf("version = %d %q", code, out)
	}
	code, out, _ = runCmd(t, "version", "-json")
	if code != exitOK || !strings.Contains(out, `"plugin_abi": [`) || !strings.Contains(out, `"go": "go1.`) {
		t.Errorf("version -json = %d %q", code, out)
	}
}

// A command that takes flags only refuses an argument before it does
// anything: "validate new.hcl" (without -config) must not validate the
// default configuration and say ok, nor "dev extra" start a server.
func TestFlagsOnlyCommandsRefuseArguments(t *testing.T) {
	for _, name := range []string{"run", "validate", "status", "dev", "once", "plan", "version"} {
		code, out, errOut := runCmd(t, name, "new.hcl")
		if code != exitUsage || out != "" || !strings.Contains(errOut, `slipagent `+name+`: unexpected argument "new.hcl"`) || !strings.Contains(errOut, "usage: slipagent "+name) {
			t.Errorf("%s new.hcl = %d, stdout %q, stderr %q; want exit 2 naming the argument, with the usage", name, code, out, errOut)
		}
	}
	if _, _, errOut := runCmd(t, "validate", "new.hcl"); !strings.Contains(errOut, "given with -config") {
		t.Errorf("validate new.hcl says %q; want the -config hint", errOut)
	}
}

// A command line missing what a command needs says what is missing on a
// line of its own before the usage, and exits 2.
func TestUsageErrorsSayWhatIsWrong(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string // stderr's first line
	}{
		{"resync without --confirm", []string{"resync"}, "slipagent resync: give the held watch with --confirm WATCH"},
		{"resync with an argument", []string{"resync", "--confirm", "a", "b"}, `slipagent resync: unexpected argument "b" (the watch is given with --confirm WATCH)`},
		{"plugin compile with nothing", []string{"plugin", "compile"}, "slipagent plugin compile: give MODULE.wasm files or -config PATH"},
		{"plugin compile with both", []string{"plugin", "compile", "-config", "agent.hcl", "m.wasm"}, "slipagent plugin compile: give MODULE.wasm files or -config PATH, not both"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCmd(t, tt.args...)
			first, rest, _ := strings.Cut(errOut, "\n")
			if code != exitUsage || out != "" || first != tt.want || !strings.HasPrefix(rest, "usage: ") {
				t.Errorf("%q = %d, stdout %q, stderr %q; want exit 2 and %q before the usage", tt.args, code, out, errOut, tt.want)
			}
		})
	}
}
