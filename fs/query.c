/*
 * query: the pipeline behind queries/NAME. A worker takes the oldest queued
 * request, reads and checks it, searches the index (NAME.hits), builds the
 * prompt from the question and the numbered sources, generates the answer
 * token by token into NAME.stream, and finishes with NAME.answer, NAME.json,
 * NAME.status and, last, NAME.done. Result files other than the stream are
 * written to a temporary name and renamed, so they appear complete.
 *
 * Durability: a request found without NAME.done on a restart runs again,
 * so results need to be on disk only once NAME.done is there.
 * results_durable syncs them all together just before it (one commit of
 * the file system's journal for all of them, not one per file).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "fs/daemon_internal.h"

#define MAX_REQUEST (1 << 20)
#define MAX_TOKENS_LIMIT 8192
#define DEFAULT_CTX 4096

static const char SYSTEM_PROMPT[] =
	"You answer questions using the numbered sources given with the question. "
	"Cite the sources you use as [1], [2], ... If the sources do not contain the answer, "
	"say so briefly.";

void hist_add(struct hist *h, double v)
{
	h->sum += v;
	h->count++;
	for (int i = 0; i < N_HIST; i++)
		if (v <= hist_bounds[i])
			h->le[i]++;
}

static void qpath(struct daemon *d, const char *name, const char *suffix, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s%s", d->sp.queries, name, suffix);
}

int query_write_result(struct daemon *d, const char *name, const char *suffix,
		       const char *data, size_t len)
{
	char p[4600], tmp[4700];
	qpath(d, name, suffix, p, sizeof p);
	snprintf(tmp, sizeof tmp, "%s/.%s%s.tmp", d->sp.queries, name, suffix);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, data + off, len - off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int e = -errno;
			close(fd);
			unlink(tmp);
			return e;
		}
		off += (size_t)w;
	}
	if (close(fd) || rename(tmp, p)) {
		int e = -errno;
		unlink(tmp);
		return e;
	}
	mount_notify_query(d->m, name);
	return 0;
}

/* NAME's results on disk, their data and their names, before NAME.done
 * is written: writeback of every file is started first and then waited
 * for, so that the file system commits them together. The stream is left
 * out: what it holds is NAME.answer's. 0 or -errno. */
static int results_durable(struct daemon *d, const char *name)
{
	int fds[N_RESULT_SUFFIXES], n = 0, rc = 0;
	for (size_t i = 0; i < N_RESULT_SUFFIXES; i++) {
		const char *sfx = daemon_result_suffixes[i];
		char p[4600];
		if (!strcmp(sfx, ".done") || !strcmp(sfx, ".stream"))
			continue;
		qpath(d, name, sfx, p, sizeof p);
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* not a result of this query */
		sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
		fds[n++] = fd;
	}
	for (int i = 0; i < n; i++) {
		if (fdatasync(fds[i]) && !rc)
			rc = -errno;
		close(fds[i]);
	}
	int dfd = open(d->sp.queries, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd))
		rc = rc ? rc : -errno;
	if (dfd >= 0)
		close(dfd);
	return rc;
}

void query_remove_results(struct daemon *d, const char *name)
{
	for (size_t i = 0; i < N_RESULT_SUFFIXES; i++) {
		char p[4600];
		qpath(d, name, daemon_result_suffixes[i], p, sizeof p);
		if (!unlink(p))
			mount_notify_query(d->m, name);
	}
}

struct request {
	char *q;
	int k, max_tokens;
	float temperature, top_p;
	uint64_t seed;
	int has_seed;
	enum { MODE_RAG, MODE_SEARCH, MODE_GENERATE } mode;
	json_t *json; /* the request as given (for NAME.json) */
};

