/*
 * chunk: extracted text -> chunks bounded in tokens, with their byte ranges
 * in the original file.
 *
 * The text is cut into sections at headings; a section is walked one chunk
 * at a time. From the chunk's start, pieces (a word and the white space
 * after it, or at most PIECE_MAX bytes of a longer word) are tokenized one
 * by one and their counts summed until the sum passes the target or
 * max_bytes is reached; each piece end is a candidate end, ranked by what
 * it follows (paragraph break > line or sentence end > word). The chunk
 * ends at the best-ranked candidate in the latter half of what fits, its
 * exact count is checked with one more tok_encode, and the next chunk
 * starts at the candidate that leaves about overlap_tokens in common.
 * Summing per piece is exact for WordPiece (it cuts words at white space)
 * and close for the others; the check keeps the bound exact for all.
 * Only a window of at most max_bytes is ever tokenized per chunk, and the
 * start advances by at least half a chunk, so time is linear in the text.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "index/index.h"

#define PIECE_MAX 64

enum { LV_CHAR, LV_WORD, LV_LINE, LV_PARA, LV_END };

struct cand {
	size_t off;   /* the piece ends here (the next one starts here) */
	long cum;     /* tokens from the chunk start to off, summed per piece */
	int level;
};

struct counter {
	const struct tok *t;
	int32_t *ids;
	int64_t cap;
};

/* Without a tokenizer (an index with no embedding model) a chunk's
 * tokens are estimated the way WordPiece tends to cut English: a word of
 * letters and digits counts one token per started 6 bytes, every other
 * non-space byte one. */
static int64_t estimate(const char *s, size_t n)
{
	int64_t k = 0;
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			i++;
		} else if ((unsigned)(c | 0x20) - 'a' < 26u || (unsigned)c - '0' < 10u || c >= 0x80) {
			size_t j = i;
			while (j < n && ((unsigned)((unsigned char)s[j] | 0x20) - 'a' < 26u ||
					 (unsigned)(unsigned char)s[j] - '0' < 10u ||
					 (unsigned char)s[j] >= 0x80))
				j++;
			k += (int64_t)(j - i + 5) / 6;
			i = j;
		} else {
			k++;
			i++;
		}
	}
	return k;
}

/* Tokens in s[0, n), or a negative errno. */
static int64_t count(struct counter *c, const char *s, size_t n)
{
	if (!n)
		return 0;
	if (!c->t)
		return estimate(s, n);
	int64_t need = (int64_t)n * 2 + 16;
	for (;;) {
		if (c->cap < need) {
			int32_t *p = realloc(c->ids, (size_t)need * sizeof *p);
			if (!p)
				return -ENOMEM;
			c->ids = p;
			c->cap = need;
		}
		int64_t r = tok_encode(c->t, s, n, 0, c->ids, c->cap);
		if (r >= 0)
			return r;
		if (-r <= c->cap)
			return r; /* an error, not a size */
		need = -r;
	}
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* A markdown heading starts at line start i: 1-6 '#', then a space, tab,
 * line end or the end of the text. */
static int heading_at(const char *s, size_t n, size_t i)
{
	size_t k = 0;
	while (i + k < n && s[i + k] == '#' && k < 7)
		k++;
	return k >= 1 && k <= 6 && (i + k == n || s[i + k] == ' ' || s[i + k] == '\t' ||
				    s[i + k] == '\n' || s[i + k] == '\r');
}

/* The first heading start at or after from, or n. */
static size_t next_heading(const char *s, size_t n, size_t from)
{
	size_t i = from;
	if (i < n && (i == 0 || s[i - 1] == '\n') && heading_at(s, n, i))
		return i;
	while (i < n) {
		const char *p = memchr(s + i, '\n', n - i);
		if (!p)
			return n;
		i = (size_t)(p - s) + 1;
		if (heading_at(s, n, i))
			return i;
	}
	return n;
}

static size_t trim_end(const char *s, size_t a, size_t e)
{
	while (e > a && is_ws(s[e - 1]))
		e--;
	return e;
}

static size_t char_start(const char *s, size_t a, size_t e)
{
	while (e > a && ((unsigned char)s[e] & 0xc0) == 0x80)
		e--;
	return e;
}

static int push_chunk(struct chunk_list *l, const struct extract_result *x,
		      size_t a, size_t e, int64_t ntok)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		struct chunk *p = realloc(l->v, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		l->v = p;
		l->cap = cap;
	}
	struct chunk *c = &l->v[l->n];
	memset(c, 0, sizeof *c);
	c->text = malloc(e - a + 1);
	if (!c->text)
		return -ENOMEM;
	memcpy(c->text, x->text + a, e - a);
	c->text[e - a] = 0;
	c->len = e - a;
	c->text_start = a;
	c->text_end = e;
	c->n_tokens = (int)ntok;
	int rc = extract_src_range(x, a, e, &c->src_start, &c->src_end);
	if (rc) {
		free(c->text);
		return rc;
	}
	l->n++;
	return 0;
}

