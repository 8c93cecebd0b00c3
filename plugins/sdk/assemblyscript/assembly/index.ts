// AssemblyScript SDK for slipstream apply plugins, plugin ABI version 1,
// written from plugins/ABI.md alone.
//
// A plugin's entry file re-exports the ABI's exports and defines the two
// calls (see plugins/examples/files-as):
//
//   export { slipstream_abi_version, slipstream_abort } from "<sdk>/assembly/index";
//   export function slipstream_apply(inputLen: i32): i32 {
//     const input = readInput(inputLen);
//     ...
//     return 0; // or fail("message")
//   }
//   export function slipstream_render(inputLen: i32): i32 { ... }
//
// and is built as a reactor whose aborts end the call with a message:
//
//   asc entry.ts --exportStart _initialize --use abort=<sdk>/assembly/index/slipstream_abort -O -o plugin.wasm
//
// AssemblyScript has no exceptions: every host call returns its status
// (section 7 of the ABI), and a call the host refused fails the whole call
// anyway, so a plugin returns fail(...) on the first error.

// ---- Host functions (ABI section 5), module "slipstream" ----

@external("slipstream", "log")
declare function host_log(level: i32, msgPtr: usize, msgLen: i32): i32;
@external("slipstream", "input_read")
declare function host_input_read(bufPtr: usize, bufCap: i32): i64;
@external("slipstream", "config_get")
declare function host_config_get(keyPtr: usize, keyLen: i32, bufPtr: usize, bufCap: i32): i64;
@external("slipstream", "config_keys")
declare function host_config_keys(bufPtr: usize, bufCap: i32): i64;
@external("slipstream", "view_get")
declare function host_view_get(keyPtr: usize, keyLen: i32, bufPtr: usize, bufCap: i32): i64;
@external("slipstream", "view_scan")
declare function host_view_scan(prefixPtr: usize, prefixLen: i32, afterPtr: usize, afterLen: i32, bufPtr: usize, bufCap: i32): i64;
@external("slipstream", "output_list")
declare function host_output_list(outputPtr: usize, outputLen: i32, dirPtr: usize, dirLen: i32, afterPtr: usize, afterLen: i32, bufPtr: usize, bufCap: i32): i64;
@external("slipstream", "stage_write")
declare function host_stage_write(outputPtr: usize, outputLen: i32, pathPtr: usize, pathLen: i32, dataPtr: usize, dataLen: i32, mode: i32): i32;
@external("slipstream", "stage_remove")
declare function host_stage_remove(outputPtr: usize, outputLen: i32, pathPtr: usize, pathLen: i32): i32;
@external("slipstream", "hook_request")
declare function host_hook_request(namePtr: usize, nameLen: i32): i32;
@external("slipstream", "report_error")
declare function host_report_error(msgPtr: usize, msgLen: i32): i32;

// ---- Constants ----

/** The ABI version this SDK speaks. */
export const ABI_VERSION: i32 = 1;

// Status codes (ABI section 7).
export const OK: i32 = 0;
export const UNCHANGED: i32 = 1;
export const ERR_MEMORY: i32 = -1;
export const ERR_INVALID: i32 = -2;
export const ERR_NOT_FOUND: i32 = -3;
export const ERR_DENIED: i32 = -4;
export const ERR_LIMIT: i32 = -5;
export const ERR_STATE: i32 = -6;
export const ERR_IO: i32 = -7;

// Call kinds, record ops and directory entry types (ABI section 4).
export const KIND_APPLY: u8 = 1;
export const KIND_RENDER: u8 = 2;
export const OP_PUT: u8 = 1;
export const OP_DELETE: u8 = 2;
export const OP_PURGE: u8 = 3;
export const DIRENT_FILE: u8 = 1;
export const DIRENT_DIR: u8 = 2;
export const DIRENT_SYMLINK: u8 = 3;
export const DIRENT_OTHER: u8 = 4;

// Log levels (log/slog's).
export const LEVEL_DEBUG: i32 = -4;
export const LEVEL_INFO: i32 = 0;
export const LEVEL_WARN: i32 = 4;
export const LEVEL_ERROR: i32 = 8;

