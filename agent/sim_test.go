package agent

// The deterministic simulation of a watch.
//
// TestSimulation runs seeded scenarios against the agent's real watch code —
// watchRunner (session setup, fold and state files, the hook journal, apply,
// commit, checkpoint), kvcore.WatchApplied and the real snapshot fold on a
// RAM disk — with a simulated world around it: the bucket is a memkv bucket
// (the in-memory backend that passes the NATS conformance suite), the plugin
// is a native stand-in with the files example's behaviour (simModule), and
// time is synctest's fake clock, so backoffs, batch windows, retention and
// periodic checks cost nothing. A seed fixes the workload and the faults; the
// run prints a failing seed with the trace that led to it, and
// `make sim SEED=N` replays it (synctest fixes the clock; the goroutine
// interleaving inside the loop is not under the seed's control, so a replay
// almost always, not always, takes the same path).
//
// The watch has a hook, which the plugin asks for whenever it changes a
// file, with a seeded splay and min_interval; the scheduler is the agent's,
// its command a stand-in that records the run (and can fail or crash).
//
// Workload: puts (some of empty values, some of values the plugin's host
// refuses, as it refuses a file over max_file_size, which a later put of the
// key fixes), deletes, purges, bursts, and idle periods long enough for
// retention to pass the watch's cursor.
//
// Faults: a crash (the process state is dropped; only what reached disk
// survives) at a random moment or at the N-th durable step (fold write,
// plugin call, each file of a commit, hook run, checkpoint); a graceful
// stop and a later start; failing fold writes; failing and slow plugin
// calls; failing hook runs; the
// server restarting (every watch and store ends); the bucket deleted and
// re-created — empty, with the same keys and new values, or with more records
// than the agent's cursor — while the agent runs or while it is stopped;
// retention passing the cursor (a bucket with a max age: records and delete
// markers expire); the server's store restored from a copy taken earlier
// (the bucket keeps its identity, loses the records written since and
// reuses their revisions); output files edited or deleted behind the
// agent's back; a fold or the record of committed outputs damaged (the
// record also deleted), or the whole data_dir removed, while the agent is
// stopped.
//
// Invariants:
//   - cursor after apply: whenever a checkpoint is written, every update of
//     the bucket up to it is reflected in the output files (checked against
//     the writer's history on buckets without retention limits);
//   - no unconfirmed mass deletion: no commit removes more outputs than the
//     guard allows (max_delete_fraction, min_deletes) unless an operator
//     confirmed it;
//   - convergence: once the faults stop (and an operator fixed the refused
//     values in the bucket), the watch ends ready, with no
//     current error, and its output files equal the bucket's live keys,
//     empty values included (a held watch is confirmed first, as an operator
//     would);
//   - nothing is skipped: convergence is checked against the bucket itself,
//     so a skipped update shows as a wrong file;
//   - a hook owed runs: once converged, the hook has run after the last
//     file the agent committed (unless the data_dir, and with it the hook
//     journal, was wiped since);
//   - ready means the files follow: while the watch says ready, no output
//     stays unequal to its key's value in the bucket for longer than
//     stale_after and the time to apply a write, simLag (checked
//     every second of fake time, on buckets without retention limits,
//     outside drift and store restores, whose repairs run minutes apart).

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/memkv"
	"github.com/slipstreamkv/slipstream/plugins/abi"
)

var (
	simSeeds = flag.Int("sim.seeds", 300, "how many seeds TestSimulation runs")
	simSeed  = flag.Uint64("sim.seed", 0, "run only this seed (with its trace)")
	simFirst = flag.Uint64("sim.first", 1, "the first seed TestSimulation runs")
	simFails = flag.Int("sim.maxfail", 3, "stop after this many failing seeds")
)

const (
	simBucket   = "app"
	simKeys     = 12 // keyspace k00..k11
	simSteps    = 24 // workload and fault steps per seed
	simMinDel   = 4  // the guard's min_deletes in the simulated config
	simFraction = 0.5
	// simRefused starts the values the simulated plugin's writes are
	// refused for (simResult.write).
	simRefused = "refused"
	// simHook is the watch's hook, asked for by every commit that changes
	// a file.
	simHook = "reload"
	// simStaleAfter is the watch's stale_after: a watch behind the bucket
	// for longer is not ready.
	simStaleAfter = 30 * time.Second
	// simLag is how long an output may trail its key while the watch says
	// ready: stale_after, and the time for the watch to receive a write and
	// apply it (no fake time passes), with room for its batch window.
	simLag = simStaleAfter + 10*time.Second
)

var errSimCrash = errors.New("sim: crashed")

