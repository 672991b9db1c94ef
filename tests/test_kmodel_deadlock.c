/*
 * The fault ordering and deadlock detection, exhaustively: every kpager
 * hierarchy below, every operation, and with the ordering switched off
 * every order in which the operation's kernel pages can be requested.
 *
 * With the ordering on, no operation deadlocks or is aborted.  With it
 * off, every deadlock is detected and aborted (KM_EDEADLK), the model is
 * left as it was (no frame leaks: the kernel's, sigma0's, the pool's and
 * every kpager's counts are unchanged), and km_check holds; nothing hangs,
 * since every case returns.
 *
 * Hierarchies (C is the client whose operation needs kernel pages):
 *   depth 1   C's kpager K1 runs in T1, whose memory is the kernel pool's
 *   depth 2   T1's own kernel memory comes from K2 in T2
 *   depth 3   ... and T2's from K3 in T3
 *   pager     depth 1, and T1 (the kpager's task) is also C's user pager:
 *             a kpager that is its own client's pager (the paper's case)
 *   mutual    depth 1, and T1's kernel memory comes from K2 running in C:
 *             a kpager paged by its own client
 * Operations:
 *   touch     a first touch of a new 4 MiB region (with a user pager: the
 *             fault, then the pager's map)
 *   thread    the first thread of a task (UTCB and KTCB pages, and the
 *             UTCB area's page table and node table)
 *   map       another task maps a page into a new region of C
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "kmodel.h"
#include "kmtest.h"
#include "pagers.h"

#define REGION 0x50000000u
#define MAXN 6u

enum hier { H_DEPTH1, H_DEPTH2, H_DEPTH3, H_PAGER, H_MUTUAL, H_COUNT };
enum op { O_TOUCH, O_THREAD, O_MAP, O_COUNT };

static const char *const hier_name[] = { "depth 1", "depth 2", "depth 3",
                                         "pager", "mutual" };
static const char *const op_name[] = { "touch", "thread", "map" };

struct world {
	struct km *km;
	km_task_t c, c2, src, t1;
	km_thread_t th;
	km_kpager_t kp[3];
	uint32_t nkp;
};

/* A kpager (fcfs, its pool at `base`) running in a new task whose own
 * kernel memory comes from `above`. */
static km_kpager_t kpager_in_new_task(struct world *w, km_kpager_t above,
                                      km_task_t *task)
{
	km_kpager_t k;
	char why[128];

	OK(km_task_create(w->km, above, task));
	OK(km_kpager_create(w->km, &kp_fcfs_ops, *task,
	                    "frames=40,base=0x10000000", &k, why, sizeof why));
	w->kp[w->nkp++] = k;
	return k;
}

static void build(struct world *w, enum hier h, bool unordered)
{
	struct km_config c = km_config_default(2048);
	km_kpager_t k1, above = KM_ROOT_KPAGER;
	km_thread_t t0;
	km_task_t t;
	char why[128];

	memset(w, 0, sizeof *w);
	c.kmem = KM_KMEM_KPAGER;
	OK(km_create(&c, &w->km, why, sizeof why));
	/* The upper levels first: K3, K2, then K1. */
	for (int level = h == H_DEPTH3 ? 2 : h == H_DEPTH2 ? 1 : 0;
	     level > 0; level--)
		above = kpager_in_new_task(w, above, &t);
	k1 = kpager_in_new_task(w, above, &w->t1);
	OK(km_task_create(w->km, k1, &w->c));
	OK(km_task_create(w->km, k1, &w->c2));
	OK(km_thread_create(w->km, w->c, h == H_PAGER ? w->t1 : 0, &w->th));
	if (h == H_MUTUAL) {
		km_kpager_t k2;

		OK(km_kpager_create(w->km, &kp_fcfs_ops, w->c,
		                    "frames=24,base=0x60000000", &k2, why,
		                    sizeof why));
		OK(km_task_set_kpager(w->km, w->t1, k2));
	}
	/* A mapper with a page of its own, and the default pager's pool
	 * grown beforehand, so the operation's own requests are the only
	 * ones it makes. */
	OK(km_task_create(w->km, KM_ROOT_KPAGER, &w->src));
	OK(km_sigma0_map(w->km, w->src, 0x08048000u, 1, KM_RWX));
	OK(km_sigma0_map(w->km, w->t1, 0x08048000u, 1, KM_RWX));
	OK(km_thread_create(w->km, w->src, 0, &t0));
	OK(km_touch(w->km, t0, 0x40000000u, KM_ACC_WRITE));
	CHECK(w->km);
	/* The ordering is switched only for the operation under test. */
	km_set_fault_ordering(w->km, !unordered);
}

