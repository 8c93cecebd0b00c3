package host

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
)

// watchRecorder keeps each record as "<watch> <message>", the watch being
// the logger's "watch" attribute ("-" without one).
type watchRecorder struct {
	mu      *sync.Mutex
	records *[]string
	watch   string
}

func (r watchRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r watchRecorder) WithGroup(string) slog.Handler            { return r }
func (r watchRecorder) WithAttrs(as []slog.Attr) slog.Handler {
	for _, a := range as {
		if a.Key == "watch" {
			r.watch = a.Value.String()
		}
	}
	return r
}

func (r watchRecorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.records = append(*r.records, r.watch+" "+rec.Message)
	return nil
}

// The first instance of a plugin adopts the guest Load instantiated to
// check the module; it then logs as its own watch, like any other.
func TestFirstInstanceAdoptsTheLoadsGuest(t *testing.T) {
	ctx := context.Background()
	var records []string
	logs := watchRecorder{mu: &sync.Mutex{}, records: &records, watch: "-"}
	e, err := New(ctx, Config{CacheDir: t.TempDir(), Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	p, err := e.Load(ctx, guestWasm(t), PluginConfig{Name: "guest"})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"a", "b"} {
		inst, err := p.NewInstance(ctx, InstanceConfig{Watch: w})
		if err != nil {
			t.Fatal(err)
		}
		defer inst.Close(ctx)
		if _, err := inst.Apply(ctx, Batch{Updates: []Update{{Op: OpPut, Key: "stderr#1", Value: []byte("from " + w), Revision: 1}}, Cursor: Cursor{Revision: 1}}, NewMemView()); err != nil {
			t.Fatal(err)
		}
		if st := inst.Stats(); st.Instantiated != 1 {
			t.Errorf("instance of %s: %d guests instantiated, want 1", w, st.Instantiated)
		}
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, want := range []string{"a from a", "b from b"} {
		if !slices.Contains(records, want) {
			t.Errorf("no %q in %q", want, records)
		}
	}
	if p.takeSpare() != nil {
		t.Error("the plugin still holds a spare instance")
	}
}
