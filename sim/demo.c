/*
 * kpsim demo: the kernel model on its own, without guest code.  Two tasks
 * with Linux 2.4 layouts (text at 0x08048000, libraries at 0x40000000, the
 * stack below 0xC0000000, the UTCB area at 0xBF000000) touch their pages,
 * once with kernel memory from the in-kernel pool and once from an FCFS
 * kpager; the demo prints each task's kernel memory by Figure 2's groups
 * and the fault records.
 */
#include "cli.h"
#include "kmodel.h"
#include "pagers.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct region {
	const char *what;
	uint32_t base;          /* first page */
	uint32_t pages;
	unsigned access;        /* KM_ACC_* */
};

struct program {
	const char *name;
	uint32_t threads;
	struct region region[8];
};

/* Page counts give the resident sizes of Figure 2's init (76k) and the
 * larger bash (392k). */
static const struct program programs[] = {
	{ "init", 2, {
		{ "text", 0x08048000u, 6, KM_ACC_EXEC },
		{ "data", 0x0804e000u, 2, KM_ACC_WRITE },
		{ "heap", 0x08050000u, 1, KM_ACC_WRITE },
		{ "ld.so", 0x40000000u, 2, KM_ACC_EXEC },
		{ "libc", 0x40014000u, 5, KM_ACC_EXEC },
		{ "libc data", 0x4010a000u, 1, KM_ACC_WRITE },
		{ "stack", 0xbfffe000u, 2, KM_ACC_WRITE },
		{ NULL, 0, 0, 0 } } },
	{ "bash", 2, {
		{ "text", 0x08048000u, 60, KM_ACC_EXEC },
		{ "data", 0x08084000u, 6, KM_ACC_WRITE },
		{ "heap", 0x0808a000u, 12, KM_ACC_WRITE },
		{ "ld.so", 0x40000000u, 2, KM_ACC_EXEC },
		{ "libc", 0x40014000u, 14, KM_ACC_EXEC },
		{ "libc data", 0x4010a000u, 2, KM_ACC_WRITE },
		{ "stack", 0xbfffe000u, 2, KM_ACC_WRITE },
		{ NULL, 0, 0, 0 } } },
};
#define NPROGRAMS (sizeof programs / sizeof programs[0])

static void collect(void *ctx, const struct km_fault_rec *r)
{
	fault_log_add(ctx, r);
}