static int run_op(struct world *w, enum op o, enum hier h)
{
	km_thread_t th;
	int err;

	switch (o) {
	case O_TOUCH:
		err = km_touch(w->km, w->th, REGION, KM_ACC_WRITE);
		if (h != H_PAGER || err != KM_ENOMAP)
			return err;
		/* The user pager (the kpager's task) answers by mapping. */
		return km_map(w->km, w->t1, km_fpage(0x08048000u, 12, KM_RWX),
		              w->c, REGION, KM_MAP, NULL);
	case O_THREAD:
		return km_thread_create(w->km, w->c2, 0, &th);
	default:
		return km_map(w->km, w->src, km_fpage(0x08048000u, 12, KM_RWX),
		              w->c, REGION, KM_MAP, NULL);
	}
}

/* What must not change when an operation is aborted. */
struct counts {
	struct km_stats st;
	uint32_t lent[3];
};

static void counts_of(struct world *w, struct counts *c)
{
	memset(c, 0, sizeof *c);
	km_stats(w->km, &c->st);
	c->st.kfaults = c->st.ufaults = c->st.denied = c->st.aborts = 0;
	for (uint32_t i = 0; i < w->nkp; i++) {
		struct km_kpager_stats ks;

		OK(km_kpager_stats(w->km, w->kp[i], &ks));
		c->lent[i] = ks.lent;
	}
}

/* Counts the kernel pages an operation obtains (its request list). */
static void count_sink(void *ctx, const struct km_fault_rec *r)
{
	uint32_t *n = ctx;

	if ((r->kind == KM_FK_KERNEL || r->kind == KM_FK_KPOOL) &&
	    r->decision == KM_D_MAPPED)
		(*n)++;
}

static bool next_perm(uint8_t *p, uint32_t n)
{
	uint32_t i = n - 1, j = n - 1;

	while (i > 0 && p[i - 1] >= p[i])
		i--;
	if (i == 0)
		return false;
	while (p[j] <= p[i - 1])
		j--;
	uint8_t t = p[i - 1];
	p[i - 1] = p[j];
	p[j] = t;
	for (j = n - 1; i < j; i++, j--) {
		t = p[i];
		p[i] = p[j];
		p[j] = t;
	}
	return true;
}

static void test_deadlock_exhaustive(void **state)
{
	uint32_t cases = 0, deadlocks = 0, ordered = 0;
	uint32_t dl[H_COUNT][O_COUNT] = { { 0 } };
	clock_t t0 = clock();

	(void)state;
	for (int h = 0; h < H_COUNT; h++) {
		for (int o = 0; o < O_COUNT; o++) {
			struct world w;
			struct km_stats st;
			uint32_t n = 0;
			uint8_t perm[MAXN];

			/* Ordering on: it goes through, nothing aborted. */
			build(&w, (enum hier)h, false);
			km_set_fault_sink(w.km, count_sink, &n);
			if (run_op(&w, (enum op)o, (enum hier)h) != KM_OK)
				fail_msg("%s/%s failed with the ordering on",
				         hier_name[h], op_name[o]);
			km_stats(w.km, &st);
			assert_int_equal(st.aborts, 0);
			CHECK(w.km);
			km_destroy(w.km);
			cases++;
			ordered++;
			assert_true(n >= 1 && n <= MAXN);

			/* Ordering off: every order of its n requests. */
			for (uint32_t i = 0; i < n; i++)
				perm[i] = (uint8_t)i;
			do {
				struct counts before, after;
				int err;

				build(&w, (enum hier)h, true);
				counts_of(&w, &before);
				OK(km_set_request_order(w.km, perm, n));
				err = run_op(&w, (enum op)o, (enum hier)h);
				if (err != KM_OK && err != KM_EDEADLK)
					fail_msg("%s/%s: %s", hier_name[h],
					         op_name[o], km_strerror(err));
				CHECK(w.km);
				if (err == KM_EDEADLK) {
					counts_of(&w, &after);
					assert_memory_equal(&before, &after,
					                    sizeof before);
					km_stats(w.km, &st);
					assert_true(st.aborts >= 1);
					deadlocks++;
					dl[h][o]++;
				}
				km_destroy(w.km);
				cases++;
			} while (next_perm(perm, n));
		}
	}
	print_message("deadlock suite: %u cases (%u with the ordering on), %u "
	              "deadlocks detected with it off, %.2f s\n", cases,
	              ordered, deadlocks,
	              (double)(clock() - t0) / CLOCKS_PER_SEC);
	for (int h = 0; h < H_COUNT; h++)
		print_message("  %-8s touch %3u  thread %3u  map %3u "
		              "deadlocks\n", hier_name[h], dl[h][O_TOUCH],
		              dl[h][O_THREAD], dl[h][O_MAP]);
	/* What the ordering prevents: the paper's case (a kpager that is
	 * its client's pager mapping to it), and pages entered before what
	 * they rely on. */
	assert_true(dl[H_PAGER][O_TOUCH] > 0);
	assert_true(dl[H_DEPTH1][O_THREAD] > 0);
	assert_true(dl[H_DEPTH3][O_THREAD] > 0);
}

