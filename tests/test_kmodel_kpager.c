/*
 * Tests of kmodel's kpager mode through the public API alone, with a tiny
 * first-come-first-served kpager written here: which kernel pages fault
 * and in what order, denial and refusal leaving the model unchanged and
 * handing lent pages back, pages lent to the kernel being pinned, kernel
 * virtual addresses.  Written from kmodel.h, not the code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmodel.h"
#include "kmtest.h"


static bool kpage_eq(struct km_kpage x, struct km_kpage y)
{
	return x.task == y.task && x.type == y.type && x.index == y.index;
}

/* ---------------------------------------------------------------------- */
/* The test kpager: `frames` frames from sigma0 at TKP_BASE of its task,
 * lent first come first served, denied when none is left or when the
 * test's budget of lendings is used up.  Its state is the test's own
 * struct tkp, passed as "ctx=<pointer>" so the test can read its logs.    */

#define TKP_BASE 0x10000000u
#define TKP_MAX 64
#define TKP_LOG 256
#define PG KM_PAGE_SIZE

enum tkp_mode {
	TKP_FCFS = 0,
	TKP_UNMAPPED,   /* answers with a page its task has not mapped */
	TKP_SAME,       /* answers every fault with the same page */
	TKP_READONLY,   /* holds its frames read-only */
	TKP_FAIL_INIT   /* init fails */
};

struct tkp_rel {
	km_vaddr_t vaddr;
	struct km_kpage kp;
};

struct tkp {
	enum tkp_mode mode;
	uint32_t frames;                /* taken from sigma0 by init */
	int budget;                     /* lendings left; < 0: no limit */
	bool used[TKP_MAX];
	size_t nfault;                  /* faults seen */
	struct kp_fault fault[TKP_LOG];
	struct kp_decision decision[TKP_LOG];
	size_t nrel;                    /* releases seen */
	struct tkp_rel rel[TKP_LOG];
	unsigned inits, finis;
};

static void say(char *why, size_t why_len, const char *msg)
{
	if (why != NULL && why_len > 0)
		snprintf(why, why_len, "%s", msg);
}

static int tkp_init(struct km *km, km_task_t task, const char *args,
                    void **state, char *why, size_t why_len)
{
	const char *p = args != NULL ? strstr(args, "ctx=") : NULL;
	void *ptr = NULL;
	struct tkp *tk;
	int rc;

	if (p == NULL || sscanf(p, "ctx=%p", &ptr) != 1 || ptr == NULL) {
		say(why, why_len, "tkp: no ctx= argument");
		return KM_EINVAL;
	}
	tk = ptr;
	tk->inits++;
	if (tk->mode == TKP_FAIL_INIT) {
		say(why, why_len, "tkp: told to fail");
		return KM_EINVAL;
	}
	if (tk->frames > TKP_MAX) {
		say(why, why_len, "tkp: too many frames");
		return KM_EINVAL;
	}
	rc = km_sigma0_map(km, task, TKP_BASE, tk->frames,
	                   tk->mode == TKP_READONLY ? KM_R : KM_R | KM_W);
	if (rc != KM_OK) {
		say(why, why_len, "tkp: km_sigma0_map failed");
		return rc;
	}
	memset(tk->used, 0, sizeof tk->used);
	*state = tk;
	return KM_OK;
}

static void tkp_fini(void *state)
{
	struct tkp *tk = state;

	if (tk != NULL)
		tk->finis++;
}

static void tkp_fault(void *state, const struct kp_fault *f,
                      struct kp_decision *d)
{
	struct tkp *tk = state;

	d->action = KP_DENY;
	d->vaddr = 0;
	if (tk->budget != 0) {
		switch (tk->mode) {
		case TKP_UNMAPPED:
			d->action = KP_MAP;
			d->vaddr = TKP_BASE + 0x01000000u;
			break;
		case TKP_SAME:
			d->action = KP_MAP;
			d->vaddr = TKP_BASE;
			break;
		default:
			for (uint32_t k = 0; k < tk->frames; k++) {
				if (!tk->used[k]) {
					tk->used[k] = true;
					d->action = KP_MAP;
					d->vaddr = TKP_BASE + k * PG;
					break;
				}
			}
			break;
		}
	}
	if (d->action == KP_MAP && tk->budget > 0)
		tk->budget--;
	if (tk->nfault < TKP_LOG) {
		tk->fault[tk->nfault] = *f;
		tk->decision[tk->nfault] = *d;
	}
	tk->nfault++;
}

static void tkp_released(void *state, km_vaddr_t vaddr, struct km_kpage kp)
{
	struct tkp *tk = state;

	if (tk->nrel < TKP_LOG) {
		tk->rel[tk->nrel].vaddr = vaddr;
		tk->rel[tk->nrel].kp = kp;
	}
	tk->nrel++;
	if (vaddr >= TKP_BASE && vaddr < TKP_BASE + tk->frames * PG)
		tk->used[(vaddr - TKP_BASE) / PG] = false;
}

static const struct kp_ops tkp_ops = {
	.name = "test-fcfs",
	.init = tkp_init,
	.fini = tkp_fini,
	.fault = tkp_fault,
	.released = tkp_released,
};

/* ---------------------------------------------------------------------- */
/* Fixture: a model in kpager mode with the kpager's task p and a source
 * task s (both on the in-kernel pool); the kpager itself is made by each
 * test after it has chosen the kpager's mode and frames.                  */

#define VA_S 0x40000000u
#define VA_C 0x20000000u
#define PDX(va) ((va) >> 22)
#define NO_SUCH_TASK ((km_task_t)12345)

