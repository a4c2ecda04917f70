/*
 * fuzz_gguf: libFuzzer target for the GGUF reader.
 *
 * Opens the input with gguf_open_mem and, when it is accepted, reads every
 * byte the open file hands out (every value, array element, string and
 * tensor's data), so that a bound the reader failed to check shows up as
 * an ASan report on the exactly-sized input buffer. A refusal must come
 * with a message. Built with -fsanitize=fuzzer when SEEKFS_FUZZ=ON, and
 * linked with replay.c to replay the corpus in the ordinary test run.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Touch n bytes so that reading them is not optimised away. */
static unsigned sum(const void *p, size_t n)
{
	const volatile uint8_t *b = p;
	unsigned s = 0;
	for (size_t i = 0; i < n; i++)
		s += b[i];
	return s;
}

static size_t vsize(enum gguf_vtype t)
{
	switch (t) {
	case GGUF_U8: case GGUF_I8: case GGUF_BOOL: return 1;
	case GGUF_U16: case GGUF_I16: return 2;
	case GGUF_U32: case GGUF_I32: case GGUF_F32: return 4;
	case GGUF_U64: case GGUF_I64: case GGUF_F64: return 8;
	default: return 0;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gguf *g = NULL;
	char err[512];
	err[0] = 0;
	int rc = gguf_open_mem(data, size, "fuzz.gguf", &g, err, sizeof err);
	if (rc) {
		if (g || rc != -EINVAL || strncmp(err, "fuzz.gguf: ", 11))
			abort();
		return 0;
	}
	volatile unsigned s = 0;
	s += gguf_version(g) + (unsigned)gguf_alignment(g) + (unsigned)gguf_file_size(g);
	for (int64_t i = 0; i < gguf_n_kv(g); i++) {
		const char *key = gguf_kv_key(g, i);
		if (!key || gguf_find_key(g, key) != i)
			abort();
		s += sum(key, strlen(key));
		enum gguf_vtype t = gguf_kv_type(g, i);
		int64_t iv;
		double dv;
		size_t len;
		if (!gguf_get_i64(g, key, &iv))
			s += (unsigned)iv;
		if (!gguf_get_f64(g, key, &dv))
			s += dv > 0;
		s += (unsigned)gguf_get_i64_or(g, key, 0);
		s += gguf_get_f64_or(g, key, 0) > 0;
		const char *str = gguf_get_str(g, key, &len);
		if (!str != (t != GGUF_STR))
			abort();
		if (str)
			s += sum(str, len);
		enum gguf_vtype et;
		uint64_t n;
		const void *arr;
		rc = gguf_get_arr(g, key, &et, &n, &arr);
		if (!rc != (t == GGUF_ARR))
			abort();
		if (rc)
			continue;
		if (vsize(et)) {
			s += sum(arr, (size_t)n * vsize(et));
		} else {
			for (uint64_t j = 0; j < n; j++) {
				str = gguf_get_arr_str(g, i, j, &len);
				if (!str != (et != GGUF_STR))
					abort();
				if (str)
					s += sum(str, len);
			}
		}
		if (gguf_get_arr_str(g, i, n, &len))
			abort();
	}
	for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);
		if (!t || gguf_find_tensor(g, t->name) != t)
			abort();
		if (t->n_dims < 1 || t->n_dims > 4 || !kt_type_supported(t->type) ||
		    t->size != kt_row_bytes((enum kt_type)t->type, t->ne[0]) *
				       (size_t)(t->ne[1] * t->ne[2] * t->ne[3]))
			abort();
		s += sum(t->data, t->size);
	}
	(void)s;
	gguf_close(g);
	return 0;
}
