/*
 * kmodel: a C model of an L4-style microkernel on IA-32 whose metadata
 * lives in frames that user-level kpagers lend (Haeberlen and Elphinstone,
 * "User-Level Management of Kernel Memory", 2003).
 *
 * The model owns physical frames (one memfd), tasks and threads, real IA-32
 * page tables with parallel node tables, the mapping database (map, grant,
 * unmap on flexpages, rooted at sigma0), and the kernel's own memory, which
 * comes either from an in-kernel pool or, page by page, from kpagers through
 * kernel page faults.  Every kernel path charges named cycle costs.
 *
 * Conventions.  Every mutator validates all of its arguments and obtains all
 * kernel pages it needs before it changes anything ("validate, then
 * commit"): on any error it returns a nonzero enum km_err and the model is
 * exactly as before, apart from statistics, the simulated clock, and
 * revoked kernel pages it brought back (their content unchanged).  Bad
 * input never aborts; an abort means a model bug and prints the broken
 * invariant.  No function keeps a pointer it was given unless it says so.
 */
#ifndef KPSIM_KMODEL_H
#define KPSIM_KMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef uint32_t km_pfn_t;      /* physical frame number */
typedef uint32_t km_vaddr_t;    /* IA-32 virtual address */
typedef uint32_t km_task_t;     /* task id; 0 is sigma0 */
typedef uint32_t km_thread_t;   /* thread id; 0 is "no thread" */
typedef uint32_t km_kpager_t;   /* kpager id; 0 is the in-kernel pool */

#define KM_PAGE_SHIFT   12
#define KM_PAGE_SIZE    4096u
#define KM_SIGMA0       ((km_task_t)0)
#define KM_NO_THREAD    ((km_thread_t)0)
#define KM_ROOT_KPAGER  ((km_kpager_t)0)
#define KM_NO_PFN       ((km_pfn_t)0xffffffffu)

/* User space is [0, KM_USER_TOP); above it every page directory holds the
 * kernel's entries (the simulator's physical window).  Each task's UTCB
 * area is the 4 MiB at KM_UTCB_AREA, one page table of its own (as with L4
 * on Linux 2.4, where the stack's table at 0xBFC00000 is another one); the
 * kernel maps UTCB pages there, and user mappings may not be placed there. */
#define KM_USER_TOP     0xC0000000u
#define KM_UTCB_AREA    0xBF000000u
#define KM_UTCB_AREA_SIZE 0x00400000u
#define KM_UTCB_SIZE    512u        /* bytes per thread, 8 per page */
#define KM_KTCB_SIZE    1024u       /* bytes per thread in a KTCB page, 4 per page */
#define KM_KTCB_PINNED  96u         /* bytes per thread that stay pinned */

/* ---------------------------------------------------------------------- */
/* Errors: one enum for the whole model, OK == 0.                           */

enum km_err {
	KM_OK = 0,
	KM_EINVAL,      /* malformed argument (address, flexpage, rights, flag) */
	KM_ENOTASK,     /* no such task */
	KM_ENOTHREAD,   /* no such thread */
	KM_ENOKPAGER,   /* no such kpager */
	KM_ENOMAP,      /* nothing mapped where the operation needs a mapping */
	KM_EPERM,       /* the caller may not do this (sigma0 grants, ...) */
	KM_ERESERVED,   /* the address lies in a reserved range (UTCB area) */
	KM_ECYCLE,      /* the destination mapping is an ancestor of the source */
	KM_EACCES,      /* access violates the mapping's rights; pager cannot fix */
	KM_EDENIED,     /* a kpager denied a kernel page fault */
	KM_ENOMEM,      /* a pool (in-kernel, sigma0, pager) is exhausted */
	KM_ELIMIT,      /* a model limit (tasks, threads, frames) is reached */
	KM_EBUSY,       /* the object is in use (lent to the kernel, has clients) */
	KM_EKPAGER,     /* a kpager returned a decision the kernel refuses */
	KM_EIO,         /* host failure (memfd, mmap, reading a file) */
	KM_EPARSE,      /* malformed text input (cost table) */
	KM_EDEADLK,     /* a kernel page fault would wait on a kpager that
	                 * waits on it: the operation was aborted */
	KM_ERR_COUNT
};

/* Returns a static, human-readable text for an enum km_err value. */
const char *km_strerror(int err);

/* ---------------------------------------------------------------------- */
/* Kernel data types and the kernel virtual address space.                  */

/*
 * Kernel data types, in hierarchy order: a page of an earlier type never
 * depends on a page of a later type, so faulting needed pages in this order
 * never asks for a page whose parent is missing.  (Directory before its
 * tables, a table before its node table, node tables before the mapping
 * nodes they locate, all address-space data before thread data.)
 * This order is the one place the fault hierarchy is written down.
 */
enum km_ktype {
	KM_KT_PD = 0,   /* page directory: 1024 PDEs, walked by the MMU */
	KM_KT_ND,       /* node directory: per PDE, a count of live PTEs */
	KM_KT_PT,       /* page table: 1024 PTEs, walked by the MMU */
	KM_KT_NT,       /* node table: per PTE, a reference to its mapping node */
	KM_KT_MDB,      /* mapping-database page: 170 mapping-node parts */
	KM_KT_UTCB,     /* user TCBs: 8 slots of 512 bytes, mapped to the task */
	KM_KT_KTCB,     /* pageable kernel TCBs: 4 slots of 1 KiB */
	KM_KT_COUNT
};

