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
	"unicode/utf8"

	"github.com/slipstreamkv/slipstream/kvcore"
)

const kvUsage = `usage: slipagent kv [flags] <command> BUCKET [arguments]

commands:
  get BUCKET KEY             print the value of KEY and a newline (-raw: the
                             value's bytes only)
  put BUCKET KEY [VALUE]     store VALUE (read from stdin when omitted) and
                             print the revision written ("rev N")
  create BUCKET KEY [VALUE]  put, but only if KEY does not exist (exit 5 if it
                             does)
  update BUCKET KEY [VALUE] -revision N
                             put, but only if KEY's revision is N (exit 5 if
                             it is not): a compare-and-swap
  delete BUCKET KEY          delete KEY (a delete marker; history is kept)
  purge BUCKET KEY           remove KEY and all its history
  history BUCKET KEY         the revisions of KEY the bucket still holds (as
                             many as its history setting keeps: 1 in buckets
                             put creates), oldest first, one per line:
                             "REVISION OP TIME VALUE" (OP: PUT, DEL or PURGE;
                             TIME: RFC 3339, UTC; VALUE as get prints it, or
                             quoted as watch prints values when it is not one
                             line of printable text or begins with '"'; none
                             for DEL and PURGE); -json: an array of {revision,
                             op, created, value}, value in base64, null for
                             DEL and PURGE
  keys BUCKET [PREFIX]       list the live keys (under PREFIX), as NATS KV
                             lists them: without keys whose value is empty
  watch BUCKET [PREFIX...]   print changes as they happen: the current state
                             first (or the changes after -from REVISION)

Flags may come before or after the command; after "--" nothing is a flag
(kv put app k -- -5 stores "-5"). The command, its arguments and the bucket
and key names are checked before connecting. A bucket that does not exist is created by put and
create with the default settings. Exit codes: 2 for a bad command line or
name, 3 when the key or bucket does not exist, 4 when no NATS server can be
reached, 5 for a create or update conflict (see "slipagent help").`

// kvArgs is how many arguments after BUCKET each kv command takes.
var kvArgs = map[string][2]int{
	"get": {1, 1}, "put": {1, 2}, "create": {1, 2}, "update": {1, 2},
	"delete": {1, 1}, "purge": {1, 1}, "history": {1, 1}, "keys": {0, 1}, "watch": {0, 1 << 20},
}

func isKVCommand(name string) bool {
	_, ok := kvArgs[name]
	return ok
}

// kvRequest is one parsed kv command line.
type kvRequest struct {
	cmd      string
	args     []string // after BUCKET
	from     uint64
	revision uint64
	raw      bool
	json     bool
	stdin    io.Reader
}

