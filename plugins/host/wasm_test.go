package host

// A tiny WebAssembly binary encoder for hand-made test modules: wrong ABI
// versions, missing exports, odd imports, hostile initializers. Only what
// those modules need: function types of i32/i64, imports of functions, one
// memory, exports and constant or looping bodies.

const (
	i32 = 0x7f
	i64 = 0x7e
)

type wasmImport struct {
	module, name    string
	params, results []byte
}

type wasmFunc struct {
	export          string // "" = not exported
	params, results []byte
	body            []byte // instructions, without the final end
}

type wasmModule struct {
	imports []wasmImport
	funcs   []wasmFunc
	memory  bool   // define and export "memory" (1 page)
	data    []byte // placed at address 0 (needs memory)
}

// constI32 is a body returning v.
func constI32(v byte) []byte { return []byte{0x41, v & 0x3f} }

// callImport0 is a body storing at address 0 the i32 result of import 0
// called with n zero arguments.
func callImport0(n int) []byte {
	body := []byte{0x41, 0x00} // i32.const 0: the store address
	for range n {
		body = append(body, 0x41, 0x00)
	}
	return append(body, 0x10, 0x00, 0x36, 0x02, 0x00) // call 0; i32.store
}

// spin is a body that loops forever.
var spin = []byte{0x03, 0x40, 0x0c, 0x00, 0x0b} // loop (br 0) end

func uleb(v uint32) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			out = append(out, b|0x80)
			continue
		}
		return append(out, b)
	}
}

func vec(items ...[]byte) []byte {
	out := uleb(uint32(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func name(s string) []byte { return append(uleb(uint32(len(s))), s...) }

func section(id byte, content []byte) []byte {
	return append(append([]byte{id}, uleb(uint32(len(content)))...), content...)
}

func funcType(params, results []byte) []byte {
	return append(append([]byte{0x60}, append(uleb(uint32(len(params))), params...)...), append(uleb(uint32(len(results))), results...)...)
}

func (m wasmModule) bytes() []byte {
	out := []byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00}
	var types, imports, funcs, exports, codes [][]byte
	for i, im := range m.imports {
		types = append(types, funcType(im.params, im.results))
		imports = append(imports, append(append(name(im.module), name(im.name)...), append([]byte{0x00}, uleb(uint32(i))...)...))
	}
	for i, f := range m.funcs {
		ti := uint32(len(m.imports) + i)
		types = append(types, funcType(f.params, f.results))
		funcs = append(funcs, uleb(ti))
		if f.export != "" {
			exports = append(exports, append(name(f.export), append([]byte{0x00}, uleb(ti)...)...))
		}
		body := append(append([]byte{0x00}, f.body...), 0x0b) // no locals
		codes = append(codes, append(uleb(uint32(len(body))), body...))
	}
	if m.memory {
		exports = append(exports, append(name("memory"), 0x02, 0x00))
	}
	out = append(out, section(1, vec(types...))...)
	if len(imports) > 0 {
		out = append(out, section(2, vec(imports...))...)
	}
	out = append(out, section(3, vec(funcs...))...)
	if m.memory {
		out = append(out, section(5, vec([]byte{0x00, 0x01}))...)
	}
	out = append(out, section(7, vec(exports...))...)
	out = append(out, section(10, vec(codes...))...)
	if len(m.data) > 0 { // one active segment for memory 0 at offset 0
		seg := append([]byte{0x00, 0x41, 0x00, 0x0b}, append(uleb(uint32(len(m.data))), m.data...)...)
		out = append(out, section(11, vec(seg))...)
	}
	return out
}

// i32s is a body fragment pushing each value as an i32 constant.
func i32s(vals ...uint32) []byte {
	var out []byte
	for _, v := range vals {
		out = append(out, 0x41)
		for { // signed LEB128 of a non-negative value
			b := byte(v & 0x7f)
			v >>= 7
			if v == 0 && b&0x40 == 0 {
				out = append(out, b)
				break
			}
			out = append(out, b|0x80)
		}
	}
	return out
}

// helloPlugin is a hand-made plugin whose apply stages hello.txt = "hi\n" in
// the output "out" and succeeds.
func helloPlugin() []byte {
	m := minimalPlugin()
	m.data = []byte("outhello.txthi\n")
	m.imports = []wasmImport{{module: "slipstream", name: "stage_write", params: []byte{i32, i32, i32, i32, i32, i32, i32}, results: []byte{i32}}}
	body := i32s(0, 3, 3, 9, 12, 3, 0)         // "out", "hello.txt", "hi\n", mode 0
	body = append(body, 0x10, 0x00, 0x1a)      // call stage_write; drop
	m.funcs[1].body = append(body, 0x41, 0x00) // return 0
	return m.bytes()
}

// minimalPlugin is a valid ABI v1 plugin that does nothing and succeeds.
func minimalPlugin() wasmModule {
	return wasmModule{
		memory: true,
		funcs: []wasmFunc{
			{export: "slipstream_abi_version", results: []byte{i32}, body: constI32(1)},
			{export: "slipstream_apply", params: []byte{i32}, results: []byte{i32}, body: constI32(0)},
			{export: "slipstream_render", params: []byte{i32}, results: []byte{i32}, body: constI32(0)},
		},
	}
}
