//! Rust SDK for slipstream apply plugins: plugin ABI version 1
//! (`plugins/ABI.md`, from which it was written), with nothing but `std`.
//!
//! A plugin is a `cdylib` crate that implements [`Plugin`] and exports it
//! with [`export_plugin!`]:
//!
//! ```no_run
//! use slipstream_plugin::{self as slip, Batch, Plugin};
//!
//! #[derive(Default)]
//! struct Files;
//!
//! impl Plugin for Files {
//!     fn configure(&mut self) -> slip::Result {
//!         slip::check_config_keys(&[])
//!     }
//!
//!     fn render(&mut self, _batch: &Batch) -> slip::Result {
//!         for entry in slip::scan("app.") {
//!             let entry = entry?;
//!             slip::write_file("conf", &entry.key, &entry.value, 0)?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! slip::export_plugin!(Files::default());
//! ```
//!
//! Build it as a WASI preview1 module (`wasm32-wasip1`, or `wasm32-wasi`
//! before Rust 1.78):
//!
//! ```sh
//! cargo build --release --target wasm32-wasip1
//! ```
//!
//! The macro exports the ABI's three functions. `slipstream_abi_version`,
//! which the host calls once per instance before any other, also creates
//! the plugin and runs [`Plugin::configure`], so that a bad configuration
//! refuses the module when the host loads it, and fails `slipagent
//! validate` (`_initialize` is not the SDK's: since Rust 1.100 the
//! toolchain links its own into a WASI `cdylib`). A call's error is
//! reported to the host and fails the call; a panic is reported too, then
//! traps (Rust on WebAssembly aborts on panic), and the host recycles the
//! instance.
//!
//! Every host function is a function of this crate ([`scan`],
//! [`write_file`], …). A refused request (an error from [`write_file`],
//! [`remove_file`] or [`request_hook`]) fails the call whatever the plugin
//! returns, so pass it on with `?`.

mod codec;
mod sys;

use std::cell::RefCell;
use std::fmt;

/// The ABI version this SDK speaks.
pub const ABI_VERSION: i32 = 1;

/// The result of a plugin's methods: any error, reported to the host as
/// the call's failure.
pub type Result<T = (), E = Box<dyn std::error::Error>> = std::result::Result<T, E>;

/// A status code of ABI section 7.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Status(pub i32);

impl Status {
    pub const OK: Status = Status(0);
    pub const UNCHANGED: Status = Status(1);
    pub const ERR_MEMORY: Status = Status(-1);
    pub const ERR_INVALID: Status = Status(-2);
    pub const ERR_NOT_FOUND: Status = Status(-3);
    pub const ERR_DENIED: Status = Status(-4);
    pub const ERR_LIMIT: Status = Status(-5);
    pub const ERR_STATE: Status = Status(-6);
    pub const ERR_IO: Status = Status(-7);

    /// The status's name in ABI.md.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "OK",
            1 => "UNCHANGED",
            -1 => "ERR_MEMORY",
            -2 => "ERR_INVALID",
            -3 => "ERR_NOT_FOUND",
            -4 => "ERR_DENIED",
            -5 => "ERR_LIMIT",
            -6 => "ERR_STATE",
            -7 => "ERR_IO",
            _ => return None,
        })
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "status {}", self.0),
        }
    }
}

/// A host function's error status, with the function that returned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostError {
    pub call: &'static str,
    pub status: Status,
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}: {}", self.call, self.status)
    }
}

impl std::error::Error for HostError {}

/// What an update does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Put,
    Delete,
    /// A delete that also dropped the key's history: treat it as a delete.
    Purge,
}

/// The position a watch reaches once the call succeeds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    /// The bucket's revision (for NATS, the stream sequence); 0 when
    /// unknown.
    pub revision: u64,
    /// The backend's opaque version bytes (at most 16).
    pub version: Vec<u8>,
}

/// One change of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Update {
    pub op: Op,
    pub key: String,
    /// Empty for a delete or a purge; a put may have an empty value too.
    pub value: Vec<u8>,
    pub revision: u64,
    pub version: Vec<u8>,
}

impl Update {
    fn into_entry(self) -> Entry {
        Entry {
            key: self.key,
            value: self.value,
            revision: self.revision,
            version: self.version,
        }
    }
}

/// A live key of the view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub revision: u64,
    pub version: Vec<u8>,
}

