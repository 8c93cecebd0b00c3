//go:build !wasip1

package main

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest"
	"github.com/slipstreamkv/slipstream/internal/plugintest/harness"
	"github.com/slipstreamkv/slipstream/plugins/host"
	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

// listingTemplate prints everything a plan can print, the range over the
// keys under prefix app/.
const listingTemplate = "# {{.Watch}} at {{.Revision}}\n{{range .Entries}}{{.Key}}={{.Value}} @{{.Revision}}\n{{end}}-- end\n"

// TestPatchedListingIsWhatARenderPrints applies random batches (puts,
// overwrites, deletes and purges, a key several times in one batch, keys
// outside the prefix, special characters, empty values, the view emptied and
// refilled, full renders between them) and checks after each that the file
// is what the template prints over the view, then that a batch patched the
// last output rather than reading the view.
func TestPatchedListingIsWhatARenderPrints(t *testing.T) {
	parsed.cfg = nil
	f := &sdk.Fake{Watch: "w", Outputs: []string{"out"}, Hooks: []string{"reload"}, PageEntries: 5,
		Config: map[string]string{"template": listingTemplate, "prefix": "app/"}}
	model := map[string]sdk.Entry{}
	want := func(rev uint64) string {
		var b strings.Builder
		fmt.Fprintf(&b, "# w at %d\n", rev)
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range model {
				if !yield(k) {
					return
				}
			}
		}) {
			e := model[k]
			fmt.Fprintf(&b, "%s=%s @%d\n", k, e.Value, e.Revision)
		}
		return b.String() + "-- end\n"
	}
	rng := rand.New(rand.NewPCG(1, 2))
	keys := []string{"app/", "app/a", "app/a/b", "app/é=\n", "app/{{x}}", "other/x", "ap", "app/z"}
	for i := range 30 {
		keys = append(keys, fmt.Sprintf("app/k%03d", i*7))
	}
	var rev uint64
	for round := range 200 {
		var batch []sdk.Update
		n := 1 + rng.IntN(6)
		if round == 100 { // empty the view, then refill it
			n = 0
			for k := range model {
				batch = append(batch, sdk.Update{Op: sdk.OpDelete, Key: k})
			}
		}
		for range n {
			k := keys[rng.IntN(len(keys))]
			switch rng.IntN(10) {
			case 0, 1:
				batch = append(batch, sdk.Update{Op: sdk.OpDelete, Key: k})
			case 2:
				batch = append(batch, sdk.Update{Op: sdk.OpPurge, Key: k})
			default:
				batch = append(batch, sdk.Update{Op: sdk.OpPut, Key: k, Value: []byte(strings.Repeat("v\n=", rng.IntN(3)) + fmt.Sprint(round))})
			}
		}
		for i := range batch {
			rev++
			batch[i].Revision = rev
			if u := batch[i]; !strings.HasPrefix(u.Key, "app/") {
				continue
			} else if u.Op == sdk.OpPut {
				model[u.Key] = sdk.Entry{Key: u.Key, Value: u.Value, Revision: u.Revision}
			} else {
				delete(model, u.Key)
			}
		}
		if len(batch) == 0 {
			continue
		}
		if _, err := f.Apply(sdk.RenderFunc(render), batch...); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		got, _ := f.File("out", "rendered")
		if w := want(rev); string(got.Data) != w {
			t.Fatalf("round %d: rendered\n%s\nwant\n%s", round, got.Data, w)
		}
		if round%50 == 49 { // a full render keeps no listing: the next batch reads the view
			if _, err := f.Render(sdk.RenderFunc(render)); err != nil {
				t.Fatal(err)
			}
			if got, _ := f.File("out", "rendered"); string(got.Data) != want(rev) {
				t.Fatalf("round %d: a full render printed\n%s", round, got.Data)
			}
		}
	}

	// A key the view holds but no batch brought: a patch does not see it,
	// a full render does.
	for _, k := range []string{"other/y", "other/z"} { // the first reads the view (a render came last)
		if k == "other/z" {
			f.Set("app/unseen", []byte("x"))
		}
		if _, err := f.Apply(sdk.RenderFunc(render), sdk.Update{Op: sdk.OpPut, Key: k}); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := f.File("out", "rendered"); strings.Contains(string(got.Data), "unseen") {
		t.Fatal("a batch read the view instead of patching the last output")
	}
	if _, err := f.Render(sdk.RenderFunc(render)); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.File("out", "rendered"); !strings.Contains(string(got.Data), "app/unseen=x") {
		t.Fatalf("a full render missed a key of the view: %q", got.Data)
	}
}

