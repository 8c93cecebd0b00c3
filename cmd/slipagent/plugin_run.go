package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/slipstreamkv/slipstream/plugins/host"
)

const pluginRunUsage = `usage: slipagent plugin run [flags] MODULE.wasm -batch FILE [-view FILE | -bucket BUCKET] (-out DIR | -output NAME=DIR... | -diff)

Runs one call of a plugin module on a batch and a view read from JSON files
(or the view from a bucket), with no agent or fold: an apply call, or with
-full a render call.

  -out DIR   commits the staged files into DIR/<output>/ (created if
             missing, and left only if the call wrote into it) and
             lists what changed; an output declared with -output
             NAME=DIR is committed into DIR, and when every output is,
             -out is not needed
  -diff      writes nothing: prints a unified diff per file against the
             current content of the outputs' directories (DIR/<output>/
             with -out, a directory given with -output NAME=DIR, or
             nothing: every file is new); "Binary files ... differ" for
             a file that is not UTF-8 text or holds a NUL

Both print the hooks the plugin requested ("hook NAME"), or "no changes"
when the call changed no file and requested no hook.

The batch file is the changes the call brings:

  {"cursor": 3, "updates": [
    {"op": "put", "key": "files.a.conf", "value": "a = 1\n", "revision": 2},
    {"op": "put", "key": "files.logo", "value_base64": "iVBORw0K", "revision": 3},
    {"op": "delete", "key": "files.old", "revision": 1}]}

op is put (the default), delete or purge; a value is a UTF-8 string
("value") or base64 ("value_base64"); a key is refused unless NATS KV
accepts it (as for kv); cursor defaults to the highest revision of the
batch, else of the view. Revisions are sent as NATS does:
as the revision and as its 8-byte version.

The view file is the state before the batch, as a list of entries
([{"key": "k", "value": "v", "revision": 1}], values as in the batch) or an
object of key to string value ({"k": "v"}). The call sees the view with the
batch applied, as the agent's fold plus the batch. With -full the batch is
optional. -bucket BUCKET [-prefix P] reads the view from the live keys of a
NATS KV bucket instead (-server, -creds: as for kv); a render of it shows
what an agent watching that bucket would write:

  slipagent plugin run files.wasm -full -bucket app -prefix files. \
    -config prefix=files. -out /etc/app -diff

Outputs: each -output NAME or NAME=DIR declares one. Without -output, one
output is declared, named by -config output=NAME when given, else by the
module's file name without .wasm (files.wasm: "files"). Hooks: each -hook
NAME declares one; without -hook, the one named by -config hook=NAME, else
"reload". The example plugins' defaults: files writes output "files",
nginx-upstreams "conf" (hook "reload"), template "out" (hook "reload"),
envfile "env", jsonfile "json".

Plugin logs go to stderr.`

// pluginRunFlags is the parsed command line of plugin run.
type pluginRunFlags struct {
	batch, view, out, watch string
	bucket, prefix          string
	nats                    natsFlags
	full, diff              bool
	config, outputs, hooks  multiFlag
}

