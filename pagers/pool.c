/*
 * pool: a kpager's frames, what each one holds, and the backing store of
 * forms it keeps for revoked pages (see pool.h).
 */
#include "pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int kp_pool_init(struct kp_pool *p, struct km *km, km_task_t task,
                 const char *policy, const char *frames_key, uint32_t frames,
                 km_vaddr_t base, enum kp_forms forms_mode, char *why,
                 size_t why_len)
{
	int err;

	/* Is the pool a sane size, page aligned, inside user space? */
	if (frames == 0 || frames > (1u << 20)) {
		snprintf(why, why_len, "%s: %s=%u: must be 1 .. 1048576",
		         policy, frames_key, frames);
		return KM_EINVAL;
	}
	if ((base & (KM_PAGE_SIZE - 1)) != 0 || base == 0 ||
	    (uint64_t)base + (uint64_t)frames * KM_PAGE_SIZE > KM_UTCB_AREA) {
		snprintf(why, why_len, "%s: base=0x%x: must be page aligned, "
		         "nonzero, with the pool below 0x%x", policy, base,
		         KM_UTCB_AREA);
		return KM_EINVAL;
	}
	memset(p, 0, sizeof *p);
	p->fr = calloc(frames, sizeof *p->fr);
	p->free = calloc(frames, sizeof *p->free);
	if (p->fr == NULL || p->free == NULL) {
		kp_pool_fini(p);
		snprintf(why, why_len, "%s: out of host memory", policy);
		return KM_EIO;
	}
	err = km_sigma0_map(km, task, base, frames, KM_R | KM_W);
	if (err != KM_OK) {
		kp_pool_fini(p);
		snprintf(why, why_len, "%s: sigma0 could not map %u frames at "
		         "0x%x: %s", policy, frames, base, km_strerror(err));
		return err;
	}
	p->km = km;
	p->task = task;
	p->id = KM_ROOT_KPAGER;         /* known from the first fault */
	p->base = base;
	p->frames = frames;
	p->forms_mode = forms_mode;
	for (uint32_t i = 0; i < frames; i++)
		p->free[i] = frames - 1 - i;
	p->nfree = frames;
	return KM_OK;
}

void kp_pool_fini(struct kp_pool *p)
{
	if (p == NULL)
		return;
	for (uint32_t i = 0; i < p->nform; i++)
		free(p->form[i].bytes);
	free(p->form);
	free(p->fr);
	free(p->free);
	free(p->tally);
	p->form = NULL;
	p->fr = NULL;
	p->free = NULL;
	p->tally = NULL;
	p->nform = p->form_cap = 0;
}

uint32_t kp_pool_index(const struct kp_pool *p, km_vaddr_t vaddr)
{
	uint32_t i;

	if (vaddr < p->base || (vaddr & (KM_PAGE_SIZE - 1)) != 0)
		return KP_NONE;
	i = (vaddr - p->base) >> KM_PAGE_SHIFT;
	return i < p->frames ? i : KP_NONE;
}

uint32_t kp_pool_take(struct kp_pool *p)
{
	return p->nfree > 0 ? p->free[--p->nfree] : KP_NONE;
}

/* Back on the free stack.  Frames come back in any order; the stack keeps
 * no order, which only matters for where the next page lands. */
static void give_back(struct kp_pool *p, uint32_t i)
{
	p->fr[i].state = KP_FREE;
	p->free[p->nfree++] = i;
}

static uint32_t form_find(const struct kp_pool *p, uint64_t kva)
{
	for (uint32_t j = 0; j < p->nform; j++)
		if (p->form[j].kva == kva)
			return j;
	return KP_NONE;
}

static void form_drop(struct kp_pool *p, uint32_t j)
{
	free(p->form[j].bytes);
	p->form[j] = p->form[--p->nform];
}

/*
 * The bytes of the pool's page i, as the kpager's own code would reach
 * them (to write them if `write`): the frame its mapping at that page
 * holds now, or NULL if it has none with those rights there.  Not a frame
 * number kept from the start: the page may have been unmapped, granted
 * away or replaced since (by the kpager's task itself, or by whoever
 * mapped it the page), and the frame that was behind it may now be
 * another task's, or in the kernel's use.  From inside a callback the
 * lookup is also refused while the pages holding the kpager's own
 * mapping are out: the kpager would fault on its page, and a callback
 * cannot wait for that.
 */
static uint8_t *page_bytes(const struct kp_pool *p, uint32_t i, bool write)
{
	struct km_mapping m;

	if (km_lookup(p->km, p->task, kp_pool_vaddr(p, i), &m) != KM_OK ||
	    m.lent || !(m.rights & (write ? KM_W : KM_R)))
		return NULL;
	return km_frame_ptr(p->km, m.pfn);
}