/* The accounting groups of the paper's Figure 2. */
enum km_kgroup {
	KM_KG_P = 0,    /* page tables and directories */
	KM_KG_N,        /* node tables and node directories */
	KM_KG_M,        /* mapping database */
	KM_KG_U,        /* UTCB pages */
	KM_KG_K,        /* KTCB pages (not in Figure 2's metadata column) */
	KM_KG_COUNT
};

/* A kernel page is named by content, not by where it sits. */
struct km_kpage {
	km_task_t task;         /* the task the page is charged to */
	enum km_ktype type;
	uint32_t index;         /* PDE index for PT/NT, slot page for the rest */
};

const char *km_ktype_name(enum km_ktype type);      /* "pd", "pt", ... */
enum km_kgroup km_ktype_group(enum km_ktype type);

/*
 * The kernel virtual address of a kernel page: each data type owns a range
 * (bits 63..60), each task a window in it (bits 59..32), pages are indexed in
 * the window (bits 31..12).  A generic kpager can ignore it; a specialised
 * one can read the type from the top bits.
 */
uint64_t km_kpage_kva(struct km_kpage kp);
/* Decodes a kernel virtual address; KM_EINVAL if it names no kernel page. */
int km_kva_decode(uint64_t kva, struct km_kpage *out);

/* ---------------------------------------------------------------------- */
/* Costs and fault records.                                                 */

/* Named costs of kernel paths, in cycles, read from a cost table. */
enum km_cost {
	KM_C_TRAP_ENTRY = 0,    /* user -> kernel crossing */
	KM_C_TRAP_EXIT,         /* kernel -> user crossing */
	KM_C_PF_DECODE,         /* page-fault entry: decode CR2, error code */
	KM_C_PT_WALK,           /* kernel walk of a task's page table */
	KM_C_FAULT_IPC,         /* synthesize a fault IPC and switch to the pager */
	KM_C_REPLY_IPC,         /* the pager's map reply, back to the faulter */
	KM_C_PAGER_HANDLER,     /* user-level pager's fault handler */
	KM_C_KPAGER_HANDLER,    /* user-level kpager's fault handler */
	KM_C_MAP_ITEM,          /* decode one map or grant item */
	KM_C_MAP_PAGE,          /* map one page: PTE, node-table entry */
	KM_C_MDB_INSERT,        /* insert one mapping node (both parts) */
	KM_C_MDB_REMOVE,        /* remove one mapping node */
	KM_C_UNMAP_PAGE,        /* clear one PTE and flush its TLB entry */
	KM_C_KPOOL_ALLOC,       /* take a frame from the in-kernel pool */
	KM_C_KPOOL_FREE,        /* return a frame to the in-kernel pool */
	KM_C_KMAP,              /* enter a lent frame into the kernel space */
	KM_C_KUNMAP,            /* return a kernel page's frame to its lender */
	KM_C_ZERO_FRAME,        /* clear a 4 KiB frame */
	KM_C_KPAGE_INIT,        /* initialise a kernel page for its type */
	KM_C_TASK_CREATE,       /* task bookkeeping */
	KM_C_TASK_DELETE,
	KM_C_THREAD_CREATE,     /* thread bookkeeping (pinned part, KTCB init) */
	KM_C_THREAD_DELETE,
	KM_C_REVOKE,            /* take a kernel page out of the kernel */
	KM_C_EXPORT,            /* convert a page to its external form */
	KM_C_IMPORT,            /* convert an external form back */
	KM_C_SEAL,              /* MAC one continuation (export or check) */
	KM_C_VALIDATE,          /* check an imported continuation's fields */
	KM_C_PT_REFILL,         /* re-enter a PTE from its mapping node */
	KM_C_DIGEST,            /* keyed digest of a node table or MDB page */
	KM_C_LOCALISE,          /* localise (or translate back) one part */
	KM_C_COUNT
};

const char *km_cost_name(enum km_cost c);   /* "trap_entry", ... */

/* The default cost table (Pentium II/400) as text, compiled in. */
extern const char km_default_costs[];

enum km_fault_kind {
	KM_FK_USER = 0,         /* a user page fault, resolved by the pager */
	KM_FK_KERNEL,           /* a kernel page fault, resolved by a kpager */
	KM_FK_KPOOL,            /* a kernel page taken from the in-kernel pool */
	KM_FK_REVOKE            /* a kernel page revoked by its kpager */
};

