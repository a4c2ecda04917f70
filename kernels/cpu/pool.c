/*
 * The thread pool behind kt_matmul: persistent workers, the caller being
 * thread 0.
 *
 * A decode step calls kt_pool_run a few hundred times per token, so
 * dispatch must cost microseconds, not a thread creation. The caller
 * publishes (fn, ctx) and bumps a generation counter; workers spin on it
 * for a short while (the next matmul usually follows within microseconds)
 * and then sleep on a condition variable. Completion is a countdown the
 * caller spins on, sleeping the same way if it takes long.
 *
 * Lost wake-ups are excluded Dekker-style with sequentially consistent
 * atomics: a sleeper registers (sleepers++, caller_sleeping = 1) and then
 * re-checks the condition under the mutex; the waker changes the condition
 * and then checks for a registered sleeper before signalling under the
 * same mutex. One of the two always sees the other.
 *
 * Thread-safety: one kt_pool_run at a time per pool (not reentrant; a task
 * must not call kt_pool_run on its own pool).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "kernels/kernels.h"

/* Busy-wait before sleeping: SPIN_PAUSE rounds of PAUSE (tens of
 * microseconds, longer than the gap between two matmuls of a decode step),
 * then SPIN_YIELD rounds of sched_yield(), which hand the core to a thread
 * that has work when there are more threads than cores (a pure spin would
 * keep the one thread everybody waits for off the CPU for a time slice). */
#define SPIN_PAUSE 4000
#define SPIN_YIELD 64

struct worker {
	struct kt_pool *pool;
	int ith;
};

struct kt_pool {
	int n; /* threads, the caller included */
	pthread_t *tids;
	struct worker *workers;

	/* The current task: written by the caller before the generation bump
	 * (release), read by workers after seeing it (acquire). */
	kt_task_fn fn;
	void *ctx;

	atomic_uint gen;
	atomic_int pending; /* workers yet to finish the current generation */
	atomic_int stop;
	atomic_int sleepers;
	atomic_int caller_sleeping;

	pthread_mutex_t mu;
	pthread_cond_t wake; /* workers: a new generation */
	pthread_cond_t done; /* caller: pending reached 0 */
};

/* One round of busy-waiting; 0 once it is time to sleep instead. */
static inline int spin(int *round)
{
	int r = (*round)++;
	if (r < SPIN_PAUSE) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
		return 1;
	}
	if (r < SPIN_PAUSE + SPIN_YIELD) {
		sched_yield();
		return 1;
	}
	return 0;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct kt_pool *p = w->pool;
	unsigned seen = 0;

	for (;;) {
		unsigned g;
		int spins = 0;

		while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
			if (spin(&spins))
				continue;
			pthread_mutex_lock(&p->mu);
			atomic_fetch_add(&p->sleepers, 1);
			while ((g = atomic_load(&p->gen)) == seen)
				pthread_cond_wait(&p->wake, &p->mu);
			atomic_fetch_sub(&p->sleepers, 1);
			pthread_mutex_unlock(&p->mu);
			break;
		}
		seen = g;
		if (atomic_load_explicit(&p->stop, memory_order_acquire))
			break;

		p->fn(p->ctx, w->ith, p->n);

		if (atomic_fetch_sub(&p->pending, 1) == 1 && atomic_load(&p->caller_sleeping)) {
			pthread_mutex_lock(&p->mu);
			pthread_cond_signal(&p->done);
			pthread_mutex_unlock(&p->mu);
		}
	}
	return NULL;
}

static void wake_workers(struct kt_pool *p)
{
	if (atomic_load(&p->sleepers) > 0) {
		pthread_mutex_lock(&p->mu);
		pthread_cond_broadcast(&p->wake);
		pthread_mutex_unlock(&p->mu);
	}
}

struct kt_pool *kt_pool_create(int n_threads)
{
	if (n_threads <= 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		n_threads = c > 0 ? (int)c : 1;
	}
	struct kt_pool *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->n = n_threads;
	p->tids = calloc((size_t)n_threads, sizeof(*p->tids));
	p->workers = calloc((size_t)n_threads, sizeof(*p->workers));
	if (!p->tids || !p->workers)
		goto fail_mem;
	atomic_init(&p->gen, 0);
	atomic_init(&p->pending, 0);
	atomic_init(&p->stop, 0);
	atomic_init(&p->sleepers, 0);
	atomic_init(&p->caller_sleeping, 0);
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->wake, NULL);
	pthread_cond_init(&p->done, NULL);

	for (int i = 1; i < n_threads; i++) {
		p->workers[i].pool = p;
		p->workers[i].ith = i;
		int err = pthread_create(&p->tids[i], NULL, worker_main, &p->workers[i]);
		if (err) {
			/* stop the ones already started, then fail */
			p->n = i;
			kt_pool_destroy(p);
			errno = err;
			return NULL;
		}
	}
	return p;

fail_mem:
	free(p->tids);
	free(p->workers);
	free(p);
	errno = ENOMEM;
	return NULL;
}

void kt_pool_destroy(struct kt_pool *pool)
{
	if (!pool)
		return;
	atomic_store_explicit(&pool->stop, 1, memory_order_release);
	atomic_fetch_add(&pool->gen, 1);
	pthread_mutex_lock(&pool->mu);
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->mu);
	for (int i = 1; i < pool->n; i++)
		pthread_join(pool->tids[i], NULL);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->wake);
	pthread_cond_destroy(&pool->done);
	free(pool->tids);
	free(pool->workers);
	free(pool);
}

int kt_pool_threads(const struct kt_pool *pool)
{
	return pool ? pool->n : 1;
}

void kt_pool_run(struct kt_pool *pool, kt_task_fn fn, void *ctx)
{
	if (!pool || pool->n == 1) {
		fn(ctx, 0, 1);
		return;
	}
	struct kt_pool *p = pool;

	p->fn = fn;
	p->ctx = ctx;
	atomic_store_explicit(&p->pending, p->n - 1, memory_order_relaxed);
	atomic_fetch_add(&p->gen, 1); /* seq_cst: publishes fn, ctx, pending */
	wake_workers(p);

	fn(ctx, 0, p->n);

	int spins = 0;
	while (atomic_load_explicit(&p->pending, memory_order_acquire) != 0) {
		if (spin(&spins))
			continue;
		pthread_mutex_lock(&p->mu);
		atomic_store(&p->caller_sleeping, 1);
		while (atomic_load(&p->pending) != 0)
			pthread_cond_wait(&p->done, &p->mu);
		atomic_store(&p->caller_sleeping, 0);
		pthread_mutex_unlock(&p->mu);
		break;
	}
}
