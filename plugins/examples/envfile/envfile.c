/*
 * envfile: an apply plugin in C that renders every key under a prefix into
 * one environment file (KEY="value" lines) for systemd's EnvironmentFile=,
 * requesting a hook when the file changed. It is written from plugins/ABI.md
 * alone, to prove the document is enough.
 *
 * A key maps to a variable name by dropping the prefix, upper-casing letters
 * and turning every other byte outside [A-Za-z0-9_] into '_' (a leading digit
 * gets a '_' before it). Values are double-quoted, with a backslash before
 * \, ", $ and ` (the characters a backslash escapes inside double quotes, for
 * systemd as for a POSIX shell). Tabs, newlines and carriage returns are
 * written as they are: systemd keeps them inside double quotes, while "\n"
 * would stay a backslash and an n. A value with any other control byte is
 * logged and left out.
 *
 * Configuration (config_get):
 *   prefix  key prefix (default: every key)
 *   output  output name (default "env")
 *   path    file to write (default "app.env")
 *   hook    hook to request when the file changed (default: none)
 * Any other key (config_keys) refuses the module when the host loads it.
 *
 * Build:
 *   clang --target=wasm32-wasi -O2 -mexec-model=reactor -Wl,--strip-all \
 *         -o envfile.wasm envfile.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slipstream.h"

SLIP_EXPORT("slipstream_abi_version") int32_t abi_version(void) { return SLIP_ABI_VERSION; }

/* A growable byte buffer. */
typedef struct {
	char *data;
	size_t len, cap;
} buffer;

static int reserve(buffer *b, size_t extra) {
	if (b->len + extra <= b->cap)
		return 1;
	size_t cap = b->cap ? b->cap * 2 : 4096;
	while (cap < b->len + extra)
		cap *= 2;
	char *p = realloc(b->data, cap);
	if (!p)
		return 0;
	b->data = p;
	b->cap = cap;
	return 1;
}

static int append(buffer *b, const void *p, size_t n) {
	if (!reserve(b, n))
		return 0;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 1;
}

static int appendc(buffer *b, char c) { return append(b, &c, 1); }

static int fail(const char *msg) {
	slip_report_error(msg, (uint32_t)strlen(msg));
	return 1;
}

static void logf_(int32_t level, const char *msg, const char *key, uint32_t key_len) {
	char line[512];
	int n = snprintf(line, sizeof line, "envfile: %s: %.*s", msg, (int)(key_len > 256 ? 256 : key_len), key);
	slip_log(level, line, (uint32_t)(n < (int)sizeof line ? n : (int)sizeof line - 1));
}

/* config returns a malloc'd, NUL-terminated config value, or a copy of def. */
static char *config(const char *key, const char *def) {
	uint32_t cap = 64;
	for (;;) {
		char *buf = malloc(cap + 1);
		if (!buf)
			return NULL;
		int64_t n = slip_config_get(key, (uint32_t)strlen(key), buf, cap);
		if (n < 0) { /* SLIP_ERR_NOT_FOUND: not configured */
			free(buf);
			return strdup(def);
		}
		if ((uint64_t)n <= cap) {
			buf[n] = 0;
			return buf;
		}
		free(buf); /* too small: retry with the size the host asked for */
		cap = (uint32_t)n;
	}
}

/* known_keys are the settings config reads, sorted. */
static const char *const known_keys[] = {"hook", "output", "path", "prefix"};
#define NKNOWN (sizeof known_keys / sizeof *known_keys)

/* check_keys runs in the module's initializer (_initialize runs the
 * constructors): a configuration key envfile does not read, a misspelt
 * prefix for instance, refuses the module with a message naming it and the
 * keys envfile reads, which the host reports (slipagent validate too). */
__attribute__((constructor)) static void check_keys(void) {
	int64_t n = slip_config_keys(NULL, 0);
	char *keys = malloc(n > 0 ? (size_t)n : 1);
	if (n < 0 || !keys || slip_config_keys(keys, (uint32_t)n) != n) {
		fail("envfile: cannot read the configuration's keys");
		exit(1);
	}
	buffer list = {0}; /* "a", "b" */
	int unknown = 0, ok = 1;
	for (char *k = keys; k < keys + n; k += strlen(k) + 1) {
		int known = 0;
		for (size_t i = 0; i < NKNOWN; i++)
			known |= strcmp(k, known_keys[i]) == 0;
		if (known)
			continue;
		if (unknown++)
			ok &= append(&list, ", ", 2);
		size_t klen = strlen(k);
		ok &= appendc(&list, '"') && append(&list, k, klen > 256 ? 256 : klen) && appendc(&list, '"');
	}
	free(keys);
	if (!unknown)
		return;
	buffer msg = {0};
	const char *head = unknown > 1 ? "envfile: unknown configuration keys " : "envfile: unknown configuration key ";
	ok &= append(&msg, head, strlen(head)) && append(&msg, list.data, list.len) && append(&msg, "; this plugin reads: ", 21);
	for (size_t i = 0; i < NKNOWN; i++)
		ok &= (i == 0 || append(&msg, ", ", 2)) && append(&msg, known_keys[i], strlen(known_keys[i]));
	ok &= appendc(&msg, 0);
	fail(ok ? msg.data : "envfile: out of memory");
	exit(1);
}

