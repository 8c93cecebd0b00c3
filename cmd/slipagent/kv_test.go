package main

import (
	"strings"
	"testing"

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
	} {
		code, _, errOut := runCmd(t, append([]string{"kv", "-server", "nats://127.0.0.1:1", "-timeout", "1s"}, args...)...)
		if code != exitUsage || strings.Contains(errOut, "cannot reach") || !strings.Contains(errOut, "usage: slipagent kv") {
			t.Errorf("kv %q = %d %q; want a usage error before connecting", args, code, errOut)
		}
	}
}

func TestKVExitCodes(t *testing.T) {
	srv := natstest.Run(t)
	kv := func(args ...string) (int, string, string) {
		return runCmd(t, append([]string{"kv", "-server", srv.URL()}, args...)...)
	}
	if code, _, errOut := kv("get", "nosuchbucket", "k"); code != exitNotFound {
		t.Errorf("get from a missing bucket = %d %q, want %d", code, errOut, exitNotFound)
	}
	if code, out, errOut := kv("create", "cfg", "k", "v1"); code != exitOK || out != "rev 1\n" {
		t.Fatalf("create = %d %q %q", code, out, errOut)
	}
	if code, _, errOut := kv("create", "cfg", "k", "v2"); code != exitConflict || !strings.Contains(errOut, "exists") {
		t.Errorf("create of an existing key = %d %q, want %d", code, errOut, exitConflict)
	}
	if code, _, errOut := kv("update", "cfg", "k", "v2", "-revision", "7"); code != exitConflict || !strings.Contains(errOut, "revision mismatch") {
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
	if code, _, errOut := kv("get", "cfg", "k"); code != exitNotFound || !strings.Contains(errOut, "not found") {
		t.Errorf("get after purge = %d %q, want %d", code, errOut, exitNotFound)
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
