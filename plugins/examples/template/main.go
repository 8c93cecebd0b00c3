// Command template is an apply plugin that renders files from the keys of a
// watch with Go text/template templates taken from its configuration, in the
// manner of consul-template, and requests a hook when a file changed.
//
// Configuration, one template:
//
//	template  the template text (required; file("x.tmpl") in HCL reads it from a file)
//	name      the template's name in error messages, default the path
//	prefix    the keys .Entries and .Values hold (default: all)
//	output    the output to write, default "out"
//	path      the file to write in it, default "rendered"
//	mode      octal file mode, default the output's
//	hook      the hook to request on change, default "reload"; "" for none
//
// Several templates: instead of template, path, mode and name, templates is
// a list of objects with source (the text), destination (the path), perms
// (the mode), name, and optionally their own prefix, output, hook,
// left_delimiter and right_delimiter; prefix, output and hook at the top are
// their defaults. separator (default "/") splits keys into the directories
// of ls, tree and byKey.
//
// A template's dot is a [*Data] (.Watch, .Revision, .Entries, .Values); the
// functions are listed in funcs.go and the README. Errors name the template
// and the line. A batch re-renders only the templates that read a changed
// key, and a listing of .Entries patches its last output with the keys the
// batch changed (listing.go); a full render renders them all and removes
// the files no template writes from their outputs (prune.go), requesting
// the hooks of an output it removed a file from. The configuration is parsed
// when the host loads the module, so slipagent validate reports its errors,
// and a key the plugin does not read among them.
// Build with:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o template.wasm .
package main

import "github.com/slipstreamkv/slipstream/plugins/sdk"

func init() { sdk.Register(plugin{sdk.RenderFunc(render)}) }

func main() {}
