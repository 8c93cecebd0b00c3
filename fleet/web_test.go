package fleet

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/slipstreamkv/slipstream/internal/browsertest"
	"github.com/slipstreamkv/slipstream/internal/natstest"
	"github.com/slipstreamkv/slipstream/kvcore"
	"github.com/slipstreamkv/slipstream/kvcore/natskv"
)

// TestRolloutPageInChromium serves the page over a real report bucket with
// simulated hosts, loads it in headless Chromium, and checks it shows them
// and follows a host's record as it changes.
func TestRolloutPageInChromium(t *testing.T) {
	ctx := browsertest.New(t)
	srv := natstest.Run(t)
	conn := natskv.New(natskv.Options{Servers: []string{srv.URL()}})
	if err := conn.Connect(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reports, err := conn.Store(context.Background(), kvcore.StoreConfig{Bucket: DefaultBucket, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	pluginErrors := map[string]string{}
	put := func(host string, rev uint64, state string) {
		t.Helper()
		now := time.Now()
		r := Record{Host: host, Agent: "test", Watch: "routes", Bucket: "cfg", Revision: rev, State: state,
			PluginError: pluginErrors[host], Since: now, Time: now, Interval: Duration(time.Hour)}
		b, _ := json.Marshal(r)
		if _, err := reports.Put(context.Background(), Key(host, "routes"), b); err != nil {
			t.Fatal(err)
		}
	}
	const hosts = 12
	for i := range hosts {
		put(fmt.Sprintf("host%02d", i), 10, StateReady)
	}
	put("host07", 8, StateFailing)

	page := httptest.NewServer(Handler(func(ctx context.Context) ([]Record, error) {
		records, _, err := Read(ctx, reports)
		return records, err
	}, Query{}))
	defer page.Close()
	if _, err := chromedp.Run(ctx, chromedp.Navigate(page.URL+"/")); err != nil {
		t.Fatal(err)
	}
	browsertest.EvalUntil(t, ctx, "the hosts", `document.querySelectorAll("tr.host").length`, hosts)
	cell := `document.querySelector('tr[data-host="host07"] td.cell')`
	browsertest.EvalUntil(t, ctx, "host07 lagging", cell+`.dataset.revision + " " + `+cell+`.dataset.state`, "8 failing")
	browsertest.EvalUntil(t, ctx, "the laggard listed first", `document.querySelector("tr.host").dataset.host`, "host07")
	browsertest.EvalUntil(t, ctx, "the summary", `document.querySelector(".watch .summary").textContent`,
		"11 of 12 hosts at revision ≥ 10; 11 ready, 1 failing, 0 held, 0 silent, 0 whose plugin logged an error applying it")
	browsertest.EvalUntil(t, ctx, "the lag histogram", `[...document.querySelectorAll(".hist > span.muted")].map(e => e.textContent).join(",")`, "11,0,1")

	// host07 catches up past the others: the page follows.
	put("host07", 11, StateReady)
	browsertest.EvalUntil(t, ctx, "host07 updated", cell+`.dataset.revision + " " + `+cell+`.dataset.state`, "11 ready")
	browsertest.EvalUntil(t, ctx, "the summary updated", `document.querySelector(".watch .summary").textContent`,
		"1 of 12 hosts at revision ≥ 11; 12 ready, 0 failing, 0 held, 0 silent, 0 whose plugin logged an error applying it")

	// host03's plugin logs an error applying revision 11: it is counted
	// and marked (and listed after the hosts that lag or fail).
	pluginErrors["host03"] = `files: skipping key "files.bad//path": empty component`
	put("host03", 11, StateReady)
	browsertest.EvalUntil(t, ctx, "the plugin error counted", `document.querySelector(".watch .summary").textContent`,
		"2 of 12 hosts at revision ≥ 11; 12 ready, 0 failing, 0 held, 0 silent, 1 whose plugin logged an error applying it")
	host03 := `document.querySelector('tr[data-host="host03"] td.cell')`
	browsertest.EvalUntil(t, ctx, "host03 marked", host03+`.className + " | " + `+host03+`.textContent`, "cell ready plugin-error | 11 ready (plugin error)")
}
