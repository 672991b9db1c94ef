/*
 * clock-typed: a clock that knows what a kernel page holds (beyond the
 * paper).  It is GCLOCK: each lent frame has a counter, set to its page's
 * type weight when it is lent and whenever the hand finds it referenced;
 * the hand decrements an unreferenced counter and takes the frame when the
 * counter is already zero.  A weight is how many extra sweeps a page
 * survives unused, so cheap pages go first and expensive ones only after
 * they have been idle for longer; among equals the hand goes round.
 */
#include "pagers.h"
#include "pool.h"

#include <stdlib.h>

/*
 * What losing a page costs, by type (enum km_ktype order).  Page tables
 * and node directories go out vacant and are rebuilt from what stays in
 * the kernel (PTEs refilled from mapping nodes on their next touch, live
 * counts recounted).  A page directory is rebuilt too, but every
 * operation on the task needs it first and it brings back every table
 * under it.  UTCB pages keep a form the policy saves and copies back.
 * KTCB pages are sealed per thread and checked on return, and a thread
 * waits while its page is out.  Node tables and MDB pages go out
 * localised and come back checked against a digest; a node table is
 * cheap to lose (it is rebuilt), an MDB page is not.
 */
static const uint8_t type_weight[KM_KT_COUNT] = {
	[KM_KT_PD] = 3, [KM_KT_ND] = 0, [KM_KT_PT] = 0, [KM_KT_NT] = 1,
	[KM_KT_MDB] = 3, [KM_KT_UTCB] = 1, [KM_KT_KTCB] = 3,
};
#define MAX_WEIGHT 3u

struct clock_typed {
	struct kp_pool pool;    /* first: the pool's callbacks take the state */
	uint8_t *count;         /* per frame: sweeps left before it may go */
	uint32_t hand;          /* the next frame the hand looks at */
};

static void ct_fini(void *state)
{
	struct clock_typed *c = state;

	if (c != NULL)
		free(c->count);
	kp_pool_on_fini(state);
}

static int ct_init(struct km *km, km_task_t task, const char *args,
                   void **state, char *why, size_t why_len)
{
	static const char *const known[] = { "pool", "base", NULL };
	struct clock_typed *c;
	uint32_t frames, base;
	int err;

	if ((err = kp_args_check(args, known, why, why_len)) != KM_OK ||
	    (err = kp_arg_u32(args, "pool", 64, &frames, why, why_len)) ||
	    (err = kp_arg_u32(args, "base", 0x10000000u, &base, why, why_len)))
		return err;
	if ((c = calloc(1, sizeof *c)) == NULL)
		return kp_no_memory("clock-typed", why, why_len);
	err = kp_pool_init(&c->pool, km, task, "clock-typed", "pool",
	                   frames, base, KP_FORMS_SAVE, why, why_len);
	if (err != KM_OK) {
		free(c);
		return err;
	}
	if ((c->count = calloc(frames, 1)) == NULL) {
		ct_fini(c);
		return kp_no_memory("clock-typed", why, why_len);
	}
	*state = c;
	return KM_OK;
}

/* Moves the hand until it takes a frame.  Every referenced mark is
 * cleared within one turn and every counter reaches zero within
 * MAX_WEIGHT more, so MAX_WEIGHT + 2 turns find a victim if any frame is
 * lent and may go (a retry's own pages may not: kp_pool_victim_bound).
 * Returns its index or KP_NONE. */
static uint32_t sweep(struct clock_typed *c)
{
	struct kp_pool *p = &c->pool;
	uint64_t bound = kp_pool_victim_bound(p);

	for (uint64_t step = 0; step < (uint64_t)p->frames * (MAX_WEIGHT + 2);
	     step++) {
		uint32_t i = c->hand;
		bool ref;
		uint64_t last;

		c->hand = (c->hand + 1) % p->frames;
		if (p->fr[i].state != KP_LENT)
			continue;
		/* A page the retry needs keeps its mark for later turns. */
		kp_pool_use(p, i, false, &ref, &last);
		if (last >= bound)
			continue;
		kp_pool_use(p, i, true, &ref, &last);
		if (ref)
			c->count[i] = type_weight[p->fr[i].kp.type];
		else if (c->count[i] == 0)
			return i;
		else
			c->count[i]--;
	}
	return KP_NONE;
}

static void ct_fault(void *state, const struct kp_fault *f,
                     struct kp_decision *d)
{
	struct clock_typed *c = state;
	uint32_t i;

	kp_pool_fault_begin(&c->pool, f);
	if (!kp_pool_map_held(&c->pool, f, d)) {
		if ((i = kp_pool_take(&c->pool)) == KP_NONE) {
			kp_pool_evict_or_deny(&c->pool, sweep(c), f, d);
			return;
		}
		kp_pool_lend(&c->pool, i, f, d);
	}
	c->count[kp_pool_index(&c->pool, d->vaddr)] =
		type_weight[f->kpage.type];
}

const struct kp_ops kp_clock_typed_ops = {
	.name = "clock-typed",
	.init = ct_init,
	.fini = ct_fini,
	.fault = ct_fault,
	.released = kp_pool_on_released,
	.forgotten = kp_pool_on_forgotten,
	.revoked = kp_pool_on_revoked,
	.aborted = kp_pool_on_aborted,
};
