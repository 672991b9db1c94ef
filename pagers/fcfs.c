/*
 * fcfs: the simplest kpager.  At start it obtains a pool of frames from
 * sigma0 (mapped into its own task), then hands them out first come, first
 * served, to whichever client faults; it never takes a page back.  When the
 * pool is empty the fault is denied, and the client's operation fails.
 */
#include "pagers.h"
#include "pool.h"

#include <stdlib.h>

static int fcfs_init(struct km *km, km_task_t task, const char *args,
                     void **state, char *why, size_t why_len)
{
	static const char *const known[] = { "frames", "base", NULL };
	struct kp_pool *p;       /* the whole state: fcfs is its pool */
	uint32_t frames, base;
	int err;

	if ((err = kp_args_check(args, known, why, why_len)) != KM_OK ||
	    (err = kp_arg_u32(args, "frames", 64, &frames, why, why_len)) ||
	    (err = kp_arg_u32(args, "base", 0x10000000u, &base, why, why_len)))
		return err;
	if ((p = calloc(1, sizeof *p)) == NULL)
		return kp_no_memory("fcfs", why, why_len);
	/* It never revokes; a page the kernel takes back on its own (the
	 * kpager's mapping of it lost rights) keeps its form in its frame,
	 * which stays out of the pool until the page comes back. */
	err = kp_pool_init(p, km, task, "fcfs", "frames",
	                   frames, base, KP_FORMS_IN_FRAME, why, why_len);
	if (err != KM_OK) {
		free(p);
		return err;
	}
	*state = p;
	return KM_OK;
}

static void fcfs_fault(void *state, const struct kp_fault *f,
                       struct kp_decision *d)
{
	struct kp_pool *p = state;
	uint32_t i;

	if (kp_pool_map_held(p, f, d))
		return;
	if ((i = kp_pool_take(p)) == KP_NONE) {
		d->action = KP_DENY;
		return;
	}
	kp_pool_lend(p, i, f, d);
}

const struct kp_ops kp_fcfs_ops = {
	.name = "fcfs",
	.init = fcfs_init,
	.fini = kp_pool_on_fini,
	.fault = fcfs_fault,
	.released = kp_pool_on_released,
	.forgotten = kp_pool_on_forgotten,
	.revoked = kp_pool_on_revoked,
	.aborted = kp_pool_on_aborted,
};
