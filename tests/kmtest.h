/*
 * Helpers shared by the kmodel tests (header only; include after
 * <cmocka.h> and "kmodel.h"): assertions that name the error they got,
 * the invariant check every step ends with, a fault-record log, snapshots
 * of what a failed operation must leave alone, and the seeded generator
 * of the randomized tests.
 */
#ifndef KPSIM_TESTS_KMTEST_H
#define KPSIM_TESTS_KMTEST_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline const char *kmt_err_name(int rc)
{
	return rc >= 0 && rc < KM_ERR_COUNT ? km_strerror(rc) : "?";
}

static inline void kmt_expect_rc(int got, int want, const char *expr,
                                 const char *file, int line)
{
	if (got != want)
		fail_msg("%s:%d: %s returned %d (%s), expected %d (%s)", file,
		         line, expr, got, kmt_err_name(got), want,
		         kmt_err_name(want));
}

#define OK(expr) kmt_expect_rc((expr), KM_OK, #expr, __FILE__, __LINE__)
#define ERR(expr, want) \
	kmt_expect_rc((expr), (want), #expr, __FILE__, __LINE__)

static inline void kmt_check_at(const struct km *km, const char *file,
                                int line)
{
	char why[256];

	why[0] = '\0';
	if (!km_check(km, why, sizeof why))
		fail_msg("%s:%d: km_check: %s", file, line, why);
}

/* Every step of every test ends with the invariant checker. */
#define CHECK(km) kmt_check_at((km), __FILE__, __LINE__)

/* Fault records, as the sink sees them. */
#define LOG_CAP 1024

struct rec_log {
	size_t n;                       /* records seen (may exceed LOG_CAP) */
	struct km_fault_rec v[LOG_CAP];
};

static inline void rec_sink(void *ctx, const struct km_fault_rec *rec)
{
	struct rec_log *l = ctx;

	if (l->n < LOG_CAP)
		l->v[l->n] = *rec;
	l->n++;
}

/* ---------------------------------------------------------------------- */
/* Snapshots: what a failed operation must not change.                     */

#define KMT_SNAP_TASKS 8
#define KMT_SNAP_VAS 12

struct kmt_snap_lk {                    /* km_lookup and the PTE at one page */
	int rc;
	struct km_mapping m;
	uint32_t pte;
};

struct kmt_snap {
	struct km_stats st;
	size_t ntasks, nvas;
	km_task_t task[KMT_SNAP_TASKS];
	km_vaddr_t va[KMT_SNAP_VAS];
	int ts_rc[KMT_SNAP_TASKS];
	struct km_task_stats ts[KMT_SNAP_TASKS];
	struct kmt_snap_lk lk[KMT_SNAP_TASKS][KMT_SNAP_VAS];
	int kp_rc;                      /* kpager `kp`, if one was named */
	struct km_kpager_stats kp;
};

/* Takes a snapshot of tasks x pages (and of kpager `kp`; KM_ROOT_KPAGER
 * for none). */
static inline void kmt_snap_take(const struct km *km, km_kpager_t kp,
                                 const km_task_t *tasks, size_t nt,
                                 const km_vaddr_t *vas, size_t nv,
                                 struct kmt_snap *s)
{
	memset(s, 0, sizeof *s);
	assert_true(nt <= KMT_SNAP_TASKS && nv <= KMT_SNAP_VAS);
	km_stats(km, &s->st);
	if (kp != KM_ROOT_KPAGER)
		s->kp_rc = km_kpager_stats(km, kp, &s->kp);
	s->ntasks = nt;
	s->nvas = nv;
	memcpy(s->va, vas, nv * sizeof *vas);
	for (size_t i = 0; i < nt; i++) {
		s->task[i] = tasks[i];
		s->ts_rc[i] = km_task_stats(km, tasks[i], &s->ts[i]);
		for (size_t j = 0; j < nv; j++) {
			struct kmt_snap_lk *l = &s->lk[i][j];

			l->rc = km_lookup(km, tasks[i], vas[j], &l->m);
			if (l->rc != KM_OK)
				memset(&l->m, 0, sizeof l->m);
			l->pte = km_pte(km, tasks[i], vas[j]);
		}
	}
}

/*
 * Fails unless the two snapshots agree: tasks and threads, each task's
 * pages by type and group, mappings and threads, every lookup and PTE,
 * the kpager's lent pages; with `frames`, also the model-wide frame counts
 * (a failed user fault may have let the default pager draw from sigma0).
 */
static inline void kmt_snap_assert_same(const struct kmt_snap *b,
                                        const struct kmt_snap *a, bool frames)
{
	if (b->st.tasks != a->st.tasks || b->st.threads != a->st.threads)
		fail_msg("tasks %u->%u threads %u->%u", b->st.tasks,
		         a->st.tasks, b->st.threads, a->st.threads);
	if (frames && (b->st.kernel_frames != a->st.kernel_frames ||
	               b->st.kpool_free != a->st.kpool_free ||
	               b->st.sigma0_free != a->st.sigma0_free))
		fail_msg("km_stats changed: kernel_frames %u->%u "
		         "kpool_free %u->%u sigma0_free %u->%u",
		         b->st.kernel_frames, a->st.kernel_frames,
		         b->st.kpool_free, a->st.kpool_free,
		         b->st.sigma0_free, a->st.sigma0_free);
	assert_int_equal(b->kp_rc, a->kp_rc);
	assert_int_equal(b->kp.lent, a->kp.lent);
	for (size_t i = 0; i < b->ntasks; i++) {
		const struct km_task_stats *x = &b->ts[i], *y = &a->ts[i];

		if (b->ts_rc[i] != a->ts_rc[i])
			fail_msg("task %u: km_task_stats %d -> %d", b->task[i],
			         b->ts_rc[i], a->ts_rc[i]);
		for (int k = 0; k < KM_KT_COUNT; k++)
			if (x->pages[k] != y->pages[k])
				fail_msg("task %u: %s pages %u -> %u",
				         b->task[i],
				         km_ktype_name((enum km_ktype)k),
				         x->pages[k], y->pages[k]);
		for (int g = 0; g < KM_KG_COUNT; g++)
			if (x->group[g] != y->group[g])
				fail_msg("task %u: group %d %u -> %u",
				         b->task[i], g, x->group[g], y->group[g]);
		if (x->mappings != y->mappings || x->threads != y->threads)
			fail_msg("task %u: mappings %u -> %u, threads %u -> %u",
			         b->task[i], x->mappings, y->mappings,
			         x->threads, y->threads);
		for (size_t j = 0; j < b->nvas; j++) {
			const struct kmt_snap_lk *p = &b->lk[i][j];
			const struct kmt_snap_lk *q = &a->lk[i][j];

			if (p->rc != q->rc || p->m.pfn != q->m.pfn ||
			    p->m.rights != q->m.rights ||
			    p->m.from != q->m.from ||
			    p->m.from_vaddr != q->m.from_vaddr ||
			    p->m.lent != q->m.lent || p->pte != q->pte)
				fail_msg("task %u va %#x: lookup rc %d->%d "
				         "pfn %u->%u rights %u->%u from %u->%u "
				         "pte %#x->%#x", b->task[i], b->va[j],
				         p->rc, q->rc, p->m.pfn, q->m.pfn,
				         p->m.rights, q->m.rights, p->m.from,
				         q->m.from, p->pte, q->pte);
		}
	}
}

/* xorshift64*: small, fast, and the same everywhere for a given seed. */
static inline uint64_t kmt_rng(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545F4914F6CDD1Dull;
}

/* An unsigned number from the environment, or `dflt`. */
static inline uint64_t kmt_env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

/* The frames left in the kernel's own pool. */
static inline uint32_t kmt_kpool_free(const struct km *km)
{
	struct km_stats ks;

	km_stats(km, &ks);
	return ks.kpool_free;
}

/* Lets the kernel's own pool run down to at most `left` frames: up to
 * eight tasks of its own (their ids in hog[], which starts zeroed) take
 * them with threads and touches from 0x20000000 on.  Returns the frames
 * left: more than `left` only if none of those could take one more. */
static inline uint32_t kmt_drain_kernel_pool(struct km *km, uint32_t left,
                                             km_task_t hog[8])
{
	km_vaddr_t va = 0x20000000u;
	km_thread_t th;

	for (int n = 0; n < 8 && kmt_kpool_free(km) > left &&
	     km_task_create(km, KM_ROOT_KPAGER, &hog[n]) == KM_OK; n++)
		while (kmt_kpool_free(km) > left &&
		       km_thread_create(km, hog[n], 0, &th) == KM_OK)
			for (; kmt_kpool_free(km) > left &&
			       km_touch(km, th, va, KM_ACC_WRITE) == KM_OK;
			     va += KM_PAGE_SIZE)
				;
	return kmt_kpool_free(km);
}

/* Leaves the kernel's own pool exactly `left` frames, with nothing in it
 * the kernel could take back (kmt_drain_kernel_pool may end a frame off
 * either way).  Two tasks of the kernel's own, spare[2], made first, give
 * one frame back or take one more: each thread takes a KTCB slot, four to
 * a page, and a UTCB slot, eight to a page, so spare[0]'s fifth thread is
 * alone in a KTCB page, and spare[1]'s fifth needs a KTCB page and
 * nothing else.  (For none left, spare[0] is not made: 0.) */
static inline void kmt_kernel_pool_exactly(struct km *km, uint32_t left,
                                           km_task_t hog[8],
                                           km_task_t spare[2])
{
	km_thread_t th[2][5];
	uint32_t got;

	spare[0] = 0;
	for (int s = left > 0 ? 0 : 1; s < 2; s++) {   /* (0 needs no give) */
		OK(km_task_create(km, KM_ROOT_KPAGER, &spare[s]));
		for (int i = 0; i < 5 - s; i++)
			OK(km_thread_create(km, spare[s], 0, &th[s][i]));
	}
	got = kmt_drain_kernel_pool(km, left, hog);
	if (got == left + 1)
		OK(km_thread_create(km, spare[1], 0, &th[1][4]));
	else if (got + 1 == left)
		OK(km_thread_destroy(km, th[0][4]));
	if (kmt_kpool_free(km) != left)
		fail_msg("the kernel's pool has %u frames, not %u",
		         kmt_kpool_free(km), left);
}

#endif /* KPSIM_TESTS_KMTEST_H */
