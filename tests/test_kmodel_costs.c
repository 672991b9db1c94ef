/*
 * Cost tables and fault records: the parser refuses malformed tables with
 * the line and reason; the default table reproduces the paper's Figure 3 on
 * the model's complex page fault; the same inputs give bit-identical
 * records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "kmodel.h"
#include "pagers.h"

/* A table that gives every cost the value 1, as text built at run time. */
static char *ones_table(const char *skip, const char *extra)
{
	size_t cap = 4096, len = 0;
	char *t = malloc(cap);

	assert_non_null(t);
	t[0] = '\0';
	for (int c = 0; c < KM_C_COUNT; c++) {
		if (skip != NULL && strcmp(km_cost_name((enum km_cost)c), skip) == 0)
			continue;
		len += (size_t)snprintf(t + len, cap - len, "%s 1 test\n",
		                        km_cost_name((enum km_cost)c));
	}
	if (extra != NULL)
		snprintf(t + len, cap - len, "%s", extra);
	return t;
}

/* km_create with `table` fails with KM_EPARSE and a reason containing
 * `needle`. */
static void refused(const char *table, const char *needle)
{
	struct km_config c = km_config_default(256);
	struct km *km = (struct km *)1;
	char why[256] = "";

	c.costs = table;
	assert_int_equal(km_create(&c, &km, why, sizeof why), KM_EPARSE);
	assert_null(km);
	if (strstr(why, needle) == NULL)
		fail_msg("reason '%s' does not mention '%s'", why, needle);
}

static void test_kmodel_costs_default_table_parses(void **state)
{
	struct km_config c = km_config_default(256);
	struct km *km;

	(void)state;
	assert_int_equal(km_create(&c, &km, NULL, 0), KM_OK);
	km_destroy(km);
}

static void test_kmodel_costs_refuses_malformed_tables(void **state)
{
	char *t;

	(void)state;
	t = ones_table(NULL, "frobnicate 5 nowhere\n");
	refused(t, "unknown cost 'frobnicate'");
	free(t);
	t = ones_table(NULL, "trap_entry 7 again\n");
	refused(t, "given twice");
	free(t);
	t = ones_table("zero_frame", NULL);
	refused(t, "'zero_frame' is missing");
	free(t);
	t = ones_table("zero_frame", "zero_frame 4096\n");
	refused(t, "has no source");
	free(t);
	t = ones_table("zero_frame", "zero_frame -3 x\n");
	refused(t, "needs a value");
	free(t);
	t = ones_table("zero_frame", "zero_frame 12abc x\n");
	refused(t, "not a whole number");
	free(t);
	t = ones_table("zero_frame", "zero_frame 999999999999 x\n");
	refused(t, "needs a value");
	free(t);
	/* The line number of the culprit is named: after one line per cost,
	 * a comment and a blank line. */
	{
		char line[32];

		snprintf(line, sizeof line, "line %d:", KM_C_COUNT + 3);
		t = ones_table(NULL, "# comment\n\nbogus 1 x\n");
		refused(t, line);
		free(t);
	}
}

static void test_kmodel_costs_custom_table_is_charged(void **state)
{
	struct km_config c = km_config_default(1024);
	char *t = ones_table(NULL, NULL);
	struct km *km;
	km_task_t task;
	uint64_t before;

	(void)state;
	c.costs = t;
	assert_int_equal(km_create(&c, &km, NULL, 0), KM_OK);
	free(t);        /* the model keeps no pointer to the text */
	before = km_now(km);
	assert_int_equal(km_task_create(km, KM_ROOT_KPAGER, &task), KM_OK);
	/* task_create, and for PD and ND each: kpool_alloc, zero_frame,
	 * kpage_init; all at one cycle. */
	assert_int_equal(km_now(km) - before, 7);
	assert_int_equal(km_cost_value(km, KM_C_ZERO_FRAME) >= 2, 1);
	km_destroy(km);
}

struct log {
	struct km_fault_rec rec[64];
	size_t n;
};

static void logger(void *ctx, const struct km_fault_rec *r)
{
	struct log *l = ctx;

	if (l->n < 64)
		l->rec[l->n++] = *r;
}

/*
 * The paper's complex page fault: a first touch in an untouched 4 MiB
 * region of a task that has touched memory before, so that exactly a page
 * table and a node table are needed.  Returns the cycles of the user fault
 * and its kernel faults, and how many faults (user + kernel page faults).
 */