static int by_seq(const void *a, const void *b)
{
	const struct km_fault_rec *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void print_record(const struct km_fault_rec *r)
{
	char where[48];

	if (r->kind == KM_FK_USER)
		snprintf(where, sizeof where, "0x%08x %s", r->addr,
		         (r->access & KM_ACC_WRITE) ? "write" :
		         (r->access & KM_ACC_EXEC) ? "exec" : "read");
	else
		snprintf(where, sizeof where, "  %s/%u of task %u",
		         km_ktype_name(r->kpage.type), r->kpage.index,
		         r->kpage.task);
	printf("  %5llu %6s %5u %6u  %-26s %-8s %6llu\n",
	       (unsigned long long)r->seq, km_fault_kind_name(r->kind),
	       r->task, r->thread, where, km_decision_name(r->decision),
	       (unsigned long long)r->cycles);
}

/* Runs the two programs in one model.  Returns 0, or 1 on an error. */
static int demo_run(enum km_kmem kmem, uint32_t frames, uint32_t kframes,
                    bool all_faults)
{
	struct km_config c = km_config_default(frames);
	struct fault_log rs = { NULL, 0, 0, false };
	struct km *km = NULL;
	km_kpager_t kp = KM_ROOT_KPAGER;
	km_task_t task[NPROGRAMS], kt = 0;
	char why[256];
	uint64_t user = 0, kernel = 0, kpool = 0, cycles = 0;
	int err, rc = 1;

	c.kmem = kmem;
	if ((err = km_create(&c, &km, why, sizeof why)) != KM_OK) {
		fprintf(stderr, "kpsim demo: %s: %s\n", km_strerror(err), why);
		return 1;
	}
	if (kmem == KM_KMEM_KPAGER) {
		char args[32];

		snprintf(args, sizeof args, "frames=%u", kframes);
		err = km_task_create(km, KM_ROOT_KPAGER, &kt);
		if (err == KM_OK)
			err = km_kpager_create(km, &kp_fcfs_ops, kt, args, &kp,
			                       why, sizeof why);
		if (err != KM_OK) {
			fprintf(stderr, "kpsim demo: starting the kpager: %s\n",
			        why);
			goto out;
		}
	}
	km_set_fault_sink(km, collect, &rs);

	for (size_t p = 0; p < NPROGRAMS; p++) {
		km_thread_t th[4];

		err = km_task_create(km, kp, &task[p]);
		for (uint32_t i = 0; err == KM_OK && i < programs[p].threads; i++)
			err = km_thread_create(km, task[p], 0, &th[i]);
		for (const struct region *r = programs[p].region;
		     err == KM_OK && r->what != NULL; r++)
			for (uint32_t i = 0; err == KM_OK && i < r->pages; i++)
				err = km_touch(km, th[0],
				               r->base + i * KM_PAGE_SIZE, r->access);
		if (err != KM_OK) {
			fprintf(stderr, "kpsim demo: %s: %s\n", programs[p].name,
			        km_strerror(err));
			goto out;
		}
	}
	if (!km_check(km, why, sizeof why)) {
		fprintf(stderr, "kpsim demo: model check failed: %s\n", why);
		goto out;
	}

	printf("\n== kernel memory from %s ==\n", kmem == KM_KMEM_POOL ?
	       "the in-kernel pool (no kernel page faults)" :
	       "an FCFS kpager (one kernel page fault per kernel page)");
	printf("  task  program  threads  resident   P   N   M   U  KTCB  "
	       "metadata (P+N+M+U)\n");
	for (size_t p = 0; p < NPROGRAMS; p++) {
		struct km_task_stats ts;
		const uint32_t *g = ts.group;

		km_task_stats(km, task[p], &ts);
		printf("  %4u  %-7s  %7u  %7uk  %2u  %2u  %2u  %2u  %4u  %6uk\n",
		       task[p], programs[p].name, ts.threads, ts.mappings * 4,
		       g[KM_KG_P], g[KM_KG_N], g[KM_KG_M], g[KM_KG_U],
		       g[KM_KG_K],
		       (g[KM_KG_P] + g[KM_KG_N] + g[KM_KG_M] + g[KM_KG_U]) * 4);
	}
	qsort(rs.rec, rs.n, sizeof *rs.rec, by_seq);
	for (size_t i = 0; i < rs.n; i++) {
		const struct km_fault_rec *r = &rs.rec[i];

		cycles += r->cycles;
		user += r->kind == KM_FK_USER;
		kernel += r->kind == KM_FK_KERNEL;
		kpool += r->kind == KM_FK_KPOOL;
	}
	printf("\n  %llu user page faults, %llu kernel page faults, %llu "
	       "in-kernel allocations;\n  %llu cycles in all of them; "
	       "km_check: ok\n", (unsigned long long)user,
	       (unsigned long long)kernel, (unsigned long long)kpool,
	       (unsigned long long)cycles);
	if (kmem == KM_KMEM_KPAGER) {
		struct km_kpager_stats ks;

		km_kpager_stats(km, kp, &ks);
		printf("  the FCFS kpager lent %u of its %u frames\n", ks.lent,
		       kframes);
	}

	printf("\n  fault records%s:\n", all_faults ? "" :
	       " (user faults that needed kernel memory, with the kernel "
	       "pages they needed;\n  --faults shows all)");
	printf("  %5s %6s %5s %6s  %-26s %-8s %6s\n", "seq", "kind", "task",
	       "thread", "address or kernel page", "decision", "cycles");
	for (size_t i = 0; i < rs.n; i++) {
		const struct km_fault_rec *r = &rs.rec[i];
		bool complex = false;

		/* A user fault is shown when kernel records name it. */
		for (size_t j = i + 1; !all_faults && r->kind == KM_FK_USER &&
		     j < rs.n && !complex; j++)
			complex = rs.rec[j].parent == r->seq;
		if (all_faults || complex || (r->parent != 0 &&
		                              r->kind != KM_FK_USER))
			print_record(r);
	}
	if (rs.oom)
		printf("  (some records were lost: out of host memory)\n");
	rc = 0;
out:
	free(rs.rec);
	km_destroy(km);
	return rc;
}

static void demo_usage(FILE *out)
{
	fprintf(out,
	        "usage: kpsim demo [--kmem pool|kpager|both] [--faults]\n"
	        "                  [--frames N] [--kpager-frames N]\n\n"
	        "Two tasks with Linux 2.4 layouts (init and bash of the paper's "
	        "Figure 2)\ntouch their pages on the kernel model; kpsim prints "
	        "each task's kernel\nmemory (P page tables, N node tables, M "
	        "mapping database, U UTCBs,\nKTCB pages) and the fault records.\n\n"
	        "  --kmem MODE          pool, kpager or both (default both)\n"
	        "  --faults             print every fault record\n"
	        "  --frames N           simulated RAM in 4 KiB frames "
	        "(default 4096)\n"
	        "  --kpager-frames N    the FCFS kpager's pool (default 64)\n");
}

static bool parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v = strtoul(s, &end, 0);

	if (*s == '\0' || *end != '\0' || *s == '-' || v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

int kpsim_demo(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kmem", required_argument, NULL, 'k' },
		{ "faults", no_argument, NULL, 'f' },
		{ "frames", required_argument, NULL, 'F' },
		{ "kpager-frames", required_argument, NULL, 'K' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool pool = true, kpager = true, all = false;
	uint32_t frames = 4096, kframes = 64;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			pool = strcmp(optarg, "pool") == 0 ||
			       strcmp(optarg, "both") == 0;
			kpager = strcmp(optarg, "kpager") == 0 ||
			         strcmp(optarg, "both") == 0;
			if (!pool && !kpager) {
				fprintf(stderr, "kpsim demo: --kmem must be pool, "
				        "kpager or both, not '%s'\n", optarg);
				return 2;
			}
			break;
		case 'f':
			all = true;
			break;
		case 'F':
		case 'K':
			if (!parse_u32(optarg, c == 'F' ? &frames : &kframes)) {
				fprintf(stderr, "kpsim demo: --%s needs a number, "
				        "not '%s'\n", c == 'F' ? "frames" :
				        "kpager-frames", optarg);
				return 2;
			}
			break;
		case 'h':
			demo_usage(stdout);
			return 0;
		default:
			demo_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "kpsim demo: unexpected argument '%s'\n",
		        argv[optind]);
		return 2;
	}
	printf("kpsim demo: two Linux-2.4-like tasks on the kernel model, "
	       "%u frames (%u MiB)\n", frames, frames / 256);
	if (pool && demo_run(KM_KMEM_POOL, frames, kframes, all) != 0)
		return 1;
	if (kpager && demo_run(KM_KMEM_KPAGER, frames, kframes, all) != 0)
		return 1;
	return 0;
}
