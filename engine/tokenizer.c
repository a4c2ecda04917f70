/*
 * Tokenizer: builds a vocabulary from a GGUF's tokenizer.ggml.* keys and
 * turns text into token ids and back, matching llama.cpp (and through it the
 * Hugging Face / SentencePiece tokenizers the models were trained with).
 *
 * Encoding runs in two stages. First the text is cut at the spellings of
 * special tokens (control tokens only when the caller asks to parse them;
 * user-defined tokens always, as the Hugging Face tokenizers do). Then each
 * run of plain text between them is handed to the model's algorithm:
 * SentencePiece-style score merges (tok_spm.c), byte-level BPE after a
 * per-model pre-tokenizer (tok_bpe.c) or BERT's WordPiece (tok_wpm.c).
 *
 * A loaded tokenizer is read-only: any number of threads may encode with it
 * at once.
 */
#define _GNU_SOURCE /* qsort_r, memmem */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/tok_internal.h"

#define KEY "tokenizer.ggml."

/* ---- hashing ------------------------------------------------------------- */

uint64_t tok_hash(const void *s, size_t n)
{
	/* FNV-1a; token strings are short, so this beats fancier hashes. */
	const unsigned char *p = s;
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h ^ (h >> 29);
}

int32_t tok_map_find(const struct tok *t, const char *s, size_t n)
{
	uint32_t i = (uint32_t)tok_hash(s, n) & t->map.mask;
	for (;;) {
		int32_t id = t->map.slots[i];
		if (id < 0)
			return -1;
		size_t len;
		const char *tx = tok_text(t, id, &len);
		if (len == n && memcmp(tx, s, n) == 0)
			return id;
		i = (i + 1) & t->map.mask;
	}
}

/* Insert every token; the first of duplicate strings keeps the string.
 * Empty strings are left out: they can never be matched. */
static int build_map(struct tok *t)
{
	uint32_t cap = 16;
	while (cap < (uint32_t)t->n_vocab * 2u)
		cap <<= 1;
	t->map.slots = malloc(cap * sizeof *t->map.slots);
	if (!t->map.slots)
		return -ENOMEM;
	memset(t->map.slots, 0xff, cap * sizeof *t->map.slots);
	t->map.mask = cap - 1;
	for (int32_t id = 0; id < t->n_vocab; id++) {
		size_t len;
		const char *s = tok_text(t, id, &len);
		if (!len)
			continue;
		uint32_t i = (uint32_t)tok_hash(s, len) & t->map.mask;
		for (;;) {
			int32_t o = t->map.slots[i];
			if (o < 0) {
				t->map.slots[i] = id;
				break;
			}
			size_t ol;
			const char *os = tok_text(t, o, &ol);
			if (ol == len && memcmp(os, s, len) == 0)
				break;
			i = (i + 1) & t->map.mask;
		}
	}
	return 0;
}

/* ---- special tokens ------------------------------------------------------ */

/* Spellings llama.cpp recognises when a converter did not name the token in
 * metadata: the first token (by id) spelled like one of these becomes the
 * end-of-turn / fill-in-the-middle token and is typed control. */
static const char *const eot_names[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"<|end_of_text|>", "<EOT>", "_<EOT>", "[EOT]",
	"<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>",
	"<end_of_utterance>", NULL};
static const char *const fim_pre_names[] = {
	"<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>",
	"<\xef\xbd\x9c" "fim\xe2\x96\x81" "begin\xef\xbd\x9c>", "<PRE>",
	"\xe2\x96\x81<PRE>", "<|code_prefix|>", "<|prefix|>", NULL};
static const char *const fim_suf_names[] = {
	"<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>",
	"<\xef\xbd\x9c" "fim\xe2\x96\x81hole\xef\xbd\x9c>", "<SUF>",
	"\xe2\x96\x81<SUF>", "<|code_suffix|>", "<|suffix|>", NULL};