/// Whether a call handles an incremental batch or rewrites every output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Apply,
    Render,
}

/// A call's input: the watch, the cursor the call reaches and, for
/// [`Kind::Apply`], the updates in the order they happened (a key may
/// appear more than once). The view already holds them.
#[derive(Clone, Debug)]
pub struct Batch {
    pub kind: Kind,
    pub watch: String,
    pub cursor: Cursor,
    pub updates: Vec<Update>,
}

/// An apply plugin. The host reuses one instance across calls, one call at
/// a time, and replaces it after a trap: keep state only as a cache.
pub trait Plugin {
    /// Checks the configuration when the host loads the module
    /// ([`config`]); an error refuses the module, and `slipagent validate`
    /// reports it. Call [`check_config_keys`] with every key the plugin
    /// reads, so that a misspelt setting is an error.
    fn configure(&mut self) -> Result {
        Ok(())
    }

    /// Makes the outputs reflect the whole view: called after an initial
    /// sync, a resync, or a change of the plugin or its configuration. The
    /// view may be larger than memory: read it with [`scan`].
    fn render(&mut self, batch: &Batch) -> Result;

    /// Handles an incremental batch. The default renders everything again,
    /// which is always right; implement it to do less.
    fn apply(&mut self, batch: &Batch) -> Result {
        self.render(batch)
    }
}

/// Exports a [`Plugin`]: `export_plugin!(MyPlugin::default())` makes the
/// module's `slipstream_abi_version`, `slipstream_apply` and
/// `slipstream_render`. The expression is evaluated once per instance, when
/// the host first calls `slipstream_abi_version` (right after
/// instantiating it, ABI.md section 1), and again in each instance the host
/// makes to replace one that trapped.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:expr) => {
        fn __slipstream_make_plugin() -> ::std::boxed::Box<dyn $crate::Plugin> {
            ::std::boxed::Box::new($plugin)
        }

        #[no_mangle]
        pub extern "C" fn slipstream_abi_version() -> i32 {
            $crate::__private::initialize(__slipstream_make_plugin);
            $crate::ABI_VERSION
        }

        #[no_mangle]
        pub extern "C" fn slipstream_apply(input_len: i32) -> i32 {
            $crate::__private::call(__slipstream_make_plugin, $crate::Kind::Apply, input_len)
        }

        #[no_mangle]
        pub extern "C" fn slipstream_render(input_len: i32) -> i32 {
            $crate::__private::call(__slipstream_make_plugin, $crate::Kind::Render, input_len)
        }
    };
}

/// What [`export_plugin!`] expands to calls; not part of the API.
#[doc(hidden)]
pub mod __private {
    use super::*;

    thread_local! {
        static PLUGIN: RefCell<Option<Box<dyn Plugin>>> = RefCell::new(None);
    }

    /// Creates the instance's plugin and checks its configuration, once:
    /// a refusal is reported, then exits, which refuses the module (ABI
    /// section 1). The constructors of the module's C code, if any, are
    /// the toolchain's `_initialize`'s to run, before this.
    pub fn initialize(make: fn() -> Box<dyn Plugin>) {
        if PLUGIN.with(|p| p.borrow().is_some()) {
            return;
        }
        std::panic::set_hook(Box::new(|info| report_error(&info.to_string())));
        let mut plugin = make();
        if let Err(err) = plugin.configure() {
            report_error(&err.to_string());
            std::process::exit(1);
        }
        PLUGIN.with(|p| *p.borrow_mut() = Some(plugin));
    }

    pub fn call(make: fn() -> Box<dyn Plugin>, kind: Kind, input_len: i32) -> i32 {
        // The host has called slipstream_abi_version; one that did not
        // gets the same plugin, made now.
        initialize(make);
        let result = read_input(kind, input_len).and_then(|batch| {
            PLUGIN.with(|p| match p.borrow_mut().as_mut() {
                None => unreachable!("initialize made the plugin"),
                Some(plugin) => match kind {
                    Kind::Apply => plugin.apply(&batch),
                    Kind::Render => plugin.render(&batch),
                },
            })
        });
        match result {
            Ok(()) => 0,
            Err(err) => {
                report_error(&err.to_string());
                1
            }
        }
    }

