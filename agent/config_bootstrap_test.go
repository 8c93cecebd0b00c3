package agent

import (
	"strings"
	"testing"
	"time"
)

func TestBootstrapBlock(t *testing.T) {
	parse := func(block string) (*WatchConf, error) {
		cfg, err := Parse("agent.hcl", []byte(`
plugin "p" { module = "/p.wasm" }
watch "w" {
  bucket = "b"
  plugin = "p"
  output "o" { dir = "/out" }
  `+block+`
}`))
		if err != nil {
			return nil, err
		}
		return cfg.Watches[0], nil
	}
	w, err := parse(``)
	if err != nil || w.Bootstrap != nil {
		t.Fatalf("no block: %+v, %v", w, err)
	}
	w, err = parse(`bootstrap { object_store = "arts" }`)
	if err != nil || w.Bootstrap.ObjectStore != "arts" || w.Bootstrap.ExportInterval != DefaultExportInterval || w.Bootstrap.LeaseTTL != DefaultExportInterval {
		t.Errorf("defaults: %+v, %v", w.Bootstrap, err)
	}
	w, err = parse(`bootstrap {
    object_store    = "arts"
    export_interval = "0"
  }`)
	if err != nil || w.Bootstrap.ExportInterval != 0 || w.Bootstrap.LeaseTTL <= 0 {
		t.Errorf("import only: %+v, %v", w.Bootstrap, err)
	}
	w, err = parse(`bootstrap {
    object_store    = "arts"
    export_interval = "1m"
    lease_ttl       = "5m"
  }`)
	if err != nil || w.Bootstrap.ExportInterval != time.Minute || w.Bootstrap.LeaseTTL != 5*time.Minute {
		t.Errorf("settings: %+v, %v", w.Bootstrap, err)
	}
	for block, want := range map[string]string{
		`bootstrap { object_store = "a.b" }`: "Invalid object_store",
		`bootstrap { object_store = "" }`:    "Invalid object_store",
		`bootstrap {}`:                       "object_store",
		`bootstrap {
    object_store = "a"
    lease_ttl = "-1s"
  }`: "Invalid duration",
	} {
		if _, err := parse(block); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", block, err, want)
		}
	}
}
