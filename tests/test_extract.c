/*
 * test_extract: document text extraction (index/extract.c): plain text,
 * markdown, HTML and PDF (real PDFs made with cairo at test time, broken
 * ones, hand-written encrypted ones), refusals with their reasons, invalid
 * UTF-8, and the map from text offsets back to bytes of the original file.
 */
#include <errno.h>
#include <pthread.h>
#include <unistd.h>

#include <cairo-pdf.h>
#include <fontconfig/fontconfig.h>

#include "index/index.h"
#include "testutil.h"

static int ex(const char *path, const char *src, struct extract_result *r)
{
	return extract_text(path, src, strlen(src), r);
}

/* Text of path/src must be want. */
static void check_text(const char *path, const char *src, const char *want)
{
	struct extract_result r;
	int rc = ex(path, src, &r);
	T_CHECK(rc == 0, "%s: rc %d (%s)", src, rc, r.reason);
	if (!rc)
		T_CHECK(r.len == strlen(want) && !strcmp(r.text, want),
			"%s:\n got  [%s]\n want [%s]", src, r.text, want);
	extract_free(&r);
}

/* The source of the first occurrence of word in the text is exactly orig. */
static void check_src(const char *path, const char *src, const char *word,
		      const char *orig)
{
	struct extract_result r;
	T_REQUIRE(ex(path, src, &r) == 0, "%s", r.reason);
	const char *p = strstr(r.text, word);
	T_CHECK(p, "%s not in [%s]", word, r.text);
	if (p) {
		size_t t0 = (size_t)(p - r.text), s0, s1;
		T_CHECK(!extract_src_range(&r, t0, t0 + strlen(word), &s0, &s1), "range");
		T_CHECK(s1 - s0 == strlen(orig) && !memcmp(src + s0, orig, s1 - s0),
			"%s maps to [%.*s], want [%s]", word, (int)(s1 - s0), src + s0, orig);
	}
	extract_free(&r);
}

/* Every text byte range maps into the original in order, and exact spans
 * are byte-for-byte copies. */
static void check_spans(const char *path, const char *src)
{
	struct extract_result r;
	T_REQUIRE(ex(path, src, &r) == 0, "%s", r.reason);
	size_t t = 0, s = 0;
	for (size_t i = 0; i < r.n_spans; i++) {
		const struct extract_span *sp = &r.spans[i];
		T_CHECK(sp->text_off == t && sp->text_len > 0, "span %zu text gap", i);
		T_CHECK(sp->src_off >= s && sp->src_off + sp->src_len <= strlen(src),
			"span %zu source out of order", i);
		if (sp->exact)
			T_CHECK(sp->text_len == sp->src_len &&
				!memcmp(r.text + sp->text_off, src + sp->src_off, sp->src_len),
				"span %zu not exact", i);
		t = sp->text_off + sp->text_len;
		s = sp->src_off + sp->src_len;
	}
	T_CHECK(t == r.len, "spans cover %zu of %zu text bytes", t, r.len);
	extract_free(&r);
}

static void check_refused(const char *path, const char *src, size_t len, int want_rc,
			  const char *want_reason)
{
	struct extract_result r;
	int rc = extract_text(path, src, len, &r);
	T_CHECK(rc == want_rc, "%s: rc %d, want %d", path, rc, want_rc);
	T_CHECK(!strcmp(r.reason, want_reason), "%s: reason [%s], want [%s]", path,
		r.reason, want_reason);
	T_CHECK(!r.text && !r.len, "%s: refused but has text", path);
	extract_free(&r);
}

/* ---- PDF --------------------------------------------------------------------- */

struct mem {
	unsigned char *p;
	size_t len, cap;
};

static void mem_put(struct mem *m, const void *s, size_t n)
{
	if (m->len + n > m->cap) {
		m->cap = (m->len + n) * 2;
		m->p = realloc(m->p, m->cap);
		T_REQUIRE(m->p, "out of memory");
	}
	memcpy(m->p + m->len, s, n);
	m->len += n;
}

static cairo_status_t mem_write(void *closure, const unsigned char *data, unsigned int n)
{
	mem_put(closure, data, n);
	return CAIRO_STATUS_SUCCESS;
}

/* A PDF with one page per entry of pages: its lines ('\n' apart) drawn
 * one under the other in DejaVu Sans; a NULL entry: a filled rectangle
 * and no text, as a scan would be. Caller frees. */