    fn read_input(kind: Kind, input_len: i32) -> Result<Batch> {
        let mut buf = vec![0; input_len as u32 as usize];
        let n = fetch("input_read", &mut buf, |p, cap| unsafe { sys::input_read(p, cap) })?;
        let (render, watch, cursor, updates) = codec::decode_input(&buf[..n])
            .map_err(|status| HostError { call: "input_read", status })?;
        if render != (kind == Kind::Render) {
            return Err(format!("input_read: the input is for a {} call", if render { "render" } else { "apply" }).into());
        }
        Ok(Batch { kind, watch, cursor, updates })
    }
}

/// Calls a host function under the output-buffer convention (ABI section
/// 3), growing buf until the result fits; returns the result's length. A
/// host whose answer keeps growing, or is out of range, is `ERR_IO` after a
/// few tries, as in the Go SDK.
fn fetch(
    call: &'static str,
    buf: &mut Vec<u8>,
    mut f: impl FnMut(*mut u8, i32) -> i64,
) -> std::result::Result<usize, HostError> {
    let io = HostError { call, status: Status::ERR_IO };
    for _ in 0..4 {
        let n = f(buf.as_mut_ptr(), buf.len() as i32);
        if n < 0 {
            return Err(i32::try_from(n).map_or(io, |s| HostError { call, status: Status(s) }));
        }
        let n = usize::try_from(n).map_err(|_| io)?;
        if n <= buf.len() {
            return Ok(n);
        }
        buf.resize(n, 0);
    }
    Err(io)
}

fn status(call: &'static str, s: i32) -> std::result::Result<bool, HostError> {
    match Status(s) {
        Status::OK => Ok(true),
        Status::UNCHANGED => Ok(false),
        status => Err(HostError { call, status }),
    }
}

/// A log level of Go's log/slog, which the agent logs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug = -4,
    Info = 0,
    Warn = 4,
    Error = 8,
}

/// Writes a line to the agent's log (rate-limited by the host).
pub fn log(level: Level, msg: &str) {
    unsafe { sys::log(level as i32, msg.as_ptr(), msg.len() as i32) };
}

/// Sets the message the host reports when the call fails. The SDK calls it
/// for an error a plugin's method returns, and for a panic.
pub fn report_error(msg: &str) {
    unsafe { sys::report_error(msg.as_ptr(), msg.len() as i32) };
}

/// The value of a key of the plugin's configuration, if it is set.
pub fn config(key: &str) -> Option<String> {
    let mut buf = vec![0; 256];
    let n = fetch("config_get", &mut buf, |p, cap| unsafe {
        sys::config_get(key.as_ptr(), key.len() as i32, p, cap)
    })
    .ok()?;
    buf.truncate(n);
    Some(String::from_utf8_lossy(&buf).into_owned())
}

/// The names of every key of the plugin's configuration, sorted.
pub fn config_keys() -> std::result::Result<Vec<String>, HostError> {
    let mut buf = vec![0; 256];
    let n = fetch("config_keys", &mut buf, |p, cap| unsafe { sys::config_keys(p, cap) })?;
    match buf[..n].split_last() {
        None => Ok(Vec::new()),
        Some((0, names)) => Ok(names
            .split(|&b| b == 0)
            .map(|name| String::from_utf8_lossy(name).into_owned())
            .collect()),
        Some(_) => Err(HostError { call: "config_keys", status: Status::ERR_INVALID }),
    }
}

/// Fails unless every key of the plugin's configuration is one of known,
/// the keys the plugin reads, naming the others (with the known key each
/// was likely meant to be) and known, as the Go SDK does:
///
/// `unknown configuration key "prefx" (did you mean "prefix"?); this plugin reads: hook, prefix`
///
/// Call it from [`Plugin::configure`].
pub fn check_config_keys(known: &[&str]) -> Result {
    let mut known = known.to_vec();
    known.sort_unstable();
    known.dedup();
    let mut unknown = Vec::new();
    for key in config_keys()? {
        if known.binary_search(&key.as_str()).is_ok() {
            continue;
        }
        let mut u = format!("{key:?}");
        if let Some(s) = closest(&key, &known) {
            u += &format!(" (did you mean {s:?}?)");
        }
        unknown.push(u);
    }
    if unknown.is_empty() {
        return Ok(());
    }
    let what = if unknown.len() > 1 { "unknown configuration keys" } else { "unknown configuration key" };
    let reads = if known.is_empty() {
        "this plugin reads no configuration".to_string()
    } else {
        format!("this plugin reads: {}", known.join(", "))
    };
    Err(format!("{what} {}; {reads}", unknown.join(", ")).into())
}

