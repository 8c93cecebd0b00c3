//! The host functions of ABI section 5, as the host declares them: every
//! parameter an `i32` (a pointer is one on wasm32).

#[link(wasm_import_module = "slipstream")]
extern "C" {
    pub fn log(level: i32, msg: *const u8, msg_len: i32) -> i32;
    pub fn input_read(buf: *mut u8, cap: i32) -> i64;
    pub fn config_get(key: *const u8, key_len: i32, buf: *mut u8, cap: i32) -> i64;
    pub fn config_keys(buf: *mut u8, cap: i32) -> i64;
    pub fn view_get(key: *const u8, key_len: i32, buf: *mut u8, cap: i32) -> i64;
    pub fn view_scan(
        prefix: *const u8,
        prefix_len: i32,
        after: *const u8,
        after_len: i32,
        buf: *mut u8,
        cap: i32,
    ) -> i64;
    pub fn output_list(
        output: *const u8,
        output_len: i32,
        dir: *const u8,
        dir_len: i32,
        after: *const u8,
        after_len: i32,
        buf: *mut u8,
        cap: i32,
    ) -> i64;
    pub fn stage_write(
        output: *const u8,
        output_len: i32,
        path: *const u8,
        path_len: i32,
        data: *const u8,
        data_len: i32,
        mode: i32,
    ) -> i32;
    pub fn stage_remove(output: *const u8, output_len: i32, path: *const u8, path_len: i32) -> i32;
    pub fn hook_request(name: *const u8, name_len: i32) -> i32;
    pub fn report_error(msg: *const u8, msg_len: i32) -> i32;
}
