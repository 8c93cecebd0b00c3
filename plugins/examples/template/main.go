// Command template is an apply plugin that renders one file from every key
// under a prefix with a Go text/template taken from its configuration, and
// requests a hook when the file changed.
//
// Configuration:
//
//	template  the template text (required)
//	prefix    only keys starting with it are loaded (default: all)
//	output    the output to write, default "out"
//	path      the file to write in it, default "rendered"
//	mode      octal file mode, default the output's
//	hook      the hook to request on change, default "reload"; "" for none
//
// The template's data is a [Data]. Besides the text/template builtins it
// can call trimPrefix, hasPrefix, replace, split, join, lower, upper, and
// json (parse a value as JSON). All keys are loaded into guest memory, so
// the prefix should select what the template needs. Build with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o template.wasm .
package main

import "github.com/slipstreamkv/slipstream/plugins/sdk"

func init() { sdk.Register(sdk.RenderFunc(render)) }

func main() {}