func TestSimulation(t *testing.T) {
	root := simRoot(t)
	if *simSeed != 0 {
		runSeed(t, root, *simSeed, true)
		return
	}
	n := *simSeeds
	if testing.Short() {
		n = min(n, 100)
	}
	// Two workers, each taking seeds in turn: the seeds are independent.
	var failed atomic.Int32
	next := atomic.Uint64{}
	next.Store(*simFirst)
	last := *simFirst + uint64(n)
	t.Run("seeds", func(t *testing.T) {
		for worker := range 2 {
			t.Run(fmt.Sprint("worker", worker), func(t *testing.T) {
				t.Parallel()
				for seed := next.Add(1) - 1; seed < last && failed.Load() < int32(*simFails); seed = next.Add(1) - 1 {
					if !runSeed(t, root, seed, false) {
						failed.Add(1)
					}
				}
			})
		}
	})
	if f := failed.Load(); f >= int32(*simFails) {
		t.Errorf("stopped after %d failing seeds", f)
	}
}

// simRegressions are seeds beyond the ones CI runs (make test runs the
// first 10,000) that found a bug once: each replays the scenario that did.
var simRegressions = []uint64{
	14167,  // a batch of fresh same-size keys hid a reused revision below them
	33168,  // a refused value, folded ahead, lost by a store restore
	36218,  // a sync busy applying across a store restore
	55970,  // fixes folded, their apply failed, the watch ended
	73694,  // the same
	154489, // a failed commit of a removal left the file out of the drift record
	203687, // a delete folded ahead in a failing batch, lost by a store restore
	224311, // a sync's watch lost during its batch, yet the sync reported caught up
	229275, // a reconciliation trusted records a watch lost to a store restore had delivered
	230214, // a fold write retried within a failing batch cleared the batch's failure
	240666, // a session that failed unreconciled left a reused revision below the next one's probes
	248148, // a checkpoint retried after its watch was lost reported the loop recovered
}

// TestSimulationRegressions runs simRegressions.
func TestSimulationRegressions(t *testing.T) {
	root := simRoot(t)
	for _, seed := range simRegressions {
		runSeed(t, root, seed, false)
	}
}

// simRoot is where the seeds keep their files: a RAM disk when there is one
// (fsync is real but cheap there), else the test's temporary directory.
func simRoot(t *testing.T) string {
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		dir, err := os.MkdirTemp("/dev/shm", "slipsim-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(dir) })
			return dir
		}
	}
	return t.TempDir()
}

// runSeed runs one scenario and reports whether its invariants held. A
// failure is reported with the seed, the scenario's trace and the agent's
// logs.
func runSeed(t *testing.T, root string, seed uint64, verbose bool) bool {
	var w *simWorld
	synctest.Test(t, func(st *testing.T) {
		w = newSimWorld(st, filepath.Join(root, fmt.Sprint(seed)), seed)
		defer w.close()
		w.run()
	})
	defer os.RemoveAll(filepath.Join(root, fmt.Sprint(seed)))
	if len(w.violations) == 0 && !verbose {
		return true
	}
	report := fmt.Sprintf("seed %d (replay: make sim SEED=%d)\n-- violations:\n%s\n-- trace:\n%s\n-- agent log (last lines):\n%s",
		seed, seed, strings.Join(w.violations, "\n"), strings.Join(w.trace, "\n"), w.logTail())
	if len(w.violations) > 0 {
		t.Error(report)
		return false
	}
	t.Log(report)
	return true
}

// simWorld is one scenario: the bucket and its writer's history, the agent's
// directories, the agent's current life, and the faults armed for it.
type simWorld struct {
	t    *testing.T
	rng  *rand.Rand
	conn *memkv.Conn
	dir  string // data_dir
	out  string // the output directory
	cfg  *Config

	lossy bool // the bucket has a max age: records and markers expire
	inc   int  // bucket incarnation, bumped when it is re-created
	hist  map[string][]simRecord
	nval  int

	drifted map[string]bool // outputs edited behind the agent's back since its last commit of them
	// lagging is, for each output unequal to its key's value while the
	// watch runs, since when and against which value (see checkReady).
	lagging map[string]simLagging

	life    *simLife
	lifeInc int // the incarnation when the current life started

	// storeCopy puts back the bucket as it was when the server's store was
	// copied (nil: no copy), with histCopy, the history then. Each
	// restore bumps epoch: lives that started before it are not checked
	// against the history (as lives on an earlier incarnation).
	storeCopy func() error
	histCopy  map[string][]simRecord
	epoch     int
	lifeEpoch int // the epoch when the current life started
	// settling: the store was restored, and no watch session attached
	// since has caught up (the agent has not logged "caught up" past
	// settleFrom, its log's length then, after a line that shows a new
	// session: the loss of the consumer the restore ended, or, with
	// settleFresh, a life started after the restore). A session resuming
	// from a cursor the restored bucket reused applies (and checkpoints)
	// the records after it before its reconciliation finds the fold out
	// of step and resyncs, and one that attached before the restore and
	// was busy applying meanwhile logs its catch-up before it notices the
	// loss; the watch is not ready meanwhile, which is what the agent
	// promises.
	settling    bool
	settleFrom  int
	settleFresh bool

	mu         sync.Mutex // guards what the agent's goroutines touch below
	faults     simFaults
	steps      int // durable steps taken in this life
	crashAt    int // crash at this step (0: not armed)
	crashed    bool
	cancelLife context.CancelFunc
	watches    []*simWatch
	confirmed  bool // an operator confirmed a hold: mass deletions are allowed
	commits    int  // files committed (written or removed) by the agent
	hookRan    int  // commits when the hook last ran (or was forgiven)
	tmp        int
	violations []string
	trace      []string
	logs       *simLog
}