/// The known key nearest to key by edit distance, if it is at most 2 edits
/// away and fewer edits than key has characters (so that "x" does not
/// suggest "a"); ties go to the first.
fn closest<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    let runes = key.chars().count();
    let mut best = None;
    let mut best_dist = 3;
    for &k in known {
        let d = levenshtein(key, k);
        if d < best_dist && d < runes {
            best = Some(k);
            best_dist = d;
        }
    }
    best
}

/// The edit distance between a and b, in characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let next = (diag + usize::from(ca != cb)).min(row[j] + 1).min(row[j + 1] + 1);
            diag = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

/// The view's entry for key, if the key is live.
pub fn get(key: &str) -> std::result::Result<Option<Entry>, HostError> {
    let mut buf = vec![0; 1024];
    let n = match fetch("view_get", &mut buf, |p, cap| unsafe {
        sys::view_get(key.as_ptr(), key.len() as i32, p, cap)
    }) {
        Ok(n) => n,
        Err(HostError { status: Status::ERR_NOT_FOUND, .. }) => return Ok(None),
        Err(err) => return Err(err),
    };
    codec::decode_entry(&buf[..n])
        .map(Some)
        .map_err(|status| HostError { call: "view_get", status })
}

/// The size of the first page buffer of [`scan`] and [`read_dir`]: the
/// host bounds a page to about 256 KiB once it holds one item.
const PAGE_BUF: usize = 256 << 10;

/// A paged reader of the host: the items of the current page, where the
/// next page starts, and whether there is one.
struct Pager<T> {
    call: &'static str,
    buf: Vec<u8>,
    page: std::vec::IntoIter<T>,
    after: Vec<u8>,
    more: bool,
}

impl<T> Pager<T> {
    fn new(call: &'static str) -> Self {
        Pager {
            call,
            buf: vec![0; PAGE_BUF],
            page: Vec::new().into_iter(),
            after: Vec::new(),
            more: true,
        }
    }

    /// The next item: from the current page, else from the page fetch
    /// reads (its length), decode parses (whether more follow) and last
    /// names the last item of (the next page's start).
    fn next(
        &mut self,
        fetch_page: impl FnMut(&[u8], *mut u8, i32) -> i64,
        decode: fn(&[u8], &mut Vec<T>) -> std::result::Result<bool, Status>,
        last: fn(&T) -> &[u8],
    ) -> Option<std::result::Result<T, HostError>> {
        let mut fetch_page = fetch_page;
        loop {
            if let Some(item) = self.page.next() {
                return Some(Ok(item));
            }
            if !self.more {
                return None;
            }
            let after = std::mem::take(&mut self.after);
            let page = fetch(self.call, &mut self.buf, |p, cap| fetch_page(&after, p, cap))
                .and_then(|n| {
                    let mut items = Vec::new();
                    let more = decode(&self.buf[..n], &mut items)
                        .map_err(|status| HostError { call: self.call, status })?;
                    Ok((items, more))
                });
            match page {
                Ok((items, true)) if items.is_empty() => {
                    // A page with nothing in it that says more follow would
                    // be asked for again and again.
                    self.more = false;
                    return Some(Err(HostError { call: self.call, status: Status::ERR_INVALID }));
                }
                Ok((items, more)) => {
                    self.more = more;
                    self.after = items.last().map_or(after, |item| last(item).to_vec());
                    self.page = items.into_iter();
                }
                Err(err) => {
                    self.more = false;
                    return Some(Err(err));
                }
            }
        }
    }
}

/// The view's entries whose key starts with prefix ("" for all), in
/// ascending byte order of keys, read a page at a time: [`scan`]'s
/// iterator. It ends after an error.
pub struct Scan {
    prefix: String,
    pager: Pager<Entry>,
}

/// Reads the view's entries under prefix a page at a time, so that a
/// render's memory does not grow with the bucket.
pub fn scan(prefix: &str) -> Scan {
    Scan {
        prefix: prefix.to_string(),
        pager: Pager::new("view_scan"),
    }
}

impl Iterator for Scan {
    type Item = std::result::Result<Entry, HostError>;

