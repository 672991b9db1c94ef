/*
 * kmodel's private header: the model's host-side state (the pinned part of
 * the kernel) and the layouts of kernel pages inside frames (the pageable
 * part).  Only kmodel's own .c files include it.
 */
#ifndef KPSIM_KMODEL_INTERNAL_H
#define KPSIM_KMODEL_INTERNAL_H

#include "kmodel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A model bug: print the broken invariant and abort.  Never for bad input. */
#define KM_ASSERT(cond)                                                       \
	do {                                                                  \
		if (!(cond))                                                  \
			km_panic(__FILE__, __LINE__, #cond);                  \
	} while (0)
_Noreturn void km_panic(const char *file, int line, const char *what);

#define KM_NONE 0xffffffffu             /* an absent slot or reference */
#define KM_USER_PDES (KM_USER_TOP >> 22) /* 768 page tables cover user space */
#define KM_UTCB_PDE (KM_UTCB_AREA >> 22)
#define KM_PDX(va) ((uint32_t)(va) >> 22)
#define KM_PTX(va) (((uint32_t)(va) >> 12) & 0x3ffu)

/* ---------------------------------------------------------------------- */
/* The frame table: one pinned entry per frame, allocated at start.         */

enum km_kuse {
	KM_KU_NONE = 0,         /* not used by the kernel */
	KM_KU_POOL,             /* a free frame of the in-kernel pool */
	KM_KU_KERNEL            /* holds the kernel page `kp` */
};

struct km_frame {
	uint32_t first_child;   /* sigma0-local sender part of the first mapping
	                         * derived from this frame, or KM_NONE */
	uint8_t kuse;           /* enum km_kuse */
	uint8_t pool;           /* 1: the frame belongs to the in-kernel pool */
	uint8_t ktype;          /* KM_KU_KERNEL: the page's type */
	uint8_t flags;          /* KM_FR_* */
	uint32_t ktask;         /* KM_KU_KERNEL: the page's task */
	uint32_t kindex;        /* KM_KU_KERNEL: the page's index */
	uint32_t lender;        /* kpager that lent it; KM_ROOT_KPAGER: the pool */
	uint32_t lender_vpn;    /* page of the lender's task it is mapped at */
	uint64_t last_use;      /* KM_KU_KERNEL: the kernel's last use (cycle) */
};
#define KM_FR_RELINK 0x1u       /* km_repair: its child list is relinked */
#define KM_FR_USED 0x2u         /* used by the kernel since its kpager asked */
#define KM_FR_HELD 0x4u         /* km_repair: a page it brought in stays in
                                 * until the repair ends */

/* ---------------------------------------------------------------------- */
/* Mapping-database pages.                                                   */

/*
 * A mapping is one node of the derivation tree, split in two 24-byte parts
 * so that each party pages (and is charged for) what it determined:
 * - the receiver part, in the receiver's MDB pages: where the mapping lives
 *   (its virtual page, rights, frame) and the head of the list of mappings
 *   the receiver derived from it;
 * - the sender part, in the mapper's MDB pages: which of the mapper's own
 *   mappings it derives from, its place among that mapping's children, and
 *   the receiver part it belongs to.
 * References inside one task are slots, (MDB page index << 8) | slot number;
 * references to another task carry the task id beside the slot.  For
 * sigma0 a sender part's parent is the frame itself.
 */
#define KM_MDB_PARTS 170u               /* 16-byte header + 170 * 24 = 4096 */
#define KM_MDB_MAGIC 0x6d646221u
#define KM_SLOT(page, i) (((page) << 8) | (i))
#define KM_SLOT_PAGE(s) ((s) >> 8)
#define KM_SLOT_IDX(s) ((s) & 0xffu)

enum km_part_tag { KM_PART_FREE = 0, KM_PART_SEND = 1, KM_PART_RECV = 2 };

struct km_recv {                        /* the receiver-derived part */
	uint8_t tag;                    /* KM_PART_RECV */
	uint8_t rights;                 /* KM_R | KM_W | KM_X */
	uint16_t flags;                 /* KM_RECV_RELINK during km_repair */
	uint32_t vpn;                   /* the receiver's virtual page */
	km_pfn_t pfn;                   /* the frame */
	uint32_t send_task;             /* the mapper */
	uint32_t send_slot;             /* its sender part */
	uint32_t first_child;           /* local sender part, or KM_NONE */
};

#define KM_RECV_RELINK 0x1u

struct km_send {                        /* the sender-derived part */
	uint8_t tag;                    /* KM_PART_SEND */
	uint8_t pad[3];
	uint32_t parent;                /* local receiver part; sigma0: pfn */
	uint32_t next;                  /* local siblings, or KM_NONE */
	uint32_t prev;
	uint32_t recv_task;
	uint32_t recv_slot;
};

struct km_free_part {                   /* a free slot */
	uint8_t tag;                    /* KM_PART_FREE */
	uint8_t pad[3];
	uint32_t next_free;             /* slot number in the page, or 0xff.. */
	uint32_t unused[4];
};

union km_part {
	struct km_recv r;
	struct km_send s;
	struct km_free_part f;
};

struct km_mdb_page {
	uint32_t magic;
	uint16_t used;                  /* parts in use */
	uint16_t free_head;             /* first free slot number, 0xffff: none */
	uint32_t task;
	uint32_t index;
	union km_part part[KM_MDB_PARTS];
};

_Static_assert(sizeof(union km_part) == 24, "mapping-node part is 24 bytes");
_Static_assert(sizeof(struct km_mdb_page) == KM_PAGE_SIZE, "one MDB page");

/* Node-table entries: 0 empty, else receiver slot + 1, or the UTCB mark for
 * the kernel's own UTCB mappings (which have no mapping node). */
#define KM_NTE_NONE 0u
#define KM_NTE_UTCB 0xffffffffu

/* The pageable part of a thread control block (KM_KTCB_SIZE bytes). */
struct km_ktcb {
	uint32_t magic;
	uint32_t thread;                /* the thread's id */
	uint32_t state;                 /* enum km_thread_state */
	uint32_t safe_point;            /* where in the kernel it stopped */
	uint32_t regs[10];              /* eax ecx edx ebx esp ebp esi edi eip eflags */
	uint32_t ipc_partner;
	uint32_t timeslice;             /* in cycles */
	uint32_t priority;
	uint32_t pager;                 /* the thread's pager task */
	uint32_t mr[64];                /* message registers */
	uint8_t kstack[KM_KTCB_SIZE - 72 - 256]; /* continuation data */
};
#define KM_KTCB_MAGIC 0x6b746362u
_Static_assert(sizeof(struct km_ktcb) == KM_KTCB_SIZE, "KTCB slot size");

/* ---------------------------------------------------------------------- */
/* Host-side objects: the pinned part of the kernel.                         */

/* Where the kernel pages of one data type of one task are: per index, the
 * frame (present), KM_OUT_PFN (revoked: its external form is with the
 * kpager) or KM_NO_PFN (absent), and the page's export generation. */
#define KM_OUT_PFN ((km_pfn_t)0xfffffffeu)
#define KM_LOST_PENDING 2u
#define KM_REPLY_DEPTH 32u             /* kpagers answering, nested */
#define KM_OP_EVICTIONS 8u              /* per operation, see mdb.c */
/* Internal: an operation met a lost page and must start over. */
#define KM_ERETRY (-1000)
struct km_outmeta;
struct km_pages {
	km_pfn_t *pfn;
	/* What revocation needs, [cap] each, or all three NULL until a page
	 * of the array is first exported (most tasks' 768 page tables and
	 * node tables never are): read them with km_pages_gen, _lost and
	 * _meta, which give 0 and NULL for an array never exported. */
	uint64_t *gen;                  /* the export that made the form out
	                                 * now: older forms, even of the same
	                                 * page of an earlier task, fail */
	uint8_t *lost;                  /* out: 1 if the kpager discarded its
	                                 * form; present: KM_LOST_PENDING */
	struct km_outmeta **meta;       /* node tables and MDB pages that are
	                                 * out: what the kernel kept */
	uint32_t len, cap;              /* indices in use, allocated */
};

static inline uint64_t km_pages_gen(const struct km_pages *p, uint32_t i)
{
	return p->gen != NULL ? p->gen[i] : 0;
}
static inline uint8_t km_pages_lost(const struct km_pages *p, uint32_t i)
{
	return p->lost != NULL ? p->lost[i] : 0;
}
static inline struct km_outmeta *km_pages_meta(const struct km_pages *p,
                                               uint32_t i)
{
	return p->meta != NULL ? p->meta[i] : NULL;
}

/*
 * What the kernel keeps (pinned) of a revoked node table or mapping-
 * database page, whose form holds client-local references only:
 * - a keyed digest of the page as the kernel had it, so that the form it
 *   gets back is accepted exactly when it translates back to that page;
 * - for an MDB page, a receipt per part in use: the part's references out
 *   of the client's reach (the other party's part, the frame), which the
 *   form leaves out, and which the kernel needs to undo the page's
 *   mappings if the form never comes back;
 * - the count of entries (node table) or parts (MDB page) in use.
 */
struct km_receipt {
	uint8_t idx;                    /* the part's slot number in the page */
	uint8_t tag;                    /* KM_PART_SEND or KM_PART_RECV */
	uint16_t flags;                 /* KM_RC_*: 0 but in a repair */
	uint32_t task, slot;            /* the other party's part */
	km_pfn_t pfn;                   /* receiver parts: the frame */
	uint32_t vpn;                   /* receiver parts: the page */
};

#define KM_RC_UNDONE 0x1u      /* repair: its mapping is out of its task's
                                 * revoked node table */
#define KM_DIGEST_BYTES 16u
struct km_outmeta {
	uint8_t digest[KM_DIGEST_BYTES];
	uint32_t count;
	uint32_t nrc;
	struct km_receipt rc[];
};

static inline bool km_present(km_pfn_t p)
{
	return p < KM_OUT_PFN;
}

struct km_task {
	bool live;
	km_kpager_t kpager;             /* where its kernel memory comes from */
	struct km_pages page[KM_KT_COUNT]; /* PD, ND: 1; PT, NT: 768 */
	uint16_t *pt_missing;           /* [768]: mappings whose PTE awaits a
	                                 * refill after the table came back */
	uint32_t npages[KM_KT_COUNT];   /* present kernel pages by type */
	uint32_t nout[KM_KT_COUNT];     /* revoked kernel pages by type */
	uint32_t mdb_free;              /* free parts in present MDB pages */
	uint32_t mdb_hint;              /* an MDB page that may have room */
	km_thread_t *utcb_slot;         /* thread per UTCB slot, 0 if free */
	uint32_t utcb_cap;
	km_thread_t *ktcb_slot;         /* thread per KTCB slot */
	uint32_t ktcb_cap;
	uint32_t nthreads;
	uint32_t pagees;                /* live threads of other tasks whose
	                                 * pager this task is */
	uint32_t nmappings;             /* receiver parts (user pages mapped) */
	uint32_t lost_pending;          /* its node tables and MDB pages lost
	                                 * and not yet repaired
	                                 * (KM_LOST_PENDING) */
	uint32_t kpagers;               /* kpagers running in this task */
	uint64_t kfaults, ufaults;
};

/* The pinned part of a thread (KM_KTCB_PINNED bytes in a real kernel). */
struct km_thread {
	bool live;
	uint8_t state;                  /* enum km_thread_state */
	uint8_t stop_reason;            /* enum km_stop_reason */
	km_task_t task;
	km_task_t pager;
	uint32_t utcb;                  /* slot in the task's UTCB area */
	uint32_t ktcb;                  /* slot in the task's KTCB pages */
};

struct km_kpager {
	bool live;
	const struct kp_ops *ops;
	void *state;
	km_task_t task;                 /* the task it runs in */
	uint32_t clients;               /* tasks whose kernel memory it lends */
	struct km_kpager_stats st;
};

/* A kernel operation's list of kernel pages to obtain (validate, then
 * commit): filled, sorted into hierarchy order, then faulted in. */
struct km_need {
	struct km_kpage kp;
	km_pfn_t pfn;                   /* obtained frame, KM_NO_PFN before */
	bool restore;                   /* the page is out: restore, not new */
};

/* How a frame entering the kernel gets its content (kform.c). */
enum km_import {
	KM_IMPORT_NEW = 0,              /* a new page: zeroed, initialised */
	KM_IMPORT_RESTORE,              /* from the external form it holds */
	KM_IMPORT_REBUILD               /* the form was discarded */
};

struct km {
	struct km_config cfg;
	uint8_t *mem;                   /* the frames, mapped from memfd */
	int memfd;
	struct km_frame *frame;         /* the frame table */
	uint32_t s0_cursor;             /* no frame below it is free at sigma0 */
	uint32_t s0_free;               /* frames sigma0 has not mapped */
	km_pfn_t *kpool;                /* free in-kernel pool frames (a stack) */
	uint32_t kpool_len;
	uint32_t kpool_low;             /* with fewer free, km_settle takes
	                                 * back kpagers' clients' node tables
	                                 * (km_pool_reclaim) */
	uint32_t kpool_nts;             /* at least the pool frames that hold
	                                 * one (km_check) */
	uint32_t kernel_frames;         /* frames holding kernel pages */
	uint32_t lent;                  /* of those, frames lent by kpagers */
	uint64_t loans;                 /* frames kpagers have lent so far */

	struct km_task *task;           /* [max_tasks]; 0 is sigma0 */
	uint32_t ntasks;
	struct km_thread *thread;       /* [max_threads]; 0 unused */
	uint32_t nthreads;
	struct km_kpager *kpager;       /* growable; 0 is the in-kernel pool */
	uint32_t nkpagers, kpager_cap;
	km_task_t defpager;             /* the default user pager's task */
	uint32_t dp_next, dp_top;       /* its pool: next unused page, end */
	uint32_t *dp_free;              /* pool pages given back (a stack) */
	uint32_t dp_nfree, dp_cap;
	bool dp_lost;                   /* a page came back unrecorded */

	uint32_t kernel_pde[256];
	uint8_t key[32];                /* seals continuations; per run */
	uint64_t exports;               /* kernel pages exported so far */
	struct {                        /* a victim a kpager named: revoked
	                                 * before the operation retries */
		uint64_t named;         /* victims named so far */
		bool pending, discard;
		km_kpager_t kpager;
		km_vaddr_t vaddr;
	} victim;
	uint32_t evict_streak;          /* KP_REVOKE answers in a row */
	struct km_kpage streak_victim[KM_EVICT_STREAK]; /* the row's victims */
	uint32_t op_evictions;          /* node tables and MDB pages an unmap
	                                 * or map revoked to take their frames */

	/* The wait-for graph, as it stands during an operation: the tasks
	 * waiting on it (the faulting thread's, the mapper's), and the
	 * kpagers whose answers the kernel is carrying out, innermost last.
	 * A kernel page fault to any of them would never be answered. */
	km_task_t op_caller;            /* the mapper, or KM_NONE */
	uint64_t op_losses;             /* km->losses when it began */
	bool op_meets_lost;             /* it takes parts from a task with
	                                 * lost pages (km_mdb_need_parts) */
	km_kpager_t reply[KM_REPLY_DEPTH];
	uint32_t nreply;
	uint64_t aborts;
	uint64_t pager_cycles;          /* km_stats' */
	uint8_t order[8];               /* km_set_request_order, once */
	uint32_t norder;
	uint32_t in_callback;           /* a kpager's callback is running */
	uint32_t nout_walked;           /* NT and MDB pages out, all tasks:
	                                 * with none (and none lost), a walk
	                                 * of the mapping database finds every
	                                 * page in */
	uint32_t nlost;                 /* NT and MDB pages lost (their form
	                                 * discarded or refused): present,
	                                 * vacant, awaiting km_repair */
	uint64_t losses;                /* pages lost so far (nlost's total) */
	bool repairing;                 /* km_repair is under way */
	bool fast_paths;                /* km_set_fast_paths */
	uint64_t fast_maps;             /* maps done on the fast path */
	uint64_t fast_destroys;         /* task deletions done on it */
	uint32_t ndetached;             /* mappings whose sender part was lost,
	                                 * awaiting removal by km_repair */

	/* costs, clock and fault records */
	uint32_t cost[KM_C_COUNT];      /* cycles per named cost */
	uint64_t cost_total[KM_C_COUNT];
	uint64_t now;
	uint64_t fault_seq;
	struct km_fault_rec *cur_rec;   /* the innermost open fault record */
	km_fault_sink sink;
	void *sink_ctx;
	km_pte_observer pte_obs;        /* told of user PTE changes, or NULL */
	void *pte_obs_ctx;
	uint64_t kfaults, ufaults, denied;

	/* scratch for operations, reused to avoid allocation per operation */
	struct km_need *need;
	uint32_t nneed, need_cap;
	struct km_kpage *trim;          /* MDB pages an operation left empty */
	uint32_t ntrim, trim_cap;
	km_pfn_t *held;                 /* the frames marked KM_FR_HELD */
	uint32_t nheld, held_cap;
	km_thread_t op_thread;          /* on whose behalf, for kernel faults */
	uint64_t op_parent;             /* the user fault being served, or 0 */
	uint32_t op_depth;              /* API calls under way (km_enter) */
	uint64_t op_id, op_serial;      /* the outermost one's number, and
	                                 * the last number given */
	km_thread_t syscall_thread;     /* km_syscall_begin's, or none */
};

/* ---------------------------------------------------------------------- */
/* Shared helpers between kmodel's files.                                   */

/*
 * Who an operation of the API runs for: op_thread, which the records of
 * the kernel page faults it raises name, and with op_caller the waiting
 * side of the wait-for graph (waits_on_itself).  Each entry point that
 * may raise a fault brackets its work with km_enter and km_leave.  Called
 * from outside the model, an operation runs for `thread` (if it names
 * none: for the thread whose system call it carries out, see
 * km_syscall_begin, or for no thread), with no mapper waiting, and gets a
 * new number, which its faults carry to the kpager (kp_fault.op).  Called
 * from inside one (the default pager's map within a touch, a kpager's
 * lookup from a callback), it runs for the enclosing operation's thread
 * unless it names its own.  km_leave puts back what km_enter found, so
 * nothing an operation set reaches the next one.  (Before, a later unmap
 * or task deletion ran for the thread last created or destroyed and for
 * the last mapper: a fault to that mapper's kpager was taken for a
 * deadlock.)
 */
struct km_behalf {
	km_thread_t thread;
	km_task_t caller;
};

static inline struct km_behalf km_enter(struct km *km, km_thread_t thread)
{
	struct km_behalf was = { km->op_thread, km->op_caller };

	if (km->op_depth++ == 0) {
		km->op_thread = thread != KM_NO_THREAD ? thread
		                                       : km->syscall_thread;
		km->op_caller = KM_NONE;
		km->op_id = ++km->op_serial;
	} else if (thread != KM_NO_THREAD) {
		km->op_thread = thread;
	}
	return was;
}

static inline void km_leave(struct km *km, struct km_behalf was)
{
	KM_ASSERT(km->op_depth > 0);
	km->op_depth--;
	km->op_thread = was.thread;
	km->op_caller = was.caller;
}

static inline uint8_t *km_fp(const struct km *km, km_pfn_t pfn)
{
	return km->mem + (size_t)pfn * KM_PAGE_SIZE;
}
static inline uint32_t *km_words(const struct km *km, km_pfn_t pfn)
{
	return (uint32_t *)(void *)km_fp(km, pfn);
}
/* The two words at w, XORed with v2 (two words of a value). */
static inline uint64_t km_words_pair(const uint32_t *w, uint64_t v2)
{
	uint64_t x;

	memcpy(&x, w, sizeof x);
	return x ^ v2;
}
/* Are the 16 words at w all `v`?  For walks over tables and arrays that
 * are mostly empty. */
static inline bool km_words16_all(const uint32_t *w, uint32_t v)
{
	uint64_t v2 = (uint64_t)v << 32 | v;

	/* Spelled out: -O2 would keep a loop here. */
	return (km_words_pair(w, v2) | km_words_pair(w + 2, v2) |
	        km_words_pair(w + 4, v2) | km_words_pair(w + 6, v2) |
	        km_words_pair(w + 8, v2) | km_words_pair(w + 10, v2) |
	        km_words_pair(w + 12, v2) | km_words_pair(w + 14, v2)) == 0;
}
static inline uint32_t km_phys(const struct km *km, km_pfn_t pfn)
{
	return km->cfg.phys_base + (pfn << KM_PAGE_SHIFT);
}
static inline km_pfn_t km_pte_pfn(const struct km *km, uint32_t pte)
{
	return ((pte & ~0xfffu) - km->cfg.phys_base) >> KM_PAGE_SHIFT;
}
static inline struct km_task *km_task_get(const struct km *km, km_task_t t)
{
	if (t >= km->cfg.max_tasks || !km->task[t].live)
		return NULL;
	return &km->task[t];
}

/* Notes the kernel's use of the kernel page in frame pfn (for kpagers'
 * policies: km_kpager_page_use). */
static inline void km_frame_used_at(struct km *km, km_pfn_t pfn,
                                    uint64_t at)
{
	km->frame[pfn].last_use = at;
	km->frame[pfn].flags |= KM_FR_USED;
}
static inline void km_frame_used(struct km *km, km_pfn_t pfn)
{
	km_frame_used_at(km, pfn, km->now);
}

/* Is task t's mapping `r` lent to the kernel (its PTE cleared)?  That is
 * kept in the pinned frame table, not in the pageable mapping node, so
 * that lending and its end never need the node's page.  Only a task that
 * runs a kpager lends: for any other, the frame's entry (a cache miss on
 * most walks) is not read. */
static inline bool km_lent(const struct km *km, km_task_t t,
                           const struct km_recv *r)
{
	const struct km_frame *f = &km->frame[r->pfn];

	if (km->task[t].kpagers == 0)
		return false;
	return f->kuse == KM_KU_KERNEL && !f->pool &&
	       km->kpager[f->lender].task == t && f->lender_vpn == r->vpn;
}

/* Is kernel page kp lost and awaiting its repair (present, but vacant)? */
static inline bool km_kpage_lost_pending(const struct km *km,
                                         struct km_kpage kp)
{
	return km_pages_lost(&km->task[kp.task].page[kp.type], kp.index) ==
	       KM_LOST_PENDING;
}

/* The frame of a task's kernel page (or KM_OUT_PFN / KM_NO_PFN). */
#define KM_PD(tk) ((tk)->page[KM_KT_PD].pfn[0])
#define KM_ND(tk) ((tk)->page[KM_KT_ND].pfn[0])
#define KM_PT(tk, i) ((tk)->page[KM_KT_PT].pfn[i])
#define KM_NT(tk, i) ((tk)->page[KM_KT_NT].pfn[i])

/* costs.c */
int km_costs_parse(uint32_t cost[KM_C_COUNT], const char *text,
                   char *why, size_t why_len);
void km_charge(struct km *km, enum km_cost c);
struct km_fault_rec *km_rec_begin(struct km *km, struct km_fault_rec *rec,
                                  enum km_fault_kind kind, km_task_t task);
void km_rec_end(struct km *km, struct km_fault_rec *rec,
                struct km_fault_rec *outer);

/* kmem.c: kernel pages and the operation protocol */
/* The frame of a present kernel page, or KM_NO_PFN (absent or out).  (A
 * page is entered only at an index valid for its type, so an index the
 * array holds is valid.)  Inline: fault paths ask this for every page
 * they need. */
static inline km_pfn_t km_kpage_pfn(const struct km *km, struct km_kpage kp)
{
	const struct km_task *tk;
	const struct km_pages *p;

	if (kp.task >= km->cfg.max_tasks || (unsigned)kp.type >= KM_KT_COUNT)
		return KM_NO_PFN;
	tk = &km->task[kp.task];
	p = &tk->page[kp.type];
	if (!tk->live || kp.index >= p->cap || !km_present(p->pfn[kp.index]))
		return KM_NO_PFN;
	return p->pfn[kp.index];
}
bool km_kpage_is_out(const struct km *km, struct km_kpage kp);
void km_op_begin(struct km *km);
int km_op_need(struct km *km, km_task_t task, enum km_ktype type,
               uint32_t index);
int km_op_acquire(struct km *km);
void km_op_rollback(struct km *km);
void km_kpage_free(struct km *km, struct km_kpage kp);
void km_kpage_forget(struct km *km, struct km_kpage kp);
int km_pages_reserve(struct km_pages *p, uint32_t len);
/* Gives p its gen, lost and meta arrays (zeroed) if it has none yet:
 * KM_OK, or KM_EIO if the host refuses the memory. */
int km_pages_aux(struct km_pages *p);
void km_pages_free(struct km_pages *p);
int km_task_alloc_pages(struct km_task *tk);
void km_task_free_pages(struct km_task *tk);
void km_task_free_kpages(struct km *km, km_task_t t);

int km_kpage_revoke(struct km *km, km_pfn_t pfn, bool discard);
int km_kpage_revoke_orphan(struct km *km, km_pfn_t pfn);
int km_victim_revoke(struct km *km);
int km_kpage_to_pool(struct km *km, km_pfn_t pfn);
bool km_kpage_awaits_repair(const struct km *km, km_pfn_t pfn);
void km_pool_reclaim(struct km *km);
int km_bring_out(struct km *km, struct km_kpage kp);
void km_lost_note(struct km *km, struct km_kpage kp);

/*
 * Makes a revoked node table or MDB page present again (km_bring_out
 * says how).  Walks of the mapping database call this for every page they
 * cross, and nearly all of them are in: that case, which only notes the
 * kernel's use of the page, is done here, without a call.
 */
static inline int km_bring(struct km *km, struct km_kpage kp)
{
	km_pfn_t pfn;

	KM_ASSERT(kp.type == KM_KT_NT || kp.type == KM_KT_MDB);
	if ((pfn = km_kpage_pfn(km, kp)) == KM_NO_PFN)
		return km_bring_out(km, kp);
	/* Lost and not yet repaired (a repair found no frame): it reads as
	 * empty, so a walk that crosses it waits for the repair. */
	if (km->nlost > 0 && !km->repairing && km_kpage_lost_pending(km, kp))
		return KM_ERETRY;
	km_frame_used(km, pfn);
	return KM_OK;
}

/* kform.c: external forms */
int km_kform_export(struct km *km, struct km_kpage kp, km_pfn_t pfn,
                    bool discard);
enum km_decision km_kform_import(struct km *km, struct km_kpage kp,
                                 km_pfn_t pfn, enum km_import how);
void km_outmeta_free(struct km_pages *p, uint32_t index);
void km_mdb_page_init(struct km *km, struct km_kpage kp, km_pfn_t pfn);

/* repair.c: undoing what lost node tables and MDB pages held */
int km_repair(struct km *km);

/*
 * A repair may stop short (the kernel found no frame for a page it
 * needed): lost pages and detached mappings then stand between
 * operations, and km_check accepts them.  A walk that crosses a lost page
 * starts over after km_repair (km_bring), and fails with its error while
 * the page stands; an operation on the mapping database first finishes
 * the removal of detached mappings, which walks do not expect to meet.
 * With the kernel's pool low, it first takes back the node tables the
 * pool holds for kpagers' clients (km_pool_reclaim).  (Not from a
 * kpager's callback: an operation is under way then.)
 */
static inline int km_settle(struct km *km)
{
	if (km->in_callback > 0)
		return KM_OK;
	if (km->kpool_len < km->kpool_low && km->kpool_nts > 0)
		km_pool_reclaim(km);
	return km->ndetached == 0 ? KM_OK : km_repair(km);
}

/* pt.c: page tables, node tables */
/* The PTE and the node-table entry of va, if their tables are in. */
static inline uint32_t *km_pte_slot(const struct km *km,
                                    const struct km_task *tk, km_vaddr_t va)
{
	km_pfn_t pt = KM_PDX(va) < KM_USER_PDES ? KM_PT(tk, KM_PDX(va)) :
	              KM_NO_PFN;

	return km_present(pt) ? &km_words(km, pt)[KM_PTX(va)] : NULL;
}
static inline uint32_t *km_nte_slot(const struct km *km,
                                    const struct km_task *tk, km_vaddr_t va)
{
	km_pfn_t nt = KM_PDX(va) < KM_USER_PDES ? KM_NT(tk, KM_PDX(va)) :
	              KM_NO_PFN;

	return km_present(nt) ? &km_words(km, nt)[KM_PTX(va)] : NULL;
}
void km_pt_set(struct km *km, struct km_task *tk, km_vaddr_t va,
               km_pfn_t pfn, unsigned rights, uint32_t nte);
void km_pt_clear(struct km *km, struct km_task *tk, km_vaddr_t va);
void km_pt_clear_out(struct km *km, struct km_task *tk, km_vaddr_t va);
void km_pt_protect(struct km *km, struct km_task *tk, km_vaddr_t va,
                   unsigned rights);
void km_pt_refill(struct km *km, struct km_task *tk, km_vaddr_t va,
                  km_pfn_t pfn, unsigned rights);
void km_pt_hide(struct km *km, struct km_task *tk, km_vaddr_t va);
void km_pt_unhide(struct km *km, struct km_task *tk, km_vaddr_t va,
                  km_pfn_t pfn);
unsigned km_pte_rights_ok(uint32_t pte, unsigned access);
void km_pte_notify(struct km *km, const struct km_task *tk, km_vaddr_t va,
                   uint32_t pages, enum km_pte_change change);

/* mdb.c, and the small lookups every walk of the mapping database makes,
 * here to be inlined. */

/* Part `slot` of task t; its MDB page is in. */
static inline union km_part *km_part(const struct km *km, km_task_t t,
                                     uint32_t slot)
{
	const struct km_pages *p = &km->task[t].page[KM_KT_MDB];
	uint32_t page = KM_SLOT_PAGE(slot), i = KM_SLOT_IDX(slot);

	KM_ASSERT(page < p->len && i < KM_MDB_PARTS &&
	          km_present(p->pfn[page]));
	return &((struct km_mdb_page *)(void *)km_fp(km, p->pfn[page]))->
	       part[i];
}

/* The receiver part task t has at `vpn`, or KM_NONE.  Its node table is
 * not out (see km_recv_find). */
static inline uint32_t km_recv_at(const struct km *km, km_task_t t,
                                  uint32_t vpn)
{
	const uint32_t *nte;

	if (t == KM_SIGMA0 || vpn >= (KM_USER_TOP >> KM_PAGE_SHIFT))
		return KM_NONE;
	KM_ASSERT(KM_NT(&km->task[t], vpn >> 10) != KM_OUT_PFN);
	nte = km_nte_slot(km, &km->task[t], vpn << KM_PAGE_SHIFT);
	if (nte == NULL || *nte == KM_NTE_NONE || *nte == KM_NTE_UTCB)
		return KM_NONE;
	return *nte - 1;
}

/* km_recv_at for a walk that may meet a revoked node table: brings it
 * back first.  A lost one is KM_ERETRY, for km_repair, except inside the
 * repair, which reads it as empty. */
static inline int km_recv_find(struct km *km, km_task_t t, uint32_t vpn,
                               uint32_t *slot)
{
	int err = KM_OK;

	*slot = KM_NONE;
	if (t != KM_SIGMA0 && vpn < (KM_USER_TOP >> KM_PAGE_SHIFT))
		err = km_bring(km, (struct km_kpage){ t, KM_KT_NT, vpn >> 10 });
	if (err == KM_OK)
		*slot = km_recv_at(km, t, vpn);
	return err;
}

/* Brings back the MDB page holding part `slot` of task t, if revoked. */
static inline int km_part_bring(struct km *km, km_task_t t, uint32_t slot)
{
	if (slot == KM_NONE)
		return KM_OK;
	return km_bring(km, (struct km_kpage){ t, KM_KT_MDB,
	                                       KM_SLOT_PAGE(slot) });
}
int km_mdb_need_parts(struct km *km, km_task_t t, uint32_t parts);
void km_mdb_trim_note(struct km *km, struct km_kpage kp);
bool km_unmap_all_simple(const struct km *km, km_task_t t);
void km_unmap_all(struct km *km, km_task_t t, const uint64_t *marks_at);
int km_subtree_prepare(struct km *km, km_task_t t, uint32_t slot,
                       bool self, km_task_t keep);
void km_send_unlink(struct km *km, km_task_t t, uint32_t slot);
void km_part_free(struct km *km, km_task_t t, uint32_t slot);
void km_remove_tree(struct km *km, km_task_t t, uint32_t slot);
void km_mdb_trim(struct km *km);
int km_unmap_all_prepare(struct km *km, km_task_t t);
int km_map_one(struct km *km, km_task_t from, uint32_t src_vpn,
               km_task_t to, uint32_t dst_vpn, unsigned rights);

/* touch.c, task.c */
void km_dp_page_freed(struct km *km, uint32_t vpn);
const struct km_thread *km_thread_get(const struct km *km, km_thread_t th);

#endif /* KPSIM_KMODEL_INTERNAL_H */
