package host

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// recovers checks the instance serves the next batch after a failure.
func (f *fixture) recovers() {
	f.t.Helper()
	f.mustCommit("write=out:after:ok")
	if got, _ := f.read("after"); got != "ok" {
		f.t.Fatalf("next batch wrote %q", got)
	}
	os.Remove(filepath.Join(f.out, "after"))
}

// wantCallError checks err is a *CallError wrapping sentinel, mentioning
// every part.
func wantCallError(t *testing.T, err error, sentinel error, recycled bool, parts ...string) {
	t.Helper()
	var ce *CallError
	if !errors.As(err, &ce) || !errors.Is(err, sentinel) {
		t.Fatalf("err = %v, want a CallError wrapping %v", err, sentinel)
	}
	if ce.Recycled != recycled {
		t.Errorf("Recycled = %v, want %v (%v)", ce.Recycled, recycled, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not mention %q", err, p)
		}
	}
}

func TestHostileGuests(t *testing.T) {
	tests := []struct {
		name     string
		cfg      PluginConfig
		actions  []string
		sentinel error
		recycled bool
		parts    []string
		// undeclared is the Kind of the *UndeclaredError the call fails
		// with ("": none).
		undeclared string
	}{
		{
			name:     "infinite loop",
			cfg:      PluginConfig{Timeout: 300 * time.Millisecond},
			actions:  []string{"write=out:a:1", "loop="},
			sentinel: ErrTimeout, recycled: true, parts: []string{"timed out after 300ms (limit timeout of the plugin)"},
		},
		{
			name: "memory bomb",
			// Growing 48 MiB page by page is slow under the race
			// detector on a loaded machine: the limit to hit is memory.
			cfg:      PluginConfig{MemoryLimit: 48 << 20, Timeout: time.Minute},
			actions:  []string{"write=out:a:1", "membomb="},
			sentinel: ErrTrap, recycled: true, parts: []string{"out of memory"},
		},
		{
			name: "deep recursion",
			// Exhausting 48 MiB of stack takes ~2.5 s, half the default
			// timeout: under -race on a loaded machine it timed out.
			cfg:      PluginConfig{MemoryLimit: 48 << 20, Timeout: time.Minute},
			actions:  []string{"write=out:a:1", "recurse=100000000"},
			sentinel: ErrTrap, recycled: true,
		},
		{
			name:     "trap in the middle of staging",
			actions:  []string{"write=out:a:1", "write=out:dir/b:2", "trap=", "write=out:c:3"},
			sentinel: ErrTrap, recycled: true, parts: []string{"out of bounds memory access"},
		},
		{
			name:     "exit in the middle of staging",
			actions:  []string{"write=out:a:1", "stderr=about to exit", "exit=3"},
			sentinel: ErrTrap, recycled: true, parts: []string{"exited with code 3", "stderr: about to exit"},
		},
		{
			name:     "absolute path",
			actions:  []string{"write=out:a:1", "write=out:/etc/passwd:pwned", "ok="},
			sentinel: ErrDenied, parts: []string{`"/etc/passwd" is absolute`},
		},
		{
			name:     "dot-dot path",
			actions:  []string{"write=out:a:1", "write=out:sub/../../escape:pwned"},
			sentinel: ErrDenied, parts: []string{`contains ".."`},
		},
		{
			name:     "remove outside",
			actions:  []string{"remove=out:../victim"},
			sentinel: ErrDenied, parts: []string{`contains ".."`},
		},
		{
			name:     "undeclared output",
			actions:  []string{"write=out:a:1", "write=elsewhere:a:1"},
			sentinel: ErrDenied, parts: []string{`output "elsewhere" is not declared`}, undeclared: "output",
		},
		{
			name:     "undeclared hook",
			actions:  []string{"write=out:a:1", "hook=reboot"},
			sentinel: ErrDenied, parts: []string{`hook "reboot" is not declared`}, undeclared: "hook",
		},
		{
			// A guest that traps on the refusal (a Go panic, a Rust unwrap,
			// AssemblyScript's abort): the refusal is the cause.
			name:     "undeclared hook, then a trap",
			actions:  []string{"write=out:a:1", "hook=reboot", "trap="},
			sentinel: ErrTrap, recycled: true, parts: []string{`hook "reboot" is not declared`, "out of bounds memory access"}, undeclared: "hook",
		},
		{
			name:     "staging file name",
			actions:  []string{"write=out:.slipstream-forged.tmp:x"},
			sentinel: ErrDenied, parts: []string{"reserved prefix"},
		},
		{
			name:     "setuid mode",
			actions:  []string{"write=out:a:1:4755"},
			sentinel: ErrDenied, parts: []string{"bits beyond 0o777"},
		},
		{
			name:     "oversized file",
			cfg:      PluginConfig{Limits: Limits{MaxFileSize: 1024}},
			actions:  []string{"write=out:a:1", "writesize=out:big:2048"},
			sentinel: ErrLimit, parts: []string{"2048 bytes exceed the 1024-byte file limit (limit max_file_size of the plugin)"},
		},
		{
			name:     "too many files",
			cfg:      PluginConfig{Limits: Limits{MaxFiles: 3}},
			actions:  []string{"write=out:a:1", "write=out:b:1", "remove=out:c", "write=out:d:1", "write=out:e:1"},
			sentinel: ErrLimit, parts: []string{"more than 3 staged files in one call (limit max_files of the plugin)"},
		},
		{
			name:     "too many bytes",
			cfg:      PluginConfig{Limits: Limits{MaxBytes: 4096}},
			actions:  []string{"writesize=out:a:2000", "writesize=out:b:2000", "writesize=out:c:2000"},
			sentinel: ErrLimit, parts: []string{"4096-byte call limit (limit max_bytes of the plugin)"},
		},
		{
			name:     "wild pointers",
			actions:  []string{"write=out:a:1", "wild="},
			sentinel: ErrDenied, parts: []string{"stage_write: argument 3", "outside guest memory"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			f.mustCommit("ok=") // a live guest with some history
			_, err := f.apply(tt.actions...)
			t.Logf("error: %v", err)
			wantCallError(t, err, tt.sentinel, tt.recycled, tt.parts...)
			if ue, ok := errors.AsType[*UndeclaredError](err); ok != (tt.undeclared != "") || ok && ue.Kind != tt.undeclared {
				t.Errorf("error %v: *UndeclaredError %v, want one of kind %q", err, ue, tt.undeclared)
			}
			noStaged(t, f.out)
			for _, p := range []string{"a", "dir", "c", "big"} {
				if _, err := os.Lstat(filepath.Join(f.out, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists after a failed call", p)
				}
			}
			f.recovers()
			st := f.inst.Stats()
			if want := map[bool]uint64{true: 1, false: 0}[tt.recycled]; st.Recycled != want {
				t.Errorf("stats %+v, want %d recycles", st, want)
			}
		})
	}
}

// plantEscapes creates, inside the output, a symlink "evil" to a directory
// outside it holding "victim", and "sub" to the same place for intermediate
// directory escapes.
func plantEscapes(t *testing.T, out string) string {
	t.Helper()
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "victim"), []byte("original"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, link := range []string{"evil", "sub"} {
		if err := os.Symlink(outside, filepath.Join(out, link)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(outside, "victim"), filepath.Join(out, "victimlink")); err != nil {
		t.Fatal(err)
	}
	return outside
}

func TestSymlinkEscapes(t *testing.T) {
	tests := []struct {
		name   string
		action string
	}{
		{"write through planted symlink", "write=out:evil/victim:pwned"},
		{"new file through planted symlink", "write=out:evil/new:pwned"},
		{"symlinked intermediate directory", "write=out:sub/deeper/new:pwned"},
		{"remove through planted symlink", "remove=out:evil/victim"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, PluginConfig{})
			outside := plantEscapes(t, f.out)
			_, err := f.apply("write=out:a:1", tt.action)
			wantCallError(t, err, ErrDenied, false, "leaves the output directory", errPathEscapes)
			if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "original" {
				t.Fatalf("victim = %q", b)
			}
			ents, _ := os.ReadDir(outside)
			if len(ents) != 1 {
				t.Fatalf("outside directory holds %d entries", len(ents))
			}
			noStaged(t, f.out)
			noStaged(t, outside)
			f.recovers()
		})
	}
	t.Run("final symlink is replaced, not followed", func(t *testing.T) {
		f := newFixture(t, PluginConfig{})
		outside := plantEscapes(t, f.out)
		f.mustCommit("write=out:victimlink:mine")
		if b, _ := os.ReadFile(filepath.Join(outside, "victim")); string(b) != "original" {
			t.Fatalf("victim = %q", b)
		}
		fi, err := os.Lstat(filepath.Join(f.out, "victimlink"))
		if err != nil || !fi.Mode().IsRegular() {
			t.Fatalf("victimlink: %v %v", fi, err)
		}
		f.mustCommit("remove=out:victimlink")
		if _, err := os.Stat(filepath.Join(outside, "victim")); err != nil {
			t.Fatalf("removing the link removed its target: %v", err)
		}
	})
	t.Run("listing through planted symlink", func(t *testing.T) {
		f := newFixture(t, PluginConfig{})
		plantEscapes(t, f.out)
		_, err := f.apply("list=out:evil")
		wantCallError(t, err, ErrPluginFailed, false, abi.ErrDenied.Error())
		f.recovers()
	})
}

