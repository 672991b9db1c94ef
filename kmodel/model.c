/*
 * The model object: creation (frames in a memfd, the frame table, sigma0,
 * the in-kernel pool, the default pager), destruction, errors and
 * statistics.
 */
#include "internal.h"

#include <sodium.h>
#include <sys/mman.h>
#include <unistd.h>

#define KM_MAX_FRAMES (1u << 20)        /* 20-bit frame numbers in PTEs */

static const char *const err_text[KM_ERR_COUNT] = {
	[KM_OK] = "success",
	[KM_EINVAL] = "invalid argument",
	[KM_ENOTASK] = "no such task",
	[KM_ENOTHREAD] = "no such thread",
	[KM_ENOKPAGER] = "no such kpager",
	[KM_ENOMAP] = "nothing mapped there",
	[KM_EPERM] = "operation not permitted",
	[KM_ERESERVED] = "address in a reserved range (UTCB area)",
	[KM_ECYCLE] = "destination mapping is an ancestor of the source",
	[KM_EACCES] = "access violates the mapping's rights",
	[KM_EDENIED] = "kpager denied the kernel page fault",
	[KM_ENOMEM] = "pool exhausted",
	[KM_ELIMIT] = "model limit reached",
	[KM_EBUSY] = "object in use (lent to the kernel, or has clients)",
	[KM_EKPAGER] = "kernel refused the kpager's decision",
	[KM_EIO] = "host failure",
	[KM_EPARSE] = "malformed cost table",
	[KM_EDEADLK] = ("deadlock: the kernel page fault's kpager waits on "
	                "this operation; aborted"),
};

const char *km_strerror(int err)
{
	if (err < 0 || err >= KM_ERR_COUNT)
		return "unknown error";
	return err_text[err];
}

const char *km_fault_kind_name(enum km_fault_kind k)
{
	static const char *const n[] = { "user", "kernel", "kpool", "revoke" };

	return (unsigned)k < 4 ? n[k] : "?";
}

const char *km_decision_name(enum km_decision d)
{
	static const char *const n[] = { "mapped", "denied", "refused",
	                                 "failed", "present", "restored",
	                                 "rebuilt", "lost", "stopped",
	                                 "exported", "discarded", "refilled",
	                                 "rejected", "evict", "aborted" };

	return (unsigned)d < sizeof n / sizeof n[0] ? n[d] : "?";
}

_Noreturn void km_panic(const char *file, int line, const char *what)
{
	fprintf(stderr, "kmodel: invariant broken at %s:%d: %s\n",
	        file, line, what);
	abort();
}

struct km_config km_config_default(uint32_t frames)
{
	struct km_config c;

	memset(&c, 0, sizeof c);
	c.frames = frames;
	c.phys_base = 0xC0000000u;
	c.kpool_frames = frames / 8 > 16 ? frames / 8 : 16;
	c.kmem = KM_KMEM_POOL;
	c.max_tasks = 1024;
	c.max_threads = 4096;
	c.costs = NULL;
	return c;
}

/* Is the configuration one the model can run? */
static bool config_ok(const struct km_config *c, char *why, size_t why_len)
{
	if (c->frames < 64 || c->frames > KM_MAX_FRAMES) {
		snprintf(why, why_len, "frames must be 64 .. %u, not %u",
		         KM_MAX_FRAMES, c->frames);
		return false;
	}
	if ((c->phys_base & (KM_PAGE_SIZE - 1)) != 0 ||
	    (uint64_t)c->phys_base + (uint64_t)c->frames * KM_PAGE_SIZE >
	    (1ull << 32)) {
		snprintf(why, why_len, "phys_base 0x%x with %u frames does not "
		         "fit 32-bit physical addresses", c->phys_base, c->frames);
		return false;
	}
	if (c->kpool_frames < 16 || c->kpool_frames > c->frames / 2) {
		snprintf(why, why_len, "kpool_frames must be 16 .. frames/2");
		return false;
	}
	if (c->kmem != KM_KMEM_POOL && c->kmem != KM_KMEM_KPAGER) {
		snprintf(why, why_len, "kmem must be pool or kpager");
		return false;
	}
	if (c->max_tasks < 2 || c->max_tasks > (1u << 20) ||
	    c->max_threads < 2 || c->max_threads > (1u << 24)) {
		snprintf(why, why_len, "max_tasks must be 2 .. 2^20, "
		         "max_threads 2 .. 2^24");
		return false;
	}
	return true;
}

