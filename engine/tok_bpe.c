/*
 * Byte-level BPE (tokenizer.ggml.model = "gpt2"): GPT-2, Llama 3, Qwen2,
 * DeepSeek, Falcon, SmolLM and their relatives.
 *
 * Text goes through the model's pre-tokenizer (tokenizer.ggml.pre), a
 * sequence of splitting steps written as PCRE2 patterns with the semantics
 * of the Hugging Face pre-tokenizers they come from: each step cuts every
 * piece from the previous step into its matches and the text between them.
 * Each final piece ("word") is then merged on its own: every byte starts as
 * the token of its byte-level character (GPT-2's bytes_to_unicode), and the
 * adjacent pair with the lowest merge rank is merged until no pair has a
 * rank, leftmost first among equal ranks, with a heap: O(n log n) a word.
 *
 * Pieces are ranges of the caller's text, walked depth first, so nothing
 * proportional to the whole text is allocated.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tok_internal.h"

/* ---- byte-level characters ----------------------------------------------- */

/* GPT-2 maps the printable bytes 0x21-0x7E, 0xA1-0xAC and 0xAE-0xFF to the
 * code points of the same value and the 68 others, in order, to U+0100... */
static uint32_t byte_cp(unsigned char b)
{
	if (b <= 0x20)
		return 0x100 + b;
	if (b >= 0x7f && b <= 0xa0)
		return 0x100 + 33 + (b - 0x7f);
	if (b == 0xad)
		return 0x100 + 67;
	return b;
}

int tok_char_byte(uint32_t cp)
{
	if ((cp >= 0x21 && cp <= 0x7e) || (cp >= 0xa1 && cp <= 0xac) ||
	    (cp >= 0xae && cp <= 0xff))
		return (int)cp;
	if (cp >= 0x100 && cp <= 0x100 + 32)
		return (int)(cp - 0x100);
	if (cp >= 0x100 + 33 && cp <= 0x100 + 66)
		return (int)(0x7f + cp - (0x100 + 33));
	if (cp == 0x100 + 67)
		return 0xad;
	return -1;
}

size_t tok_byte_char(unsigned char b, char out[2])
{
	uint32_t cp = byte_cp(b);
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	out[0] = (char)(0xc0 | (cp >> 6));
	out[1] = (char)(0x80 | (cp & 0x3f));
	return 2;
}

/* ---- pre-tokenizers ------------------------------------------------------ */

/* \s in these patterns is Unicode White_Space: PCRE2's \s plus U+0085. */
#define WS "\\s\\x{85}"
#define SPACE "[" WS "]"
#define NOT_SPACE "[^" WS "]"

/* GPT-2's pattern, also run by ByteLevel(use_regex=true). */
#define RE_GPT2                                                                \
	"'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^" WS "\\p{L}\\p{N}]+|" \
	SPACE "+(?!" NOT_SPACE ")|" SPACE "+"
/* Llama 3 and Qwen2 differ in \p{N}{1,3} against \p{N}. The (?i:...) of
 * the originals is spelled out in ASCII so that no Unicode case folding
 * (U+017F for s, U+212A for k) creeps in. */
#define RE_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"
#define RE_LLAMA3_LIKE(num)                                                    \
	RE_CONTRACTIONS "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|" num "| ?[^" WS        \
	"\\p{L}\\p{N}]+[\\r\\n]*|" SPACE "*[\\r\\n]+|" SPACE "+(?!" NOT_SPACE   \
	")|" SPACE "+"
/* DeepSeek's hand-made classes: cased letters of many scripts, ASCII and
 * full-width punctuation, and CJK / Hangul. */