static const char *const fim_mid_names[] = {
	"<|fim_middle|>", "<fim-middle>", "<fim_middle>",
	"<\xef\xbd\x9c" "fim\xe2\x96\x81" "end\xef\xbd\x9c>", "<MID>",
	"\xe2\x96\x81<MID>", "<|code_middle|>", "<|middle|>", NULL};
static const char *const fim_pad_names[] = {
	"<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]", NULL};
static const char *const fim_rep_names[] = {
	"<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>", NULL};
static const char *const fim_sep_names[] = {"<|file_sep|>", NULL};
/* Tokens that end generation wherever they appear in a vocabulary. */
static const char *const eog_names[] = {
	"<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>",
	"</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]",
	"<|end_of_text|>", "<end_of_utterance>", "<eos>",
	"<\xef\xbd\x9c" "end\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>", NULL};

/* The first token (lowest id) spelled as one of names, typed control; -1 if
 * none. */
static int32_t detect(struct tok *t, const char *const *names)
{
	int32_t best = -1;
	for (; *names; names++) {
		int32_t id = tok_map_find(t, *names, strlen(*names));
		if (id >= 0 && (best < 0 || id < best))
			best = id;
	}
	if (best >= 0)
		t->attr[best] |= TA_CONTROL;
	return best;
}

static int cmp_special(const void *a, const void *b, void *ctx)
{
	const struct tok *t = ctx;
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	uint32_t lx = t->off[x + 1] - t->off[x], ly = t->off[y + 1] - t->off[y];
	if (lx != ly)
		return lx > ly ? -1 : 1;
	return x < y ? -1 : x > y;
}

static int32_t trie_add_node(struct tok *t, int32_t *cap, uint8_t byte)
{
	if (t->n_trie == *cap) {
		int32_t nc = *cap ? *cap * 2 : 256;
		struct tok_trie_node *n = realloc(t->trie, (size_t)nc * sizeof *n);
		if (!n)
			return -1;
		t->trie = n;
		*cap = nc;
	}
	struct tok_trie_node *n = &t->trie[t->n_trie];
	n->child = n->sibling = n->id = -1;
	n->byte = byte;
	return t->n_trie++;
}

/* The special list, longest first (the order llama.cpp tries them in), and a
 * trie over their strings whose nodes hold the position in that list. */
static int build_specials(struct tok *t)
{
	int32_t n = 0, cap = 0;
	for (int32_t id = 0; id < t->n_vocab; id++)
		if ((t->attr[id] & (TA_CONTROL | TA_USER | TA_UNKNOWN)) &&
		    t->off[id + 1] > t->off[id])
			n++;
	memset(t->trie_root, 0xff, sizeof t->trie_root);
	if (!n)
		return 0;
	t->special = malloc((size_t)n * sizeof *t->special);
	if (!t->special)
		return -ENOMEM;
	for (int32_t id = 0; id < t->n_vocab; id++)
		if ((t->attr[id] & (TA_CONTROL | TA_USER | TA_UNKNOWN)) &&
		    t->off[id + 1] > t->off[id])
			t->special[t->n_special++] = id;
	qsort_r(t->special, (size_t)n, sizeof *t->special, cmp_special, t);

	for (int32_t r = 0; r < n; r++) {
		size_t len;
		const unsigned char *s =
			(const unsigned char *)tok_text(t, t->special[r], &len);
		int32_t node = t->trie_root[s[0]];
		if (node < 0) {
			if ((node = trie_add_node(t, &cap, s[0])) < 0)
				return -ENOMEM;
			t->trie_root[s[0]] = node;
		}
		for (size_t i = 1; i < len; i++) {
			int32_t c = t->trie[node].child;
			while (c >= 0 && t->trie[c].byte != s[i])
				c = t->trie[c].sibling;
			if (c < 0) {
				if ((c = trie_add_node(t, &cap, s[i])) < 0)
					return -ENOMEM;
				t->trie[c].sibling = t->trie[node].child;
				t->trie[node].child = c;
			}
			node = c;
		}
		if (t->trie[node].id < 0) /* duplicates: the first wins */
			t->trie[node].id = r;
	}
	return 0;
}