// simRecord is one write of the simulated writer.
type simRecord struct {
	inc    int
	rev    uint64
	value  string
	remove bool
}

type simFaults struct {
	foldFail   int
	pluginFail int
	pluginSlow time.Duration
	hookFail   int
}

// simLagging is an output found unequal to its key's value: since when,
// and the value (absent: the key is not live) it was compared with.
type simLagging struct {
	since  time.Time
	want   string
	absent bool
}

// simLife is one run of the agent's watch, from start to stop or crash.
type simLife struct {
	cancel context.CancelFunc
	done   chan struct{}
	a      *Agent
}

func newSimWorld(t *testing.T, dir string, seed uint64) *simWorld {
	w := &simWorld{
		t:       t,
		rng:     rand.New(rand.NewPCG(seed, 0x5eed)),
		conn:    memkv.New(),
		dir:     filepath.Join(dir, "data"),
		out:     filepath.Join(dir, "out"),
		hist:    map[string][]simRecord{},
		drifted: map[string]bool{},
		lagging: map[string]simLagging{},
		logs:    &simLog{},
	}
	w.logs.check = w.checkDriftClaim
	w.lossy = w.rng.IntN(2) == 0
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(dir, "sim.wasm")
	if err := os.WriteFile(module, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The hook's command is never run: start replaces the agent's runner.
	splay := []string{"0s", "3s", "40s"}[w.rng.IntN(3)]
	minInterval := []string{"0s", "5s", "45s", "2m"}[w.rng.IntN(4)]
	src := fmt.Sprintf(`
data_dir = %q
plugin "files" { module = %q }
watch "sim" {
  bucket = %q
  plugin = "files"
  output "files" { dir = %q }
  drift_check = "1m"
  stale_after = %q
  guard {
    max_delete_fraction = %v
    min_deletes         = %d
  }
  hook %q {
    command      = ["/bin/false"]
    splay        = %q
    min_interval = %q
  }
}
`, w.dir, module, simBucket, w.out, simStaleAfter, simFraction, simMinDel, simHook, splay, minInterval)
	cfg, err := Parse(filepath.Join(dir, "agent.hcl"), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	w.cfg = cfg
	w.createBucket()
	return w
}

func (w *simWorld) createBucket() {
	cfg := kvcore.StoreConfig{Bucket: simBucket, MaxBytes: -1}
	if w.lossy {
		cfg.MaxAge = 90 * time.Second
	}
	if _, err := w.conn.Store(context.Background(), cfg); err != nil {
		w.t.Fatal(err)
	}
	w.mu.Lock()
	w.inc++
	w.hist = map[string][]simRecord{}
	w.storeCopy, w.histCopy = nil, nil // a copy of the deleted incarnation
	w.mu.Unlock()
}

func (w *simWorld) store() kvcore.Store {
	s, err := w.conn.Open(context.Background(), simBucket)
	if err != nil {
		w.t.Fatalf("sim: opening the bucket: %v", err)
	}
	return s
}

func (w *simWorld) close() {
	w.stop()
	w.conn.Close()
}

func (w *simWorld) tracef(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.trace = append(w.trace, fmt.Sprintf("%8s  ", time.Since(simEpoch).Truncate(time.Millisecond))+fmt.Sprintf(format, args...))
}

func (w *simWorld) violate(format string, args ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
	w.trace = append(w.trace, "VIOLATION: "+fmt.Sprintf(format, args...))
}

// simEpoch is synctest's fake start of time (midnight UTC 2000-01-01).
var simEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// run plays the seed's steps, then stops the faults and checks convergence.
func (w *simWorld) run() {
	w.start()
	for range simSteps {
		w.act()
		time.Sleep(time.Duration(w.rng.IntN(400)) * time.Millisecond)
		synctest.Wait()
		w.settle()
		w.checkReady()
		if w.isCrashed() {
			w.stop()
			w.start()
		}
	}
	w.quiesce()
}

// act takes one random step of the workload or the faults.
func (w *simWorld) act() {
	key := fmt.Sprintf("k%02d", w.rng.IntN(simKeys))
	switch n := w.rng.IntN(100); {
	case n < 30:
		w.put(key)
	case n < 38:
		w.remove(key, false)
	case n < 41:
		w.remove(key, true)
	case n < 45:
		for range 2 + w.rng.IntN(simKeys) {
			w.put(fmt.Sprintf("k%02d", w.rng.IntN(simKeys)))
		}
	case n < 49:
		d := time.Duration(30+w.rng.IntN(240)) * time.Second
		w.tracef("idle %v", d)
		w.idle(d)
	case n < 54:
		if w.life != nil {
			w.tracef("crash")
			w.crash()
		}
	case n < 58:
		if w.life != nil {
			w.tracef("stop")
			w.stop()
		} else {
			w.start()
		}
	case n < 61:
		w.recreate()
	case n < 65:
		w.tracef("server restart")
		w.restartServer()
	case n < 68:
		if w.life == nil {
			switch w.rng.IntN(3) {
			case 0:
				w.damageFold()
			case 1:
				w.damageRecord()
			default:
				w.wipeDataDir()
			}
		}
	case n < 73:
		w.drift(key)
	case n < 76:
		w.mu.Lock()
		w.faults.foldFail = 1 + w.rng.IntN(3)
		w.mu.Unlock()
		w.tracef("some fold writes fail")
	case n < 80:
		w.mu.Lock()
		w.faults.pluginFail = 1 + w.rng.IntN(3)
		w.mu.Unlock()
		w.tracef("some plugin calls fail")
	case n < 83:
		w.mu.Lock()
		w.faults.pluginSlow = time.Duration(1+w.rng.IntN(3)) * time.Second
		w.mu.Unlock()
		w.tracef("next plugin call is slow")
	case n < 90:
		w.mu.Lock()
		w.crashAt = w.steps + 1 + w.rng.IntN(8)
		w.mu.Unlock()
		w.tracef("crash at durable step %d", w.crashAt)
	case n < 93:
		w.rollBack()
	case n < 96:
		w.mu.Lock()
		w.faults.hookFail = 1 + w.rng.IntN(3)
		w.mu.Unlock()
		w.tracef("some hook runs fail")
	default:
		if w.life == nil {
			w.start()
		}
	}
}

func (w *simWorld) put(key string) {
	switch w.rng.IntN(16) {
	case 0, 1:
		w.putValue(key, "")
	case 2:
		w.nval++
		w.putValue(key, fmt.Sprintf("%s%d.%d", simRefused, w.inc, w.nval))
	default:
		w.putValue(key, w.nextValue())
	}
}

// nextValue is a new value the plugin writes.
func (w *simWorld) nextValue() string {
	w.nval++
	return fmt.Sprintf("v%d.%d", w.inc, w.nval)
}

func (w *simWorld) putValue(key, value string) {
	// The write and its record in the history are one step for the
	// checkpoint checks, which may run as soon as the agent sees the write.
	w.mu.Lock()
	v, err := w.store().Put(context.Background(), key, []byte(value))
	rev, _ := v.Revision()
	if err == nil {
		w.hist[key] = append(w.hist[key], simRecord{inc: w.inc, rev: rev, value: value})
	}
	w.mu.Unlock()
	if err != nil {
		w.t.Fatalf("sim: put %s: %v", key, err)
	}
	w.tracef("put %s=%q @%d", key, value, rev)
}

func (w *simWorld) remove(key string, purge bool) {
	s := w.store()
	w.mu.Lock() // see put
	var err error
	if purge {
		err = s.Purge(context.Background(), key)
	} else {
		err = s.Delete(context.Background(), key)
	}
	if err == nil {
		// The marker's revision is the bucket's newest one (on a bucket
		// without retention limits, where the history is complete).
		var rev uint64
		for _, recs := range w.hist {
			for _, r := range recs {
				rev = max(rev, r.rev)
			}
		}
		w.hist[key] = append(w.hist[key], simRecord{inc: w.inc, rev: rev + 1, remove: true})
	}
	w.mu.Unlock()
	if err != nil {
		w.t.Fatalf("sim: delete %s: %v", key, err)
	}
	w.tracef("delete %s (purge %v)", key, purge)
}

// rollBack copies the server's store, or, when a copy was taken, restores
// it and restarts the server: the bucket goes back in time, and the next
// writes reuse the revisions of the records it lost.
func (w *simWorld) rollBack() {
	if w.storeCopy == nil {
		restore, err := w.conn.CopyBucket(simBucket)
		if err != nil {
			w.t.Fatal(err)
		}
		w.mu.Lock()
		w.storeCopy, w.histCopy = restore, maps.Clone(w.hist)
		for k, recs := range w.histCopy {
			w.histCopy[k] = slices.Clone(recs)
		}
		w.mu.Unlock()
		w.tracef("server store copied")
		return
	}
	w.logs.mu.Lock()
	from := len(w.logs.lines)
	w.logs.mu.Unlock()
	w.mu.Lock()
	err := w.storeCopy()
	if err == nil {
		w.hist = w.histCopy
		w.epoch++
		w.settling, w.settleFrom, w.settleFresh = true, from, false
	}
	w.storeCopy, w.histCopy = nil, nil
	w.mu.Unlock()
	if err != nil {
		w.t.Fatal(err)
	}
	// The server comes back on the restored store without the consumers:
	// they end once the store is swapped, so that no session the loss
	// wakes attaches to the store as it was.
	w.restartServer()
	w.tracef("server store restored from its copy")
}

// settle ends the settling after a store restore once the agent logged
// that a session attached since caught up (after its reconciliation).
func (w *simWorld) settle() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.settling {
		return
	}
	w.logs.mu.Lock()
	defer w.logs.mu.Unlock()
	fresh := w.settleFresh
	for _, line := range w.logs.lines[w.settleFrom:] {
		switch {
		case strings.Contains(line, errSimConsumerLost.Error()):
			fresh = true
		case fresh && strings.Contains(line, `msg="caught up"`):
			w.settling = false
			return
		}
	}
}

// recreate deletes the bucket and creates it again: empty, with the same keys
// and new values, or with more records than it had.
func (w *simWorld) recreate() {
	live := w.liveKeys()
	if err := w.conn.DeleteBucket(simBucket); err != nil {
		w.t.Fatal(err)
	}
	w.createBucket()
	switch w.rng.IntN(3) {
	case 0:
		w.tracef("bucket re-created empty")
	case 1:
		w.tracef("bucket re-created with the same keys")
		for _, k := range live {
			w.put(k)
		}
	default:
		w.tracef("bucket re-created with more records")
		for range 40 {
			w.put(fmt.Sprintf("k%02d", w.rng.IntN(simKeys)))
		}
	}
}

// liveKeys reads the bucket's live keys, empty values included.
func (w *simWorld) liveKeys() []string {
	var keys []string
	for k := range w.expected() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// expected is the bucket's live state as the backend itself reports it.
func (w *simWorld) expected() map[string]string {
	s := w.store()
	want := map[string]string{}
	for i := range simKeys {
		k := fmt.Sprintf("k%02d", i)
		e, err := s.Entry(context.Background(), k)
		if errors.Is(err, kvcore.ErrNotFound) {
			continue
		}
		if err != nil {
			w.t.Fatalf("sim: reading %s: %v", k, err)
		}
		want[k] = string(e.Value)
	}
	return want
}

// outputNames lists the output directory's files (not the staging files).
func (w *simWorld) outputNames() ([]string, error) {
	ents, err := os.ReadDir(w.out)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), abi.StagePrefix) && e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

func (w *simWorld) outputs() map[string]string {
	names, err := w.outputNames()
	if err != nil {
		w.t.Fatal(err)
	}
	got := map[string]string{}
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(w.out, n))
		if err != nil {
			w.t.Fatal(err)
		}
		got[n] = string(b)
	}
	return got
}

