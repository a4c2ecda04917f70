/*
 * engine: models in GGUF files, their tokenizers and chat templates, the
 * transformer forward passes, sampling and model conversion.
 *
 * Error convention: functions return 0 (or a count) on success and a negative
 * errno on failure; those that can fail for a reason a user must read take
 * (char *err, size_t errsz) and write one sentence there that names the file,
 * key or tensor and the numbers involved. Nothing here prints or exits.
 */
#ifndef SEEKFS_ENGINE_H
#define SEEKFS_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "kernels/kernels.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== GGUF ==================================================================
 *
 * A GGUF file (versions 2 and 3; all little-endian):
 *
 *   u32 magic "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv x { string key | u32 value_type | value }
 *   n_tensors x { string name | u32 n_dims | u64 ne[n_dims] | u32 type | u64 offset }
 *   padding to general.alignment (u32 key, default 32)
 *   tensor data: each tensor at data_start + offset, offsets aligned
 *
 *   string = u64 length + bytes (no NUL); array = u32 elem_type + u64 n + n values.
 *   ne[0] is the fastest-moving dimension (the row length).
 *
 * gguf_open maps the file read-only and checks every length, count, offset
 * and size against the file before anything is used: a truncated or hostile
 * file is refused with a message, never read out of bounds.
 */

enum gguf_vtype {
	GGUF_U8 = 0, GGUF_I8 = 1, GGUF_U16 = 2, GGUF_I16 = 3, GGUF_U32 = 4,
	GGUF_I32 = 5, GGUF_F32 = 6, GGUF_BOOL = 7, GGUF_STR = 8, GGUF_ARR = 9,
	GGUF_U64 = 10, GGUF_I64 = 11, GGUF_F64 = 12,
};

struct gguf;

struct gguf_tensor {
	const char *name;   /* NUL-terminated copy */
	uint32_t type;      /* enum kt_type number; checked supported at open */
	int n_dims;         /* 1..4 */
	int64_t ne[4];      /* unused dims are 1 */
	uint64_t offset;    /* from the start of the data section */
	size_t size;        /* bytes */
	const void *data;   /* inside the mapping */
};

/* Open and validate path. On success *out owns the mapping. On failure
 * returns -errno (-EINVAL for a malformed file) and fills err. */
int gguf_open(const char *path, struct gguf **out, char *err, size_t errsz);
/* The same over a buffer the caller keeps alive (fuzzing, tests); name is
 * used in messages. */
int gguf_open_mem(const void *buf, size_t len, const char *name,
		  struct gguf **out, char *err, size_t errsz);
void gguf_close(struct gguf *g);

const char *gguf_name(const struct gguf *g);
uint32_t gguf_version(const struct gguf *g);
size_t gguf_alignment(const struct gguf *g);
size_t gguf_file_size(const struct gguf *g);

/* Metadata. Keys are looked up by exact name; index -1 means absent. */
int64_t gguf_n_kv(const struct gguf *g);
const char *gguf_kv_key(const struct gguf *g, int64_t i);
int64_t gguf_find_key(const struct gguf *g, const char *key);
enum gguf_vtype gguf_kv_type(const struct gguf *g, int64_t i);

/* Scalars. Integer getters accept any integer or bool type whose value fits
 * in the result; float getters accept F32, F64 and integers.
 * Return 0, -ENOENT when absent, -EINVAL when of another type / out of range. */
int gguf_get_i64(const struct gguf *g, const char *key, int64_t *out);
int gguf_get_f64(const struct gguf *g, const char *key, double *out);
/* The value of key when present and of a fitting type, else def. */
int64_t gguf_get_i64_or(const struct gguf *g, const char *key, int64_t def);
double gguf_get_f64_or(const struct gguf *g, const char *key, double def);
/* String value (not NUL-terminated: *len bytes), or NULL when absent or not
 * a string. Points into the mapping. */
const char *gguf_get_str(const struct gguf *g, const char *key, size_t *len);

/* Arrays. gguf_get_arr: element type and count of an array key; for numeric
 * element types *data points at the packed little-endian values in the
 * mapping (possibly unaligned: copy with memcpy). Returns 0, -ENOENT, or
 * -EINVAL when the key is not an array. */
int gguf_get_arr(const struct gguf *g, const char *key, enum gguf_vtype *etype,
		 uint64_t *n, const void **data);
/* Element j of a string array (index from gguf_find_key), NULL if out of
 * range or not a string array. O(1). */
const char *gguf_get_arr_str(const struct gguf *g, int64_t key_index,
			     uint64_t j, size_t *len);

