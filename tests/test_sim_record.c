/*
 * Record and replay: every bundled workload runs on the emulated machine
 * with its trace recorded, under the in-kernel pool and under each
 * built-in kpager; the trace goes through its text form (written, then
 * read back) and is replayed without emulation.  The replay must give the
 * run's fault records, field by field, the same clock, the same guest
 * instructions and cycles, the same markers and the same per-task kernel
 * memory.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bundle.h"
#include "machine.h"
#include "pagers.h"
#include "replay.h"
#include "trace.h"

struct log {
	struct km_fault_rec *v;
	size_t n, cap;
};

static void log_add(void *ctx, const struct km_fault_rec *r)
{
	struct log *l = ctx;

	if (l->n == l->cap) {
		l->cap = l->cap ? 2 * l->cap : 256;
		l->v = realloc(l->v, l->cap * sizeof *l->v);
		assert_non_null(l->v);
	}
	l->v[l->n++] = *r;
}

/* The recording, in its text form. */
struct text {
	char *buf;
	size_t len, cap;
	uint64_t events;
};

static void on_record(void *ctx, const struct tr_event *ev)
{
	struct text *t = ctx;

	if (t->len + TR_LINE_MAX + 2 > t->cap) {
		t->cap = t->cap ? 2 * t->cap : 1 << 16;
		t->buf = realloc(t->buf, t->cap);
		assert_non_null(t->buf);
	}
	t->len += tr_format(ev, t->buf + t->len);
	t->buf[t->len++] = '\n';
	t->events++;
}

struct images {
	struct sim_elf *img[16];
	const char *name[16];
	size_t n;
};

static const struct sim_elf *find(void *ctx, const char *name)
{
	struct images *im = ctx;
	const struct kps_bundled *b = kps_bundled_find(name);
	char msg[SIM_ELF_MSG_SIZE];

	for (size_t i = 0; i < im->n; i++)
		if (strcmp(im->name[i], name) == 0)
			return im->img[i];
	if (b == NULL || im->n == 16 ||
	    sim_elf_load_buffer(b->elf, b->size, &im->img[im->n], msg,
	                        sizeof msg) != SIM_ELF_OK)
		return NULL;
	im->name[im->n] = b->name;
	return im->img[im->n++];
}

static void assert_same_record(const struct km_fault_rec *a,
                               const struct km_fault_rec *b)
{
	if (a->seq != b->seq || a->parent != b->parent ||
	    a->cycle != b->cycle || a->task != b->task ||
	    a->thread != b->thread || a->kind != b->kind ||
	    a->addr != b->addr || a->access != b->access ||
	    a->kpage.task != b->kpage.task || a->kpage.type != b->kpage.type ||
	    a->kpage.index != b->kpage.index || a->pfn != b->pfn ||
	    a->decision != b->decision || a->cycles != b->cycles ||
	    memcmp(a->count, b->count, sizeof a->count) != 0)
		fail_msg("fault %llu differs: run (cycle %llu, %s, task %u, "
		         "%s, %llu cycles), replay (cycle %llu, %s, task %u, "
		         "%s, %llu cycles)", (unsigned long long)a->seq,
		         (unsigned long long)a->cycle,
		         km_fault_kind_name(a->kind), a->task,
		         km_decision_name(a->decision),
		         (unsigned long long)a->cycles,
		         (unsigned long long)b->cycle,
		         km_fault_kind_name(b->kind), b->task,
		         km_decision_name(b->decision),
		         (unsigned long long)b->cycles);
}

struct policy {
	enum km_kmem kmem;
	const struct kp_ops *ops;
	const char *args;
};