// drift edits or deletes an output file behind the agent's back.
func (w *simWorld) drift(name string) {
	path := filepath.Join(w.out, name)
	if _, err := os.Stat(path); err != nil {
		return
	}
	// The mark and the edit happen under mu, as a checkpoint's check takes
	// the marks and reads the files under it: the check sees a file either
	// before its edit or marked (an edit begun after the check took the
	// marks was read half-done: truncated, not yet written).
	remove := w.rng.IntN(2) == 0
	w.mu.Lock()
	w.drifted[name] = true
	if remove {
		os.Remove(path)
	} else {
		os.WriteFile(path, []byte("edited by hand"), 0o644)
	}
	w.mu.Unlock()
	if remove {
		w.tracef("drift: removed %s", name)
	} else {
		w.tracef("drift: edited %s", name)
	}
}

// wipeDataDir removes the stopped agent's data_dir, as an operator may
// (local state is a cache): the next start syncs and renders afresh over the
// outputs in place, and must still repair their drift later.
func (w *simWorld) wipeDataDir() {
	if err := os.RemoveAll(w.dir); err != nil {
		w.t.Fatal(err)
	}
	if err := os.Mkdir(w.dir, 0o700); err != nil {
		w.t.Fatal(err)
	}
	// The hook journal went with it: the agent cannot know a hook is owed
	// for files already in place.
	w.mu.Lock()
	w.hookRan = w.commits
	w.mu.Unlock()
	w.tracef("data_dir wiped")
}