func runKV(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent kv", stderr)
	nf := addNATSFlags(fs)
	req := kvRequest{stdin: os.Stdin}
	fs.Uint64Var(&req.from, "from", 0, "watch: print only changes after this revision")
	fs.Uint64Var(&req.revision, "revision", 0, "update: the revision KEY must have")
	fs.BoolVar(&req.raw, "raw", false, "get: print the value's bytes without a trailing newline")
	fs.BoolVar(&req.json, "json", false, "history: print a JSON array")
	pos, err := parseArgs(fs, args)
	if errors.Is(err, flag.ErrHelp) && len(pos) > 0 && !isKVCommand(pos[0]) {
		// "kv bogus -h" (and so "help kv bogus") is a bad command line too.
		fmt.Fprintf(stderr, "slipagent kv: unknown command %q\n\n", pos[0])
		printUsage(stderr, fs, kvUsage)
		return exitUsage
	}
	if err != nil {
		return parseFailed(fs, kvUsage, err, stdout, stderr)
	}
	if len(pos) == 0 {
		printUsage(stderr, fs, kvUsage)
		return exitUsage
	}
	req.cmd = pos[0]
	bucket := ""
	if len(pos) > 1 {
		bucket, req.args = pos[1], pos[2:]
	}
	if err := req.check(bucket); err != nil {
		var bad *badNameError
		if errors.As(err, &bad) {
			// The command line has the right shape: the name is what is
			// wrong, and the usage would bury the line that says why.
			fmt.Fprintf(stderr, "slipagent kv: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stderr, "slipagent kv: %v\n\n", err)
		printUsage(stderr, fs, kvUsage)
		return exitUsage
	}

	conn, err := nf.connect(ctx, "slipagent kv")
	if err != nil {
		fmt.Fprintf(stderr, "slipagent kv: %v\n", err)
		return connectExit(err)
	}
	defer conn.Close()
	var store kvcore.Store
	if req.cmd == "put" || req.cmd == "create" {
		store, err = conn.Store(ctx, kvcore.StoreConfig{Bucket: bucket})
	} else {
		store, err = conn.Open(ctx, bucket)
	}
	if err == nil {
		err = req.do(ctx, store, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "slipagent kv %s: %s\n", req.cmd, req.explain(ctx, store, bucket, err))
		return kvExitCode(err)
	}
	return exitOK
}

// key is the KEY argument, or "" for keys and watch, which take prefixes.
func (r kvRequest) key() string {
	if r.cmd == "keys" || r.cmd == "watch" || len(r.args) == 0 {
		return ""
	}
	return r.args[0]
}

// explain words err, a failure of r on bucket, for the user: the bucket and
// the key named once, and the failures an exit code stands for (3 and 5)
// said in words rather than in the backend's. For a create or update
// conflict it asks store for the key's current revision.
func (r kvRequest) explain(ctx context.Context, store kvcore.Store, bucket string, err error) string {
	key := r.key()
	switch {
	case errors.Is(err, kvcore.ErrBucketNotFound):
		return fmt.Sprintf("bucket %s not found", bucket)
	case key == "":
	case errors.Is(err, kvcore.ErrNotFound) && r.cmd == "history":
		return fmt.Sprintf("key %q has no history in bucket %s", key, bucket)
	case errors.Is(err, kvcore.ErrNotFound):
		return fmt.Sprintf("key %q not found in bucket %s", key, bucket)
	case errors.Is(err, kvcore.ErrAlreadyExists):
		msg := fmt.Sprintf("key %q already exists in bucket %s", key, bucket)
		if rev, err := kvRevision(ctx, store, key); err == nil {
			msg += fmt.Sprintf(" (revision %d)", rev)
		}
		return msg
	case errors.Is(err, kvcore.ErrRevisionMismatch):
		msg := fmt.Sprintf("key %q of bucket %s", key, bucket)
		rev, err := kvRevision(ctx, store, key)
		switch {
		case err == nil:
			return fmt.Sprintf("%s is at revision %d, not %d", msg, rev, r.revision)
		case errors.Is(err, kvcore.ErrNotFound):
			return fmt.Sprintf("%s is not at revision %d: it has no value", msg, r.revision)
		}
		return fmt.Sprintf("%s is not at revision %d", msg, r.revision)
	}
	// Anything else keeps the backend's words, after the names.
	var opErr *kvcore.OpError
	if !errors.As(err, &opErr) {
		return err.Error()
	}
	where := "bucket " + bucket
	if key != "" {
		where = fmt.Sprintf("key %q of bucket %s", key, bucket)
	}
	return where + ": " + strings.TrimPrefix(opErr.Err.Error(), "kvcore: ")
}

// kvRevision returns the revision of key's live value in store.
func kvRevision(ctx context.Context, store kvcore.Store, key string) (uint64, error) {
	if store == nil {
		return 0, kvcore.ErrNotConnected
	}
	e, err := store.Entry(ctx, key)
	if err != nil {
		return 0, err
	}
	rev, _ := e.Version.Revision()
	return rev, nil
}

// check validates the command line, the bucket and key names included, so
// that a typo fails before any connection attempt.
func (r kvRequest) check(bucket string) error {
	n, ok := kvArgs[r.cmd]
	switch {
	case !ok:
		return fmt.Errorf("unknown command %q", r.cmd)
	case bucket == "":
		return fmt.Errorf("%s needs a BUCKET", r.cmd)
	case len(r.args) < n[0] || len(r.args) > n[1]:
		return fmt.Errorf("bad use of %q: wrong number of arguments", r.cmd)
	case !kvcore.ValidBucket(bucket):
		return &badNameError{"bucket name", bucket, bucketSyntax}
	case r.cmd == "update" && r.revision == 0:
		return errors.New(`update needs -revision N, the revision KEY must have`)
	case r.cmd != "update" && r.revision != 0:
		return fmt.Errorf("-revision applies to update, not %s", r.cmd)
	case r.cmd != "watch" && r.from != 0:
		return fmt.Errorf("-from applies to watch, not %s", r.cmd)
	case r.cmd != "get" && r.raw:
		return fmt.Errorf("-raw applies to get, not %s", r.cmd)
	case r.cmd != "history" && r.json:
		return fmt.Errorf("-json applies to history, not %s", r.cmd)
	}
	if r.cmd != "keys" && r.cmd != "watch" {
		if !kvcore.ValidKey(r.args[0]) {
			return &badNameError{"key", r.args[0], keySyntax}
		}
		return nil
	}
	for _, p := range r.args {
		if !kvcore.ValidPrefix(p) {
			return &badNameError{"prefix", p, "the start of a key, where " + keySyntax}
		}
	}
	return nil
}

// badNameError is a bucket name, key or prefix NATS would refuse.
type badNameError struct{ what, name, syntax string }

func (e *badNameError) Error() string {
	return fmt.Sprintf("invalid %s %q: %s", e.what, e.name, e.syntax)
}

// The name syntax kvcore.ValidBucket and kvcore.ValidKey accept, in words.
const (
	bucketSyntax = "a bucket name is ASCII letters, digits, - and _"
	keySyntax    = "a key is ASCII letters, digits and - / _ = ., with dots between non-empty tokens"
)

// kvExitCode maps a kv error to its documented exit code.
func kvExitCode(err error) int {
	switch {
	case errors.Is(err, kvcore.ErrNotFound), errors.Is(err, kvcore.ErrBucketNotFound):
		return exitNotFound
	case errors.Is(err, kvcore.ErrConnectionFailed), errors.Is(err, kvcore.ErrNotConnected):
		return exitUnreachable
	case errors.Is(err, kvcore.ErrAlreadyExists), errors.Is(err, kvcore.ErrRevisionMismatch):
		return exitConflict
	}
	return exitFailure
}

// value is the VALUE argument of put, create and update, or stdin.
func (r kvRequest) value() ([]byte, error) {
	if len(r.args) == 2 {
		return []byte(r.args[1]), nil
	}
	return io.ReadAll(r.stdin)
}

func (r kvRequest) do(ctx context.Context, store kvcore.Store, stdout io.Writer) error {
	switch r.cmd {
	case "get":
		// Entry, not Get: a key whose value is empty is a live key (the
		// agent writes its empty file), not a missing one.
		e, err := store.Entry(ctx, r.args[0])
		if err != nil {
			return err
		}
		if _, err := stdout.Write(e.Value); err != nil || r.raw {
			return err
		}
		_, err = fmt.Fprintln(stdout)
		return err
	case "put", "create", "update":
		value, err := r.value()
		if err != nil {
			return fmt.Errorf("reading the value from stdin: %w", err)
		}
		var v kvcore.Version
		switch r.cmd {
		case "put":
			v, err = store.Put(ctx, r.args[0], value)
		case "create":
			v, err = store.Create(ctx, r.args[0], value)
		default:
			v, err = store.Update(ctx, r.args[0], value, kvcore.RevisionVersion(r.revision))
		}
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, v)
		return err
	case "delete":
		return store.Delete(ctx, r.args[0])
	case "purge":
		return store.Purge(ctx, r.args[0])
	case "history":
		return kvHistory(ctx, store, r.args[0], r.json, stdout)
	case "keys":
		prefix := ""
		if len(r.args) == 1 {
			prefix = r.args[0]
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
		return kvWatch(ctx, store, r.args, r.from, stdout)
	}
	return fmt.Errorf("unknown command %q", r.cmd)
}

func kvWatch(ctx context.Context, store kvcore.Store, prefixes []string, from uint64, stdout io.Writer) error {
	scope := kvcore.AllKeys()
	if len(prefixes) > 0 {
		scope = kvcore.Prefixes(prefixes...)
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

// kvHistoryRecord is one record of "kv history -json". Value is base64, as
// in "snapshot dump -json", and null for a delete or purge marker.
type kvHistoryRecord struct {
	Revision uint64    `json:"revision"`
	Op       string    `json:"op"`
	Created  time.Time `json:"created"`
	Value    []byte    `json:"value"`
}

// kvHistoryOps are the names "kv history" gives operations, those of
// "nats kv history".
var kvHistoryOps = map[kvcore.Op]string{kvcore.OpPut: "PUT", kvcore.OpDelete: "DEL", kvcore.OpPurge: "PURGE"}

// historyValue is a value as "kv history" prints it: as "kv get" does
// when it is one line of printable UTF-8 text, else quoted as kv watch
// quotes values (a newline as \n, other bytes escaped), so that every
// revision stays on one line. A value that begins with a double quote is
// quoted too, so that a quoted value is never ambiguous.
func historyValue(v []byte) string {
	s := string(v)
	if !strings.HasPrefix(s, `"`) && utf8.ValidString(s) && !strings.ContainsFunc(s, func(r rune) bool { return !strconv.IsPrint(r) }) {
		return s
	}
	return strconv.Quote(s)
}

func kvHistory(ctx context.Context, store kvcore.Store, key string, asJSON bool, stdout io.Writer) error {
	hr, ok := store.(kvcore.HistoryReader)
	if !ok {
		return fmt.Errorf("history: %w", kvcore.ErrUnsupported)
	}
	updates, err := hr.History(ctx, key)
	if err != nil {
		return err
	}
	records := make([]kvHistoryRecord, len(updates))
	for i, u := range updates {
		rev, _ := u.Version.Revision()
		records[i] = kvHistoryRecord{Revision: rev, Op: kvHistoryOps[u.Op], Created: u.Created.UTC(), Value: u.Value}
		if u.Op == kvcore.OpPut && u.Value == nil {
			records[i].Value = []byte{} // an empty value, not a marker's null
		}
	}
	if asJSON {
		writeJSON(stdout, records)
		return nil
	}
	for _, r := range records {
		line := []byte(strconv.FormatUint(r.Revision, 10) + " " + r.Op + " " + r.Created.Format(time.RFC3339))
		if len(r.Value) > 0 {
			line = append(append(line, ' '), historyValue(r.Value)...)
		}
		if _, err := stdout.Write(append(line, '\n')); err != nil {
			return err
		}
	}
	return nil
}
