/*
 * The denial-of-service experiment: the recording of a page-table bomb
 * beside a shell that starts a Linux-like process every million cycles
 * (traces/recorded/linux-dos.trace, the default scenario of kpsim
 * compare) is replayed under FCFS, quota and ws with 128 frames of kernel
 * memory, once as recorded and once without the bomb.
 * - FCFS: the bomb takes the memory; victims are lost (shown, with how
 *   many), not quietly slowed.
 * - quota and ws: every victim's kernel page faults and cycles stay
 *   within 5% of running alone.
 * It prints the table it checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kmodel.h"
#include "pagers.h"
#include "replay.h"
#include "trace.h"

#ifndef DOS_TRACE
#error "DOS_TRACE must name traces/recorded/linux-dos.trace"
#endif

#define MAX_TASKS 32

struct victim {
	char name[TR_NAME_MAX + 1];
	bool lost;
	uint64_t cycles, kfaults;
};

struct outcome {
	struct victim v[MAX_TASKS];
	size_t n;
};

/* Replays the trace under a policy, with or without the bomb; keeps the
 * victims (every task but the bomb) in trace order. */
static void replay(const struct kp_ops *ops, const char *args, bool bomb,
                   struct outcome *out)
{
	struct tr_replay_config cfg = tr_replay_config_default(16384);
	struct tr_replay *r;
	struct tr_reader *rd;
	struct tr_event ev;
	uint8_t task_is_bomb[TR_ID_MAX + 1] = { 0 };
	static uint8_t thread_is_bomb[TR_ID_MAX + 1];
	char why[TR_WHY_SIZE];
	int got;

	memset(thread_is_bomb, 0, sizeof thread_is_bomb);
	cfg.kmem = KM_KMEM_KPAGER;
	cfg.kpager = ops;
	cfg.kpager_args = args;
	if (tr_replay_create(&cfg, &r, why, sizeof why) != 0)
		fail_msg("%s", why);
	if (tr_open(DOS_TRACE, &rd, why, sizeof why) != 0)
		fail_msg("%s", why);
	while ((got = tr_next(rd, &ev)) == 1) {
		bool b;

		switch (ev.kind) {
		case TR_TASK:
			task_is_bomb[ev.a] = strcmp(ev.name, "ptbomb") == 0;
			b = task_is_bomb[ev.a];
			break;
		case TR_ENDTASK: case TR_UNMAP:
			b = task_is_bomb[ev.a];
			break;
		case TR_THREAD:
			thread_is_bomb[ev.a] = task_is_bomb[ev.b];
			b = thread_is_bomb[ev.a];
			break;
		case TR_MAP: case TR_GRANT:
			b = task_is_bomb[ev.a] || task_is_bomb[ev.b];
			break;
		case TR_IPC:
			b = thread_is_bomb[ev.a] || thread_is_bomb[ev.b];
			break;
		default:
			b = thread_is_bomb[ev.a];
			break;
		}
		if (b && !bomb)
			continue;
		assert_int_equal(tr_replay_event(r, &ev, why, sizeof why), 0);
	}
	assert_int_equal(got, 0);
	tr_replay_finish(r);
	assert_true(km_check(tr_replay_model(r), why, sizeof why));
	out->n = 0;
	for (size_t i = 0; tr_replay_task(r, i) != NULL; i++) {
		const struct tr_task_result *t = tr_replay_task(r, i);
		struct victim *v;

		if (strcmp(t->name, "ptbomb") == 0)
			continue;
		assert_true(out->n < MAX_TASKS);
		v = &out->v[out->n++];
		snprintf(v->name, sizeof v->name, "%s", t->name);
		v->lost = t->killed;
		v->cycles = t->cycles;
		v->kfaults = t->peak.kfaults;
	}
	tr_replay_destroy(r);
	tr_close(rd);
}

static double ratio(uint64_t with, uint64_t alone)
{
	return alone ? (double)with / (double)alone : with ? 1e9 : 1.0;
}

/* Prints the table; returns how many victims were lost with the bomb and
 * the worst ratio of the others. */
static unsigned compare(const char *policy, const struct outcome *with,
                        const struct outcome *alone, double *worst_cycles,
                        double *worst_kfaults)
{
	unsigned lost = 0;

	assert_int_equal(with->n, alone->n);
	*worst_cycles = *worst_kfaults = 1.0;
	printf("%-6s %-10s %12s %12s %7s %9s %9s %7s\n", "policy", "victim",
	       "cycles", "alone", "ratio", "kfaults", "alone", "ratio");
	for (size_t i = 0; i < with->n; i++) {
		const struct victim *w = &with->v[i], *a = &alone->v[i];
		double rc = ratio(w->cycles, a->cycles);
		double rk = ratio(w->kfaults, a->kfaults);

		assert_string_equal(w->name, a->name);
		assert_false(a->lost);
		if (w->lost) {
			lost++;
			printf("%-6s %-10s %12s %12llu %7s %9s %9llu %7s\n",
			       policy, w->name, "lost", (unsigned long long)
			       a->cycles, "-", "-", (unsigned long long)
			       a->kfaults, "-");
			continue;
		}
		if (rc > *worst_cycles)
			*worst_cycles = rc;
		if (rk > *worst_kfaults)
			*worst_kfaults = rk;
		printf("%-6s %-10s %12llu %12llu %7.4f %9llu %9llu %7.4f\n",
		       policy, w->name, (unsigned long long)w->cycles,
		       (unsigned long long)a->cycles, rc,
		       (unsigned long long)w->kfaults,
		       (unsigned long long)a->kfaults, rk);
	}
	return lost;
}

static void test_fcfs_starves_the_victims(void **state)
{
	struct outcome with, alone;
	double wc, wk;
	unsigned lost;

	(void)state;
	replay(&kp_fcfs_ops, "frames=128", true, &with);
	replay(&kp_fcfs_ops, "frames=128", false, &alone);
	lost = compare("fcfs", &with, &alone, &wc, &wk);
	printf("fcfs: %u of %zu victims lost to the bomb\n\n", lost, with.n);
	assert_true(lost > 0);
}

static void within_5_percent(const struct kp_ops *ops, const char *args)
{
	struct outcome with, alone;
	double wc, wk;

	replay(ops, args, true, &with);
	replay(ops, args, false, &alone);
	assert_int_equal(compare(ops->name, &with, &alone, &wc, &wk), 0);
	printf("%s: worst victim cycles %.4f, kernel page faults %.4f of "
	       "alone\n\n", ops->name, wc, wk);
	assert_true(wc <= 1.05);
	assert_true(wk <= 1.05);
}

static void test_quota_keeps_victims_within_5_percent(void **state)
{
	(void)state;
	within_5_percent(&kp_quota_ops, "pool=128,frames=16");
}

static void test_ws_keeps_victims_within_5_percent(void **state)
{
	(void)state;
	within_5_percent(&kp_ws_ops, "pool=128");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fcfs_starves_the_victims),
		cmocka_unit_test(test_quota_keeps_victims_within_5_percent),
		cmocka_unit_test(test_ws_keeps_victims_within_5_percent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
