/*
 * slipstream.h: the slipstream apply plugin ABI, version 1, for C.
 * Everything here follows plugins/ABI.md; read that first.
 *
 * Build a plugin as a WASI preview1 reactor:
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all \
 *         -o plugin.wasm plugin.c
 */
#ifndef SLIPSTREAM_H
#define SLIPSTREAM_H

#include <stdint.h>

#define SLIP_ABI_VERSION 1

#define SLIP_IMPORT(name) __attribute__((import_module("slipstream"), import_name(name)))
#define SLIP_EXPORT(name) __attribute__((export_name(name)))

/* Status codes (ABI.md section 7). i64 functions return them negated. */
enum {
	SLIP_OK = 0,
	SLIP_UNCHANGED = 1,
	SLIP_ERR_MEMORY = -1,
	SLIP_ERR_INVALID = -2,
	SLIP_ERR_NOT_FOUND = -3,
	SLIP_ERR_DENIED = -4,
	SLIP_ERR_LIMIT = -5,
	SLIP_ERR_STATE = -6,
	SLIP_ERR_IO = -7,
};

/* Log levels (log/slog values). */
enum { SLIP_DEBUG = -4, SLIP_INFO = 0, SLIP_WARN = 4, SLIP_ERROR = 8 };

/* Call kinds, record ops, directory entry types, page flags. */
enum { SLIP_KIND_APPLY = 1, SLIP_KIND_RENDER = 2 };
enum { SLIP_OP_PUT = 1, SLIP_OP_DELETE = 2, SLIP_OP_PURGE = 3 };
enum { SLIP_TYPE_FILE = 1, SLIP_TYPE_DIR = 2, SLIP_TYPE_SYMLINK = 3, SLIP_TYPE_OTHER = 4 };
enum { SLIP_PAGE_MORE = 1 };

#define SLIP_HEADER_SIZE 20
#define SLIP_RECORD_HEADER_SIZE 20
#define SLIP_PAGE_HEADER_SIZE 8
#define SLIP_DIRENT_HEADER_SIZE 4
#define SLIP_MAX_VERSION_LEN 16

/* Path rules (ABI.md section 6): at most SLIP_MAX_PATH_LEN bytes and
 * SLIP_MAX_PATH_DEPTH components of at most SLIP_MAX_NAME_LEN bytes each. */
#define SLIP_MAX_PATH_LEN 4096
#define SLIP_MAX_PATH_DEPTH 32
#define SLIP_MAX_NAME_LEN 255

/* Host functions (ABI.md section 5). */
SLIP_IMPORT("log") int32_t slip_log(int32_t level, const void *msg, uint32_t msg_len);
SLIP_IMPORT("input_read") int64_t slip_input_read(void *buf, uint32_t buf_cap);
SLIP_IMPORT("config_get") int64_t slip_config_get(const void *key, uint32_t key_len, void *buf, uint32_t buf_cap);
SLIP_IMPORT("config_keys") int64_t slip_config_keys(void *buf, uint32_t buf_cap);
SLIP_IMPORT("view_get") int64_t slip_view_get(const void *key, uint32_t key_len, void *buf, uint32_t buf_cap);
SLIP_IMPORT("view_scan") int64_t slip_view_scan(const void *prefix, uint32_t prefix_len, const void *after, uint32_t after_len, void *buf, uint32_t buf_cap);
SLIP_IMPORT("output_list") int64_t slip_output_list(const void *output, uint32_t output_len, const void *dir, uint32_t dir_len, const void *after, uint32_t after_len, void *buf, uint32_t buf_cap);
SLIP_IMPORT("stage_write") int32_t slip_stage_write(const void *output, uint32_t output_len, const void *path, uint32_t path_len, const void *data, uint32_t data_len, uint32_t mode);
SLIP_IMPORT("stage_remove") int32_t slip_stage_remove(const void *output, uint32_t output_len, const void *path, uint32_t path_len);
SLIP_IMPORT("hook_request") int32_t slip_hook_request(const void *name, uint32_t name_len);
SLIP_IMPORT("report_error") int32_t slip_report_error(const void *msg, uint32_t msg_len);

/* Little-endian, unaligned readers. */
static inline uint32_t slip_u32(const uint8_t *p) {
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t slip_u64(const uint8_t *p) {
	return (uint64_t)slip_u32(p) | (uint64_t)slip_u32(p + 4) << 32;
}

/* A decoded call input header; pointers alias the input buffer. */
typedef struct {
	uint8_t kind;
	uint64_t cursor_revision;
	const uint8_t *cursor_version;
	uint32_t cursor_version_len;
	const char *watch;
	uint32_t watch_len;
	uint32_t count; /* records following */
} slip_header;

/* A decoded record; pointers alias the buffer it was parsed from. */
typedef struct {
	uint8_t op;
	uint64_t revision;
	const uint8_t *version;
	uint32_t version_len;
	const char *key;
	uint32_t key_len;
	const uint8_t *value;
	uint32_t value_len;
} slip_record;

/* slip_parse_header decodes the header at p (n bytes available) and returns
 * its size, or 0 if malformed. */
static inline uint32_t slip_parse_header(const uint8_t *p, uint32_t n, slip_header *h) {
	if (n < SLIP_HEADER_SIZE || (p[0] != SLIP_KIND_APPLY && p[0] != SLIP_KIND_RENDER) ||
	    p[1] > SLIP_MAX_VERSION_LEN || p[2] != 0 || p[3] != 0)
		return 0;
	uint64_t size = (uint64_t)SLIP_HEADER_SIZE + p[1] + slip_u32(p + 4);
	if (size > n)
		return 0;
	h->kind = p[0];
	h->cursor_version_len = p[1];
	h->watch_len = slip_u32(p + 4);
	h->count = slip_u32(p + 8);
	h->cursor_revision = slip_u64(p + 12);
	h->cursor_version = p + SLIP_HEADER_SIZE;
	h->watch = (const char *)p + SLIP_HEADER_SIZE + h->cursor_version_len;
	return (uint32_t)size;
}

/* slip_parse_record decodes the record at p (n bytes available) and returns
 * its size, or 0 if malformed. */
static inline uint32_t slip_parse_record(const uint8_t *p, uint32_t n, slip_record *r) {
	if (n < SLIP_RECORD_HEADER_SIZE || p[0] < SLIP_OP_PUT || p[0] > SLIP_OP_PURGE ||
	    p[1] > SLIP_MAX_VERSION_LEN || p[2] != 0 || p[3] != 0)
		return 0;
	uint64_t size = (uint64_t)SLIP_RECORD_HEADER_SIZE + p[1] + slip_u32(p + 4) + slip_u32(p + 8);
	if (size > n)
		return 0;
	r->op = p[0];
	r->version_len = p[1];
	r->key_len = slip_u32(p + 4);
	r->value_len = slip_u32(p + 8);
	r->revision = slip_u64(p + 12);
	r->version = p + SLIP_RECORD_HEADER_SIZE;
	r->key = (const char *)r->version + r->version_len;
	r->value = (const uint8_t *)r->key + r->key_len;
	return (uint32_t)size;
}

#endif
