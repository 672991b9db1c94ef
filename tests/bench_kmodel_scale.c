/*
 * The model at scale (a benchmark: it prints figures, it does not judge
 * them).  1 Mi frames (4 GiB of simulated RAM), 10,000 tasks with a
 * thread each, and a mapping tree of 1,310,720 nodes: a root task takes
 * 2^18 pages (1 GiB) from the default pager and maps them as one flexpage
 * to a child, which maps them on, four levels down.  Then one unmap of the
 * root's flexpage takes the 1,048,576 derived nodes away.
 * Printed: the time of each phase, the host memory the model's own data
 * took (anonymous memory: the simulated frames live in a memfd and are
 * not counted), per task and per mapping node, and the peak RSS.
 * KPSIM_SCALE_LOG2=N sets the flexpage to 2^N pages (default 18).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kmodel.h"

#define LEVELS 5                /* tasks in the mapping chain */

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* A line of /proc/self/status in KiB ("RssAnon:", "VmHWM:"). */
static long status_kb(const char *key)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, key, strlen(key)) == 0) {
			v = strtol(line + strlen(key), NULL, 10);
			break;
		}
	fclose(f);
	return v;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "bench_kmodel_scale: %s: %s\n", what, km_strerror(err));
	exit(1);
}

int main(void)
{
	const char *env = getenv("KPSIM_SCALE_LOG2");
	unsigned log2 = env ? (unsigned)atoi(env) : 18;
	uint32_t pages = 1u << log2, got;
	struct km_config c = km_config_default(1u << 20);
	struct km *km;
	km_task_t *task, tree[LEVELS];
	km_thread_t th;
	char why[256];
	long anon0, anon1, anon2;
	double t0, t_tasks, t_touch, t_map, t_unmap;
	int err;

	if (log2 < 12 || log2 > 19) {
		fprintf(stderr, "bench_kmodel_scale: KPSIM_SCALE_LOG2 must be "
		        "12 .. 19\n");
		return 2;
	}
	c.max_tasks = 12000;
	c.max_threads = 12000;
	c.kpool_frames = 1u << 18;      /* kernel memory for all of it */
	c.key_seed = 1;
	c.phys_base = 0;                /* 4 GiB of frames from address 0 */
	anon0 = status_kb("RssAnon:");
	if ((err = km_create(&c, &km, why, sizeof why)) != KM_OK) {
		fprintf(stderr, "bench_kmodel_scale: %s\n", why);
		return 1;
	}
	task = calloc(10000, sizeof *task);

	/* 10,000 tasks, one thread each (each touches its stack page). */
	t0 = now_s();
	for (uint32_t i = 0; i < 10000; i++) {
		if ((err = km_task_create(km, KM_ROOT_KPAGER, &task[i])))
			die("task", err);
		if ((err = km_thread_create(km, task[i], 0, &th)))
			die("thread", err);
		if ((err = km_touch(km, th, 0xbffff000u, KM_ACC_WRITE)))
			die("touch", err);
	}
	t_tasks = now_s() - t0;
	anon1 = status_kb("RssAnon:");

	/* The tree: the root touches 2^log2 pages at 0x40000000. */
	for (int i = 0; i < LEVELS; i++) {
		if ((err = km_task_create(km, KM_ROOT_KPAGER, &tree[i])))
			die("tree task", err);
	}
	if ((err = km_thread_create(km, tree[0], 0, &th)))
		die("root thread", err);
	t0 = now_s();
	for (uint32_t p = 0; p < pages; p++)
		if ((err = km_touch(km, th, 0x40000000u + p * 4096u,
		                    KM_ACC_WRITE)))
			die("root touch", err);
	t_touch = now_s() - t0;
	t0 = now_s();
	for (int i = 0; i + 1 < LEVELS; i++)
		if ((err = km_map(km, tree[i], km_fpage(0x40000000u, 12 + log2,
		                                         KM_RWX), tree[i + 1],
		                  0x40000000u, KM_MAP, &got)))
			die("map", err);
	t_map = now_s() - t0;
	anon2 = status_kb("RssAnon:");
	if (!km_check(km, why, sizeof why)) {
		fprintf(stderr, "bench_kmodel_scale: km_check: %s\n", why);
		return 1;
	}

	t0 = now_s();
	if ((err = km_unmap(km, tree[0], km_fpage(0x40000000u, 12 + log2,
	                                           KM_RWX), 0, &got)))
		die("unmap", err);
	t_unmap = now_s() - t0;

	printf("model: 1 Mi frames (4 GiB simulated), in-kernel pool %u "
	       "frames\n", c.kpool_frames);
	printf("10,000 tasks, a thread and a page each: %.3f s; host memory "
	       "%.0f B a task\n", t_tasks,
	       (double)(anon1 - anon0) * 1024.0 / 10000.0);
	printf("root takes %u pages: %.3f s (%.0f faults/s)\n", pages,
	       t_touch, pages / t_touch);
	printf("%d maps of a 2^%u-page flexpage: %.3f s; %u mapping nodes "
	       "(%u derived)\n", LEVELS - 1, log2, t_map, LEVELS * pages,
	       (LEVELS - 1) * pages);
	printf("host memory per mapping node, beyond the simulated frames: "
	       "%.1f B\n", (double)(anon2 - anon1) * 1024.0 /
	       ((double)LEVELS * pages));
	printf("recursive unmap of %u derived nodes: %.3f s (%u pages "
	       "changed)\n", (LEVELS - 1) * pages, t_unmap, got);
	printf("peak RSS %ld KiB (frames touched in the memfd included), "
	       "RssAnon now %ld KiB\n", status_kb("VmHWM:"),
	       status_kb("RssAnon:"));
	if (!km_check(km, why, sizeof why)) {
		fprintf(stderr, "bench_kmodel_scale: km_check: %s\n", why);
		return 1;
	}
	km_destroy(km);
	free(task);
	return 0;
}
