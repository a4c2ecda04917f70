/*
 * WordPiece (tokenizer.ggml.model = "bert"): the encoders of the BERT family
 * (bge-small, all-MiniLM-L6-v2 and their relatives), tokenized as Hugging
 * Face's BertNormalizer, BertPreTokenizer and WordPiece model do it.
 *
 * Text is taken one character at a time:
 *   - NUL, U+FFFD and the characters of category Cc, Cf and Co are dropped
 *     (tab, newline and carriage return are white space); so are the bytes
 *     of invalid UTF-8, which stand for U+FFFD;
 *   - White_Space characters end the current word;
 *   - CJK ideographs (the ranges BERT calls Chinese) are words of their own;
 *   - uncased vocabularies (see below) take the canonical decomposition
 *     (NFD), drop the nonspacing marks (Mn) and lowercase what remains;
 *   - a resulting character that is punctuation (any Unicode P*, and every
 *     ASCII symbol: !"#$%&'()*+,-./:;<=>?@[\]^_`{|}~) is a word of its own.
 * Each word is then cut greedily, longest match first, into a word-start
 * token and continuation tokens; a word of more than 100 characters (after
 * normalization), or one with a position no token matches, becomes [UNK].
 *
 * Character data (categories, decompositions, lowercase) comes from
 * libutf8proc. Where Hugging Face's tables are older than Unicode's current
 * ones (characters assigned since), the current ones decide. NFD's canonical
 * reordering is not applied: it only reorders combining marks, and the
 * nonspacing ones, nearly all of them, are dropped anyway.
 *
 * Vocabularies come in two spellings. llama.cpp's converter writes word
 * starts with a "\xe2\x96\x81" (U+2581) prefix and continuations bare
 * ("\xe2\x96\x81hello", "ing"); vocab.txt itself has bare word starts and
 * "##" continuations ("hello", "##ing"). Both are read; bracketed names
 * ([CLS], [unused0]) are the same in both.
 *
 * Encoding allocates nothing and looks at each byte of text a bounded
 * number of times, so a 50 MB text without a space costs what any other
 * 50 MB does.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <utf8proc.h>

#include "engine/tok_internal.h"

/* Hugging Face's max_input_chars_per_word: longer words are [UNK]. */
#define WPM_MAX_CHARS 100
/* A normalized character is at most 4 bytes. */
#define WPM_MAX_BYTES (4 * WPM_MAX_CHARS)

#define PHANTOM "\xe2\x96\x81"

/* ---- characters ---------------------------------------------------------- */

enum { C_WORD, C_SPACE, C_DROP, C_PUNCT };

/* The class of each ASCII character. */
static uint8_t ascii_class(uint32_t c)
{
	if (c == '\t' || c == '\n' || c == '\r' || c == ' ')
		return C_SPACE;
	if (c < 0x20 || c == 0x7f)
		return C_DROP;
	if ((c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
	    (c >= '{' && c <= '~'))
		return C_PUNCT;
	return C_WORD;
}

/* Unicode White_Space beyond ASCII (U+0085 is Cc and dropped before). */
static int is_white_space(uint32_t c)
{
	return c == 0xa0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200a) || c == 0x2028 ||
	       c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* The CJK ranges of Hugging Face's BertNormalizer (its Rust code, which
 * starts the sixth range at U+2B920 where the Python one has U+2B820). */
static int is_chinese(uint32_t c)
{
	return (c >= 0x4e00 && c <= 0x9fff) || (c >= 0x3400 && c <= 0x4dbf) ||
	       (c >= 0x20000 && c <= 0x2a6df) || (c >= 0x2a700 && c <= 0x2b73f) ||
	       (c >= 0x2b740 && c <= 0x2b81f) || (c >= 0x2b920 && c <= 0x2ceaf) ||
	       (c >= 0xf900 && c <= 0xfaff) || (c >= 0x2f800 && c <= 0x2fa1f);
}

static int is_punct(uint32_t c)
{
	if (c < 0x80)
		return ascii_class(c) == C_PUNCT;
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)c);
	return k >= UTF8PROC_CATEGORY_PC && k <= UTF8PROC_CATEGORY_PO;
}