/* Tensors. */
int64_t gguf_n_tensors(const struct gguf *g);
const struct gguf_tensor *gguf_tensor_at(const struct gguf *g, int64_t i);
const struct gguf_tensor *gguf_find_tensor(const struct gguf *g, const char *name);

/* Writing. Values and tensor data are copied when added (gguf_w_tensor_fill
 * excepted). The file is written to PATH.tmp, fsynced and renamed, so a
 * reader never sees half a file. */
struct gguf_writer;
struct gguf_writer *gguf_writer_new(void);           /* NULL on ENOMEM */
void gguf_writer_free(struct gguf_writer *w);
int gguf_w_u32(struct gguf_writer *w, const char *key, uint32_t v);
int gguf_w_i32(struct gguf_writer *w, const char *key, int32_t v);
int gguf_w_u64(struct gguf_writer *w, const char *key, uint64_t v);
int gguf_w_f32(struct gguf_writer *w, const char *key, float v);
int gguf_w_bool(struct gguf_writer *w, const char *key, int v);
int gguf_w_str(struct gguf_writer *w, const char *key, const char *s);
/* Numeric array: n elements of etype packed at data. */
int gguf_w_arr(struct gguf_writer *w, const char *key, enum gguf_vtype etype,
	       const void *data, uint64_t n);
int gguf_w_arr_str(struct gguf_writer *w, const char *key,
		   const char *const *strs, const size_t *lens, uint64_t n);
/* A tensor of type with n_dims dims ne[] (ne[0] = row length); data holds
 * the rows already in that type's encoding. */
int gguf_w_tensor(struct gguf_writer *w, const char *name, enum kt_type type,
		  int n_dims, const int64_t *ne, const void *data);
/* A tensor whose data is not held but produced while gguf_writer_write
 * writes the file, a few MiB at a time: fill(ctx, row0, n_rows, buf) puts
 * rows row0..row0+n_rows-1 (a row is ne[0] elements, kt_row_bytes(type,
 * ne[0]) bytes; rows count over all dims above the first) into buf and
 * returns 0, or a negative errno, which abandons the file. ctx is the
 * caller's and must stay valid until the write returns; fill is called in
 * row order from the writing thread. */
typedef int (*gguf_fill_fn)(void *ctx, int64_t row0, int64_t n_rows, void *buf);
int gguf_w_tensor_fill(struct gguf_writer *w, const char *name, enum kt_type type,
		       int n_dims, const int64_t *ne, gguf_fill_fn fill, void *ctx);
/* Bytes of the file gguf_writer_write would write now. */
uint64_t gguf_writer_size(const struct gguf_writer *w);
int gguf_writer_write(struct gguf_writer *w, const char *path, char *err,
		      size_t errsz);

/* ==== tokenizer ============================================================= */

struct tok;

/* tokenizer.ggml.model "llama" (SentencePiece), "gpt2" (byte-level BPE) and
 * "bert" (WordPiece, as BERT-family encoders use it). */
enum tok_kind { TOK_SPM = 1, TOK_BPE = 2, TOK_WPM = 3 };

/* Build the tokenizer described by the GGUF's tokenizer.ggml.* keys. All it
 * needs is copied: g may be closed afterwards. Unsupported models or
 * pre-tokenizers are refused with a message naming them, as is a WordPiece
 * vocabulary without an [UNK] token. */
int tok_load(const struct gguf *g, struct tok **out, char *err, size_t errsz);
void tok_free(struct tok *t);

enum tok_kind tok_kind(const struct tok *t);
const char *tok_pre_name(const struct tok *t); /* pre-tokenizer in use */
int32_t tok_n_vocab(const struct tok *t);
/* WordPiece (bert): BOS is [CLS] and EOS is [SEP], the tokens an embedder
 * frames each sequence with ([CLS] text [SEP]): tokenizer.ggml.cls_token_id
 * and tokenizer.ggml.seperator_token_id (so spelled), else bos_token_id and
 * eos_token_id, else the tokens spelled [CLS] and [SEP]; tok_add_bos is 1
 * when there is a [CLS]. */
int32_t tok_bos(const struct tok *t); /* -1 when the model has none */
int32_t tok_eos(const struct tok *t);
int tok_add_bos(const struct tok *t); /* whether prompts start with BOS */
/* 1 when id ends generation (EOS, end-of-turn tokens such as <|im_end|>,
 * <|eot_id|>, <|end_of_text|>). */
