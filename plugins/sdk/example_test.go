//go:build !wasip1

package sdk_test

import (
	"fmt"
	"strings"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

// upper writes every key under "app/" upper-cased to the output "out".
func upper(h *sdk.Host, b *sdk.Batch) error {
	for e, err := range h.Scan("app/") {
		if err != nil {
			return err
		}
		if _, err := h.WriteFile("out", strings.TrimPrefix(e.Key, "app/"), []byte(strings.ToUpper(string(e.Value))), 0); err != nil {
			return err
		}
	}
	return nil
}

// A plugin's logic tested on the fake host, without building a module. In
// the plugin's main package the same function is registered from init:
// sdk.Register(sdk.RenderFunc(upper)).
func ExampleFake() {
	f := &sdk.Fake{Outputs: []string{"out"}}
	res, err := f.Apply(sdk.RenderFunc(upper), sdk.Update{Op: sdk.OpPut, Key: "app/motd", Value: []byte("hello")})
	if err != nil {
		fmt.Println(err)
		return
	}
	file, _ := f.File("out", "motd")
	fmt.Println(res.Changed, string(file.Data), file.Mode)
	// Output: [out:motd] HELLO -rw-r--r--
}

// settings is a plugin that reads the settings prefix and hook: its
// Configure, which the module's initializer runs when the host loads it,
// refuses any other key.
type settings struct{ sdk.RenderFunc }

func (settings) Configure(h *sdk.Host) error { return sdk.CheckConfigKeys(h, "prefix", "hook") }

// A misspelt setting refuses the plugin when it loads (slipagent validate
// reports it) instead of leaving the setting at its default.
func ExampleCheckConfigKeys() {
	f := &sdk.Fake{Config: map[string]string{"prefx": "app/"}}
	_, err := f.Render(settings{upper})
	fmt.Println(err)
	// Output: sdk fake: configure: unknown configuration key "prefx" (did you mean "prefix"?); this plugin reads: hook, prefix
}
