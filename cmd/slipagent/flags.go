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