/* ---- loading ------------------------------------------------------------- */

static int32_t key_id(const struct gguf *g, const char *key, int32_t def, int32_t n_vocab)
{
	int64_t v;
	if (gguf_get_i64(g, key, &v) == 0 && v >= 0 && v < n_vocab)
		return (int32_t)v;
	return def;
}

static int load_tokens(struct tok *t, const struct gguf *g, char *err, size_t errsz)
{
	const char *name = gguf_name(g);
	enum gguf_vtype et;
	uint64_t n;
	const void *data;
	int64_t ki = gguf_find_key(g, KEY "tokens");
	if (ki < 0 || gguf_get_arr(g, KEY "tokens", &et, &n, &data) || et != GGUF_STR) {
		snprintf(err, errsz, "%s: no token list (" KEY "tokens, an array of strings)", name);
		return -EINVAL;
	}
	if (n == 0 || n > TOK_MAX_VOCAB) {
		snprintf(err, errsz, "%s: " KEY "tokens has %llu entries; expected 1 to %d",
			 name, (unsigned long long)n, TOK_MAX_VOCAB);
		return -EINVAL;
	}
	t->n_vocab = (int32_t)n;
	size_t total = 0;
	for (uint64_t i = 0; i < n; i++) {
		size_t len;
		if (!gguf_get_arr_str(g, ki, i, &len)) {
			snprintf(err, errsz, "%s: " KEY "tokens[%llu] is unreadable", name,
				 (unsigned long long)i);
			return -EINVAL;
		}
		if (len > UINT32_MAX - total) {
			snprintf(err, errsz, "%s: token strings exceed 4 GiB", name);
			return -EINVAL;
		}
		total += len;
	}
	t->text = malloc(total ? total : 1);
	t->off = malloc((n + 1) * sizeof *t->off);
	t->score = calloc(n, sizeof *t->score);
	t->attr = malloc(n);
	if (!t->text || !t->off || !t->score || !t->attr)
		return -ENOMEM;
	size_t pos = 0;
	for (uint64_t i = 0; i < n; i++) {
		size_t len;
		const char *s = gguf_get_arr_str(g, ki, i, &len);
		memcpy(t->text + pos, s, len);
		t->off[i] = (uint32_t)pos;
		pos += len;
		if (len > t->max_len)
			t->max_len = (uint32_t)len;
	}
	t->off[n] = (uint32_t)pos;

	if (gguf_get_arr(g, KEY "scores", &et, &n, &data) == 0) {
		if ((et != GGUF_F32 && et != GGUF_I32) || n < (uint64_t)t->n_vocab) {
			snprintf(err, errsz, "%s: " KEY "scores must be %d float32 or int32 values",
				 name, t->n_vocab);
			return -EINVAL;
		}
		for (int32_t i = 0; i < t->n_vocab; i++) {
			if (et == GGUF_F32) {
				memcpy(&t->score[i], (const char *)data + 4 * (size_t)i, 4);
			} else {
				int32_t v;
				memcpy(&v, (const char *)data + 4 * (size_t)i, 4);
				t->score[i] = (float)v;
			}
		}
	}

	memset(t->attr, TA_NORMAL, (size_t)t->n_vocab);
	if (gguf_get_arr(g, KEY "token_type", &et, &n, &data) == 0) {
		if ((et != GGUF_I32 && et != GGUF_U32) || n < (uint64_t)t->n_vocab) {
			snprintf(err, errsz, "%s: " KEY "token_type must be %d int32 values",
				 name, t->n_vocab);
			return -EINVAL;
		}
		static const uint8_t map[7] = {0, TA_NORMAL, TA_UNKNOWN, TA_CONTROL,
					       TA_USER, TA_UNUSED, TA_BYTE};
		for (int32_t i = 0; i < t->n_vocab; i++) {
			int32_t v;
			memcpy(&v, (const char *)data + 4 * (size_t)i, 4);
			t->attr[i] = v >= 1 && v <= 6 ? map[v] : 0;
		}
	}
	return 0;
}

