/*
 * Tokenizer against llama.cpp's vocabulary tests: for every vocabulary in
 * the shared data (and the Qwen2 one built from qwen3.tokenizer.json by the
 * make_qwen2_vocab fixture, passed as argv[1]), each of the 46 inputs of
 * ggml-vocab-NAME.gguf.inp must encode (no BOS, parse_special off) to exactly
 * the ids on the matching line of .out. The inputs are the text between
 * lines "__ggml_vocab_test__", without the newline before each separator,
 * as llama.cpp's test-tokenizer-0 reads them.
 *
 * Also: the pieces of the ids give the text back (byte-level BPE: exactly;
 * SentencePiece with add_space_prefix: one space in front of a non-empty
 * text, which is the space prefix the encoder added; WordPiece: modulo its
 * normalization, see wpm_round_trip_ok), special-token parsing, the
 * buffer-size contract, invalid UTF-8, speed on 1 MB, and that pathological
 * single-word inputs finish.
 */
#define _GNU_SOURCE /* memmem */
#include <ctype.h>
#include <errno.h>
#include <time.h>

#include "engine/engine.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define SLOW 10.0 /* sanitizers slow everything down */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SLOW 10.0
#endif
#endif
#ifndef SLOW
#define SLOW 1.0
#endif

static const char SEP[] = "\n__ggml_vocab_test__\n";

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void print_escaped(FILE *f, const char *s, size_t n)
{
	fputc('"', f);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n')
			fputs("\\n", f);
		else if (c == '\t')
			fputs("\\t", f);
		else if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(f, "\\x%02x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static void print_ids(FILE *f, const struct tok *t, const int32_t *ids, int64_t n)
{
	for (int64_t i = 0; i < n; i++) {
		char piece[256];
		int len = tok_piece(t, ids[i], piece, sizeof piece);
		fprintf(f, " %d", ids[i]);
		if (len >= 0) {
			fputc('=', f);
			print_escaped(f, piece, (size_t)len < sizeof piece ? (size_t)len : sizeof piece);
		}
	}
	fputc('\n', f);
}

static struct tok *load(const char *path)
{
	char err[512];
	struct gguf *g;
	int rc = gguf_open(path, &g, err, sizeof err);
	T_REQUIRE(rc == 0, "gguf_open %s: %s", path, err);
	struct tok *t;
	rc = tok_load(g, &t, err, sizeof err);
	gguf_close(g);
	T_REQUIRE(rc == 0, "tok_load %s: %s", path, err);
	return t;
}

/* Encode into a fresh array; *n gets the count. */
static int32_t *encode(const struct tok *t, const char *s, size_t len, int special, int64_t *n)
{
	int64_t cap = (int64_t)len + 16;
	int32_t *ids = malloc((size_t)cap * sizeof *ids);
	T_REQUIRE(ids, "out of memory");
	*n = tok_encode(t, s, len, special, ids, cap);
	T_REQUIRE(*n >= 0, "tok_encode returned %lld for %zu bytes", (long long)*n, len);
	return ids;
}

/* The pieces of ids, back to back (malloc'd); *len gets the length. */
static char *decode(const struct tok *t, const int32_t *ids, int64_t n, size_t *len)
{
	size_t cap = 64, w = 0;
	char *s = malloc(cap);
	T_REQUIRE(s, "out of memory");
	for (int64_t i = 0; i < n; i++) {
		int k = tok_piece(t, ids[i], NULL, 0);
		T_REQUIRE(k >= 0, "tok_piece(%d) = %d", ids[i], k);
		if (w + (size_t)k + 1 > cap) {
			while (w + (size_t)k + 1 > cap)
				cap *= 2;
			s = realloc(s, cap);
			T_REQUIRE(s, "out of memory");
		}
		T_REQUIRE(tok_piece(t, ids[i], s + w, (size_t)k) == k, "tok_piece size changed");
		w += (size_t)k;
	}
	*len = w;
	return s;
}

/* WordPiece drops control characters, case, accents and the amount of
 * white space, and a word it cannot spell becomes [UNK], so its round trip
 * holds modulo that: the pieces, encoded again (with parse_special, so
 * that the text "[UNK]" is that token again), give the same ids; and for
 * ASCII text without [UNK] the pieces are exactly the words of the text,
 * lowercased, each after one space, words being cut at white space and
 * around every punctuation character, control characters dropped. */
static int wpm_round_trip_ok(const struct tok *t, const char *s, size_t n, const int32_t *ids,
			     int64_t ng, const char *got, size_t gl)
{
	int64_t cap = (int64_t)gl + 16;
	int32_t *again = malloc((size_t)cap * sizeof *again);
	T_REQUIRE(again, "out of memory");
	int64_t m = tok_encode(t, got, gl, 1, again, cap);
	int ok = m == ng && memcmp(again, ids, (size_t)ng * sizeof *ids) == 0;
	free(again);
	int ascii = 1, unk = 0;
	for (size_t i = 0; i < n; i++)
		ascii &= (unsigned char)s[i] < 0x80;
	for (int64_t i = 0; i < ng; i++)
		unk |= tok_is_control(t, ids[i]);
	if (!ok || !ascii || unk)
		return ok;
	size_t j = 0;
	int in_word = 0;
	for (size_t i = 0; i < n && ok; i++) {
		unsigned char c = (unsigned char)s[i];
		int space = c == ' ' || c == '\t' || c == '\n' || c == '\r';
		int punct = ispunct(c);
		if (space || punct)
			in_word = 0;
		if (space || (c < 0x20 || c == 0x7f))
			continue;
		if (!in_word)
			ok = j < gl && got[j++] == ' ';
		ok = ok && j < gl && got[j++] == (char)tolower(c);
		in_word = !punct;
	}
	return ok && j == gl;
}

/* The text a round trip must give: the input itself for byte-level BPE.
 * SentencePiece (with add_space_prefix, and no special tokens in the text)
 * gives one space in front of a non-empty text, the prefix the encoder
 * added, and a space for every U+2581 of the input, which it cannot tell
 * from an escaped space. WordPiece: see wpm_round_trip_ok. */
static int round_trip_ok(const struct tok *t, const char *s, size_t n, const int32_t *ids,
			 int64_t ng, const char *got, size_t gl)
{
	if (tok_kind(t) == TOK_WPM)
		return wpm_round_trip_ok(t, s, n, ids, ng, got, gl);
	if (tok_kind(t) != TOK_SPM || n == 0)
		return gl == n && memcmp(got, s, n) == 0;
	if (gl < 1 || got[0] != ' ')
		return 0;
	size_t j = 1;
	for (size_t i = 0; i < n; j++) {
		int lower_block = i + 3 <= n && memcmp(s + i, "\xe2\x96\x81", 3) == 0;
		if (j >= gl || got[j] != (lower_block ? ' ' : s[i]))
			return 0;
		i += lower_block ? 3 : 1;
	}
	return j == gl;
}

static void check_vocab(const char *name, const char *gguf_path)
{
	char rel[256];
	snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.inp", name);
	size_t inp_len = 0, out_len = 0;
	char *inp = t_slurp(t_data(rel), &inp_len);
	snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf.out", name);
	char *out = t_slurp(t_data(rel), &out_len);
	T_REQUIRE(inp && out, "cannot read the test files of %s", name);
	struct tok *t = load(gguf_path);

	int cases = 0, pass = 0, trips = 0;
	size_t ip = 0;
	char *op = out;
	while (ip < inp_len) {
		const char *s = inp + ip;
		const char *sep = memmem(s, inp_len - ip, SEP, sizeof SEP - 1);
		size_t n = sep ? (size_t)(sep - s) : inp_len - ip;
		ip += n + (sep ? sizeof SEP - 1 : 0);
		cases++;

		char *eol = strchr(op, '\n');
		T_REQUIRE(*op || eol, "%s: .out has fewer lines than .inp has inputs", name);
		if (eol)
			*eol = 0;
		int32_t want[4096];
		int64_t nw = 0;
		for (char *p = op, *e; *p; p = e) {
			long v = strtol(p, &e, 10);
			if (e == p)
				break;
			T_REQUIRE(nw < 4096, "%s: expected line too long", name);
			want[nw++] = (int32_t)v;
		}
		op = eol ? eol + 1 : op + strlen(op);

		int64_t ng;
		int32_t *got = encode(t, s, n, 0, &ng);
		int ok = ng == nw && memcmp(got, want, (size_t)nw * sizeof *want) == 0;
		if (ok) {
			pass++;
		} else {
			fprintf(stderr, "%s case %d: input ", name, cases);
			print_escaped(stderr, s, n);
			fprintf(stderr, "\n  expected:");
			print_ids(stderr, t, want, nw);
			fprintf(stderr, "  got:     ");
			print_ids(stderr, t, got, ng);
			t_failures++;
		}
		size_t dl;
		char *back = decode(t, got, ng, &dl);
		if (round_trip_ok(t, s, n, got, ng, back, dl)) {
			trips++;
		} else {
			fprintf(stderr, "%s case %d: pieces do not give the input back: ", name, cases);
			print_escaped(stderr, back, dl);
			fputc('\n', stderr);
			t_failures++;
		}
		free(back);
		free(got);
	}
	T_CHECK(cases == 46, "%s: %d inputs, expected 46", name, cases);
	T_CHECK(*op == 0, "%s: .out has more lines than .inp has inputs", name);
	fprintf(stderr, "vocab %-15s %d/%d cases match, %d/%d round trips (pre %s)\n", name,
		pass, cases, trips, cases, tok_pre_name(t));
	tok_free(t);
	free(inp);
	free(out);
}

/* Deterministic text that looks like documents: words, numbers,
 * punctuation, newlines, some non-ASCII. */
static char *make_text(size_t n)
{
	static const char *const words[] = {
		"the", "tokenizer", "filesystem", "Hello", "world", "seekfs", "model",
		"document", "index", "query", "answer", "\xc3\xa9t\xc3\xa9", "na\xc3\xafve",
		"\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82", "\xe6\x97\xa5\xe6\x9c\xac",
		"2024", "3.14159", "(see", "below)", "x+y=z", "don't", "it's", "--", "\xf0\x9f\x9a\x80"};
	char *s = malloc(n + 1);
	T_REQUIRE(s, "out of memory");
	uint64_t r = 42;
	size_t w = 0;
	while (w < n) {
		const char *wd = words[t_rand_u64(&r) % (sizeof words / sizeof *words)];
		size_t l = strlen(wd);
		if (w + l + 1 > n)
			break;
		memcpy(s + w, wd, l);
		w += l;
		uint64_t k = t_rand_u64(&r) % 16;
		s[w++] = k == 0 ? '\n' : k == 1 ? ',' : k == 2 ? '.' : ' ';
	}
	while (w < n)
		s[w++] = ' ';
	s[n] = 0;
	return s;
}

static void check_speed(const char *name, const struct tok *t)
{
	size_t n = 1 << 20;
	char *s = make_text(n);
	double t0 = now();
	int64_t ng;
	int32_t *ids = encode(t, s, n, 0, &ng);
	double dt = now() - t0;
	fprintf(stderr, "vocab %-15s 1 MiB -> %lld tokens in %.3f s (%.1f MB/s)\n", name,
		(long long)ng, dt, n / dt / 1e6);
	T_CHECK(dt < 1.0 * SLOW, "%s: 1 MiB took %.2f s", name, dt);
	size_t dl;
	char *back = decode(t, ids, ng, &dl);
	T_CHECK(round_trip_ok(t, s, n, ids, ng, back, dl), "%s: 1 MiB text does not round-trip",
		name);
	free(back);
	free(ids);

	/* single words far beyond any token: a run of one letter, of spaces,
	 * of digits, of punctuation; each 1 MiB */
	static const char fill[] = {'a', ' ', '7', '!'};
	size_t big = 1u << 20;
	char *b = malloc(big);
	T_REQUIRE(b, "out of memory");
	for (size_t f = 0; f < sizeof fill; f++) {
		memset(b, fill[f], big);
		t0 = now();
		ids = encode(t, b, big, 0, &ng);
		dt = now() - t0;
		fprintf(stderr, "vocab %-15s 1 MiB of '%c' -> %lld tokens in %.3f s\n", name,
			fill[f], (long long)ng, dt);
		T_CHECK(dt < 1.0 * SLOW, "%s: 1 MiB of '%c' took %.2f s", name, fill[f], dt);
		back = decode(t, ids, ng, &dl);
		T_CHECK(round_trip_ok(t, b, big, ids, ng, back, dl),
			"%s: 1 MiB of '%c' does not round-trip",
			name, fill[f]);
		free(back);
		free(ids);
	}
	free(b);
	free(s);
}

/* Whether every single byte encodes to tokens whose pieces give it back.
 * Not so in Falcon's vocabulary, which has no token for 28 of the bytes
 * (they are dropped, as llama.cpp drops them), nor in DeepSeek's, whose
 * tokens for the bytes C0, C1 and F5-FF are user-defined tokens spelled as
 * the characters (they decode to those characters). None of these bytes
 * occurs in valid UTF-8 except Falcon's control characters. */
static int has_all_bytes(const struct tok *t)
{
	for (int b = 0; b < 256; b++) {
		char c = (char)b;
		int64_t ng;
		int32_t *ids = encode(t, &c, 1, 0, &ng);
		size_t dl;
		char *back = decode(t, ids, ng, &dl);
		int ok = round_trip_ok(t, &c, 1, ids, ng, back, dl);
		free(back);
		free(ids);
		if (!ok)
			return 0;
	}
	return 1;
}

/* Any bytes at all: no crash, and the bytes come back when the vocabulary
 * can spell every byte. */
static void check_bytes(const char *name, const struct tok *t)
{
	uint64_t r = 7;
	char buf[512];
	int all = has_all_bytes(t);
	if (!all)
		fprintf(stderr, "vocab %-15s cannot spell every byte: random bytes are only "
			"encoded, not round-tripped\n", name);
	for (int it = 0; it < 200; it++) {
		size_t n = t_rand_u64(&r) % sizeof buf;
		for (size_t i = 0; i < n; i++)
			buf[i] = (char)(t_rand_u64(&r) >> 56);
		int64_t ng;
		int32_t *ids = encode(t, buf, n, it & 1, &ng);
		size_t dl;
		char *back = decode(t, ids, ng, &dl);
		if (all && !(it & 1))
			T_CHECK(round_trip_ok(t, buf, n, ids, ng, back, dl),
				"%s: random bytes (case %d, %zu bytes) do not round-trip", name, it, n);
		free(back);
		free(ids);
	}
}

static size_t put_utf8(char *p, uint32_t cp)
{
	if (cp < 0x80) {
		p[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		p[0] = (char)(0xc0 | cp >> 6);
		p[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		p[0] = (char)(0xe0 | cp >> 12);
		p[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		p[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	p[0] = (char)(0xf0 | cp >> 18);
	p[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	p[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	p[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* Random valid UTF-8 from many scripts (no control characters but tab and
 * newline): every vocabulary must give it back (WordPiece: modulo its
 * normalization). */
static void check_utf8(const char *name, const struct tok *t)
{
	static const uint32_t ranges[][2] = {
		{0x20, 0x7e}, {0x20, 0x7e}, {0x20, 0x7e}, {0x09, 0x0a}, {0xa0, 0x2ff},
		{0x370, 0x52f}, {0x590, 0x6ff}, {0x900, 0xdff}, {0x1780, 0x17ff},
		{0x2000, 0x2bff}, {0x3000, 0x30ff}, {0x4e00, 0x9fff}, {0xac00, 0xd7a3},
		{0xff00, 0xffef}, {0x1f300, 0x1faff}, {0x20000, 0x2a6df}};
	uint64_t r = 11;
	char buf[2048];
	int bad = 0;
	for (int it = 0; it < 300; it++) {
		size_t n = 0, want = t_rand_u64(&r) % 400;
		for (size_t k = 0; k < want; k++) {
			const uint32_t *rg = ranges[t_rand_u64(&r) % (sizeof ranges / sizeof *ranges)];
			uint32_t cp = rg[0] + (uint32_t)(t_rand_u64(&r) % (rg[1] - rg[0] + 1));
			n += put_utf8(buf + n, cp);
		}
		int64_t ng;
		int32_t *ids = encode(t, buf, n, 0, &ng);
		size_t dl;
		char *back = decode(t, ids, ng, &dl);
		if (!round_trip_ok(t, buf, n, ids, ng, back, dl) && bad++ < 3) {
			fprintf(stderr, "%s: random UTF-8 case %d does not round-trip: ", name, it);
			print_escaped(stderr, buf, n);
			fputc('\n', stderr);
			t_failures++;
		}
		free(back);
		free(ids);
	}
}

static void check_api(const char *name, const struct tok *t)
{
	/* the buffer contract: -(needed) when it does not fit */
	const char *s = "Hello world, this is a test.";
	int32_t ids[64], few[2];
	int64_t n = tok_encode(t, s, strlen(s), 0, ids, 64);
	T_CHECK(n > 2, "%s: %lld tokens", name, (long long)n);
	int64_t m = tok_encode(t, s, strlen(s), 0, few, 2);
	T_CHECK(m == -n, "%s: small buffer gave %lld, want %lld", name, (long long)m, (long long)-n);
	T_CHECK(few[0] == ids[0] && few[1] == ids[1], "%s: small buffer holds other ids", name);
	T_CHECK(tok_encode(t, s, 0, 0, ids, 64) == 0, "%s: empty text", name);
	T_CHECK(tok_piece(t, -1, NULL, 0) == -EINVAL, "%s: piece of -1", name);
	T_CHECK(tok_piece(t, tok_n_vocab(t), NULL, 0) == -EINVAL, "%s: piece of n_vocab", name);
	T_CHECK(tok_eos(t) >= 0 && tok_is_eog(t, tok_eos(t)), "%s: EOS %d must end generation",
		name, tok_eos(t));
	T_CHECK(!tok_is_eog(t, ids[0]), "%s: a word token ends generation", name);
	/* a token found by its text is that id's text */
	char piece[64];
	int pl = tok_piece(t, ids[0], piece, sizeof piece);
	T_CHECK(pl > 0, "%s: empty piece", name);
	if (tok_kind(t) == TOK_BPE) {
		T_CHECK(tok_find(t, "Hello") == ids[0], "%s: tok_find(Hello) = %d, encode gave %d",
			name, tok_find(t, "Hello"), ids[0]);
	}
}

static void check_llama_spm(void)
{
	struct tok *t = load(t_data("vocab/ggml-vocab-llama-spm.gguf"));
	T_CHECK(tok_kind(t) == TOK_SPM, "kind");
	T_CHECK(tok_bos(t) == 1 && tok_eos(t) == 2 && tok_add_bos(t), "bos/eos/add_bos");
	T_CHECK(tok_is_control(t, 1) && tok_is_control(t, 2) && !tok_is_control(t, 100),
		"control types");
	char c;
	T_CHECK(tok_piece(t, 13, &c, 1) == 1 && c == '\n', "<0x0A> is a newline");
	T_CHECK(tok_find(t, "<0x0A>") == 13, "tok_find(<0x0A>)");
	/* control tokens are text unless parse_special; then each special
	 * token is followed by a space prefix again */
	int32_t ids[32];
	int64_t n = tok_encode(t, "<s>Hi", 5, 1, ids, 32);
	T_CHECK(n >= 2 && ids[0] == 1, "<s> parsed: n=%lld first=%d", (long long)n, ids[0]);
	int64_t m = tok_encode(t, "<s>Hi", 5, 0, ids, 32);
	T_CHECK(m > 0 && ids[0] != 1, "<s> must stay text without parse_special");
	/* a prompt gets BOS (add_bos_token), once even when its text has one */
	int32_t *p = NULL;
	int64_t k = tok_encode_prompt(t, "Hi", 2, 1, &p);
	T_CHECK(k == 1 + tok_encode(t, "Hi", 2, 1, ids, 32) && p && p[0] == 1 && p[1] != 1,
		"prompt 'Hi': %lld ids, first %d", (long long)k, p ? p[0] : -1);
	free(p);
	k = tok_encode_prompt(t, "<s>Hi", 5, 1, &p);
	T_CHECK(k == n && p && p[0] == 1 && p[1] != 1, "prompt '<s>Hi': %lld ids (want %lld), BOS twice?",
		(long long)k, (long long)n);
	free(p);
	check_api("llama-spm", t);
	check_bytes("llama-spm", t);
	check_utf8("llama-spm", t);
	check_speed("llama-spm", t);
	tok_free(t);
}

static void check_bpe(const char *name, const char *path)
{
	struct tok *t = load(path);
	T_CHECK(tok_kind(t) == TOK_BPE, "%s: kind", name);
	check_api(name, t);
	check_bytes(name, t);
	check_utf8(name, t);
	check_speed(name, t);
	tok_free(t);
}

static void check_qwen2(const char *path)
{
	struct tok *t = load(path);
	int32_t im_start = tok_find(t, "<|im_start|>"), im_end = tok_find(t, "<|im_end|>");
	T_CHECK(im_start == 151644 && im_end == 151645, "im_start %d im_end %d", im_start, im_end);
	T_CHECK(tok_is_eog(t, im_end) && tok_is_eog(t, tok_find(t, "<|endoftext|>")),
		"<|im_end|> and <|endoftext|> end generation");
	T_CHECK(tok_is_control(t, im_start) && !tok_add_bos(t), "control / add_bos");
	const char *s = "<|im_start|>user\nHi<think>";
	int32_t ids[64];
	int64_t n = tok_encode(t, s, strlen(s), 1, ids, 64);
	T_CHECK(n >= 3 && ids[0] == im_start && ids[n - 1] == tok_find(t, "<think>"),
		"parse_special: control and user-defined tokens");
	n = tok_encode(t, s, strlen(s), 0, ids, 64);
	T_CHECK(n > 3 && ids[0] != im_start && ids[n - 1] == tok_find(t, "<think>"),
		"no parse_special: user-defined tokens still match, control ones do not");
	T_CHECK(strcmp(tok_pre_name(t), "qwen2") == 0, "pre %s", tok_pre_name(t));
	check_bpe("qwen2", path);
	tok_free(t);
}

/* ---- tiny vocabularies built in memory ---------------------------------- */

struct gbuf {
	char *p;
	size_t n, cap;
	uint64_t n_kv;
};

static void put(struct gbuf *b, const void *d, size_t n)
{
	if (b->n + n > b->cap) {
		b->cap = (b->n + n) * 2 + 64;
		b->p = realloc(b->p, b->cap);
		T_REQUIRE(b->p, "out of memory");
	}
	memcpy(b->p + b->n, d, n);
	b->n += n;
}

static void put_u32(struct gbuf *b, uint32_t v) { put(b, &v, 4); }
static void put_u64(struct gbuf *b, uint64_t v) { put(b, &v, 8); }

static void put_str(struct gbuf *b, const char *s)
{
	put_u64(b, strlen(s));
	put(b, s, strlen(s));
}

static void kv_str(struct gbuf *b, const char *k, const char *v)
{
	put_str(b, k);
	put_u32(b, GGUF_STR);
	put_str(b, v);
	b->n_kv++;
}

static void kv_u32(struct gbuf *b, const char *k, uint32_t v)
{
	put_str(b, k);
	put_u32(b, GGUF_U32);
	put_u32(b, v);
	b->n_kv++;
}

/* A NULL-terminated list of strings. */
static void kv_strs(struct gbuf *b, const char *k, const char *const *v)
{
	uint64_t n = 0;
	while (v[n])
		n++;
	put_str(b, k);
	put_u32(b, GGUF_ARR);
	put_u32(b, GGUF_STR);
	put_u64(b, n);
	for (uint64_t i = 0; i < n; i++)
		put_str(b, v[i]);
	b->n_kv++;
}

static void kv_i32s(struct gbuf *b, const char *k, const int32_t *v, uint64_t n)
{
	put_str(b, k);
	put_u32(b, GGUF_ARR);
	put_u32(b, GGUF_I32);
	put_u64(b, n);
	put(b, v, 4 * n);
	b->n_kv++;
}

/* The file: header, then the key-value pairs written into kvs. */
static char *gguf_bytes(const struct gbuf *kvs, size_t *len)
{
	struct gbuf f = {0};
	put(&f, "GGUF", 4);
	put_u32(&f, 3);
	put_u64(&f, 0);
	put_u64(&f, kvs->n_kv);
	put(&f, kvs->p, kvs->n);
	while (f.n % 32)
		put(&f, "", 1);
	*len = f.n;
	return f.p;
}

/* tok_load on a GGUF built from kvs; returns its result, *t the tokenizer. */
static int load_mem(struct gbuf *kvs, struct tok **t, char *err, size_t errsz)
{
	size_t len;
	char *file = gguf_bytes(kvs, &len);
	struct gguf *g;
	int rc = gguf_open_mem(file, len, "tiny.gguf", &g, err, errsz);
	T_REQUIRE(rc == 0, "gguf_open_mem: %s", err);
	rc = tok_load(g, t, err, errsz);
	gguf_close(g);
	free(file);
	free(kvs->p);
	memset(kvs, 0, sizeof *kvs);
	return rc;
}

/* Tokens a b c bc abc (ids 0-4) and the control token <|end|> (5); merges
 * "b c", then "a b" (whose result is not a token), then "ab c". */
static void tiny_bpe(struct gbuf *b, const char *pre)
{
	static const char *const toks[] = {"a", "b", "c", "bc", "abc", "<|end|>", NULL};
	static const char *const merges[] = {"b c", "a b", "ab c", NULL};
	static const int32_t types[] = {1, 1, 1, 1, 1, 3};
	kv_str(b, "general.architecture", "llama");
	kv_str(b, "tokenizer.ggml.model", "gpt2");
	if (pre)
		kv_str(b, "tokenizer.ggml.pre", pre);
	kv_strs(b, "tokenizer.ggml.tokens", toks);
	kv_i32s(b, "tokenizer.ggml.token_type", types, 6);
	kv_strs(b, "tokenizer.ggml.merges", merges);
	kv_u32(b, "tokenizer.ggml.bos_token_id", 5);
	kv_u32(b, "tokenizer.ggml.eos_token_id", 5);
}

static int ids_are(const struct tok *t, const char *s, const int32_t *want, int64_t n)
{
	int32_t got[64];
	int64_t m = tok_encode(t, s, strlen(s), 0, got, 64);
	if (m != n || memcmp(got, want, (size_t)n * sizeof *want) != 0) {
		fprintf(stderr, "encode ");
		print_escaped(stderr, s, strlen(s));
		fprintf(stderr, ":\n  expected:");
		print_ids(stderr, t, want, n);
		fprintf(stderr, "  got:     ");
		print_ids(stderr, t, got, m < 0 ? 0 : m);
		return 0;
	}
	return 1;
}

static void check_tiny(void)
{
	char err[512];
	struct gbuf b = {0};
	struct tok *t;

	/* merges apply by rank, through a string that is not a token */
	tiny_bpe(&b, "gpt-2");
	T_REQUIRE(load_mem(&b, &t, err, sizeof err) == 0, "tiny gpt-2: %s", err);
	T_CHECK(ids_are(t, "abc", (const int32_t[]){0, 3}, 2), "b+c merges before a+b");
	T_CHECK(ids_are(t, "bca", (const int32_t[]){3, 0}, 2), "bca");
	T_CHECK(ids_are(t, "ab", (const int32_t[]){0, 1}, 2),
		"a merge result that is not a token falls back to its bytes");
	T_CHECK(!tok_add_bos(t) && tok_is_eog(t, 5) && tok_is_control(t, 5), "gpt-2 flags");
	int32_t ids[16];
	int64_t n = tok_encode(t, "a<|end|>", 8, 0, ids, 16);
	/* the bytes of "<|end|>" have no tokens here and are dropped */
	T_CHECK(n == 1 && ids[0] == 0, "control text is text without parse_special");
	T_CHECK(tok_encode(t, "a<|end|>", 8, 1, ids, 16) == 2 && ids[1] == 5, "control parsed");
	tok_free(t);

	/* Llama 3 takes a word that is a token whole, and starts with BOS */
	tiny_bpe(&b, "llama-bpe");
	T_REQUIRE(load_mem(&b, &t, err, sizeof err) == 0, "tiny llama-bpe: %s", err);
	T_CHECK(ids_are(t, "abc", (const int32_t[]){4}, 1), "whole-word token");
	T_CHECK(tok_add_bos(t) && strcmp(tok_pre_name(t), "llama-bpe") == 0, "llama-bpe flags");
	tok_free(t);

	/* no pre-tokenizer named: llama.cpp's default */
	tiny_bpe(&b, NULL);
	T_REQUIRE(load_mem(&b, &t, err, sizeof err) == 0, "tiny default: %s", err);
	T_CHECK(strcmp(tok_pre_name(t), "default") == 0, "pre %s", tok_pre_name(t));
	tok_free(t);

	/* refusals name what is wrong */
	tiny_bpe(&b, "tekken");
	t = (struct tok *)1;
	T_CHECK(load_mem(&b, &t, err, sizeof err) < 0 && !t && strstr(err, "'tekken'"),
		"unknown pre-tokenizer: %s", err);
	kv_str(&b, "tokenizer.ggml.model", "t5");
	T_CHECK(load_mem(&b, &t, err, sizeof err) < 0 && strstr(err, "'t5'"),
		"unknown model: %s", err);
	kv_str(&b, "tokenizer.ggml.model", "gpt2");
	kv_strs(&b, "tokenizer.ggml.tokens", (const char *const[]){"a", NULL});
	T_CHECK(load_mem(&b, &t, err, sizeof err) < 0 && strstr(err, "merges"),
		"no merges: %s", err);
	kv_str(&b, "general.architecture", "llama");
	T_CHECK(load_mem(&b, &t, err, sizeof err) < 0 && strstr(err, "tokenizer.ggml.model"),
		"no tokenizer: %s", err);
}

/* Whether texts a and b (NUL-terminated) encode to the same ids. */
static int same_ids(const struct tok *t, const char *a, const char *b)
{
	int64_t na, nb;
	int32_t *ia = encode(t, a, strlen(a), 0, &na);
	int32_t *ib = encode(t, b, strlen(b), 0, &nb);
	int ok = na == nb && memcmp(ia, ib, (size_t)na * sizeof *ia) == 0;
	if (!ok) {
		fprintf(stderr, "encode ");
		print_escaped(stderr, a, strlen(a));
		fprintf(stderr, ":");
		print_ids(stderr, t, ia, na);
		fprintf(stderr, "encode ");
		print_escaped(stderr, b, strlen(b));
		fprintf(stderr, ":");
		print_ids(stderr, t, ib, nb);
	}
	free(ia);
	free(ib);
	return ok;
}

/* bge-small's vocabulary (bert-base-uncased's): special tokens, pieces and
 * the BERT normalization. Expected ids are those of Hugging Face's
 * tokenizer for the same vocabulary. */
static void check_bert_bge(void)
{
	const char *path = t_data("vocab/ggml-vocab-bert-bge.gguf");
	struct tok *t = load(path);
	T_CHECK(tok_kind(t) == TOK_WPM && strcmp(tok_pre_name(t), "bert") == 0, "kind / pre");
	T_CHECK(tok_bos(t) == 101 && tok_eos(t) == 102 && tok_add_bos(t),
		"[CLS] %d and [SEP] %d frame a sequence", tok_bos(t), tok_eos(t));
	T_CHECK(tok_find(t, "[CLS]") == 101 && tok_find(t, "[UNK]") == 100, "tok_find");
	for (int32_t id = 100; id <= 103; id++)
		T_CHECK(tok_is_control(t, id), "%d is a control token", id);
	T_CHECK(tok_is_control(t, 0) && !tok_is_control(t, 7592) && !tok_is_eog(t, 0),
		"[PAD] is control, not an end; words are not control");

	/* word starts decode with a space, continuations without */
	char piece[32];
	int pl = tok_piece(t, 7592, piece, sizeof piece);
	T_CHECK(pl == 6 && memcmp(piece, " hello", 6) == 0, "piece of 7592: %d", pl);
	pl = tok_piece(t, 17875, piece, sizeof piece);
	T_CHECK(pl == 4 && memcmp(piece, "hrer", 4) == 0, "piece of ##hrer: %d", pl);
	pl = tok_piece(t, 101, piece, sizeof piece);
	T_CHECK(pl == 5 && memcmp(piece, "[CLS]", 5) == 0, "piece of [CLS]: %d", pl);
	T_CHECK(tok_piece(t, 7592, piece, 3) == 6 && memcmp(piece, " he", 3) == 0,
		"a short buffer gets the start of the piece");
	T_CHECK(tok_piece(t, 7592, NULL, 0) == 6, "size query");

	T_CHECK(ids_are(t, "unaffable", (const int32_t[]){14477, 20961, 3468}, 3),
		"una ##ffa ##ble");
	/* special tokens only when asked */
	int32_t ids[64];
	int64_t n = tok_encode(t, "[CLS] hi [SEP]", 14, 1, ids, 64);
	T_CHECK(n == 3 && ids[0] == 101 && ids[1] == 7632 && ids[2] == 102, "parse_special");
	n = tok_encode(t, "[CLS] hi [SEP]", 14, 0, ids, 64);
	T_CHECK(n > 3 && ids[0] == 1031, "[CLS] is text without parse_special");

	/* normalization: case, accents (precomposed or not), Turkish dotted
	 * I, control and format characters dropped, white space of any kind */
	T_CHECK(same_ids(t, "Caf\xc3\xa9 CAF\xc3\x89 Cafe\xcc\x81", "cafe cafe cafe"),
		"accents");
	T_CHECK(same_ids(t, "\xc4\xb0stanbul", "istanbul"), "dotted I");
	T_CHECK(same_ids(t, "F\xc3\xbchrer", "fuhrer"), "umlaut");
	T_CHECK(same_ids(t, "a\x01" "b\x0b" "c\xe2\x80\x8d" "d\xc2\xad" "e\xc2\x85" "f\xff" "g",
			 "abcdefg"), "control, format and invalid bytes are dropped");
	T_CHECK(same_ids(t, "a\xc2\xa0" "b\xe3\x80\x80" "c\xe2\x80\xa8" "d\te\r\nf",
			 "a b c d e f"), "white space");
	/* punctuation: Unicode P* and every ASCII symbol; other symbols stay */
	T_CHECK(ids_are(t, "a$b+c^d`e|f~g<h",
			(const int32_t[]){1037, 1002, 1038, 1009, 1039, 1034, 1040, 1036, 1041,
					  1064, 1042, 1066, 1043, 1026, 1044}, 15), "ASCII symbols");
	T_CHECK(ids_are(t, "x\xe2\x80\x94y a\xc2\xa9" "b e\xe2\x80\x99s",
			(const int32_t[]){1060, 1517, 1061, 1037, 29652, 2497, 1041, 1521, 1055},
			9),
		"em dash and right quote split, copyright sign does not");
	T_CHECK(ids_are(t, "\xe1\xbf\xaf", (const int32_t[]){1036}, 1),
		"U+1FEF decomposes to a backtick, which is punctuation");
	/* Hangul syllables decompose into jamo; CJK ideographs stand alone */
	T_CHECK(ids_are(t, "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
			(const int32_t[]){1469, 30006, 30021, 29991, 30014, 30020, 29999, 30008},
			8),
		"Hangul");
	T_CHECK(ids_are(t, "\xe6\x88\x91\xe6\x83\xb3\xe5\x9c\xa8" "apple",
			(const int32_t[]){1855, 100, 100, 6207}, 4), "CJK");
	/* a word of 100 characters is cut into pieces, one of 101 is [UNK];
	 * characters count after normalization */
	char w[512];
	memset(w, 'a', 101);
	n = tok_encode(t, w, 100, 0, ids, 64);
	T_CHECK(n == 50 && ids[0] == 13360 && ids[49] == 2050, "100 a: %lld ids", (long long)n);
	T_CHECK(tok_encode(t, w, 101, 0, ids, 64) == 1 && ids[0] == 100, "101 a: [UNK]");
	size_t wl = 0;
	for (int i = 0; i < 100; i++)
		wl += (size_t)snprintf(w + wl, sizeof w - wl, "e\xcc\x81");
	T_CHECK(tok_encode(t, w, wl, 0, ids, 64) > 1, "100 e + U+0301 are 100 characters");
	T_CHECK(tok_encode(t, "\xed\x95\x9c\xed\x95\x9c\xed\x95\x9c\xed\x95\x9c", 12, 0, ids, 64) ==
			12, "4 syllables are 12 jamo, one token each");
	wl = 0;
	for (int i = 0; i < 34; i++)
		wl += (size_t)snprintf(w + wl, sizeof w - wl, "\xed\x95\x9c");
	T_CHECK(tok_encode(t, w, wl, 0, ids, 64) == 1 && ids[0] == 100,
		"34 syllables are 102 characters: [UNK]");

	/* never more ids than bytes: callers size their arrays by it */
	int worst = 0;
	for (uint32_t cp = 1; cp < 0x110000; cp++) {
		if (cp >= 0xd800 && cp < 0xe000)
			continue;
		char c[8];
		size_t cl = put_utf8(c, cp);
		int64_t k = tok_encode(t, c, cl, 0, ids, 64);
		if (k > (int64_t)cl && worst++ < 3)
			T_CHECK(0, "U+%04X: %lld ids for %zu bytes", cp, (long long)k, cl);
	}

	check_api("bert-bge", t);
	check_bytes("bert-bge", t);
	check_utf8("bert-bge", t);
	check_speed("bert-bge", t);
	tok_free(t);
}

/* Two WordPiece vocabularies: a cased one spelled as vocab.txt ("##"
 * continuations) and an uncased one spelled as llama.cpp's converter
 * writes them (U+2581 word starts). */
static void check_tiny_wpm(void)
{
	char err[512];
	struct gbuf b = {0};
	struct tok *t;
	static const char *const cased[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "un", "##aff",
					    "##able", "Hello", "!", "##s", "a", "##a", NULL};
	static const int32_t types[] = {3, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1};
	kv_str(&b, "tokenizer.ggml.model", "bert");
	kv_strs(&b, "tokenizer.ggml.tokens", cased);
	kv_i32s(&b, "tokenizer.ggml.token_type", types, 12);
	T_REQUIRE(load_mem(&b, &t, err, sizeof err) == 0, "tiny cased wpm: %s", err);
	T_CHECK(tok_kind(t) == TOK_WPM && tok_bos(t) == 2 && tok_eos(t) == 3 && tok_add_bos(t),
		"[CLS] and [SEP] found by spelling");
	T_CHECK(ids_are(t, "unaffable Hello!", (const int32_t[]){4, 5, 6, 7, 8}, 5), "pieces");
	T_CHECK(ids_are(t, "Hellos hello", (const int32_t[]){7, 9, 1}, 3),
		"a cased vocabulary is not lowercased");
	T_CHECK(ids_are(t, "unable", (const int32_t[]){4, 6}, 2), "un ##able");
	T_CHECK(ids_are(t, "unaffablex", (const int32_t[]){1}, 1),
		"a word with a position no token matches is [UNK] as a whole");
	char w[128];
	memset(w, 'a', sizeof w);
	int32_t ids[128];
	T_CHECK(tok_encode(t, w, 100, 0, ids, 128) == 100 && ids[0] == 10 && ids[99] == 11,
		"100 characters");
	T_CHECK(tok_encode(t, w, 101, 0, ids, 128) == 1 && ids[0] == 1, "101 characters");
	char piece[16];
	T_CHECK(tok_piece(t, 4, piece, sizeof piece) == 3 && memcmp(piece, " un", 3) == 0 &&
			tok_piece(t, 5, piece, sizeof piece) == 3 && memcmp(piece, "aff", 3) == 0 &&
			tok_piece(t, 1, piece, sizeof piece) == 5,
		"pieces: word starts with a space, continuations bare");
	tok_free(t);

	static const char *const phantom[] = {
		"[UNK]", "\xe2\x96\x81hello", "\xe2\x96\x81" "cafe", "s", "\xe2\x96\x81!", NULL};
	kv_str(&b, "tokenizer.ggml.model", "bert");
	kv_strs(&b, "tokenizer.ggml.tokens", phantom);
	kv_u32(&b, "tokenizer.ggml.unknown_token_id", 0);
	T_REQUIRE(load_mem(&b, &t, err, sizeof err) == 0, "tiny phantom wpm: %s", err);
	T_CHECK(tok_bos(t) == -1 && !tok_add_bos(t), "no [CLS]: no BOS");
	T_CHECK(ids_are(t, "HELLOS Caf\xc3\xa9!", (const int32_t[]){1, 3, 2, 4}, 4),
		"uncased: lowercased, accents stripped");
	T_CHECK(tok_piece(t, 3, piece, sizeof piece) == 1 &&
			tok_piece(t, 1, piece, sizeof piece) == 6 && memcmp(piece, " hello", 6) == 0,
		"phantom pieces");
	tok_free(t);

	/* without [UNK] a WordPiece vocabulary cannot work */
	kv_str(&b, "tokenizer.ggml.model", "bert");
	kv_strs(&b, "tokenizer.ggml.tokens", (const char *const[]){"a", "##b", NULL});
	t = (struct tok *)1;
	T_CHECK(load_mem(&b, &t, err, sizeof err) < 0 && !t && strstr(err, "unknown"),
		"no [UNK]: %s", err);
}

int main(int argc, char **argv)
{
	const char *qwen2 = argc > 1 ? argv[1] : getenv("SEEKFS_QWEN2_VOCAB");
	static const char *const names[] = {"llama-spm", "gpt-2", "deepseek-llm",
					    "deepseek-coder", "falcon", "bert-bge"};
	for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
		char rel[256];
		snprintf(rel, sizeof rel, "vocab/ggml-vocab-%s.gguf", names[i]);
		check_vocab(names[i], t_data(rel));
	}
	/* never skipped: the fixture that builds it fails when it cannot */
	T_REQUIRE(qwen2 && *qwen2, "the Qwen2 vocabulary path is missing: pass it as argv[1] "
		  "(ctest does, from the make_qwen2_vocab fixture)");
	check_vocab("qwen2", qwen2);

	check_llama_spm();
	check_bpe("gpt-2", t_data("vocab/ggml-vocab-gpt-2.gguf"));
	check_bpe("deepseek-llm", t_data("vocab/ggml-vocab-deepseek-llm.gguf"));
	check_bpe("deepseek-coder", t_data("vocab/ggml-vocab-deepseek-coder.gguf"));
	check_bpe("falcon", t_data("vocab/ggml-vocab-falcon.gguf"));
	check_qwen2(qwen2);
	check_bert_bge();
	check_tiny();
	check_tiny_wpm();
	return t_done("test_vocab");
}