#define RE_DS_LETTERS                                                          \
	"[A-Za-z\\x{B5}\\x{C0}-\\x{D6}\\x{D8}-\\x{F6}\\x{F8}-\\x{1BA}"          \
	"\\x{1BC}-\\x{1BF}\\x{1C4}-\\x{293}\\x{295}-\\x{2AF}\\x{370}-\\x{373}"  \
	"\\x{376}\\x{377}\\x{37B}-\\x{37D}\\x{37F}\\x{386}\\x{388}-\\x{38A}"    \
	"\\x{38C}\\x{38E}-\\x{3A1}\\x{3A3}-\\x{3F5}\\x{3F7}-\\x{481}"           \
	"\\x{48A}-\\x{52F}\\x{531}-\\x{556}\\x{10A0}-\\x{10C5}"                 \
	"\\x{13A0}-\\x{13F5}\\x{13F8}-\\x{13FD}\\x{1C90}-\\x{1CBA}"             \
	"\\x{1CBD}-\\x{1CBF}\\x{1D00}-\\x{1D2B}\\x{1D6B}-\\x{1D77}"             \
	"\\x{1D79}-\\x{1D9A}\\x{1E00}-\\x{1F15}\\x{1F18}-\\x{1F1D}"             \
	"\\x{1F20}-\\x{1F45}\\x{1F48}-\\x{1F4D}\\x{1F50}-\\x{1F57}\\x{1F59}"    \
	"\\x{1F5B}\\x{1F5D}\\x{1F5F}-\\x{1F7D}\\x{1F80}-\\x{1FB4}"              \
	"\\x{1FB6}-\\x{1FBC}\\x{1FBE}\\x{1FC2}-\\x{1FC4}\\x{1FC6}-\\x{1FCC}"    \
	"\\x{1FD0}-\\x{1FD3}\\x{1FD6}-\\x{1FDB}\\x{1FE0}-\\x{1FEC}"             \
	"\\x{1FF2}-\\x{1FF4}\\x{1FF6}-\\x{1FFC}\\x{2102}\\x{2107}"              \
	"\\x{210A}-\\x{2113}\\x{2115}\\x{2119}-\\x{211D}\\x{2124}\\x{2126}"     \
	"\\x{2128}\\x{212A}-\\x{212D}\\x{212F}-\\x{2134}\\x{2139}"              \
	"\\x{213C}-\\x{213F}\\x{2145}-\\x{2149}\\x{214E}\\x{2183}\\x{2184}"     \
	"\\x{2C00}-\\x{2C7B}\\x{2C7E}-\\x{2CE4}\\x{2CEB}-\\x{2CEE}\\x{2CF2}"    \
	"\\x{2CF3}\\x{A640}-\\x{A66D}\\x{A680}-\\x{A69B}\\x{A722}-\\x{A76F}"    \
	"\\x{A771}-\\x{A787}\\x{A78B}-\\x{A78E}\\x{AB70}-\\x{ABBF}"             \
	"\\x{FB00}-\\x{FB06}\\x{FB13}-\\x{FB17}\\x{FF21}-\\x{FF3A}"             \
	"\\x{FF41}-\\x{FF5A}\\x{10400}-\\x{1044F}\\x{104B0}-\\x{104D3}"         \
	"\\x{104D8}-\\x{104FB}\\x{10C80}-\\x{10CB2}\\x{10CC0}-\\x{10CF2}"       \
	"\\x{118A0}-\\x{118DF}\\x{1E900}-\\x{1E943}]+"
#define RE_DS_PUNCT \
	"[!-/:-~\\x{FF01}-\\x{FF0F}\\x{FF1A}-\\x{FF5E}\\x{2018}-\\x{201F}\\x{3000}-\\x{3002}]+"
#define RE_DS_CJK "[\\x{4E00}-\\x{9FA5}\\x{800}-\\x{4E00}\\x{AC00}-\\x{D7FF}]+"

/* A step: a pattern, or NULL with a kind other than STEP_REGEX. */
struct step_def {
	enum tok_step_kind kind;
	const char *re;
};

#define R(p) {STEP_REGEX, p}

struct pre_def {
	enum tok_pre pre;
	const char *const *names; /* tokenizer.ggml.pre values meaning it */
	struct step_def steps[TOK_MAX_STEPS];
	int n_steps;
	int ignore_merges, add_bos; /* llama.cpp's per-family defaults */
};