func TestLogFloodIsRateLimited(t *testing.T) {
	frozen := time.Unix(1e9, 0)
	timeNow = func() time.Time { return frozen }
	t.Cleanup(func() { timeNow = time.Now })
	f := newFixture(t, PluginConfig{Limits: Limits{LogBurst: 50, LogPerSecond: 1}})
	f.mustCommit("logflood=20000")
	lines := f.logs.lines()
	passed := 0
	for _, l := range lines {
		if strings.Contains(l, "line ") {
			passed++
		}
	}
	if passed != 50 {
		t.Fatalf("%d flood lines logged, want the burst of 50", passed)
	}
	// 40000 flood lines + the partial line + the long stderr line - 50
	if f.logs.count("plugin log lines dropped by rate limit dropped=39952") != 1 {
		t.Fatalf("no drop summary in the last lines %v", lines[len(lines)-3:])
	}
	// OnLog saw the stderr line, which the rate limit dropped, and none of
	// the info lines.
	if len(f.onLog) != 1 || f.onLog[0] != "WARN "+strings.Repeat("x", 4096) {
		t.Errorf("OnLog got %d lines, want the stderr line: %.40q", len(f.onLog), f.onLog)
	}
	f.recovers()
}

// TestOnLogSeesWarningsAndErrors: InstanceConfig.OnLog gets the plugin's
// lines at warn level and above, with their level, from the log host
// function and from stderr.
func TestOnLogSeesWarningsAndErrors(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	f.mustCommit("logerror=skipping key a.b: not a path", "stderr=a warning", "logflood=2")
	want := []string{"ERROR skipping key a.b: not a path", "WARN a warning", "WARN " + strings.Repeat("x", 4096)}
	if !slices.Equal(f.onLog, want) {
		t.Errorf("OnLog got %q, want %q", f.onLog, want)
	}
}