/* Largest end in (a, hi] at a character boundary whose trimmed text fits
 * in target tokens, found by bisection; at least one character. hi is a
 * character boundary. *ntok gets the count of the text up to *end. */
static int fit_chars(struct counter *c, const char *s, size_t a, size_t hi,
		     long target, int64_t *ntok, size_t *end)
{
	size_t lo = a + 1;
	while (lo < hi && ((unsigned char)s[lo] & 0xc0) == 0x80)
		lo++;
	int64_t r = count(c, s + a, trim_end(s, a, lo) - a);
	if (r < 0)
		return (int)r;
	*ntok = r;
	while (lo < hi) {
		size_t m = char_start(s, lo, lo + (hi - lo + 1) / 2);
		if (m == lo) {
			m = lo + (hi - lo + 1) / 2;
			while (m < hi && ((unsigned char)s[m] & 0xc0) == 0x80)
				m++;
		}
		int64_t k = count(c, s + a, trim_end(s, a, m) - a);
		if (k < 0)
			return (int)k;
		if (k <= target) {
			lo = m;
			*ntok = k;
		} else {
			hi = char_start(s, lo, m - 1);
		}
	}
	*end = lo;
	return 0;
}

void chunk_list_free(struct chunk_list *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].text);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

int chunk_text(const struct extract_result *x, const struct tok *t,
	       const struct chunk_opts *opts, struct chunk_list *out)
{
	memset(out, 0, sizeof *out);
	struct chunk_opts o = {CHUNK_TARGET_DEFAULT, CHUNK_OVERLAP_DEFAULT, 0};
	if (opts)
		o = *opts;
	if (o.target_tokens < 8 || o.overlap_tokens < 0 || o.overlap_tokens * 2 >= o.target_tokens)
		return -EINVAL;
	if (!o.max_bytes)
		o.max_bytes = (size_t)o.target_tokens * 16;
	if (o.max_bytes < PIECE_MAX)
		o.max_bytes = PIECE_MAX;
	const char *s = x->text;
	size_t n = x->len;
	const long target = o.target_tokens;
	struct counter ctr = {t, NULL, 0};
	/* a piece is at least one byte, so a window has at most max_bytes */
	struct cand *cv = malloc((o.max_bytes + 1) * sizeof *cv);
	if (!cv)
		return -ENOMEM;
	int rc = 0;
	size_t pos = 0, sec_end = 0;
	/* the previous chunk's end, and where the next would start without
	 * overlap: a chunk that would end inside the previous one (the text
	 * after the overlap does not fit) is dropped and the walk resumes
	 * without overlap, so every chunk adds text */
	size_t prev_end = 0, resume = 0;
	for (;;) {
		while (pos < n && is_ws(s[pos]))
			pos++;
		if (pos >= n)
			break;
		if (pos >= sec_end)
			sec_end = next_heading(s, n, pos + 1);
		size_t limit = sec_end - pos > o.max_bytes ? pos + o.max_bytes : sec_end;
		size_t nc = 0, i = pos;
		long cum = 0;
		while (i < limit) {
			size_t j = i;
			int level;
			while (j < limit && !is_ws(s[j]) && j - i < PIECE_MAX)
				j++;
			if (j < limit && !is_ws(s[j])) {
				j = char_start(s, i, j);
				level = LV_CHAR;
			} else if (j == limit && limit != sec_end) {
				/* the window ends inside a word */
				j = j < n ? char_start(s, i, j) : j;
				level = LV_CHAR;
			} else {
				size_t k = j;
				int nl = 0;
				while (k < limit && is_ws(s[k]))
					nl += s[k++] == '\n';
				char p = j > i ? s[j - 1] : 0;
				char pp = j > i + 1 ? s[j - 2] : 0;
				int sentence = p == '.' || p == '!' || p == '?' ||
					       ((p == '"' || p == '\'' || p == ')') &&
						(pp == '.' || pp == '!' || pp == '?'));
				level = k == sec_end ? LV_END : nl >= 2 ? LV_PARA :
					nl == 1 || sentence ? LV_LINE : LV_WORD;
				if (k == limit && limit != sec_end)
					level = LV_WORD;
				j = k;
			}
			if (j <= i)
				break;
			int64_t k = count(&ctr, s + i, j - i);
			if (k < 0) {
				rc = (int)k;
				goto fail;
			}
			cum += (long)k;
			cv[nc++] = (struct cand){j, cum, level};
			i = j;
			if (cum > target)
				break;
		}
		/* fit: candidates [0, fit) are under the target by the sums */
		size_t fit = 0;
		while (fit < nc && cv[fit].cum <= target)
			fit++;
		size_t end = 0, next = 0, whole = 0; /* whole: next without overlap */
		int64_t ntok = -1;
		while (fit) {
			size_t best;
			if (cv[fit - 1].level == LV_END) {
				best = fit - 1;
			} else {
				long half = cv[fit - 1].cum / 2;
				best = fit - 1;
				for (size_t k = fit; k-- > 0 && cv[k].cum >= half;)
					if (cv[k].level > cv[best].level)
						best = k;
			}
			size_t e = trim_end(s, pos, cv[best].off);
			int64_t k = count(&ctr, s + pos, e - pos);
			if (k < 0) {
				rc = (int)k;
				goto fail;
			}
			if (k <= target) {
				end = e;
				ntok = k;
				next = whole = cv[best].off;
				/* overlap: the earliest piece start, in the
				 * chunk's second half, that leaves at most
				 * overlap_tokens to the end */
				if (cv[best].off < sec_end && o.overlap_tokens) {
					size_t mid = pos + (e - pos) / 2;
					for (size_t q = 0; q < best; q++)
						if (cv[q].off > mid &&
						    cv[best].cum - cv[q].cum <= o.overlap_tokens) {
							next = cv[q].off;
							break;
						}
				}
				break;
			}
			fit = best;
		}
		if (ntok < 0) {
			/* not even the first piece fits: cut inside it */
			size_t hi = nc ? cv[0].off : limit;
			rc = fit_chars(&ctr, s, pos, hi, target, &ntok, &end);
			if (rc)
				goto fail;
			end = trim_end(s, pos, end);
			next = whole = end;
		}
		if (out->n && end <= prev_end && pos < resume) {
			pos = resume;
			continue;
		}
		if (end > pos && (rc = push_chunk(out, x, pos, end, ntok)))
			goto fail;
		prev_end = end;
		resume = whole > pos ? whole : pos + 1;
		pos = next > pos ? next : end > pos ? end : pos + 1;
	}
	free(cv);
	free(ctr.ids);
	return 0;
fail:
	free(cv);
	free(ctr.ids);
	chunk_list_free(out);
	return rc;
}
