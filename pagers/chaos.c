/*
 * chaos: a kpager that misbehaves on purpose, to show that the kernel
 * copes.  It wraps another policy (`over`, default fcfs) and, at random
 * from `seed`:
 * - at a kernel page fault, instead of answering, revokes one of the
 *   pages it has lent (`revoke` per mille of faults), discarding the
 *   form `discard` per mille of those times;
 * - when a revoked page is asked back, scribbles on its form before it
 *   returns it (`scribble` per mille of restores): a few bytes, a run of
 *   bytes, or the whole page overwritten.
 * Everything else goes to the wrapped policy, with the arguments chaos
 * does not know ("chaos:seed=7,over=quota,frames=16": quota gets
 * frames=16).  The kernel must end up consistent (km_check) with only
 * the chaos kpager's clients affected: lost or rebuilt pages, refused
 * forms, stopped threads.  At the end it says what it did on stderr.
 */
#include "pagers.h"
#include "pool.h"              /* kp_no_memory */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAOS_LENT_MAX 4096u    /* pages it tracks as lent */

struct chaos {
	const struct kp_ops *over;
	void *inner;
	struct km *km;
	km_task_t task;
	uint64_t rng;
	uint32_t revoke, discard, scribble;     /* per mille */
	km_vaddr_t *lent;                       /* pages lent, unordered */
	uint32_t nlent;
	uint64_t forced, discarded, scribbled, faults, restores;
	char name[32];
};

static uint64_t rnd(struct chaos *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545F4914F6CDD1Dull;
}

static bool chance(struct chaos *c, uint32_t per_mille)
{
	return rnd(c) % 1000 < per_mille;
}

static void lent_add(struct chaos *c, km_vaddr_t va)
{
	for (uint32_t i = 0; i < c->nlent; i++)
		if (c->lent[i] == va)
			return;
	if (c->nlent < CHAOS_LENT_MAX)
		c->lent[c->nlent++] = va;
}

static void lent_drop(struct chaos *c, km_vaddr_t va)
{
	for (uint32_t i = 0; i < c->nlent; i++)
		if (c->lent[i] == va) {
			c->lent[i] = c->lent[--c->nlent];
			return;
		}
}

/* Splits args into chaos's own keys and the wrapped policy's. */
static int split_args(const char *args, char *own, char *rest, size_t len,
                      char *why, size_t why_len)
{
	static const char *const mine[] = { "seed", "over", "revoke",
	                                    "discard", "scribble", NULL };
	char buf[512], *save = NULL;

	own[0] = rest[0] = '\0';
	if (strlen(args) >= sizeof buf) {
		snprintf(why, why_len, "chaos: arguments longer than %zu bytes",
		         sizeof buf - 1);
		return KM_EINVAL;
	}
	snprintf(buf, sizeof buf, "%s", args);
	for (char *kv = strtok_r(buf, ",", &save); kv != NULL;
	     kv = strtok_r(NULL, ",", &save)) {
		size_t n = strcspn(kv, "=");
		bool is_mine = false;
		char *to;

		for (size_t i = 0; mine[i] != NULL; i++)
			is_mine |= strlen(mine[i]) == n &&
			           strncmp(mine[i], kv, n) == 0;
		to = is_mine ? own : rest;
		if (strlen(to) + strlen(kv) + 2 > len) {
			snprintf(why, why_len, "chaos: arguments too long");
			return KM_EINVAL;
		}
		if (to[0] != '\0')
			strcat(to, ",");
		strcat(to, kv);
	}
	return KM_OK;
}

static int chaos_init(struct km *km, km_task_t task, const char *args,
                      void **state, char *why, size_t why_len)
{
	static const char *const known[] = { "seed", "over", "revoke",
	                                     "discard", "scribble", NULL };
	static const char *const overs[] = { "fcfs", "quota", "ws",
	                                     "clock-typed", "pinned", NULL };
	char own[512], rest[512];
	struct chaos *c;
	uint32_t seed, revoke, discard, scribble;
	unsigned over;
	int err;

	if ((err = split_args(args, own, rest, sizeof own, why, why_len)) ||
	    (err = kp_args_check(own, known, why, why_len)) ||
	    (err = kp_arg_u32(own, "seed", 1, &seed, why, why_len)) ||
	    (err = kp_arg_choice(own, "over", overs, &over, why, why_len)) ||
	    (err = kp_arg_u32(own, "revoke", 100, &revoke, why, why_len)) ||
	    (err = kp_arg_u32(own, "discard", 250, &discard, why, why_len)) ||
	    (err = kp_arg_u32(own, "scribble", 100, &scribble, why, why_len)))
		return err;
	if (revoke > 1000 || discard > 1000 || scribble > 1000) {
		snprintf(why, why_len, "chaos: revoke, discard and scribble are "
		         "per mille: 0 .. 1000");
		return KM_EINVAL;
	}
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->lent = calloc(CHAOS_LENT_MAX, sizeof *c->lent)) == NULL) {
		free(c);
		return kp_no_memory("chaos", why, why_len);
	}
	c->over = kp_find(overs[over]);
	c->km = km;
	c->task = task;
	c->rng = (uint64_t)seed * 0x9E3779B97F4A7C15ull | 1;
	c->revoke = revoke;
	c->discard = discard;
	c->scribble = scribble;
	snprintf(c->name, sizeof c->name, "chaos over %s", c->over->name);
	err = c->over->init(km, task, rest, &c->inner, why, why_len);
	if (err != KM_OK) {
		free(c->lent);
		free(c);
		return err;
	}
	*state = c;
	return KM_OK;
}