// Sizes and limits (ABI sections 4 and 6).
export const HEADER_SIZE: i32 = 20;
export const RECORD_HEADER_SIZE: i32 = 20;
export const PAGE_HEADER_SIZE: i32 = 8;
export const DIRENT_HEADER_SIZE: i32 = 4;
export const MAX_VERSION_LEN: i32 = 16;
export const MAX_PATH_LEN: i32 = 4096;
export const MAX_PATH_DEPTH: i32 = 32;
export const MAX_NAME_LEN: i32 = 255;

// ---- Exports every plugin re-exports ----

/** The slipstream_abi_version export: a plugin re-exports it. */
export function slipstream_abi_version(): i32 {
  return ABI_VERSION;
}

/**
 * The abort handler (asc --use abort=…/slipstream_abort): an assertion,
 * a bounds check or an out-of-memory reports its message and ends the call
 * with a trap, which fails it.
 */
export function slipstream_abort(message: string | null, fileName: string | null, line: u32, column: u32): void {
  let msg = message !== null ? message : "abort";
  if (fileName !== null) msg += " at " + fileName + ":" + line.toString() + ":" + column.toString();
  const b = utf8(msg);
  host_report_error(b.dataStart, b.length);
  unreachable();
}

// ---- Bytes and strings ----

/** The UTF-8 bytes of s. */
export function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s, false));
}

/** Whether b is valid UTF-8 (it decodes and encodes back to itself). */
export function isUTF8(b: Uint8Array): bool {
  const back = utf8(str(b));
  if (back.length != b.length) return false;
  return memory.compare(back.dataStart, b.dataStart, b.length) == 0;
}

/** Decodes UTF-8 bytes (invalid sequences become U+FFFD). */
export function str(b: Uint8Array): string {
  return String.UTF8.decodeUnsafe(b.dataStart, b.length, false);
}

function copyOut(ptr: usize, len: i32): Uint8Array {
  const out = new Uint8Array(len);
  memory.copy(out.dataStart, ptr, len);
  return out;
}

// callBuffer calls fn under the output-buffer convention (ABI section 3):
// it retries with a buffer of the announced length until the result fits.
// A negative result is returned as the status with a null buffer.
class BufferResult {
  status: i32 = OK;
  data: Uint8Array | null = null;
}

let scratch = new Uint8Array(4096);

function callBuffer(fn: (buf: usize, cap: i32) => i64): BufferResult {
  const r = new BufferResult();
  while (true) {
    const n = fn(scratch.dataStart, scratch.length);
    if (n < 0) {
      r.status = <i32>n;
      return r;
    }
    if (n <= <i64>scratch.length) {
      r.data = copyOut(scratch.dataStart, <i32>n);
      return r;
    }
    scratch = new Uint8Array(<i32>n);
  }
}

// Arguments of the closures callBuffer runs (AssemblyScript closures cannot
// capture locals).
let argA: Uint8Array = new Uint8Array(0);
let argB: Uint8Array = new Uint8Array(0);
let argC: Uint8Array = new Uint8Array(0);

// ---- Records and the call input (ABI section 4) ----

/** An update of a batch, or an entry of the view. */
export class Record {
  op: u8 = OP_PUT;
  version: Uint8Array = new Uint8Array(0);
  /** The key's bytes, exactly as in the bucket. */
  keyBytes: Uint8Array = new Uint8Array(0);
  value: Uint8Array = new Uint8Array(0);
  revision: u64 = 0;

  /** The key as a string (decoded from UTF-8). */
  get key(): string {
    return str(this.keyBytes);
  }

  /** The value as a string (decoded from UTF-8). */
  get text(): string {
    return str(this.value);
  }

  /** True for a delete or a purge. */
  isRemoval(): bool {
    return this.op == OP_DELETE || this.op == OP_PURGE;
  }
}

