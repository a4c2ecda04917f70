/*
 * test_chunk: cutting extracted text into token-bounded chunks
 * (index/chunk.c) with the WordPiece tokenizer of a BERT-family embedder:
 * the token bound, overlap, headings and paragraphs as boundaries, UTF-8
 * boundaries, byte ranges in the original, and linear time on a 50 MB
 * single-line file.
 */
#include <errno.h>
#include <time.h>

#include "index/index.h"
#include "testutil.h"

/* Seconds allowed for 50 MB; sanitizers slow tokenizing about 6x. */
#if defined(__SANITIZE_ADDRESS__)
#define LIMIT_50MB 60
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define LIMIT_50MB 60
#endif
#endif
#ifndef LIMIT_50MB
#define LIMIT_50MB 20
#endif

static struct tok *tk;

static int64_t ntok(const char *s, size_t n)
{
	static int32_t *ids;
	static int64_t cap;
	if (cap < (int64_t)n + 16) {
		cap = (int64_t)n + 16;
		ids = realloc(ids, (size_t)cap * sizeof *ids);
		T_REQUIRE(ids, "oom");
	}
	return tok_encode(tk, s, n, 0, ids, cap);
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Properties every chunking must have. exact_src: the original is plain
 * text, so each chunk's byte range holds exactly its text. */
static void check_chunks(const char *what, const char *src, size_t src_len,
			 const struct extract_result *x, const struct chunk_list *l,
			 int target, int exact_src, int full)
{
	for (size_t i = 0; i < l->n; i++) {
		const struct chunk *c = &l->v[i];
		T_CHECK(c->len > 0 && c->len == c->text_end - c->text_start &&
			!memcmp(c->text, x->text + c->text_start, c->len), "%s: chunk %zu text", what, i);
		T_CHECK(c->n_tokens <= target, "%s: chunk %zu has %d tokens > %d", what, i,
			c->n_tokens, target);
		T_CHECK(c->src_start < c->src_end && c->src_end <= src_len, "%s: chunk %zu range", what, i);
		if (exact_src)
			T_CHECK(c->src_end - c->src_start == c->len &&
				!memcmp(src + c->src_start, c->text, c->len),
				"%s: chunk %zu: original[%zu:%zu] differs from its text", what, i,
				c->src_start, c->src_end);
		/* never inside a UTF-8 character, no blank ends */
		T_CHECK(((unsigned char)c->text[0] & 0xc0) != 0x80 &&
			((unsigned char)x->text[c->text_end] & 0xc0) != 0x80,
			"%s: chunk %zu cuts a character", what, i);
		T_CHECK(!strchr(" \t\n\r", c->text[0]) && !strchr(" \t\n\r", c->text[c->len - 1]),
			"%s: chunk %zu has blank ends", what, i);
		if (i)
			T_CHECK(c->text_start > l->v[i - 1].text_start &&
				c->text_end > l->v[i - 1].text_end, "%s: chunk %zu goes back", what, i);
		if (full && i % 97 == 0) /* a sample: recounting all is what we time */
			T_CHECK(ntok(c->text, c->len) == c->n_tokens, "%s: chunk %zu count", what, i);
	}
}

static void chunk_doc(const char *path, const char *src, size_t len, int target, int overlap,
		      struct extract_result *x, struct chunk_list *l)
{
	T_REQUIRE(extract_text(path, src, len, x) == 0, "%s: %s", path, x->reason);
	struct chunk_opts o = {target, overlap, 0};
	int rc = chunk_text(x, tk, &o, l);
	T_REQUIRE(rc == 0, "%s: chunk_text %d", path, rc);
}

static const char *WORDS[] = {
	"the", "index", "keeps", "every", "document", "searchable", "while", "models",
	"change", "quickly", "a", "filesystem", "of", "questions", "and", "answers",
	"tokenizer", "boundaries", "matter", "here", "café", "naïve", "über", "日本語",
};

/* n words of deterministic prose, sentences of 5-14 words. */
static char *prose(uint64_t *seed, size_t nwords, char *o)
{
	size_t in_sentence = 0, len = 5 + t_rand_u64(seed) % 10;
	for (size_t w = 0; w < nwords; w++) {
		const char *word = WORDS[t_rand_u64(seed) % (sizeof WORDS / sizeof *WORDS)];
		size_t k = strlen(word);
		memcpy(o, word, k);
		o += k;
		if (++in_sentence == len || w + 1 == nwords) {
			*o++ = '.';
			in_sentence = 0;
			len = 5 + t_rand_u64(seed) % 10;
		}
		if (w + 1 < nwords)
			*o++ = ' ';
	}
	*o = 0;
	return o;
}

static void test_markdown(void)
{
	uint64_t seed = 7;
	char *md = malloc(1 << 20), *o = md;
	/* sections of short paragraphs (about 10-20 tokens each), and one
	 * long section of a single paragraph */
	for (int s = 0; s < 6; s++) {
		o += sprintf(o, "%s Section %d\n\n", s % 2 ? "##" : "#", s);
		for (int p = 0; p < 2 + s * 3; p++) {
			o = prose(&seed, 6 + t_rand_u64(&seed) % 8, o);
			o += sprintf(o, "\n\n");
		}
	}
	o += sprintf(o, "### Long\n\n");
	o = prose(&seed, 2000, o);
	o += sprintf(o, "\n");
	size_t len = (size_t)(o - md);
	struct extract_result x;
	struct chunk_list l;
	const int target = 64, overlap = 8;
	chunk_doc("notes.md", md, len, target, overlap, &x, &l);
	check_chunks("md", md, len, &x, &l, target, 1, 1);
	T_CHECK(l.n > 20, "only %zu chunks", l.n);
	int overlaps = 0, long_chunks = 0;
	for (size_t i = 0; i < l.n; i++) {
		const struct chunk *c = &l.v[i];
		/* a heading only ever starts a chunk */
		for (size_t k = 1; k < c->len; k++)
			T_CHECK(!(c->text[k - 1] == '\n' && c->text[k] == '#'),
				"chunk %zu crosses a heading: [%s]", i, c->text);
		int in_long = c->text_start >= (size_t)(strstr(md, "### Long") - md);
		long_chunks += in_long;
		const char *after = md + c->src_end;
		/* short paragraphs: chunks end where a paragraph ends */
		if (!in_long)
			T_CHECK(!*after || !strncmp(after, "\n\n", 2), "chunk %zu (%d tokens) ends inside a paragraph: [%s] then [%.20s]", i, c->n_tokens, c->text,
				after);
		if (i && c->text_start < l.v[i - 1].text_end) {
			overlaps++;
			int64_t shared = ntok(x.text + c->text_start, l.v[i - 1].text_end - c->text_start);
			T_CHECK(shared > 0 && shared <= overlap, "chunk %zu shares %lld tokens", i,
				(long long)shared);
		}
		/* in running text, chunks end at a sentence end where one fits */
		if (in_long && i + 1 < l.n)
			T_CHECK(c->text[c->len - 1] == '.', "chunk %zu ends mid-sentence: [%s]", i,
				c->text + c->len - 20);
	}
	T_CHECK(long_chunks > 10 && overlaps >= long_chunks - 1, "%d overlaps in %d long chunks",
		overlaps, long_chunks);
	/* chunks are near the target, not needlessly small */
	for (size_t i = 0; i + 1 < l.n; i++)
		if (l.v[i].text_start > (size_t)(strstr(md, "### Long") - md))
			T_CHECK(l.v[i].n_tokens >= target / 2, "chunk %zu has %d tokens", i, l.v[i].n_tokens);
	chunk_list_free(&l);
	extract_free(&x);
	free(md);
}

static void test_html(void)
{
	const char *h = "<html><head><style>h1{}</style></head><body><h1>Guide</h1>"
			"<p>First <b>paragraph</b> &amp; more words here.</p>"
			"<h2>Part two</h2><p>Second part &mdash; with caf&eacute;.</p></body></html>";
	struct extract_result x;
	struct chunk_list l;
	chunk_doc("g.html", h, strlen(h), 64, 8, &x, &l);
	check_chunks("html", h, strlen(h), &x, &l, 64, 0, 1);
	T_CHECK(l.n == 2, "%zu chunks", l.n);
	if (l.n == 2) {
		T_CHECK(!strcmp(l.v[0].text, "# Guide\n\nFirst paragraph & more words here."),
			"[%s]", l.v[0].text);
		T_CHECK(!strcmp(l.v[1].text, "## Part two\n\nSecond part \xe2\x80\x94 with caf\xc3\xa9."),
			"[%s]", l.v[1].text);
		/* the ranges cover the source of the text, tags included */
		const char *s0 = strstr(h, "<h1>"), *e0 = strstr(h, "here.") + 5;
		T_CHECK(l.v[0].src_start == (size_t)(s0 - h) && l.v[0].src_end == (size_t)(e0 - h),
			"chunk 0 range %zu-%zu", l.v[0].src_start, l.v[0].src_end);
		const char *e1 = strstr(h, "&eacute;.") + 9;
		T_CHECK(l.v[1].src_start == (size_t)(strstr(h, "<h2>") - h) &&
			l.v[1].src_end == (size_t)(e1 - h), "chunk 1 range %zu-%zu",
			l.v[1].src_start, l.v[1].src_end);
	}
	chunk_list_free(&l);
	extract_free(&x);
}

static void test_edges(void)
{
	struct extract_result x;
	struct chunk_list l;
	/* empty and blank texts give no chunks */
	chunk_doc("e.txt", "", 0, 64, 8, &x, &l);
	T_CHECK(l.n == 0, "empty: %zu chunks", l.n);
	chunk_list_free(&l);
	extract_free(&x);
	chunk_doc("b.txt", " \n\n\t ", 5, 64, 8, &x, &l);
	T_CHECK(l.n == 0, "blank: %zu chunks", l.n);
	chunk_list_free(&l);
	extract_free(&x);
	/* bad options */
	chunk_doc("a.txt", "a", 1, 64, 8, &x, &l);
	chunk_list_free(&l);
	T_CHECK(chunk_text(&x, tk, &(struct chunk_opts){4, 0, 0}, &l) == -EINVAL, "target 4");
	T_CHECK(chunk_text(&x, tk, &(struct chunk_opts){64, 32, 0}, &l) == -EINVAL, "overlap 32");
	T_CHECK(chunk_text(&x, tk, NULL, &l) == 0 && l.n == 1, "defaults");
	chunk_list_free(&l);
	extract_free(&x);
	/* multi-byte characters with no spaces, and bad bytes: cut between
	 * characters, bounded, ranges exact around U+FFFD */
	size_t n = 30000;
	char *s = malloc(n + 1);
	for (size_t i = 0; i < n; i += 3)
		memcpy(s + i, i % 999 == 0 ? "\xff\xfe\xfd" : "\xe6\x97\xa5", 3);
	s[n] = 0;
	chunk_doc("cjk.txt", s, n, 32, 4, &x, &l);
	check_chunks("cjk", s, n, &x, &l, 32, 0, 1);
	T_CHECK(l.n > 100, "cjk: %zu chunks", l.n);
	for (size_t i = 0; i < l.n; i++) {
		size_t s0 = l.v[i].src_start;
		T_CHECK((s0 % 3 == 0) || (s0 / 3 * 3) % 999 == 0, "cjk: chunk %zu starts at %zu", i, s0);
	}
	chunk_list_free(&l);
	extract_free(&x);
	/* one long word: WordPiece makes it a single [UNK], so max_bytes
	 * bounds the chunk */
	memset(s, 'a', n);
	chunk_doc("w.txt", s, n, 64, 8, &x, &l);
	check_chunks("word", s, n, &x, &l, 64, 1, 1);
	for (size_t i = 0; i < l.n; i++)
		T_CHECK(l.v[i].len <= 64 * 16, "word: chunk %zu has %zu bytes", i, l.v[i].len);
	chunk_list_free(&l);
	extract_free(&x);
	free(s);
}

static size_t trim_len(const char *s, size_t n)
{
	while (n && strchr(" \t\n\r", s[n - 1]))
		n--;
	return n;
}

static void test_big(void)
{
	/* a 50 MB file of one line of prose: linear time, bounded chunks */
	size_t want = 50u << 20;
	char *s = malloc(want + (64 << 10)), *o = s;
	T_REQUIRE(s, "oom");
	uint64_t seed = 3;
	while ((size_t)(o - s) < want) {
		o = prose(&seed, 2000, o);
		*o++ = ' ';
	}
	size_t n = (size_t)(o - s);
	double t0 = now();
	struct extract_result x;
	struct chunk_list l;
	chunk_doc("big.txt", s, n, CHUNK_TARGET_DEFAULT, CHUNK_OVERLAP_DEFAULT, &x, &l);
	double dt = now() - t0;
	fprintf(stderr, "test_chunk: 50 MB single line: %zu chunks in %.2f s (%.1f MB/s)\n", l.n, dt,
		n / dt / 1e6);
	T_CHECK(dt < LIMIT_50MB, "50 MB took %.1f s (limit %d s)", dt, LIMIT_50MB);
	check_chunks("big", s, n, &x, &l, CHUNK_TARGET_DEFAULT, 1, 0);
	T_CHECK(l.n > n / 2048, "big: %zu chunks", l.n);
	/* the covered text: every byte but white space is in some chunk */
	size_t covered = 0;
	for (size_t i = 0; i < l.n; i++)
		if (l.v[i].text_end > covered)
			covered = l.v[i].text_end;
	T_CHECK(covered == trim_len(s, n), "big: covered %zu of %zu", covered, n);
	chunk_list_free(&l);
	extract_free(&x);
	free(s);
}

int main(void)
{
	struct gguf *g;
	char err[512];
	T_REQUIRE(gguf_open(t_data("vocab/ggml-vocab-bert-bge.gguf"), &g, err, sizeof err) == 0,
		  "%s", err);
	T_REQUIRE(tok_load(g, &tk, err, sizeof err) == 0, "%s", err);
	gguf_close(g);
	test_edges();
	test_html();
	test_markdown();
	test_big();
	tok_free(tk);
	return t_done("test_chunk");
}