// damageFold damages the stopped watch's fold file: a torn tail with a hole
// of zeros, or garbage over its header.
func (w *simWorld) damageFold() {
	path := filepath.Join(w.dir, "watches", "sim", logFoldFile)
	st, err := os.Stat(path)
	if err != nil || st.Size() < 8 {
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	if w.rng.IntN(2) == 0 {
		f.WriteAt(append(make([]byte, 64), 0x42, 0x01), st.Size())
		w.tracef("damaged the fold: a torn tail with a hole")
	} else {
		f.WriteAt([]byte("garbage!"), 0)
		w.tracef("damaged the fold: garbage header")
	}
}

// damageRecord deletes the stopped agent's record of committed outputs, or
// overwrites its header: the files edited behind its back before then must
// still be repaired.
func (w *simWorld) damageRecord() {
	path := filepath.Join(w.dir, "watches", "sim", outputsRecordFile)
	if _, err := os.Stat(path); err != nil {
		return
	}
	if w.rng.IntN(2) == 0 {
		if err := os.Remove(path); err != nil {
			w.t.Fatal(err)
		}
		w.tracef("deleted the record of committed outputs")
		return
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		w.t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt([]byte("garbage!"), 0)
	w.tracef("damaged the record of committed outputs: garbage header")
}

// start begins a new life of the agent's watch on the same directories.
func (w *simWorld) start() {
	if w.life != nil {
		return
	}
	a, err := New(w.cfg, Options{Conn: simConn{w.conn, w}, Logger: slog.New(slog.NewTextHandler(w.logs, nil)), Notify: func(string) error { return nil }})
	if err != nil {
		w.t.Fatal(err)
	}
	a.load = func(context.Context, *PluginConf) (module, error) { return simModule{w}, nil }
	a.digest = func(*PluginConf) (string, error) { return simModule{w}.SHA256(), nil }
	a.wrapFold = func(f kvcore.Fold) kvcore.Fold { return &simFold{Fold: f, w: w} }
	close(a.connected) // the watch runs alone, without Run's connect; memkv needs none
	ctx, cancel := context.WithCancel(context.Background())
	// The agent's scheduler, ending with the life as Run's ends with the
	// agent, around the stand-in command.
	a.hooks = newHookScheduler(ctx, w.runHook)
	life := &simLife{cancel: cancel, done: make(chan struct{}), a: a}
	w.mu.Lock()
	w.steps, w.crashAt, w.crashed, w.cancelLife = 0, 0, false, cancel
	w.mu.Unlock()
	w.logs.mu.Lock()
	lines := len(w.logs.lines)
	w.logs.mu.Unlock()
	w.mu.Lock()
	w.lifeInc, w.lifeEpoch = w.inc, w.epoch
	if w.settling { // this life's sessions attach to the restored store
		w.settleFrom, w.settleFresh = lines, true
	}
	w.mu.Unlock()
	go func() {
		defer close(life.done)
		a.watches[0].run(ctx)
	}()
	w.life = life
	w.tracef("start")
}

// stop ends the current life and waits for it.
func (w *simWorld) stop() {
	if w.life == nil {
		return
	}
	w.life.cancel()
	<-w.life.done
	w.life.a.hooks.wait()
	w.life = nil
	clear(w.lagging)
}

// crash drops the current life: from now on no durable step succeeds, and
// the life's goroutines are stopped.
func (w *simWorld) crash() {
	w.mu.Lock()
	w.crashed = true
	w.mu.Unlock()
	w.stop()
}

func (w *simWorld) isCrashed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.crashed
}

// step is a durable step of the agent (a fold write, a plugin call, a file
// of a commit): it fails once the life crashed, and crashes it when it is
// the step the scenario chose.
func (w *simWorld) step(what string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.crashed {
		return errSimCrash
	}
	w.steps++
	if w.crashAt > 0 && w.steps == w.crashAt {
		w.crashed = true
		w.trace = append(w.trace, fmt.Sprintf("%8s  crash at durable step %d (%s)", time.Since(simEpoch).Truncate(time.Millisecond), w.steps, what))
		w.cancelLife()
		return errSimCrash
	}
	return nil
}

func (w *simWorld) nextTmp() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tmp++
	return w.tmp
}