struct fx {
	struct km *km;
	struct km_config cfg;
	km_task_t dp, p, s;
	km_kpager_t kp;
	struct tkp tkp;
	struct rec_log log;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);
	char why[256] = "";

	if (fx == NULL)
		return -1;
	fx->cfg = km_config_default(4096);
	fx->cfg.kmem = KM_KMEM_KPAGER;
	if (km_create(&fx->cfg, &fx->km, why, sizeof why) != KM_OK ||
	    km_task_create(fx->km, KM_ROOT_KPAGER, &fx->p) != KM_OK ||
	    km_task_create(fx->km, KM_ROOT_KPAGER, &fx->s) != KM_OK) {
		print_error("setup failed: %s\n", why);
		km_destroy(fx->km);
		free(fx);
		return -1;
	}
	fx->dp = km_default_pager(fx->km);
	fx->kp = (km_kpager_t)12345;
	fx->tkp.mode = TKP_FCFS;
	fx->tkp.frames = 32;
	fx->tkp.budget = -1;
	km_set_fault_sink(fx->km, rec_sink, &fx->log);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	km_destroy(fx->km);
	free(fx);
	return 0;
}

static const km_vaddr_t snap_vas[] = {
	TKP_BASE, TKP_BASE + PG, TKP_BASE + 2 * PG, TKP_BASE + 3 * PG,
	VA_S, VA_C, KM_UTCB_AREA,
};

/* Snapshot of sigma0, the default pager, p, s and (if not sigma0) c. */
static void fx_snap(const struct fx *fx, km_task_t c, struct kmt_snap *s)
{
	km_task_t t[] = { KM_SIGMA0, fx->dp, fx->p, fx->s, c };

	kmt_snap_take(fx->km, fx->kp, t, c == KM_SIGMA0 ? 4 : 5, snap_vas,
	              sizeof snap_vas / sizeof snap_vas[0], s);
}

/* The call fails (with `want`, or any error if want < 0) and leaves the
 * model as it was. */
