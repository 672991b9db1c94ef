/*
 * Helpers shared by the kmodel tests (header only; include after
 * <cmocka.h> and "kmodel.h"): assertions that name the error they got,
 * the invariant check every step ends with, a fault-record log, and the
 * seeded generator of the randomized tests.
 */
#ifndef KPSIM_TESTS_KMTEST_H
#define KPSIM_TESTS_KMTEST_H

#include <stdint.h>
#include <stdlib.h>

static inline const char *kmt_err_name(int rc)
{
	return rc >= 0 && rc < KM_ERR_COUNT ? km_strerror(rc) : "?";
}

static inline void kmt_expect_rc(int got, int want, const char *expr,
                                 const char *file, int line)
{
	if (got != want)
		fail_msg("%s:%d: %s returned %d (%s), expected %d (%s)", file,
		         line, expr, got, kmt_err_name(got), want,
		         kmt_err_name(want));
}

#define OK(expr) kmt_expect_rc((expr), KM_OK, #expr, __FILE__, __LINE__)
#define ERR(expr, want) \
	kmt_expect_rc((expr), (want), #expr, __FILE__, __LINE__)

static inline void kmt_check_at(const struct km *km, const char *file,
                                int line)
{
	char why[256];

	why[0] = '\0';
	if (!km_check(km, why, sizeof why))
		fail_msg("%s:%d: km_check: %s", file, line, why);
}

/* Every step of every test ends with the invariant checker. */
#define CHECK(km) kmt_check_at((km), __FILE__, __LINE__)

/* Fault records, as the sink sees them. */
#define LOG_CAP 1024

struct rec_log {
	size_t n;                       /* records seen (may exceed LOG_CAP) */
	struct km_fault_rec v[LOG_CAP];
};

static inline void rec_sink(void *ctx, const struct km_fault_rec *rec)
{
	struct rec_log *l = ctx;

	if (l->n < LOG_CAP)
		l->v[l->n] = *rec;
	l->n++;
}

/* xorshift64*: small, fast, and the same everywhere for a given seed. */
static inline uint64_t kmt_rng(uint64_t *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545F4914F6CDD1Dull;
}

/* An unsigned number from the environment, or `dflt`. */
static inline uint64_t kmt_env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);

	return v && *v ? strtoull(v, NULL, 0) : dflt;
}

#endif /* KPSIM_TESTS_KMTEST_H */
