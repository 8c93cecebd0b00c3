package main

import (
	"context"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/benchproc"
	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

// killSyncKeys is the size of TestKilledDuringFirstSync's bucket: enough
// for the first sync to arrive in many chunks and take a second or so, and
// (with 100-byte values) for the disk fold to hold more than its bulk
// buffer writes through a batch, so that its checkpoint ingests tables.
const killSyncKeys = 100_000

// TestKilledDuringFirstSync SIGKILLs a real agent at moments chosen by a
// seed while it makes its first sync of a 100,000-key bucket (a state sync
// in chunks under the cursor from before, which the disk fold buffers and
// writes out as ingested tables), with writes to the bucket between the
// kills, for each fold kind. The kills come within the time a first sync
// takes on this machine, measured by an agent of its own first, and at
// least one must cut a sync short. Each restart resumes on what the killed
// one left on disk; the last must end ready with its file equal to the
// bucket (a fold whose cursor got ahead of its data lacks keys), no agent
// may report an error (a fold that does not load is moved aside and
// rebuilt, loudly), and no staging file or table to ingest may be left.
func TestKilledDuringFirstSync(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nats-server and slipagent processes")
	}
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay: go test -run TestKilledDuringFirstSync ./cmd/slipagent -chaos.seed=%d)", seed, seed)
	// The module compiled ahead into a cache the agents share, as an
	// install would: a start then spends its time on the sync.
	dir := t.TempDir()
	plugin, cache := filepath.Join(dir, "template.wasm"), filepath.Join(dir, "cache")
	if err := os.WriteFile(plugin, plugintest.Module(t, "plugins/examples/template"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, o, e := runCmd(t, "plugin", "compile", "-cache-dir", cache, plugin); code != exitOK {
		t.Fatalf("plugin compile = %d: %s%s", code, o, e)
	}
	for i, fold := range []string{"memory", "disk"} {
		t.Run(fold, func(t *testing.T) {
			killDuringFirstSync(t, fold, plugin, cache, rand.New(rand.NewPCG(seed, uint64(i))))
		})
	}
}

func killDuringFirstSync(t *testing.T, fold, plugin, cache string, rng *rand.Rand) {
	srv := natstest.RunProc(t, natstest.ServerBinary(t))
	js := natstest.JetStream(t, srv.URL())
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kv, err := js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "big"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range killSyncKeys {
		key := fmt.Sprintf("svc.%05d", i)
		want[key] = fmt.Sprintf("v0-%05d-%s", i, strings.Repeat("x", 90))
		if _, err := js.PublishAsync("$KV.big."+key, []byte(want[key])); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		t.Fatal("publishing the bucket's keys: ", ctx.Err())
	}

	// agentIn writes the configuration of an agent whose data, socket,
	// log and rendered file are in dir, and returns its path and the file's.
	agentIn := func(dir string) (config, out string) {
		out = filepath.Join(dir, "out", "render")
		hcl := benchproc.TemplateAgent{
			DataDir:  filepath.Join(dir, "data"),
			CacheDir: cache,
			Servers:  []string{srv.URL()},
			Plugin:   plugin,
			Watch:    "big",
			Bucket:   "big",
			Out:      out,
			HTTP:     "unix:" + filepath.Join(dir, "http.sock"),
			// A render of the whole bucket is an 11 MB file, and may
			// take seconds under the race detector.
			PluginSettings: "  memory = \"256MiB\"\n  timeout = \"2m\"\n  render_timeout = \"2m\"\n",
			WatchSettings:  fmt.Sprintf("  fold = %q\n", fold),
		}.HCL()
		config = filepath.Join(dir, "agent.hcl")
		if err := os.WriteFile(config, []byte(hcl), 0o644); err != nil {
			t.Fatal(err)
		}
		return config, out
	}
	// The kills come within the time a first sync takes on this machine
	// (the race detector makes it several times longer): an agent of its
	// own measures it.
	calibration := t.TempDir()
	config, _ := agentIn(calibration)
	agent := startSlipagent(t, calibration, "run", "-config", config)
	loaded := waitLog(t, agent, `msg="plugin loaded"`)
	syncTime := waitLog(t, agent, `msg="caught up"`).Sub(loaded)
	agent.stop(t, syscall.SIGTERM)
	within := syncTime + syncTime/4
	t.Logf("fold %s: a first sync takes %v from the plugin's load; kills come within %v of it", fold, syncTime, within)

	dir := t.TempDir()
	config, out := agentIn(dir)
	var logs strings.Builder
	interrupted := 0
	// Four rounds, and more while none was interrupted (a load that made
	// the calibration slow may have passed), each such round killing
	// sooner.
	for round := 0; round < 4 || interrupted == 0 && round < 12; round++ {
		agent := startSlipagent(t, dir, "run", "-config", config)
		waitLog(t, agent, `msg="plugin loaded"`)
		wait := time.Duration(rng.Int64N(int64(within)))
		time.Sleep(wait)
		agent.stop(t, syscall.SIGKILL)
		o := agent.output()
		if !strings.Contains(o, `msg="caught up"`) {
			interrupted++
		} else if interrupted == 0 {
			within = within/2 + 1
		}
		fmt.Fprintf(&logs, "--- agent %d (SIGKILLed %v after its plugin loaded):\n%s", round, wait, o)
		// Changes while it is down: the next one must apply them on top
		// of whatever the killed one left.
		for range 1 + rng.IntN(20) {
			key := fmt.Sprintf("svc.%05d", rng.IntN(killSyncKeys+50))
			if rng.IntN(4) == 0 {
				if err := kv.Delete(ctx, key); err != nil {
					t.Fatal(err)
				}
				delete(want, key)
				continue
			}
			want[key] = fmt.Sprintf("v%d-%s", round+1, key)
			if _, err := kv.PutString(ctx, key, want[key]); err != nil {
				t.Fatal(err)
			}
		}
	}

	if interrupted == 0 {
		t.Fatalf("fold %s: every agent caught up before it was killed; the test needs a bucket that takes longer to sync:\n%s", fold, logs.String())
	}
	agent = startSlipagent(t, dir, "run", "-config", config)
	expect := renderedPairs(want)
	deadline := time.Now().Add(3 * time.Minute)
	for {
		got, _ := os.ReadFile(out)
		code, st, _ := runCmd(t, "status", "-config", config)
		if code == exitOK && string(got) == expect {
			break
		}
		if time.Now().After(deadline) {
			agent.stop(t, syscall.SIGTERM)
			t.Fatalf("fold %s: the agent did not converge on the bucket: status %d:\n%s\n%s\n--- last agent:\n%s",
				fold, code, st, diffPairs(string(got), want), logs.String()+agent.output())
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Every kill left state the next agent loaded as it was: none
	// reported an error (such as a fold that does not load, moved aside
	// and rebuilt from the bucket).
	fmt.Fprintf(&logs, "--- agent 4 (converged):\n%s", agent.output())
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "level=ERROR") {
			t.Errorf("fold %s: an agent reported an error: %s\n%s", fold, line, logs.String())
			break
		}
	}
	// Nor did a kill leave files behind: the staging files of a render
	// it cut short, the tables of an ingestion it cut short.
	if names, _ := filepath.Glob(filepath.Join(filepath.Dir(out), "*")); len(names) != 1 || names[0] != out {
		t.Errorf("fold %s: the output directory holds %v, want only %s", fold, names, out)
	}
	filepath.WalkDir(filepath.Join(dir, "data"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && filepath.Base(filepath.Dir(p)) == "ingest" {
			t.Errorf("fold %s: %s is left over from an ingestion", fold, p)
		}
		return nil
	})
	t.Logf("fold %s: %d of 4 agents killed before they caught up; the fifth converged", fold, interrupted)
}

// renderedPairs is the file the bench template renders for bucket m:
// key=value lines in key order.
func renderedPairs(m map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "%s=%s\n", k, m[k])
	}
	return b.String()
}

// diffPairs says how rendered file got differs from bucket m: keys it
// lacks, keys it has that m does not, and values that differ (a few each).
func diffPairs(got string, m map[string]string) string {
	have := map[string]string{}
	for line := range strings.Lines(got) {
		k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		have[k] = v
	}
	var missing, extra, stale []string
	for k, v := range m {
		switch hv, ok := have[k]; {
		case !ok:
			missing = append(missing, k)
		case hv != v:
			stale = append(stale, k)
		}
	}
	for k := range have {
		if _, ok := m[k]; !ok {
			extra = append(extra, k)
		}
	}
	few := func(s []string) []string { slices.Sort(s); return s[:min(len(s), 5)] }
	return fmt.Sprintf("file has %d keys, bucket %d: %d missing %v, %d extra %v, %d stale %v",
		len(have), len(m), len(missing), few(missing), len(extra), few(extra), len(stale), few(stale))
}

// waitLog waits for the agent to log a line containing what, and returns
// when it saw it.
func waitLog(t *testing.T, agent *slipagentProcess, what string) time.Time {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !strings.Contains(agent.output(), what) {
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not log %s in 5 minutes:\n%s", what, agent.output())
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Now()
}
