/*
 * extract: a document's bytes -> UTF-8 text + a map back to the original.
 *
 * The text is built by appending pieces, each recorded as a span (see
 * index.h): bytes copied as they are (exact spans, merged while they stay
 * contiguous on both sides) or text standing in for a source range as a
 * whole (entities, collapsed white space, breaks made from tags, U+FFFD
 * for each byte that is not part of valid UTF-8). Every scan only moves
 * forward, so extraction is linear even on hostile markup.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "index/extract_internal.h"
#include "index/index.h"

/* ---- building the text ---------------------------------------------------- */

static int grow_text(struct extract_result *r, size_t add)
{
	if (r->len + add + 1 <= r->cap)
		return 0;
	size_t cap = r->cap ? r->cap : 256;
	while (cap < r->len + add + 1)
		cap *= 2;
	char *p = realloc(r->text, cap);
	if (!p)
		return -ENOMEM;
	r->text = p;
	r->cap = cap;
	return 0;
}

static int push_span(struct extract_result *r, size_t tlen, size_t src,
		     size_t slen, int exact)
{
	struct extract_span *last = r->n_spans ? &r->spans[r->n_spans - 1] : NULL;
	if (exact && last && last->exact && last->src_off + last->src_len == src) {
		last->text_len += tlen;
		last->src_len += slen;
		return 0;
	}
	/* a heading's newlines and its "# " both stand for the same tag */
	if (!exact && last && !last->exact && last->src_off == src && last->src_len == slen) {
		last->text_len += tlen;
		return 0;
	}
	if (r->n_spans == r->cap_spans) {
		size_t cap = r->cap_spans ? r->cap_spans * 2 : 16;
		struct extract_span *p = realloc(r->spans, cap * sizeof *p);
		if (!p)
			return -ENOMEM;
		r->spans = p;
		r->cap_spans = cap;
	}
	r->spans[r->n_spans++] = (struct extract_span){r->len, tlen, src, slen, exact};
	return 0;
}

/* Append text standing for source [src, src + slen); exact when it is
 * those very bytes. */
static int emit(struct extract_result *r, const char *s, size_t n, size_t src,
		size_t slen, int exact)
{
	if (!n)
		return 0;
	if (grow_text(r, n) || push_span(r, n, src, slen, exact))
		return -ENOMEM;
	memcpy(r->text + r->len, s, n);
	r->len += n;
	r->text[r->len] = 0;
	return 0;
}

size_t extract_utf8_valid(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t k;
	unsigned lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		k = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		k = 3;
		if (c == 0xe0)
			lo = 0xa0;
		if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		k = 4;
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return k;
}

static const char REPL[] = "\xef\xbf\xbd"; /* U+FFFD */

/* Copy src[a, b) as UTF-8: valid runs exactly, each bad byte as U+FFFD. */
static int emit_utf8(struct extract_result *r, const unsigned char *src,
		     size_t a, size_t b)
{
	size_t i = a, run = a;
	while (i < b) {
		size_t k = extract_utf8_valid(src + i, b - i);
		if (k) {
			i += k;
			continue;
		}
		if (emit(r, (const char *)src + run, i - run, run, i - run, 1) ||
		    emit(r, REPL, 3, i, 1, 0))
			return -ENOMEM;
		run = ++i;
	}
	return emit(r, (const char *)src + run, b - run, run, b - run, 1);
}

