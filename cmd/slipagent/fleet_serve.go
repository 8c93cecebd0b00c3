package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/slipstreamkv/slipstream/agent"
	"github.com/slipstreamkv/slipstream/fleet"
)

const fleetServeUsage = `usage: slipagent fleet serve [-listen 127.0.0.1:9465] [-bucket B] [-watch W] [-prefix P]

Serves a live rollout page: every host × watch with its applied revision,
lag and state (problem hosts first), and each watch's lag histogram. The
page polls /api/report (the aggregation as "fleet status -json" prints it;
?revision=R sets the target revision) every second. It runs until
interrupted.`

func runFleetServe(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("slipagent fleet serve", stderr)
	f := addFleetFlags(fs, addNATSFlags(fs))
	listen := fs.String("listen", "127.0.0.1:9465", "the address to serve the page on")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return parseFailed(fs, fleetServeUsage, err, stdout, stderr)
	}
	if err := f.check(pos); err != nil {
		fmt.Fprintf(stderr, "slipagent fleet serve: %v\n\n", err)
		printUsage(stderr, fs, fleetServeUsage)
		return exitUsage
	}
	r, err := f.open(ctx, "slipagent fleet serve")
	if err != nil {
		fmt.Fprintf(stderr, "slipagent fleet serve: %v\n", err)
		return connectExit(err)
	}
	defer r.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "slipagent fleet serve: %v\n", err)
		return exitFailure
	}
	if !agent.Loopback(*listen) {
		fmt.Fprintf(stderr, "slipagent fleet serve: warning: the page has no authentication and %s is beyond loopback: anyone who can reach it sees every host and error of the fleet (put a proxy with authentication in front, or listen on 127.0.0.1)\n", *listen)
	}
	var mu sync.Mutex // one read of the reports at a time
	src := func(ctx context.Context) ([]fleet.Record, error) {
		mu.Lock()
		defer mu.Unlock()
		return r.read(ctx)
	}
	srv := &http.Server{Handler: fleet.Handler(src, f.query), ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stdout, "serving the rollout page on http://%s/\n", ln.Addr())
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "slipagent fleet serve: %v\n", err)
		return exitFailure
	}
	return exitOK
}
