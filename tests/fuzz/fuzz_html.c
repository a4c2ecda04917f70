/*
 * fuzz_html: libFuzzer target for text extraction (index/extract.c).
 *
 * The input is extracted as HTML, and again as plain text. Extraction must
 * either refuse with a reason or give valid UTF-8 whose spans cover the
 * text in order, map into the input, and copy it exactly where they say
 * so; text ranges must map to source ranges inside the input. Built with
 * -fsanitize=fuzzer when SEEKFS_FUZZ=ON, and linked with replay.c to
 * replay the corpus in the ordinary test run.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void valid_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
			c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (!k || i + k > n)
			abort();
		for (size_t j = 1; j < k; j++)
			if ((s[i + j] & 0xc0) != 0x80)
				abort();
		i += k;
	}
}

static void check(const char *path, const uint8_t *data, size_t size)
{
	struct extract_result r;
	int rc = extract_text(path, data, size, &r);
	if (rc) {
		if ((rc != -EILSEQ && rc != -ENOTSUP) || !r.reason[0] || r.text)
			abort();
		extract_free(&r);
		return;
	}
	if (!r.text || r.text[r.len] || strlen(r.text) != r.len)
		abort();
	valid_utf8((const unsigned char *)r.text, r.len);
	size_t t = 0, s = 0;
	for (size_t i = 0; i < r.n_spans; i++) {
		const struct extract_span *sp = &r.spans[i];
		if (sp->text_off != t || !sp->text_len || sp->src_off < s ||
		    sp->src_off + sp->src_len > size)
			abort();
		if (sp->exact && (sp->text_len != sp->src_len ||
				  memcmp(r.text + sp->text_off, data + sp->src_off, sp->src_len)))
			abort();
		t = sp->text_off + sp->text_len;
		s = sp->src_off + sp->src_len;
	}
	if (t != r.len)
		abort();
	for (size_t a = 0; a < r.len; a += 1 + r.len / 8) {
		size_t s0, s1;
		if (extract_src_range(&r, a, r.len, &s0, &s1) || s0 >= s1 || s1 > size)
			abort();
		if (extract_src_range(&r, 0, a + 1, &s0, &s1) || s0 >= s1 || s1 > size)
			abort();
	}
	extract_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check("fuzz.html", data, size);
	check("fuzz.txt", data, size);
	return 0;
}