enum km_decision {
	KM_D_MAPPED = 0,        /* resolved: a frame was mapped */
	KM_D_DENIED,            /* the (k)pager refused */
	KM_D_REFUSED,           /* the kernel refused the (k)pager's answer */
	KM_D_FAILED,            /* unresolved: a nested fault failed */
	KM_D_PRESENT,           /* nothing to do: already mapped (spurious) */
	KM_D_RESTORED,          /* a revoked page came back from its form */
	KM_D_REBUILT,           /* a revoked page came back rebuilt: its
	                         * content is redundant (PD, PT, ND) */
	KM_D_LOST,              /* a revoked page came back empty: its form
	                         * was discarded (UTCB, KTCB content lost) */
	KM_D_STOPPED,           /* came back, but a continuation in it was
	                         * refused: its thread is stopped */
	KM_D_EXPORTED,          /* revoked: the kpager keeps the form */
	KM_D_DISCARDED,         /* revoked: the kpager discards the form */
	KM_D_REFILLED,          /* a user fault resolved from the mapping
	                         * database: the PTE was gone with its table */
	KM_D_REJECTED,          /* came back, but its form was refused: the
	                         * page is empty, what it held is undone */
	KM_D_EVICT,             /* the kpager named a page of its own to revoke
	                         * first (KP_REVOKE): the operation retries */
	KM_D_ABORTED            /* a deadlock: the kpager waits on this fault
	                         * (directly or through others); aborted */
};

const char *km_fault_kind_name(enum km_fault_kind k);
const char *km_decision_name(enum km_decision d);

/* One fault, reported to the fault sink when it completes (so nested
 * kernel faults are reported before the user fault that raised them). */
struct km_fault_rec {
	uint64_t seq;               /* 1, 2, ... in the order faults are raised */
	uint64_t parent;            /* seq of the user fault that caused it, or 0 */
	uint64_t cycle;             /* simulated clock when the fault was raised */
	km_task_t task;             /* the task the fault is for */
	km_thread_t thread;         /* the faulting thread, or KM_NO_THREAD */
	enum km_fault_kind kind;
	km_vaddr_t addr;            /* user faults: the faulting address */
	uint32_t access;            /* user faults: KM_ACC_* */
	struct km_kpage kpage;      /* kernel faults: the kernel page */
	km_pfn_t pfn;               /* the frame that resolved it, or KM_NO_PFN */
	enum km_decision decision;
	uint64_t cycles;            /* cycles of this fault alone (nested excluded) */
	uint32_t count[KM_C_COUNT]; /* how often each named cost was charged */
};

typedef void (*km_fault_sink)(void *ctx, const struct km_fault_rec *rec);

/* ---------------------------------------------------------------------- */
/* The model.                                                               */

struct km;

enum km_kmem {
	KM_KMEM_POOL = 0,       /* the in-kernel pool: no kernel page faults */
	KM_KMEM_KPAGER          /* kernel pages come from each task's kpager */
};

struct km_config {
	uint32_t frames;        /* simulated RAM in 4 KiB frames, >= 64 */
	uint32_t phys_base;     /* PTEs hold phys_base + pfn * 4096 */
	uint32_t kpool_frames;  /* frames sigma0 gives the in-kernel pool */
	enum km_kmem kmem;
	uint32_t max_tasks;     /* 0: a default */
	uint32_t max_threads;   /* 0: a default */
	const char *costs;      /* cost table text; NULL: km_default_costs */
	uint64_t key_seed;      /* 0: a random kernel key (seals
	                         * continuations); else one derived from it */
	bool unordered;         /* request an operation's kernel pages in the
	                         * order it lists them, not in hierarchy order
	                         * (to show what the ordering prevents) */
	bool no_user_data;      /* nothing reads the bytes of user pages (a
	                         * replay): the default pager is charged for
	                         * zeroing a page it hands out, but does not
	                         * write it.  Kernel pages are made as always. */
};

/* A configuration with sensible defaults for `frames` frames. */
struct km_config km_config_default(uint32_t frames);

/*
 * The frames of the in-kernel pool that pages lent by kpagers never take:
 * when a kpager refuses to give back a node table or MDB page, the kernel
 * enters it from its pool (salvage), and when a kpager's mapping of a
 * frame lent as one goes, the kernel moves the page into its pool; both
 * stop short of these frames.  They are left to the kernel's own tasks
 * (sigma0, the default pager, kpagers' tasks), whose pages only the pool
 * provides, so that a hostile kpager's clients cannot take the frame an
 * honest subsystem's fault needs next.  A default pager's fault takes at
 * most 7 pool pages: when it grows its pool by 256 frames from sigma0,
 * 2 mapping pages each for sigma0's and its own 256 new parts, a page
 * table and a node table; and a mapping page for the fault's own map.
 */
#define KM_KPOOL_RESERVE 8u

/*
 * Creates a model: frames in a fresh memfd (lazily backed), the frame table,
 * sigma0 owning every frame, the in-kernel pool taken from sigma0.
 * Returns KM_OK and *out, or an error (KM_EINVAL for a bad configuration,
 * KM_EPARSE for a bad cost table, with its line in *why when why != NULL,
 * KM_EIO when the host refuses memory) and leaves *out NULL.
 */
int km_create(const struct km_config *cfg, struct km **out,
              char *why, size_t why_len);
/* Destroys the model and everything in it; accepts NULL. */
void km_destroy(struct km *km);

/* Sets the fault sink (NULL: none).  ctx is kept until replaced. */
void km_set_fault_sink(struct km *km, km_fault_sink sink, void *ctx);

/* The simulated clock, in cycles; the simulator advances it for guest time. */
uint64_t km_now(const struct km *km);
/* km_stats' pager_cycles alone: cheap enough to ask at every event. */
uint64_t km_pager_cycles(const struct km *km);
void km_advance(struct km *km, uint64_t cycles);
/* Cycles charged so far for a named cost, and how often it was charged. */
uint64_t km_cost_value(const struct km *km, enum km_cost c);

