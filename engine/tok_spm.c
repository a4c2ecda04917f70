/*
 * SentencePiece-style BPE (tokenizer.ggml.model = "llama"): Llama 2,
 * TinyLlama, llama2.c conversions.
 *
 * Spaces become U+2581 ("▁"), with one more in front when the caller asks
 * for the space prefix. The text is split into UTF-8 characters; then the
 * adjacent pair whose concatenation is the token with the highest score is
 * merged, leftmost first among equal scores, until no pair forms a token
 * (a heap of candidate pairs, as llama.cpp does). A symbol left that is not a
 * token is written as byte tokens <0xXX> (byte fallback).
 *
 * When the vocabulary allows it (no token has U+2581 after another
 * character) no merge can cross the start of a space run, so each word is
 * merged on its own: time and memory follow the word, not the text.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tok_internal.h"

struct ssym {
	int32_t start;     /* byte offset in the escaped word */
	int32_t len;       /* 0: merged into its left neighbour */
	int32_t prev, next;
};

struct bigram {
	float score;
	int32_t left, right;
	int32_t size; /* bytes of the pair when it was queued */
};

struct spm_ctx {
	const struct tok *t;
	struct tok_out *o;
	char *buf;
	size_t buf_cap;
	struct ssym *sym;
	size_t sym_cap;
	struct bigram *heap;
	size_t heap_n, heap_cap;
};

/* Higher score first; the leftmost of equal scores first. */
static int bigram_before(const struct bigram *a, const struct bigram *b)
{
	return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static int heap_push(struct spm_ctx *c, const struct bigram *p)
{
	if (c->heap_n == c->heap_cap) {
		size_t nc = c->heap_cap ? c->heap_cap * 2 : 256;
		struct bigram *nh = realloc(c->heap, nc * sizeof *nh);
		if (!nh)
			return -ENOMEM;
		c->heap = nh;
		c->heap_cap = nc;
	}
	size_t i = c->heap_n++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (!bigram_before(p, &c->heap[up]))
			break;
		c->heap[i] = c->heap[up];
		i = up;
	}
	c->heap[i] = *p;
	return 0;
}

static struct bigram heap_pop(struct spm_ctx *c)
{
	struct bigram top = c->heap[0];
	struct bigram last = c->heap[--c->heap_n];
	size_t i = 0, n = c->heap_n;
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		const struct bigram *best = &last;
		if (l < n && bigram_before(&c->heap[l], best))
			m = l, best = &c->heap[l];
		if (l + 1 < n && bigram_before(&c->heap[l + 1], best))
			m = l + 1;
		if (m == i)
			break;
		c->heap[i] = c->heap[m];
		i = m;
	}
	if (n)
		c->heap[i] = last;
	return top;
}

static int try_bigram(struct spm_ctx *c, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return 0;
	const struct ssym *a = &c->sym[l], *b = &c->sym[r];
	size_t size = (size_t)a->len + (size_t)b->len;
	if (size > c->t->max_len)
		return 0;
	int32_t id = tok_map_find(c->t, c->buf + a->start, size);
	if (id < 0)
		return 0;
	struct bigram g = {c->t->score[id], l, r, (int32_t)size};
	return heap_push(c, &g);
}

static void emit_bytes(struct spm_ctx *c, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int32_t id = c->t->byte_tok[s[i]];
		if (id < 0)
			id = c->t->unk;
		if (id >= 0)
			tok_emit(c->o, id);
	}
}

/* Merge the escaped word in c->buf[0..n). */
static int merge_word(struct spm_ctx *c, size_t n)
{
	const struct tok *t = c->t;
	size_t ns = 0;
	if (c->sym_cap < n) {
		struct ssym *s = realloc(c->sym, n * sizeof *s);
		if (!s)
			return -ENOMEM;
		c->sym = s;
		c->sym_cap = n;
	}
	for (size_t off = 0; off < n; ns++) {
		size_t len = tok_utf8_len((unsigned char)c->buf[off]);
		if (len > n - off)
			len = n - off;
		c->sym[ns] = (struct ssym){(int32_t)off, (int32_t)len, (int32_t)ns - 1, -1};
		if (ns)
			c->sym[ns - 1].next = (int32_t)ns;
		off += len;
	}
	c->heap_n = 0;
	int rc = 0;
	for (size_t i = 1; i < ns && !rc; i++)
		rc = try_bigram(c, (int32_t)i - 1, (int32_t)i);
	while (!rc && c->heap_n) {
		struct bigram g = heap_pop(c);
		struct ssym *l = &c->sym[g.left], *r = &c->sym[g.right];
		/* stale when either side was merged since it was queued */
		if (!l->len || !r->len || l->len + r->len != g.size)
			continue;
		l->len += r->len;
		r->len = 0;
		l->next = r->next;
		if (r->next >= 0)
			c->sym[r->next].prev = g.left;
		rc = try_bigram(c, l->prev, g.left);
		if (!rc)
			rc = try_bigram(c, g.left, l->next);
	}
	if (rc)
		return rc;
	for (int32_t i = 0; ns && i >= 0; i = c->sym[i].next) {
		const struct ssym *s = &c->sym[i];
		int32_t id = tok_map_find(t, c->buf + s->start, (size_t)s->len);
		if (id >= 0)
			tok_emit(c->o, id);
		else
			emit_bytes(c, (const unsigned char *)c->buf + s->start, (size_t)s->len);
	}
	return 0;
}

/* Escape s[0..n) (plus the prefix space) into c->buf and merge it. */
static int word(struct spm_ctx *c, const char *s, size_t n, int prefix)
{
	size_t need = 3 * (n + 1);
	if (c->buf_cap < need) {
		char *nb = realloc(c->buf, need);
		if (!nb)
			return -ENOMEM;
		c->buf = nb;
		c->buf_cap = need;
	}
	size_t m = 0;
	if (prefix) {
		memcpy(c->buf, "\xe2\x96\x81", 3);
		m = 3;
	}
	for (size_t i = 0; i < n; i++) {
		if (s[i] == ' ') {
			memcpy(c->buf + m, "\xe2\x96\x81", 3);
			m += 3;
		} else {
			c->buf[m++] = s[i];
		}
	}
	return merge_word(c, m);
}

int tok_spm_encode(const struct tok *t, const char *s, size_t n, int space_prefix,
		   struct tok_out *out)
{
	struct spm_ctx c = {.t = t, .o = out};
	int rc = 0;
	size_t start = 0;
	int prefix = space_prefix;
	for (size_t i = 1; i <= n && !rc; i++) {
		int cut = i == n;
		if (!cut && t->spm_word_split && s[i] == ' ' && s[i - 1] != ' ')
			cut = 1;
		if (!cut && i - start >= TOK_MAX_PIECE && ((unsigned char)s[i] & 0xc0) != 0x80)
			cut = 1; /* an endless word: cut at a character boundary */
		if (!cut)
			continue;
		rc = word(&c, s + start, i - start, prefix);
		prefix = 0;
		start = i;
	}
	free(c.buf);
	free(c.sym);
	free(c.heap);
	return rc;
}
