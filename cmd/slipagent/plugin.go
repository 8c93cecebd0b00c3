package main

import (
	"context"
	"fmt"
	"io"
)

const pluginUsage = `usage: slipagent plugin <inspect|compile|run> [flags] MODULE.wasm

  inspect MODULE.wasm     the ABI version it declares, exports, imports,
                          memory, size and the sha256 line to paste into HCL
  compile MODULE.wasm...  fill the agent's compile cache ahead of its first
                          start (or -config PATH: every module it names)
  run MODULE.wasm -batch FILE [-view FILE] (-out DIR | -output NAME=DIR... | -diff)
                          run one call of the module on a batch given as
                          JSON, with no agent, fold or NATS

Run 'slipagent plugin <subcommand> -h' for the flags of each.`

func runPlugin(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, pluginUsage)
		return exitUsage
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "inspect":
		return pluginInspect(ctx, args, stdout, stderr)
	case "compile":
		return pluginCompile(ctx, args, stdout, stderr)
	case "run":
		return pluginRun(ctx, args, stdout, stderr)
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, pluginUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "slipagent plugin: unknown subcommand %q\n\n%s\n", sub, pluginUsage)
	return exitUsage
}