static void spm_setup(struct tok *t)
{
	static const char hex[] = "0123456789ABCDEF";
	for (int b = 0; b < 256; b++) {
		char buf[6] = {'<', '0', 'x', hex[b >> 4], hex[b & 15], '>'};
		int32_t id = tok_map_find(t, buf, 6);
		if (id < 0) {
			char c = (char)b;
			id = tok_map_find(t, &c, 1);
		}
		t->byte_tok[b] = id;
	}
	/* Word splitting is exact when no token could span the boundary, i.e.
	 * no token has U+2581 right after a character other than U+2581. */
	t->spm_word_split = 1;
	for (int32_t id = 0; id < t->n_vocab && t->spm_word_split; id++) {
		size_t len;
		const char *s = tok_text(t, id, &len);
		for (size_t i = 1; i + 3 <= len; i++) {
			if (memcmp(s + i, "\xe2\x96\x81", 3) == 0 &&
			    !(i >= 3 && memcmp(s + i - 3, "\xe2\x96\x81", 3) == 0)) {
				t->spm_word_split = 0;
				break;
			}
		}
	}
}

/* The end-of-turn, fill-in-the-middle and end-of-generation tokens a file
 * does not name, recognised by their spellings as llama.cpp does; unused
 * control tokens marked. */
static void detect_by_spelling(struct tok *t, const struct gguf *g, int32_t *fim_pad,
			       int32_t *fim_rep, int32_t *fim_sep)
{
	if (t->eot < 0)
		t->eot = detect(t, eot_names);
	if (t->eom < 0) {
		static const char *const eom_names[] = {"<|eom_id|>", NULL};
		t->eom = detect(t, eom_names);
	}
	if (key_id(g, KEY "fim_pre_token_id", -1, t->n_vocab) < 0 &&
	    key_id(g, KEY "prefix_token_id", -1, t->n_vocab) < 0)
		detect(t, fim_pre_names);
	if (key_id(g, KEY "fim_suf_token_id", -1, t->n_vocab) < 0 &&
	    key_id(g, KEY "suffix_token_id", -1, t->n_vocab) < 0)
		detect(t, fim_suf_names);
	if (key_id(g, KEY "fim_mid_token_id", -1, t->n_vocab) < 0 &&
	    key_id(g, KEY "middle_token_id", -1, t->n_vocab) < 0)
		detect(t, fim_mid_names);
	if (*fim_pad < 0)
		*fim_pad = detect(t, fim_pad_names);
	if (*fim_rep < 0)
		*fim_rep = detect(t, fim_rep_names);
	if (*fim_sep < 0)
		*fim_sep = detect(t, fim_sep_names);
	for (int32_t id = 0; id < t->n_vocab; id++) {
		if ((t->attr[id] & TA_CONTROL) && !(t->attr[id] & TA_UNUSED) &&
		    t->off[id + 1] > t->off[id]) {
			size_t len;
			const char *s = tok_text(t, id, &len);
			if (memmem(s, len, "unused", 6))
				t->attr[id] |= TA_UNUSED;
		}
	}
	for (const char *const *nm = eog_names; *nm; nm++) {
		int32_t id = tok_map_find(t, *nm, strlen(*nm));
		if (id >= 0)
			t->attr[id] |= TA_EOG | TA_CONTROL;
	}
}

