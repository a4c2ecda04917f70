/*
 * index: documents -> text -> chunks (-> embeddings, SQLite, FAISS).
 *
 * extract_text turns a document's bytes into UTF-8 text plus a map from
 * text offsets back to byte offsets in the original file; chunk_text cuts
 * that text into pieces bounded in tokens, each carrying its exact byte
 * range in the original (for a PDF, in its extracted text: see
 * extract_text), which is what search hits report (start-end).
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
	const char *type;     /* "text", "markdown", "html" or "pdf" (static) */
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
 *   .pdf: the text layer, through poppler-glib, page by page; pages are
 *     separated by a blank line, spaces at line ends dropped, never more
 *     than one blank line in a row. The "%PDF-" header must be within the
 *     first 1024 bytes.
 * Offsets in a PDF: its text has no byte-for-byte place in the file, so
 *   the source of a PDF's text is the extracted text itself: one exact
 *   span with src_off == text_off, and a PDF hit's byte range is a range
 *   in the extracted text, not in the file.
 * Text that is not valid UTF-8 is never refused: each byte that does not
 * belong to a valid UTF-8 sequence becomes U+FFFD, a replacement span for
 * exactly that byte, so offsets stay exact around it (in a PDF, U+FFFD is
 * simply part of the text). A UTF-8 byte order mark is dropped.
 * Returns 0 with *out filled (an empty file gives an empty text, except
 * an empty .pdf: -EILSEQ), or:
 *   -ENOTSUP  unsupported type (".xyz", no extension, a PDF named .txt);
 *             a PDF that is encrypted, has no pages or has no text layer
 *             (scanned images)
 *   -EILSEQ   binary file (a NUL byte, or mostly control bytes); a .pdf
 *             that is not a PDF (the reason says what it looks like) or
 *             that poppler cannot open ("corrupt PDF: <poppler's message>")
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
 * The tokenizer is only read: threads may chunk with it at once. t NULL
 * (no embedding model): token counts are estimated from the words.
 */
int chunk_text(const struct extract_result *x, const struct tok *t,
	       const struct chunk_opts *opts, struct chunk_list *out);
void chunk_list_free(struct chunk_list *l);

/* ==== the store's index: SQLite (documents, chunks, FTS5) + FAISS ========== */

/*
 * One index lives in a directory (STORE/index): seekfs.db, a SQLite
 * database in WAL mode (documents, chunks with their text, byte ranges and
 * embedding vectors, an FTS5 table for BM25) and vectors-GEN.faiss, the
 * FAISS index of the vectors (IndexIDMap2 over a flat inner-product index,
 * or HNSW) with chunk ids as FAISS ids. SQLite is the truth: every change
 * is one transaction that also bumps a generation number; the FAISS file
 * is written afterwards under that generation (temporary name, fsync,
 * rename), so on open a FAISS file of another generation, one whose checksum
 * fails (a trailer seekfs appends), or one whose ids differ from SQLite's,
 * is detected and rebuilt from the vectors in SQLite.
 *
 * Documents are named by a key (the caller's choice: seekfs uses the path
 * relative to the store's docs/, or an absolute path) and read from a file.
 * A document whose content hash did not change is not touched; one whose
 * content is already indexed under another key (a copy, a rename) takes
 * that key's chunks and vectors without embedding them again.
 *
 * Without an embedding model the index works on BM25 alone (and says so in
 * index_info); chunks indexed then get their vectors when an embedder is
 * given later. Changing the embedder re-embeds every chunk.
 *
 * Threads: an index may be used from several threads; writers are
 * serialised, searches run beside each other and beside the embedding
 * work of a writer (not beside its commit). Only one process writes a
 * store at a time (a lock file); others open it read-only.
 */
struct index;

enum index_vectors { IX_VEC_FLAT, IX_VEC_HNSW };

struct index_opts {
	const char *embedder;   /* GGUF of a bert-family model; NULL: the one the
				   index was built with if its file exists, else
				   default_embedder */
	const char *default_embedder; /* for an index that never had one (may be NULL) */
	int no_embedder;        /* BM25 only, even if an embedder is known */
	int n_threads;          /* embedding threads (0: all cores) */
	int read_only;          /* open for search only; never writes the store */
	enum index_vectors vectors; /* for a new index; an existing one keeps its kind */
	size_t max_doc_bytes;   /* larger documents are skipped (0: 16 MiB) */
	struct chunk_opts chunk;/* zero: the defaults */
	int batch_chunks;       /* chunks per embedding pass (0: 32) */
	int bm25_memory;        /* keep BM25 postings in memory (built in the
				   background after open; FTS5 ranks until then):
				   for long-lived handles such as the daemon's */
};

int index_open(const char *dir, const struct index_opts *o, struct index **out,
	       char *err, size_t errsz);
/* Writes the FAISS file if it is behind SQLite, then frees everything. */
void index_close(struct index *ix);

enum index_outcome {
	IX_INDEXED,   /* new or changed: extracted, chunked, embedded */
	IX_UNCHANGED, /* same content hash as indexed: nothing done */
	IX_REUSED,    /* content already indexed under another key: copied, no embedding */
	IX_SKIPPED,   /* not indexable (type, binary, size, unreadable): reason recorded */
};

struct index_add_result {
	enum index_outcome outcome;
	int n_chunks;       /* the document's chunks now */
	int n_embedded;     /* chunks embedded for it by this call */
	char reason[240];   /* IX_SKIPPED: why, one line */
};