static const char *const names_default[] = {"default", NULL};
static const char *const names_gpt2[] = {
	"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es",
	"jina-v2-de", "a.x-4.0", "mellum", "modern-bert", "jina-v1-en",
	"jina-v2-code", "roberta-bpe", "exaone4", "mpt", "olmo", "jais",
	"trillion", "granite-docling", NULL};
static const char *const names_llama3[] = {
	"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
	"midm-2.0", "lfm2", "jina-v5-nano", NULL};
/* Llama 3's pattern without its whole-word lookup and BOS default. */
static const char *const names_llama3_regex[] = {"dbrx", "smaug-bpe", NULL};
static const char *const names_qwen2[] = {
	"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2",
	"hunyuan", "solar-open", "grok-2", NULL};
static const char *const names_ds_llm[] = {"deepseek-llm", NULL};
static const char *const names_ds_coder[] = {"deepseek-coder", NULL};
static const char *const names_falcon[] = {"falcon", NULL};
static const char *const names_smollm[] = {
	"smollm", "starcoder", "refact", "command-r", "codeshell", "exaone",
	"minerva-7b", "mellum2", NULL};

static const struct pre_def pre_defs[] = {
	/* llama.cpp's own fallback for BPE files without a pre-tokenizer */
	{PRE_DEFAULT, names_default,
	 {R("[\\p{P}\\$\\+<=>\\^~\\|]+"), R(RE_GPT2), R("\\p{N}+"), R("[0-9][0-9][0-9]")},
	 4, 0, 0},
	{PRE_GPT2, names_gpt2, {R(RE_GPT2)}, 1, 0, 0},
	{PRE_LLAMA3, names_llama3, {R(RE_LLAMA3_LIKE("\\p{N}{1,3}"))}, 1, 1, 1},
	{PRE_LLAMA3, names_llama3_regex, {R(RE_LLAMA3_LIKE("\\p{N}{1,3}"))}, 1, 0, 0},
	{PRE_QWEN2, names_qwen2, {R(RE_LLAMA3_LIKE("\\p{N}"))}, 1, 0, 0},
	/* Sequence[Split x5, Digits(individual_digits), ByteLevel] */
	{PRE_DEEPSEEK_LLM, names_ds_llm,
	 {R("[\\r\\n]"), R(SPACE "?" RE_DS_LETTERS), R(SPACE "?" RE_DS_PUNCT),
	  {STEP_TRAIL_WS, NULL}, R(RE_DS_CJK), R("\\p{N}")},
	 6, 0, 0},
	{PRE_DEEPSEEK_CODER, names_ds_coder,
	 {R("[\\r\\n]"), R(SPACE "?\\p{L}+"), R(SPACE "?\\p{P}+"), R(RE_DS_CJK),
	  R("\\p{N}")},
	 5, 0, 0},
	/* Sequence[Punctuation(contiguous), ByteLevel(use_regex),
	 * Digits(contiguous), Split([0-9]{3})]: the last two see the
	 * byte-level characters, where only ASCII digits and the bytes shown
	 * as superscripts and fractions are numeric. */
	{PRE_FALCON, names_falcon,
	 {R("[\\p{P}$+<=>^`|~]+"), R(RE_GPT2), {STEP_BYTE_DIGITS, NULL},
	  R("[0-9][0-9][0-9]")},
	 4, 0, 0},
	/* Sequence[Digits(individual_digits), ByteLevel(use_regex)] */
	{PRE_SMOLLM, names_smollm, {R("\\p{N}"), R(RE_GPT2)}, 2, 0, 0},
};

/* ---- merges -------------------------------------------------------------- */

/* Strings named by merges that are not tokens (rare: a converter that kept
 * a merge whose parts or result it dropped from the vocabulary) get ids from
 * n_vocab up. They are kept, as copies, only while loading; encoding then
 * treats such a symbol like llama.cpp does: it may merge further, and if it
 * survives to the end its bytes are written as byte tokens. */