int tok_load(const struct gguf *g, struct tok **out, char *err, size_t errsz)
{
	const char *name = gguf_name(g);
	size_t mlen;
	const char *model = gguf_get_str(g, KEY "model", &mlen);
	*out = NULL;
	if (!model) {
		snprintf(err, errsz, "%s: no tokenizer (" KEY "model is missing)", name);
		return -EINVAL;
	}
	struct tok *t = calloc(1, sizeof *t);
	if (!t)
		return -ENOMEM;
	int rc;
	if (mlen == 5 && memcmp(model, "llama", 5) == 0) {
		t->kind = TOK_SPM;
	} else if (mlen == 4 && memcmp(model, "gpt2", 4) == 0) {
		t->kind = TOK_BPE;
	} else if (mlen == 4 && memcmp(model, "bert", 4) == 0) {
		t->kind = TOK_WPM;
	} else {
		snprintf(err, errsz, "%s: unsupported tokenizer model '%.*s' (supported: "
			 "llama, gpt2, bert)", name, (int)(mlen > 64 ? 64 : mlen), model);
		rc = -ENOTSUP;
		goto fail;
	}
	if ((rc = load_tokens(t, g, err, errsz)) || (rc = build_map(t)))
		goto fail;

	/* llama.cpp's defaults for files that name no special tokens. */
	if (t->kind == TOK_SPM) {
		t->bos = 1, t->eos = 2, t->unk = 0;
		t->add_bos = 1, t->add_space_prefix = 1;
		snprintf(t->pre_name, sizeof t->pre_name, "none");
	} else if (t->kind == TOK_BPE) {
		t->bos = 11, t->eos = 11, t->unk = -1;
	} else {
		t->bos = t->eos = t->unk = -1; /* found below */
	}
	t->eot = t->eom = t->pad = -1;
	if (t->bos >= t->n_vocab)
		t->bos = -1;
	if (t->eos >= t->n_vocab)
		t->eos = -1;
	if (t->unk >= t->n_vocab)
		t->unk = -1;

	if (t->kind == TOK_BPE) {
		if ((rc = tok_bpe_init(t, g, err, errsz)))
			goto fail;
	} else if (t->kind == TOK_SPM) {
		spm_setup(t);
	}

	t->bos = key_id(g, KEY "bos_token_id", t->bos, t->n_vocab);
	t->eos = key_id(g, KEY "eos_token_id", t->eos, t->n_vocab);
	t->eot = key_id(g, KEY "eot_token_id", t->eot, t->n_vocab);
	t->eom = key_id(g, KEY "eom_token_id", t->eom, t->n_vocab);
	t->unk = key_id(g, KEY "unknown_token_id", t->unk, t->n_vocab);
	t->pad = key_id(g, KEY "padding_token_id", t->pad, t->n_vocab);
	int32_t fim_pad = key_id(g, KEY "fim_pad_token_id", -1, t->n_vocab);
	int32_t fim_rep = key_id(g, KEY "fim_rep_token_id", -1, t->n_vocab);
	int32_t fim_sep = key_id(g, KEY "fim_sep_token_id", -1, t->n_vocab);
	if (t->kind == TOK_WPM) {
		/* BOS and EOS are what an embedder frames a sequence with:
		 * [CLS] and [SEP] (llama.cpp's converter names them with
		 * cls_token_id and seperator_token_id, spelled so). */
		t->bos = key_id(g, KEY "cls_token_id", t->bos, t->n_vocab);
		t->eos = key_id(g, KEY "seperator_token_id", t->eos, t->n_vocab);
		if (t->bos < 0)
			t->bos = tok_map_find(t, "[CLS]", 5);
		if (t->eos < 0)
			t->eos = tok_map_find(t, "[SEP]", 5);
		if (t->unk < 0)
			t->unk = tok_map_find(t, "[UNK]", 5);
		if (t->pad < 0)
			t->pad = tok_map_find(t, "[PAD]", 5);
		t->add_bos = t->bos >= 0;
		if ((rc = tok_wpm_init(t, g, err, errsz)))
			goto fail;
	}
	t->add_bos = gguf_get_i64_or(g, KEY "add_bos_token", t->add_bos) != 0;
	t->add_space_prefix = gguf_get_i64_or(g, KEY "add_space_prefix", t->add_space_prefix) != 0;
	if (t->add_bos && t->bos < 0) {
		snprintf(err, errsz, "%s: " KEY "add_bos_token is true but the vocabulary "
			 "has no BOS token (" KEY "bos_token_id)", name);
		rc = -EINVAL;
		goto fail;
	}

	/* Tokens found by spelling, as llama.cpp does: for generative models
	 * only (an encoder's [PAD] is no fill-in-the-middle token). */
	if (t->kind != TOK_WPM)
		detect_by_spelling(t, g, &fim_pad, &fim_rep, &fim_sep);
	const int32_t eog_ids[] = {fim_pad, fim_rep, fim_sep, t->eos, t->eot, t->eom};
	for (size_t i = 0; i < sizeof eog_ids / sizeof eog_ids[0]; i++)
		if (eog_ids[i] >= 0)
			t->attr[eog_ids[i]] |= TA_EOG;

	if ((rc = build_specials(t)))
		goto fail;
	*out = t;
	return 0;
fail:
	if (rc == -ENOMEM)
		snprintf(err, errsz, "%s: out of memory loading the vocabulary", name);
	tok_free(t);
	return rc;
}

