// Command dist builds slipagent's release artifacts from a built binary and
// the example plugins: a tarball, a .deb and an .rpm (with nFPM as a
// library). `make dist` builds the inputs and runs it.
//
// Every artifact installs (or, for the tarball, holds) the same files:
//
//	/usr/bin/slipagent                     the agent
//	/lib/systemd/system/slipagent.service  contrib/slipagent.service
//	/etc/slipagent/agent.hcl               agent.hcl.example, a config file kept on upgrade
//	/usr/lib/slipagent/plugins/*.wasm      the example plugins
//
// Usage:
//
//	go run ./internal/dist -version $(git describe --tags --always --dirty) \
//	  -binary bin/dist/slipagent -plugins bin/plugins -out dist
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
)

func main() {
	var opts options
	flag.StringVar(&opts.Version, "version", "", "the version, as `git describe --tags --always --dirty` prints it")
	flag.StringVar(&opts.Arch, "arch", runtime.GOARCH, "the GOARCH the binary was built for")
	flag.StringVar(&opts.Binary, "binary", "bin/dist/slipagent", "the slipagent binary to package")
	flag.StringVar(&opts.Plugins, "plugins", "bin/plugins", "the directory of example plugins (*.wasm) to package")
	flag.StringVar(&opts.Root, "root", ".", "the repository root (for contrib/slipagent.service and agent.hcl.example)")
	flag.StringVar(&opts.Out, "out", "dist", "the directory the artifacts are written to")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "dist: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	built, err := build(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "dist: %v\n", err)
		os.Exit(1)
	}
	for _, path := range built {
		fmt.Println(path)
	}
}