/* Parse NAME's bytes: a JSON object, or plain text (the question). */
static int parse_request(const char *buf, size_t len, struct request *r, char *err, size_t errsz)
{
	memset(r, 0, sizeof *r);
	r->k = 5;
	r->max_tokens = 256;
	r->temperature = 0.6f;
	r->top_p = 0.95f;
	size_t i = 0;
	while (i < len && (buf[i] == ' ' || buf[i] == '\t' || buf[i] == '\n' || buf[i] == '\r'))
		i++;
	if (i == len) {
		snprintf(err, errsz, "the request is empty: write a question, or a JSON object "
				     "such as {\"q\": \"...\"}");
		return -EINVAL;
	}
	if (memchr(buf, 0, len)) {
		snprintf(err, errsz, "the request contains a NUL byte: write the question as text");
		return -EINVAL;
	}
	if (buf[i] != '{') {
		size_t e = len;
		while (e > i && (buf[e - 1] == ' ' || buf[e - 1] == '\t' || buf[e - 1] == '\n' ||
				 buf[e - 1] == '\r'))
			e--;
		r->q = strndup(buf + i, e - i);
		r->json = json_pack("{s:s%}", "q", buf + i, e - i);
		return r->q && r->json ? 0 : -ENOMEM;
	}
	json_error_t je;
	json_t *j = json_loadb(buf, len, 0, &je);
	if (!j) {
		snprintf(err, errsz, "the request is not valid JSON: %s at line %d, column %d",
			 je.text, je.line, je.column);
		return -EINVAL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		snprintf(err, errsz, "the request must be a JSON object such as {\"q\": \"...\"}");
		return -EINVAL;
	}
	r->json = j;
	const char *key;
	json_t *v;
	json_object_foreach(j, key, v) {
		if (!strcmp(key, "q")) {
			if (!json_is_string(v) || !json_string_length(v)) {
				snprintf(err, errsz, "\"q\" must be a non-empty string: the question");
				return -EINVAL;
			}
			r->q = strdup(json_string_value(v));
		} else if (!strcmp(key, "k")) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 50) {
				snprintf(err, errsz, "\"k\" must be an integer from 1 to 50 (sources to retrieve)");
				return -EINVAL;
			}
			r->k = (int)json_integer_value(v);
		} else if (!strcmp(key, "max_tokens")) {
			if (!json_is_integer(v) || json_integer_value(v) < 1 ||
			    json_integer_value(v) > MAX_TOKENS_LIMIT) {
				snprintf(err, errsz, "\"max_tokens\" must be an integer from 1 to %d",
					 MAX_TOKENS_LIMIT);
				return -EINVAL;
			}
			r->max_tokens = (int)json_integer_value(v);
		} else if (!strcmp(key, "temperature")) {
			if (!json_is_number(v) || json_number_value(v) < 0 || json_number_value(v) > 10) {
				snprintf(err, errsz, "\"temperature\" must be a number from 0 to 10 (0: greedy)");
				return -EINVAL;
			}
			r->temperature = (float)json_number_value(v);
		} else if (!strcmp(key, "top_p")) {
			if (!json_is_number(v) || json_number_value(v) <= 0 || json_number_value(v) > 1) {
				snprintf(err, errsz, "\"top_p\" must be a number above 0 and at most 1");
				return -EINVAL;
			}
			r->top_p = (float)json_number_value(v);
		} else if (!strcmp(key, "seed")) {
			if (!json_is_integer(v) || json_integer_value(v) < 0) {
				snprintf(err, errsz, "\"seed\" must be a non-negative integer");
				return -EINVAL;
			}
			r->seed = (uint64_t)json_integer_value(v);
			r->has_seed = 1;
		} else if (!strcmp(key, "mode")) {
			const char *m = json_string_value(v);
			if (m && !strcmp(m, "rag"))
				r->mode = MODE_RAG;
			else if (m && !strcmp(m, "search"))
				r->mode = MODE_SEARCH;
			else if (m && !strcmp(m, "generate"))
				r->mode = MODE_GENERATE;
			else {
				snprintf(err, errsz, "\"mode\" must be \"rag\", \"search\" or \"generate\"");
				return -EINVAL;
			}
		} else {
			snprintf(err, errsz, "unknown field \"%s\": the fields are q, k, max_tokens, "
					     "temperature, top_p, seed and mode", key);
			return -EINVAL;
		}
	}
	if (!r->q) {
		snprintf(err, errsz, "the request has no \"q\": add the question, {\"q\": \"...\"}");
		return -EINVAL;
	}
	return 0;
}

