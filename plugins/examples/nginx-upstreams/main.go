// Command nginx-upstreams is an apply plugin that renders nginx upstream
// blocks from JSON values, for a conf.d include, and requests a reload when
// the file changed. Run `nginx -t` as the watch's check command so a bad
// file never replaces a good one.
//
// Each key <prefix><upstream>.<server-id> holds one server:
//
//	{"address": "10.0.0.1:8080", "weight": 3, "max_fails": 2,
//	 "fail_timeout": "10s", "backup": false, "down": false}
//
// Only address is required. Every upstream becomes
//
//	upstream <upstream> {
//	    server 10.0.0.1:8080 weight=3 max_fails=2 fail_timeout=10s;
//	}
//
// with upstreams sorted by name and servers by id. Names and addresses are
// checked against a strict grammar, so a value cannot inject nginx syntax.
// An invalid server is logged and left out (or fails the batch with
// strict = "true"); an upstream with no valid server is left out.
//
// Configuration (all optional):
//
//	prefix  key prefix, default "upstream."
//	output  the output to write, default "conf"
//	path    the file to write in it, default "upstreams.conf"
//	hook    the hook to request on change, default "reload"; "" for none
//	strict  "true" fails the batch on an invalid server
//
// Any other key, or a value that does not parse, refuses the plugin when
// the host loads it (slipagent validate reports it).
//
// Build with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o nginx-upstreams.wasm .
package main

import "github.com/slipstreamkv/slipstream/plugins/sdk"

func init() { sdk.Register(plugin{sdk.RenderFunc(render)}) }

func main() {}