/* The paper's scenario, step by step: a kpager whose map reply, sent to
 * resolve its client's fault, itself needs kernel memory from it. */
static void test_deadlock_pager_reply_needs_memory(void **state)
{
	struct world w;
	struct km_kpager_stats ks;
	struct km_mapping m;

	(void)state;
	/* Ordering off: the map faults to the mapper's own kpager. */
	build(&w, H_PAGER, true);
	assert_int_equal(km_touch(w.km, w.th, REGION, KM_ACC_WRITE),
	                 KM_ENOMAP);
	assert_int_equal(km_map(w.km, w.t1, km_fpage(0x08048000u, 12, KM_RWX),
	                        w.c, REGION, KM_MAP, NULL), KM_EDEADLK);
	OK(km_kpager_stats(w.km, w.kp[0], &ks));
	assert_int_equal(ks.aborted, 1);
	assert_int_equal(km_lookup(w.km, w.c, REGION, &m), KM_ENOMAP);
	CHECK(w.km);
	km_destroy(w.km);

	/* Ordering on: the fault brings the kernel pages first, while the
	 * kpager is free to answer; the map then needs none. */
	build(&w, H_PAGER, false);
	assert_int_equal(km_touch(w.km, w.th, REGION, KM_ACC_WRITE),
	                 KM_ENOMAP);
	OK(km_map(w.km, w.t1, km_fpage(0x08048000u, 12, KM_RWX), w.c, REGION,
	          KM_MAP, NULL));
	OK(km_touch(w.km, w.th, REGION, KM_ACC_WRITE));
	OK(km_kpager_stats(w.km, w.kp[0], &ks));
	assert_int_equal(ks.aborted, 0);
	CHECK(w.km);
	km_destroy(w.km);
}

/* A deadlock leaves unrelated subsystems alone: another kpager's client
 * works on, before and after. */
static void test_deadlock_unrelated_unaffected(void **state)
{
	struct world w;
	km_task_t ot, oc;
	km_kpager_t ok;
	km_thread_t oth;
	struct km_kpager_stats before, after;
	char why[128];

	(void)state;
	build(&w, H_PAGER, false);
	OK(km_task_create(w.km, KM_ROOT_KPAGER, &ot));
	OK(km_kpager_create(w.km, &kp_fcfs_ops, ot, "frames=16", &ok, why,
	                    sizeof why));
	OK(km_task_create(w.km, ok, &oc));
	OK(km_thread_create(w.km, oc, 0, &oth));
	OK(km_touch(w.km, oth, 0x08048000u, KM_ACC_WRITE));
	OK(km_kpager_stats(w.km, ok, &before));
	km_set_fault_ordering(w.km, false);
	assert_int_equal(km_touch(w.km, w.th, REGION, KM_ACC_WRITE),
	                 KM_ENOMAP);
	assert_int_equal(km_map(w.km, w.t1, km_fpage(0x08048000u, 12, KM_RWX),
	                        w.c, REGION, KM_MAP, NULL), KM_EDEADLK);
	OK(km_kpager_stats(w.km, ok, &after));
	assert_memory_equal(&before, &after, sizeof before);
	OK(km_touch(w.km, oth, 0x40000000u, KM_ACC_WRITE));
	CHECK(w.km);
	km_destroy(w.km);
}

/* The threads the kernel page faults of an operation were for. */
struct seen_faults {
	uint32_t n;
	km_thread_t thread[64];
};

