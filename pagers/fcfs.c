/*
 * fcfs: the simplest kpager.  At start it obtains a pool of frames from
 * sigma0 (mapped into its own task), then hands them out first come, first
 * served, to whichever client faults; it never takes a page back.  When the
 * pool is empty the fault is denied, and the client's operation fails.
 */
#include "pagers.h"

#include <stdio.h>
#include <stdlib.h>

struct fcfs {
	km_vaddr_t *free;       /* pool pages not lent, lowest on top */
	uint32_t nfree;
	uint32_t frames;        /* pool size */
};

static int fcfs_init(struct km *km, km_task_t task, const char *args,
                     void **state, char *why, size_t why_len)
{
	static const char *const known[] = { "frames", "base", NULL };
	struct fcfs *s;
	uint32_t frames, base;
	int err;

	if ((err = kp_args_check(args, known, why, why_len)) != KM_OK ||
	    (err = kp_arg_u32(args, "frames", 64, &frames, why, why_len)) ||
	    (err = kp_arg_u32(args, "base", 0x10000000u, &base, why, why_len)))
		return err;
	if (frames == 0 || frames > (1u << 20) ||
	    (base & (KM_PAGE_SIZE - 1)) != 0) {
		snprintf(why, why_len, "fcfs: frames must be 1 .. 2^20 and "
		         "base page aligned");
		return KM_EINVAL;
	}
	s = calloc(1, sizeof *s);
	if (s != NULL)
		s->free = calloc(frames, sizeof *s->free);
	if (s == NULL || s->free == NULL) {
		free(s);
		snprintf(why, why_len, "fcfs: out of host memory");
		return KM_EIO;
	}
	err = km_sigma0_map(km, task, base, frames, KM_R | KM_W);
	if (err != KM_OK) {
		snprintf(why, why_len, "fcfs: sigma0 could not map %u frames "
		         "at 0x%x: %s", frames, base, km_strerror(err));
		free(s->free);
		free(s);
		return err;
	}
	for (uint32_t i = 0; i < frames; i++)
		s->free[i] = base + (frames - 1 - i) * KM_PAGE_SIZE;
	s->nfree = frames;
	s->frames = frames;
	*state = s;
	return KM_OK;
}

static void fcfs_fini(void *state)
{
	struct fcfs *s = state;

	if (s == NULL)
		return;
	free(s->free);
	free(s);
}

static void fcfs_fault(void *state, const struct kp_fault *f,
                       struct kp_decision *d)
{
	struct fcfs *s = state;

	(void)f;
	if (s->nfree == 0) {
		d->action = KP_DENY;
		return;
	}
	d->action = KP_MAP;
	d->vaddr = s->free[--s->nfree];
}

static void fcfs_released(void *state, km_vaddr_t vaddr, struct km_kpage kp)
{
	struct fcfs *s = state;

	(void)kp;
	if (s->nfree < s->frames)
		s->free[s->nfree++] = vaddr;
}

const struct kp_ops kp_fcfs_ops = {
	.name = "fcfs",
	.init = fcfs_init,
	.fini = fcfs_fini,
	.fault = fcfs_fault,
	.released = fcfs_released,
};