struct extra {
	char **s;
	size_t *len;
	int32_t n, cap;
	int32_t *slots;
	uint32_t mask;
};

static void extra_free(struct extra *x)
{
	for (int32_t i = 0; i < x->n; i++)
		free(x->s[i]);
	free(x->s);
	free(x->len);
	free(x->slots);
}

static int32_t extra_lookup(const struct extra *x, const char *s, size_t len)
{
	if (!x->mask)
		return -1;
	uint32_t h = (uint32_t)tok_hash(s, len) & x->mask;
	for (; x->slots[h] >= 0; h = (h + 1) & x->mask) {
		int32_t i = x->slots[h];
		if (x->len[i] == len && memcmp(x->s[i], s, len) == 0)
			return i;
	}
	return -1;
}

/* Id of string s: a token's, or an extra one. -ENOMEM on failure. */
static int32_t string_id(struct tok *t, struct extra *x, const char *s, size_t len)
{
	int32_t id = tok_map_find(t, s, len);
	if (id >= 0)
		return id;
	int32_t i = extra_lookup(x, s, len);
	if (i >= 0)
		return t->n_vocab + i;
	if (x->n >= INT32_MAX - t->n_vocab - 1)
		return -ENOMEM;
	if ((uint32_t)(x->n + 1) * 2 > x->mask) {
		uint32_t cap = x->mask ? (x->mask + 1) * 2 : 64;
		int32_t *slots = malloc(cap * sizeof *slots);
		if (!slots)
			return -ENOMEM;
		memset(slots, 0xff, cap * sizeof *slots);
		for (int32_t j = 0; j < x->n; j++) {
			uint32_t h = (uint32_t)tok_hash(x->s[j], x->len[j]) & (cap - 1);
			while (slots[h] >= 0)
				h = (h + 1) & (cap - 1);
			slots[h] = j;
		}
		free(x->slots);
		x->slots = slots;
		x->mask = cap - 1;
	}
	if (x->n == x->cap) {
		int32_t nc = x->cap ? x->cap * 2 : 64;
		char **ns = realloc(x->s, (size_t)nc * sizeof *ns);
		if (!ns)
			return -ENOMEM;
		x->s = ns;
		size_t *nl = realloc(x->len, (size_t)nc * sizeof *nl);
		if (!nl)
			return -ENOMEM;
		x->len = nl;
		x->cap = nc;
	}
	char *copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, s, len);
	x->s[x->n] = copy;
	x->len[x->n] = len;
	uint32_t h = (uint32_t)tok_hash(s, len) & x->mask;
	while (x->slots[h] >= 0)
		h = (h + 1) & x->mask;
	x->slots[h] = x->n;
	return t->n_vocab + x->n++;
}

static uint64_t mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	return k;
}

static const struct tok_merge *merge_find(const struct tok *t, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return NULL;
	uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
	uint64_t i = mix64(key) & t->merge_mask;
	for (;;) {
		const struct tok_merge *m = &t->merges[i];
		if (m->key == key)
			return m;
		if (m->key == UINT64_MAX)
			return NULL;
		i = (i + 1) & t->merge_mask;
	}
}