func TestMemoryGrowthRecycles(t *testing.T) {
	f := newFixture(t, PluginConfig{RecycleAbove: 16 << 20})
	f.mustCommit("grow=24", "write=out:grown:yes")
	if got, _ := f.read("grown"); got != "yes" {
		t.Fatal("the call that grew memory did not succeed")
	}
	st := f.inst.Stats()
	if st.Recycled != 1 || st.MemoryBytes != 0 {
		t.Fatalf("stats after growth %+v", st)
	}
	f.recovers()
	if st := f.inst.Stats(); st.Instantiated != 2 || st.MemoryBytes >= 16<<20 {
		t.Fatalf("stats after recycle %+v", st)
	}
	if f.logs.count("memory grew past threshold") != 1 {
		t.Fatalf("logs %v", f.logs.lines())
	}
}

func TestCallerCancellationInterruptsAndRecycles(t *testing.T) {
	f := newFixture(t, PluginConfig{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	_, err := f.inst.Apply(ctx, f.batch("loop="), f.view)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
	f.recovers()
}

func TestBadModules(t *testing.T) {
	missing := minimalPlugin()
	missing.funcs = missing.funcs[:2]
	missing.memory = false
	wrongVersion := minimalPlugin()
	wrongVersion.funcs[0].body = constI32(2)
	wrongSig := minimalPlugin()
	wrongSig.funcs[1].params = []byte{i64}
	unknownImport := minimalPlugin()
	unknownImport.imports = []wasmImport{{module: "env", name: "system", params: []byte{i32}, results: []byte{i32}}}
	futureImport := minimalPlugin()
	futureImport.imports = []wasmImport{{module: abi.ImportModule, name: "http_get", params: []byte{i32}, results: []byte{i32}}}
	badImport := minimalPlugin()
	badImport.imports = []wasmImport{{module: abi.ImportModule, name: abi.FuncLog, params: []byte{i32}, results: []byte{i32}}}
	spinInit := minimalPlugin()
	spinInit.funcs = append(spinInit.funcs, wasmFunc{export: "_initialize", body: spin})
	truncated := guestWasm(t)[:4096]

	tests := []struct {
		name     string
		wasm     []byte
		sentinel error
		parts    []string
	}{
		{"garbage bytes", []byte("#!/bin/sh\nrm -rf /\n"), ErrInvalidModule, nil},
		{"empty", nil, ErrInvalidModule, nil},
		{"truncated module", truncated, ErrInvalidModule, nil},
		{"missing exports", missing.bytes(), ErrABI, []string{"missing export slipstream_render", "missing export memory"}},
		{"wrong ABI version", wrongVersion.bytes(), ErrABI, []string{"declares ABI version 2; this host speaks version 1"}},
		{"mistyped export", wrongSig.bytes(), ErrABI, []string{"export slipstream_apply(i64) -> i32, want slipstream_apply(i32) -> i32"}},
		{"unknown import module", unknownImport.bytes(), ErrABI, []string{"imports env.system; only slipstream and wasi_snapshot_preview1"}},
		{"unknown host function", futureImport.bytes(), ErrABI, []string{"imports slipstream.http_get, which ABI version 1 does not define"}},
		{"mistyped host function", badImport.bytes(), ErrABI, []string{"imports slipstream.log(i32) -> i32, want slipstream.log(i32, i32, i32) -> i32"}},
		{"initializer loops", spinInit.bytes(), ErrTimeout, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testEngine(t).Load(context.Background(), tt.wasm, PluginConfig{Name: "bad", Timeout: 200 * time.Millisecond})
			t.Logf("error: %v", err)
			if !errors.Is(err, tt.sentinel) {
				t.Fatalf("err = %v, want %v", err, tt.sentinel)
			}
			for _, p := range tt.parts {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("error %q does not mention %q", err, p)
				}
			}
		})
	}
	t.Run("staging during _initialize", func(t *testing.T) {
		m := minimalPlugin()
		m.imports = []wasmImport{{module: abi.ImportModule, name: abi.FuncStageWrite, params: []byte{i32, i32, i32, i32, i32, i32, i32}, results: []byte{i32}}}
		m.funcs = append(m.funcs, wasmFunc{export: "_initialize", body: callImport0(7)})
		f := newFixtureWith(t, m.bytes(), PluginConfig{})
		got, _ := f.inst.mod.Memory().ReadUint32Le(0)
		if abi.Status(int32(got)) != abi.ErrState {
			t.Fatalf("stage_write during _initialize returned %d, want ErrState", int32(got))
		}
		noStaged(t, f.out)
		if _, err := f.inst.Apply(context.Background(), Batch{}, nil); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("minimal plugin loads", func(t *testing.T) {
		f := newFixtureWith(t, minimalPlugin().bytes(), PluginConfig{})
		res, err := f.apply("anything=")
		if err != nil || res.Changed() {
			t.Fatalf("%v %v", res, err)
		}
	})
}

// TestGuestSleeps: a guest's sleep (poll_oneoff on a clock) completes, and
// the call's time limit cuts a long one short.
func TestGuestSleeps(t *testing.T) {
	f := newFixture(t, PluginConfig{})
	f.mustCommit("ok=")
	f.mustCommit("sleep=50ms", "write=out:slept:yes")
	if got, _ := f.read("slept"); got != "yes" {
		t.Fatalf("slept = %q", got)
	}

	// A sleep longer than the call's time limit ends with the limit, not
	// with the sleep.
	f = newFixture(t, PluginConfig{Timeout: 2 * time.Second})
	_, err := f.apply("sleep=1h")
	wantCallError(t, err, ErrTimeout, true)
	f.recovers()
}

// TestTimeLimitIsStrict: a guest that sleeps through its time limit, then
// stages a file and returns success, fails with ErrTimeout, and nothing it
// staged is committed or left behind (issue 7).
func TestTimeLimitIsStrict(t *testing.T) {
	// Through the limit (wazero closes the guest), and to just past it: the
	// guest wakes from its own sleep and returns before wazero notices the
	// limit, which only the host's check of the clock catches.
	for _, sleep := range []string{"1h", "1s", "1001ms", "1002ms", "1005ms"} {
		t.Run(sleep, func(t *testing.T) {
			f := newFixture(t, PluginConfig{Timeout: time.Second})
			f.mustCommit("ok=") // instantiated outside the timed call
			res, err := f.apply("sleep="+sleep, "write=out:late:yes", "write=out:dir/late:yes")
			if err == nil {
				res.Commit(context.Background())
			}
			wantCallError(t, err, ErrTimeout, true)
			if _, ok := f.read("late"); ok {
				t.Fatal("a file staged after the time limit was committed")
			}
			if _, err := os.Stat(filepath.Join(f.out, "dir")); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("a directory staged after the time limit is left: %v", err)
			}
			noStaged(t, f.out)
			f.recovers()
		})
	}
}

// TestRenderHasItsOwnTimeLimit: a render runs under RenderTimeout, not under
// the Timeout of incremental calls, and its timeout names that setting.
func TestRenderHasItsOwnTimeLimit(t *testing.T) {
	render := func(f *fixture) (*Result, error) {
		f.view.Put(Entry{Key: "render/sleep", Value: []byte("5s")})
		f.view.Put(Entry{Key: "render/write", Value: []byte("out:rendered:yes")})
		return f.inst.Render(context.Background(), Cursor{}, f.view)
	}
	f := newFixture(t, PluginConfig{Timeout: 3 * time.Second, RenderTimeout: time.Minute})
	res, err := render(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.read("rendered"); got != "yes" {
		t.Fatalf("rendered = %q", got)
	}

	f = newFixture(t, PluginConfig{Timeout: time.Minute, RenderTimeout: 300 * time.Millisecond})
	_, err = render(f)
	wantCallError(t, err, ErrTimeout, true, "timed out after 300ms (limit render_timeout of the plugin)")
	noStaged(t, f.out)
}
