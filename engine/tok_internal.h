/*
 * Tokenizer internals shared by tokenizer.c (loading, special tokens, the
 * public API), tok_spm.c (SentencePiece-style merges), tok_bpe.c
 * (byte-level BPE with per-model pre-tokenizers) and tok_wpm.c (WordPiece).
 * Not a public header: the API is in engine.h.
 */
#ifndef SEEKFS_TOK_INTERNAL_H
#define SEEKFS_TOK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

/* Token attributes, a bit set per token. The GGUF token_type (1 normal,
 * 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte) gives one bit;
 * loading may add CONTROL to tokens that end generation or fill in the
 * middle, as llama.cpp does for models converted without proper types. */
enum {
	TA_NORMAL = 1 << 0,
	TA_UNKNOWN = 1 << 1,
	TA_CONTROL = 1 << 2,
	TA_USER = 1 << 3,
	TA_UNUSED = 1 << 4,
	TA_BYTE = 1 << 5,
	TA_EOG = 1 << 6,
};

/* Pieces of text longer than this (bytes) are cut, at a character
 * boundary, before merging: one BPE pre-token, or one SentencePiece word.
 * Natural text never comes near it; it bounds the memory and time spent on
 * a pathological input (say 50 MB without a single space). */
#define TOK_MAX_PIECE 65536
/* tok_encode works on at most this many bytes at a time (positions fit in
 * 32 bits). */
#define TOK_MAX_SLICE ((size_t)1 << 31)
/* Vocabularies larger than this are refused (the largest in use are ~256k). */
#define TOK_MAX_VOCAB (1 << 24)

/* Open-addressing hash from a byte string to a token id. Slots hold ids into
 * the owner's string table (-1 empty); lookups compare against that table. */
struct tok_strmap {
	int32_t *slots;
	uint32_t mask;
};

/* Open-addressing hash from a pair of symbol ids to its merge rank (the
 * position in tokenizer.ggml.merges: lower merges first). */
struct tok_merge {
	uint64_t key;    /* (left << 32) | right; UINT64_MAX empty */
	int32_t rank;
};

/* A merge by rank. Ids >= n_vocab stand for strings that are not tokens. */
struct tok_merge_rank {
	int32_t left, right, result; /* -1 for a rank that merges nothing */
};

enum tok_pre {
	PRE_NONE = 0, /* SPM */
	PRE_DEFAULT,
	PRE_GPT2,
	PRE_LLAMA3,
	PRE_QWEN2,
	PRE_DEEPSEEK_LLM,
	PRE_DEEPSEEK_CODER,
	PRE_FALCON,
	PRE_SMOLLM,
};

/* One step of a pre-tokenizer: each piece from the previous step is split
 * into the matches of the step and the text between them (Hugging Face's
 * Split with behaviour "Isolated"; "Contiguous" for runs of a class). */
enum tok_step_kind {
	STEP_REGEX,       /* PCRE2 pattern */
	STEP_TRAIL_WS,    /* \s+$ : the trailing whitespace of the piece */
	STEP_BYTE_DIGITS, /* runs of bytes whose byte-level character is
			     numeric (after ByteLevel, as in Falcon) */
};

#define TOK_MAX_STEPS 6

struct tok_step {
	enum tok_step_kind kind;
	void *re; /* pcre2_code_8 * for STEP_REGEX */
};

struct tok {
	enum tok_kind kind;
	enum tok_pre pre;
	char pre_name[48];
	int32_t n_vocab;

	/* Token strings as stored in the GGUF (BPE: byte-level characters). */
	char *text;        /* all strings, back to back */
	uint32_t *off;     /* n_vocab + 1 offsets into text */
	float *score;      /* SPM merge priority */
	uint8_t *attr;     /* TA_* */
	struct tok_strmap map;
	uint32_t max_len;  /* longest token string, bytes */

	int32_t bos, eos, eot, eom, unk, pad;
	int add_bos, add_space_prefix, ignore_merges;

	/* Tokens matched in raw text before anything else (control, unknown
	 * and user-defined tokens), longest first; a byte trie over them. */
	int32_t *special;
	int32_t n_special;
	struct tok_trie_node *trie;
	int32_t n_trie;
	int32_t trie_root[256]; /* first node per first byte, -1 none */

	/* Token of each byte: SPM <0xXX>, BPE the byte-level character;
	 * -1 when absent. BPE may hold ids >= n_vocab (see tok_merge_rank). */
	int32_t byte_tok[256];

	/* SPM: no token has U+2581 after a character other than U+2581, so
	 * text can be cut before each space that follows a non-space. */
	int spm_word_split;

	/* WPM. wpm_phantom: word starts are spelled "\xe2\x96\x81word" and
	 * continuations bare (llama.cpp's converter); else word starts bare
	 * and continuations "##piece" (vocab.txt). wpm_lower: the vocabulary
	 * is uncased, so text is lowercased and stripped of accents. */
	int wpm_phantom, wpm_lower;

	/* BPE */
	struct tok_merge *merges;
	uint64_t merge_mask;
	struct tok_merge_rank *merge_rank;
	int32_t n_merges;
	struct tok_step steps[TOK_MAX_STEPS];
	int n_steps;
};

struct tok_trie_node {
	int32_t child;   /* first child, -1 none */
	int32_t sibling; /* next child of the same parent, -1 none */
	int32_t id;      /* token ending here, -1 none */
	uint8_t byte;
};

/* Output sink: ids past n_max are counted, not stored. */
struct tok_out {
	int32_t *ids;
	int64_t n_max;
	int64_t n;
};

static inline void tok_emit(struct tok_out *o, int32_t id)
{
	if (o->n < o->n_max)
		o->ids[o->n] = id;
	o->n++;
}

static inline const char *tok_text(const struct tok *t, int32_t id, size_t *len)
{
	*len = t->off[id + 1] - t->off[id];
	return t->text + t->off[id];
}

/* Bytes of the UTF-8 sequence a lead byte announces (1 for continuation
 * and invalid bytes), as SentencePiece and llama.cpp split text. */
static inline size_t tok_utf8_len(unsigned char c)
{
	static const uint8_t len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
	return len[c >> 4];
}

uint64_t tok_hash(const void *s, size_t n);
int32_t tok_map_find(const struct tok *t, const char *s, size_t n);

/* tok_spm.c / tok_bpe.c: encode one run of raw text (no special tokens in
 * it). Return 0 or -ENOMEM. */
int tok_spm_encode(const struct tok *t, const char *s, size_t n,
		   int space_prefix, struct tok_out *out);
int tok_bpe_encode(const struct tok *t, const char *s, size_t n,
		   struct tok_out *out);
/* tok_wpm.c: the same for WordPiece; allocates nothing, returns 0. */
int tok_wpm_encode(const struct tok *t, const char *s, size_t n,
		   struct tok_out *out);

/* tok_bpe.c: set up the pre-tokenizer named by tokenizer.ggml.pre and the
 * merge table; free both. */
int tok_bpe_init(struct tok *t, const struct gguf *g, char *err, size_t errsz);
void tok_bpe_free(struct tok *t);
/* tok_wpm.c: read the spelling and casing of a WordPiece vocabulary whose
 * special tokens tokenizer.c has resolved; refuses one without [UNK]. */
int tok_wpm_init(struct tok *t, const struct gguf *g, char *err, size_t errsz);
/* The UTF-8 of the byte-level character standing for byte b (GPT-2's
 * bytes_to_unicode); returns its length (1 or 2). */
size_t tok_byte_char(unsigned char b, char out[2]);
/* The byte a byte-level code point stands for, or -1. */
int tok_char_byte(uint32_t cp);

#endif