int tok_is_eog(const struct tok *t, int32_t id);
/* 1 for control and unknown tokens (never shown as text when generating). */
int tok_is_control(const struct tok *t, int32_t id);
/* Token id whose text is exactly s as the vocabulary stores it (byte-level
 * BPE: in byte-level characters, "\xc4\xa0the" for " the"), or -1. */
int32_t tok_find(const struct tok *t, const char *s);

/* Encode len bytes of text (any bytes; invalid UTF-8 is handled, not
 * crashed on). No BOS or other token is added. parse_special: text spelling
 * a control/special token (e.g. "<|im_start|>") becomes that token;
 * otherwise only user-defined tokens are matched as the model expects.
 * Returns the number of ids; when more than n_max are needed returns
 * -(needed) and ids holds the first n_max. Returns -ENOMEM on allocation
 * failure... callers distinguish by checking n_max first.
 * SentencePiece vocabularies with add_space_prefix (Llama 2) get a space in
 * front of the text and after every special token, as llama.cpp does.
 * WordPiece follows Hugging Face's BERT tokenizer: control and format
 * characters are dropped, uncased vocabularies (those without a token that
 * lowercasing would change) lowercase the text and strip its accents (NFD,
 * nonspacing marks dropped), words are cut at white space, around each
 * punctuation character and CJK ideograph, and a word of more than 100
 * characters or one the vocabulary cannot spell becomes [UNK]. It never
 * gives more ids than the text has bytes.
 * A loaded tokenizer is read-only: threads may encode with it at once. */
int64_t tok_encode(const struct tok *t, const char *text, size_t len,
		   int parse_special, int32_t *ids, int64_t n_max);
/* tok_encode into an array it allocates (*ids, the caller frees it) as
 * large as the text needs, after lead slots left for the caller (a BOS):
 * the number of ids encoded (not counting lead), or -ENOMEM / -EOVERFLOW.
 * Usually one id per byte or fewer; a SentencePiece vocabulary without a
 * "\u2581" piece spells the space prefix it adds in 3 byte tokens. */
int64_t tok_encode_alloc(const struct tok *t, const char *text, size_t len,
			 int parse_special, int lead, int32_t **ids);
/* A prompt as generation wants it: tok_encode_alloc with BOS first when the
 * model asks for one (tok_add_bos) and the text does not already begin
 * with it (a chat template that writes <bos> or <|begin_of_text|>). The
 * number of ids, BOS included, or -ENOMEM / -EOVERFLOW. */
int64_t tok_encode_prompt(const struct tok *t, const char *text, size_t len,
			  int parse_special, int32_t **ids);

/* The bytes token id stands for (SentencePiece "\xe2\x96\x81" -> ' ', byte
 * tokens <0x0A> -> the byte, byte-level BPE -> raw bytes; WordPiece: a word
 * start is a space and the word, " hello", a continuation its bare text,
 * "ing"). Control and user-defined tokens give their text as is. Writes at
 * most n bytes, returns the full length (like snprintf, no NUL), or -EINVAL
 * for an id out of range. */
int tok_piece(const struct tok *t, int32_t id, char *buf, size_t n);

/* ==== chat templates ======================================================= */

enum chat_tmpl {
	CHAT_NONE = 0,   /* plain prompt, no template */
	CHAT_CHATML,     /* <|im_start|>role\n...<|im_end|>\n (Qwen, SmolLM2) */
	CHAT_LLAMA3,     /* <|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|> */
	CHAT_DEEPSEEK3,  /* <｜User｜>...<｜Assistant｜> (DeepSeek-R1 distills) */
	CHAT_LLAMA2,     /* [INST] ... [/INST] */
	CHAT_GEMMA,      /* <start_of_turn>user\n...<end_of_turn>\n */
};

struct chat_msg {
	const char *role;    /* "system", "user", "assistant" */
	const char *content;
};

/* Template family of a Jinja chat template string (tokenizer.chat_template),
 * recognised by its markers as llama.cpp does; a family name ("chatml")
 * is accepted too. CHAT_NONE when tmpl is NULL or unknown. */
