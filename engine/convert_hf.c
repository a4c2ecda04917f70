/*
 * Hugging Face BERT folders to GGUF, as llama.cpp's convert_hf_to_gguf.py
 * writes them for BertModel, so that the files are interchangeable.
 *
 * The folder holds config.json (the hyperparameters), the WordPiece
 * vocabulary (tokenizer.json, else vocab.txt), the weights as safetensors
 * (model.safetensors, or shards listed in model.safetensors.index.json) and,
 * for sentence-transformers models, modules.json with the pooling module's
 * config and an optional Normalize module.
 *
 * A safetensors file is: u64 little-endian header length N, N bytes of JSON
 * {"name": {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin,
 * end]}, ..., "__metadata__": {...}}, then the data section; offsets count
 * from the start of the data section. Tensors are row-major with the
 * fastest-moving dimension last, so GGUF's ne is the shape reversed and a
 * Linear weight (out, in) becomes ne = {in, out} with no transposition.
 * Every header length, offset and size is checked against the file before
 * a byte of tensor data is read.
 *
 * Vocabulary, as llama.cpp stores WordPiece (see ggml-vocab-bert-bge.gguf):
 * a word-initial piece "foo" is stored as U+2581 "foo", a continuation
 * "##bar" as "bar", bracketed tokens ("[CLS]", "[unused0]") as they are.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "engine/engine.h"
#include "engine/internal.h"

/* Token types, numbered as llama.cpp's (llama_token_type). */
enum { TT_NORMAL = 1, TT_CONTROL = 3, TT_USER_DEFINED = 4, TT_UNUSED = 5 };

/* llama_pooling_type numbers, as stored in bert.pooling_type. */
enum { HF_POOL_MEAN = 1, HF_POOL_CLS = 2, HF_POOL_LAST = 3 };

#define ST_MAX_DIMS 8
/* The safetensors format caps the JSON header at 100 MB. */
#define ST_MAX_HEADER 100000000ull

struct st_file {
	char *path;
	unsigned char *map;
	size_t len;
};

struct st_tensor {
	char *name;       /* no "bert." prefix; LayerNorm gamma/beta as weight/bias */
	const char *path; /* the file's, owned by its st_file */
	const char *dtype; /* static string from dtypes[] */
	size_t esize;      /* bytes per element */
	int n_dims;
	int64_t shape[ST_MAX_DIMS]; /* slowest-moving first, as in the file */
	int64_t numel;
	const unsigned char *data; /* inside f->map, possibly unaligned */
	size_t nbytes;
	int used;
};

struct hf {
	const char *dir;
	struct st_file *files;
	int n_files;
	struct st_tensor *t;
	size_t n_t, cap_t;
	char *err;
	size_t errsz;
};