/** Parses the record at p (in data) into r and returns its size. */
function parseRecord(data: Uint8Array, p: i32, r: Record): i32 {
  if (p + RECORD_HEADER_SIZE > data.length) return -1;
  const base = data.dataStart + <usize>p;
  const v = <i32>load<u8>(base, 1);
  const k = <i32>load<u32>(base, 4);
  const l = <i32>load<u32>(base, 8);
  const size = RECORD_HEADER_SIZE + v + k + l;
  if (v > MAX_VERSION_LEN || k < 0 || l < 0 || size < 0 || p + size > data.length) return -1;
  r.op = load<u8>(base);
  r.revision = load<u64>(base, 12);
  r.version = data.slice(p + RECORD_HEADER_SIZE, p + RECORD_HEADER_SIZE + v);
  r.keyBytes = data.slice(p + RECORD_HEADER_SIZE + v, p + RECORD_HEADER_SIZE + v + k);
  r.value = data.slice(p + RECORD_HEADER_SIZE + v + k, p + size);
  return size;
}

/** A call's input: the cursor it reaches, the watch, the batch. */
export class Input {
  kind: u8 = KIND_APPLY;
  cursorRevision: u64 = 0;
  cursorVersion: Uint8Array = new Uint8Array(0);
  watch: string = "";
  updates: Array<Record> = new Array<Record>();
  /** Non-zero when the input could not be read; fail with it. */
  status: i32 = OK;

  isRender(): bool {
    return this.kind == KIND_RENDER;
  }
}

/** Reads and parses the call input of inputLen bytes (ABI section 4). */
export function readInput(inputLen: i32): Input {
  const inp = new Input();
  const data = new Uint8Array(inputLen);
  const n = host_input_read(data.dataStart, inputLen);
  if (n < 0 || n != <i64>inputLen || inputLen < HEADER_SIZE) {
    inp.status = n < 0 ? <i32>n : ERR_INVALID;
    return inp;
  }
  const base = data.dataStart;
  inp.kind = load<u8>(base);
  const v = <i32>load<u8>(base, 1);
  const w = <i32>load<u32>(base, 4);
  const count = <i32>load<u32>(base, 8);
  inp.cursorRevision = load<u64>(base, 12);
  if (v > MAX_VERSION_LEN || w < 0 || HEADER_SIZE + v + w > inputLen) {
    inp.status = ERR_INVALID;
    return inp;
  }
  inp.cursorVersion = data.slice(HEADER_SIZE, HEADER_SIZE + v);
  inp.watch = str(data.subarray(HEADER_SIZE + v, HEADER_SIZE + v + w));
  let p = HEADER_SIZE + v + w;
  for (let i = 0; i < count; i++) {
    const r = new Record();
    const size = parseRecord(data, p, r);
    if (size < 0) {
      inp.status = ERR_INVALID;
      return inp;
    }
    inp.updates.push(r);
    p += size;
  }
  return inp;
}

// ---- Configuration, view, outputs ----

/** The plugin configuration's value for key, or null when it is not set. */
export function config(key: string): string | null {
  argA = utf8(key);
  const r = callBuffer((buf: usize, cap: i32): i64 => host_config_get(argA.dataStart, argA.length, buf, cap));
  if (r.status != OK) return null;
  return str(r.data!);
}

/**
 * The names of every key of the plugin configuration, sorted, or null on an
 * error (see lastStatus). Works in the initializer, like config.
 */
export function configKeys(): string[] | null {
  const r = callBuffer((buf: usize, cap: i32): i64 => host_config_keys(buf, cap));
  lastStatus = r.status;
  if (r.status != OK) return null;
  const b = r.data!;
  const keys = new Array<string>();
  let start = 0;
  for (let i = 0; i < b.length; i++) {
    if (b[i] != 0) continue;
    keys.push(String.UTF8.decodeUnsafe(b.dataStart + start, i - start, false));
    start = i + 1;
  }
  return keys;
}

/**
 * Refuses the module unless every key of the plugin configuration is one of
 * known, the keys the plugin reads: it reports an error naming the others
 * and known, prefixed by who ("files-as: unknown configuration key "prefx";
 * this plugin reads: hook, prefix"), and traps. Call it from the entry
 * file's top level, which runs in _initialize (asc --exportStart): the host
 * then refuses to load the module with that message, so that slipagent
 * validate reports a misspelt setting.
 */
