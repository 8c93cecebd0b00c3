package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/slipstreamkv/slipstream/internal/natstest"
)

// TestKVChecksBeforeConnecting gives kv bad command lines and a server that
// does not exist: each is a usage error, with no connection attempt.
func TestKVChecksBeforeConnecting(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate", "cfg"},
		{"frobnicate"},
		{"get"},
		{"get", "cfg"},
		{"get", "cfg", "a", "b"},
		{"update", "cfg", "k", "v"},
		{"put", "cfg", "k", "v", "-revision", "3"},
		{"get", "cfg", "k", "-from", "3"},
		{"history", "cfg"},
		{"history", "cfg", "k", "v"},
		{"get", "cfg", "k", "-json"},
	} {
		code, _, errOut := runCmd(t, append([]string{"kv", "-server", "nats://127.0.0.1:1", "-timeout", "1s"}, args...)...)
		if code != exitUsage || strings.Contains(errOut, "cannot reach") || !strings.Contains(errOut, "usage: slipagent kv") {
			t.Errorf("kv %q = %d %q; want a usage error before connecting", args, code, errOut)
		}
	}
	// Names the backend would refuse are refused before connecting too.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"get", "bad bucket", "k"}, `slipagent kv: invalid bucket name "bad bucket": a bucket name is ASCII letters, digits, - and _`},
		{[]string{"keys", "cfg.x"}, `invalid bucket name "cfg.x"`},
		{[]string{"get", "cfg", "bad key"}, `slipagent kv: invalid key "bad key": a key is ASCII letters`},
		{[]string{"put", "cfg", "a..b", "v"}, `invalid key "a..b"`},
		{[]string{"history", "cfg", "k."}, `invalid key "k."`},
		{[]string{"delete", "cfg", ""}, `invalid key ""`},
		{[]string{"keys", "cfg", "a..b"}, `invalid prefix "a..b"`},
		{[]string{"watch", "cfg", "ok.", "*"}, `invalid prefix "*"`},
	} {
		code, _, errOut := runCmd(t, append([]string{"kv", "-server", "nats://127.0.0.1:1", "-timeout", "1s"}, tc.args...)...)
		// One line: the usage would bury it.
		if code != exitUsage || strings.Contains(errOut, "cannot reach") || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("kv %q = %d %q; want exit %d and the line %q before connecting", tc.args, code, errOut, exitUsage, tc.want)
		}
	}
}

func TestKVExitCodes(t *testing.T) {
	srv := natstest.Run(t)
	kv := func(args ...string) (int, string, string) {
		return runCmd(t, append([]string{"kv", "-server", srv.URL()}, args...)...)
	}
	// Each failure names the bucket and the key once, in words.
	if code, _, errOut := kv("get", "nosuchbucket", "k"); code != exitNotFound || errOut != "slipagent kv get: bucket nosuchbucket not found\n" {
		t.Errorf("get from a missing bucket = %d %q, want %d", code, errOut, exitNotFound)
	}
	if code, _, errOut := kv("keys", "nosuchbucket"); code != exitNotFound || errOut != "slipagent kv keys: bucket nosuchbucket not found\n" {
		t.Errorf("keys of a missing bucket = %d %q, want %d", code, errOut, exitNotFound)
	}
	if code, out, errOut := kv("create", "cfg", "k", "v1"); code != exitOK || out != "rev 1\n" {
		t.Fatalf("create = %d %q %q", code, out, errOut)
	}
	if code, _, errOut := kv("create", "cfg", "k", "v2"); code != exitConflict || errOut != "slipagent kv create: key \"k\" already exists in bucket cfg (revision 1)\n" {
		t.Errorf("create of an existing key = %d %q, want %d", code, errOut, exitConflict)
	}
	if code, _, errOut := kv("update", "cfg", "k", "v2", "-revision", "7"); code != exitConflict || errOut != "slipagent kv update: key \"k\" of bucket cfg is at revision 1, not 7\n" {
		t.Errorf("update with a stale revision = %d %q, want %d", code, errOut, exitConflict)
	}
	if code, out, errOut := kv("update", "-revision", "1", "cfg", "k", "v2"); code != exitOK || out != "rev 2\n" {
		t.Errorf("update = %d %q %q", code, out, errOut)
	}
	if code, out, _ := kv("get", "-raw", "cfg", "k"); code != exitOK || out != "v2" {
		t.Errorf("get -raw = %d %q, want the bytes alone", code, out)
	}
	if code, out, _ := kv("get", "cfg", "k"); code != exitOK || out != "v2\n" {
		t.Errorf("get = %d %q, want the value and a newline", code, out)
	}
	// An empty value is a live key: get prints it, with exit 0.
	if code, _, errOut := kv("put", "cfg", "empty", ""); code != exitOK {
		t.Fatalf("put of an empty value = %d %q", code, errOut)
	}
	if code, out, errOut := kv("get", "cfg", "empty"); code != exitOK || out != "\n" {
		t.Errorf("get of an empty value = %d %q %q, want exit 0 and an empty line", code, out, errOut)
	}
	if code, _, errOut := kv("purge", "cfg", "k"); code != exitOK {
		t.Errorf("purge = %d %q", code, errOut)
	}
	if code, _, errOut := kv("get", "cfg", "k"); code != exitNotFound || errOut != "slipagent kv get: key \"k\" not found in bucket cfg\n" {
		t.Errorf("get after purge = %d %q, want %d", code, errOut, exitNotFound)
	}
	if code, _, errOut := kv("update", "cfg", "k", "v", "-revision", "3"); code != exitConflict || errOut != "slipagent kv update: key \"k\" of bucket cfg is not at revision 3: it has no value\n" {
		t.Errorf("update of a purged key = %d %q, want %d", code, errOut, exitConflict)
	}
	// After a purge, create works again.
	if code, _, errOut := kv("create", "cfg", "k", "v3"); code != exitOK {
		t.Errorf("create after purge = %d %q", code, errOut)
	}

	url := srv.URL()
	srv.Shutdown()
	code, _, errOut := runCmd(t, "kv", "-server", url, "-timeout", "2s", "get", "cfg", "k")
	if code != exitUnreachable || !strings.Contains(errOut, url) {
		t.Errorf("get with the server down = %d %q; want %d and the server URL", code, errOut, exitUnreachable)
	}
}