static int load_merges(struct tok *t, const struct gguf *g, char *err, size_t errsz)
{
	const char *name = gguf_name(g);
	enum gguf_vtype et;
	uint64_t n;
	const void *data;
	int64_t ki = gguf_find_key(g, "tokenizer.ggml.merges");
	if (ki < 0 || gguf_get_arr(g, "tokenizer.ggml.merges", &et, &n, &data) || et != GGUF_STR) {
		snprintf(err, errsz, "%s: byte-level BPE vocabulary without merges "
			 "(tokenizer.ggml.merges, an array of strings)", name);
		return -EINVAL;
	}
	if (n > TOK_MAX_VOCAB * 4u) {
		snprintf(err, errsz, "%s: %llu merges is too many", name, (unsigned long long)n);
		return -EINVAL;
	}
	struct extra x = {0};
	char *buf = NULL;
	size_t bufcap = 0;
	int rc = 0;
	uint64_t cap = 16;
	while (cap < n * 2)
		cap <<= 1;
	t->merges = malloc(cap * sizeof *t->merges);
	t->merge_rank = malloc((n ? n : 1) * sizeof *t->merge_rank);
	if (!t->merges || !t->merge_rank) {
		rc = -ENOMEM;
		goto out;
	}
	for (uint64_t i = 0; i < cap; i++)
		t->merges[i].key = UINT64_MAX;
	t->merge_mask = cap - 1;

	t->n_merges = (int32_t)n;
	for (uint64_t i = 0; i < n; i++) {
		size_t len;
		const char *s = gguf_get_arr_str(g, ki, i, &len);
		t->merge_rank[i] = (struct tok_merge_rank){-1, -1, -1};
		/* "left right", cut at the first space after the first byte */
		const char *sp = s && len > 1 ? memchr(s + 1, ' ', len - 1) : NULL;
		if (!sp)
			continue;
		size_t ll = (size_t)(sp - s), rl = len - ll - 1;
		if (ll + rl > bufcap) {
			size_t nc = (ll + rl) * 2;
			char *nb = realloc(buf, nc);
			if (!nb) {
				rc = -ENOMEM;
				goto out;
			}
			buf = nb;
			bufcap = nc;
		}
		memcpy(buf, s, ll);
		memcpy(buf + ll, sp + 1, rl);
		int32_t l = string_id(t, &x, s, ll);
		int32_t r = l < 0 ? l : string_id(t, &x, sp + 1, rl);
		int32_t res = r < 0 ? r : string_id(t, &x, buf, ll + rl);
		if (res < 0) {
			rc = -ENOMEM;
			goto out;
		}
		uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
		uint64_t h = mix64(key) & t->merge_mask;
		while (t->merges[h].key != UINT64_MAX && t->merges[h].key != key)
			h = (h + 1) & t->merge_mask;
		if (t->merges[h].key == UINT64_MAX) { /* the first rank of a pair wins */
			t->merges[h] = (struct tok_merge){key, (int32_t)i};
			t->merge_rank[i] = (struct tok_merge_rank){l, r, res};
		}
	}
	/* the byte-level character of every byte; one that is not a token
	 * may still be the left or right of a merge */
	for (int b = 0; b < 256; b++) {
		char c[2];
		size_t cl = tok_byte_char((unsigned char)b, c);
		int32_t id = tok_map_find(t, c, cl);
		if (id < 0 && (id = extra_lookup(&x, c, cl)) >= 0)
			id += t->n_vocab;
		t->byte_tok[b] = id;
	}
out:
	extra_free(&x);
	free(buf);
	if (rc == -ENOMEM)
		snprintf(err, errsz, "%s: out of memory reading merges", name);
	return rc;
}

/* ---- setup --------------------------------------------------------------- */

static int compile_step(struct tok_step *st, const struct step_def *d, const char *name,
			char *err, size_t errsz)
{
	st->kind = d->kind;
	st->re = NULL;
	if (d->kind != STEP_REGEX)
		return 0;
	int ec;
	PCRE2_SIZE eo;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)d->re, PCRE2_ZERO_TERMINATED,
				       PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF,
				       &ec, &eo, NULL);
	if (!re) {
		PCRE2_UCHAR msg[128];
		pcre2_get_error_message(ec, msg, sizeof msg);
		snprintf(err, errsz, "%s: pre-tokenizer pattern does not compile at %zu: %s",
			 name, (size_t)eo, (const char *)msg);
		return -EINVAL;
	}
	/* JIT is an optimisation: the interpreter gives the same matches */
	pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
	st->re = re;
	return 0;
}

