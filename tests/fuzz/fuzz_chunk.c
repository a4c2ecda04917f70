/*
 * fuzz_chunk: libFuzzer target for chunking (index/chunk.c) with the
 * WordPiece tokenizer of a BERT-family embedder (FUZZ_VOCAB, set by the
 * build to the shared data's vocabulary).
 *
 * Input: byte 0 picks the target (8..71 tokens), byte 1 the overlap, byte
 * 2 the type (text, markdown, HTML); the rest is the document. Every chunk
 * must fit the target by a fresh count, hold the text it names, start and
 * end at character boundaries, move forward, and carry a byte range inside
 * the document (exactly its text for plain text that is valid UTF-8).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tok *tk;

static void load(void)
{
	struct gguf *g;
	char err[512];
	if (gguf_open(FUZZ_VOCAB, &g, err, sizeof err) || tok_load(g, &tk, err, sizeof err)) {
		fprintf(stderr, "fuzz_chunk: %s\n", err);
		abort();
	}
	gguf_close(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!tk)
		load();
	if (size < 3)
		return 0;
	int target = 8 + data[0] % 64;
	int overlap = data[1] % (target / 2);
	static const char *names[] = {"f.txt", "f.md", "f.html"};
	const char *name = names[data[2] % 3];
	data += 3;
	size -= 3;
	struct extract_result x;
	if (extract_text(name, data, size, &x)) {
		extract_free(&x);
		return 0;
	}
	struct chunk_list l;
	struct chunk_opts o = {target, overlap, 0};
	if (chunk_text(&x, tk, &o, &l))
		abort();
	int exact = name == names[0];
	for (size_t i = 0; i < x.n_spans; i++)
		exact &= x.spans[i].exact;
	static int32_t ids[1 << 12];
	for (size_t i = 0; i < l.n; i++) {
		const struct chunk *c = &l.v[i];
		if (!c->len || c->text_end - c->text_start != c->len || c->text_end > x.len ||
		    memcmp(c->text, x.text + c->text_start, c->len) || c->text[c->len])
			abort();
		if (((unsigned char)c->text[0] & 0xc0) == 0x80 ||
		    ((unsigned char)x.text[c->text_end] & 0xc0) == 0x80)
			abort();
		if (c->src_start >= c->src_end || c->src_end > size)
			abort();
		if (exact && (c->src_end - c->src_start != c->len ||
			      memcmp(data + c->src_start, c->text, c->len)))
			abort();
		int64_t n = tok_encode(tk, c->text, c->len, 0, ids, 1 << 12);
		if (n < 0 || n != c->n_tokens || n > target)
			abort();
		if (i && (c->text_start <= l.v[i - 1].text_start ||
			  c->text_end <= l.v[i - 1].text_end))
			abort();
	}
	chunk_list_free(&l);
	extract_free(&x);
	return 0;
}
