/*
 * test_extract: document text extraction (index/extract.c): plain text,
 * markdown and HTML, refusals with their reasons, invalid UTF-8, and the
 * map from text offsets back to bytes of the original file.
 */
#include <errno.h>

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
	check_refused("paper.pdf", "%PDF-1.7", 8, -ENOTSUP, ".pdf: PDF extraction not built yet");
	check_refused("a.txt", "%PDF-1.7\n", 9, -ENOTSUP, ".txt: a PDF file; PDF extraction not built yet");
	T_CHECK(extract_src_range(&r, 0, 0, &(size_t){0}, &(size_t){0}) == -EINVAL, "empty range");
	return t_done("test_extract");
}
