package agent

import (
	"path/filepath"
	"strings"
	"testing"
)

// A reload that adds a report block, or changes its host, takes effect:
// the agent is rebuilt and reports as the new configuration says.
func TestServeReloadAppliesTheReportBlock(t *testing.T) {
	f := newFixture(t)
	f.put("cfg", "files.a.conf", "1")
	s := f.serve(f.config(filesConfig))
	waitFor(t, "the first agent to render", func() bool { return readFile(filepath.Join(f.dir, "out", "a.conf")) == "1" })

	for _, h := range []string{"h1", "h2"} {
		s.reloadTo(f.config(filesConfig + strings.Replace(reportBlock, `"h1"`, `"`+h+`"`, 1)))
		waitFor(t, "the report of host "+h, func() bool { return f.fleetRecordOf(h).State != "" })
	}
	s.stop()
}