static void request_free(struct request *r)
{
	free(r->q);
	json_decref(r->json);
}

struct run {
	struct daemon *d;
	struct query *q;
	struct request req;
	struct search_hit *hits;
	int n_hits;
	char *answer;
	size_t answer_len, answer_cap;
	int n_prompt, n_gen;
	double t_queue, t_retrieve, t_prefill, t_decode;
	const char *finish;
	char gen_name[256], emb_name[256];
	char err[600];
};

static int cancelled(struct run *r)
{
	pthread_mutex_lock(&r->d->mu);
	int c = r->q->cancel;
	pthread_mutex_unlock(&r->d->mu);
	return c;
}

static int answer_append(struct run *r, const char *s, size_t n)
{
	if (r->answer_len + n + 1 > r->answer_cap) {
		size_t cap = (r->answer_len + n + 1) * 2;
		char *p = realloc(r->answer, cap);
		if (!p)
			return -ENOMEM;
		r->answer = p;
		r->answer_cap = cap;
	}
	memcpy(r->answer + r->answer_len, s, n);
	r->answer_len += n;
	r->answer[r->answer_len] = 0;
	return 0;
}

static int retrieve(struct run *r)
{
	struct daemon *d = r->d;
	double t0 = daemon_now();
	struct search_opts so = {.k = r->req.k, .mode = SEARCH_HYBRID};
	pthread_rwlock_rdlock(&d->ix_lock);
	int rc = index_search(d->ix, r->req.q, &so, &r->hits, &r->n_hits, r->err, sizeof r->err);
	struct index_info in;
	index_info(d->ix, &in);
	snprintf(r->emb_name, sizeof r->emb_name, "%s", in.embedder);
	pthread_rwlock_unlock(&d->ix_lock);
	r->t_retrieve = daemon_now() - t0;
	if (rc)
		return rc;
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f)
		return -ENOMEM;
	for (int i = 0; i < r->n_hits; i++) {
		char line[8192];
		int l = search_hit_line(&r->hits[i], i + 1, line, sizeof line);
		fwrite(line, 1, l < (int)sizeof line ? (size_t)l : sizeof line - 1, f);
	}
	fclose(f);
	rc = query_write_result(d, r->q->name, ".hits", buf ? buf : "", n);
	free(buf);
	return rc;
}

/* The user message: the numbered sources, then the question. Sources are
 * dropped from the end until the prompt fits the context. */
static char *user_message(struct run *r, int n_src)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f)
		return NULL;
	if (n_src) {
		fprintf(f, "Sources:\n");
		for (int i = 0; i < n_src; i++)
			fprintf(f, "[%d] (%s)\n%s\n\n", i + 1, r->hits[i].doc, r->hits[i].text);
	}
	fprintf(f, "Question: %s", r->req.q);
	fclose(f);
	return buf;
}

/* ---- generation: prepared by a worker, decoded by the batching loop ------ */

/* One query's generation. The worker fills it and hands it to gen_loop,
 * which prefills it, then takes one decode step of every running
 * generation of the same model per pass over the weights, and marks it
 * finished; the worker then writes the results. */
struct gen {
	struct run *r;
	struct genmodel *g;
	struct session *s;
	struct sampler *smp;
	int32_t *prompt;
	int n_prompt, n_ctx, sfd;
	int32_t next, prev;  /* the token to feed next; the one before */
	float *logits;       /* n_vocab: prefill's last row */
	double t_start;
	int finished, rc;
	struct gen *next_gen;
};

