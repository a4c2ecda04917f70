/*
 * seekfs info: a GGUF file's metadata and tensors, for looking inside a
 * model before using it.
 */
#include <stdio.h>
#include <string.h>

#include "engine/engine.h"
#include "fs/cli.h"

/* Bytes of each scalar type, by enum gguf_vtype (0 for string and array). */
static const int vsize[] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static void print_scalar(enum gguf_vtype t, const unsigned char *p)
{
	union { uint8_t u8; int8_t i8; uint16_t u16; int16_t i16; uint32_t u32; int32_t i32;
		float f32; uint64_t u64; int64_t i64; double f64; } v;
	if ((int)t < 0 || t > GGUF_F64 || !vsize[t])
		return;
	memcpy(&v, p, (size_t)vsize[t]);
	switch (t) {
	case GGUF_U8: printf("%u", v.u8); break;
	case GGUF_I8: printf("%d", v.i8); break;
	case GGUF_U16: printf("%u", v.u16); break;
	case GGUF_I16: printf("%d", v.i16); break;
	case GGUF_U32: printf("%u", v.u32); break;
	case GGUF_I32: printf("%d", v.i32); break;
	case GGUF_F32: printf("%g", v.f32); break;
	case GGUF_BOOL: printf("%s", v.u8 ? "true" : "false"); break;
	case GGUF_U64: printf("%llu", (unsigned long long)v.u64); break;
	case GGUF_I64: printf("%lld", (long long)v.i64); break;
	case GGUF_F64: printf("%g", v.f64); break;
	default: break;
	}
}

static void print_str(const char *s, size_t n, size_t max)
{
	putchar('"');
	for (size_t i = 0; i < n && i < max; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			fputs("\\n", stdout);
		else if (c < 32 || c == '"' || c == '\\')
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	putchar('"');
	if (n > max)
		printf("... (%zu bytes)", n);
}

int cmd_info(int argc, char **argv)
{
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(argc == 2 ? stdout : stderr, "usage: seekfs info MODEL.gguf\n");
		return argc == 2 ? 0 : 2;
	}
	char err[512];
	struct gguf *g;
	if (gguf_open(argv[1], &g, err, sizeof err)) {
		fprintf(stderr, "seekfs info: %s\n", err);
		return 1;
	}
	printf("%s: GGUF v%u, %lld keys, %lld tensors, alignment %zu\n", argv[1], gguf_version(g),
	       (long long)gguf_n_kv(g), (long long)gguf_n_tensors(g), gguf_alignment(g));
	for (int64_t i = 0; i < gguf_n_kv(g); i++) {
		const char *key = gguf_kv_key(g, i);
		enum gguf_vtype t = gguf_kv_type(g, i);
		printf("  %s = ", key);
		if (t == GGUF_STR) {
			size_t n;
			const char *s = gguf_get_str(g, key, &n);
			print_str(s, n, 120);
		} else if (t == GGUF_ARR) {
			enum gguf_vtype et;
			uint64_t n;
			const void *data;
			gguf_get_arr(g, key, &et, &n, &data);
			printf("[%llu items", (unsigned long long)n);
			for (uint64_t j = 0; j < n && j < 4; j++) {
				printf(j ? ", " : ": ");
				if (et == GGUF_STR) {
					size_t sl;
					const char *s = gguf_get_arr_str(g, i, j, &sl);
					print_str(s, sl, 40);
				} else if (data && et <= GGUF_F64 && vsize[et]) {
					print_scalar(et, (const unsigned char *)data + j * (uint64_t)vsize[et]);
				}
			}
			printf("%s]", n > 4 ? ", ..." : "");
		} else {
			int64_t iv;
			double fv;
			if (t == GGUF_F32 || t == GGUF_F64) {
				gguf_get_f64(g, key, &fv);
				printf("%g", fv);
			} else if (!gguf_get_i64(g, key, &iv)) {
				printf("%lld", (long long)iv);
			} else {
				printf("(unsigned 64-bit value out of range)");
			}
		}
		putchar('\n');
	}
	for (int64_t i = 0; i < gguf_n_tensors(g); i++) {
		const struct gguf_tensor *t = gguf_tensor_at(g, i);
		printf("  tensor %-32s %-5s [", t->name, kt_type_name(t->type));
		for (int d = 0; d < t->n_dims; d++)
			printf(d ? ", %lld" : "%lld", (long long)t->ne[d]);
		printf("] %zu bytes at %llu\n", t->size, (unsigned long long)t->offset);
	}
	gguf_close(g);
	return 0;
}