static void seen_fault(void *ctx, const struct km_fault_rec *r)
{
	struct seen_faults *s = ctx;

	if (r->kind == KM_FK_KERNEL && s->n < 64)
		s->thread[s->n++] = r->thread;
}

/* A kpager that tells what operation its faults were for (kp_fault.op)
 * before it does what fcfs does. */
static uint64_t last_ops[2];

static void op_fault(void *state, const struct kp_fault *f,
                     struct kp_decision *d)
{
	last_ops[0] = last_ops[1];
	last_ops[1] = f->op;
	kp_fcfs_ops.fault(state, f, d);
}

/*
 * Nothing an operation leaves behind decides the next one.  The model
 * once kept the thread and the mapper of an earlier call: a task's
 * deletion that needed a node table back from the kpager running in the
 * task that had made the last map was aborted as a deadlock (nobody
 * waited on that kpager), and kernel page faults were put down to
 * whichever thread an earlier call had named (the fault records, and
 * what kpagers are told).  Found by the stress comparison beside chaos,
 * seed 227: the teardown's deletion failed with KM_EDEADLK.
 */
static void test_deadlock_none_left_over_from_earlier_calls(void **state)
{
	struct world w;
	struct km_kpager_stats ks;
	struct seen_faults seen = { 0 };
	km_thread_t th2;
	char why[128];

	(void)state;
	build(&w, H_DEPTH1, false);
	OK(km_touch(w.km, w.th, REGION, KM_ACC_WRITE));
	/* All K1 lent comes back to it: C's node table for REGION too. */
	for (uint32_t i = 0; i < 40; i++)
		(void)km_kpager_revoke(w.km, w.kp[0], 0x10000000u + i * 0x1000u,
		                       false);
	/* A thread made and gone, and a map by K1's own task T1. */
	OK(km_thread_create(w.km, w.src, 0, &th2));
	OK(km_thread_destroy(w.km, th2));
	OK(km_map(w.km, w.t1, km_fpage(0x08048000u, 12, KM_RWX), w.src,
	          0x50000000u, KM_MAP, NULL));

	/* C's touch of a new region: its faults are for C's thread. */
	km_set_fault_sink(w.km, seen_fault, &seen);
	OK(km_touch(w.km, w.th, REGION + 0x00400000u, KM_ACC_WRITE));
	assert_true(seen.n > 0);
	for (uint32_t i = 0; i < seen.n; i++)
		assert_int_equal(seen.thread[i], w.th);

	/* C's deletion brings its node table back from K1: for no thread,
	 * and no deadlock. */
	seen.n = 0;
	OK(km_task_destroy(w.km, w.c));
	assert_true(seen.n > 0);
	for (uint32_t i = 0; i < seen.n; i++)
		assert_int_equal(seen.thread[i], KM_NO_THREAD);
	OK(km_kpager_stats(w.km, w.kp[0], &ks));
	assert_int_equal(ks.aborted, 0);
	CHECK(w.km);
	km_destroy(w.km);

	/* kp_fault.op: one number for all faults of a call, a new one for
	 * the next call. */
	{
		static struct kp_ops ops;
		struct km_config c = km_config_default(1024);
		km_task_t kt, ct;
		km_kpager_t k;
		km_thread_t t;
		uint64_t first;

		ops = kp_fcfs_ops;
		ops.fault = op_fault;
		c.kmem = KM_KMEM_KPAGER;
		OK(km_create(&c, &w.km, why, sizeof why));
		OK(km_task_create(w.km, KM_ROOT_KPAGER, &kt));
		OK(km_kpager_create(w.km, &ops, kt, "frames=40", &k, why,
		                    sizeof why));
		OK(km_task_create(w.km, k, &ct));       /* PD and ND */
		assert_true(last_ops[0] != 0 && last_ops[0] == last_ops[1]);
		first = last_ops[1];
		OK(km_thread_create(w.km, ct, 0, &t));  /* UTCB, KTCB, ... */
		assert_true(last_ops[0] == last_ops[1] && last_ops[1] > first);
		first = last_ops[1];
		OK(km_touch(w.km, t, 0x08048000u, KM_ACC_WRITE));
		assert_true(last_ops[0] == last_ops[1] && last_ops[1] > first);
		km_destroy(w.km);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_deadlock_exhaustive),
		cmocka_unit_test(test_deadlock_pager_reply_needs_memory),
		cmocka_unit_test(test_deadlock_unrelated_unaffected),
		cmocka_unit_test(test_deadlock_none_left_over_from_earlier_calls),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