#define FAILS(fx, c, global, expr, want)                                \
	do {                                                            \
		struct kmt_snap before_, after_;                        \
		int rc_;                                                \
		fx_snap((fx), (c), &before_);                           \
		rc_ = (expr);                                           \
		if ((want) >= 0)                                        \
			ERR(rc_, (want));                               \
		else if (rc_ == KM_OK)                                  \
			fail_msg("%s succeeded", #expr);                \
		fx_snap((fx), (c), &after_);                            \
		kmt_snap_assert_same(&before_, &after_, (global));      \
		CHECK((fx)->km);                                        \
	} while (0)

static void make_kpager(struct fx *fx)
{
	char args[64], why[256] = "";

	snprintf(args, sizeof args, "ctx=%p", (void *)&fx->tkp);
	OK(km_kpager_create(fx->km, &tkp_ops, fx->p, args, &fx->kp, why,
	                    sizeof why));
	CHECK(fx->km);
}

static km_task_t make_client(struct fx *fx)
{
	km_task_t c = KM_SIGMA0;

	OK(km_task_create(fx->km, fx->kp, &c));
	CHECK(fx->km);
	assert_int_not_equal(c, KM_SIGMA0);
	return c;
}

static struct km_kpager_stats kstats(const struct fx *fx)
{
	struct km_kpager_stats s;

	memset(&s, 0, sizeof s);
	OK(km_kpager_stats(fx->km, fx->kp, &s));
	return s;
}

static struct km_mapping lookup(const struct km *km, km_task_t t,
                                km_vaddr_t va)
{
	struct km_mapping m;

	memset(&m, 0, sizeof m);
	OK(km_lookup(km, t, va, &m));
	return m;
}

static struct km_task_stats tstats(const struct km *km, km_task_t t)
{
	struct km_task_stats s;

	memset(&s, 0, sizeof s);
	OK(km_task_stats(km, t, &s));
	return s;
}

static void reset_logs(struct fx *fx)
{
	fx->tkp.nfault = 0;
	fx->tkp.nrel = 0;
	fx->log.n = 0;
}

static const struct km_fault_rec *record_by_seq(const struct fx *fx,
                                                uint64_t seq)
{
	for (size_t i = 0; i < fx->log.n && i < LOG_CAP; i++)
		if (fx->log.v[i].seq == seq)
			return &fx->log.v[i];
	return NULL;
}

static size_t records_with(const struct fx *fx, enum km_fault_kind kind,
                           enum km_decision d)
{
	size_t n = 0;

	for (size_t i = 0; i < fx->log.n && i < LOG_CAP; i++)
		n += fx->log.v[i].kind == kind && fx->log.v[i].decision == d;
	return n;
}

/* Every fault the kpager saw names its page consistently, and its record
 * says how it ended (mapped: with the frame lent from `vaddr`). */
static void assert_faults_recorded(const struct fx *fx, uint64_t parent)
{
	assert_true(fx->tkp.nfault <= TKP_LOG);
	for (size_t i = 0; i < fx->tkp.nfault; i++) {
		const struct kp_fault *f = &fx->tkp.fault[i];
		const struct kp_decision *d = &fx->tkp.decision[i];
		const struct km_fault_rec *r = record_by_seq(fx, f->seq);
		struct km_kpage back;

		assert_true(f->kva == km_kpage_kva(f->kpage));
		OK(km_kva_decode(f->kva, &back));
		assert_true(kpage_eq(back, f->kpage));
		assert_non_null(r);
		assert_int_equal(r->kind, KM_FK_KERNEL);
		assert_true(kpage_eq(r->kpage, f->kpage));
		assert_int_equal(r->parent, parent);
		if (d->action == KP_MAP && r->decision == KM_D_MAPPED) {
			struct km_mapping m = lookup(fx->km, fx->p, d->vaddr);

			assert_int_equal(r->pfn, m.pfn);
		} else {
			assert_int_equal(r->pfn, KM_NO_PFN);
		}
	}
}

/* ---------------------------------------------------------------------- */
/* Creating a kpager                                                        */

static void test_kpager_create_runs_init(void **state)
{
	struct fx *fx = *state;
	struct km_stats g0, g1;
	struct km_kpager_stats ks;

	fx->tkp.frames = 8;
	km_stats(fx->km, &g0);
	make_kpager(fx);
	km_stats(fx->km, &g1);
	assert_int_equal(fx->tkp.inits, 1);
	assert_int_equal(g1.sigma0_free, g0.sigma0_free - 8);
	for (uint32_t i = 0; i < 8; i++) {
		struct km_mapping m = lookup(fx->km, fx->p, TKP_BASE + i * PG);

		assert_int_equal(m.from, KM_SIGMA0);
		assert_int_equal(m.rights, KM_R | KM_W);
		assert_false(m.lent);
	}
	ks = kstats(fx);
	assert_int_equal(ks.faults, 0);
	assert_int_equal(ks.mapped, 0);
	assert_int_equal(ks.lent, 0);
	assert_int_equal(fx->tkp.nfault, 0);
}

static void test_kpager_create_refuses_bad_arguments(void **state)
{
	struct fx *fx = *state;
	char args[64], why[256];
	km_kpager_t id;

	snprintf(args, sizeof args, "ctx=%p", (void *)&fx->tkp);
	FAILS(fx, KM_SIGMA0, true,
	      km_kpager_create(fx->km, NULL, fx->p, args, &id, why, sizeof why),
	      KM_EINVAL);
	FAILS(fx, KM_SIGMA0, true,
	      km_kpager_create(fx->km, &tkp_ops, KM_SIGMA0, args, &id, why,
	                       sizeof why), KM_EINVAL);
	FAILS(fx, KM_SIGMA0, true,
	      km_kpager_create(fx->km, &tkp_ops, NO_SUCH_TASK, args, &id, why,
	                       sizeof why), KM_ENOTASK);
	assert_int_equal(fx->tkp.inits, 0);
}

static void test_kpager_create_passes_on_init_error(void **state)
{
	struct fx *fx = *state;
	char args[64], why[256] = "";
	km_kpager_t id;

	fx->tkp.mode = TKP_FAIL_INIT;
	snprintf(args, sizeof args, "ctx=%p", (void *)&fx->tkp);
	FAILS(fx, KM_SIGMA0, true,
	      km_kpager_create(fx->km, &tkp_ops, fx->p, args, &id, why,
	                       sizeof why), KM_EINVAL);
	assert_int_equal(fx->tkp.inits, 1);
	assert_non_null(strstr(why, "told to fail"));
}

static void test_kpager_unknown_ids_are_enokpager(void **state)
{
	struct fx *fx = *state;
	struct km_kpager_stats ks;
	km_task_t c;

	make_kpager(fx);
	FAILS(fx, KM_SIGMA0, true,
	      km_task_create(fx->km, (km_kpager_t)(fx->kp + 1000u), &c),
	      KM_ENOKPAGER);
	ERR(km_kpager_stats(fx->km, (km_kpager_t)(fx->kp + 1000u), &ks),
	    KM_ENOKPAGER);
	assert_int_equal(fx->tkp.nfault, 0);
}

/* ---------------------------------------------------------------------- */
/* Kernel page faults and their order                                       */

static void test_kpager_task_create_faults_pd_then_nd(void **state)
{
	struct fx *fx = *state;
	struct km_stats g0, g1;
	struct km_task_stats ts;
	struct km_kpager_stats ks;
	km_task_t c;

	make_kpager(fx);
	reset_logs(fx);
	km_stats(fx->km, &g0);
	c = make_client(fx);
	km_stats(fx->km, &g1);

	assert_int_equal(fx->tkp.nfault, 2);
	assert_int_equal(fx->tkp.fault[0].kpage.type, KM_KT_PD);
	assert_int_equal(fx->tkp.fault[1].kpage.type, KM_KT_ND);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(fx->tkp.fault[i].kpage.task, c);
		assert_int_equal(fx->tkp.fault[i].kpage.index, 0);
		assert_int_equal(fx->tkp.fault[i].thread, KM_NO_THREAD);
		assert_int_equal(fx->tkp.decision[i].action, KP_MAP);
		assert_true(lookup(fx->km, fx->p,
		                   fx->tkp.decision[i].vaddr).lent);
	}
	assert_true(fx->tkp.fault[0].seq < fx->tkp.fault[1].seq);
	assert_faults_recorded(fx, 0);
	assert_int_equal(records_with(fx, KM_FK_KERNEL, KM_D_MAPPED), 2);

	ks = kstats(fx);
	assert_int_equal(ks.faults, 2);
	assert_int_equal(ks.mapped, 2);
	assert_int_equal(ks.lent, 2);
	assert_int_equal(ks.denied, 0);
	ts = tstats(fx->km, c);
	assert_int_equal(ts.pages[KM_KT_PD], 1);
	assert_int_equal(ts.pages[KM_KT_ND], 1);
	assert_int_equal(ts.kfaults, 2);
	/* The frames are the kpager's: neither the pool nor sigma0 pays. */
	assert_int_equal(g1.kernel_frames, g0.kernel_frames + 2);
	assert_int_equal(g1.kpool_free, g0.kpool_free);
	assert_int_equal(g1.sigma0_free, g0.sigma0_free);
	assert_int_not_equal(km_task_cr3(fx->km, c), 0);
}

