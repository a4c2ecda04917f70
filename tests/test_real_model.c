/*
 * Real models against an independent reference (llama.cpp), from golden
 * files made by tools/golden_greedy.py (see tests/data/golden/README.md).
 *
 * For each golden file whose model is installed (tools/fetch-models.sh puts
 * them in $SEEKFS_MODELS, default ~/.local/share/seekfs/models):
 *  - the chat template renders the reference's prompt text exactly, and the
 *    tokenizer turns it into the reference's prompt ids;
 *  - fed the reference's 128 greedy tokens one by one, at every step the
 *    reference's token is the engine's top choice or within 0.05 logits of
 *    it (quantised dot products round differently between engines), and the
 *    first 32 tokens are exactly the engine's own greedy choices;
 *  - the engine's own greedy answer, up to the end of the turn, is the
 *    reference's answer (a sensible one for the instruction-tuned models:
 *    "The capital of France is Paris."; a pretrained model such as Gemma 3
 *    270M may never end the turn: then the tokens up to the reference's
 *    first near tie, at most 64, are compared).
 * A model that is not installed is skipped, visibly; if none is, the test
 * exits with ctest's skip code.
 */
#include <jansson.h>
#include <math.h>

#include "engine/engine.h"
#include "testutil.h"

#define MARGIN 0.05f
#define EXACT_STEPS 32

/* Models whose logits are too sensitive to rounding for the 0.05 bound.
 * SmolLM2-135M at Q4_1: llama.cpp's own logits for the golden prompt move
 * by up to 1.75 when its KV cache is F32 instead of F16 and by up to 0.84
 * when the prompt is evaluated one token at a time instead of in one batch
 * (measured with the reference build of tests/data/golden). For these the
 * test asserts: the reference token within tol of the engine's top at every
 * step, and the same choice wherever the reference's own margin over its
 * runner-up exceeds noise, the reference's measured disagreement with
 * itself. */
static const struct {
	const char *file;
	float tol, noise;
} sensitive[] = {
	{"SmolLM2-135M-Instruct.Q4_1.gguf", 0.25f, 0.84f},
	/* Gemma 3 270M (pretrained) at Q4_K_M: llama.cpp's logits move by up
	 * to 1.35 when the prompt goes one token at a time and by 1.51 with an
	 * F32 KV cache, and its choice flips at steps 12 and 14, where its
	 * margins are 0.24 and 0.23 (the model repeats the question and then
	 * guesses); the engine's largest margin below its top is 0.38 */
	{"gemma-3-270m-q4_k_m.gguf", 0.5f, 0.24f},
};

static int32_t argmax(const float *x, int32_t n)
{
	int32_t best = 0;
	for (int32_t i = 1; i < n; i++)
		if (x[i] > x[best])
			best = i;
	return best;
}

static int32_t *ids_of(json_t *arr, size_t *n)
{
	*n = json_array_size(arr);
	int32_t *v = malloc(*n * sizeof *v + 1);
	T_REQUIRE(v, "out of memory");
	for (size_t i = 0; i < *n; i++)
		v[i] = (int32_t)json_integer_value(json_array_get(arr, i));
	return v;
}