static int gen_prepare(struct run *r, struct genmodel *g, struct gen *gn)
{
	struct daemon *d = r->d;
	struct model *m = g->m;
	const struct tok *tk = model_tok(m);
	const struct model_hparams *hp = model_hparams(m);
	snprintf(r->gen_name, sizeof r->gen_name, "%s", g->name);
	int n_ctx = hp->n_ctx_train < DEFAULT_CTX ? hp->n_ctx_train : DEFAULT_CTX;
	int32_t *toks = NULL;
	char *prompt = NULL;
	int n_src = r->req.mode == MODE_RAG ? r->n_hits : 0, n_prompt = 0;
	enum chat_tmpl tmpl = model_chat(m);
	for (;;) {
		char *user = user_message(r, n_src);
		if (!user)
			goto nomem;
		struct chat_msg msgs[2];
		int nm = 0;
		if (n_src)
			msgs[nm++] = (struct chat_msg){"system", SYSTEM_PROMPT};
		msgs[nm++] = (struct chat_msg){"user", user};
		int need = chat_apply(tmpl, msgs, nm, 1, NULL, 0);
		free(prompt);
		prompt = need >= 0 ? malloc((size_t)need + 1) : NULL;
		if (prompt)
			chat_apply(tmpl, msgs, nm, 1, prompt, (size_t)need + 1);
		free(user);
		if (!prompt)
			goto nomem;
		size_t pl = strlen(prompt);
		free(toks);
		int64_t k = tok_encode_prompt(tk, prompt, pl, tmpl != CHAT_NONE, &toks);
		if (k == -ENOMEM)
			goto nomem;
		if (k < 0 || k > INT32_MAX) {
			snprintf(r->err, sizeof r->err, "cannot tokenize the prompt");
			goto fail;
		}
		n_prompt = (int)k;
		if (n_prompt + r->req.max_tokens <= n_ctx || (n_src == 0 && n_prompt < n_ctx))
			break;
		if (!n_src) {
			snprintf(r->err, sizeof r->err, "the question is %d tokens; with max_tokens %d it "
				 "does not fit the context of %d: shorten it or lower max_tokens",
				 n_prompt, r->req.max_tokens, n_ctx);
			goto fail;
		}
		n_src--; /* the least relevant source goes */
	}
	free(prompt);
	prompt = NULL;
	r->n_prompt = n_prompt;
	struct sampler_params sp;
	sampler_defaults(&sp);
	sp.temp = r->req.temperature;
	sp.top_p = r->req.top_p;
	if (r->req.has_seed)
		sp.seed = r->req.seed;
	char e[512];
	memset(gn, 0, sizeof *gn);
	gn->r = r;
	gn->g = g;
	gn->sfd = -1;
	gn->prompt = toks;
	gn->n_prompt = n_prompt;
	gn->n_ctx = n_ctx;
	toks = NULL;
	if (session_new(m, n_ctx, KT_F16, d->pool, &gn->s, e, sizeof e)) {
		snprintf(r->err, sizeof r->err, "%s", e);
		return -ENOMEM;
	}
	if (!(gn->smp = sampler_new(&sp, hp->n_vocab)) ||
	    !(gn->logits = malloc((size_t)hp->n_vocab * sizeof *gn->logits)))
		return -ENOMEM;
	for (int i = 0; i < n_prompt; i++)
		sampler_accept(gn->smp, gn->prompt[i]);
	char sp_path[4600];
	qpath(d, r->q->name, ".stream", sp_path, sizeof sp_path);
	gn->sfd = open(sp_path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (gn->sfd < 0) {
		snprintf(r->err, sizeof r->err, "cannot write %s.stream: %s", r->q->name, strerror(errno));
		return -EIO;
	}
	mount_notify_query(d->m, r->q->name);
	return 0;
nomem:
	free(prompt);
	free(toks);
	return -ENOMEM;
fail:
	free(prompt);
	free(toks);
	return -EINVAL;
}

static void gen_free(struct gen *gn)
{
	if (gn->sfd >= 0)
		close(gn->sfd);
	free(gn->prompt);
	free(gn->logits);
	sampler_free(gn->smp);
	session_free(gn->s);
}

/* Take the token the logits choose; 1 when this generation is finished. */
static int gen_step(struct gen *gn, float *logits)
{
	struct run *r = gn->r;
	const struct tok *tk = model_tok(gn->g->m);
	const struct model_hparams *hp = model_hparams(gn->g->m);
	if (cancelled(r)) {
		r->finish = "cancelled";
		return 1;
	}
	for (int32_t i = tok_n_vocab(tk); i < hp->n_vocab; i++)
		logits[i] = -INFINITY; /* padding rows of the embedding */
	int32_t next = sampler_sample(gn->smp, logits);
	r->n_gen++;
	if (tok_is_eog(tk, next) || next == tok_bos(tk)) {
		r->finish = "stop";
		return 1;
	}
	sampler_accept(gn->smp, next);
	if (!tok_is_control(tk, next)) {
		char piece[256];
		int len = tok_piece(tk, next, piece, sizeof piece);
		const char *p = piece;
		if (len > (int)sizeof piece)
			len = sizeof piece;
		if (tok_kind(tk) == TOK_SPM && gn->prev == tok_bos(tk) && len > 0 && p[0] == ' ')
			p++, len--;
		if (len > 0) {
			if (write(gn->sfd, p, (size_t)len) != len || answer_append(r, p, (size_t)len)) {
				snprintf(r->err, sizeof r->err, "cannot write %s.stream: %s", r->q->name,
					 strerror(errno ? errno : ENOSPC));
				gn->rc = -EIO;
				return 1;
			}
			mount_stream_wake(r->d->m, r->q->name);
		}
	}
	gn->prev = next;
	gn->next = next;
	if (session_pos(gn->s) >= gn->n_ctx) {
		r->finish = "context";
		return 1;
	}
	if (r->n_gen >= r->req.max_tokens) {
		r->finish = "length";
		return 1;
	}
	return 0;
}

static void gen_finish(struct daemon *d, struct gen *gn)
{
	gn->r->t_decode = daemon_now() - gn->t_start;
	pthread_mutex_lock(&d->mu);
	struct gen **pp = &d->gen_active;
	while (*pp && *pp != gn)
		pp = &(*pp)->next_gen;
	if (*pp)
		*pp = gn->next_gen;
	gn->finished = 1;
	pthread_cond_broadcast(&d->cv_gen_done);
	pthread_mutex_unlock(&d->mu);
}

void *gen_loop(void *arg)
{
	struct daemon *d = arg;
	int max = session_batch_max();
	struct gen **batch = calloc((size_t)max, sizeof *batch);
	int32_t *tokens = calloc((size_t)max, sizeof *tokens);
	float *logits = NULL;
	size_t logits_cap = 0;
	for (;;) {
		pthread_mutex_lock(&d->mu);
		while (!d->gen_pending && !d->gen_active && !d->stopping)
			pthread_cond_wait(&d->cv_gen, &d->mu);
		if (!d->gen_pending && !d->gen_active && d->stopping) {
			pthread_mutex_unlock(&d->mu);
			break;
		}
		/* admit the waiting ones, oldest first, as far as a batch goes */
		int n_active = 0;
		for (struct gen *g = d->gen_active; g; g = g->next_gen)
			n_active++;
		struct gen *admit = NULL, **at = &admit;
		while (d->gen_pending && n_active < max) {
			struct gen *g = d->gen_pending;
			d->gen_pending = g->next_gen;
			g->next_gen = NULL;
			*at = g;
			at = &g->next_gen;
			n_active++;
		}
		pthread_mutex_unlock(&d->mu);
		/* prefill the new ones (each in one batch of its own) */
		while (admit) {
			struct gen *g = admit;
			admit = g->next_gen;
			double t0 = daemon_now();
			int rc = cancelled(g->r) ? 1 : session_forward(g->s, g->prompt, g->n_prompt, 0,
								       g->logits);
			g->t_start = daemon_now();
			g->r->t_prefill = g->t_start - t0;
			g->prev = g->prompt[g->n_prompt - 1];
			pthread_mutex_lock(&d->mu);
			g->next_gen = d->gen_active;
			d->gen_active = g;
			pthread_mutex_unlock(&d->mu);
			if (rc < 0) {
				snprintf(g->r->err, sizeof g->r->err, "prompt evaluation failed");
				g->rc = -EIO;
			}
			if (rc || gen_step(g, g->logits))
				gen_finish(d, g);
		}
		/* one decode step for every running generation, a batch per model */
		pthread_mutex_lock(&d->mu);
		struct gen *todo[256];
		int nt = 0;
		for (struct gen *g = d->gen_active; g && nt < 256; g = g->next_gen)
			todo[nt++] = g;
		pthread_mutex_unlock(&d->mu);
		while (nt > 0) {
			struct genmodel *gm = todo[0]->g;
			int nb = 0, rest = 0;
			for (int i = 0; i < nt; i++) {
				if (todo[i]->g == gm && nb < max) {
					batch[nb] = todo[i];
					tokens[nb++] = todo[i]->next;
				} else {
					todo[rest++] = todo[i];
				}
			}
			nt = rest;
			size_t vocab = (size_t)model_hparams(gm->m)->n_vocab;
			if (logits_cap < (size_t)nb * vocab) {
				free(logits);
				logits_cap = (size_t)max * vocab;
				logits = malloc(logits_cap * sizeof *logits);
			}
			struct session *ss[nb];
			for (int i = 0; i < nb; i++)
				ss[i] = batch[i]->s;
			int rc = logits ? session_decode_batch(ss, tokens, nb, logits) : -ENOMEM;
			for (int i = 0; i < nb; i++) {
				if (rc) {
					snprintf(batch[i]->r->err, sizeof batch[i]->r->err,
						 "decoding failed: %s", strerror(-rc));
					batch[i]->rc = rc;
					gen_finish(d, batch[i]);
				} else if (gen_step(batch[i], logits + (size_t)i * vocab)) {
					gen_finish(d, batch[i]);
				}
			}
		}
	}
	free(batch);
	free(tokens);
	free(logits);
	return NULL;
}

/* Prepare the generation, hand it to the batching loop, wait for its end. */
static int generate(struct run *r, struct genmodel *g)
{
	struct daemon *d = r->d;
	struct gen gn;
	memset(&gn, 0, sizeof gn);
	gn.sfd = -1;
	int rc = gen_prepare(r, g, &gn);
	if (!rc) {
		pthread_mutex_lock(&d->mu);
		struct gen **pp = &d->gen_pending;
		while (*pp)
			pp = &(*pp)->next_gen;
		*pp = &gn;
		pthread_cond_broadcast(&d->cv_gen);
		while (!gn.finished)
			pthread_cond_wait(&d->cv_gen_done, &d->mu);
		pthread_mutex_unlock(&d->mu);
		rc = gn.rc;
	}
	gen_free(&gn);
	return rc;
}

static json_t *result_json(struct run *r, const char *status)
{
	json_t *hits = json_array();
	for (int i = 0; i < r->n_hits; i++)
		json_array_append_new(hits, json_pack("{s:i, s:f, s:s, s:I, s:I, s:s}", "rank", i + 1,
						      "score", r->hits[i].score, "doc", r->hits[i].doc,
						      "start", (json_int_t)r->hits[i].start,
						      "end", (json_int_t)r->hits[i].end,
						      "snippet", r->hits[i].snippet ? r->hits[i].snippet : ""));
	json_t *j = json_pack("{s:s, s:O, s:o, s:{s:s, s:s}, s:{s:i, s:i},"
			      " s:{s:f, s:f, s:f, s:f}}",
			      "status", status, "request", r->req.json ? r->req.json : json_null(),
			      "hits", hits, "models", "generator", r->gen_name, "embedder", r->emb_name,
			      "tokens", "prompt", r->n_prompt, "generated", r->n_gen,
			      "timings", "queue", r->t_queue, "retrieve", r->t_retrieve,
			      "prefill", r->t_prefill, "decode", r->t_decode);
	if (!j)
		return NULL;
	if (r->answer || !strcmp(status, "done"))
		json_object_set_new(j, "answer", json_string(r->answer ? r->answer : ""));
	if (r->finish)
		json_object_set_new(j, "finish_reason", json_string(r->finish));
	if (r->err[0])
		json_object_set_new(j, "error", json_string(r->err));
	return j;
}

static int write_json(struct run *r, const char *status)
{
	json_t *j = result_json(r, status);
	char *s = j ? json_dumps(j, JSON_INDENT(2)) : NULL;
	json_decref(j);
	if (!s)
		return -ENOMEM;
	size_t n = strlen(s);
	char *t = realloc(s, n + 2);
	if (t) {
		s = t;
		s[n++] = '\n';
		s[n] = 0;
	}
	int rc = query_write_result(r->d, r->q->name, ".json", s, n);
	free(s);
	return rc;
}

/* The answer with its sources listed, so every [n] can be followed. */
static int write_answer(struct run *r)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	if (!f)
		return -ENOMEM;
	fputs(r->answer ? r->answer : "", f);
	if (!r->answer_len || r->answer[r->answer_len - 1] != '\n')
		fputc('\n', f);
	if (r->req.mode == MODE_RAG && r->n_hits) {
		fputs("\nSources:\n", f);
		for (int i = 0; i < r->n_hits; i++)
			fprintf(f, "[%d] %s %zu-%zu\n", i + 1, r->hits[i].doc, r->hits[i].start,
				r->hits[i].end);
	}
	fclose(f);
	int rc = query_write_result(r->d, r->q->name, ".answer", buf, n);
	free(buf);
	return rc;
}