enum chat_tmpl chat_detect(const char *tmpl);
/* "none", "chatml", "llama3", "deepseek3", "llama2", "gemma". */
const char *chat_name(enum chat_tmpl t);
enum chat_tmpl chat_from_name(const char *name); /* CHAT_NONE if unknown */
/* Render msgs exactly as the family's real Jinja template does (with
 * add_generation_prompt = add_assistant), BOS text included where the
 * template writes it: "<|begin_of_text|>" (llama3), "<｜begin▁of▁sentence｜>"
 * (deepseek3), "<s>" (llama2), "<bos>" (gemma); callers tokenize with
 * parse_special and add no other BOS. No default system prompt is invented
 * (Qwen2.5 and SmolLM2 templates insert one when none is given: pass it to
 * match them). A NULL content is empty. CHAT_NONE joins the contents with
 * blank lines. Template choices per family are documented in chat.c.
 * snprintf semantics: buf (n bytes) receives at most n - 1 bytes and a NUL
 * when n > 0, and the full length without the NUL is returned, so a result
 * >= n means buf was too small. Returns -EINVAL for a role other than
 * system/user/assistant, or for a llama2 or gemma conversation whose turns
 * after a leading system message do not alternate user/assistant starting
 * with user (those templates refuse it). */
int chat_apply(enum chat_tmpl t, const struct chat_msg *msgs, int n_msgs,
	       int add_assistant, char *buf, size_t n);

/* The system message a ChatML template adds when the conversation has none
 * (Qwen2.5: "You are Qwen, created by Alibaba Cloud. ..."; SmolLM2: "You are
 * a helpful AI assistant named SmolLM, ..."), so that callers can give it as
 * the template would. Writes at most n bytes with NUL, returns the full
 * length, or -ENOENT when the template has no such default. */
int chat_default_system(const char *tmpl, char *buf, size_t n);

/* ==== sampling ============================================================= */

/* The chain, in llama.cpp's order: repetition penalty, top-k, top-p, min-p,
 * temperature, softmax, a draw from the sampler's own PRNG. top-p and min-p
 * look at the probabilities before temperature. */
struct sampler_params {
	float temp;           /* <= 0: greedy (penalty, then argmax; ties to the lowest id) */
	int top_k;            /* <= 0 or >= n_vocab: off */
	float top_p;          /* >= 1: off */
	float min_p;          /* <= 0: off; keeps p >= min_p * p_max */
	float repeat_penalty; /* 1: off; positive logits divided, negative multiplied */
	int repeat_last_n;    /* accepted tokens looked back for the penalty; <= 0: off */
	uint64_t seed;
};
/* llama.cpp's defaults: temp 0.8, top_k 40, top_p 0.95, min_p 0.05,
 * repeat_penalty 1 (off), repeat_last_n 64; seed 0xdeadbeef (fixed, so runs
 * repeat: callers wanting variety pass their own seed). */
void sampler_defaults(struct sampler_params *p);

struct sampler;
/* p NULL means the defaults. Everything is allocated here; NULL when
 * n_vocab < 1 or out of memory. */
struct sampler *sampler_new(const struct sampler_params *p, int32_t n_vocab);
void sampler_free(struct sampler *s);
/* Choose the next token from logits (n_vocab floats; modified in place: the
 * penalty is applied to them and NaNs become -inf). Always returns an id in
 * [0, n_vocab). Deterministic for a given seed, logits and history; does
 * not allocate. Not thread-safe per sampler. */
int32_t sampler_sample(struct sampler *s, float *logits);
/* Record a token of the sequence (prompt or generated) for the penalty; ids
 * out of range are ignored. */
void sampler_accept(struct sampler *s, int32_t id);

/* ==== models =============================================================== */

/* Architectures understood; others are refused with their name. */
enum model_arch { ARCH_LLAMA = 1, ARCH_QWEN2 = 2, ARCH_BERT = 3, ARCH_GEMMA3 = 4 };

/* How an embedding model (bert) turns token states into one vector. */
enum model_pooling { POOL_NONE = 0, POOL_MEAN = 1, POOL_CLS = 2 };

struct model_hparams {
	enum model_arch arch;
	char arch_name[32];
	int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv;
	int32_t head_dim, n_ff, n_rot;
	float rope_base, norm_eps;
	enum kt_rope_mode rope_mode;
	/* gemma3: of every swa_pattern layers all but the last attend over a
	 * window of the last n_swa positions (the layer's own included) and
	 * rotate with rope_base_swa, unscaled; the others over everything
	 * with rope_base divided by rope_scale (linear scaling; 1: none).
	 * Other architectures: n_swa 0 and rope_scale 1. */
	int32_t n_swa, swa_pattern;
	float rope_base_swa, rope_scale;
	float attn_scale;  /* queries' scale before softmax: 1/sqrt(head_dim) but gemma3 27B */
	/* bert: <arch>.pooling_type (default mean) and seekfs.embed.normalize
	 * (L2-normalise the pooled vector; default on, as sentence-transformers
	 * models are used) */
	enum model_pooling pooling;
	int normalize;
};

