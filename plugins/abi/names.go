package abi

// Version is the ABI version this package describes. A guest declares the
// version it speaks by returning it from [ExportABIVersion].
const Version = 1

// ImportModule is the module name of every host function.
const ImportModule = "slipstream"

// Names of the guest's exports.
const (
	// ExportMemory is the guest's linear memory; the host reads and writes
	// only ranges the guest passes to a host function.
	ExportMemory = "memory"
	// ExportInitialize is the reactor initializer (WASI preview1). When the
	// module exports it, the host calls it once after instantiation, before
	// any other export.
	ExportInitialize = "_initialize"
	// ExportABIVersion () -> i32 returns the ABI version the guest speaks.
	ExportABIVersion = "slipstream_abi_version"
	// ExportApply (input_len i32) -> i32 handles an incremental batch.
	ExportApply = "slipstream_apply"
	// ExportRender (input_len i32) -> i32 rewrites every output from the view.
	ExportRender = "slipstream_render"
)

// Names of the host functions, all in [ImportModule].
const (
	FuncLog         = "log"
	FuncInputRead   = "input_read"
	FuncConfigGet   = "config_get"
	FuncConfigKeys  = "config_keys"
	FuncViewGet     = "view_get"
	FuncViewScan    = "view_scan"
	FuncOutputList  = "output_list"
	FuncStageWrite  = "stage_write"
	FuncStageRemove = "stage_remove"
	FuncHookRequest = "hook_request"
	FuncReportError = "report_error"
)

// ValueType is a WebAssembly value type, encoded as in the binary format.
type ValueType byte

// The value types the ABI uses.
const (
	I32 ValueType = 0x7f
	I64 ValueType = 0x7e
)

// String returns "i32" or "i64".
func (t ValueType) String() string {
	switch t {
	case I32:
		return "i32"
	case I64:
		return "i64"
	}
	return "type(0x" + hexByte(byte(t)) + ")"
}

func hexByte(b byte) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[b>>4], digits[b&0xf]})
}

// Signature is the name and type of one function of the ABI.
type Signature struct {
	Name    string
	Params  []ValueType
	Results []ValueType
}

// String renders the signature as "name(i32, i32) -> i64".
func (s Signature) String() string {
	out := s.Name + "("
	for i, p := range s.Params {
		if i > 0 {
			out += ", "
		}
		out += p.String()
	}
	out += ")"
	if len(s.Results) == 1 {
		out += " -> " + s.Results[0].String()
	}
	return out
}

func sig(name string, params int, result ValueType) Signature {
	ps := make([]ValueType, params)
	for i := range ps {
		ps[i] = I32
	}
	return Signature{Name: name, Params: ps, Results: []ValueType{result}}
}

// HostFunctions returns the signatures of every host function, in the order
// ABI.md lists them. Pointers and lengths are i32; functions that return data
// return i64 (a length, or a negative [Status]); the others return an i32
// [Status].
func HostFunctions() []Signature {
	return []Signature{
		sig(FuncLog, 3, I32),         // (level, msg_ptr, msg_len)
		sig(FuncInputRead, 2, I64),   // (buf_ptr, buf_cap)
		sig(FuncConfigGet, 4, I64),   // (key_ptr, key_len, buf_ptr, buf_cap)
		sig(FuncConfigKeys, 2, I64),  // (buf_ptr, buf_cap)
		sig(FuncViewGet, 4, I64),     // (key_ptr, key_len, buf_ptr, buf_cap)
		sig(FuncViewScan, 6, I64),    // (prefix_ptr, prefix_len, after_ptr, after_len, buf_ptr, buf_cap)
		sig(FuncOutputList, 8, I64),  // (output_ptr, output_len, dir_ptr, dir_len, after_ptr, after_len, buf_ptr, buf_cap)
		sig(FuncStageWrite, 7, I32),  // (output_ptr, output_len, path_ptr, path_len, data_ptr, data_len, mode)
		sig(FuncStageRemove, 4, I32), // (output_ptr, output_len, path_ptr, path_len)
		sig(FuncHookRequest, 2, I32), // (name_ptr, name_len)
		sig(FuncReportError, 2, I32), // (msg_ptr, msg_len)
	}
}

// GuestExports returns the signatures of the functions every guest must export.
func GuestExports() []Signature {
	return []Signature{
		{Name: ExportABIVersion, Results: []ValueType{I32}},
		sig(ExportApply, 1, I32),
		sig(ExportRender, 1, I32),
	}
}