static void finish(struct run *r, enum qstate st)
{
	struct daemon *d = r->d;
	struct query *q = r->q;
	int cancel;
	pthread_mutex_lock(&d->mu);
	cancel = q->cancel;
	pthread_mutex_unlock(&d->mu);
	if (cancel == 1) {
		/* rm NAME: nothing of it stays */
		query_remove_results(d, q->name);
		st = Q_CANCELLED;
	} else if (cancel == 2) {
		/* unmount: left queued for the next start (no .done) */
		query_write_result(d, q->name, ".status", "queued\n", 7);
		st = Q_QUEUED;
	} else {
		const char *word = st == Q_DONE ? "done\n" : "error\n";
		if (st == Q_ERROR) {
			char line[700];
			int n = snprintf(line, sizeof line, "%s\n", r->err[0] ? r->err : "failed");
			query_write_result(d, q->name, ".error", line, (size_t)n);
		}
		write_json(r, st == Q_DONE ? "done" : "error");
		query_write_result(d, q->name, ".status", word, strlen(word));
	}
	pthread_mutex_lock(&d->mu);
	struct query **pp = &d->active;
	while (*pp && *pp != q)
		pp = &(*pp)->next;
	if (*pp)
		*pp = q->next;
	if (st == Q_DONE) {
		d->n_done++;
		hist_add(&d->h_queue, r->t_queue);
		hist_add(&d->h_retrieve, r->t_retrieve);
		if (r->n_prompt) {
			hist_add(&d->h_prefill, r->t_prefill);
			hist_add(&d->h_decode, r->t_decode);
		}
		d->tokens_prompt += (uint64_t)r->n_prompt;
		d->tokens_generated += (uint64_t)r->n_gen;
		d->decode_s += r->t_decode;
	} else if (st == Q_ERROR) {
		d->n_failed++;
	} else if (st == Q_CANCELLED) {
		d->n_cancelled++;
	}
	pthread_mutex_unlock(&d->mu);
	/* last: NAME.done, after every other file is on disk, and the
	 * stream's readers */
	if (st == Q_DONE || st == Q_ERROR) {
		int rc = results_durable(d, q->name);
		if (rc)
			daemon_error(d, "queries/%s: results not synced to disk: %s", q->name,
				     strerror(-rc));
		query_write_result(d, q->name, ".done", "", 0);
	}
	mount_stream_wake(d->m, q->name);
	free(q);
}

