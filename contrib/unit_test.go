// Package contrib holds files installed next to slipagent (the systemd unit
// and its drop-ins); its tests check them with systemd-analyze.
package contrib

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The exposure scores `systemd-analyze security --offline=true` gives the
// unit alone and with the hooks drop-in (0 is best, 10 worst), as systemd
// 252 (Debian 12, what .ci/run installs) computes them. A change that raises
// one fails; one that lowers it should lower the number here.
const (
	unitExposure  = 2.2
	hooksExposure = 2.7
)

// requireEnv makes a missing systemd-analyze a failure (CI sets it).
const requireEnv = "SLIPSTREAM_REQUIRE_SYSTEMD_ANALYZE"

func TestUnitHardening(t *testing.T) {
	analyze := systemdAnalyze(t)
	dir := installUnit(t)
	verify(t, analyze, dir)
	if got := exposure(t, analyze, dir); got > unitExposure {
		t.Errorf("slipagent.service's exposure rose to %.1f (recorded %.1f): restore the hardening, or explain in the unit why it cannot be kept and record the new score", got, unitExposure)
	} else if got < unitExposure {
		t.Logf("slipagent.service's exposure fell to %.1f: record it in unitExposure and the unit's comment", got)
	}
}

func TestHooksDropInHardening(t *testing.T) {
	analyze := systemdAnalyze(t)
	dir := installUnit(t)
	dropIns := filepath.Join(dir, "slipagent.service.d")
	if err := os.Mkdir(dropIns, 0o755); err != nil {
		t.Fatal(err)
	}
	conf, err := os.ReadFile(filepath.Join("slipagent.service.d", "hooks-restart-services.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dropIns, "hooks-restart-services.conf"), conf, 0o644); err != nil {
		t.Fatal(err)
	}
	verify(t, analyze, dir)
	got := exposure(t, analyze, dir)
	if got > hooksExposure {
		t.Errorf("slipagent.service with hooks-restart-services.conf: exposure rose to %.1f (recorded %.1f)", got, hooksExposure)
	} else if got < hooksExposure {
		t.Logf("the exposure with hooks-restart-services.conf fell to %.1f: record it in hooksExposure and the drop-in's comment", got)
	}
	if base := exposure(t, analyze, installUnit(t)); got <= base {
		t.Errorf("the drop-in does not loosen anything: %.1f with it, %.1f without", got, base)
	}
}

func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv(requireEnv) == "1" {
			t.Fatalf("systemd-analyze is not installed (Debian: apt-get install systemd) and %s=1", requireEnv)
		}
		t.Skipf("systemd-analyze is not installed (Debian: apt-get install systemd); %s=1 makes this a failure", requireEnv)
	}
	return path
}

// installUnit copies slipagent.service alone into a directory of its own
// (systemd-analyze would read the drop-ins beside it here) with an
// executable standing in for /usr/bin/slipagent, which verify requires.
func installUnit(t *testing.T) string {
	t.Helper()
	unit, err := os.ReadFile("slipagent.service")
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	unit = []byte(strings.ReplaceAll(string(unit), "/usr/bin/slipagent", self))
	if err := os.WriteFile(filepath.Join(dir, "slipagent.service"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// verify runs systemd-analyze verify on the unit in dir: unknown settings,
// bad values and missing commands fail.
func verify(t *testing.T, analyze, dir string) {
	t.Helper()
	out, err := exec.Command(analyze, "verify", filepath.Join(dir, "slipagent.service")).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var overallRE = regexp.MustCompile(`Overall exposure level for slipagent\.service: ([0-9]+\.[0-9])`)

// exposure is the score systemd-analyze security gives the unit in dir.
func exposure(t *testing.T, analyze, dir string) float64 {
	t.Helper()
	out, err := exec.Command(analyze, "security", "--offline=true", "--no-pager", filepath.Join(dir, "slipagent.service")).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := overallRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security printed no overall exposure:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return score
}
