/*
 * An example of a kpager policy built as a shared object and loaded by
 * path ("path/to/kp_example_policy.so:frames=8"), to show the ABI of
 * pagers.h: the object exports kpsim_policy() and calls only km_*
 * functions, which the loading program provides.
 *
 * The policy, "lifo", lends frames from a fixed pool, the most recently
 * returned first (a returned frame is likely still in the host's cache);
 * it never revokes and denies when the pool is empty.  It keeps no forms:
 * a page the kernel takes back on its own comes back rebuilt or lost.
 */
#include "kmodel.h"
#include "pagers.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LIFO_BASE 0x10000000u

struct lifo {
	uint32_t frames;
	uint32_t nfree;
	km_vaddr_t free[];      /* [frames]: free pages, next on top */
};

/* "frames=N" is the one argument, 1 .. 4096 (default 16). */
static int parse_frames(const char *args, uint32_t *frames, char *why,
                        size_t why_len)
{
	char *end;
	unsigned long v;

	*frames = 16;
	if (*args == '\0')
		return KM_OK;
	if (strncmp(args, "frames=", 7) != 0) {
		snprintf(why, why_len, "lifo: '%s': the one argument is "
		         "frames=N", args);
		return KM_EINVAL;
	}
	v = strtoul(args + 7, &end, 10);
	if (*end != '\0' || v == 0 || v > 4096) {
		snprintf(why, why_len, "lifo: frames=%s: not a number from 1 "
		         "to 4096", args + 7);
		return KM_EINVAL;
	}
	*frames = (uint32_t)v;
	return KM_OK;
}

static int lifo_init(struct km *km, km_task_t task, const char *args,
                     void **state, char *why, size_t why_len)
{
	struct lifo *s;
	uint32_t frames;
	int err;

	if ((err = parse_frames(args, &frames, why, why_len)) != KM_OK)
		return err;
	s = malloc(sizeof *s + frames * sizeof s->free[0]);
	if (s == NULL) {
		snprintf(why, why_len, "lifo: out of host memory");
		return KM_EIO;
	}
	err = km_sigma0_map(km, task, LIFO_BASE, frames, KM_R | KM_W);
	if (err != KM_OK) {
		snprintf(why, why_len, "lifo: sigma0 could not map %u frames: "
		         "%s", frames, km_strerror(err));
		free(s);
		return err;
	}
	s->frames = s->nfree = frames;
	for (uint32_t i = 0; i < frames; i++)
		s->free[i] = LIFO_BASE + (frames - 1 - i) * KM_PAGE_SIZE;
	*state = s;
	return KM_OK;
}

static void lifo_fini(void *state)
{
	free(state);
}

static void lifo_fault(void *state, const struct kp_fault *f,
                       struct kp_decision *d)
{
	struct lifo *s = state;

	if (s->nfree == 0) {
		d->action = KP_DENY;
		return;
	}
	d->action = KP_MAP;
	d->vaddr = s->free[--s->nfree];
	d->discarded = f->restore;      /* it keeps no forms */
}

static void lifo_give_back(struct lifo *s, km_vaddr_t vaddr)
{
	if (s->nfree < s->frames)
		s->free[s->nfree++] = vaddr;
}

static void lifo_released(void *state, km_vaddr_t vaddr, struct km_kpage kp)
{
	lifo_give_back(state, vaddr);
}

static void lifo_revoked(void *state, km_vaddr_t vaddr, struct km_kpage kp,
                         bool discarded)
{
	lifo_give_back(state, vaddr);
}

static const struct kp_ops lifo_ops = {
	.name = "lifo",
	.init = lifo_init,
	.fini = lifo_fini,
	.fault = lifo_fault,
	.released = lifo_released,
	.revoked = lifo_revoked,
};

__attribute__((visibility("default")))
const struct kp_ops *kpsim_policy(unsigned abi_version)
{
	return abi_version == KP_ABI_VERSION ? &lifo_ops : NULL;
}