/* The memfd holding the frames (for aliasing frames into guests) and the
 * host address of a frame's bytes; valid until km_destroy. */
int km_frames_fd(const struct km *km);
uint8_t *km_frame_ptr(const struct km *km, km_pfn_t pfn);
uint32_t km_frame_count(const struct km *km);

/*
 * The kernel's page-directory entries for [KM_USER_TOP, 4 GiB): copied into
 * every page directory the kernel builds from now on and into existing ones.
 * The simulator sets them to map its physical window supervisor-only.
 */
void km_set_kernel_pdes(struct km *km, const uint32_t pdes[256]);

/* ---------------------------------------------------------------------- */
/* kpagers.                                                                 */

/* A kernel page fault as a kpager sees it. */
struct kp_fault {
	uint64_t seq;           /* the fault record's sequence number */
	km_kpager_t kpager;     /* the kpager asked (for km_kpager_page_use) */
	uint64_t now;           /* simulated clock */
	km_thread_t thread;     /* on whose behalf, or KM_NO_THREAD */
	uint64_t op;            /* the kernel operation it is for: 1, 2, ...,
	                         * one per call into the model from outside
	                         * (a touch, a map, a task's creation); the
	                         * faults of its attempts after a KP_REVOKE
	                         * share it */
	struct km_kpage kpage;  /* the page the kernel needs */
	uint64_t kva;           /* its kernel virtual address */
	bool restore;           /* the page was revoked: map the frame that
	                         * holds its external form */
};

enum kp_action {
	KP_MAP = 0,             /* lend the page at `vaddr` of the kpager's task */
	KP_DENY,                /* refuse: the kernel operation fails */
	KP_REVOKE               /* no frame free: take back the page lent at
	                         * `vaddr` first (its form kept in it unless
	                         * `discarded`), then ask again */
};

struct kp_decision {
	enum kp_action action;
	km_vaddr_t vaddr;       /* KP_MAP: a page the kpager's task has mapped
	                         * writable, that it has not mapped onwards */
	bool discarded;         /* KP_MAP on a restore: the kpager no longer
	                         * has the form; the frame is a fresh one.
	                         * KP_REVOKE: discard the victim's form */
};

/* How many KP_REVOKE answers in a row the kernel follows before it takes
 * the next one as a denial (a policy that only ever evicts).  Giving back
 * a page it named as a victim in the row does not end the row: a policy
 * that gives one page only for another the kernel needs as well would
 * otherwise keep an operation retrying for ever. */
#define KM_EVICT_STREAK 64

/*
 * A kpager policy: plugged in like a dictType, one const struct per policy.
 * The kernel calls it; the policy returns decisions that the kernel carries
 * out and checks.  A policy keeps its own state behind `state`.
 */
struct kp_ops {
	const char *name;
	/* Sets up the policy for the kpager whose task is `task` (already
	 * created), with `args` ("key=value,..." or ""), obtaining its frames
	 * from sigma0 with km_sigma0_map.  Returns KM_OK and *state, or an
	 * error with a message in why; nothing is kept on error. */
	int (*init)(struct km *km, km_task_t task, const char *args,
	            void **state, char *why, size_t why_len);
	/* Releases the policy state; accepts NULL. */
	void (*fini)(void *state);
	/* Decides a kernel page fault. */
	void (*fault)(void *state, const struct kp_fault *f,
	              struct kp_decision *d);
	/* The kernel no longer needs the page it held at `vaddr` (freed, or
	 * handed back after a failed operation): it is the kpager's again. */
	void (*released)(void *state, km_vaddr_t vaddr, struct km_kpage kp);
	/* Optional: the revoked page `kp` will never be asked back (its task
	 * or thread is gone, or the kernel made it anew without the form):
	 * the kpager may reuse what holds its form. */
	void (*forgotten)(void *state, struct km_kpage kp);
	/* Optional: the kernel could not carry out the kpager's answer to
	 * fault `f` (a deadlock: carrying it out needed a fault that waits on
	 * this kpager; or a page it relies on could not be had): nothing of
	 * the answer was taken, the page named is the kpager's as before.
	 * Without it, a page named for a new kernel page is released. */
	void (*aborted)(void *state, const struct kp_fault *f);
	/* Optional: the kernel revoked the page `kp` lent at `vaddr` (after
	 * KP_REVOKE, through km_kpager_revoke whoever called it, or because
	 * the kpager's mapping of it lost rights): the frame is the kpager's
	 * again and holds the form (zero if `discarded`). */
	void (*revoked)(void *state, km_vaddr_t vaddr, struct km_kpage kp,
	                bool discarded);
};

/*
 * Creates a kpager: a policy serving kernel page faults, running in `task`
 * (which holds its frames).  The policy's init runs here.
 * Returns KM_OK and *id; KM_ENOTASK, KM_EINVAL (sigma0 or a NULL ops), or
 * the policy's error (message in why).  Nothing changes on error.
 */
int km_kpager_create(struct km *km, const struct kp_ops *ops,
                     km_task_t task, const char *args, km_kpager_t *id,
                     char *why, size_t why_len);