static void run_query(struct daemon *d, struct query *q)
{
	struct run r = {.d = d, .q = q};
	r.t_queue = daemon_now() - q->t_submit;
	query_write_result(d, q->name, ".status", "running\n", 8);
	char p[4600];
	qpath(d, q->name, "", p, sizeof p);
	int fd = open(p, O_RDONLY | O_CLOEXEC);
	struct stat st;
	char *buf = NULL;
	enum qstate out = Q_ERROR;
	if (fd < 0 || fstat(fd, &st)) {
		snprintf(r.err, sizeof r.err, "cannot read the request: %s", strerror(errno));
		goto done;
	}
	if (st.st_size > MAX_REQUEST) {
		snprintf(r.err, sizeof r.err, "the request is %lld bytes; the limit is %d: shorten it",
			 (long long)st.st_size, MAX_REQUEST);
		goto done;
	}
	buf = malloc((size_t)st.st_size + 1);
	ssize_t n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
	if (n < 0) {
		snprintf(r.err, sizeof r.err, "cannot read the request: %s", strerror(errno));
		goto done;
	}
	if (parse_request(buf, (size_t)n, &r.req, r.err, sizeof r.err))
		goto done;
	if (r.req.mode != MODE_GENERATE && retrieve(&r)) {
		if (!r.err[0])
			snprintf(r.err, sizeof r.err, "search failed");
		goto done;
	}
	if (r.req.mode == MODE_SEARCH) {
		out = Q_DONE;
		goto done;
	}
	if (cancelled(&r))
		goto done;
	/* the generator: wait while the first one loads */
	struct genmodel *g;
	for (;;) {
		g = daemon_gen_acquire(d);
		pthread_mutex_lock(&d->mu);
		int wait = !g && (d->loading || d->gen_want[0]) && !d->stopping && !q->cancel;
		pthread_mutex_unlock(&d->mu);
		if (!wait)
			break;
		usleep(50000);
	}
	if (!g) {
		snprintf(r.err, sizeof r.err, "no generator model: copy a GGUF (llama, qwen2 or gemma3) into "
				 "models/ or write a model's name into models/generator");
		goto done;
	}
	int rc = generate(&r, g);
	daemon_gen_release(d, g);
	if (rc) {
		if (!r.err[0])
			snprintf(r.err, sizeof r.err, "generation failed: %s", strerror(-rc));
		goto done;
	}
	if (!cancelled(&r) && write_answer(&r)) {
		snprintf(r.err, sizeof r.err, "cannot write %s.answer", q->name);
		goto done;
	}
	out = Q_DONE;
done:
	if (fd >= 0)
		close(fd);
	free(buf);
	finish(&r, out);
	search_hits_free(r.hits, r.n_hits);
	free(r.answer);
	request_free(&r.req);
}

void *query_worker(void *arg)
{
	struct daemon *d = arg;
	pthread_mutex_lock(&d->mu);
	while (!d->stopping) {
		struct query *q = d->active;
		while (q && q->state != Q_QUEUED)
			q = q->next;
		if (!q) {
			pthread_cond_wait(&d->cv_q, &d->mu);
			continue;
		}
		q->state = Q_RUNNING;
		pthread_mutex_unlock(&d->mu);
		run_query(d, q);
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}
