/*
 * Replay speed: generated traces (1M events each by default,
 * KPSIM_BENCH_EVENTS; KPSIM_BENCH_TRACE=churn or resident for one,
 * KPSIM_BENCH_KEEP=DIR keeps them there) are written to a file, then read
 * three times in the same run: parse only (tr_next), and parse and replay
 * against the kernel model (with the in-kernel pool, and with an FCFS
 * kpager).  Prints events and touch events per second and the ratio to
 * the parse-only pass.  A benchmark, not a test: it prints figures and
 * fails only if something breaks.
 *
 * Two traces, the two ends of what replay meets:
 *   churn     64 tasks live at a time, each with a Linux 2.4 layout (text
 *             at 0x08048000, a library at 0x40000000, heap, stack below
 *             0xC0000000); between touches a `user` event; a quarter of
 *             the touches are of pages already mapped; after 96 touches a
 *             task ends and a new one starts, so kernel memory is freed
 *             and taken again.  Two touches in three fault: the cost of
 *             replay is the cost of the model's faults.  (A recording or
 *             an import lists the pages a program faulted on, each once:
 *             this is what they look like.)
 *   resident  the same 64 tasks touch pages of their working sets (96
 *             pages each, the same layout) at random, nine touches to a
 *             `user` event; each page faults once, every later touch finds
 *             its PTE (a trace of every access, or of TLB misses).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "kmodel.h"
#include "pagers.h"
#include "replay.h"
#include "trace.h"

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static uint64_t rng(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1Dull;
}

#define LIVE 64
#define PAGES_PER_TASK 96

/* A page of the layout: text, library, heap or stack. */
static uint32_t layout_page(uint64_t *s, uint32_t i)
{
	switch (i % 4) {
	case 0: return 0x08048000u + (uint32_t)(rng(s) % 40) * 4096u;
	case 1: return 0x40000000u + (uint32_t)(rng(s) % 48) * 4096u;
	case 2: return 0x0804a000u + 0x100000u + (uint32_t)(rng(s) % 64) * 4096u;
	default: return 0xbfff0000u - (uint32_t)(rng(s) % 8) * 4096u;
	}
}

/* Opens the trace at path and starts tasks 1 .. LIVE, a thread each (the
 * thread's id is its task's), named prefix0 .. prefix63; returns the
 * writer or NULL. */
static struct tr_writer *start(const char *path, char prefix)
{
	struct tr_writer *w;
	struct tr_event ev;
	char why[TR_WHY_SIZE];

	if (tr_create(path, &w, why, sizeof why) != 0) {
		fprintf(stderr, "bench: %s\n", why);
		return NULL;
	}
	for (uint32_t t = 1; t <= LIVE; t++) {
		memset(&ev, 0, sizeof ev);
		ev.kind = TR_TASK;
		ev.a = t;
		snprintf(ev.name, sizeof ev.name, "%c%u", prefix, t - 1);
		tr_write(w, &ev);
		ev.kind = TR_THREAD;
		ev.b = t;
		tr_write(w, &ev);
	}
	return w;
}

