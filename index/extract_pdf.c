/*
 * extract_pdf: a PDF's text, through poppler-glib.
 *
 * Poppler parses the caller's buffer in place (no copy) and gives each
 * page's text in reading order, one line per '\n'. The pages are joined by
 * a blank line and normalised as the other formats are: valid UTF-8 (each
 * bad byte, and each C0 control other than white space, becomes U+FFFD),
 * no spaces at the end of a line, never more than one blank line in a row,
 * none at the start or the end.
 *
 * A PDF's text has no byte-for-byte place in the (usually compressed)
 * file, so the offset map is the identity over the extracted text: one
 * exact span whose source is the text itself (see extract_text in index.h).
 *
 * Thread-safety: every call opens its own PopplerDocument; poppler keeps
 * its global parameters reference-counted under its own lock.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <poppler.h>

#include "index/extract_internal.h"
#include "index/index.h"

static const char REPL[] = "\xef\xbf\xbd"; /* U+FFFD */

/* ---- refusals ---------------------------------------------------------------- */

__attribute__((format(printf, 3, 4)))
static int refuse(struct extract_result *r, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->reason, sizeof r->reason, fmt, ap);
	va_end(ap);
	/* one line, whatever a library message held */
	for (char *p = r->reason; *p; p++)
		if ((unsigned char)*p < 0x20)
			*p = ' ';
	return rc;
}

/* What a file that is not a PDF looks like, for the refusal. */
static const char *not_pdf(const unsigned char *s, size_t n)
{
	static const struct {
		const char *magic;
		size_t len;
		const char *what;
	} KNOWN[] = {
		{"\xff\xd8\xff", 3, "a JPEG image"},
		{"\x89PNG\r\n\x1a\n", 8, "a PNG image"},
		{"GIF87a", 6, "a GIF image"},
		{"GIF89a", 6, "a GIF image"},
		{"II*\0", 4, "a TIFF image"},
		{"MM\0*", 4, "a TIFF image"},
		{"PK\x03\x04", 4, "a ZIP archive (or an Office/OpenDocument file)"},
		{"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", 8, "an old Microsoft Office file"},
		{"\x1f\x8b", 2, "a gzip file"},
		{"%!PS", 4, "a PostScript file"},
	};
	for (size_t i = 0; i < sizeof KNOWN / sizeof KNOWN[0]; i++)
		if (n >= KNOWN[i].len && !memcmp(s, KNOWN[i].magic, KNOWN[i].len))
			return KNOWN[i].what;
	return NULL;
}

/* Readers accept the "%PDF-" header anywhere in the first 1024 bytes
 * (junk from mail gateways and downloads comes before it); so do we. */
static int has_pdf_header(const unsigned char *s, size_t n)
{
	size_t lim = n < 1024 ? n : 1024;
	for (size_t i = 0; i + 5 <= lim; i++)
		if (s[i] == '%' && !memcmp(s + i, "%PDF-", 5))
			return 1;
	return 0;
}

/* ---- the text ---------------------------------------------------------------- */

struct norm {
	char *p;
	size_t len, cap;
	size_t nl;         /* line breaks since the last text, not yet written */
	const char *ws;    /* spaces and tabs since the last text, not yet written */
	size_t ws_len;
};

static int put(struct norm *z, const char *s, size_t n)
{
	if (z->len + n + 1 > z->cap) {
		size_t cap = z->cap ? z->cap : 4096;
		while (cap < z->len + n + 1)
			cap *= 2;
		char *p = realloc(z->p, cap);
		if (!p)
			return -ENOMEM;
		z->p = p;
		z->cap = cap;
	}
	memcpy(z->p + z->len, s, n);
	z->len += n;
	z->p[z->len] = 0;
	return 0;
}

/* Text that is not white space: the pending breaks (at most a blank line,
 * none at the start) and the pending spaces go first. */
static int put_text(struct norm *z, const char *s, size_t n)
{
	if (z->nl && z->len && put(z, "\n\n", z->nl < 2 ? 1 : 2))
		return -ENOMEM;
	z->nl = 0;
	if (z->ws_len && put(z, z->ws, z->ws_len))
		return -ENOMEM;
	z->ws_len = 0;
	return put(z, s, n);
}