static size_t utf8_put(char *o, unsigned cp)
{
	if (cp == 0 || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		cp = 0xfffd;
	if (cp < 0x80) {
		o[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (char)(0xc0 | cp >> 6);
		o[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (char)(0xe0 | cp >> 12);
		o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		o[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	o[0] = (char)(0xf0 | cp >> 18);
	o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	o[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* ---- HTML ------------------------------------------------------------------ */

static const struct {
	const char *name;
	unsigned cp;
} ENTITIES[] = {
	{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''},
	{"nbsp", 0xa0}, {"copy", 0xa9}, {"reg", 0xae}, {"trade", 0x2122},
	{"hellip", 0x2026}, {"mdash", 0x2014}, {"ndash", 0x2013},
	{"lsquo", 0x2018}, {"rsquo", 0x2019}, {"sbquo", 0x201a},
	{"ldquo", 0x201c}, {"rdquo", 0x201d}, {"bdquo", 0x201e},
	{"laquo", 0xab}, {"raquo", 0xbb}, {"bull", 0x2022}, {"middot", 0xb7},
	{"deg", 0xb0}, {"plusmn", 0xb1}, {"times", 0xd7}, {"divide", 0xf7},
	{"euro", 0x20ac}, {"pound", 0xa3}, {"yen", 0xa5}, {"cent", 0xa2},
	{"sect", 0xa7}, {"para", 0xb6}, {"shy", 0xad}, {"iexcl", 0xa1},
	{"iquest", 0xbf}, {"dagger", 0x2020}, {"Dagger", 0x2021},
	{"larr", 0x2190}, {"rarr", 0x2192}, {"uarr", 0x2191}, {"darr", 0x2193},
	{"harr", 0x2194}, {"le", 0x2264}, {"ge", 0x2265}, {"ne", 0x2260},
	{"infin", 0x221e}, {"micro", 0xb5}, {"frac12", 0xbd}, {"frac14", 0xbc},
	{"frac34", 0xbe}, {"sup2", 0xb2}, {"sup3", 0xb3}, {"ensp", 0x2002},
	{"emsp", 0x2003}, {"thinsp", 0x2009}, {"zwj", 0x200d}, {"zwnj", 0x200c},
	{"alpha", 0x3b1}, {"beta", 0x3b2}, {"gamma", 0x3b3}, {"delta", 0x3b4},
	{"pi", 0x3c0}, {"sigma", 0x3c3}, {"lambda", 0x3bb}, {"mu", 0x3bc},
	{"Agrave", 0xc0}, {"Aacute", 0xc1}, {"Acirc", 0xc2}, {"Auml", 0xc4},
	{"Aring", 0xc5}, {"AElig", 0xc6}, {"Ccedil", 0xc7}, {"Egrave", 0xc8},
	{"Eacute", 0xc9}, {"Ecirc", 0xca}, {"Iacute", 0xcd}, {"Ntilde", 0xd1},
	{"Oacute", 0xd3}, {"Ouml", 0xd6}, {"Oslash", 0xd8}, {"Uacute", 0xda},
	{"Uuml", 0xdc}, {"szlig", 0xdf}, {"agrave", 0xe0}, {"aacute", 0xe1},
	{"acirc", 0xe2}, {"atilde", 0xe3}, {"auml", 0xe4}, {"aring", 0xe5},
	{"aelig", 0xe6}, {"ccedil", 0xe7}, {"egrave", 0xe8}, {"eacute", 0xe9},
	{"ecirc", 0xea}, {"euml", 0xeb}, {"igrave", 0xec}, {"iacute", 0xed},
	{"icirc", 0xee}, {"iuml", 0xef}, {"ntilde", 0xf1}, {"ograve", 0xf2},
	{"oacute", 0xf3}, {"ocirc", 0xf4}, {"otilde", 0xf5}, {"ouml", 0xf6},
	{"oslash", 0xf8}, {"ugrave", 0xf9}, {"uacute", 0xfa}, {"ucirc", 0xfb},
	{"uuml", 0xfc}, {"yacute", 0xfd}, {"yuml", 0xff},
};

/* Decode the entity at s[0] == '&' (n bytes available): its code point and
 * source length, or 0 when it is not one (the '&' is then literal text).
 * Named entities need their ';'; numeric ones take it when present. */
static size_t entity(const unsigned char *s, size_t n, unsigned *cp)
{
	size_t i = 1;
	if (n > 2 && s[1] == '#') {
		int hex = n > 3 && (s[2] == 'x' || s[2] == 'X');
		i = hex ? 3 : 2;
		size_t d0 = i;
		unsigned long v = 0;
		while (i < n && (hex ? isxdigit(s[i]) : isdigit(s[i]))) {
			unsigned dv = isdigit(s[i]) ? s[i] - '0' : (s[i] | 0x20) - 'a' + 10;
			if (v <= 0x10ffff)
				v = v * (hex ? 16 : 10) + dv;
			i++;
		}
		if (i == d0)
			return 0;
		*cp = v > 0x10ffff ? 0xfffd : (unsigned)v;
		return i < n && s[i] == ';' ? i + 1 : i;
	}
	while (i < n && i <= 10 && isalnum(s[i]))
		i++;
	if (i == 1 || i >= n || s[i] != ';')
		return 0;
	for (size_t e = 0; e < sizeof ENTITIES / sizeof ENTITIES[0]; e++)
		if (strlen(ENTITIES[e].name) == i - 1 &&
		    !memcmp(ENTITIES[e].name, s + 1, i - 1)) {
			*cp = ENTITIES[e].cp;
			return i + 1;
		}
	return 0;
}

/* Tags that end a block: 2 = paragraph (blank line), 1 = line. */
static int block_level(const char *name)
{
	static const char *para[] = {
		"p", "div", "ul", "ol", "dl", "table", "section", "article",
		"header", "footer", "nav", "aside", "blockquote", "pre", "hr",
		"title", "main", "figure", "figcaption", "form", "address",
		"details", "summary", "body", "html", "head", "fieldset", NULL};
	static const char *line[] = {"br", "li", "tr", "dt", "dd", "caption",
				     "option", NULL};
	for (int i = 0; para[i]; i++)
		if (!strcmp(name, para[i]))
			return 2;
	for (int i = 0; line[i]; i++)
		if (!strcmp(name, line[i]))
			return 1;
	return 0;
}

struct html {
	struct extract_result *r;
	const unsigned char *s;
	size_t n;
	size_t ws, ws_len; /* pending white space in the source, ws_len 0: none */
	size_t no_gt_from; /* no '>' at or after this offset (n: unknown) */
};

static int at_line_start(const struct extract_result *r)
{
	return !r->len || r->text[r->len - 1] == '\n';
}

/* Collapsed white space becomes one space, only between words on a line. */
static int flush_ws(struct html *h)
{
	int rc = 0;
	if (h->ws_len && !at_line_start(h->r))
		rc = emit(h->r, " ", 1, h->ws, h->ws_len, 0);
	h->ws_len = 0;
	return rc;
}

/* Make the text end in `level` newlines (never at its very start); the
 * newlines stand for the tag at [src, src + slen). */
static int brk(struct html *h, int level, size_t src, size_t slen)
{
	h->ws_len = 0;
	struct extract_result *r = h->r;
	if (!r->len)
		return 0;
	int have = 0;
	while (have < 2 && (size_t)have < r->len && r->text[r->len - 1 - have] == '\n')
		have++;
	if (have >= level)
		return 0;
	return emit(r, "\n\n", (size_t)(level - have), src, slen, 0);
}

/* Case-insensitive search for the ASCII string pat in s[from, n). */
static size_t find_ci(const unsigned char *s, size_t n, size_t from, const char *pat)
{
	size_t m = strlen(pat);
	for (size_t i = from; i + m <= n; i++) {
		const void *p = memchr(s + i, pat[0], n - i - m + 1);
		if (!p)
			break;
		i = (size_t)((const unsigned char *)p - s);
		if (!strncasecmp((const char *)s + i, pat, m))
			return i;
	}
	return n;
}

static size_t find_gt(struct html *h, size_t from)
{
	if (from >= h->no_gt_from)
		return h->n;
	const unsigned char *p = memchr(h->s + from, '>', h->n - from);
	if (!p) {
		h->no_gt_from = from;
		return h->n;
	}
	return (size_t)(p - h->s);
}

/* The markup at s[i] == '<': returns the offset after it, or i when the
 * '<' is literal text (not followed by a tag name, '/', '!' or '?', or no
 * '>' follows). */
static int html_markup(struct html *h, size_t i, size_t *next)
{
	const unsigned char *s = h->s;
	size_t n = h->n;
	*next = i;
	if (i + 1 >= n)
		return 0;
	if (i + 3 < n && !memcmp(s + i, "<!--", 4)) {
		size_t e = find_ci(s, n, i + 4, "-->");
		*next = e == n ? n : e + 3;
		return 0;
	}
	if (s[i + 1] == '!' || s[i + 1] == '?') {
		size_t e = find_gt(h, i + 1);
		*next = e == n ? i : e + 1;
		return 0;
	}
	int close = s[i + 1] == '/';
	size_t j = i + 1 + (size_t)close;
	if (j >= n || !isalpha(s[j]))
		return 0;
	size_t e = find_gt(h, j);
	if (e == n)
		return 0;
	char name[16];
	size_t k = 0;
	while (j < e && isalnum(s[j]) && k < sizeof name - 1)
		name[k++] = (char)tolower(s[j++]);
	name[k] = 0;
	if (j < e && isalnum(s[j]))
		name[0] = 0; /* longer than any tag we know */
	*next = e + 1;
	size_t tag = i, tag_len = e + 1 - i;
	int self_closing = e > i && s[e - 1] == '/';
	if (!close && !self_closing && (!strcmp(name, "script") || !strcmp(name, "style"))) {
		size_t c = find_ci(s, n, e + 1, !strcmp(name, "script") ? "</script" : "</style");
		if (c == n) {
			*next = n;
		} else {
			size_t g = find_gt(h, c);
			*next = g == n ? n : g + 1;
		}
		return 0;
	}
	if (name[0] == 'h' && name[1] >= '1' && name[1] <= '6' && !name[2]) {
		int rc = brk(h, 2, tag, tag_len);
		if (rc || close)
			return rc;
		static const char hashes[] = "###### ";
		int lv = name[1] - '0';
		return emit(h->r, hashes + 6 - lv, (size_t)lv + 1, tag, tag_len, 0);
	}
	int lv = block_level(name);
	if (lv)
		return brk(h, lv, tag, tag_len);
	if (!strcmp(name, "td") || !strcmp(name, "th")) {
		/* cells on one line, apart */
		if (!h->ws_len) {
			h->ws = tag;
			h->ws_len = tag_len;
		}
	}
	return 0;
}

static int extract_html(struct extract_result *r, const unsigned char *s, size_t n,
			size_t start)
{
	struct html h = {r, s, n, 0, 0, n};
	size_t i = start;
	while (i < n) {
		unsigned c = s[i];
		if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			if (!h.ws_len)
				h.ws = i;
			h.ws_len = i + 1 - h.ws;
			i++;
			continue;
		}
		if (c == '<') {
			size_t next;
			int rc = html_markup(&h, i, &next);
			if (rc)
				return rc;
			if (next != i) {
				i = next;
				continue;
			}
		}
		if (flush_ws(&h))
			return -ENOMEM;
		if (c == '&') {
			unsigned cp;
			size_t el = entity(s + i, n - i, &cp);
			if (el) {
				char u[4];
				if (emit(r, u, utf8_put(u, cp), i, el, 0))
					return -ENOMEM;
				i += el;
				continue;
			}
		}
		/* a run of plain text up to the next markup, entity or space */
		size_t j = i + 1;
		while (j < n && s[j] != '<' && s[j] != '&' && s[j] != ' ' && s[j] != '\t' &&
		       s[j] != '\n' && s[j] != '\r' && s[j] != '\f' && s[j] != '\v')
			j++;
		if (emit_utf8(r, s, i, j))
			return -ENOMEM;
		i = j;
	}
	/* trailing breaks carry no text */
	while (r->len && r->text[r->len - 1] == '\n') {
		struct extract_span *sp = &r->spans[r->n_spans - 1];
		if (sp->exact)
			break;
		r->len--;
		r->text[r->len] = 0;
		if (!--sp->text_len)
			r->n_spans--;
	}
	return 0;
}

/* ---- the entry points ----------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int refuse(struct extract_result *r, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof r->reason, fmt, ap);
	va_end(ap);
	return rc;
}

void extract_free(struct extract_result *r)
{
	if (!r)
		return;
	free(r->text);
	free(r->spans);
	r->text = NULL;
	r->spans = NULL;
	r->len = r->n_spans = r->cap = r->cap_spans = 0;
}

int extract_text(const char *path, const void *buf, size_t len,
		 struct extract_result *out)
{
	memset(out, 0, sizeof *out);
	const unsigned char *s = buf;
	const char *base = strrchr(path ? path : "", '/');
	base = base ? base + 1 : (path ? path : "");
	const char *dot = strrchr(base, '.');
	if (!dot || dot == base)
		return refuse(out, -ENOTSUP, "unsupported type (no extension)");
	const char *ext = dot + 1;
	enum { TXT, MD, HTML, PDF } kind;
	if (!strcasecmp(ext, "txt") || !strcasecmp(ext, "text"))
		kind = TXT;
	else if (!strcasecmp(ext, "md") || !strcasecmp(ext, "markdown"))
		kind = MD;
	else if (!strcasecmp(ext, "html") || !strcasecmp(ext, "htm") || !strcasecmp(ext, "xhtml"))
		kind = HTML;
	else if (!strcasecmp(ext, "pdf"))
		kind = PDF;
	else {
		char e[24];
		snprintf(e, sizeof e, "%s", dot);
		for (char *p = e; *p; p++)
			if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
				*p = '?';
		return refuse(out, -ENOTSUP, "unsupported type %s", e);
	}
	if (kind == PDF) {
		out->type = "pdf";
		return extract_pdf(s, len, out);
	}
	out->type = kind == HTML ? "html" : kind == MD ? "markdown" : "text";
	/* the extension picks the format: a PDF's bytes are not text */
	if (len >= 5 && !memcmp(s, "%PDF-", 5))
		return refuse(out, -ENOTSUP, "%s: a PDF file, not text (name it .pdf to index it)", dot);
	const unsigned char *nul = len ? memchr(s, 0, len) : NULL;
	if (nul)
		return refuse(out, -EILSEQ, "binary file (NUL byte at offset %llu)",
			      (unsigned long long)(nul - s));
	/* Text has few C0 controls besides white space; escape sequences in
	 * logs are fine, a file of them is not. */
	size_t ctl = 0;
	for (size_t i = 0; i < len; i++)
		if (s[i] < 0x20 && s[i] != '\t' && s[i] != '\n' && s[i] != '\r' &&
		    s[i] != '\f' && s[i] != '\v' && s[i] != 0x1b)
			ctl++;
	if (len && ctl * 10 > len)
		return refuse(out, -EILSEQ, "binary file (%llu%% control bytes)",
			      (unsigned long long)(ctl * 100 / len));
	size_t start = len >= 3 && !memcmp(s, "\xef\xbb\xbf", 3) ? 3 : 0;
	if (grow_text(out, 0))
		return -ENOMEM;
	out->text[0] = 0;
	int rc = kind == HTML ? extract_html(out, s, len, start) : emit_utf8(out, s, start, len);
	if (rc) {
		extract_free(out);
		snprintf(out->reason, sizeof out->reason, "out of memory");
	}
	return rc;
}

static size_t find_span(const struct extract_result *r, size_t t)
{
	size_t lo = 0, hi = r->n_spans;
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->spans[mid].text_off <= t)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int extract_src_range(const struct extract_result *r, size_t t0, size_t t1,
		      size_t *s0, size_t *s1)
{
	if (t0 >= t1 || t1 > r->len || !r->n_spans)
		return -EINVAL;
	const struct extract_span *a = &r->spans[find_span(r, t0)];
	const struct extract_span *b = &r->spans[find_span(r, t1 - 1)];
	*s0 = a->exact ? a->src_off + (t0 - a->text_off) : a->src_off;
	*s1 = b->exact ? b->src_off + (t1 - b->text_off) : b->src_off + b->src_len;
	return 0;
}
