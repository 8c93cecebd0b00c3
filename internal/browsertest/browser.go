// Package browsertest drives a headless Chromium from tests (chromedp): the
// fleet rollout page is checked in a real browser, both served in-process
// and by `slipagent fleet serve` over real agents' reports.
package browsertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium finds a Chromium to drive: the test is skipped without one,
// unless SLIPSTREAM_REQUIRE_CHROMIUM=1 (CI) makes that a failure.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("SLIPSTREAM_REQUIRE_CHROMIUM") == "1" {
		t.Fatal("no chromium in PATH (apt-get install chromium) and SLIPSTREAM_REQUIRE_CHROMIUM=1")
	}
	t.Skip("no chromium in PATH (apt-get install chromium)")
	return ""
}

// New starts a headless Chromium with a fresh profile; t's cleanup stops
// it.
func New(t testing.TB) context.Context {
	t.Helper()
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(Chromium(t)),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// EvalUntil evaluates the JavaScript expr in the page until it returns
// want (compared as printed by fmt), for at most a minute.
func EvalUntil(t testing.TB, ctx context.Context, what, expr string, want any) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		got, err := chromedp.Run(ctx, chromedp.Evaluate[any](expr))
		if err == nil && fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s = %v (%v), want %v", what, expr, got, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