static void test_kpager_thread_create_faults_in_hierarchy_order(void **state)
{
	struct fx *fx = *state;
	km_task_t c;
	km_thread_t t;
	int n_utcb = 0, n_ktcb = 0;

	make_kpager(fx);
	c = make_client(fx);
	reset_logs(fx);
	OK(km_thread_create(fx->km, c, 0, &t));
	CHECK(fx->km);
	assert_true(fx->tkp.nfault >= 2 && fx->tkp.nfault <= TKP_LOG);
	for (size_t i = 0; i < fx->tkp.nfault; i++) {
		const struct kp_fault *f = &fx->tkp.fault[i];

		assert_int_equal(f->kpage.task, c);
		if (i > 0)
			assert_true(f->kpage.type >=
			            fx->tkp.fault[i - 1].kpage.type);
		assert_true(f->kpage.type != KM_KT_PD &&
		            f->kpage.type != KM_KT_ND);
		n_utcb += f->kpage.type == KM_KT_UTCB;
		n_ktcb += f->kpage.type == KM_KT_KTCB;
	}
	assert_int_equal(n_utcb, 1);
	assert_int_equal(n_ktcb, 1);
	assert_int_equal(fx->tkp.fault[fx->tkp.nfault - 1].kpage.type,
	                 KM_KT_KTCB);
	assert_faults_recorded(fx, 0);
	assert_int_equal(tstats(fx->km, c).pages[KM_KT_UTCB], 1);
	assert_int_equal(tstats(fx->km, c).pages[KM_KT_KTCB], 1);
}

static void test_kpager_first_touch_faults_pt_nt_mdb(void **state)
{
	struct fx *fx = *state;
	km_task_t c;
	km_thread_t t;
	uint32_t mdb0, pt0;
	int last = -1, n_pt = 0, n_nt = 0, n_mdb = 0;
	const struct km_fault_rec *u;
	struct km_kpager_stats k0, k1;

	make_kpager(fx);
	c = make_client(fx);
	OK(km_thread_create(fx->km, c, 0, &t));
	CHECK(fx->km);
	mdb0 = tstats(fx->km, c).pages[KM_KT_MDB];
	pt0 = tstats(fx->km, c).pages[KM_KT_PT];
	k0 = kstats(fx);
	reset_logs(fx);

	OK(km_touch(fx->km, t, VA_C, KM_ACC_READ));
	CHECK(fx->km);
	assert_true(fx->log.n >= 1 && fx->log.n <= LOG_CAP);
	u = &fx->log.v[fx->log.n - 1];
	assert_int_equal(u->kind, KM_FK_USER);
	assert_int_equal(u->task, c);
	assert_int_equal(u->decision, KM_D_MAPPED);

	assert_true(fx->tkp.nfault <= TKP_LOG);
	for (size_t i = 0; i < fx->tkp.nfault; i++) {
		const struct kp_fault *f = &fx->tkp.fault[i];

		assert_int_equal(f->kpage.task, c);
		assert_int_equal(f->thread, t);
		assert_true((int)f->kpage.type >= last);
		last = (int)f->kpage.type;
		switch (f->kpage.type) {
		case KM_KT_PT:
			n_pt++;
			assert_int_equal(f->kpage.index, PDX(VA_C));
			break;
		case KM_KT_NT:
			n_nt++;
			assert_int_equal(f->kpage.index, PDX(VA_C));
			break;
		case KM_KT_MDB:
			n_mdb++;
			break;
		default:
			fail_msg("unexpected %s fault on a first touch",
			         km_ktype_name(f->kpage.type));
		}
	}
	assert_int_equal(n_pt, 1);
	assert_int_equal(n_nt, 1);
	if (mdb0 == 0)
		assert_int_equal(n_mdb, 1);
	/* Kernel faults are children of the user fault. */
	assert_faults_recorded(fx, u->seq);
	k1 = kstats(fx);
	assert_int_equal(k1.faults, k0.faults + fx->tkp.nfault);
	assert_int_equal(k1.lent, k0.lent + fx->tkp.nfault);
	assert_int_equal(tstats(fx->km, c).pages[KM_KT_PT], pt0 + 1);
}

/* ---------------------------------------------------------------------- */
/* Denial: the operation fails, the model is unchanged, lent pages return. */

static void test_kpager_denied_task_create_hands_back_pd(void **state)
{
	struct fx *fx = *state;
	struct km_kpager_stats ks;
	struct km_stats g0, g1;
	km_task_t c;

	fx->tkp.frames = 1;
	make_kpager(fx);
	reset_logs(fx);
	km_stats(fx->km, &g0);
	FAILS(fx, KM_SIGMA0, true, km_task_create(fx->km, fx->kp, &c),
	      KM_EDENIED);
	km_stats(fx->km, &g1);
	assert_int_equal(fx->tkp.nfault, 2);
	assert_int_equal(fx->tkp.fault[0].kpage.type, KM_KT_PD);
	assert_int_equal(fx->tkp.decision[0].action, KP_MAP);
	assert_int_equal(fx->tkp.fault[1].kpage.type, KM_KT_ND);
	assert_int_equal(fx->tkp.decision[1].action, KP_DENY);
	/* The directory it had lent comes back. */
	assert_int_equal(fx->tkp.nrel, 1);
	assert_int_equal(fx->tkp.rel[0].vaddr, TKP_BASE);
	assert_int_equal(fx->tkp.rel[0].kp.type, KM_KT_PD);
	assert_false(lookup(fx->km, fx->p, TKP_BASE).lent);
	ks = kstats(fx);
	assert_int_equal(ks.faults, 2);
	assert_int_equal(ks.denied, 1);
	assert_int_equal(ks.released, 1);
	assert_int_equal(ks.lent, 0);
	assert_int_equal(g1.denied, g0.denied + 1);
	assert_faults_recorded(fx, 0);
	assert_int_equal(records_with(fx, KM_FK_KERNEL, KM_D_DENIED), 1);
	/* The page handed back can be lent again. */
	reset_logs(fx);
	FAILS(fx, KM_SIGMA0, true, km_task_create(fx->km, fx->kp, &c),
	      KM_EDENIED);
	assert_int_equal(fx->tkp.decision[0].action, KP_MAP);
	assert_int_equal(fx->tkp.decision[0].vaddr, TKP_BASE);
	assert_int_equal(fx->tkp.nrel, 1);
	assert_int_equal(kstats(fx).released, 2);
}

