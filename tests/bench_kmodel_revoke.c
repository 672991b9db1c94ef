/*
 * Benchmark: the cost of revoking a kernel page and of bringing it back,
 * per data type, in simulated cycles (from the fault records, with the
 * default cost table) and in host time.  A client task with three threads
 * and one touched page; each round revokes one page of the type and brings
 * it back with the operation that needs it (for a node directory: a touch
 * in a new 4 MiB region, so those rounds are few; for a node table or MDB
 * page: a lookup of the touched page).  Prints a table; not a test.
 *
 *   bench_kmodel_revoke [ROUNDS]      (default 20000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kmodel.h"

#define PG KM_PAGE_SIZE
#define POOL 0x10000000u
#define NPOOL 32u
#define VA 0x08048000u

/* A kpager that keeps forms and maps them back (see test_kmodel_revoke). */
struct bk {
	uint64_t kva[NPOOL];
	int state[NPOOL];               /* 0 free, 1 lent, 2 held */
};

static int bk_init(struct km *km, km_task_t task, const char *args,
                   void **state, char *why, size_t why_len)
{
	struct bk *bk;

	(void)why;
	(void)why_len;
	if (sscanf(args, "ctx=%p", (void **)&bk) != 1)
		return KM_EINVAL;
	*state = bk;
	return km_sigma0_map(km, task, POOL, NPOOL, KM_R | KM_W);
}

static void bk_fault(void *state, const struct kp_fault *f,
                     struct kp_decision *d)
{
	struct bk *bk = state;

	d->action = KP_DENY;
	d->discarded = false;
	for (uint32_t i = 0; i < NPOOL; i++) {
		if (f->restore ? bk->state[i] == 2 && bk->kva[i] == f->kva :
		                 bk->state[i] == 0) {
			bk->state[i] = 1;
			bk->kva[i] = f->kva;
			d->action = KP_MAP;
			d->vaddr = POOL + i * PG;
			return;
		}
	}
}

static const struct kp_ops bk_ops = { .name = "bench", .init = bk_init,
                                      .fault = bk_fault };

struct sums {
	uint64_t revoke_cycles, restore_cycles, refill_cycles;
	uint64_t revokes, restores, refills;
};

static void sink(void *ctx, const struct km_fault_rec *r)
{
	struct sums *s = ctx;

	if (r->kind == KM_FK_REVOKE) {
		s->revoke_cycles += r->cycles;
		s->revokes++;
	} else if (r->kind == KM_FK_KERNEL &&
	           (r->decision == KM_D_RESTORED || r->decision == KM_D_REBUILT ||
	            r->decision == KM_D_LOST || r->decision == KM_D_STOPPED)) {
		s->restore_cycles += r->cycles;
		s->restores++;
	} else if (r->kind == KM_FK_USER && r->decision == KM_D_REFILLED) {
		s->refill_cycles += r->cycles;
		s->refills++;
	}
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	uint32_t rounds = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 0) : 20000;
	enum km_ktype types[] = { KM_KT_PD, KM_KT_ND, KM_KT_PT, KM_KT_NT,
	                          KM_KT_MDB, KM_KT_UTCB, KM_KT_KTCB };

	printf("revocation and restore per kernel page, %u rounds each "
	       "(default cost table)\n\n", rounds);
	printf("%-6s %15s %15s %15s %14s\n", "type", "revoke cycles",
	       "restore cycles", "refill cycles", "host ns/round");
	for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
		struct km_config c = km_config_default(1024);
		struct bk bk;
		struct sums s;
		struct km *km;
		km_task_t kt, t;
		km_kpager_t kp;
		km_thread_t th[3];
		km_vaddr_t utcb;
		char args[64], why[128];
		double t0, t1;
		enum km_ktype type = types[ti];
		/* A node directory is needed only by a new node table, and the
		 * kpager's pool holds a dozen new regions. */
		uint32_t n = type == KM_KT_ND && rounds > 10 ? 10 : rounds;

		memset(&bk, 0, sizeof bk);
		memset(&s, 0, sizeof s);
		c.kmem = KM_KMEM_KPAGER;
		c.key_seed = 1;
		snprintf(args, sizeof args, "ctx=%p", (void *)&bk);
		if (km_create(&c, &km, why, sizeof why) != KM_OK ||
		    km_task_create(km, KM_ROOT_KPAGER, &kt) != KM_OK ||
		    km_kpager_create(km, &bk_ops, kt, args, &kp, why,
		                     sizeof why) != KM_OK ||
		    km_task_create(km, kp, &t) != KM_OK) {
			fprintf(stderr, "setup failed: %s\n", why);
			return 1;
		}
		for (int i = 0; i < 3; i++)
			km_thread_create(km, t, 0, &th[i]);
		km_touch(km, th[0], VA, KM_ACC_WRITE);
		km_thread_utcb(km, th[0], &utcb);
		km_set_fault_sink(km, sink, &s);
		t0 = now_ns();
		for (uint32_t r = 0; r < n; r++) {
			struct km_kpage want = { t, type, type == KM_KT_PT ||
			                         type == KM_KT_NT ? VA >> 22 : 0 };
			struct km_mapping m;
			uint64_t kva = km_kpage_kva(want);
			uint32_t regs[10];

			for (uint32_t i = 0; i < NPOOL; i++) {
				if (bk.state[i] == 1 && bk.kva[i] == kva) {
					if (km_kpager_revoke(km, kp, POOL + i * PG,
					                     false) != KM_OK)
						return 1;
					bk.state[i] = 2;
					break;
				}
			}
			/* The operation that needs the page brings it back. */
			if (type == KM_KT_KTCB)
				km_thread_regs(km, th[0], regs, false);
			else if (type == KM_KT_UTCB)
				km_touch(km, th[0], utcb, KM_ACC_READ);
			else if (type == KM_KT_NT || type == KM_KT_MDB)
				km_lookup(km, t, VA, &m);
			else if (type == KM_KT_ND)
				km_touch(km, th[0], 0x40000000u + r * 0x400000u,
				         KM_ACC_READ);
			else
				km_touch(km, th[0], VA, KM_ACC_READ);
		}
		t1 = now_ns();
		if (s.revokes != n || s.restores != n) {
			fprintf(stderr, "%s: %llu revokes, %llu restores\n",
			        km_ktype_name(type),
			        (unsigned long long)s.revokes,
			        (unsigned long long)s.restores);
			return 1;
		}
		printf("%-6s %15.0f %15.0f %15s %14.0f\n", km_ktype_name(type),
		       (double)s.revoke_cycles / s.revokes,
		       (double)s.restore_cycles / s.restores,
		       s.refills ? "" : "-", (t1 - t0) / n);
		if (s.refills)
			printf("%-6s %15s %15s %15.0f   (per refilled page)\n", "",
			       "", "", (double)s.refill_cycles / s.refills);
		km_destroy(km);
	}
	return 0;
}
