/*
 * One synthetic workload under every built-in policy with the same pool
 * of frames: three client tasks of one kpager create threads, touch pages
 * in regions that drift over time, and read their threads' registers.
 * Prints one table: operations that failed, kernel page faults, restores,
 * revocations (victims the policy named) and denials, and the simulated
 * cycles.  Checks km_check after every step, so ctest runs it too.
 *
 * Usage: bench_pagers_policies [steps] (default 3000); KPSIM_SEED=N.
 */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmodel.h"
#include "pagers.h"

#define POOL_FRAMES 40
#define CLIENTS 3
#define MAX_THREADS 8
#define GAP 200000u             /* guest cycles between two operations */

static const char *const specs[] = {
	"fcfs:frames=40",
	"quota:frames=16,pool=40",
	"ws:window=2000000,pool=40",
	"ws:window=2000000,load=shrink,pool=40",
	"clock-typed:pool=40",
	"pinned:frames=40,cap=13",
};

struct result {
	uint64_t ops, failed, restores;
	struct km_kpager_stats ks;
	uint64_t cycles;
};

/* xorshift64*, as in the tests. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

static void sink(void *ctx, const struct km_fault_rec *r)
{
	struct result *res = ctx;

	if (r->kind == KM_FK_KERNEL &&
	    (r->decision == KM_D_RESTORED || r->decision == KM_D_REBUILT))
		res->restores++;
}

static void die(const char *spec, const char *what, const char *why)
{
	fprintf(stderr, "bench_pagers_policies: %s: %s: %s\n", spec, what,
	        why);
	exit(1);
}

static void check(const struct km *km, const char *spec)
{
	char why[256];

	if (!km_check(km, why, sizeof why))
		die(spec, "km_check", why);
}

/* One step of client c: a new thread now and then, a register read, or a
 * touch in one of four regions of its current phase (the phase moves on
 * every 500 steps, so old regions fall out of use). */
static int step(struct km *km, km_thread_t th[][MAX_THREADS],
                uint32_t nth[], km_task_t t, uint32_t c, uint64_t i,
                uint64_t *rng)
{
	uint32_t what = (uint32_t)(rng_next(rng) % 20);
	uint32_t regs[10];

	if (what == 0 && nth[c] < MAX_THREADS) {
		int err = km_thread_create(km, t, 0, &th[c][nth[c]]);

		nth[c] += err == KM_OK;
		return err;
	}
	if (what == 1)
		return km_thread_regs(km, th[c][rng_next(rng) % nth[c]], regs,
		                      false);
	return km_touch(km, th[c][0],
	                0x08000000u +
	                (uint32_t)((i / 500 + rng_next(rng) % 4) % 16) *
	                0x00400000u +
	                (uint32_t)(rng_next(rng) % 32) * KM_PAGE_SIZE,
	                KM_ACC_WRITE);
}

static void run(const char *spec, uint64_t steps, uint64_t seed,
                struct result *res)
{
	struct km_config cfg = km_config_default(4096);
	struct kp_policy pol;
	km_thread_t th[CLIENTS][MAX_THREADS];
	uint32_t nth[CLIENTS];
	km_task_t kt, t[CLIENTS];
	km_kpager_t kp;
	struct km *km;
	uint64_t rng = seed;
	char why[256];

	memset(res, 0, sizeof *res);
	cfg.kmem = KM_KMEM_KPAGER;
	cfg.key_seed = seed;
	if (kp_policy_open(spec, &pol, why, sizeof why) != KM_OK)
		die(spec, "policy", why);
	if (km_create(&cfg, &km, why, sizeof why) != KM_OK)
		die(spec, "model", why);
	km_set_fault_sink(km, sink, res);
	if (km_task_create(km, KM_ROOT_KPAGER, &kt) != KM_OK ||
	    km_kpager_create(km, pol.ops, kt, pol.args, &kp, why,
	                     sizeof why) != KM_OK)
		die(spec, "kpager", why);
	for (uint32_t c = 0; c < CLIENTS; c++) {
		if (km_task_create(km, kp, &t[c]) != KM_OK ||
		    km_thread_create(km, t[c], 0, &th[c][0]) != KM_OK)
			die(spec, "client", "the pool cannot hold the clients");
		nth[c] = 1;
	}
	for (uint64_t i = 0; i < steps; i++) {
		/* Client 0 runs half the time, 1 a third, 2 the rest. */
		uint32_t r = (uint32_t)(rng_next(&rng) % 6);
		uint32_t c = r < 3 ? 0 : r < 5 ? 1 : 2;
		int err = step(km, th, nth, t[c], c, i, &rng);

		if (err != KM_OK && err != KM_EDENIED && err != KM_EPERM)
			die(spec, "step", km_strerror(err));
		res->ops++;
		res->failed += err != KM_OK;
		km_advance(km, GAP);
		check(km, spec);
	}
	if (km_kpager_stats(km, kp, &res->ks) != KM_OK)
		die(spec, "stats", "no kpager");
	res->cycles = km_now(km);
	km_destroy(km);
	kp_policy_close(&pol);
}

int main(int argc, char **argv)
{
	uint64_t steps = argc > 1 ? strtoull(argv[1], NULL, 0) : 3000;
	const char *env = getenv("KPSIM_SEED");
	uint64_t seed = env && *env ? strtoull(env, NULL, 0) : 2003;

	printf("%u clients, one kpager with %u frames, %" PRIu64 " steps, "
	       "seed %" PRIu64 "\n\n", CLIENTS, POOL_FRAMES, steps, seed);
	printf("%-38s %6s %7s %8s %8s %8s %7s %14s\n", "policy", "ops",
	       "failed", "kfaults", "restores", "revoked", "denied",
	       "kernel cycles");
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++) {
		struct result r;

		run(specs[i], steps, seed, &r);
		printf("%-38s %6" PRIu64 " %7" PRIu64 " %8" PRIu64 " %8" PRIu64
		       " %8" PRIu64 " %7" PRIu64 " %14" PRIu64 "\n", specs[i],
		       r.ops, r.failed, r.ks.faults, r.restores, r.ks.evicted,
		       r.ks.denied, r.cycles - r.ops * GAP);
	}
	return 0;
}
