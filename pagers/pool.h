/*
 * pool (private to pagers/): the frames one kpager lends to the kernel,
 * what each holds, and the external forms of revoked pages it keeps.
 * Every policy is built on it; the policy decides which frame to lend and
 * which page to take back, the pool does the bookkeeping and the restore
 * protocol (a restore fault maps the frame holding the page's form, or
 * says `discarded` when the pool truly no longer has it).
 */
#ifndef KPSIM_PAGERS_POOL_H
#define KPSIM_PAGERS_POOL_H

#include "pagers.h"

#define KP_NONE UINT32_MAX      /* no frame index */
#define KP_ANY_TASK UINT32_MAX  /* every client task */

enum kp_fstate {
	KP_FREE = 0,            /* the kpager's, holds nothing of value */
	KP_LENT,                /* lent to the kernel, holds `kp` */
	KP_HELD                 /* the kpager's, holds the form of `kp` */
};

struct kp_frame {
	enum kp_fstate state;
	struct km_kpage kp;     /* LENT, HELD: the kernel page it holds */
	uint64_t kva;           /* km_kpage_kva(kp) */
	uint64_t lent_at;       /* LENT: simulated cycle it was lent */
};

/* A client's count in kp_pool_largest_client's table. */
struct kp_tally {
	km_task_t task;         /* valid when n > 0 */
	uint32_t n;             /* frames used for its pages */
	bool lent;              /* one of them is lent */
};

/* A form saved in host memory (the simulated backing store). */
struct kp_form {
	uint64_t kva;
	uint8_t *bytes;         /* KM_PAGE_SIZE bytes, owned */
};

enum kp_forms {
	KP_FORMS_IN_FRAME = 0,  /* a revoked page's form stays in its frame
	                         * (HELD) until asked back or forgotten */
	KP_FORMS_SAVE           /* copied to the backing store; frame freed */
};

struct kp_pool {
	struct km *km;          /* borrowed; outlives the kpager */
	km_task_t task;         /* the kpager's, whose pages the frames are */
	km_kpager_t id;         /* this kpager's id, from its faults */
	km_vaddr_t base;        /* frame i sits at base + i * 4096 */
	uint32_t frames;
	enum kp_forms forms_mode;
	struct kp_frame *fr;    /* [frames] */
	uint32_t *free;         /* free frame indices (lowest on top at
	                         * start; then the latest freed) */
	uint32_t nfree;
	struct kp_form *form;   /* saved forms, unordered */
	uint32_t nform, form_cap;
	uint64_t last_fault;    /* simulated cycle of the latest fault */
	uint64_t last_op;       /* the kernel operation it was for */
	bool in_retry;          /* faults now are retries after KP_REVOKE */
	uint64_t retry_since;   /* cycle of the latest KP_REVOKE answer */
	uint64_t retry_op;      /* the operation it was for */
	struct kp_tally *tally; /* [tally_cap], scratch of
	                         * kp_pool_largest_client; NULL before */
	uint32_t tally_cap;     /* a power of two >= 2 * frames */
};

/*
 * Obtains `frames` frames from sigma0 at `base` in the kpager's `task` and
 * sets the pool up.  `policy` and `frames_key` (the argument that gave
 * `frames`) name the caller and the culprit in messages.  Returns KM_OK,
 * or KM_EINVAL (bad frames or base), KM_EIO (host memory) or sigma0's
 * error, with the reason in why; no host memory is kept on error, and
 * frames sigma0 mapped stay only if looking them up fails after.
 */
int kp_pool_init(struct kp_pool *p, struct km *km, km_task_t task,
                 const char *policy, const char *frames_key, uint32_t frames,
                 km_vaddr_t base, enum kp_forms forms_mode, char *why,
                 size_t why_len);
/* Frees what the pool holds in host memory; accepts NULL. */
void kp_pool_fini(struct kp_pool *p);

static inline km_vaddr_t kp_pool_vaddr(const struct kp_pool *p, uint32_t i)
{
	return p->base + i * KM_PAGE_SIZE;
}

/* The index of the frame at `vaddr`, or KP_NONE if it is not the pool's. */
uint32_t kp_pool_index(const struct kp_pool *p, km_vaddr_t vaddr);