static void check_prompt(struct model *m, json_t *g, const int32_t *want, size_t n_want)
{
	const char *text = json_string_value(json_object_get(g, "prompt_text"));
	const char *user = json_string_value(
		json_object_get(json_array_get(json_object_get(g, "messages"), 0), "content"));
	T_REQUIRE(text && user, "golden file lacks prompt_text or messages");

	/* chat template: the reference rendered the model's Jinja template */
	enum chat_tmpl t = model_chat(m);
	T_CHECK(t != CHAT_NONE, "%s: chat template not recognised", model_name(m));
	char sys[1024];
	struct chat_msg msgs[2];
	int nm = 0;
	if (chat_default_system(model_chat_template(m), sys, sizeof sys) > 0)
		msgs[nm++] = (struct chat_msg){"system", sys};
	msgs[nm++] = (struct chat_msg){"user", user};
	char buf[4096];
	int len = chat_apply(t, msgs, nm, 1, buf, sizeof buf);
	T_CHECK(len > 0 && (size_t)len < sizeof buf && !strcmp(buf, text),
		"%s: chat template renders\n%s\nreference\n%s", model_name(m), buf, text);

	/* tokenizer: special tokens parsed, no BOS (neither model adds one) */
	int32_t ids[4096];
	int64_t n = tok_encode(model_tok(m), text, strlen(text), 1, ids, 4096);
	int same = n == (int64_t)n_want;
	for (int64_t i = 0; same && i < n; i++)
		same = ids[i] == want[i];
	T_CHECK(same, "%s: prompt tokenizes to %lld ids, reference %zu (or ids differ)",
		model_name(m), (long long)n, n_want);
}