static void run_and_replay(const char *workload, const struct policy *p)
{
	struct sim_machine_config mc = sim_machine_config_default(16384);
	struct sim_machine_stats ms;
	struct sim_machine *m;
	struct images im = { .n = 0 };
	struct log run = { 0 }, rep = { 0 };
	struct text tx = { 0 };
	char why[TR_WHY_SIZE], word[64], *av[8], *save = NULL;
	const struct sim_elf *img;
	int ac = 0;

	snprintf(word, sizeof word, "%s", workload);
	for (char *w = strtok_r(word, " ", &save); w && ac < 7;
	     w = strtok_r(NULL, " ", &save))
		av[ac++] = w;
	av[ac] = NULL;
	mc.kmem = p->kmem;
	mc.kpager = p->ops;
	mc.kpager_args = p->args;
	mc.find = find;
	mc.find_ctx = &im;
	mc.sink = log_add;
	mc.sink_ctx = &run;
	mc.record = on_record;
	mc.record_ctx = &tx;
	tx.cap = 1 << 16;
	tx.buf = malloc(tx.cap);
	assert_non_null(tx.buf);
	tx.len = (size_t)snprintf(tx.buf, tx.cap, "%s %u\n", TR_MAGIC,
	                          TR_VERSION);
	if (sim_machine_create(&mc, &m, why, sizeof why) != SIM_OK)
		fail_msg("machine: %s", why);
	img = find(&im, av[0]);
	assert_non_null(img);
	if (sim_machine_spawn(m, img, av[0], ac, av, NULL, why,
	                      sizeof why) != SIM_OK)
		fail_msg("%s: %s", workload, why);
	sim_machine_run(m, why, sizeof why);   /* killed guests are fine */
	sim_machine_stats(m, &ms);

	/* Replay the text. */
	{
		struct tr_replay_config rc = tr_replay_config_default(16384);
		struct tr_replay *r;
		struct tr_reader *in;
		struct tr_replay_stats rs;
		struct tr_event ev;
		const struct tr_marker *rm;
		const struct sim_marker *mm;
		size_t nrm, nmm;
		int got;

		rc.kmem = p->kmem;
		rc.kpager = p->ops;
		rc.kpager_args = p->args;
		rc.sink = log_add;
		rc.sink_ctx = &rep;
		if (tr_replay_create(&rc, &r, why, sizeof why) != 0)
			fail_msg("replay: %s", why);
		if (tr_open_mem(tx.buf, tx.len, workload, &in, why,
		                sizeof why) != 0)
			fail_msg("%s", why);
		while ((got = tr_next(in, &ev)) == 1)
			assert_int_equal(tr_replay_event(r, &ev, why,
			                                 sizeof why), 0);
		if (got < 0)
			fail_msg("the recording does not read back: %s",
			         tr_error(in));
		tr_close(in);
		tr_replay_finish(r);
		tr_replay_stats(r, &rs);

		assert_int_equal(rs.events, tx.events);
		assert_int_equal(rs.cycles, ms.cycles);
		assert_int_equal(rs.guest_insns, ms.guest_insns);
		assert_int_equal(rs.guest_cycles, ms.guest_cycles);
		assert_int_equal(rs.syscalls, ms.syscalls);
		assert_int_equal(rs.ipcs, ms.ipcs);
		assert_int_equal(rep.n, run.n);
		for (size_t i = 0; i < run.n; i++)
			assert_same_record(&run.v[i], &rep.v[i]);
		mm = sim_machine_markers(m, &nmm);
		rm = tr_replay_markers(r, &nrm);
		assert_int_equal(nrm, nmm);
		for (size_t i = 0; i < nmm; i++) {
			assert_int_equal(rm[i].id, mm[i].id);
			assert_int_equal(rm[i].cycle, mm[i].cycle);
			assert_int_equal(rm[i].fault_seq, mm[i].fault_seq);
		}
		/* The same tasks in the same order (every spawn, ids the
		 * model gave again included), each with its kernel memory at
		 * its most, its faults and how it ended. */
		{
			struct sim_task_info ti;
			size_t i = 0;

			for (; tr_replay_task(r, i) != NULL; i++) {
				const struct tr_task_result *t =
					tr_replay_task(r, i);

				if (!sim_machine_task_info(m, i, &ti))
					fail_msg("%s: the replay has task %zu "
					         "(%s), the run not", workload, i,
					         t->name);
				assert_int_equal(ti.id, t->km_id);
				assert_int_equal(ti.done, t->ended);
				if (ti.done)
					assert_int_equal(ti.status, t->status);
				assert_int_equal(ti.kept, t->kept);
				assert_memory_equal(ti.st.group, t->peak.group,
				                    sizeof ti.st.group);
				assert_int_equal(ti.st.ufaults, t->peak.ufaults);
				assert_int_equal(ti.st.kfaults, t->peak.kfaults);
			}
			assert_false(sim_machine_task_info(m, i, &ti));
		}
		printf("  %-24s %-12s %6llu events %5zu faults %10llu cycles\n",
		       workload, p->kmem == KM_KMEM_POOL ? "pool" :
		       p->ops->name, (unsigned long long)tx.events, run.n,
		       (unsigned long long)ms.cycles);
		tr_replay_destroy(r);
	}
	sim_machine_destroy(m);
	for (size_t i = 0; i < im.n; i++)
		sim_elf_destroy(im.img[i]);
	free(run.v);
	free(rep.v);
	free(tx.buf);
}

static const struct policy policies[] = {
	{ KM_KMEM_POOL, &kp_fcfs_ops, NULL },
	{ KM_KMEM_KPAGER, &kp_fcfs_ops, NULL },
	{ KM_KMEM_KPAGER, &kp_fcfs_ops, "frames=40" },  /* it runs out */
	{ KM_KMEM_KPAGER, &kp_quota_ops, NULL },
	{ KM_KMEM_KPAGER, &kp_ws_ops, NULL },
	{ KM_KMEM_KPAGER, &kp_clock_typed_ops, NULL },
	{ KM_KMEM_KPAGER, &kp_pinned_ops, NULL },
};

static void every_policy(const char *workload)
{
	for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
		run_and_replay(workload, &policies[i]);
}

static void test_hello(void **s) { (void)s; every_policy("hello"); }
static void test_touch(void **s) { (void)s; every_policy("touch 256 sparse write"); }
static void test_ptbomb(void **s) { (void)s; every_policy("ptbomb"); }
static void test_fig3(void **s) { (void)s; every_policy("fig3"); }
static void test_linuxlike(void **s) { (void)s; every_policy("linuxlike"); }
static void test_pingpong(void **s) { (void)s; every_policy("pingpong 200"); }
static void test_spawn(void **s) { (void)s; every_policy("spawn 64"); }
static void test_mapper(void **s) { (void)s; every_policy("mapper 4"); }
static void test_shell(void **s) { (void)s; every_policy("shell 3 200000"); }

/* Every bundled workload has a case above. */
static void test_all_covered(void **s)
{
	static const char *const covered[] = { "hello", "touch", "ptbomb",
		"fig3", "linuxlike", "pingpong", "spawn", "mapper", "shell",
		NULL };

	(void)s;
	for (const struct kps_bundled *b = kps_bundled; b->name; b++) {
		bool found = false;

		for (size_t i = 0; covered[i]; i++)
			found |= strcmp(covered[i], b->name) == 0;
		if (!found)
			fail_msg("bundled workload %s has no record/replay "
			         "case", b->name);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_all_covered),
		cmocka_unit_test(test_hello),
		cmocka_unit_test(test_touch),
		cmocka_unit_test(test_ptbomb),
		cmocka_unit_test(test_fig3),
		cmocka_unit_test(test_linuxlike),
		cmocka_unit_test(test_pingpong),
		cmocka_unit_test(test_spawn),
		cmocka_unit_test(test_mapper),
		cmocka_unit_test(test_shell),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