/*
 * Retries.  After a KP_REVOKE answer the kernel starts the operation over,
 * and every page the new attempt needs is marked used again.  A victim
 * named during the retries must therefore be one not used since the
 * latest KP_REVOKE: one the attempt needs would only be faulted back,
 * evicting another, and an operation needing more frames than it can get
 * would go round for ever (the kernel bounds KP_REVOKE answers in a row,
 * but a restore between two of them resets its count).  The retries last
 * while faults are for the operation that got the KP_REVOKE (kp_fault.op).
 * (Before the kernel said, a run of faults for one thread less than
 * 100,000 cycles apart was taken for one operation's: two touches close
 * together were one, and faults whose thread the model had left over from
 * an earlier call were not.)
 */

/* Every fault callback calls this first. */
void kp_pool_fault_begin(struct kp_pool *p, const struct kp_fault *f);

/*
 * Answers fault `f` with KP_REVOKE of lent frame `i` (and starts or
 * continues the retries that follow), or denies it when `i` is KP_NONE.
 * Pages the kernel rebuilds on its own (page directories, page tables,
 * node directories go out vacant) are discarded; every other form is
 * kept.
 */
void kp_pool_evict_or_deny(struct kp_pool *p, uint32_t i,
                           const struct kp_fault *f, struct kp_decision *d);


/* Victims must have been last used before this cycle (UINT64_MAX: no
 * bound outside retries). */
uint64_t kp_pool_victim_bound(const struct kp_pool *p);

/* Takes a free frame (the latest freed; at start the lowest address) or
 * returns KP_NONE. */
uint32_t kp_pool_take(struct kp_pool *p);

/*
 * Answers a restore fault from a frame that still holds the page's form
 * (HELD).  Returns true with *d filled in; false if no frame holds it.
 */
bool kp_pool_map_held(struct kp_pool *p, const struct kp_fault *f,
                      struct kp_decision *d);

/*
 * Lends frame `i` (taken with kp_pool_take) for fault `f` and fills *d.  On
 * a restore it first copies the saved form into the frame; without one it
 * says `discarded`, so the kernel rebuilds the page rather than trusting
 * whatever bytes the frame held.
 */
void kp_pool_lend(struct kp_pool *p, uint32_t i, const struct kp_fault *f,
                  struct kp_decision *d);

/* The kernel's use of lent frame `i`: whether it was used since the last
 * query with `clear`, and the cycle of its last use, never earlier than
 * the lending (an older mark belongs to the frame's previous life).
 * Without a usable kpager id, the lending alone counts. */
void kp_pool_use(struct kp_pool *p, uint32_t i, bool clear, bool *referenced,
                 uint64_t *last_use);

/*
 * The least recently used lent frame holding a page charged to `task`
 * (KP_ANY_TASK: any), among those
 * last used before cycle `before` (UINT64_MAX: all) and
 * kp_pool_victim_bound.  Ties go to the lowest index.  KP_NONE if none.
 */
uint32_t kp_pool_lru(struct kp_pool *p, km_task_t task, uint64_t before);

/* Frames used for pages charged to `task` (KP_ANY_TASK: any): lent, or
 * holding a form. */
uint32_t kp_pool_used_by(const struct kp_pool *p, km_task_t task);

/* The client with a lent frame that uses the most frames (as
 * kp_pool_used_by counts them); the lowest task id among equals;
 * KP_ANY_TASK if no frame is lent.  One pass over the pool. */
km_task_t kp_pool_largest_client(struct kp_pool *p);

/*
 * The kp_ops callbacks, for a policy whose state begins with its struct
 * kp_pool: the kernel gave a page back (released), took one back on its
 * own after KP_REVOKE (revoked: the frame holds the form, which the pool
 * keeps as its forms_mode says), will never ask for a revoked one again
 * (forgotten: its form goes), or voided an answer (aborted).  A page
 * revoked with km_kpager_revoke is not reported by the kernel; the
 * policies here never do that.
 */
void kp_pool_on_released(void *state, km_vaddr_t vaddr, struct km_kpage kp);
void kp_pool_on_revoked(void *state, km_vaddr_t vaddr, struct km_kpage kp,
                        bool discarded);
void kp_pool_on_forgotten(void *state, struct km_kpage kp);

/* The kernel could not carry out the answer to `f` (a deadlock, or a page
 * it relies on could not be had): the frame named is the pool's again.
 * It holds nothing for a new page; for a restore it holds the form,
 * which stays there (HELD) for the next time the page is asked for. */
void kp_pool_on_aborted(void *state, const struct kp_fault *f);

/* Releases a policy state that begins with its struct kp_pool (kp_ops
 * fini); accepts NULL. */
void kp_pool_on_fini(void *state);

/* Says the host has no memory for `policy`'s state; returns KM_EIO. */
int kp_no_memory(const char *policy, char *why, size_t why_len);

#endif /* KPSIM_PAGERS_POOL_H */
