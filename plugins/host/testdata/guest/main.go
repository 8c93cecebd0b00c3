//go:build wasip1

// Command guest is the host's test plugin. Each update of a batch is an
// action: its key names the action (anything after '#' only makes keys
// unique) and its value is the argument. A render runs the actions stored in
// the view under "render/". Hostile actions exist to prove the host survives
// them.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/slipstreamkv/slipstream/plugins/sdk"
)

func init() { sdk.Register(guest{}) }

func main() {}

type guest struct{}

func (guest) Apply(h *sdk.Host, b *sdk.Batch) error {
	for _, u := range b.Updates {
		if u.Op != sdk.OpPut {
			continue
		}
		if err := act(h, u.Key, string(u.Value)); err != nil {
			return err
		}
	}
	return nil
}

func (guest) Render(h *sdk.Host, _ *sdk.Batch) error {
	for e, err := range h.Scan("render/") {
		if err != nil {
			return err
		}
		if err := act(h, strings.TrimPrefix(e.Key, "render/"), string(e.Value)); err != nil {
			return err
		}
	}
	return nil
}

// kept holds memory on purpose across calls ("grow").
var kept [][]byte

func act(h *sdk.Host, key, arg string) error {
	action, _, _ := strings.Cut(key, "#")
	switch action {
	case "write": // output:path:content[:mode]; errors are ignored on purpose
		f := strings.SplitN(arg, ":", 4)
		mode := uint64(0)
		if len(f) == 4 {
			mode, _ = strconv.ParseUint(f[3], 8, 32)
		}
		changed, err := h.WriteFile(f[0], f[1], []byte(f[2]), os.FileMode(mode))
		h.Logf(sdk.LevelInfo, "write %s changed=%v err=%v", f[1], changed, err)
	case "writesize": // output:path:bytes
		f := strings.SplitN(arg, ":", 3)
		n, _ := strconv.Atoi(f[2])
		_, err := h.WriteFile(f[0], f[1], make([]byte, n), 0)
		h.Logf(sdk.LevelInfo, "writesize %s err=%v", f[1], err)
	case "remove": // output:path
		f := strings.SplitN(arg, ":", 2)
		changed, err := h.RemoveFile(f[0], f[1])
		h.Logf(sdk.LevelInfo, "remove %s changed=%v err=%v", f[1], changed, err)
	case "hook":
		_ = h.RequestHook(arg)
	case "list": // output:dir -> writes "listing" into the output
		f := strings.SplitN(arg, ":", 2)
		var names []string
		for e, err := range h.ReadDir(f[0], f[1]) {
			if err != nil {
				return err
			}
			names = append(names, fmt.Sprintf("%s/%d", e.Name, e.Type))
		}
		_, err := h.WriteFile(f[0], "listing", []byte(strings.Join(names, "\n")), 0)
		return err
	case "scan": // output:prefix -> writes "scan" with count and a digest of all keys and values
		f := strings.SplitN(arg, ":", 2)
		sum := sha256.New()
		n := 0
		for e, err := range h.Scan(f[1]) {
			if err != nil {
				return err
			}
			n++
			fmt.Fprintf(sum, "%s=%d:%s\n", e.Key, len(e.Value), e.Value)
		}
		_, err := h.WriteFile(f[0], "scan", []byte(fmt.Sprintf("%d %s", n, hex.EncodeToString(sum.Sum(nil)))), 0)
		return err
	case "get":
		e, ok, err := h.Get(arg)
		h.Logf(sdk.LevelInfo, "get %s = %q %v %v", arg, e.Value, ok, err)
	case "config":
		v, ok := h.Config(arg)
		h.Logf(sdk.LevelInfo, "config %s = %q %v", arg, v, ok)
	case "configkeys":
		keys, err := h.ConfigKeys()
		h.Logf(sdk.LevelInfo, "config keys %q %v", keys, err)
	case "fail":
		return errors.New(arg)
	case "panic":
		panic(arg)
	case "exit":
		code, _ := strconv.Atoi(arg)
		os.Exit(code)
	case "trap": // an out-of-bounds load: a real wasm trap, not a Go panic
		p := (*byte)(unsafe.Add(unsafe.Pointer(&kept), 0xf0000000))
		h.Logf(sdk.LevelInfo, "read %d", *p)
	case "loop":
		for n := 0; ; n++ {
			if n < 0 {
				return nil
			}
		}
	case "membomb":
		for {
			kept = append(kept, make([]byte, 1<<20))
		}
	case "grow": // keep arg MiB alive
		n, _ := strconv.Atoi(arg)
		for range n {
			b := make([]byte, 1<<20)
			b[0] = 1
			kept = append(kept, b)
		}
	case "recurse":
		n, _ := strconv.Atoi(arg)
		return recurse(n)
	case "logflood":
		n, _ := strconv.Atoi(arg)
		for i := range n {
			fmt.Println("stdout line", i)
			h.Logf(sdk.LevelInfo, "log line %d", i)
		}
		fmt.Print("partial line without newline")
		fmt.Fprintln(os.Stderr, strings.Repeat("x", 10000))
	case "stderr":
		fmt.Fprintln(os.Stderr, arg)
	case "logerror":
		h.Log(sdk.LevelError, arg)
	case "wild":
		return wild()
	case "sandbox": // output -> writes what the guest can see of the host
		_, ferr := os.ReadFile("/etc/hostname")
		_, derr := os.ReadDir("/")
		_, cerr := os.Create("/tmp/slipstream-escape")
		report := fmt.Sprintf("env=%d args=%d read=%v readdir=%v create=%v", len(os.Environ()), len(os.Args), ferr, derr, cerr)
		_, err := h.WriteFile(arg, "sandbox", []byte(report), 0)
		return err
	case "sleep": // a Go duration
		d, err := time.ParseDuration(arg)
		if err != nil {
			return err
		}
		time.Sleep(d)
	case "ok":
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	return nil
}

//go:noinline
func recurse(n int) error {
	var pad [64]byte
	pad[n%64] = byte(n)
	if n == 0 {
		return nil
	}
	if err := recurse(n - 1); err != nil {
		return err
	}
	if pad[0] == 255 {
		return errors.New("unreachable")
	}
	return nil
}
