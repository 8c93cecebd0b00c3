// Command files is an apply plugin that mirrors keys into files: every key
// under a prefix becomes one file whose path is the rest of the key and whose
// content is the value; deleting the key removes the file. It is the
// "one output file per key" feature consul-template and confd users ask for.
//
// Configuration (all optional):
//
//	output  the output to write, default "files"
//	prefix  only keys starting with it; it is stripped from the path
//	mode    octal file mode, default the output's
//	hook    a hook to request whenever a file changed
//	prune   "false" keeps files without a key on a full render (default "true")
//	strict  "true" fails the batch on a key that is not a valid relative path
//
// Any other key, or a value that does not parse, refuses the plugin when
// the host loads it (slipagent validate reports it).
//
// A key that is not a valid relative path (see plugins/ABI.md) is logged and
// skipped, or with strict = "true" fails the batch, so that the watch shows
// failing (and retries) until the key is deleted or renamed. Build with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o files.wasm .
package main

import "github.com/slipstreamkv/slipstream/plugins/sdk"

func init() { sdk.Register(plugin{}) }

func main() {}
