/*
 * pagers: kpager policies.  Each policy is one `const struct kp_ops`
 * (declared by kmodel, which calls it); this module holds the policies,
 * finds them by name, and parses their arguments ("key=value,...").
 */
#ifndef KPSIM_PAGERS_H
#define KPSIM_PAGERS_H

#include "kmodel.h"

/* ---------------------------------------------------------------------- */
/* The built-in policies.  Every one obtains its pool from sigma0 when the */
/* kpager starts (pool=N or frames=N frames at base=ADDR, default         */
/* 0x10000000), and answers restore faults with the frame that holds the  */
/* page's form, or says `discarded` when it no longer has it.             */

/* First come, first served: one pool handed out in order, never
 * preempted; a fault on an empty pool is denied.  Arguments: frames=N
 * (pool size, default 64), base=ADDR. */
extern const struct kp_ops kp_fcfs_ops;

/* The built-in policy called `name` ("fcfs", ...), or NULL. */
const struct kp_ops *kp_find(const char *name);

/* The names of all built-in policies, NULL-terminated. */
const char *const *kp_names(void);

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
