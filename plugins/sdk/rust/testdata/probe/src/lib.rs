//! probe: a plugin that exercises the Rust SDK for its tests. Each update
//! of an apply call is a request, by its key's first token; its value is
//! the argument, its key's rest the name of the file ("out" output) the
//! answer goes to:
//!   get.NAME = KEY       get/NAME: the view's value of KEY, or "absent"
//!   list.NAME = DIR      list/NAME: the entries of DIR, "TYPE NAME" lines
//!   remove.NAME = PATH   remove/NAME: whether PATH was there
//!   batch.NAME = _       batch/NAME: the call's kind, watch and cursor
//!   hook.NAME = HOOK     requests HOOK
//!   panic.NAME = MSG     panics with MSG
//!   fail.NAME = MSG      fails with MSG
//! A render writes scan/all: every entry of the view, "KEY=VALUE" lines.
//! The configuration key "refuse" refuses the module with its value, and
//! "panic" panics in configure with it.

use slipstream_plugin::{self as slip, Batch, FileType, Plugin};

#[derive(Default)]
struct Probe;

impl Plugin for Probe {
    fn configure(&mut self) -> slip::Result {
        if let Some(why) = slip::config("refuse") {
            return Err(why.into());
        }
        if let Some(msg) = slip::config("panic") {
            panic!("{}", msg);
        }
        slip::check_config_keys(&["panic", "refuse", "unused"])
    }

    fn apply(&mut self, batch: &Batch) -> slip::Result {
        for u in &batch.updates {
            let (op, name) = u.key.split_once('.').unwrap_or((&u.key, ""));
            let arg = String::from_utf8_lossy(&u.value).into_owned();
            let answer = match op {
                "get" => match slip::get(&arg)? {
                    Some(e) => e.value,
                    None => b"absent".to_vec(),
                },
                "list" => {
                    let mut out = String::new();
                    for e in slip::read_dir("out", &arg) {
                        let e = e?;
                        let kind = match e.kind {
                            FileType::File => "file",
                            FileType::Dir => "dir",
                            FileType::Symlink => "symlink",
                            FileType::Other => "other",
                        };
                        out += &format!("{kind} {}\n", String::from_utf8_lossy(&e.name));
                    }
                    out.into_bytes()
                }
                "remove" => slip::remove_file("out", &arg)?.to_string().into_bytes(),
                "batch" => format!("{:?} {} {} {:?} {}", batch.kind, batch.watch, batch.cursor.revision, batch.cursor.version, batch.updates.len()).into_bytes(),
                "hook" => {
                    slip::request_hook(&arg)?;
                    continue;
                }
                "panic" => panic!("{}", arg),
                "fail" => return Err(arg.into()),
                _ => return Err(format!("probe: unknown request {:?}", u.key).into()),
            };
            slip::write_file("out", &format!("{op}/{name}"), &answer, 0)?;
        }
        Ok(())
    }

    fn render(&mut self, _batch: &Batch) -> slip::Result {
        let mut out = Vec::new();
        for e in slip::scan("") {
            let e = e?;
            out.extend_from_slice(e.key.as_bytes());
            out.push(b'=');
            out.extend_from_slice(&e.value);
            out.push(b'\n');
        }
        slip::write_file("out", "scan/all", &out, 0)?;
        Ok(())
    }
}

slip::export_plugin!(Probe);