static uint64_t complex_fault(enum km_kmem kmem, unsigned *faults)
{
	struct km_config c = km_config_default(4096);
	struct log log;
	struct km *km;
	km_task_t kt, t;
	km_kpager_t kp = KM_ROOT_KPAGER;
	km_thread_t th;
	uint64_t cycles = 0;
	char why[128];

	c.kmem = kmem;
	assert_int_equal(km_create(&c, &km, why, sizeof why), KM_OK);
	if (kmem == KM_KMEM_KPAGER) {
		assert_int_equal(km_task_create(km, KM_ROOT_KPAGER, &kt), KM_OK);
		assert_int_equal(km_kpager_create(km, &kp_fcfs_ops, kt, "", &kp,
		                                  why, sizeof why), KM_OK);
	}
	assert_int_equal(km_task_create(km, kp, &t), KM_OK);
	assert_int_equal(km_thread_create(km, t, 0, &th), KM_OK);
	assert_int_equal(km_touch(km, th, 0x08048000u, KM_ACC_READ), KM_OK);
	memset(&log, 0, sizeof log);
	km_set_fault_sink(km, logger, &log);
	assert_int_equal(km_touch(km, th, 0x40000000u, KM_ACC_WRITE), KM_OK);
	*faults = 0;
	for (size_t i = 0; i < log.n; i++) {
		cycles += log.rec[i].cycles;
		*faults += log.rec[i].kind != KM_FK_KPOOL;
	}
	assert_int_equal(log.n, 3);
	assert_int_equal(log.rec[0].kpage.type, KM_KT_PT);
	assert_int_equal(log.rec[1].kpage.type, KM_KT_NT);
	assert_int_equal(log.rec[2].kind, KM_FK_USER);
	km_destroy(km);
	return cycles;
}

static void test_kmodel_costs_figure3_in_kernel_pool(void **state)
{
	unsigned faults;

	(void)state;
	assert_int_equal(complex_fault(KM_KMEM_POOL, &faults), 18091);
	assert_int_equal(faults, 1);
}

static void test_kmodel_costs_figure3_kpager(void **state)
{
	unsigned faults;
	uint64_t pool = complex_fault(KM_KMEM_POOL, &faults);
	uint64_t kpager = complex_fault(KM_KMEM_KPAGER, &faults);

	(void)state;
	assert_int_equal(faults, 3);
	/* The paper: 21,454 +- 100, about 1,700 per kernel page fault. */
	assert_true(kpager >= 21354 && kpager <= 21554);
	assert_true((kpager - pool) / 2 >= 1615 && (kpager - pool) / 2 <= 1785);
}

/* The breakdown adds up to the cycles, cost by cost. */
static void test_kmodel_costs_record_breakdown_adds_up(void **state)
{
	struct km_config c = km_config_default(1024);
	struct log log;
	struct km *km;
	km_task_t t;
	km_thread_t th;
	uint32_t value[KM_C_COUNT];

	(void)state;
	assert_int_equal(km_create(&c, &km, NULL, 0), KM_OK);
	/* Each cost's value, read from the default table's text: the line
	 * that starts with its name. */
	for (int i = 0; i < KM_C_COUNT; i++) {
		const char *name = km_cost_name((enum km_cost)i);
		const char *p = km_default_costs;
		size_t n = strlen(name);

		while (p != NULL && !(strncmp(p, name, n) == 0 && p[n] == ' ')) {
			p = strchr(p, '\n');
			p = p ? p + 1 : NULL;
		}
		assert_non_null(p);
		value[i] = (uint32_t)strtoul(p + n, NULL, 10);
	}
	memset(&log, 0, sizeof log);
	km_set_fault_sink(km, logger, &log);
	assert_int_equal(km_task_create(km, KM_ROOT_KPAGER, &t), KM_OK);
	assert_int_equal(km_thread_create(km, t, 0, &th), KM_OK);
	assert_int_equal(km_touch(km, th, 0x08048000u, KM_ACC_READ), KM_OK);
	assert_true(log.n > 3);
	for (size_t i = 0; i < log.n; i++) {
		uint64_t sum = 0;

		for (int k = 0; k < KM_C_COUNT; k++)
			sum += (uint64_t)log.rec[i].count[k] * value[k];
		assert_int_equal(sum, log.rec[i].cycles);
	}
	km_destroy(km);
}

/* Two runs of the same operations give bit-identical records. */
static void test_kmodel_costs_deterministic(void **state)
{
	static struct log a, b;
	struct log *l[2] = { &a, &b };

	(void)state;
	for (int run = 0; run < 2; run++) {
		struct km_config c = km_config_default(1024);
		struct km *km;
		km_task_t t;
		km_thread_t th;

		memset(l[run], 0, sizeof *l[run]);
		assert_int_equal(km_create(&c, &km, NULL, 0), KM_OK);
		km_set_fault_sink(km, logger, l[run]);
		assert_int_equal(km_task_create(km, KM_ROOT_KPAGER, &t), KM_OK);
		assert_int_equal(km_thread_create(km, t, 0, &th), KM_OK);
		for (uint32_t i = 0; i < 8; i++)
			assert_int_equal(km_touch(km, th, 0x08048000u + i * 0x401000u,
			                          KM_ACC_WRITE), KM_OK);
		km_destroy(km);
	}
	assert_true(a.n > 8);
	assert_int_equal(a.n, b.n);
	assert_memory_equal(a.rec, b.rec, a.n * sizeof a.rec[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kmodel_costs_default_table_parses),
		cmocka_unit_test(test_kmodel_costs_refuses_malformed_tables),
		cmocka_unit_test(test_kmodel_costs_custom_table_is_charged),
		cmocka_unit_test(test_kmodel_costs_figure3_in_kernel_pool),
		cmocka_unit_test(test_kmodel_costs_figure3_kpager),
		cmocka_unit_test(test_kmodel_costs_record_breakdown_adds_up),
		cmocka_unit_test(test_kmodel_costs_deterministic),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