/* Overwrites part of the form in the frame the kpager maps at va. */
static void scribble(struct chaos *c, km_vaddr_t va)
{
	struct km_mapping m;
	uint8_t *p;

	if (km_lookup(c->km, c->task, va, &m) != KM_OK)
		return;
	p = km_frame_ptr(c->km, m.pfn);
	switch (rnd(c) % 3) {
	case 0:                 /* a few bytes */
		for (uint64_t k = 0, n = 1 + rnd(c) % 8; k < n; k++)
			p[rnd(c) % KM_PAGE_SIZE] = (uint8_t)rnd(c);
		break;
	case 1:                 /* a run */
		memset(p + rnd(c) % (KM_PAGE_SIZE - 64), (int)(rnd(c) & 0xff),
		       64);
		break;
	default:                /* the whole page */
		for (uint32_t k = 0; k < KM_PAGE_SIZE; k += 8) {
			uint64_t v = rnd(c);

			memcpy(p + k, &v, 8);
		}
		break;
	}
	c->scribbled++;
}

static void chaos_fault(void *state, const struct kp_fault *f,
                        struct kp_decision *d)
{
	struct chaos *c = state;

	c->faults++;
	if (c->nlent > 0 && chance(c, c->revoke)) {
		d->action = KP_REVOKE;
		d->vaddr = c->lent[rnd(c) % c->nlent];
		d->discarded = chance(c, c->discard);
		c->forced++;
		c->discarded += d->discarded;
		return;
	}
	c->over->fault(c->inner, f, d);
	if (d->action != KP_MAP)
		return;
	lent_add(c, d->vaddr);
	if (f->restore) {
		c->restores++;
		if (!d->discarded && chance(c, c->scribble))
			scribble(c, d->vaddr);
	}
}

static void chaos_released(void *state, km_vaddr_t vaddr, struct km_kpage kp)
{
	struct chaos *c = state;

	lent_drop(c, vaddr);
	if (c->over->released != NULL)
		c->over->released(c->inner, vaddr, kp);
}

static void chaos_revoked(void *state, km_vaddr_t vaddr, struct km_kpage kp,
                          bool discarded)
{
	struct chaos *c = state;

	lent_drop(c, vaddr);
	if (c->over->revoked != NULL)
		c->over->revoked(c->inner, vaddr, kp, discarded);
}

static void chaos_forgotten(void *state, struct km_kpage kp)
{
	struct chaos *c = state;

	if (c->over->forgotten != NULL)
		c->over->forgotten(c->inner, kp);
}

static void chaos_aborted(void *state, const struct kp_fault *f)
{
	struct chaos *c = state;

	/* Its answer was voided: whatever it lent for it is its own again
	 * (every policy chaos wraps takes this callback). */
	c->over->aborted(c->inner, f);
}

static void chaos_fini(void *state)
{
	struct chaos *c = state;

	fprintf(stderr, "kpager %s: %llu kernel page faults, %llu restores; "
	        "forced %llu revocations (%llu discarding the form), "
	        "scribbled on %llu forms\n", c->name,
	        (unsigned long long)c->faults, (unsigned long long)c->restores,
	        (unsigned long long)c->forced,
	        (unsigned long long)c->discarded,
	        (unsigned long long)c->scribbled);
	if (c->over->fini != NULL)
		c->over->fini(c->inner);
	free(c->lent);
	free(c);
}

const struct kp_ops kp_chaos_ops = {
	.name = "chaos",
	.init = chaos_init,
	.fini = chaos_fini,
	.fault = chaos_fault,
	.released = chaos_released,
	.forgotten = chaos_forgotten,
	.revoked = chaos_revoked,
	.aborted = chaos_aborted,
};