static unsigned char *make_pdf(const char *const *pages, int n_pages, size_t *len)
{
	struct mem m = {0};
	cairo_surface_t *sf = cairo_pdf_surface_create_for_stream(mem_write, &m, 595, 842);
	cairo_t *cr = cairo_create(sf);
	for (int i = 0; i < n_pages; i++) {
		if (!pages[i]) {
			cairo_set_source_rgb(cr, 0.2, 0.3, 0.4);
			cairo_rectangle(cr, 50, 50, 300, 200);
			cairo_fill(cr);
		} else {
			cairo_set_source_rgb(cr, 0, 0, 0);
			cairo_select_font_face(cr, "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL,
					       CAIRO_FONT_WEIGHT_NORMAL);
			cairo_set_font_size(cr, 12);
			char line[256];
			const char *p = pages[i];
			for (int y = 72; *p; y += 18) {
				size_t n = strcspn(p, "\n");
				snprintf(line, sizeof line, "%.*s", (int)n, p);
				cairo_move_to(cr, 72, y);
				cairo_show_text(cr, line);
				p += n + (p[n] == '\n');
			}
		}
		cairo_show_page(cr);
	}
	cairo_destroy(cr);
	cairo_surface_finish(sf);
	T_REQUIRE(cairo_surface_status(sf) == CAIRO_STATUS_SUCCESS, "cairo: %s",
		  cairo_status_to_string(cairo_surface_status(sf)));
	cairo_surface_destroy(sf);
	*len = m.len;
	return m.p;
}

/* A PDF written by hand: objs[i] is object i + 1; the cross-reference
 * table and the trailer (trailer_extra added to its dictionary) are made
 * here. Caller frees. */
static unsigned char *hand_pdf(const char *const *objs, int n, const char *trailer_extra,
			       size_t *len)
{
	struct mem m = {0};
	char line[1024];
	size_t off[16];
	T_REQUIRE(n < 16, "too many objects");
	mem_put(&m, "%PDF-1.4\n", 9);
	for (int i = 0; i < n; i++) {
		off[i] = m.len;
		int k = snprintf(line, sizeof line, "%d 0 obj\n%s\nendobj\n", i + 1, objs[i]);
		mem_put(&m, line, (size_t)k);
	}
	size_t xref = m.len;
	int k = snprintf(line, sizeof line, "xref\n0 %d\n0000000000 65535 f \n", n + 1);
	mem_put(&m, line, (size_t)k);
	for (int i = 0; i < n; i++) {
		k = snprintf(line, sizeof line, "%010zu 00000 n \n", off[i]);
		mem_put(&m, line, (size_t)k);
	}
	k = snprintf(line, sizeof line, "trailer\n<< /Size %d /Root 1 0 R %s >>\nstartxref\n%zu\n%%%%EOF\n",
		     n + 1, trailer_extra, xref);
	mem_put(&m, line, (size_t)k);
	*len = m.len;
	return m.p;
}

/* Spans of a PDF: the identity over the text, and exact. */
static void check_pdf_spans(const char *what, const struct extract_result *r)
{
	size_t t = 0;
	for (size_t i = 0; i < r->n_spans; i++) {
		const struct extract_span *sp = &r->spans[i];
		T_CHECK(sp->text_off == t && sp->text_len > 0, "%s: span %zu text gap", what, i);
		T_CHECK(sp->exact && sp->src_off == sp->text_off && sp->src_len == sp->text_len,
			"%s: span %zu is not the identity", what, i);
		T_CHECK(sp->text_off + sp->text_len <= r->len, "%s: span %zu past the text", what, i);
		t = sp->text_off + sp->text_len;
	}
	T_CHECK(t == r->len, "%s: spans cover %zu of %zu text bytes", what, t, r->len);
}

static int valid_utf8(const char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned char c = (unsigned char)s[i];
		size_t k = c < 0x80 ? 1 : c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
			c >= 0xf0 && c <= 0xf4 ? 4 : 0;
		if (!k || i + k > n)
			return 0;
		for (size_t j = 1; j < k; j++)
			if (((unsigned char)s[i + j] & 0xc0) != 0x80)
				return 0;
		i += k;
	}
	return 1;
}

/* stderr into a temporary file, to check that extraction prints nothing. */
struct quiet {
	int saved;
	FILE *f;
};