/* One character of s[0..n) (n > 0): its length, the code point in *cp;
 * U+FFFD for a byte that does not start a valid sequence (overlong forms,
 * surrogates and values past U+10FFFF are invalid). */
static size_t next_char(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	size_t len = tok_utf8_len(c);
	*cp = 0xfffd;
	if (len == 1) {
		if (c < 0x80)
			*cp = c;
		return 1;
	}
	if (len > n)
		return 1;
	uint32_t v = c & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 1;
		v = v << 6 | (s[i] & 0x3f);
	}
	static const uint32_t min[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (v < min[len] || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 1;
	*cp = v;
	return len;
}

static size_t put_utf8(char *p, uint32_t c)
{
	if (c < 0x80) {
		p[0] = (char)c;
		return 1;
	}
	if (c < 0x800) {
		p[0] = (char)(0xc0 | c >> 6);
		p[1] = (char)(0x80 | (c & 0x3f));
		return 2;
	}
	if (c < 0x10000) {
		p[0] = (char)(0xe0 | c >> 12);
		p[1] = (char)(0x80 | ((c >> 6) & 0x3f));
		p[2] = (char)(0x80 | (c & 0x3f));
		return 3;
	}
	p[0] = (char)(0xf0 | c >> 18);
	p[1] = (char)(0x80 | ((c >> 12) & 0x3f));
	p[2] = (char)(0x80 | ((c >> 6) & 0x3f));
	p[3] = (char)(0x80 | (c & 0x3f));
	return 4;
}

/* ---- words --------------------------------------------------------------- */

struct wpm_ctx {
	const struct tok *t;
	struct tok_out *o;
	size_t n_chars;                 /* WPM_MAX_CHARS + 1: too long */
	uint16_t off[WPM_MAX_CHARS + 1]; /* byte offset of each character */
	char word[WPM_MAX_BYTES];
	char key[3 + WPM_MAX_BYTES];    /* a prefix and a piece of word */
};

/* The greedy longest-match cut of the word; [UNK] when it is too long or a
 * position has no token. */
static void end_word(struct wpm_ctx *c)
{
	const struct tok *t = c->t;
	size_t nc = c->n_chars;
	c->n_chars = 0;
	if (!nc)
		return;
	if (nc > WPM_MAX_CHARS) {
		tok_emit(c->o, t->unk);
		return;
	}
	int32_t ids[WPM_MAX_CHARS];
	size_t n_ids = 0;
	for (size_t i = 0; i < nc;) {
		/* word starts: "\xe2\x96\x81" + piece or the bare piece;
		 * continuations: the bare piece or "##" + piece */
		const char *pre = "";
		if (i == 0 && t->wpm_phantom)
			pre = PHANTOM;
		else if (i > 0 && !t->wpm_phantom)
			pre = "##";
		size_t pl = strlen(pre), rest = c->off[nc] - c->off[i];
		memcpy(c->key, pre, pl);
		memcpy(c->key + pl, c->word + c->off[i], rest);
		int32_t id = -1;
		size_t j = nc;
		/* in this spelling a continuation that starts with U+2581 is
		 * a word start's token: match none, as vocab.txt has no
		 * "##\xe2\x96\x81..." for Hugging Face to match */
		if (i > 0 && t->wpm_phantom && rest >= 3 && memcmp(c->key, PHANTOM, 3) == 0)
			j = i;
		for (; j > i; j--) {
			size_t kl = pl + c->off[j] - c->off[i];
			if (kl > t->max_len)
				continue;
			if ((id = tok_map_find(t, c->key, kl)) >= 0)
				break;
		}
		if (id < 0) {
			tok_emit(c->o, t->unk);
			return;
		}
		ids[n_ids++] = id;
		i = j;
	}
	for (size_t i = 0; i < n_ids; i++)
		tok_emit(c->o, ids[i]);
}

static void add_to_word(struct wpm_ctx *c, uint32_t cp)
{
	if (c->n_chars >= WPM_MAX_CHARS) {
		c->n_chars = WPM_MAX_CHARS + 1; /* its text is no longer needed */
		return;
	}
	size_t at = c->off[c->n_chars];
	c->off[++c->n_chars] = (uint16_t)(at + put_utf8(c->word + at, cp));
}

/* A character after normalization: punctuation stands alone. */
static void add_normalized(struct wpm_ctx *c, uint32_t cp)
{
	if (is_punct(cp)) {
		end_word(c);
		add_to_word(c, cp);
		end_word(c);
	} else {
		add_to_word(c, cp);
	}
}

/* A character of the text beyond ASCII. */
static void add_char(struct wpm_ctx *c, uint32_t cp)
{
	utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)cp);
	if (cp == 0xfffd || k == UTF8PROC_CATEGORY_CC || k == UTF8PROC_CATEGORY_CF ||
	    k == UTF8PROC_CATEGORY_CO)
		return;
	if (is_white_space(cp)) {
		end_word(c);
		return;
	}
	int alone = is_chinese(cp);
	if (alone)
		end_word(c);
	if (!c->t->wpm_lower) {
		add_normalized(c, cp);
	} else {
		utf8proc_int32_t d[16];
		int bound = 0;
		utf8proc_ssize_t n = utf8proc_decompose_char((utf8proc_int32_t)cp, d, 16,
							     UTF8PROC_DECOMPOSE, &bound);
		if (n < 1 || n > 16) {
			d[0] = (utf8proc_int32_t)cp;
			n = 1;
		}
		for (utf8proc_ssize_t i = 0; i < n; i++)
			if (utf8proc_category(d[i]) != UTF8PROC_CATEGORY_MN)
				add_normalized(c, (uint32_t)utf8proc_tolower(d[i]));
	}
	if (alone)
		end_word(c);
}

