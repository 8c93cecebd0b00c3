//go:build !wasip1

package examples_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/slipstreamkv/slipstream/internal/plugintest/harness"
	"github.com/slipstreamkv/slipstream/plugins/host"
)

// loadCase is a plugin configuration and what loading the module with it
// gives: "" loads, anything else is a failure the plugin reported (a
// refusal at load: host.ErrPluginFailed) whose message holds it.
type loadCase struct {
	config map[string]string
	want   string
}

// checkLoads loads wasm as the plugin name with each case's configuration.
func checkLoads(t *testing.T, wasm []byte, name string, cases []loadCase) {
	t.Helper()
	for _, tc := range cases {
		p, err := harness.Engine(t).Load(t.Context(), wasm, host.PluginConfig{Name: name, Config: tc.config})
		if err == nil {
			p.Close(t.Context())
		}
		if tc.want == "" && err != nil || tc.want != "" && (!errors.Is(err, host.ErrPluginFailed) || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("config %v: load = %v, want %q", tc.config, err, tc.want)
		}
	}
}