static const struct {
	const char *name;
	size_t size;
} dtypes[] = {
	{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
	{"I16", 2}, {"I8", 1}, {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1},
	{"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
};

static char *path_join(const char *dir, const char *name)
{
	size_t a = strlen(dir), b = strlen(name);
	char *p = malloc(a + b + 2);
	if (p)
		snprintf(p, a + b + 2, "%s%s%s", dir, a && dir[a - 1] == '/' ? "" : "/", name);
	return p;
}

static int file_exists(const char *dir, const char *name)
{
	char *p = path_join(dir, name);
	struct stat st;
	int r = p && !stat(p, &st) && S_ISREG(st.st_mode);
	free(p);
	return r;
}

/* Parse DIR/name. Returns NULL with *rc = -ENOENT (and no message) when the
 * file is absent and !required; otherwise a failure fills err. */
static json_t *load_json(struct hf *h, const char *name, int required, int *rc)
{
	char *p = path_join(h->dir, name);
	if (!p) {
		*rc = -ENOMEM;
		eng_err(h->err, h->errsz, "out of memory");
		return NULL;
	}
	struct stat st;
	if (stat(p, &st)) {
		int e = errno;
		*rc = -e;
		if (e != ENOENT || required)
			eng_err(h->err, h->errsz, "%s: %s%s", p, strerror(e),
				!strcmp(name, "config.json") ? " (a Hugging Face model folder has config.json)" : "");
		free(p);
		return NULL;
	}
	json_error_t je;
	json_t *j = json_load_file(p, JSON_REJECT_DUPLICATES, &je);
	if (!j) {
		*rc = -EINVAL;
		eng_err(h->err, h->errsz, "%s: invalid JSON at line %d column %d: %s", p, je.line,
			je.column, je.text);
	} else if (!json_is_object(j) && !json_is_array(j)) {
		*rc = -EINVAL;
		eng_err(h->err, h->errsz, "%s: not a JSON object", p);
		json_decref(j);
		j = NULL;
	} else {
		*rc = 0;
	}
	free(p);
	return j;
}

/* config[key] as an integer in [lo, hi]; def when absent and def >= lo.
 * Returns 0 or -EINVAL with a message naming the key and the value. */
static int cfg_int(struct hf *h, const json_t *cfg, const char *key, int64_t def, int64_t lo,
		   int64_t hi, int64_t *out)
{
	const json_t *v = json_object_get(cfg, key);
	if (!v && def >= lo) {
		*out = def;
		return 0;
	}
	if (!v || !json_is_integer(v)) {
		eng_err(h->err, h->errsz, "%s/config.json: '%s' is %s, an integer is needed", h->dir, key,
			v ? "not an integer" : "missing");
		return -EINVAL;
	}
	json_int_t x = json_integer_value(v);
	if (x < lo || x > hi) {
		eng_err(h->err, h->errsz, "%s/config.json: '%s' is %lld, outside %lld..%lld", h->dir, key,
			(long long)x, (long long)lo, (long long)hi);
		return -EINVAL;
	}
	*out = x;
	return 0;
}

/* ---- safetensors ---------------------------------------------------------- */

static void normalise_name(char *s)
{
	if (!strncmp(s, "bert.", 5))
		memmove(s, s + 5, strlen(s + 5) + 1);
	size_t n = strlen(s);
	if (n >= 6 && !strcmp(s + n - 6, ".gamma"))
		strcpy(s + n - 6, ".weight");
	else if (n >= 5 && !strcmp(s + n - 5, ".beta"))
		strcpy(s + n - 5, ".bias");
}

static struct st_tensor *find_tensor(struct hf *h, const char *name)
{
	for (size_t i = 0; i < h->n_t; i++)
		if (!strcmp(h->t[i].name, name))
			return &h->t[i];
	return NULL;
}

/* One header entry: checks dtype, shape and offsets against the data
 * section [data0, f->len) and appends the tensor. */
static int st_add(struct hf *h, struct st_file *f, size_t data0, const char *key, json_t *v)
{
	const char *fp = f->path;
	json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape");
	json_t *jo = json_object_get(v, "data_offsets");
	if (!json_is_object(v) || !json_is_string(jd) || !json_is_array(js) || !json_is_array(jo) ||
	    json_array_size(jo) != 2) {
		eng_err(h->err, h->errsz, "%s: header entry '%s' lacks dtype, shape or data_offsets", fp, key);
		return -EINVAL;
	}
	struct st_tensor t = {.path = f->path};
	const char *dt = json_string_value(jd);
	for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++)
		if (!strcmp(dt, dtypes[i].name))
			t.dtype = dtypes[i].name, t.esize = dtypes[i].size;
	if (!t.dtype) {
		eng_err(h->err, h->errsz, "%s: tensor '%s' has unknown dtype '%s'", fp, key, dt);
		return -EINVAL;
	}
	size_t nd = json_array_size(js);
	if (nd > ST_MAX_DIMS) {
		eng_err(h->err, h->errsz, "%s: tensor '%s' has %zu dimensions, at most %d are supported", fp,
			key, nd, ST_MAX_DIMS);
		return -EINVAL;
	}
	t.n_dims = (int)nd;
	t.numel = 1;
	for (size_t d = 0; d < nd; d++) {
		json_t *x = json_array_get(js, d);
		json_int_t n = json_is_integer(x) ? json_integer_value(x) : -1;
		if (n < 0 || (n && t.numel > INT64_MAX / 8 / n)) {
			eng_err(h->err, h->errsz, "%s: tensor '%s' has an invalid shape (dimension %zu)", fp,
				key, d);
			return -EINVAL;
		}
		t.shape[d] = n;
		t.numel *= n;
	}
	json_t *jb = json_array_get(jo, 0), *je = json_array_get(jo, 1);
	json_int_t b = json_is_integer(jb) ? json_integer_value(jb) : -1;
	json_int_t e = json_is_integer(je) ? json_integer_value(je) : -1;
	size_t have = f->len - data0;
	if (b < 0 || e < b) {
		eng_err(h->err, h->errsz, "%s: tensor '%s' has invalid data_offsets [%lld, %lld]", fp, key,
			(long long)b, (long long)e);
		return -EINVAL;
	}
	t.nbytes = (size_t)t.numel * t.esize;
	if ((uint64_t)(e - b) != t.nbytes) {
		eng_err(h->err, h->errsz, "%s: tensor '%s' (%s, %lld elements) needs %zu bytes, data_offsets [%lld, %lld] give %lld",
			fp, key, t.dtype, (long long)t.numel, t.nbytes, (long long)b, (long long)e,
			(long long)(e - b));
		return -EINVAL;
	}
	if ((uint64_t)e > have) {
		eng_err(h->err, h->errsz, "%s: truncated: tensor '%s' needs %zu bytes at offset %llu, file has %zu",
			fp, key, t.nbytes, (unsigned long long)(data0 + (uint64_t)b), f->len);
		return -EINVAL;
	}
	t.data = f->map + data0 + (size_t)b;
	if (!(t.name = strdup(key))) {
		eng_err(h->err, h->errsz, "out of memory");
		return -ENOMEM;
	}
	normalise_name(t.name);
	if (find_tensor(h, t.name)) {
		eng_err(h->err, h->errsz, "%s: tensor '%s' appears twice in the model", fp, key);
		free(t.name);
		return -EINVAL;
	}
	if (h->n_t == h->cap_t) {
		size_t c = h->cap_t ? h->cap_t * 2 : 256;
		struct st_tensor *p = realloc(h->t, c * sizeof *p);
		if (!p) {
			free(t.name);
			eng_err(h->err, h->errsz, "out of memory");
			return -ENOMEM;
		}
		h->t = p;
		h->cap_t = c;
	}
	h->t[h->n_t++] = t;
	return 0;
}

/* Map DIR/name and add its tensors. */
static int st_open(struct hf *h, const char *name)
{
	struct st_file *files = realloc(h->files, ((size_t)h->n_files + 1) * sizeof *files);
	if (!files) {
		eng_err(h->err, h->errsz, "out of memory");
		return -ENOMEM;
	}
	h->files = files;
	struct st_file *f = &files[h->n_files];
	memset(f, 0, sizeof *f);
	if (!(f->path = path_join(h->dir, name))) {
		eng_err(h->err, h->errsz, "out of memory");
		return -ENOMEM;
	}
	h->n_files++;
	int fd = open(f->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		eng_err(h->err, h->errsz, "%s: %s", f->path, strerror(e));
		return -e;
	}
	f->len = (size_t)st.st_size;
	if (f->len < 8) {
		close(fd);
		eng_err(h->err, h->errsz, "%s: truncated: %zu bytes, the header length needs 8", f->path, f->len);
		return -EINVAL;
	}
	f->map = mmap(NULL, f->len, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (f->map == MAP_FAILED) {
		f->map = NULL;
		eng_err(h->err, h->errsz, "%s: cannot map %zu bytes: %s", f->path, f->len, strerror(e));
		return -e;
	}
	uint64_t n = 0;
	for (int i = 0; i < 8; i++)
		n |= (uint64_t)f->map[i] << (8 * i);
	if (n > ST_MAX_HEADER || n > f->len - 8) {
		eng_err(h->err, h->errsz, n > ST_MAX_HEADER ?
			"%s: header length %llu is over the format's limit; not a safetensors file? (file has %zu bytes)" :
			"%s: truncated: the JSON header needs %llu bytes at offset 8, file has %zu",
			f->path, (unsigned long long)n, f->len);
		return -EINVAL;
	}
	json_error_t je;
	json_t *hdr = json_loadb((const char *)f->map + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
	if (!hdr || !json_is_object(hdr)) {
		if (hdr)
			eng_err(h->err, h->errsz, "%s: the header is not a JSON object", f->path);
		else
			eng_err(h->err, h->errsz, "%s: invalid JSON header (%llu bytes) at byte %d: %s",
				f->path, (unsigned long long)n, je.position, je.text);
		json_decref(hdr);
		return -EINVAL;
	}
	const char *key;
	json_t *v;
	int rc = 0;
	json_object_foreach(hdr, key, v) {
		if (!strcmp(key, "__metadata__"))
			continue;
		if ((rc = st_add(h, f, 8 + (size_t)n, key, v)))
			break;
	}
	json_decref(hdr);
	return rc;
}

/* The weights: the shards of model.safetensors.index.json, else
 * model.safetensors. Folders with only PyTorch/TF/Flax weights are refused
 * with what to do. */
static int load_weights(struct hf *h)
{
	int rc;
	if (file_exists(h->dir, "model.safetensors.index.json")) {
		json_t *idx = load_json(h, "model.safetensors.index.json", 1, &rc);
		if (!idx)
			return rc;
		json_t *map = json_object_get(idx, "weight_map");
		if (!json_is_object(map) || !json_object_size(map)) {
			json_decref(idx);
			eng_err(h->err, h->errsz, "%s/model.safetensors.index.json: no weight_map", h->dir);
			return -EINVAL;
		}
		/* each shard once, in order of first mention */
		const char *key;
		json_t *v;
		json_t *seen = json_object();
		rc = seen ? 0 : -ENOMEM;
		json_object_foreach(map, key, v) {
			if (rc)
				break;
			const char *s = json_string_value(v);
			if (!s || !*s || strchr(s, '/') || !strcmp(s, "..")) {
				eng_err(h->err, h->errsz, "%s/model.safetensors.index.json: tensor '%s' names an invalid shard",
					h->dir, key);
				rc = -EINVAL;
			} else if (!json_object_get(seen, s)) {
				json_object_set_new(seen, s, json_true());
				rc = st_open(h, s);
			}
		}
		json_decref(seen);
		json_decref(idx);
		if (rc == -ENOMEM)
			eng_err(h->err, h->errsz, "out of memory");
		return rc;
	}
	if (file_exists(h->dir, "model.safetensors"))
		return st_open(h, "model.safetensors");
	static const char *const other[] = {
		"pytorch_model.bin", "pytorch_model.bin.index.json", "tf_model.h5",
		"flax_model.msgpack", "model.onnx", "onnx/model.onnx",
	};
	for (size_t i = 0; i < sizeof other / sizeof other[0]; i++)
		if (file_exists(h->dir, other[i])) {
			eng_err(h->err, h->errsz, "%s: has %s but no model.safetensors: seekfs reads safetensors weights only; download the model's model.safetensors (or save it with safetensors) into the folder",
				h->dir, other[i]);
			return -ENOTSUP;
		}
	eng_err(h->err, h->errsz, "%s: no model.safetensors (nor model.safetensors.index.json): the weights are missing",
		h->dir);
	return -ENOENT;
}

/* ---- vocabulary ----------------------------------------------------------- */

struct vocab {
	int64_t n;
	char **tok;     /* NUL-terminated, as stored in the GGUF */
	size_t *len;
	int32_t *type;
	/* special ids, -1 when unknown */
	int64_t unk, cls, sep, pad, mask, bos, eos;
	int add_bos, add_eos, add_sep; /* -1: not stated */
};

static void vocab_free(struct vocab *v)
{
	if (v->tok)
		for (int64_t i = 0; i < v->n; i++)
			free(v->tok[i]);
	free(v->tok);
	free(v->len);
	free(v->type);
}

/* Token text of a special token entry: a string, or {"content": ...}. */
static const char *special_text(const json_t *cfg, const char *key)
{
	const json_t *v = cfg ? json_object_get(cfg, key) : NULL;
	if (json_is_object(v))
		v = json_object_get(v, "content");
	return json_string_value(v);
}

/* Added tokens that llama.cpp treats as control tokens although the
 * tokenizer does not mark them special (does_token_look_special). */
static int looks_special(const char *s)
{
	size_t n = strlen(s);
	if (!strcmp(s, "<pad>") || !strcmp(s, "<mask>") || !strcmp(s, "<2mass>") || !strcmp(s, "[@BOS@]"))
		return 1;
	if (n >= 4 && !strncmp(s, "<|", 2) && !strcmp(s + n - 2, "|>"))
		return 1;
	if (n >= 8 && !strncmp(s, "<\xef\xbd\x9c", 4) && !strcmp(s + n - 4, "\xef\xbd\x9c>"))
		return 1;
	return !strncmp(s, "<unused", 7) && s[n - 1] == '>';
}

static int set_token(struct vocab *v, int64_t id, const char *s, size_t n, int32_t type)
{
	char *c = malloc(n + 1);
	if (!c)
		return -ENOMEM;
	memcpy(c, s, n);
	c[n] = 0;
	free(v->tok[id]);
	v->tok[id] = c;
	v->len[id] = n;
	v->type[id] = type;
	return 0;
}

/* The pieces from tokenizer.json (model.vocab and added_tokens). */
static int vocab_from_json(struct hf *h, struct vocab *v, json_t *tj, const char *path)
{
	json_t *model = json_object_get(tj, "model");
	const char *mt = json_string_value(json_object_get(model, "type"));
	if (!mt || strcmp(mt, "WordPiece")) {
		eng_err(h->err, h->errsz, "%s: tokenizer model is '%s', only WordPiece (BERT) vocabularies are converted",
			path, mt ? mt : "(none)");
		return -ENOTSUP;
	}
	json_t *voc = json_object_get(model, "vocab");
	if (!json_is_object(voc)) {
		eng_err(h->err, h->errsz, "%s: model.vocab is not an object", path);
		return -EINVAL;
	}
	const char *key;
	json_t *val;
	json_object_foreach(voc, key, val) {
		json_int_t id = json_is_integer(val) ? json_integer_value(val) : -1;
		if (id < 0 || id >= v->n) {
			eng_err(h->err, h->errsz, "%s: token '%s' has id %lld, outside the vocabulary of %lld (config.json vocab_size)",
				path, key, (long long)id, (long long)v->n);
			return -EINVAL;
		}
		if (v->tok[id]) {
			eng_err(h->err, h->errsz, "%s: tokens '%s' and '%s' both have id %lld", path,
				v->tok[id], key, (long long)id);
			return -EINVAL;
		}
		if (set_token(v, id, key, strlen(key), TT_NORMAL))
			return -ENOMEM;
	}
	json_t *added = json_object_get(tj, "added_tokens");
	size_t i;
	json_array_foreach(added, i, val) {
		json_t *jid = json_object_get(val, "id");
		const char *s = json_string_value(json_object_get(val, "content"));
		json_int_t id = json_is_integer(jid) ? json_integer_value(jid) : -1;
		if (!s || id < 0 || id >= v->n) {
			eng_err(h->err, h->errsz, "%s: added token %zu has id %lld, outside the vocabulary of %lld",
				path, i, (long long)id, (long long)v->n);
			return -EINVAL;
		}
		int special = json_is_true(json_object_get(val, "special")) || looks_special(s);
		if (set_token(v, id, s, strlen(s), special ? TT_CONTROL : TT_USER_DEFINED))
			return -ENOMEM;
	}
	return 0;
}

/* The pieces from vocab.txt (line i is token i); the special tokens named
 * by tokenizer_config.json or special_tokens_map.json are control tokens. */
static int vocab_from_txt(struct hf *h, struct vocab *v, const json_t *tcfg, const json_t *smap)
{
	char *p = path_join(h->dir, "vocab.txt");
	FILE *f = p ? fopen(p, "rb") : NULL;
	if (!f) {
		int e = p ? errno : ENOMEM;
		if (e == ENOENT)
			eng_err(h->err, h->errsz, "%s: no tokenizer.json and no vocab.txt: the vocabulary is missing", h->dir);
		else
			eng_err(h->err, h->errsz, "%s: %s", p ? p : "vocab.txt", strerror(e));
		free(p);
		return -e;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int64_t id = 0;
	int rc = 0;
	while ((n = getline(&line, &cap, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			n--;
		if (id >= v->n) {
			eng_err(h->err, h->errsz, "%s: more than %lld lines, the vocab_size of config.json", p,
				(long long)v->n);
			rc = -EINVAL;
			break;
		}
		if ((rc = set_token(v, id++, line, (size_t)n, TT_NORMAL)))
			break;
	}
	free(line);
	fclose(f);
	if (!rc) {
		static const char *const keys[] = {"unk_token", "sep_token", "pad_token", "cls_token",
						   "mask_token", "bos_token", "eos_token"};
		for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
			const char *s = special_text(tcfg, keys[k]);
			if (!s)
				s = special_text(smap, keys[k]);
			for (int64_t i = 0; s && i < v->n; i++)
				if (v->tok[i] && !strcmp(v->tok[i], s))
					v->type[i] = TT_CONTROL;
		}
	}
	free(p);
	return rc;
}

static int64_t find_token(const struct vocab *v, const char *s)
{
	for (int64_t i = 0; s && i < v->n; i++)
		if (v->tok[i] && !strcmp(v->tok[i], s))
			return i;
	return -1;
}

/* The "SpecialToken" id of template element i, or NULL. */
static const char *tmpl_special(json_t *tmpl, size_t i)
{
	return json_string_value(json_object_get(json_object_get(json_array_get(tmpl, i), "SpecialToken"), "id"));
}

static const char *tmpl_sequence(json_t *tmpl, size_t i)
{
	return json_string_value(json_object_get(json_object_get(json_array_get(tmpl, i), "Sequence"), "id"));
}

static int streq(const char *a, const char *b)
{
	return a && b && !strcmp(a, b);
}

/* Whether the tokenizer.json post-processor puts special tokens around a
 * sequence, read as gguf-py's SpecialVocab reads it: for BERT's single
 * template "[CLS] $A [SEP]" add_bos and add_eos; add_sep only when the pair
 * template has a separator between A and B that the single one lacks. */
static void read_template(struct vocab *v, json_t *tj, const char *bos, const char *cls,
			  const char *eos, const char *sep)
{
	json_t *pp = json_object_get(tj, "post_processor");
	json_t *procs = json_object_get(pp, "processors");
	size_t n = json_is_array(procs) ? json_array_size(procs) : 1;
	for (size_t i = 0; i < n; i++) {
		json_t *p = json_is_array(procs) ? json_array_get(procs, i) : pp;
		const char *type = json_string_value(json_object_get(p, "type"));
		if (streq(type, "RobertaProcessing")) {
			v->add_bos = v->add_eos = v->add_sep = 1;
			continue;
		}
		if (!streq(type, "TemplateProcessing"))
			continue;
		json_t *single = json_object_get(p, "single"), *pair = json_object_get(p, "pair");
		size_t ns = json_array_size(single), np = json_array_size(pair);
		const char *first = NULL, *last = NULL;
		if (ns > 1) {
			if ((first = tmpl_special(single, 0)))
				v->add_bos = streq(first, bos) || streq(first, cls);
			if ((last = tmpl_special(single, ns - 1)))
				v->add_eos = streq(last, eos);
		}
		size_t lo = first && streq(tmpl_special(pair, 0), first) ? 1 : 0;
		size_t hi = last && np && streq(tmpl_special(pair, np - 1), last) ? np - 1 : np;
		if (hi <= lo + 2 || !streq(tmpl_sequence(pair, lo), "A") ||
		    !streq(tmpl_sequence(pair, hi - 1), "B"))
			continue;
		/* between A and B: one or two separators */
		const char *m0 = tmpl_special(pair, lo + 1);
		int add_sep = (streq(m0, sep) || streq(m0, eos)) && !last;
		if (hi - lo == 4) {
			const char *m1 = tmpl_special(pair, lo + 2);
			add_sep |= streq(m1, sep) || streq(m1, eos);
		}
		v->add_sep = add_sep;
	}
}

static int load_vocab(struct hf *h, struct vocab *v)
{
	int rc;
	json_t *tcfg = load_json(h, "tokenizer_config.json", 0, &rc);
	if (!tcfg && rc != -ENOENT)
		return rc;
	json_t *smap = load_json(h, "special_tokens_map.json", 0, &rc);
	if (!smap && rc != -ENOENT) {
		json_decref(tcfg);
		return rc;
	}
	json_t *tj = NULL;
	char *tpath = path_join(h->dir, "tokenizer.json");
	v->tok = calloc((size_t)v->n, sizeof *v->tok);
	v->len = calloc((size_t)v->n, sizeof *v->len);
	v->type = calloc((size_t)v->n, sizeof *v->type);
	v->add_bos = v->add_eos = v->add_sep = -1;
	rc = -ENOMEM;
	if (!tpath || !v->tok || !v->len || !v->type) {
		eng_err(h->err, h->errsz, "out of memory");
		goto out;
	}
	if (file_exists(h->dir, "tokenizer.json")) {
		if (!(tj = load_json(h, "tokenizer.json", 1, &rc)))
			goto out;
		rc = vocab_from_json(h, v, tj, tpath);
	} else {
		rc = vocab_from_txt(h, v, tcfg, smap);
	}
	if (rc) {
		if (rc == -ENOMEM)
			eng_err(h->err, h->errsz, "out of memory");
		goto out;
	}
	/* ids the tokenizer does not use, as llama.cpp fills them */
	for (int64_t i = 0; i < v->n; i++) {
		if (v->tok[i])
			continue;
		char pad[32];
		int n = snprintf(pad, sizeof pad, "[PAD%lld]", (long long)i);
		if ((rc = set_token(v, i, pad, (size_t)n, TT_UNUSED))) {
			eng_err(h->err, h->errsz, "out of memory");
			goto out;
		}
	}
	/* Special tokens as gguf-py's SpecialVocab finds them: the tokenizer
	 * config first, then special_tokens_map.json; BERT has no BOS/EOS of
	 * its own, so [CLS] and [SEP] stand in for them. */
	const char *s[7];
	static const char *const keys[7] = {"unk_token", "cls_token", "sep_token", "pad_token",
					    "mask_token", "bos_token", "eos_token"};
	for (int k = 0; k < 7; k++)
		if (!(s[k] = special_text(tcfg, keys[k])))
			s[k] = special_text(smap, keys[k]);
	if (!s[5])
		s[5] = s[1];
	if (!s[6])
		s[6] = s[2];
	v->unk = find_token(v, s[0]);
	v->cls = find_token(v, s[1]);
	v->sep = find_token(v, s[2]);
	v->pad = find_token(v, s[3]);
	v->mask = find_token(v, s[4]);
	v->bos = find_token(v, s[5]);
	v->eos = find_token(v, s[6]);
	if (tj)
		read_template(v, tj, s[5], s[1], s[6], s[2]);
	/* the phantom-space spelling llama.cpp's WordPiece tokenizer expects */
	for (int64_t i = 0; i < v->n; i++) {
		const char *t = v->tok[i];
		size_t n = v->len[i];
		if (v->type[i] == TT_CONTROL || v->type[i] == TT_UNUSED ||
		    (n >= 2 && t[0] == '[' && t[n - 1] == ']'))
			continue;
		if (n >= 2 && t[0] == '#' && t[1] == '#') {
			memmove(v->tok[i], t + 2, n - 1);
			v->len[i] = n - 2;
			continue;
		}
		char *c = malloc(n + 4);
		if (!c) {
			rc = -ENOMEM;
			eng_err(h->err, h->errsz, "out of memory");
			goto out;
		}
		memcpy(c, "\xe2\x96\x81", 3);
		memcpy(c + 3, t, n + 1);
		free(v->tok[i]);
		v->tok[i] = c;
		v->len[i] = n + 3;
	}
	rc = 0;
out:
	free(tpath);
	json_decref(tj);
	json_decref(tcfg);
	json_decref(smap);
	return rc;
}

static int write_vocab(struct hf *h, struct gguf_writer *w, const struct vocab *v, int64_t n_types)
{
	int rc;
	if ((rc = gguf_w_u32(w, "tokenizer.ggml.token_type_count", (uint32_t)n_types)) ||
	    (rc = gguf_w_str(w, "tokenizer.ggml.model", "bert")) ||
	    /* llama.cpp's name for the uncased BERT pre-tokenizer; its
	     * WordPiece tokenizer does not depend on it */
	    (rc = gguf_w_str(w, "tokenizer.ggml.pre", "bert-bge")) ||
	    (rc = gguf_w_arr_str(w, "tokenizer.ggml.tokens", (const char *const *)v->tok, v->len,
				 (uint64_t)v->n)) ||
	    (rc = gguf_w_arr(w, "tokenizer.ggml.token_type", GGUF_I32, v->type, (uint64_t)v->n)))
		goto err;
	const struct {
		const char *key;
		int64_t id;
	} ids[] = {
		{"tokenizer.ggml.bos_token_id", v->bos},
		{"tokenizer.ggml.eos_token_id", v->eos},
		{"tokenizer.ggml.unknown_token_id", v->unk},
		{"tokenizer.ggml.seperator_token_id", v->sep},
		{"tokenizer.ggml.padding_token_id", v->pad},
		{"tokenizer.ggml.cls_token_id", v->cls},
		{"tokenizer.ggml.mask_token_id", v->mask},
	};
	for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
		if (ids[i].id >= 0 && (rc = gguf_w_u32(w, ids[i].key, (uint32_t)ids[i].id)))
			goto err;
	if ((v->add_bos >= 0 && (rc = gguf_w_bool(w, "tokenizer.ggml.add_bos_token", v->add_bos))) ||
	    (v->add_eos >= 0 && (rc = gguf_w_bool(w, "tokenizer.ggml.add_eos_token", v->add_eos))) ||
	    (v->add_sep >= 0 && (rc = gguf_w_bool(w, "tokenizer.ggml.add_sep_token", v->add_sep))))
		goto err;
	return 0;
err:
	eng_err(h->err, h->errsz, "cannot add the vocabulary: %s", strerror(-rc));
	return rc;
}

/* ---- sentence-transformers modules ----------------------------------------- */

struct st_modules {
	int pooling;      /* HF_POOL_*, 0 when the folder has no Pooling module */
	int normalize;    /* a Normalize module follows the pooling */
	int64_t max_seq;  /* sentence_bert_config.json max_seq_length, 0 if absent */
};

static int load_modules(struct hf *h, struct st_modules *m)
{
	int rc;
	memset(m, 0, sizeof *m);
	json_t *mods = load_json(h, "modules.json", 0, &rc);
	if (!mods)
		return rc == -ENOENT ? 0 : rc;
	size_t i;
	json_t *mod;
	const char *pool_path = NULL;
	rc = 0;
	json_array_foreach(mods, i, mod) {
		const char *type = json_string_value(json_object_get(mod, "type"));
		const char *path = json_string_value(json_object_get(mod, "path"));
		if (!type) {
			eng_err(h->err, h->errsz, "%s/modules.json: module %zu has no type", h->dir, i);
			rc = -EINVAL;
			break;
		}
		if (!strcmp(type, "sentence_transformers.models.Transformer"))
			continue;
		if (!strcmp(type, "sentence_transformers.models.Normalize")) {
			m->normalize = 1;
		} else if (!strcmp(type, "sentence_transformers.models.Pooling")) {
			if (!pool_path)
				pool_path = path ? path : "";
		} else {
			/* a Dense layer or the like changes the vectors: a model
			 * without it would give wrong embeddings */
			eng_err(h->err, h->errsz, "%s/modules.json: module %zu is %s, which seekfs cannot run (supported: Transformer, Pooling, Normalize)",
				h->dir, i, type);
			rc = -ENOTSUP;
			break;
		}
	}
	if (!rc && !json_is_array(mods)) {
		eng_err(h->err, h->errsz, "%s/modules.json: not a JSON array", h->dir);
		rc = -EINVAL;
	}
	if (!rc && pool_path) {
		char name[512];
		snprintf(name, sizeof name, "%s%sconfig.json", pool_path, *pool_path ? "/" : "");
		json_t *pc = load_json(h, name, 1, &rc);
		if (pc) {
			int mean = json_is_true(json_object_get(pc, "pooling_mode_mean_tokens"));
			int cls = json_is_true(json_object_get(pc, "pooling_mode_cls_token"));
			int last = json_is_true(json_object_get(pc, "pooling_mode_lasttoken"));
			int other = json_is_true(json_object_get(pc, "pooling_mode_max_tokens")) ||
				    json_is_true(json_object_get(pc, "pooling_mode_mean_sqrt_len_tokens")) ||
				    json_is_true(json_object_get(pc, "pooling_mode_weightedmean_tokens"));
			if (mean + cls + last != 1 || other) {
				eng_err(h->err, h->errsz, "%s/%s: unsupported pooling: exactly one of mean, cls or last-token pooling is supported",
					h->dir, name);
				rc = -ENOTSUP;
			} else {
				m->pooling = mean ? HF_POOL_MEAN : cls ? HF_POOL_CLS : HF_POOL_LAST;
			}
			json_decref(pc);
		}
	}
	json_decref(mods);
	if (rc)
		return rc;
	json_t *sb = load_json(h, "sentence_bert_config.json", 0, &rc);
	if (sb) {
		json_t *ms = json_object_get(sb, "max_seq_length");
		if (json_is_integer(ms) && json_integer_value(ms) > 0)
			m->max_seq = json_integer_value(ms);
		json_decref(sb);
	} else if (rc != -ENOENT) {
		return rc;
	}
	return 0;
}

/* ---- tensors --------------------------------------------------------------- */

/* Look up a tensor and check its shape (given slowest-moving first, as in
 * the file). */
static struct st_tensor *need(struct hf *h, const char *name, int n_dims, int64_t d0, int64_t d1,
			      int *rc)
{
	struct st_tensor *t = find_tensor(h, name);
	if (!t) {
		eng_err(h->err, h->errsz, "%s: the weights lack tensor '%s' (nor 'bert.%s')", h->dir, name, name);
		*rc = -EINVAL;
		return NULL;
	}
	if (t->n_dims != n_dims || t->shape[0] != d0 || (n_dims == 2 && t->shape[1] != d1)) {
		char want[64], got[96];
		int k = 0;
		if (n_dims == 2)
			snprintf(want, sizeof want, "[%lld, %lld]", (long long)d0, (long long)d1);
		else
			snprintf(want, sizeof want, "[%lld]", (long long)d0);
		k += snprintf(got + k, sizeof got - (size_t)k, "[");
		for (int d = 0; d < t->n_dims && k < 80; d++)
			k += snprintf(got + k, sizeof got - (size_t)k, d ? ", %lld" : "%lld", (long long)t->shape[d]);
		snprintf(got + k, sizeof got - (size_t)k, "]");
		eng_err(h->err, h->errsz, "%s: tensor '%s' has shape %s, config.json implies %s", t->path,
			t->name, got, want);
		*rc = -EINVAL;
		return NULL;
	}
	if (strcmp(t->dtype, "F32") && strcmp(t->dtype, "F16") && strcmp(t->dtype, "BF16")) {
		eng_err(h->err, h->errsz, "%s: tensor '%s' is %s; only F32, F16 and BF16 weights are converted",
			t->path, t->name, t->dtype);
		*rc = -ENOTSUP;
		return NULL;
	}
	t->used = 1;
	return t;
}

/* Add t to w as gguf_name in type out (KT_F32 or KT_F16). buf holds at
 * least numel floats and numel * 4 bytes of scratch. */
static int put_tensor(struct hf *h, struct gguf_writer *w, const struct st_tensor *t,
		      const char *gguf_name, enum kt_type out, float *buf, void *scratch)
{
	int64_t ne[2];
	for (int d = 0; d < t->n_dims; d++)
		ne[d] = t->shape[t->n_dims - 1 - d];
	const void *data;
	enum kt_type src = !strcmp(t->dtype, "F32") ? KT_F32 : !strcmp(t->dtype, "F16") ? KT_F16 : KT_BF16;
	if (src == out) {
		data = t->data; /* copied as is: the writer copies bytes */
	} else {
		/* the mapping may be unaligned for the element type */
		memcpy(scratch, t->data, t->nbytes);
		kt_dequant_row(src, scratch, buf, t->numel);
		if (out == KT_F16)
			kt_quantize_row(KT_F16, buf, scratch, t->numel);
		data = out == KT_F16 ? scratch : (const void *)buf;
	}
	int rc = gguf_w_tensor(w, gguf_name, out, t->n_dims, ne, data);
	if (rc)
		eng_err(h->err, h->errsz, "cannot add tensor %s (from %s): %s", gguf_name, t->name, strerror(-rc));
	return rc;
}

static int add_tensors(struct hf *h, struct gguf_writer *w, enum kt_type wtype, int64_t V, int64_t D,
		       int64_t F, int64_t L, int64_t P, int64_t T)
{
	struct map {
		const char *hf, *gguf;
		int n_dims;
		int64_t d0, d1;
		int keep_f32; /* llama.cpp keeps these F32 whatever the output type */
	};
	const struct map embd[] = {
		{"embeddings.word_embeddings.weight", "token_embd.weight", 2, V, D, 0},
		{"embeddings.token_type_embeddings.weight", "token_types.weight", 2, T, D, 1},
		{"embeddings.position_embeddings.weight", "position_embd.weight", 2, P, D, 1},
		{"embeddings.LayerNorm.weight", "token_embd_norm.weight", 1, D, 0, 0},
		{"embeddings.LayerNorm.bias", "token_embd_norm.bias", 1, D, 0, 0},
	};
	const struct map blk[] = {
		{"attention.self.query.weight", "attn_q.weight", 2, D, D, 0},
		{"attention.self.query.bias", "attn_q.bias", 1, D, 0, 0},
		{"attention.self.key.weight", "attn_k.weight", 2, D, D, 0},
		{"attention.self.key.bias", "attn_k.bias", 1, D, 0, 0},
		{"attention.self.value.weight", "attn_v.weight", 2, D, D, 0},
		{"attention.self.value.bias", "attn_v.bias", 1, D, 0, 0},
		{"attention.output.dense.weight", "attn_output.weight", 2, D, D, 0},
		{"attention.output.dense.bias", "attn_output.bias", 1, D, 0, 0},
		{"attention.output.LayerNorm.weight", "attn_output_norm.weight", 1, D, 0, 0},
		{"attention.output.LayerNorm.bias", "attn_output_norm.bias", 1, D, 0, 0},
		{"intermediate.dense.weight", "ffn_up.weight", 2, F, D, 0},
		{"intermediate.dense.bias", "ffn_up.bias", 1, F, 0, 0},
		{"output.dense.weight", "ffn_down.weight", 2, D, F, 0},
		{"output.dense.bias", "ffn_down.bias", 1, D, 0, 0},
		{"output.LayerNorm.weight", "layer_output_norm.weight", 1, D, 0, 0},
		{"output.LayerNorm.bias", "layer_output_norm.bias", 1, D, 0, 0},
	};
	/* scratch for the largest tensor: floats + its bytes in any type */
	int64_t big = 0;
	for (size_t i = 0; i < h->n_t; i++)
		if (h->t[i].numel > big)
			big = h->t[i].numel;
	float *buf = malloc((size_t)big * sizeof(float) + 1);
	void *scratch = malloc((size_t)big * sizeof(float) + 1);
	int rc = -ENOMEM;
	if (!buf || !scratch) {
		eng_err(h->err, h->errsz, "out of memory for %lld elements", (long long)big);
		goto out;
	}
	for (size_t i = 0; i < sizeof embd / sizeof embd[0]; i++) {
		const struct map *m = &embd[i];
		struct st_tensor *t = need(h, m->hf, m->n_dims, m->d0, m->d1, &rc);
		enum kt_type out = m->n_dims == 2 && !m->keep_f32 ? wtype : KT_F32;
		if (!t || (rc = put_tensor(h, w, t, m->gguf, out, buf, scratch)))
			goto out;
	}
	for (int64_t l = 0; l < L; l++) {
		for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++) {
			const struct map *m = &blk[i];
			char hn[160], gn[96];
			snprintf(hn, sizeof hn, "encoder.layer.%lld.%s", (long long)l, m->hf);
			snprintf(gn, sizeof gn, "blk.%lld.%s", (long long)l, m->gguf);
			struct st_tensor *t = need(h, hn, m->n_dims, m->d0, m->d1, &rc);
			enum kt_type out = m->n_dims == 2 ? wtype : KT_F32;
			if (!t || (rc = put_tensor(h, w, t, gn, out, buf, scratch)))
				goto out;
		}
	}
	/* Everything else must be something an embedder does without (as
	 * llama.cpp's converter skips them); an unknown tensor means the
	 * model is not a plain BERT and would be run wrongly. */
	for (size_t i = 0; i < h->n_t; i++) {
		const struct st_tensor *t = &h->t[i];
		if (t->used || !strcmp(t->name, "embeddings.position_ids") || !strncmp(t->name, "pooler.", 7) ||
		    !strncmp(t->name, "cls.predictions", 15) || !strncmp(t->name, "cls.seq_relationship", 20))
			continue;
		eng_err(h->err, h->errsz, "%s: tensor '%s' is not part of a BERT encoder (%lld layers in config.json); this model cannot be converted",
			t->path, t->name, (long long)L);
		rc = -ENOTSUP;
		goto out;
	}
	rc = 0;
out:
	free(buf);
	free(scratch);
	return rc;
}

/* ---- the conversion -------------------------------------------------------- */

/* Refuse anything but BERT, naming what it is. */
static int check_arch(struct hf *h, const json_t *cfg)
{
	const char *mt = json_string_value(json_object_get(cfg, "model_type"));
	const char *arch = json_string_value(json_array_get(json_object_get(cfg, "architectures"), 0));
	int ok = mt && !strcmp(mt, "bert");
	if (ok && arch)
		ok = !strcmp(arch, "BertModel") || !strcmp(arch, "BertForMaskedLM") ||
		     !strcmp(arch, "BertForPreTraining");
	if (!ok) {
		eng_err(h->err, h->errsz, "%s/config.json: architecture %s (model_type %s) is not supported: only BERT encoders (BertModel) are converted",
			h->dir, arch ? arch : "(none)", mt ? mt : "(none)");
		return -ENOTSUP;
	}
	const char *act = json_string_value(json_object_get(cfg, "hidden_act"));
	const char *pos = json_string_value(json_object_get(cfg, "position_embedding_type"));
	if ((act && strcmp(act, "gelu")) || (pos && strcmp(pos, "absolute"))) {
		eng_err(h->err, h->errsz, "%s/config.json: hidden_act %s with position_embedding_type %s is not supported (gelu, absolute are)",
			h->dir, act ? act : "gelu", pos ? pos : "absolute");
		return -ENOTSUP;
	}
	return 0;
}

int convert_hf_ex(const char *dir, const char *out, enum kt_type wtype, char *err, size_t errsz)
{
	struct hf h = {.dir = dir, .err = err, .errsz = errsz};
	struct vocab v = {0};
	struct gguf_writer *w = NULL;
	struct st_modules mods;
	int rc;
	if (wtype != KT_F32 && wtype != KT_F16) {
		eng_err(err, errsz, "weights can be written as f32 or f16, not %s",
			kt_type_name(wtype) ? kt_type_name(wtype) : "an unknown type");
		return -EINVAL;
	}
	json_t *cfg = load_json(&h, "config.json", 1, &rc);
	if (!cfg)
		return rc;
	if ((rc = check_arch(&h, cfg)))
		goto out;
	int64_t V, D, F, L, H, P, T;
	if ((rc = cfg_int(&h, cfg, "vocab_size", -1, 1, 1 << 22, &V)) ||
	    (rc = cfg_int(&h, cfg, "hidden_size", -1, 1, 65536, &D)) ||
	    (rc = cfg_int(&h, cfg, "intermediate_size", -1, 1, 1 << 20, &F)) ||
	    (rc = cfg_int(&h, cfg, "num_hidden_layers", -1, 1, 1024, &L)) ||
	    (rc = cfg_int(&h, cfg, "num_attention_heads", -1, 1, 1024, &H)) ||
	    (rc = cfg_int(&h, cfg, "max_position_embeddings", -1, 1, 1 << 20, &P)) ||
	    (rc = cfg_int(&h, cfg, "type_vocab_size", 1, 1, 1024, &T)))
		goto out;
	if (D % H) {
		eng_err(err, errsz, "%s/config.json: hidden_size %lld is not a multiple of num_attention_heads %lld",
			dir, (long long)D, (long long)H);
		rc = -EINVAL;
		goto out;
	}
	json_t *jeps = json_object_get(cfg, "layer_norm_eps");
	double eps = jeps ? json_number_value(jeps) : 1e-12;
	if (!(eps > 0 && eps < 1)) {
		eng_err(err, errsz, "%s/config.json: layer_norm_eps %g is not in (0, 1)", dir, eps);
		rc = -EINVAL;
		goto out;
	}
	if ((rc = load_modules(&h, &mods)))
		goto out;
	if (mods.max_seq > P) {
		eng_err(err, errsz, "%s/sentence_bert_config.json: max_seq_length %lld is over max_position_embeddings %lld",
			dir, (long long)mods.max_seq, (long long)P);
		rc = -EINVAL;
		goto out;
	}
	v.n = V;
	if ((rc = load_vocab(&h, &v)) || (rc = load_weights(&h)))
		goto out;

	rc = -ENOMEM;
	if (!(w = gguf_writer_new())) {
		eng_err(err, errsz, "out of memory");
		goto out;
	}
	const char *base = dir + strlen(dir);
	while (base > dir && base[-1] == '/')
		base--;
	const char *end = base;
	while (base > dir && base[-1] != '/')
		base--;
	char name[256];
	snprintf(name, sizeof name, "%.*s", (int)(end - base), base);
	if ((rc = gguf_w_str(w, "general.architecture", "bert")) ||
	    (rc = gguf_w_str(w, "general.type", "model")) ||
	    (rc = gguf_w_str(w, "general.name", *name ? name : "bert")) ||
	    (rc = gguf_w_u32(w, "bert.block_count", (uint32_t)L)) ||
	    (rc = gguf_w_u32(w, "bert.context_length", (uint32_t)P)) ||
	    (rc = gguf_w_u32(w, "bert.embedding_length", (uint32_t)D)) ||
	    (rc = gguf_w_u32(w, "bert.feed_forward_length", (uint32_t)F)) ||
	    (rc = gguf_w_u32(w, "bert.attention.head_count", (uint32_t)H)) ||
	    (rc = gguf_w_f32(w, "bert.attention.layer_norm_epsilon", (float)eps)) ||
	    (rc = gguf_w_u32(w, "general.file_type", wtype == KT_F16 ? 1 : 0)) ||
	    (rc = gguf_w_bool(w, "bert.attention.causal", 0)) ||
	    (mods.pooling && (rc = gguf_w_u32(w, "bert.pooling_type", (uint32_t)mods.pooling))) ||
	    (rc = gguf_w_bool(w, "seekfs.embed.normalize", mods.normalize)) ||
	    (mods.max_seq && (rc = gguf_w_u32(w, "seekfs.embed.max_tokens", (uint32_t)mods.max_seq))) ||
	    (rc = gguf_w_u32(w, "general.quantization_version", 2))) {
		eng_err(err, errsz, "%s: cannot write metadata: %s", out, strerror(-rc));
		goto out;
	}
	if ((rc = write_vocab(&h, w, &v, T)) || (rc = add_tensors(&h, w, wtype, V, D, F, L, P, T)))
		goto out;
	rc = gguf_writer_write(w, out, err, errsz);
out:
	gguf_writer_free(w);
	vocab_free(&v);
	for (int i = 0; i < h.n_files; i++) {
		if (h.files[i].map)
			munmap(h.files[i].map, h.files[i].len);
		free(h.files[i].path);
	}
	free(h.files);
	for (size_t i = 0; i < h.n_t; i++)
		free(h.t[i].name);
	free(h.t);
	json_decref(cfg);
	return rc;
}

int convert_hf(const char *dir, const char *out, char *err, size_t errsz)
{
	return convert_hf_ex(dir, out, KT_F32, err, errsz);
}
