package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

const kvUsage = `usage: slipagent kv [flags] <command> BUCKET [arguments]

commands:
  get BUCKET KEY            print the value of KEY
  put BUCKET KEY [VALUE]    store VALUE (read from stdin when omitted)
  delete BUCKET KEY         delete KEY
  keys BUCKET [PREFIX]      list the live keys (under PREFIX)
  watch BUCKET [PREFIX...]  print changes as they happen: the current state
                            first (or the changes after -from REVISION)

A bucket that does not exist is created by put with the default settings.`

func runKV(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("slipagent kv", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, kvUsage+"\n\nflags:"); fs.PrintDefaults() }
	server := fs.String("server", envOr("NATS_URL", natskvDefaultURL), "NATS server URLs, comma-separated ($NATS_URL)")
	credsFile := fs.String("creds", os.Getenv("NATS_CREDS"), "a .creds file ($NATS_CREDS)")
	timeout := fs.Duration("timeout", 10*time.Second, "bound on each operation")
	from := fs.Uint64("from", 0, "watch: print only changes after this revision")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return usageCode(err)
	}
	if len(pos) < 2 {
		fs.Usage()
		return exitUsage
	}
	cmd, bucket, rest := pos[0], pos[1], pos[2:]
	conn := natskv.New(natskv.Options{Servers: strings.Split(*server, ","), CredsFile: *credsFile, Timeout: *timeout, Name: "slipagent kv"})
	if err := conn.Connect(ctx); err != nil {
		fmt.Fprintf(stderr, "slipagent kv: %v\n", err)
		return exitFailure
	}
	defer conn.Close()
	want := map[string][2]int{"get": {1, 1}, "put": {1, 2}, "delete": {1, 1}, "keys": {0, 1}, "watch": {0, 1 << 20}}
	n, ok := want[cmd]
	if !ok || len(rest) < n[0] || len(rest) > n[1] {
		fmt.Fprintf(stderr, "slipagent kv: bad use of %q\n\n%s\n", cmd, kvUsage)
		return exitUsage
	}
	var store kvcore.Store
	if cmd == "put" {
		store, err = conn.Store(ctx, kvcore.StoreConfig{Bucket: bucket})
	} else {
		store, err = conn.Open(ctx, bucket)
	}
	if err != nil {
		fmt.Fprintf(stderr, "slipagent kv: %v\n", err)
		return exitFailure
	}
	err = kvCommand(ctx, store, cmd, rest, *from, stdout)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent kv %s: %v\n", cmd, err)
		return exitFailure
	}
	return exitOK
}

const natskvDefaultURL = "nats://127.0.0.1:4222"

func kvCommand(ctx context.Context, store kvcore.Store, cmd string, args []string, from uint64, stdout io.Writer) error {
	switch cmd {
	case "get":
		e, err := store.Get(ctx, args[0])
		if err != nil {
			return err
		}
		_, err = stdout.Write(e.Value)
		return err
	case "put":
		var value []byte
		var err error
		if len(args) == 2 {
			value = []byte(args[1])
		} else if value, err = io.ReadAll(os.Stdin); err != nil {
			return err
		}
		v, err := store.Put(ctx, args[0], value)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, v)
		return nil
	case "delete":
		return store.Delete(ctx, args[0])
	case "keys":
		prefix := ""
		if len(args) == 1 {
			prefix = args[0]
		}
		keys, err := store.Keys(ctx, prefix)
		if err != nil {
			return err
		}
		slices.Sort(keys)
		for _, k := range keys {
			fmt.Fprintln(stdout, k)
		}
		return nil
	case "watch":
		scope := kvcore.AllKeys()
		if len(args) > 0 {
			scope = kvcore.Prefixes(args...)
		}
		var cursor kvcore.Cursor
		if from > 0 {
			cursor = kvcore.RevisionCursor(from)
		}
		w, err := store.Watch(ctx, scope, cursor)
		if err != nil {
			return err
		}
		defer w.Stop()
		for ev := range w.Events() {
			if ev.Synced {
				fmt.Fprintln(stdout, "# caught up")
				continue
			}
			rev, _ := ev.Version.Revision()
			line := strconv.FormatUint(rev, 10) + " " + ev.Op.String() + " " + ev.Key
			if ev.Op == kvcore.OpPut {
				line += " " + strconv.Quote(string(ev.Value))
			}
			fmt.Fprintln(stdout, line)
		}
		if err := w.Err(); err != nil && !errors.Is(err, context.Canceled) {
			return err
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", cmd)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