func (w *simWorld) isDrifted(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.drifted[name]
}

// committed records that the agent wrote or removed an output.
func (w *simWorld) committed(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.drifted, name)
	w.commits++
}

// runHook stands in for the hook's command, run by the agent's scheduler: a
// crash point, a scripted failure, or a run, recorded.
func (w *simWorld) runHook(ctx context.Context, rd *hookRound) error {
	if err := w.step("hook"); err != nil {
		return err
	}
	w.mu.Lock()
	fail := w.faults.hookFail > 0
	if fail {
		w.faults.hookFail--
	} else {
		w.hookRan = w.commits
	}
	w.mu.Unlock()
	if fail {
		w.tracef("hook fails")
		return errors.New("sim: hook failed")
	}
	w.tracef("hook ran")
	return nil
}

// checkMassDelete reports a commit that removes more outputs than the guard
// allows while no operator confirmed it.
func (w *simWorld) checkMassDelete(removals int) {
	w.mu.Lock()
	confirmed := w.confirmed
	w.mu.Unlock()
	if removals < simMinDel || confirmed {
		return
	}
	names, _ := w.outputNames()
	if float64(removals) > simFraction*float64(len(names)) {
		w.violate("mass deletion without confirmation: a commit removes %d of %d outputs", removals, len(names))
	}
}

// checkpointed checks the cursor-after-apply invariant at a checkpoint: every
// update up to cursor is reflected in the outputs (or superseded by a later
// one that is, or by one written after the cursor, which the watch delivers
// instead). It needs the writer's full history, so it runs on buckets
// without retention limits and in lives that started on the bucket's
// current incarnation.
func (w *simWorld) checkpointed(c kvcore.Cursor) {
	at, ok := c.Revision()
	// The history and the drift marks are taken before the files: a mark
	// is cleared only once its file was rewritten.
	// The files are read under mu too (see drift).
	var (
		inc     int
		current bool
		hist    map[string][]simRecord
		drifted map[string]bool
		got     map[string]string
	)
	func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		inc, current = w.inc, w.lifeInc == w.inc && w.lifeEpoch == w.epoch && !w.settling
		hist, drifted = maps.Clone(w.hist), maps.Clone(w.drifted)
		if !w.lossy && current && ok {
			got = w.outputs()
		}
	}()
	if w.lossy || !current || !ok {
		return
	}
	for key, recs := range hist {
		i := -1
		for j, r := range recs {
			if r.rev <= at {
				i = j
			}
		}
		// A record superseded by one written since (after the cursor) may
		// never be delivered: the bucket keeps one record a key, and a
		// watch resuming behind it sees only the newer one.
		if i < 0 || drifted[key] || recs[len(recs)-1].rev > at {
			continue
		}
		content, present := got[key]
		okay := false
		for _, r := range recs[i:] {
			if r.remove && !present || !r.remove && present && r.value == content {
				okay = true
			}
		}
		if !okay {
			w.violate("checkpoint %d: %s holds %q (present %v), but the bucket's update @%d is not applied", at, key, content, present, recs[i].rev)
		}
	}
	for key, content := range got {
		if drifted[key] {
			continue
		}
		if content != "" && !strings.HasPrefix(content, fmt.Sprintf("v%d.", inc)) && len(hist[key]) > 0 {
			w.violate("checkpoint %d: %s holds %q from an earlier incarnation of the bucket", at, key, content)
		}
	}
}