/* Copies the form in frame `i` to the backing store.  False if the host
 * has no memory for it, or the frame cannot be read (the caller keeps
 * the form in the frame). */
static bool form_save(struct kp_pool *p, uint32_t i)
{
	const uint8_t *frame = page_bytes(p, i, false);
	struct kp_form *nf;
	uint8_t *bytes;

	if (frame == NULL)
		return false;

	if (p->nform == p->form_cap) {
		uint32_t cap = p->form_cap ? p->form_cap * 2 : 16;

		nf = realloc(p->form, cap * sizeof *nf);
		if (nf == NULL)
			return false;
		p->form = nf;
		p->form_cap = cap;
	}
	bytes = malloc(KM_PAGE_SIZE);
	if (bytes == NULL)
		return false;
	memcpy(bytes, frame, KM_PAGE_SIZE);
	p->form[p->nform].kva = p->fr[i].kva;
	p->form[p->nform].bytes = bytes;
	p->nform++;
	return true;
}

static void decide_map(const struct kp_pool *p, uint32_t i, bool discarded,
                       struct kp_decision *d)
{
	d->action = KP_MAP;
	d->vaddr = kp_pool_vaddr(p, i);
	d->discarded = discarded;
}

bool kp_pool_map_held(struct kp_pool *p, const struct kp_fault *f,
                      struct kp_decision *d)
{
	if (!f->restore)
		return false;
	for (uint32_t i = 0; i < p->frames; i++) {
		if (p->fr[i].state == KP_HELD && p->fr[i].kva == f->kva) {
			/* Off the free stack: HELD frames are not on it. */
			p->fr[i].state = KP_LENT;
			p->fr[i].lent_at = f->now;
			decide_map(p, i, false, d);
			return true;
		}
	}
	return false;
}

void kp_pool_lend(struct kp_pool *p, uint32_t i, const struct kp_fault *f,
                  struct kp_decision *d)
{
	bool discarded = false;

	if (f->restore) {
		uint32_t j = form_find(p, f->kva);
		uint8_t *frame = j != KP_NONE ? page_bytes(p, i, true) : NULL;

		/* A form the kpager cannot put back in its page is lost to
		 * it as much as one it never kept. */
		if (frame != NULL)
			memcpy(frame, p->form[j].bytes, KM_PAGE_SIZE);
		if (j != KP_NONE)
			form_drop(p, j);
		discarded = frame == NULL;
	}
	p->fr[i].state = KP_LENT;
	p->fr[i].kp = f->kpage;
	p->fr[i].kva = f->kva;
	p->fr[i].lent_at = f->now;
	decide_map(p, i, discarded, d);
}

void kp_pool_fault_begin(struct kp_pool *p, const struct kp_fault *f)
{
	p->id = f->kpager;
	if (p->in_retry && f->op != p->retry_op)
		p->in_retry = false;
	p->last_fault = f->now;
	p->last_op = f->op;
}

uint64_t kp_pool_victim_bound(const struct kp_pool *p)
{
	return p->in_retry ? p->retry_since + 1 : UINT64_MAX;
}

void kp_pool_evict_or_deny(struct kp_pool *p, uint32_t i,
                           const struct kp_fault *f, struct kp_decision *d)
{
	enum km_ktype t;

	if (i == KP_NONE) {
		d->action = KP_DENY;
		return;
	}
	t = p->fr[i].kp.type;
	p->in_retry = true;
	p->retry_since = p->last_fault;
	p->retry_op = p->last_op;
	d->action = KP_REVOKE;
	d->vaddr = kp_pool_vaddr(p, i);
	d->discarded = t == KM_KT_PD || t == KM_KT_PT || t == KM_KT_ND;
}

void kp_pool_use(struct kp_pool *p, uint32_t i, bool clear, bool *referenced,
                 uint64_t *last_use)
{
	uint64_t last = 0;
	bool ref = false;

	/* (Before its first fault a kpager has lent nothing.) */
	if (p->id == KM_ROOT_KPAGER ||
	    km_kpager_page_use(p->km, p->id, kp_pool_vaddr(p, i), clear, &ref,
	                       &last) != KM_OK) {
		ref = false;
		last = 0;
	}
	*referenced = ref;
	*last_use = last > p->fr[i].lent_at ? last : p->fr[i].lent_at;
}

uint32_t kp_pool_lru(struct kp_pool *p, km_task_t task, uint64_t before)
{
	uint32_t best = KP_NONE;
	uint64_t best_use = UINT64_MAX;

	if (before > kp_pool_victim_bound(p))
		before = kp_pool_victim_bound(p);
	for (uint32_t i = 0; i < p->frames; i++) {
		bool ref;
		uint64_t last;

		if (p->fr[i].state != KP_LENT ||
		    (task != KP_ANY_TASK && p->fr[i].kp.task != task))
			continue;
		kp_pool_use(p, i, false, &ref, &last);
		if (last < before && (best == KP_NONE || last < best_use)) {
			best = i;
			best_use = last;
		}
	}
	return best;
}