int tok_wpm_encode(const struct tok *t, const char *s, size_t n, struct tok_out *out)
{
	struct wpm_ctx c;
	c.t = t;
	c.o = out;
	c.n_chars = 0;
	c.off[0] = 0;
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		i += next_char(u + i, n - i, &cp);
		if (cp >= 0x80) {
			add_char(&c, cp);
			continue;
		}
		switch (ascii_class(cp)) {
		case C_SPACE:
			end_word(&c);
			break;
		case C_DROP:
			break;
		case C_PUNCT:
			end_word(&c);
			add_to_word(&c, cp);
			end_word(&c);
			break;
		default:
			if (t->wpm_lower && cp >= 'A' && cp <= 'Z')
				cp += 'a' - 'A';
			add_to_word(&c, cp);
		}
	}
	end_word(&c);
	return 0;
}

/* ---- setup --------------------------------------------------------------- */

static int bracketed(const char *s, size_t len)
{
	return len >= 2 && s[0] == '[' && s[len - 1] == ']';
}

int tok_wpm_init(struct tok *t, const struct gguf *g, char *err, size_t errsz)
{
	const char *name = gguf_name(g);
	if (t->unk < 0) {
		snprintf(err, errsz, "%s: WordPiece vocabulary without an unknown token "
			 "(tokenizer.ggml.unknown_token_id, or a token [UNK])", name);
		return -EINVAL;
	}
	/* The spelling: whichever marking the ordinary tokens carry more of.
	 * Cased or not: an uncased vocabulary has no token that lowercasing
	 * would change (BERT lowercases and strips accents exactly when the
	 * model was trained uncased; the GGUF does not say which). */
	int32_t n_phantom = 0, n_hash = 0;
	t->wpm_lower = 1;
	for (int32_t id = 0; id < t->n_vocab; id++) {
		size_t len;
		const char *s = tok_text(t, id, &len);
		if (!(t->attr[id] & TA_NORMAL) || bracketed(s, len))
			continue;
		if (len > 3 && memcmp(s, PHANTOM, 3) == 0)
			n_phantom++;
		else if (len > 2 && memcmp(s, "##", 2) == 0)
			n_hash++;
		const unsigned char *u = (const unsigned char *)s;
		for (size_t i = 0; i < len && t->wpm_lower;) {
			uint32_t cp;
			i += next_char(u + i, len - i, &cp);
			if (cp >= 'A' && (uint32_t)utf8proc_tolower((utf8proc_int32_t)cp) != cp)
				t->wpm_lower = 0;
		}
	}
	t->wpm_phantom = n_phantom > 0 && n_phantom >= n_hash;
	snprintf(t->pre_name, sizeof t->pre_name, "bert");
	return 0;
}
