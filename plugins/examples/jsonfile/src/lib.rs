//! jsonfile: an apply plugin in Rust that renders every key under a prefix
//! into one JSON object of strings, requesting a hook when the file
//! changed. It is written on the Rust SDK (`plugins/sdk/rust`), itself
//! written from `plugins/ABI.md` alone.
//!
//! A key's name in the object is the key without the prefix; its value is
//! the key's value as a JSON string. The names come in the view's order
//! (ascending bytes), so an unchanged bucket renders the same bytes. A key
//! equal to the prefix, and a value that is not UTF-8 text, are logged and
//! left out.
//!
//! Configuration:
//!   prefix  key prefix (default: every key)
//!   output  output name (default "json")
//!   path    file to write (default "config.json")
//!   mode    the file's permission bits, octal (default, and "0": the output's)
//!   hook    hook to request when the file changed (default: none)
//! Any other key refuses the module when the host loads it.
//!
//! Build:
//!   cargo build --release --target wasm32-wasip1

use slipstream_plugin::{self as slip, Batch, Level, Plugin};

struct JsonFile {
    prefix: String,
    output: String,
    path: String,
    mode: u32,
    hook: Option<String>,
}

impl Default for JsonFile {
    fn default() -> Self {
        JsonFile {
            prefix: String::new(),
            output: "json".into(),
            path: "config.json".into(),
            mode: 0,
            hook: None,
        }
    }
}

impl Plugin for JsonFile {
    fn configure(&mut self) -> slip::Result {
        slip::check_config_keys(&["prefix", "output", "path", "mode", "hook"]).map_err(|e| format!("jsonfile: {e}"))?;
        if let Some(prefix) = slip::config("prefix") {
            self.prefix = prefix;
        }
        if let Some(output) = slip::config("output") {
            self.output = output;
        }
        if let Some(path) = slip::config("path") {
            slip::check_path(&path).map_err(|why| format!("jsonfile: path {path:?}: {why}"))?;
            self.path = path;
        }
        if let Some(mode) = slip::config("mode") {
            self.mode = match u32::from_str_radix(&mode, 8) {
                Ok(m) if m <= 0o777 && mode.bytes().all(|b| b.is_ascii_digit()) => m,
                _ => return Err(format!("jsonfile: mode {mode:?} is not permission bits in octal, such as \"0640\"").into()),
            };
        }
        self.hook = slip::config("hook").filter(|h| !h.is_empty());
        Ok(())
    }

    fn apply(&mut self, batch: &Batch) -> slip::Result {
        // A batch that changes no key under the prefix cannot change the
        // file: the view is not read.
        if batch.updates.iter().any(|u| u.key.starts_with(&self.prefix)) {
            self.render(batch)
        } else {
            Ok(())
        }
    }

    fn render(&mut self, _batch: &Batch) -> slip::Result {
        let mut out = String::from("{");
        let mut first = true;
        for entry in slip::scan(&self.prefix) {
            let entry = entry?;
            let name = entry.key.strip_prefix(self.prefix.as_str()).unwrap_or_default();
            if name.is_empty() {
                slip::log(Level::Warn, &format!("jsonfile: skipping key {:?}, which is the prefix itself", entry.key));
                continue;
            }
            let value = match std::str::from_utf8(&entry.value) {
                Ok(v) => v,
                Err(_) => {
                    slip::log(Level::Warn, &format!("jsonfile: skipping key {:?}, whose value is not UTF-8 text", entry.key));
                    continue;
                }
            };
            out.push_str(if first { "\n  " } else { ",\n  " });
            first = false;
            quote(&mut out, name);
            out.push_str(": ");
            quote(&mut out, value);
        }
        out.push_str(if first { "}\n" } else { "\n}\n" });
        if slip::write_file(&self.output, &self.path, out.as_bytes(), self.mode)? {
            if let Some(hook) = &self.hook {
                slip::request_hook(hook)?;
            }
        }
        Ok(())
    }
}

/// Appends s to out as a JSON string (RFC 8259): quotes, backslashes and
/// control characters escaped, everything else as it is.
fn quote(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

slip::export_plugin!(JsonFile::default());