static int add_page(struct norm *z, const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		if (c == ' ' || c == '\t') {
			if (!z->ws_len)
				z->ws = (const char *)s + i;
			z->ws_len++;
			i++;
			continue;
		}
		if (c == '\n' || c == '\r' || c == '\f' || c == '\v') {
			if (!(c == '\n' && i && s[i - 1] == '\r'))
				z->nl++;
			z->ws_len = 0; /* trailing spaces */
			i++;
			continue;
		}
		size_t k = c < 0x20 ? 0 : extract_utf8_valid(s + i, n - i);
		if (k ? put_text(z, (const char *)s + i, k) : put_text(z, REPL, 3))
			return -ENOMEM;
		i += k ? k : 1;
	}
	z->ws_len = 0; /* z->ws points into this page's text */
	if (z->nl < 2)
		z->nl = 2; /* the next page's text starts after a blank line */
	return 0;
}

/* ---- poppler ----------------------------------------------------------------- */

static void drop_log(const gchar *domain, GLogLevelFlags level, const gchar *msg,
		     gpointer data)
{
	(void)domain, (void)level, (void)msg, (void)data;
}

/* Poppler reports every oddity of a broken file through GLib's log, domain
 * "Poppler" (as INFO, printed when G_MESSAGES_DEBUG is set; poppler-glib's
 * own warnings go there too). Library code does not print, so that domain
 * is silenced for the whole process, once; what matters reaches the caller
 * as the GError's message. */
static void quiet_poppler(void)
{
	static gsize done;
	if (g_once_init_enter(&done)) {
		g_log_set_handler("Poppler", G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL |
					     G_LOG_FLAG_RECURSION, drop_log, NULL);
		g_once_init_leave(&done, 1);
	}
}

int extract_pdf(const unsigned char *buf, size_t len, struct extract_result *out)
{
	if (!len)
		return refuse(out, -EILSEQ, "empty file, not a PDF");
	if (!has_pdf_header(buf, len)) {
		const char *what = not_pdf(buf, len);
		if (what)
			return refuse(out, -EILSEQ, "%s, not a PDF", what);
		return refuse(out, -EILSEQ, "not a PDF (no %%PDF- header)");
	}
	quiet_poppler();
	/* poppler reads the bytes only until the document is unreferenced,
	 * below: the caller's buffer outlives this call */
	GBytes *bytes = g_bytes_new_static(buf, len);
	GError *err = NULL;
	PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &err);
	g_bytes_unref(bytes);
	if (!doc) {
		int enc = err && err->domain == POPPLER_ERROR && err->code == POPPLER_ERROR_ENCRYPTED;
		int rc = enc ? refuse(out, -ENOTSUP, "encrypted PDF (needs a password)")
			     : refuse(out, -EILSEQ, "corrupt PDF: %s",
				      err && err->message ? err->message : "poppler could not open it");
		if (err)
			g_error_free(err);
		return rc;
	}
	int n_pages = poppler_document_get_n_pages(doc);
	struct norm z = {0};
	int rc = 0;
	for (int i = 0; i < n_pages && !rc; i++) {
		PopplerPage *page = poppler_document_get_page(doc, i);
		if (!page)
			continue;
		char *t = poppler_page_get_text(page);
		if (t)
			rc = add_page(&z, (const unsigned char *)t, strlen(t));
		g_free(t);
		g_object_unref(page);
	}
	g_object_unref(doc);
	if (!rc && z.len) {
		out->spans = malloc(sizeof *out->spans);
		if (!out->spans)
			rc = -ENOMEM;
	}
	if (rc || !z.len) {
		free(z.p);
		if (rc)
			return refuse(out, rc, "out of memory");
		if (!n_pages)
			return refuse(out, -ENOTSUP, "PDF has no pages");
		return refuse(out, -ENOTSUP, "PDF has no text layer (%d page%s; scanned?)",
			      n_pages, n_pages == 1 ? "" : "s");
	}
	out->text = z.p;
	out->len = z.len;
	out->cap = z.cap;
	out->spans[0] = (struct extract_span){0, z.len, 0, z.len, 1};
	out->n_spans = out->cap_spans = 1;
	return 0;
}
