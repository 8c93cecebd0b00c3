package agent

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An output directory removed by hand (rm -rf) is created again and
// rendered in full at the next drift check, not left missing until someone
// creates it.
func TestDriftRepairRecreatesARemovedOutputDirectory(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	f.put("cfg", "files.sub/b.conf", "bravo")
	a, _ := f.start(driftConfig(f))
	waitReady(t, a)
	out := filepath.Join(f.dir, "out")

	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the output directory and its files restored", func() bool {
		return readFile(filepath.Join(out, "a.conf")) == "alpha" && readFile(filepath.Join(out, "sub", "b.conf")) == "bravo"
	})
	waitFor(t, "the watch ready after the repair", func() bool { s := a.Status()[0]; return s.Ready && s.Failures == 0 })
}

// A batch that arrives after the output directory was removed fails (its
// files alone would not restore the rest); the drift check then leaves the
// repair to the batch's next attempt, a full render, which creates the
// directory again rather than failing for ever.
func TestBatchAfterTheOutputDirectoryWasRemovedIsRetriedInFull(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "alpha")
	a, _ := f.start(f.config(strings.Replace(filesConfig, `batch { window = "20ms" }`, `batch { window = "20ms" }
  drift_check = "1s"`, 1)))
	waitReady(t, a)
	out := filepath.Join(f.dir, "out")

	// A drift check seeing the removal half done may be re-creating files
	// in it meanwhile, failing this with "directory not empty".
	waitFor(t, "the output directory removed", func() bool { return os.RemoveAll(out) == nil })
	last := f.put("cfg", "files.b.conf", "bravo")
	waitFor(t, "the output directory and its files restored", func() bool {
		return readFile(filepath.Join(out, "a.conf")) == "alpha" && readFile(filepath.Join(out, "b.conf")) == "bravo"
	})
	waitFor(t, "the watch ready after the batch", func() bool { s := a.Status()[0]; return s.Ready && s.Revision == last && s.Failures == 0 })
}

// A drift repair that cannot succeed makes the watch failing, as a failed
// batch does: /status, /readyz, /healthz and the health metrics say so,
// naming the drift repair and what is in the way. Once the obstacle is gone
// the next check repairs the outputs and the watch is ready again.
func TestDriftRepairThatFailsShowsInHealth(t *testing.T) {
	for _, tc := range []struct {
		name string
		// obstruct puts an obstacle in the output directory out (outside
		// is a directory outside it); clear removes it.
		obstruct func(t *testing.T, out, outside string)
		clear    func(t *testing.T, out string)
		want     string // in last_error
	}{{
		name: "subdirectory symlinked out of the output",
		obstruct: func(t *testing.T, out, outside string) {
			replacePath(t, filepath.Join(out, "sub"), func(p string) error { return os.Symlink(outside, p) })
		},
		clear: func(t *testing.T, out string) {
			if err := os.Remove(filepath.Join(out, "sub")); err != nil {
				t.Fatal(err)
			}
		},
		want: "leaves the output directory",
	}, {
		name: "file where the output directory was",
		obstruct: func(t *testing.T, out, _ string) {
			replacePath(t, out, func(p string) error { return os.WriteFile(p, []byte("in the way"), 0o644) })
		},
		clear: func(t *testing.T, out string) {
			if err := os.Remove(out); err != nil {
				t.Fatal(err)
			}
		},
		want: "output files: creating its directory",
	}, {
		// Whether its files drifted cannot be known: that is a failed
		// check, not a clean one.
		name: "subdirectory that cannot be looked into",
		obstruct: func(t *testing.T, out, _ string) {
			replacePath(t, filepath.Join(out, "sub"), func(p string) error { return os.Symlink("sub", p) }) // a loop
		},
		clear: func(t *testing.T, out string) {
			if err := os.Remove(filepath.Join(out, "sub")); err != nil {
				t.Fatal(err)
			}
		},
		want: "cannot check output",
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			f.put("cfg", "files.a.conf", "alpha")
			f.put("cfg", "files.sub/b.conf", "bravo")
			a, _ := f.start(driftConfig(f))
			srv := httptest.NewServer(a.Handler())
			defer srv.Close()
			waitReady(t, a)
			out, outside := filepath.Join(f.dir, "out"), t.TempDir()
			labels := map[string]string{"watch": "cfg"}

			tc.obstruct(t, out, outside)
			waitFor(t, "the failed repair in the status", func() bool {
				s := a.Status()[0]
				return s.State == stateFailing && s.Failures >= 1 && strings.Contains(s.LastError, "drift") && strings.Contains(s.LastError, tc.want)
			})
			if code, body := readyz(t, srv.URL); code != http.StatusServiceUnavailable || !strings.Contains(body, tc.want) {
				t.Errorf("/readyz while the repair fails = %d %s, want 503 naming the obstacle", code, body)
			}
			if code := statusCode(t, srv.URL+"/healthz"); code != http.StatusServiceUnavailable {
				t.Errorf("/healthz while the repair fails = %d, want 503", code)
			}
			if r, h := gauge(a, "slipagent_watch_ready", labels), gauge(a, "slipagent_watch_healthy", labels); r != 0 || h != 0 {
				t.Errorf("slipagent_watch_ready %v, slipagent_watch_healthy %v while the repair fails; want 0 and 0", r, h)
			}
			if got := gauge(a, "slipagent_watch_consecutive_failures", labels); got < 1 {
				t.Errorf("slipagent_watch_consecutive_failures = %v while the repair fails", got)
			}
			// Every check tries again, and counts.
			first := a.Status()[0].Failures
			waitFor(t, "the next check to fail too", func() bool { return a.Status()[0].Failures > first })

			tc.clear(t, out)
			waitFor(t, "the outputs repaired once the obstacle is gone", func() bool {
				return readFile(filepath.Join(out, "a.conf")) == "alpha" && readFile(filepath.Join(out, "sub", "b.conf")) == "bravo"
			})
			waitFor(t, "the watch ready again", func() bool {
				code, _ := readyz(t, srv.URL)
				s := a.Status()[0]
				return code == http.StatusOK && s.Ready && s.Failures == 0 && s.LastError == ""
			})
			s := a.Status()[0]
			if !strings.Contains(s.LastFailure, tc.want) || s.LastFailureAt.IsZero() {
				t.Errorf("last_failure after recovery = %q at %v, want the failed repair", s.LastFailure, s.LastFailureAt)
			}
			if code := statusCode(t, srv.URL+"/healthz"); code != http.StatusOK {
				t.Errorf("/healthz after recovery = %d, want 200", code)
			}
			if r := gauge(a, "slipagent_watch_ready", labels); r != 1 {
				t.Errorf("slipagent_watch_ready after recovery = %v, want 1", r)
			}
			if ents, err := os.ReadDir(outside); err != nil || len(ents) > 0 {
				t.Errorf("the directory outside the output holds %v (%v), want nothing", ents, err)
			}
		})
	}
}

// replacePath removes path and puts place's obstacle there instead. The
// agent may be repairing the outputs meanwhile (its drift check runs right
// after the catch-up and can see the removal half done), re-creating what
// was removed: it tries again until the obstacle is in place.
func replacePath(t *testing.T, path string, place func(path string) error) {
	t.Helper()
	waitFor(t, "the obstacle at "+path, func() bool {
		_ = os.RemoveAll(path) // a repair writing into it makes this fail: the next try
		return place(path) == nil
	})
}

// statusCode fetches url and returns its status code.
func statusCode(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