/* line appends NAME="value"\n for one entry; 0 means skip it (logged). */
static int line(buffer *out, const slip_record *r, uint32_t prefix_len) {
	const char *name = r->key + prefix_len;
	uint32_t name_len = r->key_len - prefix_len;
	if (name_len == 0) {
		logf_(SLIP_WARN, "skipping key with an empty name", r->key, r->key_len);
		return 1;
	}
	for (uint32_t i = 0; i < r->value_len; i++) {
		uint8_t c = r->value[i];
		if ((c < 0x20 && c != '\n' && c != '\r' && c != '\t') || c == 0x7f) {
			logf_(SLIP_ERROR, "skipping key whose value has control bytes", r->key, r->key_len);
			return 1;
		}
	}
	if (!reserve(out, 2 * (size_t)name_len + 2 * (size_t)r->value_len + 8))
		return 0;
	if (name[0] >= '0' && name[0] <= '9')
		appendc(out, '_');
	for (uint32_t i = 0; i < name_len; i++) {
		char c = name[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
			c = '_';
		appendc(out, c);
	}
	append(out, "=\"", 2);
	for (uint32_t i = 0; i < r->value_len; i++) {
		char c = (char)r->value[i];
		if (c == '\\' || c == '"' || c == '$' || c == '`')
			appendc(out, '\\');
		appendc(out, c);
	}
	return append(out, "\"\n", 2);
}

/* render rebuilds the whole file from the view with paged view_scan calls,
 * stages it, and requests the hook if it changed. Returns the guest status. */
static int render(const slip_header *h) {
	int status = 1;
	char *prefix = config("prefix", ""), *output = config("output", "env");
	char *path = config("path", "app.env"), *hook = config("hook", "");
	buffer out = {0};
	uint32_t cap = 4096; /* small on purpose: real views take many pages */
	uint8_t *page = malloc(cap);
	char *after = NULL;
	uint32_t after_len = 0;
	if (!prefix || !output || !path || !hook || !page) {
		fail("envfile: out of memory");
		goto done;
	}
	uint32_t prefix_len = (uint32_t)strlen(prefix);
	char head[512];
	int n = snprintf(head, sizeof head, "# Generated by the slipstream envfile plugin for watch \"%.*s\". Do not edit.\n",
	                 (int)(h->watch_len > 200 ? 200 : h->watch_len), h->watch);
	append(&out, head, (size_t)n);

	for (;;) {
		int64_t got = slip_view_scan(prefix, prefix_len, after, after_len, page, cap);
		if (got < 0) {
			fail("envfile: view_scan failed");
			goto done;
		}
		if ((uint64_t)got > cap) { /* one entry needs more room */
			uint8_t *bigger = realloc(page, (size_t)got);
			if (!bigger) {
				fail("envfile: out of memory");
				goto done;
			}
			page = bigger;
			cap = (uint32_t)got;
			continue;
		}
		if (got < SLIP_PAGE_HEADER_SIZE) {
			fail("envfile: short page");
			goto done;
		}
		uint32_t count = slip_u32(page), flags = slip_u32(page + 4);
		uint32_t off = SLIP_PAGE_HEADER_SIZE;
		for (uint32_t i = 0; i < count; i++) {
			slip_record r;
			uint32_t size = slip_parse_record(page + off, (uint32_t)got - off, &r);
			if (size == 0) {
				fail("envfile: malformed page");
				goto done;
			}
			if (!line(&out, &r, prefix_len)) {
				fail("envfile: out of memory");
				goto done;
			}
			char *a = realloc(after, r.key_len ? r.key_len : 1);
			if (!a) {
				fail("envfile: out of memory");
				goto done;
			}
			after = a;
			memcpy(after, r.key, r.key_len);
			after_len = r.key_len;
			off += size;
		}
		if (!(flags & SLIP_PAGE_MORE))
			break;
	}

	int32_t st = slip_stage_write(output, (uint32_t)strlen(output), path, (uint32_t)strlen(path), out.data, (uint32_t)out.len, 0);
	if (st < 0) {
		fail("envfile: stage_write refused the file");
		goto done;
	}
	if (st == SLIP_OK && hook[0] && slip_hook_request(hook, (uint32_t)strlen(hook)) < 0) {
		fail("envfile: hook_request refused the hook");
		goto done;
	}
	status = 0;
done:
	free(prefix);
	free(output);
	free(path);
	free(hook);
	free(out.data);
	free(page);
	free(after);
	return status;
}

/* call reads the input and renders; for a batch it first checks whether any
 * update touches the prefix, so unrelated batches cost no scan. */
static int call(uint32_t input_len, uint8_t kind) {
	uint8_t *in = malloc(input_len ? input_len : 1);
	if (!in)
		return fail("envfile: out of memory");
	int status = 1;
	slip_header h;
	if (slip_input_read(in, input_len) != (int64_t)input_len || !slip_parse_header(in, input_len, &h) || h.kind != kind) {
		fail("envfile: bad call input");
		goto done;
	}
	int relevant = kind == SLIP_KIND_RENDER;
	if (!relevant) {
		char *prefix = config("prefix", "");
		if (!prefix) {
			fail("envfile: out of memory");
			goto done;
		}
		size_t plen = strlen(prefix);
		uint32_t off = slip_parse_header(in, input_len, &h);
		for (uint32_t i = 0; i < h.count && !relevant; i++) {
			slip_record r;
			uint32_t size = slip_parse_record(in + off, input_len - off, &r);
			if (size == 0) {
				free(prefix);
				fail("envfile: malformed update");
				goto done;
			}
			relevant = r.key_len >= plen && memcmp(r.key, prefix, plen) == 0;
			off += size;
		}
		free(prefix);
	}
	status = relevant ? render(&h) : 0;
done:
	free(in);
	return status;
}

SLIP_EXPORT("slipstream_apply") int32_t apply(uint32_t input_len) { return call(input_len, SLIP_KIND_APPLY); }

SLIP_EXPORT("slipstream_render") int32_t render_all(uint32_t input_len) { return call(input_len, SLIP_KIND_RENDER); }
