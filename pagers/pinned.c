/*
 * pinned: a kpager for a real-time subsystem.  Its frames are reserved
 * from sigma0 when it starts, it never takes a page back, and each client
 * task has a hard cap, so the kernel memory a client can ever hold is
 * known before it runs and no other client can eat into it.
 */
#include "pagers.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>

struct pinned {
	struct kp_pool pool;    /* first: the pool's callbacks take the state */
	uint32_t cap;           /* frames one client may hold */
};

static int pinned_init(struct km *km, km_task_t task, const char *args,
                       void **state, char *why, size_t why_len)
{
	static const char *const known[] = { "frames", "cap", "base", NULL };
	struct pinned *s;
	uint32_t frames, cap, base;
	int err;

	if ((err = kp_args_check(args, known, why, why_len)) != KM_OK ||
	    (err = kp_arg_u32(args, "frames", 64, &frames, why, why_len)) ||
	    (err = kp_arg_u32(args, "cap", frames, &cap, why, why_len)) ||
	    (err = kp_arg_u32(args, "base", 0x10000000u, &base, why, why_len)))
		return err;
	/* A cap of nothing, or one the pool cannot honour, is a mistake in
	 * the subsystem's sizing, not a policy.  (A pool of nothing is the
	 * pool's to refuse, by its own name.) */
	if (frames != 0 && (cap == 0 || cap > frames)) {
		snprintf(why, why_len, "pinned: cap=%u: must be 1 .. frames "
		         "(%u)", cap, frames);
		return KM_EINVAL;
	}
	if ((s = calloc(1, sizeof *s)) == NULL)
		return kp_no_memory("pinned", why, why_len);
	/* Forms of pages the kernel takes back on its own stay in their
	 * reserved frame, so bringing them back never needs a free one. */
	err = kp_pool_init(&s->pool, km, task, "pinned", "frames",
	                   frames, base, KP_FORMS_IN_FRAME, why, why_len);
	if (err != KM_OK) {
		free(s);
		return err;
	}
	s->cap = cap;
	*state = s;
	return KM_OK;
}

static void pinned_fault(void *state, const struct kp_fault *f,
                         struct kp_decision *d)
{
	struct pinned *s = state;
	uint32_t i;

	if (kp_pool_used_by(&s->pool, f->kpage.task) >= s->cap) {
		d->action = KP_DENY;
		return;
	}
	if (kp_pool_map_held(&s->pool, f, d))
		return;
	if ((i = kp_pool_take(&s->pool)) == KP_NONE) {
		d->action = KP_DENY;
		return;
	}
	kp_pool_lend(&s->pool, i, f, d);
}

const struct kp_ops kp_pinned_ops = {
	.name = "pinned",
	.init = pinned_init,
	.fini = kp_pool_on_fini,
	.fault = pinned_fault,
	.released = kp_pool_on_released,
	.forgotten = kp_pool_on_forgotten,
	.revoked = kp_pool_on_revoked,
	.aborted = kp_pool_on_aborted,
};