// From a leaf node, -js-domain reaches the buckets of the hub's JetStream.
func TestKVThroughJetStreamDomain(t *testing.T) {
	hub := natstest.RunHub(t, "hub")
	leaf := natstest.RunLeaf(t, hub, "edge")
	if code, _, errOut := runCmd(t, "kv", "-server", hub.URL(), "put", "cfg", "k", "v"); code != exitOK {
		t.Fatalf("put on the hub = %d %q", code, errOut)
	}
	if code, out, errOut := runCmd(t, "kv", "-server", leaf.URL(), "-js-domain", "hub", "get", "cfg", "k"); code != exitOK || out != "v\n" {
		t.Errorf("get through the hub's domain = %d %q %q", code, out, errOut)
	}
	if code, _, _ := runCmd(t, "kv", "-server", leaf.URL(), "get", "cfg", "k"); code != exitNotFound {
		t.Errorf("get on the leaf's own domain = %d, want %d (no such bucket there)", code, exitNotFound)
	}
}

// The operator tools reach a server that requires TLS with -tlsca (the
// nats CLI's flag, or $NATS_CA); without it the server's certificate is not
// trusted, and a client certificate without its key is a bad command line.
func TestKVOverTLS(t *testing.T) {
	files := natstest.TLS(t)
	srv := natstest.Run(t, files.Option)
	url := "tls://" + strings.TrimPrefix(srv.URL(), "nats://")
	if code, out, errOut := runCmd(t, "kv", "-server", url, "-tlsca", files.CAFile, "put", "cfg", "k", "v"); code != exitOK || out != "rev 1\n" {
		t.Fatalf("put with -tlsca = %d %q %q", code, out, errOut)
	}
	t.Setenv("NATS_CA", files.CAFile)
	if code, out, errOut := runCmd(t, "kv", "-server", url, "get", "cfg", "k"); code != exitOK || out != "v\n" {
		t.Errorf("get with $NATS_CA = %d %q %q", code, out, errOut)
	}
	t.Setenv("NATS_CA", "")
	if code, _, errOut := runCmd(t, "kv", "-server", url, "-timeout", "2s", "get", "cfg", "k"); code != exitUnreachable || !strings.Contains(errOut, "certificate") {
		t.Errorf("get without the CA = %d %q, want %d and the certificate named", code, errOut, exitUnreachable)
	}
	if code, _, errOut := runCmd(t, "kv", "-server", url, "-tlscert", files.ClientCertFile, "get", "cfg", "k"); code != exitUsage || !strings.Contains(errOut, "-tlskey") {
		t.Errorf("-tlscert without -tlskey = %d %q, want %d", code, errOut, exitUsage)
	}
}