    fn next(&mut self) -> Option<Self::Item> {
        let prefix = &self.prefix;
        self.pager.next(
            |after, p, cap| unsafe {
                sys::view_scan(prefix.as_ptr(), prefix.len() as i32, after.as_ptr(), after.len() as i32, p, cap)
            },
            codec::decode_entries,
            |e| e.key.as_bytes(),
        )
    }
}

/// The type of a directory entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    File,
    Dir,
    Symlink,
    Other,
}

/// An entry of an output directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub kind: FileType,
    /// The name's bytes, as on disk (which need not be UTF-8).
    pub name: Vec<u8>,
}

impl DirEntry {
    /// The name, if it is UTF-8 (a path that is not cannot be staged).
    pub fn name_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.name).ok()
    }
}

/// The entries of a directory of an output, sorted by name, as they were
/// when the call first listed it: [`read_dir`]'s iterator. It ends after an
/// error.
pub struct ReadDir {
    output: String,
    dir: String,
    pager: Pager<DirEntry>,
}

/// Lists the directory dir ("" for the output directory itself) of the
/// output named output, a page at a time. A directory that does not exist
/// (or did not when the call began) yields nothing, as in the Go SDK.
pub fn read_dir(output: &str, dir: &str) -> ReadDir {
    ReadDir {
        output: output.to_string(),
        dir: dir.to_string(),
        pager: Pager::new("output_list"),
    }
}

impl Iterator for ReadDir {
    type Item = std::result::Result<DirEntry, HostError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (output, dir) = (&self.output, &self.dir);
        self.pager.next(
            |after, p, cap| unsafe {
                sys::output_list(
                    output.as_ptr(),
                    output.len() as i32,
                    dir.as_ptr(),
                    dir.len() as i32,
                    after.as_ptr(),
                    after.len() as i32,
                    p,
                    cap,
                )
            },
            codec::decode_dir_entries,
            |e| &e.name,
        )
        .filter(|r| !matches!(r, Err(HostError { status: Status::ERR_NOT_FOUND, .. })))
    }
}

/// Stages data as the file path of the output named output, with the
/// permission bits mode (0: the output's mode). Returns whether anything
/// was staged: false when the file already is exactly so (request hooks
/// only when something changed).
pub fn write_file(output: &str, path: &str, data: &[u8], mode: u32) -> std::result::Result<bool, HostError> {
    let s = unsafe {
        sys::stage_write(
            output.as_ptr(),
            output.len() as i32,
            path.as_ptr(),
            path.len() as i32,
            data.as_ptr(),
            data.len() as i32,
            mode as i32,
        )
    };
    status("stage_write", s)
}

/// Stages the removal of the file path of the output named output. Returns
/// whether there was such a file.
pub fn remove_file(output: &str, path: &str) -> std::result::Result<bool, HostError> {
    let s = unsafe { sys::stage_remove(output.as_ptr(), output.len() as i32, path.as_ptr(), path.len() as i32) };
    status("stage_remove", s)
}

/// Asks the agent to run the hook name after it commits this call's
/// outputs. The hook must be declared for the plugin's watch.
pub fn request_hook(name: &str) -> std::result::Result<(), HostError> {
    let s = unsafe { sys::hook_request(name.as_ptr(), name.len() as i32) };
    status("hook_request", s).map(|_| ())
}

/// The limits of a staged path (ABI section 6).
pub const MAX_PATH_LEN: usize = 4096;
pub const MAX_PATH_DEPTH: usize = 32;
pub const MAX_NAME_LEN: usize = 255;