// quiesce stops the faults, makes sure the agent runs, and waits (in fake
// time) for the outputs to equal the bucket, confirming a held watch as an
// operator would. It reports what does not converge.
func (w *simWorld) quiesce() {
	w.mu.Lock()
	w.faults = simFaults{}
	w.crashAt = 0
	w.mu.Unlock()
	if w.isCrashed() {
		w.stop()
	}
	w.start()
	w.tracef("quiesce")
	// An operator fixes the values the plugin refuses.
	for k, v := range w.expected() {
		if strings.HasPrefix(v, simRefused) {
			w.putValue(k, w.nextValue())
		}
	}
	deadline := time.Now().Add(2 * time.Hour)
	for i := 0; time.Now().Before(deadline); i++ {
		// Look every second at first, then every minute: the periodic
		// checks (drift, reconciliation) run minutes apart.
		if i < 60 {
			time.Sleep(time.Second)
		} else {
			time.Sleep(time.Minute)
		}
		synctest.Wait()
		w.settle()
		w.checkReady()
		s := w.life.a.Status()[0]
		if s.State == stateHeld {
			// An operator confirms each hold; a resync can hold again.
			w.tracef("confirming the held watch")
			w.mu.Lock()
			w.confirmed = true
			w.mu.Unlock()
			w.confirm()
			continue
		}
		// Converged: ready, the outputs equal the bucket, and no batch is
		// being applied (its hooks may wait out their min_interval).
		if s.Synced && s.State == stateReady && s.BusySince.IsZero() && maps2Equal(w.outputs(), w.expected()) {
			if s.LastError != "" {
				w.violate("converged and ready, but /status still shows last_error %q", s.LastError)
			}
			w.mu.Lock()
			commits, ran := w.commits, w.hookRan
			w.mu.Unlock()
			if ran != commits {
				w.violate("converged and ready, but the hook has not run since the agent last committed a file (it ran after %d of %d file commits)", ran, commits)
			}
			return
		}
	}
	s := w.life.a.Status()[0]
	w.violate("no convergence after 2h of quiet: state %s synced %v last_error %q\n  outputs %v\n  bucket  %v", s.State, s.Synced, s.LastError, w.outputs(), w.expected())
}

// idle lets d pass, checking every second that a ready watch's outputs
// follow the bucket.
func (w *simWorld) idle(d time.Duration) {
	for end := time.Now().Add(d); time.Now().Before(end); {
		time.Sleep(min(time.Second, time.Until(end)))
		synctest.Wait()
		w.settle()
		w.checkReady()
	}
}

// checkReady checks the ready-means-the-files-follow invariant: while the
// running watch says ready, no output stays unequal to its key's value for
// simLag. Outputs edited behind the agent's back are left out until it
// rewrites them (drift checks run a minute apart), as are buckets with a
// max age (an expired key leaves no marker; the reconciliation finds it
// half an hour later) and the settling after a store restore.
func (w *simWorld) checkReady() {
	w.mu.Lock()
	skip := w.lossy || w.settling || w.crashed || w.life == nil
	w.mu.Unlock()
	if skip {
		clear(w.lagging)
		return
	}
	s := w.life.a.Status()[0]
	want := w.expected()
	w.mu.Lock() // the files and the drift marks together, as in checkpointed
	got, drifted := w.outputs(), maps.Clone(w.drifted)
	w.mu.Unlock()
	now := time.Now()
	for i := range simKeys {
		k := fmt.Sprintf("k%02d", i)
		v, live := want[k]
		g, present := got[k]
		if drifted[k] || live == present && v == g {
			delete(w.lagging, k)
			continue
		}
		l, ok := w.lagging[k]
		if !ok || l.want != v || l.absent == live {
			w.lagging[k] = simLagging{since: now, want: v, absent: !live}
			continue
		}
		if s.Ready && now.Sub(l.since) >= simLag {
			w.violate("the watch says ready, but %s has held %q (present %v) for %v while the bucket has %q (live %v); behind since %s, busy since %s, pending %d",
				k, g, present, now.Sub(l.since), v, live, simAt(s.BehindSince), simAt(s.BusySince), s.Pending)
			delete(w.lagging, k) // once
		}
	}
}

// simAt is t in fake time, "-" when zero.
func simAt(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Sub(simEpoch).String()
}