int tok_bpe_init(struct tok *t, const struct gguf *g, char *err, size_t errsz)
{
	const char *name = gguf_name(g);
	size_t plen = 0;
	const char *pre = gguf_get_str(g, "tokenizer.ggml.pre", &plen);
	const struct pre_def *def = NULL;
	if (!pre) {
		pre = "default";
		plen = 7;
	}
	for (size_t i = 0; i < sizeof pre_defs / sizeof pre_defs[0] && !def; i++)
		for (const char *const *nm = pre_defs[i].names; *nm; nm++)
			if (strlen(*nm) == plen && memcmp(*nm, pre, plen) == 0)
				def = &pre_defs[i];
	if (!def) {
		snprintf(err, errsz, "%s: unsupported pre-tokenizer '%.*s' (tokenizer.ggml.pre); "
			 "supported: default, gpt-2, llama3/llama-bpe, qwen2, deepseek-r1-qwen, "
			 "deepseek-llm, deepseek-coder, falcon, smollm/starcoder and their aliases",
			 name, (int)(plen > 64 ? 64 : plen), pre);
		return -ENOTSUP;
	}
	snprintf(t->pre_name, sizeof t->pre_name, "%.*s", (int)(plen > 47 ? 47 : plen), pre);
	t->pre = def->pre;
	t->ignore_merges = def->ignore_merges;
	t->add_bos = def->add_bos;
	for (int i = 0; i < def->n_steps; i++) {
		int rc = compile_step(&t->steps[i], &def->steps[i], name, err, errsz);
		t->n_steps = i + 1;
		if (rc)
			return rc;
	}
	return load_merges(t, g, err, errsz);
}

void tok_bpe_free(struct tok *t)
{
	for (int i = 0; i < t->n_steps; i++)
		pcre2_code_free(t->steps[i].re);
	free(t->merges);
	free(t->merge_rank);
}

/* ---- encoding ------------------------------------------------------------ */

struct sym {
	int32_t id;   /* token (or extra string) of the bytes [i, i + len) */
	int32_t prev, next;
	int32_t len;  /* 0: merged into its left neighbour */
};

struct bpe_ctx {
	const struct tok *t;
	struct tok_out *o;
	pcre2_match_data *md[TOK_MAX_STEPS];
	struct sym *sym;
	size_t sym_cap;
	/* candidate merges, a min-heap of rank << 32 | left: lowest rank first,
	 * leftmost first among equal ranks */
	uint64_t *heap;
	size_t heap_n, heap_cap;
	char *enc;
	size_t enc_cap;
};

static int heap_push(struct bpe_ctx *c, uint64_t v)
{
	if (c->heap_n == c->heap_cap) {
		size_t nc = c->heap_cap ? c->heap_cap * 2 : 256;
		uint64_t *nh = realloc(c->heap, nc * sizeof *nh);
		if (!nh)
			return -ENOMEM;
		c->heap = nh;
		c->heap_cap = nc;
	}
	size_t i = c->heap_n++;
	while (i > 0) {
		size_t up = (i - 1) / 2;
		if (c->heap[up] <= v)
			break;
		c->heap[i] = c->heap[up];
		i = up;
	}
	c->heap[i] = v;
	return 0;
}

static uint64_t heap_pop(struct bpe_ctx *c)
{
	uint64_t top = c->heap[0], last = c->heap[--c->heap_n];
	size_t i = 0, n = c->heap_n;
	for (;;) {
		size_t l = 2 * i + 1;
		if (l >= n)
			break;
		if (l + 1 < n && c->heap[l + 1] < c->heap[l])
			l++;
		if (last <= c->heap[l])
			break;
		c->heap[i] = c->heap[l];
		i = l;
	}
	if (n)
		c->heap[i] = last;
	return top;
}

static int try_pair(struct bpe_ctx *c, int32_t l, int32_t r)
{
	if (l < 0 || r < 0)
		return 0;
	const struct tok_merge *m = merge_find(c->t, c->sym[l].id, c->sym[r].id);
	if (!m)
		return 0;
	return heap_push(c, (uint64_t)(uint32_t)m->rank << 32 | (uint32_t)l);
}

/* Write the token of a symbol, or its bytes one by one when it is not a
 * token; a byte without a token is dropped, as llama.cpp does. */