// multiFlag is a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func pluginRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent plugin run", stderr)
	var f pluginRunFlags
	fs.StringVar(&f.batch, "batch", "", "the batch, a JSON file (see above)")
	fs.StringVar(&f.view, "view", "", "the view before the batch, a JSON file (default empty)")
	fs.StringVar(&f.out, "out", "", "commit the outputs into DIR/<output>/")
	fs.BoolVar(&f.diff, "diff", false, "print a unified diff per file instead of writing")
	fs.BoolVar(&f.full, "full", false, "a render call (the whole view) instead of an apply call")
	fs.StringVar(&f.watch, "watch", "plugin-run", "the watch name the plugin sees")
	fs.Var(&f.config, "config", "a plugin config entry KEY=VALUE (repeatable)")
	fs.Var(&f.outputs, "output", "declare output NAME, or NAME=DIR (repeatable)")
	fs.Var(&f.hooks, "hook", "declare hook NAME (repeatable)")
	fs.StringVar(&f.bucket, "bucket", "", "read the view from this NATS KV bucket instead of -view")
	fs.StringVar(&f.prefix, "prefix", "", "with -bucket: only the keys under this prefix")
	f.nats = addNATSFlags(fs)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseFailed(fs, pluginRunUsage, err, stdout, stderr)
	}
	bad := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "slipagent plugin run: "+format+"\n\n", args...)
		printUsage(stderr, fs, pluginRunUsage)
		return exitUsage
	}
	switch {
	case len(pos) != 1:
		return bad("want exactly one MODULE.wasm")
	case f.batch == "" && !f.full:
		return bad("-batch FILE is required (optional only with -full)")
	case f.out == "" && !f.diff && !everyOutputHasADir(f.outputs):
		return bad("give -out DIR or -output NAME=DIR for every output (write the outputs), or -diff (show what would change)")
	case f.bucket != "" && f.view != "":
		return bad("give -view FILE or -bucket BUCKET, not both")
	case f.bucket == "" && f.prefix != "":
		return bad("-prefix applies to -bucket")
	}
	config, err := keyValues(f.config)
	if err != nil {
		return bad("-config: %v", err)
	}
	outputs, err := runOutputs(f, pos[0], config)
	if err != nil {
		return bad("-output: %v", err)
	}
	hooks := slices.Clone([]string(f.hooks))
	if len(hooks) == 0 {
		hooks = []string{cmp.Or(config["hook"], "reload")}
	}
	batch, view, err := readCallInput(f.batch, f.view)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent plugin run: %v\n", err)
		return exitFailure
	}
	if f.bucket != "" {
		conn, err := f.nats.connect(ctx, "slipagent plugin run")
		if err != nil {
			fmt.Fprintf(stderr, "slipagent plugin run: %v\n", err)
			return connectExit(err)
		}
		err = bucketView(ctx, conn, f.bucket, f.prefix, view)
		conn.Close()
		if err != nil {
			fmt.Fprintf(stderr, "slipagent plugin run: bucket %s: %v\n", f.bucket, err)
			return kvExitCode(err)
		}
	}
	if err := defaultCursor(ctx, &batch, view); err != nil {
		fmt.Fprintf(stderr, "slipagent plugin run: %v\n", err)
		return exitFailure
	}
	wasm, err := readModule(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "slipagent plugin run: %v\n", err)
		return exitFailure
	}
	eng, err := host.New(ctx, host.Config{Logger: slog.New(slog.NewTextHandler(stderr, nil))})
	if err != nil {
		fmt.Fprintf(stderr, "slipagent plugin run: %v\n", err)
		return exitFailure
	}
	defer eng.Close(context.WithoutCancel(ctx))
	r := pluginRunner{module: pos[0], wasm: wasm, config: config, hooks: hooks, watch: f.watch, full: f.full, stdout: stdout}
	if f.diff {
		err = r.diff(ctx, eng, outputs, batch, view)
	} else {
		err = r.commit(ctx, eng, outputs, batch, view)
	}
	if err != nil {
		fmt.Fprintf(stderr, "slipagent plugin run: %v\n", err)
		if _, ok := errors.AsType[*host.UndeclaredError](err); ok {
			fmt.Fprintln(stderr, "slipagent plugin run: declare the outputs and hooks the plugin uses with -output NAME and -hook NAME")
		}
		return exitFailure
	}
	return exitOK
}

// keyValues parses KEY=VALUE arguments.
func keyValues(args []string) (map[string]string, error) {
	m := map[string]string{}
	for _, a := range args {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", a)
		}
		m[k] = v
	}
	return m, nil
}

// everyOutputHasADir reports whether outputs (the -output flags) declare
// outputs and give each its directory (NAME=DIR): a commit needs no -out.
func everyOutputHasADir(outputs []string) bool {
	return len(outputs) > 0 && !slices.ContainsFunc(outputs, func(s string) bool { return !strings.Contains(s, "=") })
}

// runOutput is one declared output: the directory the agent would write
// (target, "" when there is none to read or write) by name.
type runOutput struct {
	name, target string
}

// runOutputs resolves -output and -out into the declared outputs.
func runOutputs(f pluginRunFlags, module string, config map[string]string) ([]runOutput, error) {
	specs := []string(f.outputs)
	if len(specs) == 0 {
		specs = []string{cmp.Or(config["output"], strings.TrimSuffix(filepath.Base(module), ".wasm"))}
	}
	var outs []runOutput
	seen := map[string]bool{}
	for _, s := range specs {
		name, dir, hasDir := strings.Cut(s, "=")
		switch {
		case name == "":
			return nil, fmt.Errorf("%q has no output name", s)
		case seen[name]:
			return nil, fmt.Errorf("output %q declared twice", name)
		case hasDir && dir == "":
			return nil, fmt.Errorf("%q has an empty directory", s)
		case !hasDir && f.out != "":
			dir = filepath.Join(f.out, name)
		}
		seen[name] = true
		outs = append(outs, runOutput{name: name, target: dir})
	}
	return outs, nil
}

// pluginRunner runs one call of a module, as a watch of the agent does.
type pluginRunner struct {
	module string
	wasm   []byte
	config map[string]string
	hooks  []string
	watch  string
	full   bool
	stdout io.Writer
}

