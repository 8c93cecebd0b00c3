package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// newFlagSet returns a flag set whose parse errors go to stderr and whose
// usage newFlagSet's callers print with parseFailed.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // parseFailed prints it, to the right stream
	return fs
}

// parseFailed handles an error of parsing fs: for -h it prints the usage to
// stdout and returns exitOK; otherwise (flag has already printed the
// error to stderr) it prints the usage to stderr and returns exitUsage.
func parseFailed(fs *flag.FlagSet, usage string, err error, stdout, stderr io.Writer) int {
	w := stderr
	if errors.Is(err, flag.ErrHelp) {
		w = stdout
	}
	printUsage(w, fs, usage)
	return usageCode(err)
}

// printUsage prints a command's usage text and its flags.
func printUsage(w io.Writer, fs *flag.FlagSet, usage string) {
	fmt.Fprintln(w, usage)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if !hasFlags {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	out := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(out)
}

// usageCode is the exit code for a flag parsing error: 0 for -h.
func usageCode(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

// parseArgs parses flags that may come before or after the positional
// arguments ("dump --json FILE" and "dump FILE --json"). On an error it
// returns the positional arguments read before it too, so that a command
// can still refuse an unknown subcommand given with -h.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return pos, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseFlagsOnly parses args for a command that takes no positional
// argument. ok is false when the command must exit with code: after -h
// (usage on stdout, exitOK), a bad flag or an argument (usage on stderr,
// exitUsage). An argument given to a command that reads a configuration is
// most likely that configuration without -config: the message says so
// rather than let the command read the default one.
func parseFlagsOnly(fs *flag.FlagSet, usage string, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		return parseFailed(fs, usage, err, stdout, stderr), false
	}
	if fs.NArg() == 0 {
		return exitOK, true
	}
	hint := ""
	if fs.Lookup("config") != nil {
		hint = " (a configuration is given with -config)"
	}
	fmt.Fprintf(stderr, "%s: unexpected argument %q%s\n", fs.Name(), fs.Arg(0), hint)
	printUsage(stderr, fs, usage)
	return exitUsage, false
}