static void test_kpager_denied_thread_create_changes_nothing(void **state)
{
	struct fx *fx = *state;
	km_task_t c;
	km_thread_t t;
	size_t lent_now;

	make_kpager(fx);
	c = make_client(fx);
	reset_logs(fx);
	fx->tkp.budget = 1;
	FAILS(fx, c, true, km_thread_create(fx->km, c, 0, &t), KM_EDENIED);
	assert_int_equal(fx->tkp.nfault, 2);
	assert_int_equal(fx->tkp.decision[0].action, KP_MAP);
	assert_int_equal(fx->tkp.decision[1].action, KP_DENY);
	assert_int_equal(fx->tkp.nrel, 1);
	assert_int_equal(fx->tkp.rel[0].vaddr, fx->tkp.decision[0].vaddr);
	assert_true(kpage_eq(fx->tkp.rel[0].kp, fx->tkp.fault[0].kpage));
	assert_int_equal(tstats(fx->km, c).threads, 0);
	lent_now = kstats(fx).lent;
	assert_int_equal(lent_now, 2);
	assert_faults_recorded(fx, 0);
}

/* A failed touch may let the default pager grow its pool from sigma0
 * first (its own request): make it grow beforehand, through a task whose
 * kernel memory comes from the pool, so the failure changes nothing. */
static void warm_default_pager(struct fx *fx)
{
	km_task_t w;
	km_thread_t wt;

	OK(km_task_create(fx->km, KM_ROOT_KPAGER, &w));
	OK(km_thread_create(fx->km, w, 0, &wt));
	OK(km_touch(fx->km, wt, 0x08048000u, KM_ACC_READ));
}

static void test_kpager_denied_touch_fails_with_edenied(void **state)
{
	struct fx *fx = *state;
	km_task_t c;
	km_thread_t t;
	const struct km_fault_rec *u;
	struct km_mapping m;

	make_kpager(fx);
	c = make_client(fx);
	OK(km_thread_create(fx->km, c, 0, &t));
	warm_default_pager(fx);
	CHECK(fx->km);
	reset_logs(fx);
	fx->tkp.budget = 1;
	FAILS(fx, c, false, km_touch(fx->km, t, VA_C, KM_ACC_WRITE),
	      KM_EDENIED);
	ERR(km_lookup(fx->km, c, VA_C, &m), KM_ENOMAP);
	assert_int_equal(fx->tkp.nfault, 2);
	assert_int_equal(fx->tkp.fault[0].kpage.type, KM_KT_PT);
	assert_int_equal(fx->tkp.fault[1].kpage.type, KM_KT_NT);
	assert_int_equal(fx->tkp.decision[1].action, KP_DENY);
	assert_int_equal(fx->tkp.nrel, 1);
	assert_int_equal(fx->tkp.rel[0].vaddr, fx->tkp.decision[0].vaddr);
	assert_int_equal(fx->tkp.rel[0].kp.type, KM_KT_PT);
	assert_false(lookup(fx->km, fx->p, fx->tkp.decision[0].vaddr).lent);
	/* The user fault ends unresolved, after its denied kernel fault. */
	assert_true(fx->log.n >= 1 && fx->log.n <= LOG_CAP);
	u = &fx->log.v[fx->log.n - 1];
	assert_int_equal(u->kind, KM_FK_USER);
	assert_int_equal(u->decision, KM_D_FAILED);
	assert_int_equal(u->pfn, KM_NO_PFN);
	assert_faults_recorded(fx, u->seq);
	assert_int_equal(records_with(fx, KM_FK_KERNEL, KM_D_DENIED), 1);
}

static void test_kpager_denied_map_hands_back_lent_table(void **state)
{
	struct fx *fx = *state;
	km_task_t c;
	struct km_kpager_stats ks;

	fx->tkp.frames = 3;
	make_kpager(fx);
	c = make_client(fx);
	OK(km_sigma0_map(fx->km, fx->s, VA_S, 1, KM_R | KM_W));
	CHECK(fx->km);
	reset_logs(fx);
	/* c's page table takes the last frame; its node table is denied. */
	FAILS(fx, c, true,
	      km_map(fx->km, fx->s, km_fpage(VA_S, 12, KM_R | KM_W), c, VA_C,
	             KM_MAP, NULL), KM_EDENIED);
	assert_int_equal(fx->tkp.nfault, 2);
	assert_int_equal(fx->tkp.fault[0].kpage.type, KM_KT_PT);
	assert_int_equal(fx->tkp.fault[0].kpage.index, PDX(VA_C));
	assert_int_equal(fx->tkp.fault[1].kpage.type, KM_KT_NT);
	assert_int_equal(fx->tkp.decision[1].action, KP_DENY);
	assert_int_equal(fx->tkp.nrel, 1);
	assert_int_equal(fx->tkp.rel[0].vaddr, TKP_BASE + 2 * PG);
	ks = kstats(fx);
	assert_int_equal(ks.lent, 2);
	assert_int_equal(ks.denied, 1);
	assert_int_equal(ks.faults, ks.mapped + ks.denied + ks.refused);
	assert_faults_recorded(fx, 0);
}