// kv history lists the revisions the bucket holds for a key, oldest first,
// markers and empty values included, as lines and as JSON.
func TestKVHistory(t *testing.T) {
	srv := natstest.Run(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := natstest.CreateOrUpdateKeyValue(ctx, natstest.JetStream(t, srv.URL()), jetstream.KeyValueConfig{Bucket: "cfg", History: 10}); err != nil {
		t.Fatal(err)
	}
	kv := func(args ...string) (int, string, string) {
		return runCmd(t, append([]string{"kv", "-server", srv.URL()}, args...)...)
	}
	for _, args := range [][]string{
		{"put", "cfg", "k", "v1"},
		{"put", "cfg", "k", "two words"},
		{"put", "cfg", "other", "x"},
		{"delete", "cfg", "k"},
		{"put", "cfg", "k", ""},
		{"put", "cfg", "k", "line1\nline2\n"},
		{"put", "cfg", "k", `"quoted"`},
		{"put", "cfg", "k", "tab\there \xff"},
	} {
		if code, _, errOut := kv(args...); code != exitOK {
			t.Fatalf("kv %q = %d %q", args, code, errOut)
		}
	}

	code, out, errOut := kv("history", "cfg", "k")
	if code != exitOK {
		t.Fatalf("history = %d %q %q", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	want := []struct{ rev, op, value string }{{"1", "PUT", " v1"}, {"2", "PUT", " two words"}, {"4", "DEL", ""}, {"5", "PUT", ""},
		// One line per revision: a value that is not one line of printable
		// text is quoted, as kv watch prints values.
		{"6", "PUT", ` "line1\nline2\n"`}, {"7", "PUT", ` "\"quoted\""`}, {"8", "PUT", ` "tab\there \xff"`}}
	if len(lines) != len(want) {
		t.Fatalf("history printed %q; want %d lines", out, len(want))
	}
	for i, w := range want {
		rev, rest, _ := strings.Cut(lines[i], " ")
		op, rest, _ := strings.Cut(rest, " ")
		when, value := rest, ""
		if i := strings.IndexByte(rest, ' '); i >= 0 {
			when, value = rest[:i], rest[i:]
		}
		if _, err := time.Parse(time.RFC3339, when); err != nil || rev != w.rev || op != w.op || value != w.value {
			t.Errorf("history line %d = %q; want revision %s, %s, an RFC 3339 time and value %q", i, lines[i], w.rev, w.op, w.value)
		}
	}

	code, out, errOut = kv("history", "-json", "cfg", "k")
	if code != exitOK {
		t.Fatalf("history -json = %d %q %q", code, out, errOut)
	}
	var records []struct {
		Revision uint64          `json:"revision"`
		Op       string          `json:"op"`
		Created  time.Time       `json:"created"`
		Value    json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal([]byte(out), &records); err != nil {
		t.Fatalf("history -json printed %q: %v", out, err)
	}
	wantJSON := []struct {
		rev       uint64
		op, value string
	}{{1, "PUT", `"djE="`}, {2, "PUT", `"dHdvIHdvcmRz"`}, {4, "DEL", "null"}, {5, "PUT", `""`},
		{6, "PUT", `"bGluZTEKbGluZTIK"`}, {7, "PUT", `"InF1b3RlZCI="`}, {8, "PUT", `"dGFiCWhlcmUg/w=="`}}
	if len(records) != len(wantJSON) {
		t.Fatalf("history -json printed %q; want %d records", out, len(wantJSON))
	}
	for i, w := range wantJSON {
		r := records[i]
		if r.Revision != w.rev || r.Op != w.op || string(r.Value) != w.value || r.Created.IsZero() {
			t.Errorf("history -json record %d = %+v (value %s); want revision %d, %s, a time and value %s", i, r, r.Value, w.rev, w.op, w.value)
		}
	}

	// After a purge only its marker is left.
	if code, _, errOut := kv("purge", "cfg", "k"); code != exitOK {
		t.Fatalf("purge = %d %q", code, errOut)
	}
	if code, out, errOut := kv("history", "cfg", "k"); code != exitOK || !strings.HasPrefix(out, "9 PURGE ") || strings.Count(out, "\n") != 1 {
		t.Errorf("history after purge = %d %q %q; want the purge marker alone", code, out, errOut)
	}
	if code, out, errOut := kv("history", "cfg", "nosuch.key"); code != exitNotFound || out != "" || errOut != "slipagent kv history: key \"nosuch.key\" has no history in bucket cfg\n" {
		t.Errorf("history of a key without any = %d %q %q; want %d", code, out, errOut, exitNotFound)
	}
	if code, _, errOut := kv("history", "nosuchbucket", "k"); code != exitNotFound || errOut != "slipagent kv history: bucket nosuchbucket not found\n" {
		t.Errorf("history in a missing bucket = %d %q; want %d", code, errOut, exitNotFound)
	}
}