static void quiet_begin(struct quiet *q)
{
	fflush(stderr);
	q->f = tmpfile();
	T_REQUIRE(q->f, "tmpfile");
	q->saved = dup(2);
	T_REQUIRE(q->saved >= 0 && dup2(fileno(q->f), 2) == 2, "dup2");
}

/* Bytes written to stderr since quiet_begin; up to 200 of them in out. */
static long quiet_end(struct quiet *q, char *out, size_t cap)
{
	fflush(stderr);
	dup2(q->saved, 2);
	close(q->saved);
	long n = ftell(q->f);
	rewind(q->f);
	size_t got = fread(out, 1, cap - 1, q->f);
	out[got] = 0;
	fclose(q->f);
	return n;
}

static const char PAGE1[] = "The first page says hello.\nIt has two lines.";
static const char PAGE2[] = "Second page, goodbye.";
static const char WANT2[] = "The first page says hello.\nIt has two lines.\n\nSecond page, goodbye.";

struct pdf_job {
	const unsigned char *pdf;
	size_t len;
	int bad;
};

static void *pdf_worker(void *arg)
{
	struct pdf_job *j = arg;
	for (int i = 0; i < 8; i++) {
		struct extract_result r;
		int rc = extract_text("t.pdf", j->pdf, j->len, &r);
		if (rc || strcmp(r.text, WANT2))
			j->bad++;
		extract_free(&r);
	}
	return NULL;
}

