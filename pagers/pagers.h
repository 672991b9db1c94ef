/*
 * pagers: kpager policies.  Each policy is one `const struct kp_ops`
 * (declared by kmodel, which calls it); this module holds the policies,
 * finds them by name or loads them from a shared object, and parses their
 * arguments.  A policy is named by a spec, "name" or "name:key=value,...",
 * for example "quota:frames=16" or "ws:window=2000000".
 */
#ifndef KPSIM_PAGERS_H
#define KPSIM_PAGERS_H

#include "kmodel.h"

/* ---------------------------------------------------------------------- */
/* The built-in policies.  Every one obtains its pool from sigma0 when the */
/* kpager starts (pool=N or frames=N frames at base=ADDR, default         */
/* 0x10000000), and answers restore faults with the frame that holds the  */
/* page's form, or says `discarded` when it no longer has it.  Those that */
/* revoke may take pages of any type.                                     */

/* First come, first served: one pool handed out in order, never
 * preempted; a fault on an empty pool is denied.  Arguments: frames=N
 * (pool size, default 64), base=ADDR. */
extern const struct kp_ops kp_fcfs_ops;

/*
 * Quota: a budget of frames per client task.  A client at its budget has
 * its own least recently used kernel page revoked (KP_REVOKE; the form is
 * kept in the policy's backing store and mapped back when the kernel asks
 * for it), or is denied with over=deny.  When the pool itself runs dry the
 * faulting client again loses its own least recently used page, or is
 * denied if it has none; other clients are never touched.  Arguments:
 * frames=N (budget, default 8), per=task|subsystem (subsystem: one budget
 * for all the kpager's clients together), over=revoke|deny, pool=N (frames
 * from sigma0, default 64), base=ADDR.
 */
extern const struct kp_ops kp_quota_ops;

/*
 * Working set (Denning): a page is in its client's working set if the
 * kernel used it within the last window=W simulated cycles (default
 * 2,000,000; the last use comes from km_kpager_page_use).  When the pool is
 * empty, the page that left its working set longest ago is revoked.  If
 * every lent page is in a working set, the sum of the working sets exceeds
 * the pool and load control acts: load=deny (default) denies the fault;
 * load=shrink takes the least recently used page of the client with the
 * largest working set (the faulting client included).  Arguments: window,
 * load, pool=N (default 64), base=ADDR.
 */
extern const struct kp_ops kp_ws_ops;

/*
 * Type-aware clock (beyond the paper): GCLOCK whose weights come from the
 * kernel page's data type.  A page's counter is set to its type's weight
 * when it is lent or found referenced; the hand decrements it, and takes
 * the page when it reaches zero unreferenced.  Weights: page tables and
 * node directories 0 (they go out vacant and are rebuilt from what stays
 * in the kernel), UTCB pages 1 (their form is saved and copied back),
 * page directories and KTCB pages 3 (a directory brings back every table
 * under it, a KTCB page carries sealed continuations checked on return).
 * Arguments: pool=N (default 64), base=ADDR.
 */
extern const struct kp_ops kp_clock_typed_ops;

/*
 * Pinned: a pool for a real-time subsystem.  Like fcfs, all frames are
 * obtained from sigma0 up front and a page is never revoked, but each
 * client task also has a hard cap (cap=C, default the pool size), so one
 * client can never take the frames another's worst case was sized for; a
 * fault over the cap is denied even with frames free.  A page the kernel
 * takes back on its own keeps its form in its reserved frame, so it can
 * always come back.  Arguments: frames=N (default 64), cap=C, base=ADDR.
 */
extern const struct kp_ops kp_pinned_ops;

/*
 * chaos: wraps another policy (over=fcfs|quota|ws|clock-typed|pinned,
 * default fcfs; the arguments it does not know go to that one) and, from
 * seed=N, revokes its lent pages at random at kernel page faults
 * (revoke=per mille, default 100), discarding the form discard= per mille
 * of those times (250), and scribbles on forms before it gives them back
 * (scribble= per mille of restores, 100).  A test of the kernel: found by
 * kp_find("chaos"), not listed by kp_names.  It reports what it did on
 * stderr when it ends.
 */
extern const struct kp_ops kp_chaos_ops;