/* ---------------------------------------------------------------------- */
/* Decisions the kernel must refuse                                         */

static void assert_refused_cleanly(struct fx *fx)
{
	struct km_kpager_stats ks = kstats(fx);

	assert_true(ks.refused >= 1);
	assert_int_equal(ks.lent, 0);
	assert_true(records_with(fx, KM_FK_KERNEL, KM_D_REFUSED) >= 1);
	for (uint32_t i = 0; i < fx->tkp.frames && i < 4; i++) {
		struct km_mapping m;

		if (km_lookup(fx->km, fx->p, TKP_BASE + i * PG, &m) == KM_OK)
			assert_false(m.lent);
	}
}

static void test_kpager_unmapped_vaddr_is_refused(void **state)
{
	struct fx *fx = *state;
	km_task_t c;

	fx->tkp.mode = TKP_UNMAPPED;
	make_kpager(fx);
	reset_logs(fx);
	FAILS(fx, KM_SIGMA0, true, km_task_create(fx->km, fx->kp, &c), -1);
	assert_refused_cleanly(fx);
	assert_int_equal(fx->tkp.nrel, 0);
}

static void test_kpager_read_only_vaddr_is_refused(void **state)
{
	struct fx *fx = *state;
	km_task_t c;

	fx->tkp.mode = TKP_READONLY;
	make_kpager(fx);
	assert_int_equal(lookup(fx->km, fx->p, TKP_BASE).rights, KM_R);
	reset_logs(fx);
	FAILS(fx, KM_SIGMA0, true, km_task_create(fx->km, fx->kp, &c), -1);
	assert_refused_cleanly(fx);
}

static void test_kpager_vaddr_lent_twice_is_refused(void **state)
{
	struct fx *fx = *state;
	km_task_t c;

	fx->tkp.mode = TKP_SAME;
	make_kpager(fx);
	reset_logs(fx);
	FAILS(fx, KM_SIGMA0, true, km_task_create(fx->km, fx->kp, &c), -1);
	assert_refused_cleanly(fx);
	/* The directory lent from that page first is handed back. */
	assert_int_equal(fx->tkp.nrel, 1);
	assert_int_equal(fx->tkp.rel[0].vaddr, TKP_BASE);
	assert_int_equal(fx->tkp.rel[0].kp.type, KM_KT_PD);
}

static void test_kpager_vaddr_mapped_onwards_is_refused(void **state)
{
	struct fx *fx = *state;
	km_task_t c;
	uint32_t pages = 0;

	make_kpager(fx);
	OK(km_map(fx->km, fx->p, km_fpage(TKP_BASE, 12, KM_R | KM_W), fx->s,
	          VA_S, KM_MAP, &pages));
	assert_int_equal(pages, 1);
	CHECK(fx->km);
	reset_logs(fx);
	/* FCFS offers TKP_BASE first, which s now holds too. */
	FAILS(fx, KM_SIGMA0, true, km_task_create(fx->km, fx->kp, &c), -1);
	assert_refused_cleanly(fx);
	assert_int_equal(lookup(fx->km, fx->s, VA_S).from, fx->p);
}

/*
 * The kernel takes away only the lender's PTE of a page it uses, so a
 * page anyone else reaches may not be lent.  Here s maps a page of its
 * own over the kpager's first page: s, the mapper, keeps its mapping.
 * (Before the kernel refused it, s could write the client's page
 * directory.)
 */
static void test_kpager_vaddr_mapped_from_another_task_is_refused(
	void **state)
{
	struct fx *fx = *state;
	km_task_t c;
	uint32_t pages = 0;

	make_kpager(fx);
	OK(km_sigma0_map(fx->km, fx->s, VA_S, 1, KM_R | KM_W));
	OK(km_map(fx->km, fx->s, km_fpage(VA_S, 12, KM_R | KM_W), fx->p,
	          TKP_BASE, KM_MAP, &pages));
	assert_int_equal(pages, 1);
	assert_int_equal(lookup(fx->km, fx->p, TKP_BASE).from, fx->s);
	CHECK(fx->km);
	reset_logs(fx);
	FAILS(fx, KM_SIGMA0, true, km_task_create(fx->km, fx->kp, &c), -1);
	assert_refused_cleanly(fx);
	assert_int_equal(lookup(fx->km, fx->s, VA_S).rights, KM_R | KM_W);
}

/* The same when sigma0 has mapped the kpager's frame to another task as
 * well; once that mapping is gone, the page may be lent. */
