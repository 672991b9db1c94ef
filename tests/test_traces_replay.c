/*
 * Replay behaviour that no bundled trace shows: an ended task the kernel
 * cannot delete.  The replay must keep going, as the machine does, and
 * say so in the task's result and the replay's counts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kmodel.h"
#include "kmtest.h"
#include "replay.h"
#include "trace.h"

#define PG KM_PAGE_SIZE
#define POOL 0x10000000u
#define NPOOL 64u

/* A kpager that lends its pages, and denies every restore once told to. */
static struct lender {
	km_kpager_t id;
	uint64_t kva[NPOOL];    /* what each lent page holds; 0: free */
	bool deny_restores;
} lender;

static int lender_init(struct km *km, km_task_t task, const char *args,
                       void **state, char *why, size_t why_len)
{
	(void)args;
	(void)why;
	(void)why_len;
	memset(&lender, 0, sizeof lender);
	*state = &lender;
	return km_sigma0_map(km, task, POOL, NPOOL, KM_R | KM_W);
}

static void lender_fault(void *state, const struct kp_fault *f,
                         struct kp_decision *d)
{
	struct lender *l = state;

	l->id = f->kpager;
	d->action = KP_DENY;
	d->discarded = f->restore;      /* it keeps no forms */
	if (f->restore && l->deny_restores)
		return;
	for (uint32_t i = 0; i < NPOOL; i++) {
		if (l->kva[i] == 0) {
			l->kva[i] = f->kva;
			d->action = KP_MAP;
			d->vaddr = POOL + i * PG;
			return;
		}
	}
}

static void lender_released(void *state, km_vaddr_t vaddr,
                            struct km_kpage kp)
{
	struct lender *l = state;

	(void)kp;
	l->kva[(vaddr - POOL) / PG] = 0;
}

static void lender_revoked(void *state, km_vaddr_t vaddr, struct km_kpage kp,
                           bool discarded)
{
	struct lender *l = state;

	(void)kp;
	(void)discarded;
	l->kva[(vaddr - POOL) / PG] = 0;
}

static const struct kp_ops lender_ops = {
	.name = "lender", .init = lender_init, .fault = lender_fault,
	.released = lender_released, .revoked = lender_revoked,
};

static void event(struct tr_replay *r, struct tr_event ev)
{
	char why[TR_WHY_SIZE];

	assert_int_equal(tr_replay_event(r, &ev, why, sizeof why), 0);
}

/* The lender's page that holds kernel page kp. */
static km_vaddr_t lent_at(struct km_kpage kp)
{
	uint64_t kva = km_kpage_kva(kp);

	for (uint32_t i = 0; i < NPOOL; i++)
		if (lender.kva[i] == kva)
			return POOL + i * PG;
	fail_msg("the lender does not hold %s/%u", km_ktype_name(kp.type),
	         kp.index);
	return 0;
}

/*
 * Both tasks' node tables go out, their forms dropped; the kernel's own
 * pool runs dry, and the lender denies restores.  Deleting task 1 needs
 * its node table back, and there is no frame to enter it.
 */
static void test_replay_keeps_a_task_the_kernel_cannot_delete(void **state)
{
	struct tr_replay_config cfg = tr_replay_config_default(4096);
	const km_vaddr_t va = 0x08048000u;
	const struct tr_task_result *res;
	struct tr_replay_stats st;
	struct tr_replay *r;
	struct km_task_stats ts;
	km_task_t id[2], hog[8] = { 0 }, spare[2];
	struct km *km;
	char why[TR_WHY_SIZE];

	(void)state;
	cfg.kmem = KM_KMEM_KPAGER;
	cfg.kpager = &lender_ops;
	cfg.kpool_frames = 32;
	if (tr_replay_create(&cfg, &r, why, sizeof why) != 0)
		fail_msg("%s", why);
	km = tr_replay_model(r);
	for (uint32_t t = 1; t <= 2; t++) {
		event(r, (struct tr_event){ .kind = TR_TASK, .a = t,
		                            .name = "t" });
		event(r, (struct tr_event){ .kind = TR_THREAD, .a = t, .b = t });
		event(r, (struct tr_event){ .kind = TR_TOUCH, .a = t, .va = va,
		                            .access = TR_ACC_WRITE });
		id[t - 1] = tr_replay_task(r, t - 1)->km_id;
		assert_int_equal(km_kpager_revoke(km, lender.id, lent_at(
		                 (struct km_kpage){ id[t - 1], KM_KT_NT,
		                                    va >> 22 }), true), KM_OK);
	}
	lender.deny_restores = true;
	kmt_kernel_pool_exactly(km, 0, hog, spare);
	CHECK(km);

	event(r, (struct tr_event){ .kind = TR_ENDTASK, .a = 1, .status = 3 });
	/* The replay goes on; the task is kept, and says why. */
	tr_replay_stats(r, &st);
	assert_int_equal(st.kept, 1);
	res = tr_replay_task(r, 0);
	assert_true(res->ended);
	assert_true(res->kept);
	assert_int_equal(res->status, 3);
	print_message("why: %s\n", res->why);
	assert_non_null(strstr(res->why, "kernel kept it"));
	assert_int_equal(km_task_stats(km, id[0], &ts), KM_OK);
	CHECK(km);
	/* Its trace id may be used again; task 2 ends as usual. */
	event(r, (struct tr_event){ .kind = TR_TASK, .a = 1, .name = "new" });
	event(r, (struct tr_event){ .kind = TR_ENDTASK, .a = 1 });
	tr_replay_finish(r);
	tr_replay_stats(r, &st);
	assert_int_equal(st.kept, 1);
	assert_false(tr_replay_task(r, 2)->kept);
	CHECK(km);
	tr_replay_destroy(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_replay_keeps_a_task_the_kernel_cannot_delete),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