static void test_pdf(void)
{
	struct extract_result r;
	size_t len;

	/* two pages: both texts, in order, a blank line between the pages */
	const char *two[] = {PAGE1, PAGE2};
	unsigned char *pdf = make_pdf(two, 2, &len);
	int rc = extract_text("docs/Two.PDF", pdf, len, &r);
	T_CHECK(rc == 0, "two pages: rc %d (%s)", rc, r.reason);
	if (!rc) {
		T_CHECK(!strcmp(r.text, WANT2) && r.len == strlen(WANT2),
			"two pages:\n got  [%s]\n want [%s]", r.text, WANT2);
		T_CHECK(r.type && !strcmp(r.type, "pdf"), "type %s", r.type);
		check_pdf_spans("two pages", &r);
		const char *p = strstr(r.text, "goodbye");
		size_t s0 = 0, s1 = 0;
		T_CHECK(p && !extract_src_range(&r, (size_t)(p - r.text), (size_t)(p - r.text) + 7,
						  &s0, &s1) &&
				s0 == (size_t)(p - r.text) && s1 == s0 + 7,
			"goodbye maps to [%zu, %zu)", s0, s1);
		T_CHECK(!extract_src_range(&r, 0, r.len, &s0, &s1) && s0 == 0 && s1 == r.len,
			"whole text maps to [%zu, %zu)", s0, s1);
	}
	extract_free(&r);

	/* several threads at once, each with its own document */
	pthread_t th[4];
	struct pdf_job jobs[4];
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct pdf_job){pdf, len, 0};
		T_REQUIRE(!pthread_create(&th[i], NULL, pdf_worker, &jobs[i]), "pthread_create");
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		T_CHECK(!jobs[i].bad, "thread %d: %d bad extractions", i, jobs[i].bad);
	}

	/* cut in half: poppler may rebuild what it can; never a crash, and a
	 * refusal says why */
	char err[200];
	struct quiet q;
	quiet_begin(&q);
	rc = extract_text("half.pdf", pdf, len / 2, &r);
	long noise = quiet_end(&q, err, sizeof err);
	T_CHECK(!noise, "half a PDF: %ld bytes on stderr: %s", noise, err);
	if (rc) {
		T_CHECK((rc == -EILSEQ || rc == -ENOTSUP) && r.reason[0] && !r.text,
			"half a PDF: rc %d reason [%s]", rc, r.reason);
	} else {
		T_CHECK(valid_utf8(r.text, r.len), "half a PDF: invalid UTF-8");
		check_pdf_spans("half a PDF", &r);
	}
	extract_free(&r);
	/* cut before "startxref": poppler rebuilds the cross-reference table
	 * from the objects, and all the text is there */
	size_t cut = len;
	for (size_t i = len - 9; i > 0 && cut == len; i--)
		if (!memcmp(pdf + i, "startxref", 9))
			cut = i;
	T_CHECK(cut < len, "no startxref in cairo's PDF");
	quiet_begin(&q);
	rc = extract_text("cut.pdf", pdf, cut, &r);
	noise = quiet_end(&q, err, sizeof err);
	T_CHECK(!noise, "no startxref: %ld bytes on stderr: %s", noise, err);
	T_CHECK(rc == 0 && !strcmp(r.text, WANT2), "no startxref: rc %d (%s) [%s]", rc, r.reason,
		r.text);
	extract_free(&r);
	free(pdf);

	/* accents, Greek, Cyrillic, the euro sign (all in DejaVu Sans) */
	const char *intl[] = {"Caf\xc3\xa9 \xc3\xbc" "ber na\xc3\xafve \xc3\x85ngstr\xc3\xb6m",
			      "Greek \xce\xbb\xcf\x8c\xce\xb3\xce\xbf\xcf\x82, Cyrillic \xd0\x96\xd1\x83\xd0\xba, 5 \xe2\x82\xac"};
	pdf = make_pdf(intl, 2, &len);
	rc = extract_text("intl.pdf", pdf, len, &r);
	T_CHECK(rc == 0, "intl: rc %d (%s)", rc, r.reason);
	if (!rc) {
		const char *want = "Caf\xc3\xa9 \xc3\xbc" "ber na\xc3\xafve \xc3\x85ngstr\xc3\xb6m\n\n"
				   "Greek \xce\xbb\xcf\x8c\xce\xb3\xce\xbf\xcf\x82, Cyrillic \xd0\x96\xd1\x83\xd0\xba, 5 \xe2\x82\xac";
		T_CHECK(!strcmp(r.text, want), "intl:\n got  [%s]\n want [%s]", r.text, want);
		check_pdf_spans("intl", &r);
	}
	extract_free(&r);
	free(pdf);

	/* a scan: pages with no text */
	const char *scan[] = {NULL, NULL, NULL};
	pdf = make_pdf(scan, 3, &len);
	check_refused("scan.pdf", (const char *)pdf, len, -ENOTSUP,
		      "PDF has no text layer (3 pages; scanned?)");
	free(pdf);
	pdf = make_pdf(scan, 1, &len);
	check_refused("scan1.pdf", (const char *)pdf, len, -ENOTSUP,
		      "PDF has no text layer (1 page; scanned?)");
	free(pdf);
	/* a text page among blank ones: no stray blank lines around it */
	const char *mixed[] = {NULL, "Only text.", NULL};
	pdf = make_pdf(mixed, 3, &len);
	T_CHECK(extract_text("mixed.pdf", pdf, len, &r) == 0 && !strcmp(r.text, "Only text."),
		"mixed: [%s] (%s)", r.text, r.reason);
	extract_free(&r);
	free(pdf);

	/* not PDFs */
	check_refused("empty.pdf", "", 0, -EILSEQ, "empty file, not a PDF");
	check_refused("empty.pdf", NULL, 0, -EILSEQ, "empty file, not a PDF");
	static const char jpeg[] = "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01"
				   "\x00\x00\xff\xd9";
	check_refused("photo.pdf", jpeg, sizeof jpeg - 1, -EILSEQ, "a JPEG image, not a PDF");
	struct mem png = {0};
	cairo_surface_t *img = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 4, 4);
	T_REQUIRE(cairo_surface_write_to_png_stream(img, mem_write, &png) == CAIRO_STATUS_SUCCESS,
		  "png");
	cairo_surface_destroy(img);
	check_refused("x.pdf", (const char *)png.p, png.len, -EILSEQ, "a PNG image, not a PDF");
	free(png.p);
	check_refused("x.pdf", "hello, world\n", 13, -EILSEQ, "not a PDF (no %PDF- header)");

	/* a header, then garbage: poppler's own message, nothing on stderr */
	char junk[4096] = "%PDF-1.4\n";
	uint64_t seed = 42;
	for (size_t i = 9; i < sizeof junk; i++)
		junk[i] = (char)(t_rand_u64(&seed) >> 56);
	quiet_begin(&q);
	rc = extract_text("junk.pdf", junk, sizeof junk, &r);
	noise = quiet_end(&q, err, sizeof err);
	T_CHECK(!noise, "junk: %ld bytes on stderr: %s", noise, err);
	T_CHECK(rc == -EILSEQ && !strncmp(r.reason, "corrupt PDF: ", 13) && strlen(r.reason) > 13 &&
			!strchr(r.reason, '\n') && !r.text,
		"junk: rc %d reason [%s]", rc, r.reason);
	extract_free(&r);

	/* junk before the header, within the first 1024 bytes, is allowed */
	const char *one[] = {"After some junk."};
	pdf = make_pdf(one, 1, &len);
	unsigned char *late = malloc(len + 100);
	T_REQUIRE(late, "out of memory");
	memset(late, 'x', 100);
	memcpy(late + 100, pdf, len);
	rc = extract_text("late.pdf", late, len + 100, &r);
	T_CHECK(rc == 0 && !strcmp(r.text, "After some junk."), "late header: rc %d [%s] (%s)", rc,
		r.text, r.reason);
	extract_free(&r);
	free(late);
	free(pdf);

	/* encrypted with a user password (the standard security handler,
	 * RC4 40-bit; these /O and /U match no password poppler can try) */
	const char *enc[] = {
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>",
		"<< /Filter /Standard /V 1 /R 2 /P -4"
		" /O <0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef>"
		" /U <fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210> >>",
	};
	pdf = hand_pdf(enc, 4, "/Encrypt 4 0 R /ID [<00112233445566778899aabbccddeeff> "
			       "<00112233445566778899aabbccddeeff>]", &len);
	check_refused("locked.pdf", (const char *)pdf, len, -ENOTSUP,
		      "encrypted PDF (needs a password)");
	free(pdf);
	/* a control character in the text (Helvetica, its code 1 mapped to
	 * U+0001, which poppler passes on) becomes U+FFFD */
	static const char ctl_page[] = "BT /F1 12 Tf 72 700 Td (Spaces at the end   ) Tj "
				       "0 -14 Td (x\\001y) Tj ET";
	static const char cmap[] = "/CIDInit /ProcSet findresource begin 12 dict begin begincmap "
				   "/CMapName /X def 1 begincodespacerange <00> <FF> endcodespacerange "
				   "1 beginbfchar <01> <0001> endbfchar endcmap "
				   "CMapName currentdict /CMap defineresource pop end end";
	char content[256], tounicode[512];
	snprintf(content, sizeof content, "<< /Length %zu >>\nstream\n%s\nendstream",
		 strlen(ctl_page), ctl_page);
	snprintf(tounicode, sizeof tounicode, "<< /Length %zu >>\nstream\n%s\nendstream",
		 strlen(cmap), cmap);
	const char *ctl_objs[] = {
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
		" /Resources << /Font << /F1 5 0 R >> >> >>",
		content,
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /ToUnicode 6 0 R >>",
		tounicode,
	};
	pdf = hand_pdf(ctl_objs, 6, "", &len);
	rc = extract_text("ctl.pdf", pdf, len, &r);
	T_CHECK(rc == 0 && !strcmp(r.text, "Spaces at the end\nx\xef\xbf\xbdy"),
		"control: rc %d (%s) [%s]", rc, r.reason, r.text);
	if (!rc)
		check_pdf_spans("control", &r);
	extract_free(&r);
	free(pdf);

	/* no pages at all */
	const char *none[] = {
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [] /Count 0 >>",
	};
	pdf = hand_pdf(none, 2, "", &len);
	check_refused("none.pdf", (const char *)pdf, len, -ENOTSUP, "PDF has no pages");
	free(pdf);
}

