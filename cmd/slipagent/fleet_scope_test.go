package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipstreamkv/slipstream/fleet"
	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// A revision whose key no reported watch's prefixes hold is applied by no
// host: fleet wait says so and exits 0 at once, where it waited for ever
// (a pipeline's put → wait hung), and fleet status too. A revision not
// written yet is named as such, not as one the bucket "no longer holds".
func TestFleetRevisionNoWatchHolds(t *testing.T) {
	srv := natstest.Run(t)
	url := srv.URL()
	now := time.Now().UTC()
	tlsRev := putRev(t, url, "tls.a", "1")
	for _, h := range []string{"web1", "web2"} {
		r := fleet.Record{Host: h, Watch: "tls", Bucket: "cfg", Prefixes: []string{"tls."}, Revision: tlsRev,
			State: fleet.StateReady, Since: now, Time: now, Interval: fleet.Duration(time.Minute)}
		b, _ := json.Marshal(r)
		if code, out, errOut := runCmd(t, "kv", "-server", url, "put", "fleet", fleet.Key(h, "tls"), string(b)); code != exitOK {
			t.Fatalf("kv put = %d %q %q", code, out, errOut)
		}
	}
	other := strconv.FormatUint(putRev(t, url, "other.z", "z"), 10)
	want := "revision " + other + " of bucket cfg changed key other.z, which no reported watch's prefixes hold"

	code, out, errOut := runCmd(t, "fleet", "wait", "-server", url, "-report-bucket", "fleet", "-bucket", "cfg", "-revision", other, "-timeout", "2m")
	if code != exitOK || !strings.Contains(out, want) {
		t.Errorf("fleet wait for a revision no watch holds = %d %q %q; want exit 0 saying so", code, out, errOut)
	}
	code, out, errOut = runCmd(t, "fleet", "status", "-server", url, "-report-bucket", "fleet", "-bucket", "cfg", "-revision", other)
	if code != exitOK || !strings.Contains(errOut, want) {
		t.Errorf("fleet status for a revision no watch holds = %d %q %q; want exit 0 saying so", code, out, errOut)
	}
	// The tls watch holds tls.a's revision: both hosts applied it.
	code, out, errOut = runCmd(t, "fleet", "wait", "-server", url, "-report-bucket", "fleet", "-bucket", "cfg", "-revision", strconv.FormatUint(tlsRev, 10), "-timeout", "2m")
	if code != exitOK || !strings.Contains(out, "2 of 2 hosts applied") {
		t.Errorf("fleet wait for tls.a's revision = %d %q %q", code, out, errOut)
	}

	code, out, errOut = runCmd(t, "fleet", "status", "-server", url, "-report-bucket", "fleet", "-bucket", "cfg", "-revision", "99")
	if code != exitFailure || !strings.Contains(errOut, "bucket cfg is at revision "+other+": revision 99 is not written yet") {
		t.Errorf("fleet status for a revision not written yet = %d %q %q", code, out, errOut)
	}
}