/* Statistics of one kpager. */
struct km_kpager_stats {
	uint64_t faults;        /* kernel page faults delivered */
	uint64_t mapped;
	uint64_t denied;
	uint64_t refused;       /* decisions the kernel refused */
	uint64_t released;      /* pages handed back, no longer needed */
	uint64_t revoked;       /* pages it took back (revocation) */
	uint64_t evicted;       /* of those, victims it named (KP_REVOKE) */
	uint64_t aborted;       /* its faults aborted as deadlocks, asked or
	                         * (being blocked) not */
	uint32_t lent;          /* pages lent to the kernel now */
};
int km_kpager_stats(const struct km *km, km_kpager_t id,
                    struct km_kpager_stats *out);

/*
 * Revocation: kpager `id` takes back the kernel page it lent at `vaddr` of
 * its task, between any two operations.  The kernel converts the page to
 * its external form in the frame, takes it out of the kernel, and makes the
 * frame the kpager's again:
 * - page directories, page tables and node directories go out vacant (all
 *   zero).  They are redundant: a page table's mappings stay in the mapping
 *   database and node tables, and each PTE is refilled from its mapping
 *   node on the next touch (KM_D_REFILLED); page tables under a revoked
 *   directory stay in the kernel and are entered again when it returns;
 * - a UTCB page goes out as it is (its owner may read and write it anyway);
 * - a KTCB page goes out as continuations: per thread, a digest of its
 *   state at a safe point, sealed with a MAC under the kernel's key;
 * - a node table goes out localised (its entries name the client's own
 *   mapping nodes only), a mapping-database page too (each part keeps its
 *   client-local links, rights, page and the other party's task id; the
 *   other party's part and the frame stay with the kernel, which keeps a
 *   receipt per part and a keyed digest per page).
 * When the kernel next needs the page it raises a kernel page fault with
 * `restore` set; the kpager maps a frame holding the form, and the kernel
 * validates and converts it back.  A continuation whose MAC or fields do
 * not check (forged, damaged, stale) stops its thread, with a reason: the
 * refusal lands on that thread alone.  A node table or MDB page must come
 * back as exported (while it is out no map, grant or unmap can touch its
 * mappings, so that is the one state the client could have built);
 * anything else is refused (KM_D_REJECTED) and the page is lost.
 * With `discard`, the kpager will not keep the form: redundant pages are
 * rebuilt on return (KM_D_REBUILT); a UTCB page comes back zeroed and the
 * threads of a KTCB page come back stopped (KM_D_LOST).  A lost node table
 * is rebuilt from the mapping database; a lost MDB page loses its
 * mappings: each one goes as unmap would take it, with everything derived
 * from it, which lands on the kpager's clients and what they passed on.
 * A kpager that denies a node table or MDB page back loses it the same
 * way (the kernel enters it from its pool), so it cannot block others.
 * Revocation is refused (KM_EBUSY) from inside a kpager callback: an
 * operation is under way then; and for a node table or MDB page lost and
 * awaiting its repair (a repair that found no frame), until the repair.
 * Returns KM_OK; KM_ENOKPAGER; KM_EINVAL if `vaddr` is not a page the
 * kpager has lent; KM_EBUSY; KM_EIO if the host refuses memory for what
 * the kernel keeps.  Nothing changes on error.
 */
int km_kpager_revoke(struct km *km, km_kpager_t id, km_vaddr_t vaddr,
                     bool discard);

/*
 * The kernel's use of the page kpager `id` lent at `vaddr`: whether an
 * operation needed it since the last call with `clear` (which clears the
 * mark), and the simulated cycle of that last use.  (The MMU's own walks
 * of page tables show in the page directory's accessed bits instead.)
 * KM_OK; KM_ENOKPAGER; KM_EINVAL if the page is not lent by it.
 */
int km_kpager_page_use(struct km *km, km_kpager_t id, km_vaddr_t vaddr,
                       bool clear, bool *referenced, uint64_t *last_use);

/* Can a kernel page of this type be revoked? */
bool km_ktype_is_revocable(enum km_ktype type);

/* ---------------------------------------------------------------------- */
/* Tasks and threads.                                                       */

/*
 * Creates a task whose kernel memory comes from `kpager` (KM_ROOT_KPAGER:
 * the in-kernel pool).  Its page directory and node directory are faulted
 * in first.  Returns KM_OK and *id; KM_ENOKPAGER, KM_ELIMIT, or the error of
 * a kernel page fault (KM_EDENIED, KM_ENOMEM); nothing changes on error.
 */
int km_task_create(struct km *km, km_kpager_t kpager, km_task_t *id);

/*
 * Deletes a task: its threads, every mapping it holds (and, recursively,
 * every mapping derived from them in other tasks), then its kernel pages,
 * which go back to their lenders (revoked ones are forgotten).  A page lent
 * to the kernel among the mappings removed is revoked, its form discarded.
 * KM_ENOTASK; KM_EPERM for sigma0; KM_EBUSY if the task backs a kpager
 * that still has pages lent or clients.
 */
int km_task_destroy(struct km *km, km_task_t task);

/*
 * Makes `kpager` (KM_ROOT_KPAGER: the in-kernel pool) the source of task
 * t's kernel memory from now on, to build hierarchies that creation order
 * cannot (a kpager paged by its own client).  KM_EBUSY unless every kernel
 * page t has came from the pool; KM_ENOTASK, KM_EPERM (sigma0),
 * KM_ENOKPAGER.
 */