struct model;
/* Load a GGUF model (mmap). Checks architecture, every tensor's presence,
 * type and shape. The model owns its gguf and tokenizer. */
int model_load(const char *path, struct model **out, char *err, size_t errsz);
void model_free(struct model *m);
const struct model_hparams *model_hparams(const struct model *m);
const struct tok *model_tok(const struct model *m);
enum chat_tmpl model_chat(const struct model *m);
/* The model's Jinja chat template (tokenizer.chat_template), NUL-terminated,
 * or NULL when it has none. */
const char *model_chat_template(const struct model *m);
const char *model_name(const struct model *m); /* general.name or file name */
/* Bytes of weights read per decoded token (all matrices + embedding row). */
size_t model_weight_bytes(const struct model *m);
/* Bytes of the packed copies of its matrices the model holds (kt_mat_pack;
 * 0 where none was made). */
size_t model_packed_bytes(const struct model *m);
/* Weights multiplied per token (elements of all matrices, output included). */
int64_t model_matmul_params(const struct model *m);
/* Of those, the output matrix's: a prefill multiplies it for its last token only. */
int64_t model_output_params(const struct model *m);

/* A sequence's state: KV cache for n_ctx positions and work buffers, all
 * allocated once here; nothing is allocated during forward. For bert the
 * session holds no cache: n_ctx is the most tokens one session_embed call
 * takes. kv_type is the
 * cache's element type: KT_F16 (the default of seekfs, as of llama.cpp:
 * half the memory; queries and attention weights are rounded to F16 where
 * they meet it) or KT_F32 (exact). */
struct session;
int session_new(struct model *m, int n_ctx, enum kt_type kv_type,
		struct kt_pool *pool, struct session **out, char *err, size_t errsz);
void session_free(struct session *s);
int session_pos(const struct session *s);     /* tokens in the cache */
void session_reset(struct session *s);        /* empty the cache */
/* Run n tokens at positions pos..pos+n-1 (pos = session_pos) through the
 * model in one batch (prefill). logits: NULL, or n_vocab floats for the last
 * token, or n*n_vocab when all_logits. Returns 0, -ENOSPC when the context
 * would overflow, -EINVAL for a token id out of range. */
int session_forward(struct session *s, const int32_t *tokens, int n,
		    int all_logits, float *logits);

/* One decode step of n sessions of the same model and thread pool at once
 * (continuous batching): session i takes tokens[i] at its own position, and
 * one pass over the weights serves them all. logits: NULL or n * n_vocab
 * floats (row i for session i). n <= session_batch_max(); a session at most
 * once; no session with a larger context than the first's (-EINVAL). 0,
 * -EINVAL, or -ENOSPC when a session's context is full. */
int session_decode_batch(struct session *const *ss, const int32_t *tokens, int n, float *logits);
int session_batch_max(void);

/* Embeddings (bert models): n_seq sequences, lens[i] tokens each, laid end
 * to end in tokens (each already framed as the model expects, e.g. [CLS] ...
 * [SEP]), run through the model in one batch; each sequence attends only to
 * itself. out gets n_seq vectors of n_embd floats, pooled and normalised as
 * the model's metadata says. The total must fit the session's n_ctx and each
 * sequence the model's context. Returns 0, -EINVAL (not an embedding model,
 * bad token id or length), -ENOSPC (too many tokens for the session). */
int session_embed(struct session *s, const int32_t *tokens, const int *lens,
		  int n_seq, float *out);
/* Most tokens (framing included) an embedding model reads per sequence:
 * seekfs.embed.max_tokens when the converter recorded the model's own limit
 * (sentence-transformers' max_seq_length), else the context length. */
int model_embed_max_tokens(const struct model *m);

/* ==== synthetic models ====================================================== */

/* GGUF files with the tensor names, shapes and types of a named real model
 * and random weights, made on the spot so that benchmarks and device tests
 * need no download. A name is BASE-FTYPE ("qwen2-7b-q4_k_m"): BASE one of
 * synth_model(i)->name, FTYPE "q4_k_m" or "q8_0". Types follow llama.cpp's
 * llama-quantize for that file type (synthetic.c says which tensor gets
 * which); weights decode to values of mean about 0 and deviation about
 * 0.02, norms to 1, so a forward pass gives finite logits. The vocabulary is
 * a byte-level BPE one of the model's size with the family's special
 * tokens, pre-tokenizer and chat template; keys seekfs.synthetic (the name)
 * and seekfs.synthetic.seed say what the file is. */

