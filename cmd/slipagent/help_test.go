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