/* Writes the churn trace. */
static int generate_churn(const char *path, uint64_t events)
{
	struct tr_writer *w;
	struct tr_event ev;
	char why[TR_WHY_SIZE];
	uint32_t touched[LIVE + 1] = { 0 };
	uint64_t s = 0x9E3779B97F4A7C15ull, n = 2 * LIVE;
	uint32_t next_name = LIVE;

	if ((w = start(path, 'p')) == NULL)
		return -1;
	while (n < events) {
		uint32_t t = 1 + (uint32_t)(rng(&s) % LIVE);

		memset(&ev, 0, sizeof ev);
		if (touched[t] == PAGES_PER_TASK) {
			/* It ends; a new process takes its ids. */
			ev.kind = TR_ENDTASK;
			ev.a = t;
			tr_write(w, &ev);
			ev.kind = TR_TASK;
			snprintf(ev.name, sizeof ev.name, "p%u", next_name++);
			tr_write(w, &ev);
			ev.kind = TR_THREAD;
			ev.b = t;
			tr_write(w, &ev);
			touched[t] = 0;
			n += 3;
			continue;
		}
		ev.kind = TR_USER;
		ev.a = t;
		ev.insns = 50 + rng(&s) % 2000;
		ev.cycles = ev.insns + ev.insns / 4;
		tr_write(w, &ev);
		memset(&ev, 0, sizeof ev);
		ev.kind = TR_TOUCH;
		ev.a = t;
		ev.va = layout_page(&s, touched[t]++);
		ev.access = touched[t] % 3 ? TR_ACC_WRITE : TR_ACC_READ;
		tr_write(w, &ev);
		n += 2;
	}
	if (tr_finish(w, why, sizeof why) != 0) {
		fprintf(stderr, "bench: %s\n", why);
		return -1;
	}
	return 0;
}

/* Writes the resident trace. */
static int generate_resident(const char *path, uint64_t events)
{
	struct tr_writer *w;
	struct tr_event ev;
	char why[TR_WHY_SIZE];
	uint32_t set[LIVE + 1][PAGES_PER_TASK];
	uint64_t s = 0x2545F4914F6CDD1Dull, n = 2 * LIVE;

	if ((w = start(path, 'r')) == NULL)
		return -1;
	for (uint32_t t = 1; t <= LIVE; t++)
		for (uint32_t i = 0; i < PAGES_PER_TASK; i++)
			set[t][i] = layout_page(&s, i);
	while (n < events) {
		uint32_t t = 1 + (uint32_t)(rng(&s) % LIVE);

		memset(&ev, 0, sizeof ev);
		if (n % 10 == 0) {
			ev.kind = TR_USER;
			ev.a = t;
			ev.insns = 50 + rng(&s) % 2000;
			ev.cycles = ev.insns + ev.insns / 4;
		} else {
			ev.kind = TR_TOUCH;
			ev.a = t;
			ev.va = set[t][rng(&s) % PAGES_PER_TASK];
			ev.access = rng(&s) % 3 ? TR_ACC_WRITE : TR_ACC_READ;
		}
		tr_write(w, &ev);
		n++;
	}
	if (tr_finish(w, why, sizeof why) != 0) {
		fprintf(stderr, "bench: %s\n", why);
		return -1;
	}
	return 0;
}

/* One pass: parse only, or parse and replay.  Returns events/s; counts
 * the events, the touches among them and (replaying) the faults and the
 * simulated cycles. */
static double pass(const char *path, const struct tr_replay_config *cfg,
                   uint64_t *events, uint64_t *touches, uint64_t *faults,
                   uint64_t *cycles)
{
	struct tr_reader *rd;
	struct tr_replay *r = NULL;
	struct tr_event ev;
	char why[TR_WHY_SIZE];
	double t0, t;
	int got;

	*events = *touches = 0;
	if (tr_open(path, &rd, why, sizeof why) != 0) {
		fprintf(stderr, "bench: %s\n", why);
		exit(1);
	}
	if (cfg != NULL && tr_replay_create(cfg, &r, why, sizeof why) != 0) {
		fprintf(stderr, "bench: %s\n", why);
		exit(1);
	}
	t0 = now_s();
	while ((got = tr_next(rd, &ev)) == 1) {
		(*events)++;
		*touches += ev.kind == TR_TOUCH;
		if (r != NULL && tr_replay_event(r, &ev, why, sizeof why) != 0) {
			fprintf(stderr, "bench: %s\n", why);
			exit(1);
		}
	}
	t = now_s() - t0;
	if (got < 0) {
		fprintf(stderr, "bench: %s\n", tr_error(rd));
		exit(1);
	}
	if (r != NULL) {
		const struct km *km = tr_replay_model(r);
		struct km_stats ks;

		/* The model must be whole after the run; its faults and
		 * simulated cycles are printed, so that a change made for
		 * speed shows if it changed the results. */
		if (!km_check(km, why, sizeof why)) {
			fprintf(stderr, "bench: km_check: %s\n", why);
			exit(1);
		}
		km_stats(km, &ks);
		*faults = ks.ufaults + ks.kfaults;
		*cycles = km_now(km);
	}
	tr_replay_destroy(r);
	tr_close(rd);
	return (double)*events / t;
}