int km_task_set_kpager(struct km *km, km_task_t t, km_kpager_t kpager);

/*
 * Creates a thread in `task` with `pager` (a task that resolves its user
 * page faults; 0 for the model's default pager, see km_default_pager).
 * Allocates a UTCB slot (mapped into the task's UTCB area) and a KTCB slot,
 * faulting in their pages.  Returns KM_OK and *id, or an error with nothing
 * changed.
 */
int km_thread_create(struct km *km, km_task_t task, km_task_t pager,
                     km_thread_t *id);
/* Deletes a thread and frees its slots. KM_ENOTHREAD. */
int km_thread_destroy(struct km *km, km_thread_t thread);
/* Task t's live threads in ascending id order, at most `cap` of them into
 * out; returns how many it has (0 for no such task). */
uint32_t km_task_threads(const struct km *km, km_task_t t, km_thread_t *out,
                         uint32_t cap);

enum km_thread_state {
	KM_TS_READY = 1,        /* may run */
	KM_TS_STOPPED           /* stopped by the kernel; see the reason */
};

enum km_stop_reason {
	KM_STOP_NONE = 0,
	KM_STOP_FORGED,         /* its continuation failed the MAC check */
	KM_STOP_INVALID,        /* its continuation's fields did not check */
	KM_STOP_DISCARDED       /* its kpager discarded its continuation */
};

const char *km_stop_reason_name(enum km_stop_reason r);

/* A thread's state (kept in its pinned part, so it can be read while its
 * KTCB page is out).  KM_ENOTHREAD. */
int km_thread_state(const struct km *km, km_thread_t thread,
                    enum km_thread_state *state, enum km_stop_reason *why);

/*
 * Reads (write == false) or writes a thread's user registers, kept in its
 * KTCB (eax ecx edx ebx esp ebp esi edi eip eflags).  A revoked KTCB page
 * comes back first, through a kernel page fault; that may stop the thread
 * (its continuation refused), after which its registers read as zero and
 * writes are refused.  Returns KM_OK; KM_ENOTHREAD; KM_EPERM (stopped); a
 * kernel page fault's error.
 */
int km_thread_regs(struct km *km, km_thread_t thread, uint32_t regs[10],
                   bool write);

/* The task of a thread, or KM_ENOTHREAD. */
int km_thread_task(const struct km *km, km_thread_t thread, km_task_t *task);
/* Where the thread's UTCB sits in its task's address space. */
int km_thread_utcb(const struct km *km, km_thread_t thread, km_vaddr_t *va);

bool km_task_exists(const struct km *km, km_task_t task);

/* ---------------------------------------------------------------------- */
/* The mapping database: flexpages, map, grant, unmap.                     */

/* L4 rights: read, write, execute.  IA-32 pages without PAE cannot say
 * "not executable": any of R or X makes a PTE present, W makes it writable. */
#define KM_R 4u
#define KM_W 2u
#define KM_X 1u
#define KM_RWX 7u

/* A flexpage: 2^log2 bytes at base (aligned), with a rights mask.  For
 * sigma0 the base is a physical address, frame number * 4096 (without the
 * simulator's phys_base).  A flexpage must lie inside its space: user
 * flexpages below KM_USER_TOP (so 2^31 and 2^32 are refused), sigma0's
 * inside simulated RAM. */
struct km_fpage {
	uint32_t base;          /* user VA, or for sigma0 a physical address */
	uint8_t log2;           /* 12 .. 32 */
	uint8_t rights;         /* KM_R | KM_W | KM_X */
};

static inline struct km_fpage km_fpage(uint32_t base, unsigned log2,
                                       unsigned rights)
{
	struct km_fpage f = { base, (uint8_t)log2, (uint8_t)rights };
	return f;
}

enum km_map_mode { KM_MAP = 0, KM_GRANT = 1 };

/*
 * Maps (or grants) every page of `src` that `from` has mapped into `to` at
 * `dst_base` + the page's offset, with rights (src.rights & the source
 * mapping's rights); `dst_base` is aligned like the flexpage.  Pages whose
 * rights come out empty, pages lent to the kernel, and a page mapped onto
 * itself are skipped.  For sigma0, `src` names physical frames; sigma0 may
 * map a frame to several tasks, but never a frame of the in-kernel pool or
 * one holding a kernel page.  A mapping already at a destination is
 * replaced (unmapped with everything derived from it).  Map keeps the
 * source mapping and derives the new one from it; grant moves the mapping,
 * with everything derived from it (whose mapper is then `to`), and removes
 * it from `from`.  Mapping nothing is KM_OK with *pages == 0.
 * Returns KM_OK and, in *pages (may be NULL), how many pages moved; or
 * KM_ENOTASK, KM_EINVAL (flexpage, alignment, range), KM_ERESERVED (UTCB
 * area), KM_EPERM (sigma0 grants; a sigma0 destination), KM_ECYCLE,
 * KM_EBUSY (a page lent to the kernel below a replaced or granted mapping
 * holds a page table or directory of `to` itself), or a kernel page fault's
 * error.  A page lent to the kernel below a replaced or granted mapping is
 * revoked when the map is made, its form discarded.  Nothing changes on
 * error, except that a lent node table or MDB page there is dealt with
 * before anything else, whatever then becomes of the map: moved into a
 * frame of the in-kernel pool (its lender gets the frame back), or with the
 * pool empty revoked, its form discarded and its loss undone as for any
 * lost page.
 */