void tok_free(struct tok *t)
{
	if (!t)
		return;
	if (t->kind == TOK_BPE)
		tok_bpe_free(t);
	free(t->text);
	free(t->off);
	free(t->score);
	free(t->attr);
	free(t->map.slots);
	free(t->special);
	free(t->trie);
	free(t);
}

/* ---- queries ------------------------------------------------------------- */

enum tok_kind tok_kind(const struct tok *t) { return t->kind; }
const char *tok_pre_name(const struct tok *t) { return t->pre_name; }
int32_t tok_n_vocab(const struct tok *t) { return t->n_vocab; }
int32_t tok_bos(const struct tok *t) { return t->bos; }
int32_t tok_eos(const struct tok *t) { return t->eos; }
int tok_add_bos(const struct tok *t) { return t->add_bos; }

int tok_is_eog(const struct tok *t, int32_t id)
{
	return id >= 0 && id < t->n_vocab && (t->attr[id] & TA_EOG) != 0;
}

int tok_is_control(const struct tok *t, int32_t id)
{
	return id >= 0 && id < t->n_vocab &&
	       (t->attr[id] & (TA_CONTROL | TA_UNKNOWN)) != 0;
}

int32_t tok_find(const struct tok *t, const char *s)
{
	return tok_map_find(t, s, strlen(s));
}

/* ---- encoding ------------------------------------------------------------ */

struct occ {
	int32_t rank; /* position in t->special: lower is tried first */
	uint32_t pos; /* tok_encode hands over at most TOK_MAX_SLICE bytes */
};

