package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
)

var (
	chaosSeed   = flag.Uint64("chaos.seed", 0, "TestChaos, TestKilledDuringFirstSync: the seed of the faults (0: from the clock, logged)")
	chaosRounds = flag.Int("chaos.rounds", 12, "TestChaos: how many faults")
)

// chaosConfig is the agent under test: bucket cfg through the files
// plugin, one file per key under files., drift checked every second, the
// fold of the kind the seed picks (chaosFolds).
const chaosConfig = `
data_dir  = "$DIR/data"
cache_dir = "$DIR/cache"
nats { servers = ["$NATS"] }
http { listen = "unix:$DIR/http.sock" }
plugin "files" {
  module = "$DIR/files.wasm"
  config = { prefix = "files." }
}
watch "cfg" {
  bucket      = "cfg"
  plugin      = "files"
  drift_check = "1s"
  fold        = "$FOLD"
  output "files" { dir = "$DIR/out" }
}
`

// chaosFolds are the fold kinds TestChaos runs with, one per seed (the seed
// modulo their number picks it), so that `make chaos` runs both.
var chaosFolds = []string{"memory", "disk"}

// TestChaos drives a real agent process and a real nats-server process
// through faults chosen by a seed, with writes between them: the agent
// SIGKILLed and restarted, the server SIGKILLed and restarted on its store,
// the bucket deleted and re-created with other contents, output files
// edited or removed behind the agent's back. Once the faults stop, the
// agent must say it is ready with its files equal to the bucket; if the
// deletion guard holds the watch (it says so), the operator's
// confirmation must lead there too. A failure names the seed to replay
// with -chaos.seed.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("runs nats-server and slipagent processes")
	}
	seed := *chaosSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	fold := chaosFolds[seed%uint64(len(chaosFolds))]
	t.Logf("seed %d, fold %s (replay: go test -run TestChaos ./cmd/slipagent -chaos.seed=%d)", seed, fold, seed)
	rng := rand.New(rand.NewPCG(seed, 0))

	srv := natstest.RunProc(t, natstest.ServerBinary(t))
	js := natstest.JetStream(t, srv.URL(), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	b := &chaosBucket{js: js, rng: rng}
	if err := b.create(ctx); err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "files.wasm"), plugintest.Module(t, "plugins/examples/files"), 0o644)
	config := filepath.Join(dir, "agent.hcl")
	os.WriteFile(config, []byte(strings.NewReplacer("$DIR", dir, "$NATS", srv.URL(), "$FOLD", fold).Replace(chaosConfig)), 0o644)
	out := filepath.Join(dir, "out")
	var agent *slipagentProcess
	var logs strings.Builder // every agent process's output, in order
	startAgent := func() { agent = startSlipagent(t, dir, "run", "-config", config) }
	stopAgent := func(sig syscall.Signal) {
		agent.stop(t, sig)
		fmt.Fprintf(&logs, "--- agent (stopped with %v):\n%s", sig, agent.output())
	}
	startAgent()

	for round := range *chaosRounds {
		b.writes(ctx, rng.IntN(6))
		time.Sleep(time.Duration(rng.IntN(400)) * time.Millisecond)
		switch fault := rng.IntN(5); fault {
		case 0:
			t.Logf("round %d: SIGKILL the agent", round)
			stopAgent(syscall.SIGKILL)
			b.writes(ctx, rng.IntN(4))
			startAgent()
		case 1:
			t.Logf("round %d: SIGKILL nats-server, restart it on its store", round)
			srv.Kill()
			time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
			srv.Start()
		case 2:
			t.Logf("round %d: delete the bucket and re-create it with other contents", round)
			if err := b.recreate(ctx); err != nil {
				t.Logf("round %d: re-creating the bucket: %v (the server may be starting)", round, err)
			}
		case 3:
			names, _ := filepath.Glob(filepath.Join(out, "*.conf"))
			if len(names) == 0 {
				t.Logf("round %d: no output file to edit yet", round)
				continue
			}
			name := names[rng.IntN(len(names))]
			if rng.IntN(2) == 0 {
				t.Logf("round %d: edit %s behind the agent's back", round, filepath.Base(name))
				os.WriteFile(name, []byte("edited by hand"), 0o644)
			} else {
				t.Logf("round %d: remove %s behind the agent's back", round, filepath.Base(name))
				os.Remove(name)
			}
		case 4:
			t.Logf("round %d: a burst of writes", round)
			b.writes(ctx, 20+rng.IntN(30))
		}
	}

	// Quiet: the agent must converge on the bucket and say it is ready.
	deadline := time.Now().Add(4 * time.Minute)
	for {
		want, err := b.contents(ctx)
		got := outputs(t, out)
		code, st, _ := runCmd(t, "status", "-config", config)
		if err == nil && code == exitOK && maps.Equal(got, want) {
			break
		}
		if strings.Contains(st, "held") {
			// The deletion guard held a re-created bucket's batch and
			// says so; the operator confirms it.
			if code, o, e := runCmd(t, "resync", "--confirm", "cfg", "-config", config); code != exitOK {
				t.Logf("resync --confirm cfg = %d %q %q", code, o, e)
			}
		}
		if time.Now().After(deadline) {
			stopAgent(syscall.SIGTERM)
			t.Fatalf("seed %d: the agent did not converge: status %d:\n%s\nbucket %v, err %v\nfiles  %v\n%s", seed, code, st, want, err, got, logs.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// chaosBucket is bucket cfg and the writes made to it.
type chaosBucket struct {
	js  jetstream.JetStream
	rng *rand.Rand
	kv  jetstream.KeyValue
}

func (b *chaosBucket) create(ctx context.Context) (err error) {
	b.kv, err = natstest.CreateOrUpdateKeyValue(ctx, b.js, jetstream.KeyValueConfig{Bucket: "cfg", History: 2})
	return err
}

// recreate deletes the bucket and creates it again with a few of the keys.
func (b *chaosBucket) recreate(ctx context.Context) error {
	if err := b.js.DeleteKeyValue(ctx, "cfg"); err != nil {
		return err
	}
	if err := b.create(ctx); err != nil {
		return err
	}
	b.writes(ctx, b.rng.IntN(12))
	return nil
}

// writes makes n puts and deletes of 16 keys; one that fails (the server
// restarting) is not retried.
func (b *chaosBucket) writes(ctx context.Context, n int) {
	for range n {
		key := fmt.Sprintf("files.k%02d.conf", b.rng.IntN(16))
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if b.rng.IntN(4) == 0 {
			_ = b.kv.Delete(ctx, key)
		} else {
			_, _ = b.kv.PutString(ctx, key, fmt.Sprintf("v%d", b.rng.Uint32()))
		}
		cancel()
	}
}

// contents is the bucket as the files plugin renders it: file name → value.
// A bucket a failed re-creation left deleted is created (empty), as an
// operator would.
func (b *chaosBucket) contents(ctx context.Context) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := b.create(ctx); err != nil {
		return nil, err
	}
	m := map[string]string{}
	lister, err := b.kv.ListKeys(ctx)
	if errors.Is(err, jetstream.ErrNoKeysFound) {
		return m, nil
	}
	if err != nil {
		return nil, err
	}
	for key := range lister.Keys() {
		e, err := b.kv.Get(ctx, key)
		if err != nil {
			return nil, err
		}
		m[strings.TrimPrefix(key, "files.")] = string(e.Value())
	}
	return m, nil
}

// outputs is the *.conf files in dir: name → content.
func outputs(t *testing.T, dir string) map[string]string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "*.conf"))
	slices.Sort(names)
	m := map[string]string{}
	for _, name := range names {
		if b, err := os.ReadFile(name); err == nil {
			m[filepath.Base(name)] = string(b)
		}
	}
	return m
}