static void emit_sym(struct bpe_ctx *c, const unsigned char *s, int32_t id, size_t n)
{
	const struct tok *t = c->t;
	if (id >= 0 && id < t->n_vocab) {
		tok_emit(c->o, id);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (t->byte_tok[s[i]] >= 0 && t->byte_tok[s[i]] < t->n_vocab)
			tok_emit(c->o, t->byte_tok[s[i]]);
}

static int merge_word(struct bpe_ctx *c, const unsigned char *s, size_t n)
{
	const struct tok *t = c->t;
	if (t->ignore_merges && n <= t->max_len) {
		/* a word that is a token is taken whole (Llama 3) */
		if (c->enc_cap < 2 * n) {
			char *ne = realloc(c->enc, 2 * n);
			if (!ne)
				return -ENOMEM;
			c->enc = ne;
			c->enc_cap = 2 * n;
		}
		size_t m = 0;
		for (size_t i = 0; i < n; i++)
			m += tok_byte_char(s[i], c->enc + m);
		int32_t id = tok_map_find(t, c->enc, m);
		if (id >= 0) {
			tok_emit(c->o, id);
			return 0;
		}
	}
	if (n == 1) {
		emit_sym(c, s, t->byte_tok[s[0]], 1);
		return 0;
	}
	if (c->sym_cap < n) {
		struct sym *ns = realloc(c->sym, n * sizeof *ns);
		if (!ns)
			return -ENOMEM;
		c->sym = ns;
		c->sym_cap = n;
	}
	struct sym *sym = c->sym;
	for (size_t i = 0; i < n; i++)
		sym[i] = (struct sym){t->byte_tok[s[i]], (int32_t)i - 1,
				      i + 1 < n ? (int32_t)i + 1 : -1, 1};
	c->heap_n = 0;
	int rc = 0;
	for (size_t i = 0; i + 1 < n && !rc; i++)
		rc = try_pair(c, (int32_t)i, (int32_t)i + 1);
	while (!rc && c->heap_n) {
		uint64_t v = heap_pop(c);
		int32_t left = (int32_t)(uint32_t)v;
		const struct tok_merge_rank *m = &t->merge_rank[v >> 32];
		struct sym *l = &sym[left];
		/* stale when either side has changed since it was queued: a rank
		 * names one pair, so the ids tell */
		if (!l->len || l->next < 0 || l->id != m->left || sym[l->next].id != m->right)
			continue;
		struct sym *r = &sym[l->next];
		l->id = m->result;
		l->len += r->len;
		r->len = 0;
		l->next = r->next;
		if (r->next >= 0)
			sym[r->next].prev = left;
		rc = try_pair(c, l->prev, left);
		if (!rc)
			rc = try_pair(c, left, l->next);
	}
	if (rc)
		return rc;
	for (int32_t i = 0; i >= 0; i = sym[i].next)
		emit_sym(c, s + i, sym[i].id, (size_t)sym[i].len);
	return 0;
}

static int word(struct bpe_ctx *c, const char *s, size_t n)
{
	const unsigned char *u = (const unsigned char *)s;
	while (n > TOK_MAX_PIECE) {
		/* cut at a character boundary */
		size_t cut = TOK_MAX_PIECE;
		while (cut > TOK_MAX_PIECE - 4 && (u[cut] & 0xc0) == 0x80)
			cut--;
		int rc = merge_word(c, u, cut);
		if (rc)
			return rc;
		u += cut;
		n -= cut;
	}
	return n ? merge_word(c, u, n) : 0;
}

static int is_white_space(uint32_t cp)
{
	return (cp >= 0x09 && cp <= 0x0d) || cp == 0x20 || cp == 0x85 || cp == 0xa0 ||
	       cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) || cp == 0x2028 ||
	       cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

/* Start of the run of white space ending s[0..n), n if none. */
static size_t trailing_space(const unsigned char *s, size_t n)
{
	size_t p = n;
	while (p > 0) {
		size_t q = p - 1;
		while (q > 0 && p - q < 4 && (s[q] & 0xc0) == 0x80)
			q--;
		size_t cl = tok_utf8_len(s[q]);
		uint32_t cp;
		if (cl == 1 && s[q] < 0x80)
			cp = s[q];
		else if (cl == 2 && p - q == 2)
			cp = (uint32_t)(s[q] & 0x1f) << 6 | (s[q + 1] & 0x3f);
		else if (cl == 3 && p - q == 3)
			cp = (uint32_t)(s[q] & 0x0f) << 12 | (uint32_t)(s[q + 1] & 0x3f) << 6 |
			     (s[q + 2] & 0x3f);
		else
			break; /* not a character this could be (4-byte ones are
				  never white space) */
		if (!is_white_space(cp))
			break;
		p = q;
	}
	return p;
}

static int byte_is_digit(unsigned char b)
{
	/* the byte-level characters with Unicode property N: 0-9 and the
	 * bytes standing for superscripts and vulgar fractions */
	return (b >= '0' && b <= '9') || b == 0xb2 || b == 0xb3 || b == 0xb9 ||
	       (b >= 0xbc && b <= 0xbe);
}

static int split(struct bpe_ctx *c, int k, const char *s, size_t n);

/* Pieces [gap, ms) and [ms, me) of s, skipping empty ones. */
static int emit_pieces(struct bpe_ctx *c, int k, const char *s, size_t gap, size_t ms,
		       size_t me)
{
	int rc = 0;
	if (ms > gap)
		rc = split(c, k + 1, s + gap, ms - gap);
	if (!rc && me > ms)
		rc = split(c, k + 1, s + ms, me - ms);
	return rc;
}

static int split(struct bpe_ctx *c, int k, const char *s, size_t n)
{
	const struct tok *t = c->t;
	if (k == t->n_steps)
		return word(c, s, n);
	const struct tok_step *st = &t->steps[k];
	const unsigned char *u = (const unsigned char *)s;
	size_t gap = 0;
	int rc = 0;
	switch (st->kind) {
	case STEP_REGEX: {
		size_t start = 0;
		while (start < n && !rc) {
			int m = pcre2_match(st->re, (PCRE2_SPTR)s, n, start, 0, c->md[k], NULL);
			if (m < 0)
				break; /* no match (or a matching error): the rest is one piece */
			PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md[k]);
			size_t ms = ov[0], me = ov[1];
			if (me <= ms) {
				/* empty match: step over one character */
				start = ms + 1;
				while (start < n && (u[start] & 0xc0) == 0x80)
					start++;
				continue;
			}
			rc = emit_pieces(c, k, s, gap, ms, me);
			gap = start = me;
		}
		break;
	}
	case STEP_TRAIL_WS: {
		size_t p = trailing_space(u, n);
		rc = emit_pieces(c, k, s, 0, p, n);
		gap = n;
		break;
	}
	case STEP_BYTE_DIGITS: {
		for (size_t i = 0; i < n && !rc;) {
			if (!byte_is_digit(u[i])) {
				i++;
				continue;
			}
			size_t j = i;
			while (j < n && byte_is_digit(u[j]))
				j++;
			rc = emit_pieces(c, k, s, gap, i, j);
			gap = i = j;
		}
		break;
	}
	}
	if (!rc && gap < n)
		rc = split(c, k + 1, s + gap, n - gap);
	return rc;
}

int tok_bpe_encode(const struct tok *t, const char *s, size_t n, struct tok_out *out)
{
	struct bpe_ctx c = {.t = t, .o = out};
	int rc = 0;
	for (int k = 0; k < t->n_steps; k++) {
		if (t->steps[k].kind != STEP_REGEX)
			continue;
		c.md[k] = pcre2_match_data_create_from_pattern(t->steps[k].re, NULL);
		if (!c.md[k]) {
			rc = -ENOMEM;
			goto out;
		}
	}
	rc = split(&c, 0, s, n);
out:
	for (int k = 0; k < t->n_steps; k++)
		pcre2_match_data_free(c.md[k]);
	free(c.sym);
	free(c.heap);
	free(c.enc);
	return rc;
}