/// Checks path against the path rules of ABI section 6, saying why it
/// breaks them. Stage only paths that pass: a refused one fails the call.
pub fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Err("empty path".into());
    }
    if path.len() > MAX_PATH_LEN {
        return Err(format!("longer than {MAX_PATH_LEN} bytes"));
    }
    if path.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("control character".into());
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > MAX_PATH_DEPTH {
        return Err(format!("more than {MAX_PATH_DEPTH} components"));
    }
    for c in parts {
        if c.is_empty() {
            return Err("empty component (a leading, trailing or double /)".into());
        }
        if c == "." || c == ".." {
            return Err(format!("component {c}"));
        }
        if c.len() > MAX_NAME_LEN {
            return Err(format!("component longer than {MAX_NAME_LEN} bytes"));
        }
        if c.starts_with(".slipstream-") {
            return Err("component starting with .slipstream- (reserved for staging)".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_path_follows_the_abi() {
        for ok in ["a", "a/b.conf", "ünï/✓", &"x".repeat(255)] {
            assert_eq!(check_path(ok), Ok(()), "{ok:?}");
        }
        for (bad, why) in [
            ("", "empty path"),
            ("/a", "empty component"),
            ("a//b", "empty component"),
            ("a/", "empty component"),
            ("a/../b", "component .."),
            ("./a", "component ."),
            ("a\nb", "control character"),
            ("a\x7fb", "control character"),
            (".slipstream-x.tmp", "reserved for staging"),
        ] {
            let got = check_path(bad).unwrap_err();
            assert!(got.contains(why), "{bad:?}: {got:?}, want {why:?}");
        }
        assert!(check_path(&"x".repeat(256)).unwrap_err().contains("longer than 255"));
        assert!(check_path(&"a/".repeat(32).trim_end_matches('/').to_string()).is_ok());
        assert!(check_path(&"a/".repeat(33).trim_end_matches('/').to_string()).unwrap_err().contains("32 components"));
        assert!(check_path(&"a".repeat(4097)).unwrap_err().contains("4096 bytes"));
    }

    #[test]
    fn closest_suggests_as_the_go_sdk() {
        let known = ["hook", "output", "path", "prefix"];
        assert_eq!(closest("prefx", &known), Some("prefix"));
        assert_eq!(closest("hok", &known), Some("hook"));
        assert_eq!(closest("x", &known), None);
        assert_eq!(closest("templates", &known), None);
        assert_eq!(levenshtein("kitten", "sitting"), 3);
        assert_eq!(levenshtein("", "abc"), 3);
        assert_eq!(levenshtein("ü", "u"), 1);
    }

    #[test]
    fn fetch_gives_up_on_a_growing_answer() {
        let mut buf = vec![0; 4];
        let mut asked = 0;
        let err = fetch("view_get", &mut buf, |_, cap| {
            asked += 1;
            i64::from(cap) + 1
        })
        .unwrap_err();
        assert_eq!((err.status, asked), (Status::ERR_IO, 4));
        assert_eq!(fetch("view_get", &mut buf, |_, _| -3).unwrap_err().status, Status::ERR_NOT_FOUND);
        assert_eq!(fetch("view_get", &mut buf, |_, _| i64::MIN).unwrap_err().status, Status::ERR_IO);
    }

    #[test]
    fn an_empty_page_that_says_more_follow_ends_the_scan() {
        let mut pager: Pager<Entry> = Pager::new("view_scan");
        let mut pages = 0;
        let empty_with_more = [0u8, 0, 0, 0, 1, 0, 0, 0];
        let mut next = |pager: &mut Pager<Entry>| {
            pager.next(
                |_, p, _| {
                    pages += 1;
                    unsafe { std::ptr::copy_nonoverlapping(empty_with_more.as_ptr(), p, 8) };
                    8
                },
                codec::decode_entries,
                |e| e.key.as_bytes(),
            )
        };
        assert_eq!(next(&mut pager).unwrap().unwrap_err().status, Status::ERR_INVALID);
        assert!(next(&mut pager).is_none());
        assert_eq!(pages, 1);
    }

    #[test]
    fn decodes_the_abi_worked_example() {
        // ABI.md section 10.
        let input = [
            1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, b'w', //
            1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, b'a', b'h', b'i',
        ];
        let (render, watch, cursor, updates) = codec::decode_input(&input).unwrap();
        assert!(!render);
        assert_eq!(watch, "w");
        assert_eq!(cursor, Cursor { revision: 5, version: vec![] });
        assert_eq!(
            updates,
            vec![Update { op: Op::Put, key: "a".into(), value: b"hi".to_vec(), revision: 5, version: vec![] }]
        );
        // Every truncation is refused, never a panic.
        for n in 0..input.len() {
            assert_eq!(codec::decode_input(&input[..n]).unwrap_err(), Status::ERR_INVALID, "{n} bytes");
        }
        let mut huge = input;
        huge[8] = 0xff; // an update count the input cannot hold
        assert_eq!(codec::decode_input(&huge).unwrap_err(), Status::ERR_INVALID);
    }
}