static void test_kpager_vaddr_sigma0_mapped_elsewhere_is_refused(
	void **state)
{
	struct fx *fx = *state;
	struct km_mapping m;
	km_task_t c;
	uint32_t pages = 0;

	make_kpager(fx);
	m = lookup(fx->km, fx->p, TKP_BASE);
	assert_int_equal(m.from, KM_SIGMA0);
	OK(km_map(fx->km, KM_SIGMA0, km_fpage(m.from_vaddr, 12, KM_R | KM_W),
	          fx->s, VA_S, KM_MAP, &pages));
	assert_int_equal(pages, 1);
	assert_int_equal(lookup(fx->km, fx->s, VA_S).pfn, m.pfn);
	CHECK(fx->km);
	reset_logs(fx);
	FAILS(fx, KM_SIGMA0, true, km_task_create(fx->km, fx->kp, &c), -1);
	assert_refused_cleanly(fx);

	OK(km_unmap(fx->km, fx->s, km_fpage(VA_S, 12, KM_RWX), KM_UNMAP_SELF,
	            &pages));
	/* (The test kpager still counts the page of its refused answer as
	 * used: it would offer the next one.) */
	memset(fx->tkp.used, 0, sizeof fx->tkp.used);
	c = make_client(fx);
	assert_true(lookup(fx->km, fx->p, TKP_BASE).lent);
	OK(km_task_destroy(fx->km, c));
	CHECK(fx->km);
}

/* ---------------------------------------------------------------------- */
/* Pages lent to the kernel                                                 */

static void test_kpager_lent_pages_move_only_by_revocation(void **state)
{
	struct fx *fx = *state;
	km_task_t c;

	make_kpager(fx);
	c = make_client(fx);
	assert_true(lookup(fx->km, fx->p, TKP_BASE).lent);
	OK(km_sigma0_map(fx->km, fx->s, VA_S, 1, KM_R | KM_W));
	CHECK(fx->km);

	/* A lent page is out of its holder's reach: map and grant skip it. */
	{
		uint32_t moved = 99;

		OK(km_map(fx->km, fx->p, km_fpage(TKP_BASE, 12, KM_R | KM_W),
		          fx->s, VA_C, KM_GRANT, &moved));
		assert_int_equal(moved, 0);
		OK(km_map(fx->km, fx->p, km_fpage(TKP_BASE, 12, KM_R), fx->s,
		          VA_C, KM_MAP, &moved));
		assert_int_equal(moved, 0);
		assert_true(lookup(fx->km, fx->p, TKP_BASE).lent);
		CHECK(fx->km);
	}
	/* Replacing it takes the frame away from the kpager: the kernel
	 * page in it (the client's page directory) is revoked and its form
	 * discarded, and the directory comes back rebuilt when needed. */
	OK(km_map(fx->km, fx->s, km_fpage(VA_S, 12, KM_R | KM_W), fx->p,
	          TKP_BASE, KM_MAP, NULL));
	CHECK(fx->km);
	assert_false(lookup(fx->km, fx->p, TKP_BASE).lent);
	{
		struct km_task_stats ts;

		OK(km_task_stats(fx->km, c, &ts));
		assert_int_equal(ts.out[KM_KT_PD], 1);
		assert_int_equal(ts.pages[KM_KT_PD], 0);
		assert_int_equal(km_task_cr3(fx->km, c), 0);
	}
	/* Unmapping a lent page with the flush flag discards it too. */
	OK(km_unmap(fx->km, fx->p, km_fpage(TKP_BASE + PG, 12, KM_RWX),
	            KM_UNMAP_SELF, NULL));
	CHECK(fx->km);
}

static void test_kpager_task_destroy_returns_lent_pages(void **state)
{
	struct fx *fx = *state;
	km_task_t c;
	km_thread_t t;
	struct km_kpager_stats k0, k1;
	struct km_stats g0, g1;

	make_kpager(fx);
	c = make_client(fx);
	OK(km_thread_create(fx->km, c, 0, &t));
	CHECK(fx->km);
	OK(km_touch(fx->km, t, VA_C, KM_ACC_WRITE));
	CHECK(fx->km);
	k0 = kstats(fx);
	assert_true(k0.lent >= 5);
	km_stats(fx->km, &g0);
	reset_logs(fx);

	OK(km_task_destroy(fx->km, c));
	CHECK(fx->km);
	km_stats(fx->km, &g1);
	k1 = kstats(fx);
	assert_int_equal(fx->tkp.nrel, k0.lent);
	assert_int_equal(k1.lent, 0);
	assert_int_equal(k1.released, k0.released + k0.lent);
	assert_true(g1.kernel_frames <= g0.kernel_frames - k0.lent);
	for (size_t i = 0; i < fx->tkp.nrel && i < TKP_LOG; i++) {
		assert_int_equal(fx->tkp.rel[i].kp.task, c);
		for (size_t j = 0; j < i; j++)
			assert_int_not_equal(fx->tkp.rel[i].vaddr,
			                     fx->tkp.rel[j].vaddr);
	}
	for (uint32_t i = 0; i < fx->tkp.frames; i++)
		assert_false(lookup(fx->km, fx->p, TKP_BASE + i * PG).lent);
	assert_false(km_task_exists(fx->km, c));
}

static void test_kpager_task_backing_a_kpager_is_busy(void **state)
{
	struct fx *fx = *state;
	km_task_t c;

	make_kpager(fx);
	c = make_client(fx);
	FAILS(fx, c, true, km_task_destroy(fx->km, fx->p), KM_EBUSY);
	assert_true(km_task_exists(fx->km, fx->p));
	/* With its client gone, nothing is lent and nobody depends on it. */
	OK(km_task_destroy(fx->km, c));
	CHECK(fx->km);
	OK(km_task_destroy(fx->km, fx->p));
	CHECK(fx->km);
}

