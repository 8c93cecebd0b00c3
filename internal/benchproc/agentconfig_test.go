package benchproc

import (
	"testing"

	"github.com/slipstreamkv/slipstream/agent"
)

// The configuration parses as the agent reads it, with the extra lines of
// the plugin and watch blocks in place.
func TestTemplateAgentParses(t *testing.T) {
	text := TemplateAgent{
		DataDir: "/d", CacheDir: "/c", Servers: []string{"nats://a:4222", "nats://b:4222"},
		Plugin: "/p/template.wasm", Watch: "bench", Bucket: "app", Out: "/o/rendered", HTTP: "127.0.0.1:9",
		PluginSettings: "  memory = \"64MiB\"\n", WatchSettings: "  fold = \"disk\"\n",
	}.HCL()
	cfg, err := agent.Parse("bench.hcl", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if len(cfg.Watches) != 1 || cfg.Watches[0].Name != "bench" || cfg.Watches[0].Bucket != "app" || cfg.Watches[0].Fold != agent.FoldDisk {
		t.Fatalf("watches %+v\n%s", cfg.Watches, text)
	}
	if len(cfg.NATS.Servers) != 2 || cfg.CacheDir != "/c" || cfg.DataDir != "/d" {
		t.Fatalf("config %+v\n%s", cfg, text)
	}
}