func maps2Equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// confirm confirms a held mass deletion as `slipagent resync --confirm` does.
func (w *simWorld) confirm() {
	if err := ConfirmHold(w.cfg, "sim"); err != nil {
		w.violate("confirming the held watch: %v", err)
	}
}

// simFold is the watch's real fold with the world's faults and crash points
// on its writes, and the cursor-after-apply check on its checkpoints.
type simFold struct {
	kvcore.Fold
	w *simWorld
}

func (f *simFold) Apply(ctx context.Context, updates []kvcore.Update, cursor kvcore.Cursor) error {
	if err := f.w.step("fold write"); err != nil {
		return err
	}
	f.w.mu.Lock()
	fail := f.w.faults.foldFail > 0
	if fail {
		f.w.faults.foldFail--
	}
	f.w.mu.Unlock()
	if fail {
		return errors.New("sim: fold write failed")
	}
	before := f.Fold.Cursor()
	if err := f.Fold.Apply(ctx, updates, cursor); err != nil {
		return err
	}
	if cursor != before {
		f.w.tracef("checkpoint %s", cursor)
		f.w.checkpointed(cursor)
	}
	return nil
}

// simLog keeps the agent's log lines of one seed, checking each with
// check first.
type simLog struct {
	check func(line string)
	mu    sync.Mutex
	lines []string
}

func (l *simLog) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	if l.check != nil {
		l.check(line)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, line)
	return len(p), nil
}

// checkDriftClaim reports a log line that says an output changed outside
// the agent when nothing but the agent touched it since it last wrote or
// removed it: a crash is not tampering.
func (w *simWorld) checkDriftClaim(line string) {
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, " drift=") {
		return
	}
	_, path, ok := strings.Cut(line, " path=")
	if !ok {
		return
	}
	path, _, _ = strings.Cut(path, " ")
	name := filepath.Base(path)
	if !w.isDrifted(name) {
		w.violate("a drift report names %s, which nothing but the agent touched: %s", name, line)
	}
}

func (w *simWorld) logTail() string {
	w.logs.mu.Lock()
	defer w.logs.mu.Unlock()
	return strings.Join(w.logs.lines[max(0, len(w.logs.lines)-60):], "\n")
}

var _ io.Writer = (*simLog)(nil)

// simConn is the agent's connection to the simulated server: memkv, with
// watches the world can end as a server restart ends a NATS consumer.
type simConn struct {
	*memkv.Conn
	w *simWorld
}

func (c simConn) Open(ctx context.Context, bucket string) (kvcore.Store, error) {
	s, err := c.Conn.Open(ctx, bucket)
	if err != nil {
		return nil, err
	}
	return &simStore{Store: s, w: c.w}, nil
}

type simStore struct {
	kvcore.Store
	w *simWorld
}

func (s *simStore) Watch(ctx context.Context, scope kvcore.Scope, from kvcore.Cursor) (kvcore.Watch, error) {
	wa, err := s.Store.Watch(ctx, scope, from)
	if err != nil {
		return nil, err
	}
	sw := &simWatch{Watch: wa}
	s.w.mu.Lock()
	s.w.watches = append(s.w.watches, sw)
	s.w.mu.Unlock()
	return sw, nil
}

// simWatch is a watch the world can end with a transient failure.
type simWatch struct {
	kvcore.Watch
	mu  sync.Mutex
	err error
}

var errSimConsumerLost = fmt.Errorf("sim: consumer lost in a server restart: %w", kvcore.ErrWatchFailed)

func (sw *simWatch) lose() {
	sw.mu.Lock()
	sw.err = errSimConsumerLost
	sw.mu.Unlock()
	sw.Watch.Stop()
}

func (sw *simWatch) Err() error {
	sw.mu.Lock()
	defer sw.mu.Unlock()
	if sw.err != nil {
		return sw.err
	}
	return sw.Watch.Err()
}

// restartServer ends every open watch, as a NATS server restart ends the
// consumers the agent must re-create.
func (w *simWorld) restartServer() {
	w.mu.Lock()
	watches := w.watches
	w.watches = nil
	w.mu.Unlock()
	for _, sw := range watches {
		sw.lose()
	}
}

// KeyVersions passes the versioned key listing through, as natskv's store
// has one: the reconciliation checks with it that the fold is in step.
func (s *simStore) KeyVersions(ctx context.Context, prefix string) ([]kvcore.KeyVersion, error) {
	return s.Store.(kvcore.KeyVersionLister).KeyVersions(ctx, prefix)
}

// BucketID passes the bucket's identity through, as natskv's store has one.
func (s *simStore) BucketID(ctx context.Context) (string, error) {
	return s.Store.(kvcore.BucketIdentifier).BucketID(ctx)
}

// BucketMark passes the bucket's mark through, as natskv's store has one:
// a restart over a fold that matches an unchanged bucket skips the key
// listing of its reconciliation.
func (s *simStore) BucketMark(ctx context.Context) (string, kvcore.Cursor, error) {
	return s.Store.(kvcore.BucketMarker).BucketMark(ctx)
}