/* general.file_type numbers (llama_ftype) */
enum synth_ftype { SYNTH_Q8_0 = 7, SYNTH_Q4_K_M = 15 };

struct synth_model {
	const char *name;      /* "qwen2-7b" */
	const char *like;      /* the real model whose shapes these are */
	enum model_arch arch;  /* ARCH_QWEN2 or ARCH_LLAMA */
	int32_t n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff;
	float rope_base, norm_eps;
	int tied;              /* no output.weight: the output is token_embd */
	int qkv_bias;          /* attn_q/k/v.bias (qwen2) */
	/* Llama 3.1's "llama3" rope scaling, written as rope_freqs.weight;
	 * rope_factor 0: none */
	float rope_factor, rope_low_freq, rope_high_freq;
	int32_t rope_orig_ctx;
};

struct synth_tensor {
	char name[48];
	enum kt_type type;
	int n_dims;            /* 1 or 2 */
	int64_t ne[2];         /* ne[0] = row length; ne[1] = 1 for vectors */
	uint64_t bytes;
};

/* Model i of the table (0, 1, ...), NULL past the last. */
const struct synth_model *synth_model(int i);
/* "q4_k_m", "q8_0"; NULL for another value. */
const char *synth_ftype_name(enum synth_ftype f);
/* Parse a name. 0, or -ENOENT with a message listing the known names. */
int synth_lookup(const char *name, const struct synth_model **m, enum synth_ftype *f,
		 char *err, size_t errsz);
/* The tensors of the file in file order: the first n go to out; returns
 * how many there are (call with n = 0 to count), -EINVAL, -ENOMEM. */
int synth_tensors(const struct synth_model *m, enum synth_ftype f,
		  struct synth_tensor *out, int n);
/* Bytes of the file synth_write writes, metadata included; negative errno
 * on failure. Builds the metadata (some MB for a real vocabulary) but
 * writes nothing. */
int64_t synth_file_size(const struct synth_model *m, enum synth_ftype f);
/* Write the file to path (through path.tmp, fsynced and renamed, as
 * gguf_writer_write), producing the weights as it goes on pool's threads
 * (NULL: the caller's alone): memory stays at a few MiB whatever the
 * model's size. The same seed gives the same file, whatever the pool. */
int synth_write(const struct synth_model *m, enum synth_ftype f, uint64_t seed,
		struct kt_pool *pool, const char *path, char *err, size_t errsz);

/* ==== conversion =========================================================== */

/* Convert a llama2.c checkpoint (legacy version 0 format) and its tokenizer
 * (tokenizer.bin format) into a llama GGUF with an SPM vocabulary. */
int convert_llama2c(const char *ckpt, const char *tokenizer, const char *out,
		    char *err, size_t errsz);

/* Convert a Hugging Face BERT folder (config.json, tokenizer.json or
 * vocab.txt, model.safetensors or its sharded index; sentence-transformers'
 * modules.json and pooling config when present) into a bert GGUF laid out as
 * llama.cpp's convert_hf_to_gguf.py writes it: WordPiece vocabulary in
 * phantom-space spelling, tensors token_embd, token_types, position_embd,
 * token_embd_norm and blk.N.{attn_q,attn_k,attn_v,attn_output,
 * attn_output_norm,ffn_up,ffn_down,layer_output_norm}.{weight,bias}.
 * Besides llama.cpp's keys it records what sentence-transformers does after
 * pooling:
 *   seekfs.embed.normalize   bool: L2-normalise the pooled vector (the
 *                            folder's modules.json has a Normalize module)
 *   seekfs.embed.max_tokens  u32: the most tokens, [CLS] and [SEP] included,
 *                            the model reads per text (max_seq_length of
 *                            sentence_bert_config.json); absent: the context
 * bert.pooling_type is 1 (mean), 2 (CLS) or 3 (last token), absent when the
 * folder has no modules.json. PyTorch-only folders and non-BERT
 * architectures are refused with a message naming them. convert_hf writes
 * F32 weights; convert_hf_ex takes the type of the matrices (KT_F32 or
 * KT_F16; vectors, position_embd and token_types stay F32 as in llama.cpp). */
int convert_hf(const char *dir, const char *out, char *err, size_t errsz);
int convert_hf_ex(const char *dir, const char *out, enum kt_type wtype,
		  char *err, size_t errsz);

#ifdef __cplusplus
}
#endif
#endif
