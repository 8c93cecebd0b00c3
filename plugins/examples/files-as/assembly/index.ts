// files-as: the files example in AssemblyScript, on the AssemblyScript SDK
// (plugins/sdk/assemblyscript). One file per key under a prefix, the rest of
// the key being its path; a delete removes the file; a full render writes
// every file and prunes the files no key maps to.
//
// Config: prefix (default ""), output (default "files"), mode (octal
// permission, default the output's), hook (requested when a file changed),
// prune ("true"/"false", default true). Any other key refuses the module
// when the host loads it.

import {
  Input, Lister, Record, Scanner, checkPath, config, fail, isUTF8, lastStatus, log, readInput, refuseUnknownConfigKeys,
  removeFile, requestHook, statusName, viewGet, writeFile, ERR_NOT_FOUND, LEVEL_ERROR, LEVEL_WARN, OK, UNCHANGED,
} from "../../../sdk/assemblyscript/assembly/index";

export { slipstream_abi_version } from "../../../sdk/assemblyscript/assembly/index";

// The top level runs in _initialize: a key readConfig does not read (a
// misspelt prefix, say) refuses the module when the host loads it.
refuseUnknownConfigKeys("files-as", ["prefix", "output", "mode", "hook", "prune"]);

class Config {
  prefix: string = "";
  output: string = "files";
  mode: i32 = 0;
  hook: string = "";
  prune: bool = true;
  error: string = "";
}

function readConfig(): Config {
  const c = new Config();
  const prefix = config("prefix");
  if (prefix !== null) c.prefix = prefix;
  const output = config("output");
  if (output !== null) c.output = output;
  const hook = config("hook");
  if (hook !== null) c.hook = hook;
  const mode = config("mode");
  if (mode !== null) {
    let m = 0;
    for (let i = 0; i < mode.length; i++) {
      const d = mode.charCodeAt(i) - 48;
      if (d < 0 || d > 7 || m > 0o777) {
        m = -1;
        break;
      }
      m = m * 8 + d;
    }
    if (mode.length == 0 || m < 0 || m > 0o777) c.error = "files-as: config mode \"" + mode + "\" is not an octal permission";
    c.mode = m;
  }
  const prune = config("prune");
  if (prune !== null) {
    if (prune == "true") c.prune = true;
    else if (prune == "false") c.prune = false;
    else c.error = "files-as: config prune \"" + prune + "\" is not true or false";
  }
  return c;
}

// pathOf maps a key to its file path: "" for keys outside the prefix and
// for keys that are not valid paths (logged).
function pathOf(c: Config, r: Record): string {
  if (!isUTF8(r.keyBytes)) {
    log(LEVEL_ERROR, "files-as: skipping a key that is not valid UTF-8");
    return "";
  }
  const key = r.key;
  if (!key.startsWith(c.prefix)) return "";
  const rel = key.substring(c.prefix.length);
  const why = checkPath(rel);
  if (why.length > 0) {
    log(LEVEL_ERROR, "files-as: skipping key \"" + key + "\": " + why);
    return "";
  }
  return rel;
}

function finish(c: Config, changed: bool): i32 {
  if (changed && c.hook.length > 0) {
    const st = requestHook(c.hook);
    if (st != OK) return fail("files-as: hook " + c.hook + ": " + statusName(st));
  }
  return 0;
}

export function slipstream_apply(inputLen: i32): i32 {
  const c = readConfig();
  if (c.error.length > 0) return fail(c.error);
  const input: Input = readInput(inputLen);
  if (input.status != OK) return fail("files-as: reading the input: " + statusName(input.status));
  let changed = false;
  for (let i = 0; i < input.updates.length; i++) {
    const u = input.updates[i];
    const path = pathOf(c, u);
    if (path.length == 0) continue;
    const st = u.isRemoval() ? removeFile(c.output, path) : writeFile(c.output, path, u.value, c.mode);
    if (st != OK && st != UNCHANGED) return fail("files-as: " + path + ": " + statusName(st));
    changed = changed || st == OK;
  }
  return finish(c, changed);
}

export function slipstream_render(inputLen: i32): i32 {
  const c = readConfig();
  if (c.error.length > 0) return fail(c.error);
  let changed = false;
  const scan = new Scanner(c.prefix);
  for (let e = scan.next(); e !== null; e = scan.next()) {
    const path = pathOf(c, e);
    if (path.length == 0) continue;
    const st = writeFile(c.output, path, e.value, c.mode);
    if (st != OK && st != UNCHANGED) return fail("files-as: " + path + ": " + statusName(st));
    changed = changed || st == OK;
  }
  if (lastStatus != OK) return fail("files-as: reading the view: " + statusName(lastStatus));
  if (c.prune) {
    const pruned = pruneDir(c, "");
    if (pruned < 0) return 1;
    changed = changed || pruned > 0;
  }
  return finish(c, changed);
}

// pruneDir removes the files below dir that no key maps to, asking the view
// about each file on disk. It returns 1 if it removed one, 0 if not, -1
// after reporting an error.
function pruneDir(c: Config, dir: string): i32 {
  let removed = 0;
  const list = new Lister(c.output, dir);
  for (let e = list.next(); e !== null; e = list.next()) {
    const path = dir.length == 0 ? e.name : dir + "/" + e.name;
    if (checkPath(path).length > 0) {
      log(LEVEL_WARN, "files-as: leaving " + path + ": not a path a key can map to");
      continue;
    }
    if (e.isDir()) {
      const r = pruneDir(c, path);
      if (r < 0) return r;
      removed |= r;
      continue;
    }
    if (viewGet(c.prefix + path) !== null) continue;
    if (lastStatus != ERR_NOT_FOUND) {
      fail("files-as: reading the view: " + statusName(lastStatus));
      return -1;
    }
    const st = removeFile(c.output, path);
    if (st != OK && st != UNCHANGED) {
      fail("files-as: pruning " + path + ": " + statusName(st));
      return -1;
    }
    if (st == OK) removed = 1;
  }
  if (lastStatus != OK && lastStatus != ERR_NOT_FOUND) {
    fail("files-as: listing " + (dir.length == 0 ? "the output" : dir) + ": " + statusName(lastStatus));
    return -1;
  }
  return removed;
}
