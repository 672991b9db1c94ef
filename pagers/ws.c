/*
 * ws: Denning's working set, measured in simulated cycles.  A client's
 * working set at time t is the set of its kernel pages the kernel used in
 * (t - window, t]; the kernel reports each page's last use
 * (km_kpager_page_use).  A page goes when the pool runs dry, and then one
 * outside every working set, the largest client's first; and to keep a
 * reserve of free frames (`reserve`, default an eighth of the pool), the
 * largest client's own faults pay for evicting its least recently used
 * pages (outside its working set first) while the reserve is short.  So a client that grabs memory
 * it then leaves idle (a page-table bomb) pays for the room others get,
 * and a newcomer finds free frames rather than evicting in its own fault.
 *
 * Why the exact window and not WSClock: the pool is small and the kernel
 * keeps a last-use time per lent frame, so the true working set costs one
 * scan of the pool per fault that finds it dry; WSClock's approximation
 * pays off for large memories that cannot afford that scan.
 */
#include "pagers.h"
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>

struct ws {
	struct kp_pool pool;    /* first: the pool's callbacks take the state */
	uint64_t window;        /* in simulated cycles */
	bool shrink;            /* load=shrink, else load=deny */
	uint32_t reserve;       /* free frames kept at the hog's expense */
};

static int ws_init(struct km *km, km_task_t task, const char *args,
                   void **state, char *why, size_t why_len)
{
	static const char *const known[] = { "window", "load", "pool", "base",
	                                     "reserve", NULL };
	static const char *const load[] = { "deny", "shrink", NULL };
	struct ws *w;
	uint32_t window, frames, base, reserve;
	unsigned load_i;
	int err;

	if ((err = kp_args_check(args, known, why, why_len)) != KM_OK ||
	    (err = kp_arg_u32(args, "window", 2000000, &window, why,
	                      why_len)) ||
	    (err = kp_arg_choice(args, "load", load, &load_i, why, why_len)) ||
	    (err = kp_arg_u32(args, "pool", 64, &frames, why, why_len)) ||
	    (err = kp_arg_u32(args, "base", 0x10000000u, &base, why, why_len)) ||
	    (err = kp_arg_u32(args, "reserve", frames / 8, &reserve, why,
	                      why_len)))
		return err;
	if (frames > 0 && reserve >= frames) {
		snprintf(why, why_len, "ws: reserve=%u: must be less than the "
		         "pool (%u frames)", reserve, frames);
		return KM_EINVAL;
	}
	/* An empty window would put every page outside its working set. */
	if (window == 0) {
		snprintf(why, why_len, "ws: window=0: the window must be at "
		         "least 1 cycle");
		return KM_EINVAL;
	}
	if ((w = calloc(1, sizeof *w)) == NULL)
		return kp_no_memory("ws", why, why_len);
	err = kp_pool_init(&w->pool, km, task, "ws", "pool",
	                   frames, base, KP_FORMS_SAVE, why, why_len);
	if (err != KM_OK) {
		free(w);
		return err;
	}
	w->window = window;
	w->shrink = load_i == 1;
	w->reserve = reserve;
	*state = w;
	return KM_OK;
}

static void ws_fault(void *state, const struct kp_fault *f,
                     struct kp_decision *d)
{
	struct ws *w = state;
	struct kp_pool *p = &w->pool;
	/* Outside the working set: last used at or before now - window. */
	uint64_t outside = f->now >= w->window ? f->now - w->window + 1 : 0;
	uint32_t i;

	km_task_t hog;

	kp_pool_fault_begin(p, f);
	hog = kp_pool_largest_client(p);
	/* The reserve is short and the largest client asks: it makes room
	 * first, from its own least recently used page (outside its working
	 * set if it has one): load control aimed at whoever holds most. */
	if (p->nfree < w->reserve && hog == f->kpage.task &&
	    ((i = kp_pool_lru(p, hog, outside)) != KP_NONE ||
	     (i = kp_pool_lru(p, hog, UINT64_MAX)) != KP_NONE)) {
		kp_pool_evict_or_deny(p, i, f, d);
		return;
	}
	if (kp_pool_map_held(p, f, d))
		return;
	if ((i = kp_pool_take(p)) != KP_NONE) {
		kp_pool_lend(p, i, f, d);
		return;
	}
	/* Dry.  The largest client never takes others' frames: it pays with
	 * its own least recently used page, or waits (a node table or MDB
	 * page it needs back is then entered from the kernel's pool).  Any
	 * other client takes the largest client's page outside its working
	 * set, anyone's outside theirs, or (load=shrink) the largest
	 * client's. */
	if (hog == f->kpage.task) {
		if ((i = kp_pool_lru(p, hog, outside)) == KP_NONE)
			i = kp_pool_lru(p, hog, UINT64_MAX);
		kp_pool_evict_or_deny(p, i, f, d);
		return;
	}
	if ((i = kp_pool_lru(p, hog, outside)) == KP_NONE)
		i = kp_pool_lru(p, KP_ANY_TASK, outside);
	/* If the working sets fill the pool and want more: load control. */
	if (i == KP_NONE && w->shrink)
		i = kp_pool_lru(p, kp_pool_largest_client(p), UINT64_MAX);
	kp_pool_evict_or_deny(p, i, f, d);
}

const struct kp_ops kp_ws_ops = {
	.name = "ws",
	.init = ws_init,
	.fini = kp_pool_on_fini,
	.fault = ws_fault,
	.released = kp_pool_on_released,
	.forgotten = kp_pool_on_forgotten,
	.revoked = kp_pool_on_revoked,
	.aborted = kp_pool_on_aborted,
};