int km_map(struct km *km, km_task_t from, struct km_fpage src,
           km_task_t to, km_vaddr_t dst_base, enum km_map_mode mode,
           uint32_t *pages);

/* Unmap flags. */
#define KM_UNMAP_SELF 1u        /* also revoke the rights from the mappings
                                 * in `task` itself (L4 "flush") */

/*
 * Revokes `fp.rights` from every mapping derived from the pages of `fp` in
 * `task` (and from `task`'s own mappings of those pages with
 * KM_UNMAP_SELF).  A mapping left without rights is removed, with
 * everything derived from it.  For sigma0, `fp` names frames, whose roots
 * stay.  Returns KM_OK and in *pages (may be NULL) how many mappings
 * changed, counting every one removed or downgraded at any depth;
 * KM_ENOTASK, KM_EINVAL, or the error of bringing back a revoked page it
 * walks.  Nothing changes on error, but for the node tables and MDB pages
 * below (see next).  Needs no new kernel memory.  A mapping lent to the
 * kernel is revoked first: a kpager unmapping (without KM_UNMAP_SELF) a
 * page it lent revokes it and keeps the form; in every other case the
 * frame leaves the kpager, so the form is discarded; a node table or MDB
 * page, before anything else, moves into a frame of the in-kernel pool
 * instead, or with the pool empty is revoked and what it held undone.
 */
int km_unmap(struct km *km, km_task_t task, struct km_fpage fp,
             unsigned flags, uint32_t *pages);

/*
 * sigma0's allocator: maps `count` frames that sigma0 has not mapped to
 * anyone to `to` at consecutive pages from `dst` (lowest frames first, so
 * runs are physically contiguous).  KM_ENOMEM if sigma0 has too few;
 * otherwise as km_map.
 */
int km_sigma0_map(struct km *km, km_task_t to, km_vaddr_t dst,
                  uint32_t count, unsigned rights);

/* What a task has mapped at a page. */
struct km_mapping {
	km_pfn_t pfn;
	unsigned rights;
	km_task_t from;         /* the mapper; KM_SIGMA0 for roots */
	km_vaddr_t from_vaddr;  /* where it is mapped in `from` (sigma0: phys) */
	bool lent;              /* lent to the kernel by this task */
};
/* KM_OK and *out, KM_ENOMAP, KM_ENOTASK, KM_EINVAL.  Revoked pages it
 * reads come back first; from inside a kpager callback that cannot
 * happen, and the answer is KM_EBUSY. */
int km_lookup(const struct km *km, km_task_t task, km_vaddr_t va,
              struct km_mapping *out);

/* ---------------------------------------------------------------------- */
/* The user-fault path.                                                     */

#define KM_ACC_READ  1u
#define KM_ACC_WRITE 2u
#define KM_ACC_EXEC  4u

/*
 * A thread's access to `va`, as the MMU would make it: if the task's page
 * table allows it, sets A (and D on write) and returns KM_OK.  Otherwise it
 * is a user page fault: the thread's pager is asked (the default pager maps
 * a zeroed frame of its own, obtained from sigma0; that needs page tables,
 * node tables and mapping nodes, so kernel page faults may follow), and the
 * access is retried once.  Returns KM_OK; KM_ENOTHREAD, KM_EINVAL (address
 * in kernel space), KM_ERESERVED (the UTCB area, apart from the thread's
 * task's own UTCB pages), KM_EACCES (a protection fault: the default pager
 * never replaces a mapping), KM_ENOMEM (the pager's pool), KM_ENOMAP (the
 * thread's pager is a user task, which must map the page itself; no fault
 * record: with the fault ordering on, the kernel pages that map will need
 * are obtained first, while no kpager waits on them), or a kernel page
 * fault's error (KM_EDEADLK when the kpager would wait on this thread).  A failed fault leaves the
 * mappings unchanged, though the default pager may have grown its pool
 * from sigma0 first (its own request, made before it answers), and a
 * revoked directory the fault brought back stays back.
 * A touch of a mapping whose PTE went with a revoked page table refills
 * the PTE from the mapping node, without asking the pager (KM_D_REFILLED);
 * a touch of a page lent to the kernel is refused (KM_EACCES).
 */
int km_touch(struct km *km, km_thread_t thread, km_vaddr_t va,
             unsigned access);

/*
 * The calls made between km_syscall_begin and km_syscall_end carry out a
 * system call of `thread`: their kernel page faults are for it (the fault
 * records' thread, kp_fault.thread), where they name no thread themselves
 * (a task's creation, a map).  Outside such a bracket those are for no
 * thread.  Each call is still an operation of its own (kp_fault.op).
 */
void km_syscall_begin(struct km *km, km_thread_t thread);
void km_syscall_end(struct km *km);

/*
 * The default pager: a task of its own whose pool comes from sigma0.  It is
 * created with the model and its kernel memory comes from the in-kernel
 * pool.  Returns its task id.
 */
km_task_t km_default_pager(const struct km *km);

