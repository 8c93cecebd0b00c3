package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/snapshot/pebblefold"
	"github.com/slipstreamkv/slipstream/snapshot/transport"
)

// bootstrapConfig is one watch of bucket cfg with a bootstrap block; $NAME
// separates the data and output directories of several agents, $FOLD is
// the fold kind, $EXPORT and $TTL are the export interval and lease time
// to live.
const bootstrapConfig = `
data_dir = "$DIR/$NAME/data"
nats { servers = ["$NATS"] }
plugin "files" {
  module = "$DIR/files.wasm"
  config = { prefix = "files." }
}
watch "cfg" {
  bucket = "cfg"
  plugin = "files"
  fold   = "$FOLD"
  output "files" { dir = "$DIR/$NAME/out" }
  bootstrap {
    object_store    = "artifacts"
    export_interval = "$EXPORT"
    lease_ttl       = "$TTL"
  }
}
`

// bootstrapAgent starts an agent named name on bootstrapConfig, logging
// into logs as well as the test's log.
func (f *fixture) bootstrapAgent(name, fold, export, ttl string, logs *logtest.Buffer) (*Agent, func()) {
	f.t.Helper()
	cfg := f.config(strings.NewReplacer("$NAME", name, "$FOLD", fold, "$EXPORT", export, "$TTL", ttl).Replace(bootstrapConfig))
	return f.startLogging(cfg, logs)
}

// startLogging starts an agent on cfg whose log, at debug level, also goes
// to logs.
func (f *fixture) startLogging(cfg *Config, logs *logtest.Buffer) (*Agent, func()) {
	f.t.Helper()
	a, err := New(cfg, Options{
		Logger:         slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{f.t}, logs), &slog.HandlerOptions{Level: slog.LevelDebug})),
		Notify:         func(string) error { return nil },
		PluginCacheDir: plugintest.CacheDir(f.t),
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return f.run(a)
}