uint32_t kp_pool_used_by(const struct kp_pool *p, km_task_t task)
{
	uint32_t n = 0;

	for (uint32_t i = 0; i < p->frames; i++)
		if (p->fr[i].state != KP_FREE &&
		    (task == KP_ANY_TASK || p->fr[i].kp.task == task))
			n++;
	return n;
}

/* kp_pool_largest_client without its table, if the host refused it:
 * the same answer, in time quadratic in the pool. */
static km_task_t largest_client_slowly(const struct kp_pool *p)
{
	uint32_t best_n = 0;
	km_task_t best = KP_ANY_TASK;

	for (uint32_t i = 0; i < p->frames; i++) {
		km_task_t t = p->fr[i].kp.task;
		uint32_t n;

		if (p->fr[i].state != KP_LENT)
			continue;
		n = kp_pool_used_by(p, t);
		if (n > best_n || (n == best_n && t < best)) {
			best = t;
			best_n = n;
		}
	}
	return best;
}

km_task_t kp_pool_largest_client(struct kp_pool *p)
{
	uint32_t mask, best_n = 0;
	km_task_t best = KP_ANY_TASK;

	/* Count each client's frames in an open-addressing table (at most
	 * `frames` clients in twice as many slots), then pick.  The table
	 * is made at the first call: only some policies ask. */
	if (p->tally == NULL) {
		uint32_t cap = 2;

		while (cap < 2 * p->frames)
			cap *= 2;
		if ((p->tally = calloc(cap, sizeof *p->tally)) == NULL)
			return largest_client_slowly(p);
		p->tally_cap = cap;
	}
	mask = p->tally_cap - 1;
	memset(p->tally, 0, p->tally_cap * sizeof *p->tally);
	for (uint32_t i = 0; i < p->frames; i++) {
		km_task_t t = p->fr[i].kp.task;
		uint32_t h;

		if (p->fr[i].state == KP_FREE)
			continue;
		h = (t * 0x9E3779B1u) & mask;
		while (p->tally[h].n > 0 && p->tally[h].task != t)
			h = (h + 1) & mask;
		p->tally[h].task = t;
		p->tally[h].n++;
		p->tally[h].lent |= p->fr[i].state == KP_LENT;
	}
	for (uint32_t h = 0; h < p->tally_cap; h++) {
		const struct kp_tally *c = &p->tally[h];

		if (c->n > 0 && c->lent &&
		    (c->n > best_n || (c->n == best_n && c->task < best))) {
			best = c->task;
			best_n = c->n;
		}
	}
	return best;
}

void kp_pool_on_released(void *state, km_vaddr_t vaddr, struct km_kpage kp)
{
	struct kp_pool *p = state;
	uint32_t i = kp_pool_index(p, vaddr);

	if (i != KP_NONE && p->fr[i].state == KP_LENT)
		give_back(p, i);
}

void kp_pool_on_revoked(void *state, km_vaddr_t vaddr, struct km_kpage kp,
                        bool discarded)
{
	struct kp_pool *p = state;
	uint32_t i = kp_pool_index(p, vaddr);

	if (i == KP_NONE || p->fr[i].state != KP_LENT)
		return;
	p->fr[i].kp = kp;
	p->fr[i].kva = km_kpage_kva(kp);
	if (discarded)
		give_back(p, i);
	else if (p->forms_mode == KP_FORMS_SAVE && form_save(p, i))
		give_back(p, i);
	else
		p->fr[i].state = KP_HELD;
}

void kp_pool_on_forgotten(void *state, struct km_kpage kp)
{
	struct kp_pool *p = state;
	uint64_t kva = km_kpage_kva(kp);
	uint32_t j = form_find(p, kva);

	if (j != KP_NONE)
		form_drop(p, j);
	for (uint32_t i = 0; i < p->frames; i++)
		if (p->fr[i].state == KP_HELD && p->fr[i].kva == kva)
			give_back(p, i);
}

void kp_pool_on_aborted(void *state, const struct kp_fault *f)
{
	struct kp_pool *p = state;

	/* The page was missing, so only the frame just named holds it. */
	for (uint32_t i = 0; i < p->frames; i++) {
		if (p->fr[i].state != KP_LENT || p->fr[i].kva != f->kva)
			continue;
		if (f->restore)
			p->fr[i].state = KP_HELD;
		else
			give_back(p, i);
		return;
	}
}

void kp_pool_on_fini(void *state)
{
	kp_pool_fini(state);
	free(state);
}

int kp_no_memory(const char *policy, char *why, size_t why_len)
{
	snprintf(why, why_len, "%s: out of host memory", policy);
	return KM_EIO;
}