/* ---------------------------------------------------------------------- */
/* Page tables as the MMU sees them.                                        */

#define KM_PTE_P  0x001u
#define KM_PTE_RW 0x002u
#define KM_PTE_US 0x004u
#define KM_PTE_A  0x020u
#define KM_PTE_D  0x040u

/* The value for CR3 (phys_base + page-directory frame * 4096), or 0 if the
 * task has no directory. */
uint32_t km_task_cr3(const struct km *km, km_task_t task);
/* The PTE for `va` in `task` (0 if there is none). */
uint32_t km_pte(const struct km *km, km_task_t task, km_vaddr_t va);

/*
 * PTE observer: how a simulator keeps anything derived from the page tables
 * (host aliases of user pages, an emulated TLB) in step with them.  After
 * the model changes user PTEs of a task it calls the observer once per
 * change, with the pages [va, va + pages * 4096) whose entries changed:
 * - KM_PTE_ADDED: entries became present or gained rights (a map, a refill,
 *   a page table or directory coming back with entries in it, a lent page
 *   handed back).  An emulated TLB needs no flush for these.
 * - KM_PTE_REMOVED: entries were cleared or lost rights (an unmap, a
 *   downgrade, a page lent to the kernel, a page table or directory
 *   vacated or freed).  Stale TLB entries must go before the task runs.
 * The call comes when the entries already hold their new values, from the
 * middle of a model operation: the observer may read PTEs (km_pte) but must
 * not call into the model otherwise.  The UTCB area is reported like any
 * other user page.  A/D bits the MMU sets are not changes.
 */
enum km_pte_change { KM_PTE_ADDED = 0, KM_PTE_REMOVED };
typedef void (*km_pte_observer)(void *ctx, km_task_t task, km_vaddr_t va,
                                uint32_t pages, enum km_pte_change change);
/* Sets the PTE observer (NULL: none).  ctx is kept until replaced. */
void km_set_pte_observer(struct km *km, km_pte_observer fn, void *ctx);

/* The cycles one charge of a named cost takes in this model's table (0 for
 * a value outside enum km_cost): for a simulator that charges kernel paths
 * the model does not run itself (system calls, IPC). */
uint32_t km_cost_cycles(const struct km *km, enum km_cost c);

/* ---------------------------------------------------------------------- */
/* Accounting and checking.                                                 */

struct km_task_stats {
	uint32_t pages[KM_KT_COUNT];    /* kernel pages present, by type */
	uint32_t out[KM_KT_COUNT];      /* kernel pages revoked, by type */
	uint32_t group[KM_KG_COUNT];    /* the same by Figure 2 group */
	uint32_t mappings;              /* user pages mapped in the task */
	uint32_t threads;
	uint64_t kfaults;               /* kernel page faults for this task */
	uint64_t ufaults;               /* user page faults in this task */
};
int km_task_stats(const struct km *km, km_task_t task,
                  struct km_task_stats *out);

struct km_stats {
	uint32_t tasks, threads;
	uint32_t kernel_frames;         /* frames holding kernel pages */
	uint32_t kpool_free;            /* free frames in the in-kernel pool */
	uint32_t sigma0_free;           /* frames sigma0 has not mapped */
	uint64_t kfaults, ufaults, denied;
	uint64_t aborts;                /* operations aborted as deadlocks */
	uint64_t pager_cycles;          /* the default pager's provisioning:
	                                 * cycles it spent taking chunks of
	                                 * frames from sigma0, inside the
	                                 * faults that found its pool dry */
	uint64_t fast_maps;             /* one-page maps done on the fast
	                                 * path (km_set_fast_paths) */
	uint64_t fast_destroys;         /* task deletions done on it */
};
void km_stats(const struct km *km, struct km_stats *out);

/*
 * For tests of the fault ordering, while it is off: the next operation that
 * needs exactly `n` kernel pages requests them in the order perm[0..n-1]
 * of the order it lists them in (a permutation of 0..n-1), once.
 * KM_EINVAL if `perm` is not a permutation or n > 8.
 */
int km_set_request_order(struct km *km, const uint8_t *perm, uint32_t n);

/* Switches the fault ordering on (the default) or off (config.unordered)
 * from now on. */
void km_set_fault_ordering(struct km *km, bool ordered);

/* Switches the fast paths on (the default) or off from now on: with them
 * off, every operation takes the general path.  The results are the same
 * bit for bit; tests compare the two. */
void km_set_fast_paths(struct km *km, bool on);

/* A digest of the kernel's use marks on every frame (when it last used
 * the frame, and whether it has since its kpager last asked), which
 * kpagers read to choose victims: tests compare it between runs that
 * must agree, such as with the fast paths on and off. */
uint64_t km_use_marks_digest(const struct km *km);

/* Iterates over live tasks in id order: returns the first id > after, or
 * 0 when there is none (sigma0 is never returned). */
km_task_t km_task_next(const struct km *km, km_task_t after);

/*
 * Checks every invariant of the model: page tables agree with node tables
 * and the mapping database, the mapping tree is well formed, accounting
 * adds up, every frame is in exactly one state.  Returns true, or false
 * with the first broken invariant in why.
 */
bool km_check(const struct km *km, char *why, size_t why_len);

#endif /* KPSIM_KMODEL_H */