int main(void)
{
	/* plain text and markdown: as they are */
	check_text("a.txt", "hello\n\nworld  x\r\n", "hello\n\nworld  x\r\n");
	check_text("dir.d/notes.MD", "# Title\n\n*emph* <b>x</b> &amp;\n",
		   "# Title\n\n*emph* <b>x</b> &amp;\n");
	check_text("bom.txt", "\xef\xbb\xbfhi", "hi");
	check_src("bom.txt", "\xef\xbb\xbfhi there", "there", "there");

	/* HTML: nesting, blocks, headings */
	check_text("p.html",
		   "<!DOCTYPE html><html><head><title>T</title></head><body><div><p>Hello "
		   "<b>bold <i>it</i></b>\n  world</p><p>Second</p></div></body></html>",
		   "T\n\nHello bold it world\n\nSecond");
	check_text("h.htm", "<h2 class=\"x\">Title</h2><p>Body<br>line two</p><ul><li>a</li><li>b</li></ul>",
		   "## Title\n\nBody\nline two\n\na\nb");
	check_text("t.html", "<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>",
		   "a b\nc");
	/* script, style and comments dropped, including markup inside them */
	check_text("s.html",
		   "<p>a<script type=x>var s = '<p>no</p>'; if (a < b) {}</script>b"
		   "<STYLE>p { x: '>' }</STYLE>c<!-- <p>gone</p> -->d</p>",
		   "abcd");
	check_text("s2.html", "x<script>never closed <p>y", "x");
	check_text("c.html", "x<!-- never closed", "x");
	/* entities */
	check_text("e.html",
		   "&amp;&lt;&gt;&quot;&apos;&nbsp;&#233;&#xE9;&eacute;&bogus; & x &#0; &#x110000; &mdash;",
		   "&<>\"'\xc2\xa0\xc3\xa9\xc3\xa9\xc3\xa9&bogus; & x \xef\xbf\xbd \xef\xbf\xbd \xe2\x80\x94");
	/* malformed: '<' in text, unclosed tags */
	check_text("m.html", "a < b and c<d <b unclosed", "a < b and c<d <b unclosed");
	check_text("m2.html", "<p>one<p>two</b></i><div>three", "one\n\ntwo\n\nthree");
	check_text("m3.html", "<", "<");
	check_text("m4.html", "x</", "x</");
	check_text("m5.html", "<<<<>>>>", "<<<<>>>>");

	/* the map back to the original */
	const char *h = "<html><body><p>Hello <b>bold</b> caf&eacute; &amp; more</p></body></html>";
	check_src("m.html", h, "Hello", "Hello");
	check_src("m.html", h, "bold", "bold");
	check_src("m.html", h, "caf\xc3\xa9", "caf&eacute;");
	check_src("m.html", h, "& more", "&amp; more");
	check_src("m.html", h, "Hello bold", "Hello <b>bold");
	check_spans("m.html", h);
	check_spans("p.html", "<h1>A</h1>\n\n<p>b &lt; c</p>  <p>\xff d</p>");
	check_spans("a.txt", "abc\xff\xfe def\xe2\x82 \xf0\x9f\x98\x80");

	/* invalid UTF-8: each bad byte is one U+FFFD, offsets exact around it */
	check_text("l.txt", "caf\xe9 ok", "caf\xef\xbf\xbd ok");
	check_src("l.txt", "caf\xe9 ok", "ok", "ok");
	check_src("l.txt", "caf\xe9 ok", "\xef\xbf\xbd", "\xe9");
	check_text("o.txt", "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80", /* overlong, surrogate, too big */
		   "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		   "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	check_text("cut.txt", "ab\xe2\x82", "ab\xef\xbf\xbd\xef\xbf\xbd");

	/* empty files: an empty text, not an error */
	struct extract_result r;
	T_CHECK(extract_text("e.txt", "", 0, &r) == 0 && r.len == 0 && r.text && !r.text[0],
		"empty .txt");
	extract_free(&r);
	T_CHECK(extract_text("e.html", NULL, 0, &r) == 0 && r.len == 0, "empty .html");
	extract_free(&r);
	T_CHECK(ex("ws.html", "<p> </p>\n<!-- -->", &r) == 0 && r.len == 0, "blank html [%s]", r.text);
	extract_free(&r);

	/* refusals */
	check_refused("a.bin.txt", "ab\0cd", 5, -EILSEQ, "binary file (NUL byte at offset 2)");
	char ctl[100];
	memset(ctl, 1, sizeof ctl);
	check_refused("c.txt", ctl, sizeof ctl, -EILSEQ, "binary file (100% control bytes)");
	check_refused("x.xyz", "text", 4, -ENOTSUP, "unsupported type .xyz");
	check_refused("Makefile", "all:", 4, -ENOTSUP, "unsupported type (no extension)");
	check_refused(".bashrc", "x=1", 3, -ENOTSUP, "unsupported type (no extension)");
	check_refused("a.txt", "%PDF-1.7\n", 9, -ENOTSUP,
		      ".txt: a PDF file, not text (name it .pdf to index it)");
	T_CHECK(extract_src_range(&r, 0, 0, &(size_t){0}, &(size_t){0}) == -EINVAL, "empty range");

	test_pdf();
	/* cairo's and fontconfig's caches, so that LeakSanitizer sees only ours */
	cairo_debug_reset_static_data();
	FcFini();
	return t_done("test_extract");
}