export function refuseUnknownConfigKeys(who: string, known: string[]): void {
  const keys = configKeys();
  if (keys === null) {
    fail(who + ": config_keys: " + statusName(lastStatus));
    unreachable();
  }
  const unknown = new Array<string>();
  for (let i = 0; i < keys!.length; i++) {
    if (!known.includes(keys![i])) unknown.push("\"" + keys![i] + "\"");
  }
  if (unknown.length == 0) return;
  const what = unknown.length > 1 ? ": unknown configuration keys " : ": unknown configuration key ";
  fail(who + what + unknown.join(", ") + "; this plugin reads: " + known.slice(0).sort().join(", "));
  unreachable();
}

/** The view's entry for key, or null when it is absent (or on an error, in status). */
export function viewGet(key: string): Record | null {
  argA = utf8(key);
  const r = callBuffer((buf: usize, cap: i32): i64 => host_view_get(argA.dataStart, argA.length, buf, cap));
  lastStatus = r.status;
  if (r.status != OK) return null;
  const rec = new Record();
  if (parseRecord(r.data!, 0, rec) < 0) {
    lastStatus = ERR_INVALID;
    return null;
  }
  return rec;
}

/**
 * The status of the last viewGet, or of the page read that made a
 * Scanner's or a Lister's next() return null: OK at the end, otherwise the
 * error to fail with (ERR_NOT_FOUND for viewGet: no such key).
 */
export let lastStatus: i32 = OK;

/** Reads the view's entries under a prefix in key order, page by page. */
export class Scanner {
  private prefix: Uint8Array;
  private after: Uint8Array = new Uint8Array(0);
  private page: Array<Record> = new Array<Record>();
  private i: i32 = 0;
  private more: bool = true;

  constructor(prefix: string) {
    this.prefix = utf8(prefix);
  }

  /** The next entry, or null at the end or on an error (see lastStatus). */
  next(): Record | null {
    while (this.i >= this.page.length) {
      if (!this.more) {
        lastStatus = OK;
        return null;
      }
      argA = this.prefix;
      argB = this.after;
      const r = callBuffer((buf: usize, cap: i32): i64 => host_view_scan(argA.dataStart, argA.length, argB.dataStart, argB.length, buf, cap));
      if (r.status != OK) {
        lastStatus = r.status;
        return null;
      }
      const data = r.data!;
      const count = <i32>load<u32>(data.dataStart);
      this.more = (load<u32>(data.dataStart, 4) & 1) != 0;
      this.page = new Array<Record>();
      this.i = 0;
      let p = PAGE_HEADER_SIZE;
      for (let j = 0; j < count; j++) {
        const rec = new Record();
        const size = parseRecord(data, p, rec);
        if (size < 0) {
          lastStatus = ERR_INVALID;
          return null;
        }
        this.page.push(rec);
        p += size;
      }
      if (count > 0) this.after = this.page[count - 1].keyBytes;
    }
    return this.page[this.i++];
  }
}

/** A directory entry of an output (ABI section 4). */
export class DirEntry {
  type: u8 = DIRENT_FILE;
  name: string = "";
  isDir(): bool {
    return this.type == DIRENT_DIR;
  }
}

/** Lists a directory of an output ("" for the output itself), page by page. */
export class Lister {
  private output: Uint8Array;
  private dir: Uint8Array;
  private after: Uint8Array = new Uint8Array(0);
  private page: Array<DirEntry> = new Array<DirEntry>();
  private i: i32 = 0;
  private more: bool = true;

  constructor(output: string, dir: string) {
    this.output = utf8(output);
    this.dir = utf8(dir);
  }