// call loads the module into eng and runs the call with outputs at dirs
// (by name). The caller commits or discards the result.
func (r pluginRunner) call(ctx context.Context, eng *host.Engine, dirs map[string]string, batch host.Batch, view *host.MemView) (*host.Result, error) {
	pl, err := eng.Load(ctx, r.wasm, host.PluginConfig{Name: r.module, Config: r.config})
	if err != nil {
		return nil, err
	}
	outs := map[string]host.Output{}
	for name, dir := range dirs {
		outs[name] = host.Output{Dir: dir}
	}
	inst, err := pl.NewInstance(ctx, host.InstanceConfig{Watch: r.watch, Outputs: outs, Hooks: r.hooks})
	if err != nil {
		return nil, err
	}
	view.Apply(batch.Updates)
	if r.full {
		return inst.Render(ctx, batch.Cursor, view)
	}
	return inst.Apply(ctx, batch, view)
}

// commit runs the call with each output at its target and commits what it
// staged. A target that is missing is created for the call (the plugin must
// see its directory) and removed again, with the parents created for it,
// unless the call wrote into it.
func (r pluginRunner) commit(ctx context.Context, eng *host.Engine, outputs []runOutput, batch host.Batch, view *host.MemView) error {
	dirs := map[string]string{}
	for _, o := range outputs {
		undo, err := mkdirUndo(o.target)
		if err != nil {
			return fmt.Errorf("output %q: %w", o.name, err)
		}
		defer undo()
		dirs[o.name] = o.target
	}
	res, err := r.call(ctx, eng, dirs, batch, view)
	if err != nil {
		return err
	}
	staged := res.Staged()
	if err := res.Commit(ctx); err != nil {
		return err
	}
	for _, f := range staged {
		verb := "wrote"
		if f.Remove {
			verb = "removed"
		}
		fmt.Fprintf(r.stdout, "%s %s\n", verb, f.Target)
	}
	r.printHooks(res, len(staged))
	return nil
}

// mkdirUndo creates dir and its missing parents, and returns a func that
// removes those it created again, deepest first, while they are empty.
func mkdirUndo(dir string) (undo func(), err error) {
	var made []string
	for d := filepath.Clean(dir); filepath.Dir(d) != d; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, fs.ErrNotExist) {
			break
		}
		made = append(made, d)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	return func() {
		for _, d := range made {
			if os.Remove(d) != nil {
				return // not empty: it and its parents stay
			}
		}
	}, nil
}

// diff runs the call on copies of the outputs' targets, so that the plugin
// sees their files but nothing of them changes, and prints a diff of each
// staged file against its target.
func (r pluginRunner) diff(ctx context.Context, eng *host.Engine, outputs []runOutput, batch host.Batch, view *host.MemView) error {
	scratch, err := os.MkdirTemp("", "slipagent-plugin-run-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	dirs, targets := map[string]string{}, map[string]string{}
	for i, o := range outputs {
		dir := filepath.Join(scratch, fmt.Sprint(i))
		if o.target != "" {
			if err := host.CopyTree(o.target, dir); err != nil {
				return fmt.Errorf("output %q: %w", o.name, err)
			}
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		dirs[o.name], targets[o.name] = dir, o.target
	}
	res, err := r.call(ctx, eng, dirs, batch, view)
	if err != nil {
		return err
	}
	defer res.Discard()
	staged := res.Staged()
	for _, f := range staged {
		name := f.Output + "/" + f.Path
		var old, new []byte
		oldName, newName := "/dev/null", "b/"+name
		if t := targets[f.Output]; t != "" {
			old, err = os.ReadFile(filepath.Join(t, filepath.FromSlash(f.Path)))
			switch {
			case err == nil:
				oldName = "a/" + name
			case !errors.Is(err, os.ErrNotExist):
				return err
			}
		}
		if !f.Remove {
			if new, err = os.ReadFile(f.File); err != nil {
				return err
			}
		}
		if f.Remove {
			newName = "/dev/null"
		} else if t := targets[f.Output]; t != "" {
			modeDiff(r.stdout, name, filepath.Join(t, filepath.FromSlash(f.Path)), f.File)
		}
		unifiedDiff(r.stdout, oldName, newName, old, new)
	}
	r.printHooks(res, len(staged))
	return nil
}

// printHooks prints the hooks the call requested, or "no changes" when it
// requested none and staged no file (files is how many it staged).
func (r pluginRunner) printHooks(res *host.Result, files int) {
	hooks := res.Hooks()
	if files == 0 && len(hooks) == 0 {
		fmt.Fprintln(r.stdout, "no changes")
	}
	for _, h := range hooks {
		fmt.Fprintf(r.stdout, "hook %s\n", h)
	}
}