int km_create(const struct km_config *cfg, struct km **out,
              char *why, size_t why_len)
{
	struct km *km;
	struct km_config c = *cfg;
	char dummy[8];
	size_t bytes;
	int err;

	if (why == NULL) {
		why = dummy;
		why_len = sizeof dummy;
	}
	*out = NULL;
	if (c.max_tasks == 0)
		c.max_tasks = 1024;
	if (c.max_threads == 0)
		c.max_threads = 4096;
	if (!config_ok(&c, why, why_len))
		return KM_EINVAL;
	km = calloc(1, sizeof *km);
	if (km == NULL)
		return KM_EIO;
	km->memfd = -1;
	km->mem = MAP_FAILED;
	km->cfg = c;
	km->cfg.costs = NULL;   /* not kept: the caller's text */
	err = km_costs_parse(km->cost, c.costs ? c.costs : km_default_costs,
	                     why, why_len);
	if (err != KM_OK)
		goto fail;

	/* The frames: one memfd, lazily backed, so untouched RAM is free. */
	err = KM_EIO;
	bytes = (size_t)c.frames * KM_PAGE_SIZE;
	km->memfd = memfd_create("kpsim-frames", MFD_CLOEXEC);
	if (km->memfd < 0 || ftruncate(km->memfd, (off_t)bytes) != 0) {
		snprintf(why, why_len, "memfd for %u frames: host refused",
		         c.frames);
		goto fail;
	}
	km->mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED,
	               km->memfd, 0);
	km->frame = calloc(c.frames, sizeof *km->frame);
	km->kpool = calloc(c.kpool_frames, sizeof *km->kpool);
	km->task = calloc(c.max_tasks, sizeof *km->task);
	km->thread = calloc(c.max_threads, sizeof *km->thread);
	km->kpager_cap = 8;
	km->kpager = calloc(km->kpager_cap, sizeof *km->kpager);
	if (km->mem == MAP_FAILED || !km->frame || !km->kpool || !km->task ||
	    !km->thread || !km->kpager) {
		snprintf(why, why_len, "host memory for %u frames refused",
		         c.frames);
		goto fail;
	}
	km->nkpagers = 1;       /* 0 is the in-kernel pool */
	km->fast_paths = true;

	/* The kernel's key seals continuations.  A seed makes it (and so the
	 * bytes of exported forms) reproducible; without one it is random. */
	if (sodium_init() < 0) {
		snprintf(why, why_len, "libsodium failed to initialise");
		goto fail;
	}
	if (c.key_seed != 0)
		crypto_generichash(km->key, sizeof km->key,
		                   (const void *)&c.key_seed, sizeof c.key_seed,
		                   NULL, 0);
	else
		randombytes_buf(km->key, sizeof km->key);

	/* sigma0 holds every frame; the top kpool_frames form the in-kernel
	 * pool, stacked so that the lowest is taken first. */
	for (km_pfn_t f = 0; f < c.frames; f++)
		km->frame[f].first_child = KM_NONE;
	for (km_pfn_t f = c.frames; f-- > c.frames - c.kpool_frames;) {
		km->frame[f].pool = 1;
		km->frame[f].kuse = KM_KU_POOL;
		km->kpool[km->kpool_len++] = f;
	}
	km->s0_free = c.frames - c.kpool_frames;
	km->kpool_low = c.kpool_frames / 4;
	/* sigma0 is the root of the mapping database: it has MDB pages for
	 * its sender parts, but no page tables of its own. */
	if (km_task_alloc_pages(&km->task[KM_SIGMA0]) != KM_OK) {
		snprintf(why, why_len, "host memory refused");
		goto fail;
	}
	km->task[KM_SIGMA0].live = true;

	km->dp_next = km->dp_top = 0x00400000u >> KM_PAGE_SHIFT;
	err = km_task_create(km, KM_ROOT_KPAGER, &km->defpager);
	if (err != KM_OK) {
		snprintf(why, why_len, "creating the default pager: %s",
		         km_strerror(err));
		goto fail;
	}
	*out = km;
	return KM_OK;
fail:
	km_destroy(km);
	return err;
}

void km_destroy(struct km *km)
{
	if (km == NULL)
		return;
	for (uint32_t k = 1; km->kpager != NULL && k < km->nkpagers; k++)
		if (km->kpager[k].live && km->kpager[k].ops->fini != NULL)
			km->kpager[k].ops->fini(km->kpager[k].state);
	for (uint32_t t = 0; km->task != NULL && t < km->cfg.max_tasks; t++) {
		struct km_task *tk = &km->task[t];

		km_task_free_pages(tk);
		free(tk->utcb_slot);
		free(tk->ktcb_slot);
	}
	if (km->mem != MAP_FAILED && km->mem != NULL)
		munmap(km->mem, (size_t)km->cfg.frames * KM_PAGE_SIZE);
	if (km->memfd >= 0)
		close(km->memfd);
	free(km->frame);
	free(km->kpool);
	free(km->task);
	free(km->thread);
	free(km->kpager);
	free(km->need);
	free(km->trim);
	free(km->held);
	free(km->dp_free);
	free(km);
}

int km_frames_fd(const struct km *km)
{
	return km->memfd;
}

uint8_t *km_frame_ptr(const struct km *km, km_pfn_t pfn)
{
	return pfn < km->cfg.frames ? km_fp(km, pfn) : NULL;
}

uint32_t km_frame_count(const struct km *km)
{
	return km->cfg.frames;
}

void km_stats(const struct km *km, struct km_stats *out)
{
	memset(out, 0, sizeof *out);
	out->tasks = km->ntasks;
	out->threads = km->nthreads;
	out->kernel_frames = km->kernel_frames;
	out->kpool_free = km->kpool_len;
	out->sigma0_free = km->s0_free;
	out->kfaults = km->kfaults;
	out->ufaults = km->ufaults;
	out->denied = km->denied;
	out->aborts = km->aborts;
	out->pager_cycles = km->pager_cycles;
	out->fast_maps = km->fast_maps;
	out->fast_destroys = km->fast_destroys;
}

void km_syscall_begin(struct km *km, km_thread_t thread)
{
	km->syscall_thread = thread;
}

void km_syscall_end(struct km *km)
{
	km->syscall_thread = KM_NO_THREAD;
}

void km_set_fast_paths(struct km *km, bool on)
{
	km->fast_paths = on;
}

uint64_t km_use_marks_digest(const struct km *km)
{
	uint64_t h = 0x9e3779b97f4a7c15ull;

	for (km_pfn_t i = 0; i < km->cfg.frames; i++) {
		const struct km_frame *f = &km->frame[i];
		uint64_t v = f->last_use * 2u + ((f->flags & KM_FR_USED) != 0);

		h = (h ^ v ^ i) * 0x100000001b3ull;
		h ^= h >> 29;
	}
	return h;
}