/* Called once per document after its transaction committed (the
 * document is then durable: acknowledged). */
typedef void (*index_ack_fn)(void *ctx, const char *key, const char *file,
			     const struct index_add_result *r);

/*
 * Index n documents: keys[i] read from files[i] (files NULL: keys are the
 * paths). Chunks of several documents share embedding passes; each batch
 * is committed in one transaction and acknowledged through ack (may be
 * NULL). A document that cannot be indexed is recorded as skipped with its
 * reason (and acknowledged); that is not an error. Returns 0, or a
 * negative errno when the index itself failed (err says what); documents
 * acknowledged before that stay indexed.
 */
int index_add(struct index *ix, const char *const *keys, const char *const *files,
	      size_t n, index_ack_fn ack, void *ctx, char *err, size_t errsz);
/* Embed chunks that have no vector yet (indexed without an embedder, or
 * before the embedder changed), at most max (<= 0: all), in batches that
 * each commit. *done (may be NULL): how many were embedded. */
int index_embed_pending(struct index *ix, int64_t max, int64_t *done, char *err, size_t errsz);
/* Remove a document and its chunks: 0, or -ENOENT when the key is unknown. */
int index_remove(struct index *ix, const char *key, char *err, size_t errsz);
/* Rename a document, keeping its chunks and vectors: 0, -ENOENT (from
 * unknown), or -EEXIST (to is a document: it is replaced). */
int index_rename(struct index *ix, const char *from, const char *to,
		 char *err, size_t errsz);
/* Write the FAISS file now if it is behind SQLite (index_add and friends
 * leave that to index_close or to this call, so that a burst of changes
 * writes the vectors once). */
int index_persist(struct index *ix, char *err, size_t errsz);

struct index_doc {
	const char *key;
	int64_t size;
	int64_t mtime_ns;    /* of the file when it was indexed */
	const char *hash;    /* hex content hash */
	const char *type;    /* "text", "markdown", "html", "pdf", or NULL */
	int skipped;
	const char *reason;  /* skipped: why; else NULL */
	int n_chunks;
};
typedef int (*index_doc_fn)(void *ctx, const struct index_doc *d);
/* Every document, in key order; fn returning non-zero stops the walk. */
int index_list(struct index *ix, index_doc_fn fn, void *ctx, char *err, size_t errsz);

struct index_info {
	int64_t n_docs, n_skipped, n_chunks, n_vectors, n_pending; /* pending: chunks without a vector */
	int dim;                  /* 0: no embedder */
	char embedder[256];       /* file name of the embedder, or "" */
	const char *vectors;      /* "flat" or "hnsw" */
	int64_t n_embedded_total; /* chunks embedded since open */
	int bm25_memory;          /* enum bm25_memory_state */
	int64_t bm25_bytes;       /* memory the BM25 postings take */
};
enum bm25_memory_state { BM25_MEM_OFF, BM25_MEM_BUILDING, BM25_MEM_READY, BM25_MEM_FAILED };
int index_info(struct index *ix, struct index_info *info);

struct index_check_report {
	int64_t n_docs, n_chunks, n_vectors;
	int64_t faiss_missing, faiss_extra, faiss_wrong; /* vectors FAISS lacks / has but SQLite does not / differ */
	int64_t faiss_dead;  /* HNSW: vectors of removed chunks it still holds (skipped by search) */
	int64_t stale_docs;  /* recorded documents whose file is gone or changed */
	int sqlite_ok, fts_ok, faiss_rebuilt;
};
/* Check SQLite (integrity_check), the FTS5 table (integrity-check) and
 * FAISS against SQLite (ids and vectors); with repair, rebuild whatever
 * disagrees from SQLite. stale: a callback per document whose file
 * (resolved through the key as a path, relative to base when not absolute;
 * base NULL: not checked) is gone or differs in size or mtime. */
int index_check(struct index *ix, int repair, const char *base,
		index_doc_fn stale, void *ctx, struct index_check_report *rep,
		char *err, size_t errsz);

enum search_mode { SEARCH_HYBRID, SEARCH_BM25, SEARCH_VECTOR };

struct search_opts {
	int k;                 /* hits wanted (0: 5) */
	enum search_mode mode; /* hybrid falls back to BM25 without vectors */
	float mmr_lambda;      /* 0: off; else maximal marginal relevance with this
				  weight on relevance (0.5-0.9 useful) */
	int n_candidates;      /* per list before fusion (0: max(50, 4k)) */
	int rrf_k;             /* reciprocal rank fusion constant (0: 60) */
};

struct search_hit {
	int64_t chunk_id;
	char *doc;             /* key */
	size_t start, end;     /* byte range in the original file */
	double score;          /* hybrid: fused RRF score; bm25: -bm25 (higher is better); vector: inner product */
	char *snippet;         /* one line, at most ~200 bytes */
	char *text;            /* the chunk's text */
};

/* Ranked hits for query (best first). *n may be less than k. A query
 * with no searchable words and no vectors gives no hits, not an error. */
int index_search(struct index *ix, const char *query, const struct search_opts *o,
		 struct search_hit **hits, int *n, char *err, size_t errsz);
void search_hits_free(struct search_hit *h, int n);
/* One NAME.hits line (DESIGN.md) for hit i (rank i + 1), newline included,
 * into buf; returns its length as snprintf does. */
int search_hit_line(const struct search_hit *h, int rank, char *buf, size_t n);

#endif