// TestPatchedListingOfTwoRanges patches a template ranging twice over its
// keys, whose second range starts at an offset the first one moves.
func TestPatchedListingOfTwoRanges(t *testing.T) {
	parsed.cfg = nil
	f := &sdk.Fake{Watch: "w", Outputs: []string{"out"}, Hooks: []string{"reload"}, PageEntries: 3,
		Config: map[string]string{"template": "{{range .Entries}}{{.Key}},{{end}}|{{range .Entries}}{{.Value}};{{end}}"}}
	model := map[string]string{}
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 100 {
		var batch []sdk.Update
		for range 1 + rng.IntN(3) {
			k := fmt.Sprintf("k%02d", rng.IntN(20))
			if rng.IntN(4) == 0 {
				batch = append(batch, sdk.Update{Op: sdk.OpDelete, Key: k})
				delete(model, k)
				continue
			}
			v := strings.Repeat("x", rng.IntN(4)) + fmt.Sprint(round)
			batch = append(batch, sdk.Update{Op: sdk.OpPut, Key: k, Value: []byte(v)})
			model[k] = v
		}
		if _, err := f.Apply(sdk.RenderFunc(render), batch...); err != nil {
			t.Fatal(err)
		}
		keys := slices.Sorted(maps.Keys(model))
		var want strings.Builder
		for _, k := range keys {
			want.WriteString(k + ",")
		}
		want.WriteString("|")
		for _, k := range keys {
			want.WriteString(model[k] + ";")
		}
		if got, _ := f.File("out", "rendered"); string(got.Data) != want.String() {
			t.Fatalf("round %d: rendered %q, want %q", round, got.Data, want.String())
		}
	}
}

// TestLargeListingStaysInTheDefaultMemory renders an output just under the
// default file limit (16 MiB) with the default memory limit, then applies
// batches: the buffers a plan grows must neither exhaust the guest's memory
// nor push it past the recycling threshold, which would make every batch a
// fresh instance printing the whole view.
func TestLargeListingStaysInTheDefaultMemory(t *testing.T) {
	h := harness.New(t, plugintest.Module(t, "plugins/examples/template"), harness.Options{
		Outputs: []string{"out"},
		Plugin: host.PluginConfig{Name: "template", Config: map[string]string{
			"template": benchTemplate, "output": "out", "path": "render", "hook": "",
		}},
	})
	const keys, size = 16_000, 1000 // 16.2 MB of output
	value := []byte(strings.Repeat("v", size))
	for i := range keys {
		h.View.Put(host.Entry{Key: fmt.Sprintf("app/key%06d", i), Value: value, Revision: uint64(i + 1)})
	}
	h.Commit(h.Render())
	for i := range 3 {
		h.Commit(h.Apply(h.Put(fmt.Sprintf("app/key%06d", i*1000), "x")))
	}
	got, _ := h.Read("out", "render")
	if want := keys*(len("app/key000000=")+size+1) - 3*(size-1); len(got) != want || !strings.HasPrefix(got, "app/key000000=x\n") {
		t.Fatalf("rendered %d bytes starting %q, want %d", len(got), got[:min(len(got), 20)], want)
	}
	if st := h.Inst.Stats(); st.Recycled != 0 || st.Failures != 0 {
		t.Fatalf("stats %+v: the plugin was recycled or failed", st)
	}
}
