/*
 * Embeddings of all-MiniLM-L6-v2 (converted to GGUF by `seekfs convert hf`,
 * which tools/setup.sh runs) against sentence-transformers' own vectors for
 * 20 varied texts (tests/data/embed, with how they were made):
 *  - the WordPiece tokenizer, framed with [CLS] ... [SEP] and cut at the
 *    model's input length, gives the reference's ids;
 *  - each embedding has cosine similarity >= 0.999 with the reference's;
 *  - embedding all texts in one batch gives the vectors of one at a time.
 * Skipped, visibly, when the converted model is not installed.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>

#include "engine/engine.h"
#include "testutil.h"

static double cosine(const float *a, const float *b, int n)
{
	double ab = 0, aa = 0, bb = 0;
	for (int i = 0; i < n; i++) {
		ab += (double)a[i] * b[i];
		aa += (double)a[i] * a[i];
		bb += (double)b[i] * b[i];
	}
	return ab / sqrt(aa * bb);
}

int main(int argc, char **argv)
{
	T_REQUIRE(argc == 2, "usage: test_embed GOLDEN.json");
	char path[8192];
	t_models("all-MiniLM-L6-v2.gguf", path, sizeof path);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "test_embed: skipped: %s is not installed (tools/setup.sh converts it)\n", path);
		return T_SKIP;
	}
	fclose(f);

	json_error_t jerr;
	json_t *g = json_load_file(argv[1], 0, &jerr);
	T_REQUIRE(g, "%s: %s (line %d)", argv[1], jerr.text, jerr.line);
	json_t *cases = json_object_get(g, "cases");
	size_t n_cases = json_array_size(cases);
	T_REQUIRE(n_cases >= 20, "%s: %zu cases, want 20", argv[1], n_cases);

	char err[512];
	struct model *m;
	T_REQUIRE(!model_load(path, &m, err, sizeof err), "%s", err);
	const struct model_hparams *hp = model_hparams(m);
	const struct tok *tk = model_tok(m);
	const int E = hp->n_embd, max = model_embed_max_tokens(m);
	T_CHECK(hp->arch == ARCH_BERT && E == 384, "arch %s, n_embd %d", hp->arch_name, E);
	T_CHECK(max == (int)json_integer_value(json_object_get(g, "max_tokens")),
		"model reads %d tokens, reference %lld", max,
		(long long)json_integer_value(json_object_get(g, "max_tokens")));

	struct kt_pool *pool = kt_pool_create(2);
	struct session *s;
	int cap = 4096;
	T_REQUIRE(pool && !session_new(m, cap, KT_F32, pool, &s, err, sizeof err), "%s", err);
	int32_t *all = malloc((size_t)cap * sizeof *all);
	int *lens = malloc(n_cases * sizeof *lens);
	float *one = malloc(n_cases * (size_t)E * sizeof(float));
	float *batch = malloc(n_cases * (size_t)E * sizeof(float));
	T_REQUIRE(all && lens && one && batch, "out of memory");

	int total = 0;
	double worst = 1;
	for (size_t c = 0; c < n_cases; c++) {
		json_t *jc = json_array_get(cases, c);
		const char *name = json_string_value(json_object_get(jc, "name"));
		const char *text = json_string_value(json_object_get(jc, "text"));
		json_t *jids = json_object_get(jc, "ids"), *jemb = json_object_get(jc, "embedding");
		T_REQUIRE(name && text && json_array_size(jemb) == (size_t)E, "case %zu malformed", c);

		/* our tokenizer, framed and cut as the model reads it */
		size_t len = strlen(text);
		int32_t *ids = malloc((len + 2) * sizeof *ids);
		T_REQUIRE(ids, "out of memory");
		int64_t n = tok_encode(tk, text, len, 0, ids + 1, (int64_t)len);
		T_REQUIRE(n >= 0, "%s: tokenizing failed", name);
		if (n > max - 2)
			n = max - 2;
		ids[0] = tok_bos(tk);
		ids[n + 1] = tok_eos(tk);
		n += 2;
		int same = (size_t)n == json_array_size(jids);
		for (int64_t i = 0; same && i < n; i++)
			same = ids[i] == json_integer_value(json_array_get(jids, (size_t)i));
		T_CHECK(same, "%s: %lld ids, reference %zu (or they differ)", name, (long long)n,
			json_array_size(jids));

		/* the embedding of the reference's ids */
		int ln = (int)json_array_size(jids);
		T_REQUIRE(total + ln <= cap, "golden texts exceed %d tokens", cap);
		for (int i = 0; i < ln; i++)
			all[total + i] = (int32_t)json_integer_value(json_array_get(jids, (size_t)i));
		lens[c] = ln;
		T_REQUIRE(session_embed(s, all + total, &ln, 1, one + c * (size_t)E) == 0,
			  "%s: session_embed failed", name);
		total += ln;
		float ref[1024];
		for (int i = 0; i < E; i++)
			ref[i] = (float)json_real_value(json_array_get(jemb, (size_t)i));
		double cs = cosine(one + c * (size_t)E, ref, E);
		if (cs < worst)
			worst = cs;
		T_CHECK(cs >= 0.999, "%s: cosine %.6f with the reference < 0.999", name, cs);
		free(ids);
	}
	fprintf(stderr, "test_embed: %zu texts, lowest cosine with sentence-transformers %.6f\n",
		n_cases, worst);

	/* all in one batch: each sequence attends only to itself */
	T_REQUIRE(session_embed(s, all, lens, (int)n_cases, batch) == 0, "batched embed failed");
	double worst_b = 1;
	for (size_t c = 0; c < n_cases; c++) {
		double cs = cosine(batch + c * (size_t)E, one + c * (size_t)E, E);
		if (cs < worst_b)
			worst_b = cs;
	}
	T_CHECK(worst_b > 0.999999, "batched embeddings differ from single ones: cosine %.8f", worst_b);

	/* a sequence longer than the model reads is refused */
	int big = cap + 1;
	T_CHECK(session_embed(s, all, &big, 1, batch) == -EINVAL, "over-long sequence accepted");

	free(all);
	free(lens);
	free(one);
	free(batch);
	session_free(s);
	kt_pool_destroy(pool);
	model_free(m);
	json_decref(g);
	return t_done("test_embed");
}
