/* The C benchmark plugin: decodes each batch and touches every update, like
 * the Go bench plugin, to separate the host's cost from the Go guest's. */
#include <stdlib.h>

#include "../../../examples/envfile/slipstream.h"

static uint8_t *input;
static uint32_t input_cap;
static uint64_t sink;

SLIP_EXPORT("slipstream_abi_version") int32_t abi_version(void) { return SLIP_ABI_VERSION; }

static int32_t run(uint32_t n, uint8_t kind) {
	if (n > input_cap) {
		free(input);
		input = malloc(n);
		input_cap = input ? n : 0;
		if (!input)
			return 1;
	}
	slip_header h;
	uint32_t off;
	if (slip_input_read(input, n) != (int64_t)n || !(off = slip_parse_header(input, n, &h)) || h.kind != kind)
		return 1;
	for (uint32_t i = 0; i < h.count; i++) {
		slip_record r;
		uint32_t size = slip_parse_record(input + off, n - off, &r);
		if (!size)
			return 1;
		sink += r.key_len + r.value_len;
		off += size;
	}
	return 0;
}

SLIP_EXPORT("slipstream_apply") int32_t apply(uint32_t n) { return run(n, SLIP_KIND_APPLY); }

SLIP_EXPORT("slipstream_render") int32_t render(uint32_t n) { return run(n, SLIP_KIND_RENDER); }