/* The built-in policy called `name` ("fcfs", ...), or NULL. */
const struct kp_ops *kp_find(const char *name);

/* The names of all built-in policies, NULL-terminated. */
const char *const *kp_names(void);

/* ---------------------------------------------------------------------- */
/* Specs and shared objects.                                                */

/*
 * Policies from shared objects.  A spec whose name contains a '/' is the
 * path of a shared object (dlopen, RTLD_NOW | RTLD_LOCAL), which must
 * export
 *
 *     const struct kp_ops *kpsim_policy(unsigned abi_version);
 *
 * kpsim calls it with KP_ABI_VERSION; the object returns its policy, or
 * NULL if it was built for another version.  Version 2 (kp_fault.op
 * added to version 1) is the struct
 * kp_ops (init, fini, fault, released, forgotten, aborted, revoked),
 * struct kp_fault and struct kp_decision (KP_MAP, KP_DENY, KP_REVOKE) of
 * kmodel.h; a change to any of them is a new version.  The object calls the
 * km_* functions of the program that loads it, so that program must
 * export them (CMake ENABLE_EXPORTS, -rdynamic); it must not link kmodel
 * itself.  A spec's name may not contain ':'.
 */
#define KP_ABI_VERSION 2u
#define KP_ABI_SYMBOL "kpsim_policy"
typedef const struct kp_ops *(*kp_policy_fn)(unsigned abi_version);
/* What a policy's shared object defines (never kpsim itself). */
const struct kp_ops *kpsim_policy(unsigned abi_version);

/*
 * Splits "name:args" into the name (copied to `name`, NUL-terminated) and
 * *args, which points into spec ("" when there are none).  Returns KM_OK,
 * or KM_EINVAL with the reason in why (empty name, name too long).
 */
int kp_spec_split(const char *spec, char *name, size_t name_len,
                  const char **args, char *why, size_t why_len);

/* A policy found from a spec. */
struct kp_policy {
	const struct kp_ops *ops;
	const char *args;       /* points into the spec given to kp_policy_open */
	void *dl;               /* the shared object, or NULL for a built-in */
};

/*
 * Finds the policy a spec names: a built-in by name, or a shared object
 * by path.  Returns KM_OK and *out; KM_EINVAL (bad spec, unknown name,
 * wrong ABI version, a policy without name, init or fault) or KM_EIO
 * (dlopen or dlsym failed), with the reason in why and *out zeroed.
 */
int kp_policy_open(const char *spec, struct kp_policy *out, char *why,
                   size_t why_len);

/*
 * Starts a kpager running `ops` with `args` ("" for none) in a task of its
 * own, whose kernel memory comes from the in-kernel pool: how a run and a
 * replay start theirs, so that both give the kernel the same ids.
 * Returns KM_OK with *task and *kp, or an error with the reason in why.
 */
int kp_start(struct km *km, const struct kp_ops *ops, const char *args,
             km_task_t *task, km_kpager_t *kp, char *why, size_t why_len);

/* Unloads a policy's shared object.  Call it only when no kpager of the
 * model runs it (after km_destroy); accepts NULL and built-ins. */
void kp_policy_close(struct kp_policy *p);

/* ---------------------------------------------------------------------- */
/* Arguments, "key=value,key=value".                                        */

/*
 * Reads an unsigned number (decimal or 0x hex) for `key` from `args`
 * ("key=value,...").  Returns KM_OK with *out set (to `dflt` when the key is
 * absent) or KM_EINVAL with the reason in why.
 */
int kp_arg_u32(const char *args, const char *key, uint32_t dflt,
               uint32_t *out, char *why, size_t why_len);

/* Reads `key` as one of the words in `choices` (NULL-terminated): KM_OK
 * with its index in *out (0, the default, when the key is absent), or
 * KM_EINVAL naming the value and the choices. */
int kp_arg_choice(const char *args, const char *key,
                  const char *const *choices, unsigned *out, char *why,
                  size_t why_len);

/* Checks that every key in `args` is one of `known` (NULL-terminated),
 * given once, and that the list is well formed.  KM_OK, or KM_EINVAL
 * naming the key. */
int kp_args_check(const char *args, const char *const *known,
                  char *why, size_t why_len);

#endif /* KPSIM_PAGERS_H */