static void check_model(const char *golden_path, const char *models_dir, int *ran)
{
	json_error_t jerr;
	json_t *g = json_load_file(golden_path, 0, &jerr);
	T_REQUIRE(g, "%s: %s (line %d)", golden_path, jerr.text, jerr.line);
	const char *file = json_string_value(json_object_get(g, "model_file"));
	T_REQUIRE(file, "%s: no model_file", golden_path);
	char path[8192];
	snprintf(path, sizeof path, "%s/%s", models_dir, file);
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "test_real_model: SKIP %s: model not installed at %s (tools/fetch-models.sh installs it)\n",
			file, path);
		json_decref(g);
		return;
	}
	fclose(f);
	(*ran)++;

	char err[512];
	struct model *m;
	T_REQUIRE(!model_load(path, &m, err, sizeof err), "%s", err);
	const struct model_hparams *hp = model_hparams(m);
	const struct tok *tk = model_tok(m);
	size_t n_prompt, n_gen;
	int32_t *prompt = ids_of(json_object_get(g, "prompt_ids"), &n_prompt);
	int32_t *gen = ids_of(json_object_get(g, "generated_ids"), &n_gen);
	json_t *steps = json_object_get(g, "steps");
	T_REQUIRE(n_prompt > 0 && n_gen > 0 && json_array_size(steps) == n_gen,
		  "%s: malformed golden file", golden_path);
	check_prompt(m, g, prompt, n_prompt);

	struct kt_pool *pool = kt_pool_create(2);
	struct session *s;
	T_REQUIRE(pool && !session_new(m, (int)(n_prompt + n_gen), KT_F16, pool, &s, err, sizeof err),
		  "%s", err);
	float *logits = malloc((size_t)hp->n_vocab * sizeof(float));
	T_REQUIRE(logits, "out of memory");
	T_REQUIRE(!session_forward(s, prompt, (int)n_prompt, 0, logits), "prompt failed");

	float tol = MARGIN, noise = 0;
	for (size_t i = 0; i < sizeof sensitive / sizeof sensitive[0]; i++)
		if (!strcmp(file, sensitive[i].file))
			tol = sensitive[i].tol, noise = sensitive[i].noise;
	float worst_margin = 0, worst_ref = 0;
	int mismatches = 0, first_mismatch = -1;
	for (size_t i = 0; i < n_gen; i++) {
		int32_t top = argmax(logits, hp->n_vocab), want = gen[i];
		float margin = logits[top] - logits[want];
		double ref = json_real_value(json_object_get(json_array_get(steps, i), "logit"));

		float dref = fabsf(logits[want] - (float)ref);
		if (dref > worst_ref)
			worst_ref = dref;
		if (getenv("SEEKFS_TEST_VERBOSE"))
			fprintf(stderr, "step %zu: ref %d %.4f, engine top %d %.4f, engine logit of ref %.4f\n",
				i, want, ref, top, logits[top], logits[want]);
		if (margin > worst_margin)
			worst_margin = margin;
		if (top != want) {
			mismatches++;
			if (first_mismatch < 0)
				first_mismatch = (int)i;
		}
		json_t *st = json_array_get(steps, i);
		double ref_margin = ref - json_real_value(json_object_get(st, "second_logit"));
		T_CHECK(margin <= tol,
			"%s step %zu: reference token %d is %.4f logits below the engine's top %d (bound %.2f)",
			file, i, want, margin, top, tol);
		if (tol == MARGIN)
			T_CHECK(i >= EXACT_STEPS || top == want,
				"%s step %zu: engine chose %d, reference %d (margin %.4f)", file, i,
				top, want, margin);
		else
			T_CHECK(ref_margin <= noise || top == want,
				"%s step %zu: engine chose %d, reference %d by a margin of %.4f > %.2f",
				file, i, top, want, ref_margin, noise);
		if (i + 1 < n_gen)
			T_REQUIRE(!session_forward(s, &want, 1, 0, logits), "decode failed");
	}
	fprintf(stderr, "test_real_model: %s: %zu steps, %d where the engine's top differs (first at %d), "
		"largest margin %.4f, largest |logit - reference logit| %.4f\n",
		file, n_gen, mismatches, first_mismatch, worst_margin, worst_ref);

	/* the engine's own greedy answer, to the end of the turn; when the
	 * reference never ends it, up to its first near tie (at most 64) */
	int n_answer = 64;
	const int no_eog = json_is_null(json_object_get(g, "first_eog_step"));
	for (int i = 0; no_eog && i < n_answer && (size_t)i < n_gen; i++) {
		json_t *st = json_array_get(steps, (size_t)i);
		if (json_real_value(json_object_get(st, "logit")) -
			    json_real_value(json_object_get(st, "second_logit")) <= noise)
			n_answer = i;
	}
	session_reset(s);
	T_REQUIRE(!session_forward(s, prompt, (int)n_prompt, 0, logits), "prompt failed");
	char answer[2048] = "";
	size_t alen = 0;
	for (int i = 0; i < n_answer; i++) {
		int32_t next = argmax(logits, hp->n_vocab);
		if (tok_is_eog(tk, next))
			break;
		int l = tok_piece(tk, next, answer + alen, sizeof answer - alen - 1);
		if (l > 0 && alen + (size_t)l < sizeof answer - 1)
			alen += (size_t)l;
		answer[alen] = 0;
		T_REQUIRE(!session_forward(s, &next, 1, 0, logits), "decode failed");
	}
	const char *want_answer = json_string_value(json_object_get(g, "answer_text"));
	char want64[2048] = "";
	if (no_eog) {
		/* no end of turn in the reference: its first n_answer tokens' text */
		size_t wl = 0;
		for (size_t i = 0; i < (size_t)n_answer && i < n_gen; i++) {
			int l = tok_piece(tk, gen[i], want64 + wl, sizeof want64 - wl - 1);
			if (l > 0 && wl + (size_t)l < sizeof want64 - 1)
				wl += (size_t)l;
			want64[wl] = 0;
		}
		want_answer = want64;
	}
	T_CHECK(want_answer && !strcmp(answer, want_answer), "%s: answer '%s', reference '%s'",
		file, answer, want_answer ? want_answer : "(none)");
	fprintf(stderr, "test_real_model: %s answers: %s\n", file, answer);

	free(logits);
	free(prompt);
	free(gen);
	session_free(s);
	kt_pool_destroy(pool);
	model_free(m);
	json_decref(g);
}

int main(int argc, char **argv)
{
	char dir[4096];
	t_models(NULL, dir, sizeof dir);
	int ran = 0;
	for (int i = 1; i < argc; i++)
		check_model(argv[i], dir, &ran);
	if (!ran) {
		fprintf(stderr, "test_real_model: skipped: no model of the golden files is installed in %s\n", dir);
		return T_SKIP;
	}
	return t_done("test_real_model");
}