static int cmp_occ(const void *a, const void *b)
{
	const struct occ *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int cmp_occ_pos(const void *a, const void *b)
{
	const struct occ *x = a, *y = b;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int encode_raw(const struct tok *t, const char *s, size_t n, int after_special,
		      struct tok_out *o)
{
	if (t->kind == TOK_SPM)
		return tok_spm_encode(t, s, n, t->add_space_prefix && after_special, o);
	if (t->kind == TOK_WPM)
		return tok_wpm_encode(t, s, n, o);
	return tok_bpe_encode(t, s, n, o);
}

/* All places where an allowed special token's spelling starts, found with
 * the trie. *occ grows as needed. Returns the count or -ENOMEM. */
static int64_t find_specials(const struct tok *t, const char *text, size_t len,
			     int parse_special, struct occ **occ)
{
	int64_t n = 0, cap = 0;
	*occ = NULL;
	for (size_t p = 0; p < len; p++) {
		int32_t node = t->trie_root[(unsigned char)text[p]];
		size_t q = p;
		while (node >= 0) {
			int32_t r = t->trie[node].id;
			if (r >= 0 && (parse_special ||
				       !(t->attr[t->special[r]] & (TA_CONTROL | TA_UNKNOWN)))) {
				if (n == cap) {
					int64_t nc = cap ? cap * 2 : 64;
					struct occ *no = realloc(*occ, (size_t)nc * sizeof *no);
					if (!no)
						return -ENOMEM;
					*occ = no;
					cap = nc;
				}
				(*occ)[n++] = (struct occ){r, (uint32_t)p};
			}
			if (++q >= len)
				break;
			int32_t c = t->trie[node].child;
			while (c >= 0 && t->trie[c].byte != (unsigned char)text[q])
				c = t->trie[c].sibling;
			node = c;
		}
	}
	return n;
}

static int encode_slice(const struct tok *t, const char *text, size_t len,
			int parse_special, int after_special, struct tok_out *o)
{
	struct occ *occ = NULL;
	uint8_t *taken = NULL;
	int rc = 0;

	int64_t n_occ = t->n_special ? find_specials(t, text, len, parse_special, &occ) : 0;
	if (n_occ < 0) {
		rc = (int)n_occ;
		goto out;
	}
	int64_t n_acc = 0;
	if (n_occ > 0) {
		/* llama.cpp's order: each special token in turn, longest first,
		 * claims its leftmost non-overlapping occurrences in the text not
		 * yet claimed. */
		taken = calloc(len, 1);
		if (!taken) {
			rc = -ENOMEM;
			goto out;
		}
		qsort(occ, (size_t)n_occ, sizeof *occ, cmp_occ);
		for (int64_t i = 0; i < n_occ; i++) {
			size_t sl;
			tok_text(t, t->special[occ[i].rank], &sl);
			size_t p = (size_t)occ[i].pos;
			if (memchr(taken + p, 1, sl))
				continue;
			memset(taken + p, 1, sl);
			occ[n_acc++] = occ[i];
		}
		qsort(occ, (size_t)n_acc, sizeof *occ, cmp_occ_pos);
	}

	size_t pos = 0;
	for (int64_t i = 0; i <= n_acc; i++) {
		size_t end = i < n_acc ? (size_t)occ[i].pos : len;
		if (end > pos) {
			if ((rc = encode_raw(t, text + pos, end - pos, after_special, o)))
				goto out;
			after_special = 0;
		}
		if (i < n_acc) {
			int32_t id = t->special[occ[i].rank];
			size_t sl;
			tok_text(t, id, &sl);
			tok_emit(o, id);
			after_special = 1;
			pos = end + sl;
		}
	}
out:
	free(occ);
	free(taken);
	return rc;
}

int64_t tok_encode(const struct tok *t, const char *text, size_t len,
		   int parse_special, int32_t *ids, int64_t n_max)
{
	struct tok_out o = {ids, n_max < 0 ? 0 : n_max, 0};
	int first = 1;
	/* Texts beyond TOK_MAX_SLICE (2 GiB) are encoded a slice at a time,
	 * cut at a character boundary. */
	while (len) {
		size_t n = len;
		if (n > TOK_MAX_SLICE) {
			n = TOK_MAX_SLICE;
			while (n > TOK_MAX_SLICE - 4 && ((unsigned char)text[n] & 0xc0) == 0x80)
				n--;
		}
		int rc = encode_slice(t, text, n, parse_special, first, &o);
		if (rc)
			return rc;
		first = 0;
		text += n;
		len -= n;
	}
	return o.n > o.n_max ? -o.n : o.n;
}

int64_t tok_encode_alloc(const struct tok *t, const char *text, size_t len,
			 int parse_special, int lead, int32_t **ids)
{
	int64_t cap = (int64_t)len + 8, n; /* ids after lead; then what was asked for */
	int32_t *v = NULL;
	*ids = NULL;
	for (;;) {
		if ((uint64_t)(cap + lead) > SIZE_MAX / sizeof *v) {
			free(v);
			return -EOVERFLOW;
		}
		int32_t *nv = realloc(v, (size_t)(cap + lead) * sizeof *v);
		if (!nv) {
			free(v);
			return -ENOMEM;
		}
		v = nv;
		n = tok_encode(t, text, len, parse_special, v + lead, cap);
		if (n >= 0)
			break;
		if (-n <= cap) { /* an error, not a size */
			free(v);
			return n;
		}
		cap = -n;
	}
	*ids = v;
	return n;
}

int64_t tok_encode_prompt(const struct tok *t, const char *text, size_t len,
			  int parse_special, int32_t **ids)
{
	const int bos = tok_add_bos(t) && tok_bos(t) >= 0;
	int64_t n = tok_encode_alloc(t, text, len, parse_special, bos, ids);
	if (n < 0 || !bos)
		return n;
	if (n > 0 && (*ids)[1] == tok_bos(t)) { /* the text's own BOS */
		memmove(*ids, *ids + 1, (size_t)n * sizeof **ids);
		return n;
	}
	(*ids)[0] = tok_bos(t);
	return n + 1;
}

/* ---- decoding ------------------------------------------------------------ */

static int copy_out(char *buf, size_t n, const char *s, size_t len)
{
	if (len > INT32_MAX)
		return -EOVERFLOW;
	if (n && len)
		memcpy(buf, s, len < n ? len : n);
	return (int)len;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* <0xXX> -> XX, or -1 */
static int byte_token_value(const char *s, size_t len)
{
	if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>')
		return -1;
	int hi = hexval(s[3]), lo = hexval(s[4]);
	return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

int tok_piece(const struct tok *t, int32_t id, char *buf, size_t n)
{
	if (id < 0 || id >= t->n_vocab)
		return -EINVAL;
	size_t len;
	const char *s = tok_text(t, id, &len);
	uint8_t a = t->attr[id];
	if (a & (TA_CONTROL | TA_UNKNOWN | TA_USER))
		return copy_out(buf, n, s, len);
	if (a & TA_BYTE) {
		int b = byte_token_value(s, len);
		if (b >= 0) {
			char c = (char)b;
			return copy_out(buf, n, &c, 1);
		}
		return copy_out(buf, n, s, len);
	}
	size_t w = 0;
	if (t->kind == TOK_WPM) {
		/* a word start is a space and the word; a continuation is its
		 * text; bracketed names ([unused0]) are spelled as they are */
		const char *body = s;
		size_t bl = len;
		int space = 0;
		if (t->wpm_phantom && len >= 3 && memcmp(s, "\xe2\x96\x81", 3) == 0)
			body += 3, bl -= 3, space = 1;
		else if (!t->wpm_phantom && len > 2 && memcmp(s, "##", 2) == 0)
			body += 2, bl -= 2;
		else if (!t->wpm_phantom && !(len >= 2 && s[0] == '[' && s[len - 1] == ']'))
			space = 1;
		if (space && n)
			buf[0] = ' ';
		if (bl > (size_t)INT32_MAX - 1)
			return -EOVERFLOW;
		if (n > (size_t)space && bl)
			memcpy(buf + space, body, bl < n - space ? bl : n - space);
		return (int)bl + space;
	} else if (t->kind == TOK_SPM) {
		/* U+2581 stands for a space */
		for (size_t i = 0; i < len;) {
			if (i + 3 <= len && memcmp(s + i, "\xe2\x96\x81", 3) == 0) {
				if (w < n)
					buf[w] = ' ';
				w++;
				i += 3;
			} else {
				if (w < n)
					buf[w] = s[i];
				w++;
				i++;
			}
		}
	} else {
		/* each character stands for one byte (GPT-2's bytes_to_unicode);
		 * a character outside that table is passed through */
		for (size_t i = 0; i < len;) {
			unsigned char c = (unsigned char)s[i];
			size_t cl = tok_utf8_len(c);
			uint32_t cp = c;
			if (cl == 2 && i + 1 < len)
				cp = ((uint32_t)(c & 0x1f) << 6) | ((unsigned char)s[i + 1] & 0x3f);
			int b = cl <= 2 && i + cl <= len ? tok_char_byte(cp) : -1;
			if (b >= 0) {
				if (w < n)
					buf[w] = (char)b;
				w++;
				i += cl;
			} else {
				if (w < n)
					buf[w] = s[i];
				w++;
				i++;
			}
		}
	}
	return w > INT32_MAX ? -EOVERFLOW : (int)w;
}
