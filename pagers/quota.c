/*
 * quota: a budget of frames per client task, or per subsystem (all the
 * kpager's clients together).  A client at its budget pays with its own
 * least recently used kernel page, whose form the policy keeps in its
 * backing store; other clients are never touched.
 */
#include "pagers.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>

struct quota {
	struct kp_pool pool;    /* first: the pool's callbacks take the state */
	uint32_t budget;        /* frames per client (per kpager: subsystem) */
	bool per_subsystem;
	bool deny_only;         /* over=deny: never revoke, deny instead */
};

static int quota_init(struct km *km, km_task_t task, const char *args,
                      void **state, char *why, size_t why_len)
{
	static const char *const known[] = { "frames", "per", "over", "pool",
	                                     "base", NULL };
	static const char *const per[] = { "task", "subsystem", NULL };
	static const char *const over[] = { "revoke", "deny", NULL };
	struct quota *q;
	uint32_t budget, frames, base;
	unsigned per_i, over_i;
	int err;

	if ((err = kp_args_check(args, known, why, why_len)) != KM_OK ||
	    (err = kp_arg_u32(args, "frames", 8, &budget, why, why_len)) ||
	    (err = kp_arg_choice(args, "per", per, &per_i, why, why_len)) ||
	    (err = kp_arg_choice(args, "over", over, &over_i, why, why_len)) ||
	    (err = kp_arg_u32(args, "pool", 64, &frames, why, why_len)) ||
	    (err = kp_arg_u32(args, "base", 0x10000000u, &base, why, why_len)))
		return err;
	/* A budget of nothing would deny every client everything. */
	if (budget == 0) {
		snprintf(why, why_len, "quota: frames=0: the budget must be "
		         "at least 1");
		return KM_EINVAL;
	}
	if ((q = calloc(1, sizeof *q)) == NULL)
		return kp_no_memory("quota", why, why_len);
	err = kp_pool_init(&q->pool, km, task, "quota", "pool",
	                   frames, base, KP_FORMS_SAVE, why, why_len);
	if (err != KM_OK) {
		free(q);
		return err;
	}
	q->budget = budget;
	q->per_subsystem = per_i == 1;
	q->deny_only = over_i == 1;
	*state = q;
	return KM_OK;
}

/* The client pays with its own least recently used page, if it has one
 * and the policy revokes at all; otherwise the fault is denied. */
static void pay_own(struct quota *q, km_task_t scope, const struct kp_fault *f,
                    struct kp_decision *d)
{
	uint32_t victim = q->deny_only ? KP_NONE :
	                  kp_pool_lru(&q->pool, scope, UINT64_MAX);

	kp_pool_evict_or_deny(&q->pool, victim, f, d);
}

static void quota_fault(void *state, const struct kp_fault *f,
                        struct kp_decision *d)
{
	struct quota *q = state;
	km_task_t scope = q->per_subsystem ? KP_ANY_TASK : f->kpage.task;
	uint32_t i;

	kp_pool_fault_begin(&q->pool, f);
	/* At its budget, a page comes in only when one of its own goes out
	 * (restores count: a form brought back takes a frame like any). */
	if (kp_pool_used_by(&q->pool, scope) >= q->budget) {
		pay_own(q, scope, f, d);
		return;
	}
	if (kp_pool_map_held(&q->pool, f, d))
		return;
	if ((i = kp_pool_take(&q->pool)) == KP_NONE) {
		pay_own(q, scope, f, d);
		return;
	}
	kp_pool_lend(&q->pool, i, f, d);
}

const struct kp_ops kp_quota_ops = {
	.name = "quota",
	.init = quota_init,
	.fini = kp_pool_on_fini,
	.fault = quota_fault,
	.released = kp_pool_on_released,
	.forgotten = kp_pool_on_forgotten,
	.revoked = kp_pool_on_revoked,
	.aborted = kp_pool_on_aborted,
};
