package main

import (
	"bytes"
	"context"
	"os"
	"syscall"
	"testing"
)

func TestSignals(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 2)
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	go cancelOnSignal(sigs, cancel, &stderr, func(code int) { exited <- code })
	sigs <- syscall.SIGTERM
	<-ctx.Done() // the first signal cancels the root context
	select {
	case code := <-exited:
		t.Fatalf("exited with %d on the first signal", code)
	default:
	}
	sigs <- syscall.SIGINT
	if code := <-exited; code != exitInterrupted {
		t.Fatalf("second signal exited with %d, want %d", code, exitInterrupted)
	}
}
