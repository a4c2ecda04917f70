/*
 * index: documents -> text -> chunks (-> embeddings, SQLite, FAISS).
 *
 * extract_text turns a document's bytes into UTF-8 text plus a map from
 * text offsets back to byte offsets in the original file; chunk_text cuts
 * that text into pieces bounded in tokens, each carrying its exact byte
 * range in the original, which is what search hits report (start-end).
 *
 * Library code: nothing here prints or exits. Functions return 0 or a
 * negative errno; refusals come with a one-line reason for the user.
 */
#ifndef SEEKFS_INDEX_H
#define SEEKFS_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

/* ==== extraction =========================================================== */

/* One piece of the text/original correspondence. Text bytes
 * [text_off, text_off + text_len) come from original bytes
 * [src_off, src_off + src_len). exact: the two are byte-for-byte equal
 * (text_len == src_len), so any offset inside maps one to one; otherwise
 * the text replaces the source as a whole (an entity, a collapsed run of
 * white space, a line break made from a tag, U+FFFD for bad bytes) and an
 * offset inside maps to the whole source range. Spans are in text order,
 * cover the text without gaps, and their sources ascend; source bytes that
 * gave no text (tags, comments, scripts) lie between spans. */
struct extract_span {
	size_t text_off, text_len;
	size_t src_off, src_len;
	int exact;
};

struct extract_result {
	char *text;           /* UTF-8 (always valid), NUL-terminated; owned */
	size_t len;           /* bytes of text, NUL excluded */
	struct extract_span *spans; /* n_spans, owned */
	size_t n_spans;
	const char *type;     /* "text", "markdown" or "html" (static) */
	char reason[200];     /* one line: why the file was refused */
	size_t cap, cap_spans; /* allocation sizes, internal */
};

/*
 * Extract the text of a document. path gives the name (its extension picks
 * the format; it is not opened); buf/len are the file's bytes.
 *   .txt, .text: as is.     .md, .markdown: as is (markdown kept as text).
 *   .html, .htm, .xhtml: tags removed; <script>, <style> and comments
 *     dropped; block tags become line breaks (blank lines between blocks),
 *     <h1>..<h6> become markdown headings ("## Title") so the chunker sees
 *     them; runs of white space collapse to one space (<pre> too, for
 *     now); named entities (the common ones) and numeric ones (&#233;
 *     &#xE9;) are decoded. The input is taken as UTF-8 (a <meta charset>
 *     is not read).
 * Text that is not valid UTF-8 is never refused: each byte that does not
 * belong to a valid UTF-8 sequence becomes U+FFFD, a replacement span for
 * exactly that byte, so offsets stay exact around it. A UTF-8 byte order
 * mark is dropped.
 * Returns 0 with *out filled (an empty file gives an empty text), or:
 *   -ENOTSUP  unsupported type (".xyz", no extension, PDF for now)
 *   -EILSEQ   binary file (a NUL byte, or mostly control bytes)
 *   -ENOMEM
 * On a refusal out->reason says why in one line and out holds no text;
 * extract_free is safe on *out in every case.
 */
int extract_text(const char *path, const void *buf, size_t len,
		 struct extract_result *out);
void extract_free(struct extract_result *r);

/* Original byte range [*s0, *s1) that text range [t0, t1) came from: the
 * smallest range covering the source of every text byte in it. t0 < t1 <=
 * r->len, else -EINVAL. */
int extract_src_range(const struct extract_result *r, size_t t0, size_t t1,
		      size_t *s0, size_t *s1);

/* ==== chunking ============================================================= */

#define CHUNK_TARGET_DEFAULT 256
#define CHUNK_OVERLAP_DEFAULT 32

/* target_tokens: a chunk's text never encodes to more tokens (as
 * tok_encode counts them, without [CLS]/[SEP] or BOS: the embedder adds
 * those). overlap_tokens: consecutive chunks of one section share about
 * this many tokens (never more). max_bytes bounds a chunk in bytes
 * whatever its token count (0: 16 * target_tokens), so that text the
 * tokenizer packs into few tokens (very long words become one [UNK])
 * still gives chunks of a useful size. */
struct chunk_opts {
	int target_tokens;  /* >= 8 */
	int overlap_tokens; /* 0 <= overlap < target / 2 */
	size_t max_bytes;
};

struct chunk {
	char *text;          /* NUL-terminated copy of the extracted text; owned */
	size_t len;
	size_t text_start, text_end; /* in the extracted text */
	size_t src_start, src_end;   /* in the original file: [start, end) */
	int n_tokens;        /* tok_encode count of text */
};

struct chunk_list {
	struct chunk *v;
	size_t n, cap;
};

/*
 * Cut x's text into chunks. A chunk never crosses a heading (a markdown
 * line starting with 1-6 '#' and a space; HTML <h1>..<h6> are extracted as
 * such); inside a section it ends preferably at a paragraph break (blank
 * line), then a line or sentence end, then between words, and only where
 * nothing else fits inside a word, always at a UTF-8 character boundary.
 * Chunks hold no leading or trailing white space; white space alone gives
 * no chunk. Time is linear in the text (windows of at most max_bytes are
 * tokenized, each byte a bounded number of times).
 * opts NULL: the defaults (256 tokens, 32 overlap). Returns 0, -EINVAL for
 * bad options, -ENOMEM, or a tokenizer error; *out is empty on error.
 * The tokenizer is only read: threads may chunk with it at once.
 */
int chunk_text(const struct extract_result *x, const struct tok *t,
	       const struct chunk_opts *opts, struct chunk_list *out);
void chunk_list_free(struct chunk_list *l);

#endif
