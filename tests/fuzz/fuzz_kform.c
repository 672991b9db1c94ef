/*
 * libFuzzer target: the kernel's import of external forms, against a
 * kpager the fuzzer plays.  Two client tasks of one kpager work (touch,
 * map, grant, unmap, make and end threads); the input also says when the
 * kpager revokes which of its lent pages (keeping the form or not), and
 * what it does to a form before it gives it back: bytes overwritten,
 * another page's form, a false "discarded", a denial.  A task of the
 * kernel's own pool may take its frames meanwhile, so that a repair finds
 * none.  The clients may also map pages to the kpager's own task, which
 * looks them up from every fault callback (as the policies' LRU looks up
 * its pages), whatever state the kernel is in then.  After every step
 * km_check must hold: whatever the kpager does, the model stays whole.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmodel.h"

#define PG KM_PAGE_SIZE
#define POOL 0x10000000u
#define NPOOL 48u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input, read a byte at a time (zeros once it is used up). */
struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t byte(struct input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

enum st { FREE = 0, LENT, HELD };

struct fk {
	struct km *km;
	km_task_t task;
	struct input *in;
	enum st state[NPOOL];
	uint64_t kva[NPOOL];
	/* Once the input says so (252), for good: before it gives back a
	 * form, it names the page it gave back last as a victim, if that is
	 * still lent.  The kernel needing both at once must get on. */
	bool swap;
	int last_restored;
	uint32_t mine;                  /* which pages at MINE clients have
	                                 * mapped to it, a bit each */
};

/* Where clients map pages to the kpager's own task (a bit per page). */
#define MINE 0x20000000u

static struct fk fk;

static int fk_init(struct km *km, km_task_t task, const char *args,
                   void **state, char *why, size_t why_len)
{
	(void)args;
	(void)why;
	(void)why_len;
	fk.km = km;
	fk.task = task;
	*state = &fk;
	return km_sigma0_map(km, task, POOL, NPOOL, KM_R | KM_W);
}

static uint8_t *page_of(uint32_t i)
{
	struct km_mapping m;

	if (km_lookup(fk.km, fk.task, POOL + i * PG, &m) != KM_OK)
		return NULL;
	return km_frame_ptr(fk.km, m.pfn);
}

/* What the fuzzer does to the form in pool page i before it returns. */
static void tamper(uint32_t i)
{
	uint8_t *p = page_of(i), *q;
	uint8_t how = byte(fk.in);

	if (p == NULL)
		return;
	switch (how & 3) {
	case 0:                 /* as it was */
		break;
	case 1:                 /* a few bytes overwritten */
		for (uint8_t k = 0, n = 1 + (how >> 2) % 8; k < n; k++) {
			uint16_t off = (uint16_t)(byte(fk.in) << 8 |
			                          byte(fk.in)) % PG;

			p[off] = byte(fk.in);
		}
		break;
	case 2:                 /* another page's form */
		q = page_of((uint32_t)(how >> 2) % NPOOL);
		if (q != NULL && q != p)
			memcpy(p, q, PG);
		break;
	default:                /* a run of bytes */
		memset(p + (how >> 2) * 64 % PG, byte(fk.in), 64);
		break;
	}
}

static void fk_fault(void *state, const struct kp_fault *f,
                     struct kp_decision *d)
{
	uint8_t b = byte(fk.in);

	(void)state;
	for (uint32_t i = 0; i < 32; i++) {
		struct km_mapping m;

		if (fk.mine & (1u << i))
			km_lookup(fk.km, fk.task, MINE + i * PG, &m);
	}
	d->action = KP_DENY;
	d->discarded = false;
	if (b == 255)
		return;                         /* a denial */
	if (b == 252)
		fk.swap = true;
	if (b == 254) {                         /* evict (maybe a lie) */
		d->action = KP_REVOKE;
		d->vaddr = POOL + byte(fk.in) % NPOOL * PG;
		d->discarded = byte(fk.in) & 1;
		return;
	}
	if (f->restore) {
		for (uint32_t i = 0; i < NPOOL; i++) {
			int last = fk.last_restored;

			if (fk.state[i] != HELD || fk.kva[i] != f->kva)
				continue;
			if (fk.swap && last >= 0 && (uint32_t)last != i &&
			    fk.state[last] == LENT) {
				d->action = KP_REVOKE;
				d->vaddr = POOL + (uint32_t)last * PG;
				return;
			}
			fk.last_restored = (int)i;
			tamper(i);
			fk.state[i] = LENT;
			d->action = KP_MAP;
			d->vaddr = POOL + i * PG;
			d->discarded = b == 253;        /* a false discard */
			return;
		}
		d->discarded = true;            /* never kept it */
	}
	for (uint32_t i = 0; i < NPOOL; i++) {
		if (fk.state[i] != FREE)
			continue;
		fk.state[i] = LENT;
		fk.kva[i] = f->kva;
		d->action = KP_MAP;
		d->vaddr = POOL + i * PG;
		return;
	}
}

static void fk_released(void *state, km_vaddr_t vaddr, struct km_kpage kp)
{
	(void)state;
	(void)kp;
	fk.state[(vaddr - POOL) / PG] = FREE;
}

static void fk_forgotten(void *state, struct km_kpage kp)
{
	uint64_t kva = km_kpage_kva(kp);

	(void)state;
	for (uint32_t i = 0; i < NPOOL; i++)
		if (fk.state[i] == HELD && fk.kva[i] == kva)
			fk.state[i] = FREE;
}

static void fk_aborted(void *state, const struct kp_fault *f)
{
	(void)state;
	for (uint32_t i = 0; i < NPOOL; i++)
		if (fk.state[i] == LENT && fk.kva[i] == f->kva)
			fk.state[i] = f->restore ? HELD : FREE;
}

static void fk_revoked(void *state, km_vaddr_t vaddr, struct km_kpage kp,
                       bool discarded)
{
	(void)state;
	(void)kp;
	fk.state[(vaddr - POOL) / PG] = discarded ? FREE : HELD;
}

static const struct kp_ops fk_ops = {
	.name = "fuzz", .init = fk_init, .fault = fk_fault,
	.released = fk_released, .forgotten = fk_forgotten,
	.revoked = fk_revoked, .aborted = fk_aborted,
};

/* Client pages: a few regions, so page tables, node tables and mapping
 * pages of several kinds come and go. */
static uint32_t client_va(uint8_t b)
{
	static const uint32_t base[4] = { 0x08048000u, 0x10400000u,
	                                  0x40000000u, 0xbfff0000u };

	return base[b & 3] + (uint32_t)(b >> 2) * PG;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct input in = { data, size };
	struct km_config c = km_config_default(1024);
	struct km *km;
	km_task_t kt, t[2];
	km_thread_t th[2][4] = { { 0 } };
	km_kpager_t kp;
	km_task_t hog = 0;              /* a task of the kernel's own pool */
	km_thread_t hog_th = 0;
	uint32_t hog_pages = 0;
	char why[256];

	memset(&fk, 0, sizeof fk);
	fk.in = &in;
	fk.last_restored = -1;
	c.kmem = KM_KMEM_KPAGER;
	c.kpool_frames = 16;    /* small, for the kernel-pool task to drain */
	c.key_seed = 1;
	if (km_create(&c, &km, why, sizeof why) != KM_OK)
		abort();
	if (km_task_create(km, KM_ROOT_KPAGER, &kt) != KM_OK ||
	    km_kpager_create(km, &fk_ops, kt, "", &kp, why, sizeof why) !=
	    KM_OK)
		abort();
	for (int i = 0; i < 2; i++)
		if (km_task_create(km, kp, &t[i]) != KM_OK ||
		    km_thread_create(km, t[i], 0, &th[i][0]) != KM_OK)
			goto out;       /* the fuzzer denied it: fine */
	for (int step = 0; step < 64 && in.n > 0; step++) {
		uint8_t op = byte(&in), who = byte(&in) & 1, b = byte(&in);
		km_thread_t *tt = th[who];
		uint32_t pages;

		switch (op % 7) {
		case 0:
			if (tt[0] != 0)
				km_touch(km, tt[0], client_va(b),
				         (b & 4) ? KM_ACC_WRITE : KM_ACC_READ);
			break;
		case 1: {
			/* op >= 0xf0 (246, 253): to the kpager's task.  (No
			 * older input of the corpus has either.) */
			bool to_kt = op >= 0xf0;
			uint8_t to = byte(&in);

			km_map(km, t[who], km_fpage(client_va(b), 12, KM_RWX),
			       to_kt ? kt : t[!who],
			       to_kt ? MINE + (to & 31u) * PG : client_va(to),
			       (op & 8) ? KM_GRANT : KM_MAP, &pages);
			if (to_kt)
				fk.mine |= 1u << (to & 31u);
			break;
		}
		case 2:
			km_unmap(km, t[who], km_fpage(client_va(b), 12, KM_RWX),
			         (op & 8) ? KM_UNMAP_SELF : 0, &pages);
			break;
		case 3:
			km_kpager_revoke(km, kp, POOL + b % NPOOL * PG,
			                 (op & 8) != 0);
			break;
		case 4:
			if (tt[1 + b % 3] == 0)
				km_thread_create(km, t[who], 0, &tt[1 + b % 3]);
			else if (km_thread_destroy(km, tt[1 + b % 3]) == KM_OK)
				tt[1 + b % 3] = 0;
			break;
		case 5: {
			struct km_mapping m;

			km_lookup(km, t[who], client_va(b), &m);
			break;
		}
		default:
			/* The kernel's own pool: a task of it takes up to b
			 * more frames' worth of pages (so that repairs may
			 * find no frame), or it goes and gives them back. */
			if (hog != 0 && (op & 8)) {
				if (km_task_destroy(km, hog) == KM_OK)
					hog = hog_th = 0;
				break;
			}
			if (hog == 0 &&
			    (km_task_create(km, KM_ROOT_KPAGER, &hog) != KM_OK ||
			     km_thread_create(km, hog, 0, &hog_th) != KM_OK))
				break;
			for (uint32_t k = 0; k <= b && km_touch(km, hog_th,
			     0x60000000u + hog_pages * PG, KM_ACC_WRITE) ==
			     KM_OK; k++)
				hog_pages++;
			break;
		}
		if (!km_check(km, why, sizeof why)) {
			fprintf(stderr, "km_check after step %d (op %u): %s\n",
			        step, op % 7, why);
			abort();
		}
	}
out:
	km_destroy(km);
	return 0;
}
