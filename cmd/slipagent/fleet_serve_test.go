package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/internal/logtest"
	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// TestFleetServe runs "fleet serve" on a report bucket and reads its page
// and its JSON, then stops it with its context.
func TestFleetServe(t *testing.T) {
	srv := natstest.Run(t)
	now := time.Now().UTC()
	for _, h := range []string{"web1", "web2"} {
		r := fleet.Record{Host: h, Watch: "routes", Bucket: "cfg", Revision: 7, State: fleet.StateReady, Since: now, Time: now, Interval: fleet.Duration(time.Minute)}
		b, _ := json.Marshal(r)
		if code, out, errOut := runCmd(t, "kv", "-server", srv.URL(), "put", "fleet", fleet.Key(h, "routes"), string(b)); code != exitOK {
			t.Fatalf("kv put = %d %q %q", code, out, errOut)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr logtest.Buffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"fleet", "serve", "-server", srv.URL(), "-report-bucket", "fleet", "-listen", "127.0.0.1:0"}, &stdout, &stderr)
	}()
	addr := regexp.MustCompile(`http://[0-9.:]+/`)
	deadline := time.Now().Add(time.Minute)
	for addr.FindString(stdout.String()) == "" {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("fleet serve printed no address: %q %q (exit %v)", stdout.String(), stderr.String(), <-done)
		}
		time.Sleep(20 * time.Millisecond)
	}
	base := addr.FindString(stdout.String())

	resp, err := http.Get(base)
	if err != nil {
		t.Fatal(err)
	}
	var page bytes.Buffer
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(page.String(), "<title>slipagent fleet</title>") {
		t.Errorf("GET / = %d %q", resp.StatusCode, page.String())
	}
	resp, err = http.Get(base + "api/report?revision=8")
	if err != nil {
		t.Fatal(err)
	}
	var rep fleet.Report
	err = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if err != nil || len(rep.Watches) != 1 || rep.Watches[0].Hosts != 2 || rep.Watches[0].Revision != 8 || len(rep.Watches[0].Laggards) != 2 {
		t.Errorf("GET /api/report?revision=8 = %v %+v", err, rep)
	}

	cancel()
	if code := <-done; code != exitOK {
		t.Errorf("fleet serve exited %d after its context ended: %q", code, stderr.String())
	}
}