// artifacts is the fixture's view of the bootstrap stores of watch cfg
// with a fold of kind fold.
func (f *fixture) artifacts(fold string) (tr *transport.Transport, objs kvcore.Objects, key string) {
	f.t.Helper()
	ctx := context.Background()
	objs, err := f.conn.Objects(ctx, "artifacts", true)
	if err != nil {
		f.t.Fatal(err)
	}
	id, err := f.store("cfg").(kvcore.BucketIdentifier).BucketID(ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	w := f.config(strings.NewReplacer("$NAME", "x", "$FOLD", fold, "$EXPORT", "0", "$TTL", "1s").Replace(bootstrapConfig)).Watches[0]
	return transport.New(objs, f.store("artifacts"), artifactPrefix), objs, artifactKey(w, id)
}

// exported runs an exporting agent with a fold of kind fold until an
// artifact at the bucket's last revision last is published, then stops it.
func (f *fixture) exported(fold string, last uint64) *transport.Pointer {
	f.t.Helper()
	_, stop := f.bootstrapAgent("exporter", fold, "200ms", "1h", &logtest.Buffer{})
	defer stop()
	tr, _, key := f.artifacts(fold)
	// The first agent of a test binary compiles the plugin: a slow start
	// on a loaded machine.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		p, err := tr.Manifest(context.Background(), key)
		if err == nil && p.Cursor == kvcore.RevisionCursor(last) {
			return p
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("no artifact at revision %d within 2 minutes (last: %+v, %v)", last, p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// putTagged writes n keys files.<i>.conf and returns the last revision.
func (f *fixture) putTagged(n int, tag string) uint64 {
	var last uint64
	for i := range n {
		last = f.put("cfg", fmt.Sprintf("files.%d.conf", i), tag+fmt.Sprint(i))
	}
	return last
}

// checkOutputsEqualBucket compares an agent's output directory with the
// bucket's files.* keys.
func (f *fixture) checkOutputsEqualBucket(name string) {
	f.t.Helper()
	ctx := context.Background()
	want := map[string]string{}
	ents, err := f.store("cfg").Scan(ctx, "files.")
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range ents {
		want[strings.TrimPrefix(e.Key, "files.")] = string(e.Value)
	}
	got := map[string]string{}
	dir := filepath.Join(f.dir, name, "out")
	files, _ := os.ReadDir(dir)
	for _, fi := range files {
		got[fi.Name()] = readFile(filepath.Join(dir, fi.Name()))
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		f.t.Errorf("outputs of %s:\n got %v\nwant %v", name, got, want)
	}
}

func TestBootstrapFromAnArtifactThenDelta(t *testing.T) {
	f := newFixture(t)
	f.exported(FoldMemory, f.putTagged(20, "v"))
	// Changes after the export: the new agent replays only these.
	f.put("cfg", "files.1.conf", "changed")
	f.delete("cfg", "files.2.conf")
	last := f.put("cfg", "files.new.conf", "new")

	logs := &logtest.Buffer{}
	a, _ := f.bootstrapAgent("joiner", FoldMemory, "0", "1s", logs)
	waitFor(t, "the joiner to catch up", func() bool { s := a.Status()[0]; return s.Synced && s.Revision == last && a.Ready() })
	if n := logs.Count("started from an artifact"); n != 1 {
		t.Errorf("the joiner did not start from the artifact (%d log lines say so)", n)
	}
	if s := a.Status()[0]; s.Updates != 3 {
		t.Errorf("the joiner applied %d updates, want the 3 made after the export", s.Updates)
	}
	f.checkOutputsEqualBucket("joiner")
}

func TestBootstrapFallsBackFromACorruptArtifact(t *testing.T) {
	f := newFixture(t)
	last := f.putTagged(20, "v")
	p := f.exported(FoldMemory, last)
	_, objs, _ := f.artifacts(FoldMemory)
	rc, err := objs.Get(context.Background(), p.Payload)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := io.ReadAll(rc)
	rc.Close()
	// Flip a byte of the fold file's data, past the tar headers and the manifest.
	i := bytes.Index(payload, []byte("files.10.conf"))
	if i < 0 {
		t.Fatal("payload does not hold the fold's keys")
	}
	payload[i] ^= 0xff
	if err := objs.Put(context.Background(), p.Payload, bytes.NewReader(payload)); err != nil {
		t.Fatal(err)
	}

	logs := &logtest.Buffer{}
	a, _ := f.bootstrapAgent("joiner", FoldMemory, "0", "1s", logs)
	waitFor(t, "the joiner to catch up", func() bool { s := a.Status()[0]; return s.Synced && s.Revision == last && a.Ready() })
	if logs.Count("not starting from an artifact") != 1 || logs.Count(p.Payload) == 0 || logs.Count("checksum") == 0 {
		t.Errorf("no warning naming the corrupt artifact %s", p.Payload)
	}
	f.checkOutputsEqualBucket("joiner")
}

func TestBootstrapFallsBackFromAnExpiredArtifact(t *testing.T) {
	f := newFixture(t)
	p := f.exported(FoldMemory, f.putTagged(20, "v"))
	// History 1: rewriting every key, then one again, drops every message
	// up to the artifact's cursor and the one after it.
	f.putTagged(20, "w")
	last := f.put("cfg", "files.0.conf", "again")

	logs := &logtest.Buffer{}
	a, _ := f.bootstrapAgent("joiner", FoldMemory, "0", "1s", logs)
	waitFor(t, "the joiner to catch up", func() bool { s := a.Status()[0]; return s.Synced && s.Revision == last && a.Ready() })
	if logs.Count("older than what the bucket retains") != 1 || logs.Count(p.Payload) == 0 {
		t.Errorf("no warning naming the expired artifact %s", p.Payload)
	}
	if logs.Count("started from an artifact") != 0 {
		t.Error("the joiner started from an expired artifact")
	}
	f.checkOutputsEqualBucket("joiner")
}

func TestBootstrapWithoutAnArtifactSyncsFromTheBucket(t *testing.T) {
	f := newFixture(t)
	last := f.putTagged(5, "v")
	logs := &logtest.Buffer{}
	a, _ := f.bootstrapAgent("joiner", FoldMemory, "0", "1s", logs)
	waitFor(t, "the joiner to catch up", func() bool { s := a.Status()[0]; return s.Synced && s.Revision == last && a.Ready() })
	if logs.Count("no artifact published") != 1 {
		t.Error("no message saying no artifact is published")
	}
	f.checkOutputsEqualBucket("joiner")
}

func TestExportLeaseMakesOneExporterAmongAgents(t *testing.T) {
	f := newFixture(t)
	last := f.putTagged(10, "v")
	logs := &logtest.Buffer{}
	for i := range 3 {
		f.bootstrapAgent(fmt.Sprint("agent", i), FoldMemory, "300ms", "1h", logs)
	}
	tr, _, key := f.artifacts(FoldMemory)
	waitFor(t, "an artifact", func() bool {
		p, err := tr.Manifest(context.Background(), key)
		return err == nil && p.Cursor == kvcore.RevisionCursor(last)
	})
	// The manifest is visible a moment before its exporter logs the export.
	waitFor(t, "the export logged", func() bool { return logs.Count("exported the fold as an artifact") >= 1 })
	// Let the other agents try several rounds after it.
	lost := logs.Count("another agent holds this round's export lease")
	waitFor(t, "rounds lost to the lease", func() bool { return logs.Count("another agent holds this round's export lease") >= lost+6 })
	if n := logs.Count("exported the fold as an artifact"); n != 1 {
		t.Errorf("%d exports among 3 agents within one lease, want 1", n)
	}
}

func TestBootstrapOfADiskFold(t *testing.T) {
	f := newFixture(t)
	f.exported(FoldDisk, f.putTagged(10, "v"))
	last := f.put("cfg", "files.3.conf", "changed")
	logs := &logtest.Buffer{}
	a, _ := f.bootstrapAgent("joiner", FoldDisk, "0", "1s", logs)
	waitFor(t, "the joiner to catch up", func() bool { s := a.Status()[0]; return s.Synced && s.Revision == last && a.Ready() })
	if logs.Count("started from an artifact") != 1 {
		t.Error("the joiner did not start from the artifact")
	}
	if s := a.Status()[0]; s.Updates != 1 {
		t.Errorf("the joiner applied %d updates, want the 1 made after the export", s.Updates)
	}
	f.checkOutputsEqualBucket("joiner")
}

// An artifact of another fold kind under the watch's key (only a writer of
// the artifact stores can put it there) is refused by the import.
func TestBootstrapRefusesAnArtifactOfAnotherFoldKind(t *testing.T) {
	f := newFixture(t)
	last := f.putTagged(5, "v")
	src := t.TempDir()
	disk, err := pebblefold.Open(filepath.Join(src, "fold"), pebblefold.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := disk.Apply(ctx, []kvcore.Update{{Op: kvcore.OpPut, Key: "files.0.conf", Value: []byte("forged"), Version: kvcore.RevisionVersion(1)}}, kvcore.RevisionCursor(last)); err != nil {
		t.Fatal(err)
	}
	if _, err := disk.Export(ctx, filepath.Join(src, "artifact")); err != nil {
		t.Fatal(err)
	}
	disk.Close()
	tr, _, key := f.artifacts(FoldMemory)
	if _, _, err := tr.Upload(ctx, key, filepath.Join(src, "artifact")); err != nil {
		t.Fatal(err)
	}
	logs := &logtest.Buffer{}
	a, _ := f.bootstrapAgent("joiner", FoldMemory, "0", "1s", logs)
	waitFor(t, "the joiner to catch up", func() bool { s := a.Status()[0]; return s.Synced && s.Revision == last && a.Ready() })
	if logs.Count(`artifact backend is \"pebble\"`) == 0 {
		t.Error("no warning naming the artifact's backend")
	}
	f.checkOutputsEqualBucket("joiner")
}

func TestSweepRoundScratchRemovesOnlyRoundLeftovers(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{transport.RoundScratchPrefix + "123/artifact", "fold.snap.d", ".slipstream-bootstrap-1"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if left := sweepRoundScratch(dir); len(left) != 1 {
		t.Errorf("swept %v, want the one round directory", left)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("left %v, want the two other directories", ents)
	}
}