  /** The next entry, or null at the end or on an error (see lastStatus). */
  next(): DirEntry | null {
    while (this.i >= this.page.length) {
      if (!this.more) {
        lastStatus = OK;
        return null;
      }
      argA = this.output;
      argB = this.dir;
      argC = this.after;
      const r = callBuffer((buf: usize, cap: i32): i64 =>
        host_output_list(argA.dataStart, argA.length, argB.dataStart, argB.length, argC.dataStart, argC.length, buf, cap));
      if (r.status != OK) {
        lastStatus = r.status;
        return null;
      }
      const data = r.data!;
      const count = <i32>load<u32>(data.dataStart);
      this.more = (load<u32>(data.dataStart, 4) & 1) != 0;
      this.page = new Array<DirEntry>();
      this.i = 0;
      let p = PAGE_HEADER_SIZE;
      for (let j = 0; j < count; j++) {
        if (p + DIRENT_HEADER_SIZE > data.length) {
          lastStatus = ERR_INVALID;
          return null;
        }
        const l = <i32>load<u16>(data.dataStart + <usize>p, 2);
        if (p + DIRENT_HEADER_SIZE + l > data.length) {
          lastStatus = ERR_INVALID;
          return null;
        }
        const e = new DirEntry();
        e.type = load<u8>(data.dataStart + <usize>p);
        const name = data.slice(p + DIRENT_HEADER_SIZE, p + DIRENT_HEADER_SIZE + l);
        e.name = str(name);
        this.page.push(e);
        if (j == count - 1) this.after = name;
        p += DIRENT_HEADER_SIZE + l;
      }
    }
    return this.page[this.i++];
  }
}

// ---- Staging, hooks, logs, errors ----

/**
 * Stages data as the file path of output; mode 0 is the output's mode.
 * Returns OK (staged), UNCHANGED (already so) or an error status.
 */
export function writeFile(output: string, path: string, data: Uint8Array, mode: i32 = 0): i32 {
  const o = utf8(output);
  const p = utf8(path);
  return host_stage_write(o.dataStart, o.length, p.dataStart, p.length, data.dataStart, data.length, mode);
}

/** Stages the removal of the file path of output: OK, UNCHANGED (no such file) or an error. */
export function removeFile(output: string, path: string): i32 {
  const o = utf8(output);
  const p = utf8(path);
  return host_stage_remove(o.dataStart, o.length, p.dataStart, p.length);
}

/** Requests the hook name after the commit: OK or an error status. */
export function requestHook(name: string): i32 {
  const n = utf8(name);
  return host_hook_request(n.dataStart, n.length);
}

/** Writes a line to the agent's log at level (LEVEL_*). */
export function log(level: i32, msg: string): void {
  const b = utf8(msg);
  host_log(level, b.dataStart, b.length);
}

/** Reports msg as the call's error and returns 1: `return fail("…")`. */
export function fail(msg: string): i32 {
  const b = utf8(msg);
  host_report_error(b.dataStart, b.length);
  return 1;
}

/** The name of a status code, for error messages. */
export function statusName(status: i32): string {
  switch (status) {
    case OK: return "OK";
    case UNCHANGED: return "UNCHANGED";
    case ERR_MEMORY: return "ERR_MEMORY";
    case ERR_INVALID: return "ERR_INVALID";
    case ERR_NOT_FOUND: return "ERR_NOT_FOUND";
    case ERR_DENIED: return "ERR_DENIED";
    case ERR_LIMIT: return "ERR_LIMIT";
    case ERR_STATE: return "ERR_STATE";
    case ERR_IO: return "ERR_IO";
  }
  return "status " + status.toString();
}

/**
 * Checks path against the path rules of ABI section 6; returns "" when it
 * follows them, else why not (stage only paths that pass, or the call fails).
 */
export function checkPath(path: string): string {
  const b = utf8(path);
  if (b.length == 0) return "empty path";
  if (b.length > MAX_PATH_LEN) return "longer than " + MAX_PATH_LEN.toString() + " bytes";
  const parts = path.split("/");
  if (parts.length > MAX_PATH_DEPTH) return "more than " + MAX_PATH_DEPTH.toString() + " components";
  for (let i = 0; i < parts.length; i++) {
    const c = parts[i];
    if (c.length == 0) return "empty component (a leading, trailing or double /)";
    if (c == "." || c == "..") return "component " + c;
    if (String.UTF8.byteLength(c, false) > MAX_NAME_LEN) return "component longer than " + MAX_NAME_LEN.toString() + " bytes";
    if (c.startsWith(".slipstream-")) return "component starting with .slipstream- (reserved for staging)";
  }
  for (let i = 0; i < path.length; i++) {
    const ch = path.charCodeAt(i);
    if (ch < 0x20 || ch == 0x7f) return "control character";
  }
  return "";
}
