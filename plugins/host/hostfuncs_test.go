package host

import (
	"context"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/slipstreamkv/slipstream/plugins/abi"
)

// pointerPairs lists, for a host function, the parameter indexes that are
// (pointer, length) pairs.
func pointerPairs(sig abi.Signature) [][2]int {
	var pairs [][2]int
	start := 0
	if sig.Name == abi.FuncLog {
		start = 1
	}
	for i := start; i+1 < len(sig.Params); i += 2 {
		pairs = append(pairs, [2]int{i, i + 1})
	}
	return pairs
}

// hostFuncProbe calls host functions directly against a live guest memory.
type hostFuncProbe struct {
	f   *fixture
	mem api.Memory
	mod api.Module
}

func newHostFuncProbe(t testing.TB) *hostFuncProbe {
	f := newFixtureWith(t, minimalPlugin().bytes(), PluginConfig{Config: map[string]string{"": "empty key"}})
	f.view.Put(Entry{Key: "", Value: []byte("x")})
	return &hostFuncProbe{f: f, mem: f.inst.mod.Memory(), mod: f.inst.mod}
}

// call runs sig's host function through the same adapter wazero uses, with
// garbage in the upper half of every i32 parameter, and checks the answer.
func (p *hostFuncProbe) call(t testing.TB, sig abi.Signature, params []uint32) {
	c := &call{inst: p.f.inst, kind: abi.KindApply, input: []byte("input"), view: p.f.view, stage: newStage(p.f.inst.cfg.Outputs, p.f.p.cfg.Limits, false), clock: startClock(time.Hour, func() {})}
	defer c.clock.stop()
	defer c.stage.discard()
	stack := make([]uint64, max(len(params), 1))
	for i, v := range params {
		stack[i] = 0xdeadbeef<<32 | uint64(v)
	}
	ctx := withCall(context.Background(), c)
	adapt(hostFuncs[sig.Name], sig)(ctx, p.mod, stack)
	var got int64
	if sig.Results[0] == abi.I64 {
		got = int64(stack[0])
	} else {
		got = int64(int32(uint32(stack[0])))
	}
	size := uint64(p.mem.Size())
	for _, pair := range pointerPairs(sig) {
		if uint64(params[pair[0]])+uint64(params[pair[1]]) > size {
			if got != int64(abi.ErrMemory) {
				t.Fatalf("%s%v: pair %v lies outside %d bytes of memory, got %d, want ErrMemory", sig.Name, params, pair, size, got)
			}
			return
		}
	}
	if got < 0 && got != int64(abi.ErrNotFound) && got != int64(abi.ErrInvalid) && got != int64(abi.ErrDenied) && got != int64(abi.ErrIO) {
		t.Fatalf("%s%v: in-bounds call returned %d", sig.Name, params, got)
	}
}

var wildValues = []uint32{0, 1, 7, 65535, 65536, 65537, 1 << 31, 0xfffffff0, 0xffffffff}

func TestHostFunctionsBoundsCheckEveryPointer(t *testing.T) {
	p := newHostFuncProbe(t)
	rnd := rand.New(rand.NewPCG(1, 2))
	for _, sig := range abi.HostFunctions() {
		for range 3000 {
			params := make([]uint32, len(sig.Params))
			for i := range params {
				params[i] = wildValues[rnd.IntN(len(wildValues))]
			}
			p.call(t, sig, params)
		}
	}
	noStaged(t, p.f.out)
}

// FuzzHostFunctions calls a host function with arbitrary parameters over a
// guest memory holding arbitrary bytes: it must never panic, and a pointer
// pair outside memory must give ErrMemory.
func FuzzHostFunctions(f *testing.F) {
	f.Add(uint8(0), []byte("hello"), uint32(0), uint32(5), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0))
	f.Add(uint8(6), []byte("outa"), uint32(0), uint32(3), uint32(3), uint32(1), uint32(0), uint32(4), uint32(0o644), uint32(0))
	f.Add(uint8(4), []byte{}, uint32(0), uint32(0), uint32(0), uint32(0), uint32(100), uint32(1000), uint32(0), uint32(0))
	f.Add(uint8(7), []byte("out../x"), uint32(0), uint32(3), uint32(3), uint32(4), uint32(0xffffffff), uint32(2), uint32(0), uint32(0))
	p := newHostFuncProbe(f)
	f.Fuzz(func(t *testing.T, fn uint8, mem []byte, a, b, c, d, e, g, h, i uint32) {
		p.mem.Write(0, mem[:min(len(mem), int(p.mem.Size()))])
		sigs := abi.HostFunctions()
		sig := sigs[int(fn)%len(sigs)]
		all := []uint32{a, b, c, d, e, g, h, i}
		p.call(t, sig, all[:len(sig.Params)])
	})
}