/* Replays the trace at path under cfg and prints the line of figures,
 * with its ratio to the parse-only pass (`parse` events/s). */
static void replay_line(const char *path, const char *label,
                        const struct tr_replay_config *cfg, double parse)
{
	uint64_t n = 0, touches = 0, faults = 0, cycles = 0;
	double r = pass(path, cfg, &n, &touches, &faults, &cycles);

	printf("  %-24s %10.0f events/s  %10.0f touches/s  %.3f of "
	       "parse-only  (%llu faults, %llu cycles)\n", label, r,
	       r * (double)touches / (double)n, r / parse,
	       (unsigned long long)faults, (unsigned long long)cycles);
}

/* Writes one trace and prints its three passes.  With KPSIM_BENCH_KEEP
 * set to a directory, the trace is written there as NAME.trace, and
 * stays (for timing kpsim compare on it, say). */
static int bench(const char *name, int (*gen)(const char *, uint64_t),
                 uint64_t events)
{
	const char *keep = getenv("KPSIM_BENCH_KEEP");
	char path[4096] = "/tmp/kpsim-bench-XXXXXX";
	struct tr_replay_config pool = tr_replay_config_default(65536);
	struct tr_replay_config fcfs = pool;
	uint64_t n = 0, touches = 0, faults = 0, cycles = 0;
	double parse;

	if (keep != NULL) {
		snprintf(path, sizeof path, "%s/%s.trace", keep, name);
	} else {
		int fd = mkstemp(path);

		if (fd < 0)
			return -1;
		close(fd);
	}
	fcfs.kmem = KM_KMEM_KPAGER;
	fcfs.kpager = &kp_fcfs_ops;
	fcfs.kpager_args = "frames=16384";
	if (gen(path, events) != 0) {
		fprintf(stderr, "bench: cannot write the trace %s\n", path);
		unlink(path);
		return -1;
	}
	parse = pass(path, NULL, &n, &touches, &faults, &cycles);
	printf("%s trace: %llu events, %llu of them touches\n", name,
	       (unsigned long long)n, (unsigned long long)touches);
	printf("  %-24s %10.0f events/s  %10.0f touches/s\n", "parse only",
	       parse, parse * (double)touches / (double)n);
	replay_line(path, "replay, in-kernel pool", &pool, parse);
	replay_line(path, "replay, fcfs kpager", &fcfs, parse);
	if (keep != NULL)
		printf("  (kept as %s)\n", path);
	else
		unlink(path);
	return 0;
}

int main(void)
{
	const char *env = getenv("KPSIM_BENCH_EVENTS");
	const char *only = getenv("KPSIM_BENCH_TRACE");
	uint64_t events = env ? strtoull(env, NULL, 0) : 1000000;

	/* KPSIM_BENCH_TRACE=churn or resident runs one (for a profiler). */
	if (only != NULL && strcmp(only, "churn") != 0 &&
	    strcmp(only, "resident") != 0) {
		fprintf(stderr, "bench: KPSIM_BENCH_TRACE is churn or "
		        "resident, not '%s'\n", only);
		return 2;
	}
	if ((only == NULL || strcmp(only, "churn") == 0) &&
	    bench("churn", generate_churn, events) != 0)
		return 1;
	if ((only == NULL || strcmp(only, "resident") == 0) &&
	    bench("resident", generate_resident, events) != 0)
		return 1;
	return 0;
}