static void test_kpager_client_memory_is_charged_to_client(void **state)
{
	struct fx *fx = *state;
	struct km_task_stats p0, p1, cs;
	struct km_stats g0, g1;
	km_task_t c;
	km_thread_t t;
	uint32_t sum = 0;

	make_kpager(fx);
	p0 = tstats(fx->km, fx->p);
	km_stats(fx->km, &g0);
	c = make_client(fx);
	OK(km_thread_create(fx->km, c, 0, &t));
	CHECK(fx->km);
	OK(km_thread_create(fx->km, c, 0, &t));
	CHECK(fx->km);
	p1 = tstats(fx->km, fx->p);
	km_stats(fx->km, &g1);
	cs = tstats(fx->km, c);
	for (int k = 0; k < KM_KT_COUNT; k++) {
		sum += cs.pages[k];
		assert_int_equal(p1.pages[k], p0.pages[k]);
	}
	assert_int_equal(sum, kstats(fx).lent);
	assert_int_equal(cs.kfaults, kstats(fx).faults);
	assert_int_equal(g1.kernel_frames, g0.kernel_frames + sum);
	assert_int_equal(g1.kpool_free, g0.kpool_free);
	assert_int_equal(g1.sigma0_free, g0.sigma0_free);
}

static void test_kpager_fini_runs_when_model_is_destroyed(void **state)
{
	struct fx *fx = *state;

	make_kpager(fx);
	make_client(fx);
	assert_int_equal(fx->tkp.finis, 0);
	km_destroy(fx->km);
	fx->km = NULL;
	assert_int_equal(fx->tkp.finis, 1);
}

/* ---------------------------------------------------------------------- */
/* Kernel virtual addresses                                                 */

static void test_kpager_kva_round_trips(void **state)
{
	const km_task_t tasks[] = { 1, 2, 77 };
	/* Index 0 exists for every type; 1 and 767 for all but the single
	 * page directory and node directory of a task. */
	const uint32_t idx[] = { 0, 1, 767 };
	uint64_t nib[KM_KT_COUNT] = { 0 };

	(void)state;
	for (int k = 0; k < KM_KT_COUNT; k++) {
		uint64_t win[3] = { 0, 0, 0 };

		for (size_t t = 0; t < 3; t++) {
			for (size_t i = 0; i < 3; i++) {
				struct km_kpage kp, out;
				uint64_t kva;

				kp.task = tasks[t];
				kp.type = (enum km_ktype)k;
				kp.index = idx[i];
				if ((k == KM_KT_PD || k == KM_KT_ND) && i > 0) {
					kva = km_kpage_kva(kp);
					ERR(km_kva_decode(kva, &out), KM_EINVAL);
					continue;
				}
				kva = km_kpage_kva(kp);
				memset(&out, 0xff, sizeof out);
				OK(km_kva_decode(kva, &out));
				assert_true(kpage_eq(out, kp));
				assert_int_equal(kva & 0xfff, 0);
				assert_int_equal((kva >> 12) & 0xfffff, idx[i]);
				if (t == 0 && i == 0)
					nib[k] = kva >> 60;
				assert_int_equal(kva >> 60, nib[k]);
				if (i == 0)
					win[t] = (kva >> 32) & 0x0fffffff;
				assert_int_equal((kva >> 32) & 0x0fffffff,
				                 win[t]);
			}
		}
		assert_int_not_equal(win[0], win[1]);
		assert_int_not_equal(win[1], win[2]);
		assert_int_not_equal(win[0], win[2]);
		for (int j = 0; j < k; j++)
			assert_int_not_equal(nib[j], nib[k]);
	}
}

static void test_kpager_kva_decode_rejects_non_kernel_pages(void **state)
{
	struct km_kpage out;
	uint64_t used = 0;
	int free_nib = -1;

	(void)state;
	ERR(km_kva_decode(~(uint64_t)0, &out), KM_EINVAL);
	for (int k = 0; k < KM_KT_COUNT; k++) {
		struct km_kpage kp = { 1, (enum km_ktype)k, 0 };

		used |= (uint64_t)1 << (km_kpage_kva(kp) >> 60);
	}
	for (int n = 15; n >= 0 && free_nib < 0; n--)
		if ((used & ((uint64_t)1 << n)) == 0)
			free_nib = n;
	assert_true(free_nib >= 0);
	/* A range that no data type owns names no kernel page. */
	ERR(km_kva_decode((uint64_t)free_nib << 60 | (uint64_t)1 << 32, &out),
	    KM_EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_kpager_create_runs_init),
		T(test_kpager_create_refuses_bad_arguments),
		T(test_kpager_create_passes_on_init_error),
		T(test_kpager_unknown_ids_are_enokpager),
		T(test_kpager_task_create_faults_pd_then_nd),
		T(test_kpager_thread_create_faults_in_hierarchy_order),
		T(test_kpager_first_touch_faults_pt_nt_mdb),
		T(test_kpager_denied_task_create_hands_back_pd),
		T(test_kpager_denied_thread_create_changes_nothing),
		T(test_kpager_denied_touch_fails_with_edenied),
		T(test_kpager_denied_map_hands_back_lent_table),
		T(test_kpager_unmapped_vaddr_is_refused),
		T(test_kpager_read_only_vaddr_is_refused),
		T(test_kpager_vaddr_lent_twice_is_refused),
		T(test_kpager_vaddr_mapped_onwards_is_refused),
		T(test_kpager_vaddr_mapped_from_another_task_is_refused),
		T(test_kpager_vaddr_sigma0_mapped_elsewhere_is_refused),
		T(test_kpager_lent_pages_move_only_by_revocation),
		T(test_kpager_task_destroy_returns_lent_pages),
		T(test_kpager_task_backing_a_kpager_is_busy),
		T(test_kpager_client_memory_is_charged_to_client),
		T(test_kpager_fini_runs_when_model_is_destroyed),
		T(test_kpager_kva_round_trips),
		T(test_kpager_kva_decode_rejects_non_kernel_pages),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