// TestHostFunctionsBoundGuestData passes 16 MiB of 0xff bytes (each quoted
// as four bytes by %q) as a name or a message: the host must neither copy
// the guest's range whole nor quote it whole into an error. Before the
// bound, one hook_request allocated about 650 MiB and report_error pinned a
// 16 MiB copy behind its 4 KiB message.
func TestHostFunctionsBoundGuestData(t *testing.T) {
	p := newHostFuncProbe(t)
	const n = 16 << 20
	if _, ok := p.mem.Grow(n/65536 + 1); !ok {
		t.Fatal("cannot grow guest memory")
	}
	huge := make([]byte, n)
	for i := range huge {
		huge[i] = 0xff
	}
	p.mem.Write(0, huge)
	huge = nil
	small := uint32(n) // "a" and a 4 KiB page buffer after the huge range
	p.mem.Write(small, []byte("a"))
	buf, bufCap := small+16, uint32(4096)

	tests := []struct {
		fn     string
		params []uint32
	}{
		{abi.FuncHookRequest, []uint32{0, n}},
		{abi.FuncStageWrite, []uint32{0, n, small, 1, small, 1, 0}},
		{abi.FuncStageRemove, []uint32{0, n, small, 1}},
		{abi.FuncOutputList, []uint32{0, n, 0, 0, 0, 0, buf, bufCap}},
		{abi.FuncConfigGet, []uint32{0, n, buf, bufCap}},
		{abi.FuncConfigKeys, []uint32{0, n}},
		{abi.FuncLog, []uint32{0, 0, n}},
		{abi.FuncReportError, []uint32{0, n}},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			c := &call{inst: p.f.inst, kind: abi.KindApply, view: p.f.view, stage: newStage(p.f.inst.cfg.Outputs, p.f.p.cfg.Limits, false), clock: startClock(time.Hour, func() {})}
			defer c.clock.stop()
			defer c.stage.discard()
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			res := hostFuncs[tt.fn](context.Background(), c, p.mem, tt.params)
			runtime.ReadMemStats(&after)
			if res == int64(abi.ErrMemory) {
				t.Fatalf("%s answered ErrMemory for in-bounds ranges", tt.fn)
			}
			// The bound is generous (a copy of the range would be 16 MiB),
			// and covers whatever else the process allocates meanwhile.
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
				t.Errorf("%s with %d bytes of guest data allocated %d bytes", tt.fn, n, alloc)
			}
			// %q spells a byte in at most four; the rest is the message.
			if c.failed != nil && len(c.failed.Error()) > 4*abi.MaxQuoteLen+256 {
				t.Errorf("%s: the call's error is %d bytes", tt.fn, len(c.failed.Error()))
			}
			if len(c.errMsg) > abi.MaxErrorLen {
				t.Errorf("report_error kept %d bytes", len(c.errMsg))
			}
		})
	}
	if got := p.f.logs.lines(); len(got) != 1 || len(got[0]) > abi.MaxLogLen+len("INFO ") {
		t.Errorf("log lines: %d, the first of %d bytes", len(got), len(got[0]))
	}
}

// TestConfigKeys: config_keys answers the names of the configuration's
// keys, sorted and each followed by a NUL byte, during _initialize too, and
// writes nothing into a buffer too small for them.
func TestConfigKeys(t *testing.T) {
	m := minimalPlugin()
	m.imports = []wasmImport{{module: abi.ImportModule, name: abi.FuncConfigKeys, params: []byte{i32, i32}, results: []byte{i64}}}
	const i64Store = 0x37
	var body []byte
	body = append(append(body, i32s(8, 100, 2)...), 0x10, 0x00, i64Store, 0x03, 0x00) // mem[8] = config_keys(100, 2)
	body = append(append(body, i32s(0, 16, 64)...), 0x10, 0x00, i64Store, 0x03, 0x00) // mem[0] = config_keys(16, 64)
	m.funcs = append(m.funcs, wasmFunc{export: abi.ExportInitialize, body: body})
	for _, tc := range []struct {
		config map[string]string
		want   string
	}{
		{map[string]string{"prefix": "files.", "hook": "", "a=b": "c"}, "a=b\x00hook\x00prefix\x00"},
		{map[string]string{"": "the empty key"}, "\x00"},
		{nil, ""},
	} {
		f := newFixtureWith(t, m.bytes(), PluginConfig{Config: tc.config})
		mem := f.inst.mod.Memory()
		full, _ := mem.ReadUint64Le(0)
		small, _ := mem.ReadUint64Le(8)
		got, _ := mem.Read(16, uint32(min(full, 64)))
		untouched, _ := mem.Read(100, 2)
		if full != uint64(len(tc.want)) || small != full || string(got) != tc.want || string(untouched) != "\x00\x00" {
			t.Errorf("config %v: config_keys answered %d, then %d and %q, and wrote %q into a 2-byte buffer; want %d and %q", tc.config, small, full, got, untouched, len(tc.want), tc.want)
		}
	}
}

// TestLoadRefusesANULInAConfigKey: config_keys ends each name with a NUL
// byte, so a key holding one is refused when the plugin loads.
func TestLoadRefusesANULInAConfigKey(t *testing.T) {
	_, err := testEngine(t).Load(context.Background(), minimalPlugin().bytes(), PluginConfig{Name: "nul", Config: map[string]string{"a\x00b": "x", "ok": "y"}})
	if err == nil || err.Error() != `host: plugin "nul": configuration key "a\x00b" holds a NUL byte` {
		t.Fatalf("Load = %v, want the key refused", err)
	}
}
