/*
 * The pagers module: the registry, specs, policies loaded from shared
 * objects, the argument parser, and the FCFS policy, driven directly
 * through its ops table with synthetic faults and end to end through the
 * model.  (The other policies: test_pagers_policies.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "kmodel.h"
#include "pagers.h"

#define BASE 0x10000000u
#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"

static void test_pagers_registry_finds_every_policy(void **state)
{
	const char *const *names = kp_names();
	size_t n = 0;

	(void)state;
	assert_ptr_equal(kp_find("fcfs"), &kp_fcfs_ops);
	assert_ptr_equal(kp_find("quota"), &kp_quota_ops);
	assert_ptr_equal(kp_find("ws"), &kp_ws_ops);
	assert_ptr_equal(kp_find("clock-typed"), &kp_clock_typed_ops);
	assert_ptr_equal(kp_find("pinned"), &kp_pinned_ops);
	assert_null(kp_find("nosuch"));
	assert_null(kp_find(NULL));
	assert_string_equal(names[0], "fcfs");
	for (; names[n] != NULL; n++)
		assert_string_equal(kp_find(names[n])->name, names[n]);
	assert_int_equal(n, 5);
}

static void test_pagers_spec_split(void **state)
{
	char name[16], why[160];
	const char *args;

	(void)state;
	assert_int_equal(kp_spec_split("quota:frames=16", name, sizeof name,
	                               &args, why, sizeof why), KM_OK);
	assert_string_equal(name, "quota");
	assert_string_equal(args, "frames=16");
	assert_int_equal(kp_spec_split("ws", name, sizeof name, &args, why,
	                               sizeof why), KM_OK);
	assert_string_equal(name, "ws");
	assert_string_equal(args, "");
	assert_int_equal(kp_spec_split("fcfs:", name, sizeof name, &args, why,
	                               sizeof why), KM_OK);
	assert_string_equal(args, "");
	assert_int_equal(kp_spec_split(":frames=3", name, sizeof name, &args,
	                               why, sizeof why), KM_EINVAL);
	assert_non_null(strstr(why, "no policy name"));
	assert_int_equal(kp_spec_split("", name, sizeof name, &args, why,
	                               sizeof why), KM_EINVAL);
	assert_int_equal(kp_spec_split("averyveryverylongname:x=1", name,
	                               sizeof name, &args, why, sizeof why),
	                 KM_EINVAL);
	assert_non_null(strstr(why, "longer than 15"));
}

static void test_pagers_policy_open_refuses(void **state)
{
	struct kp_policy pol;
	char why[256];

	(void)state;
	assert_int_equal(kp_policy_open("quota:frames=4", &pol, why,
	                                sizeof why), KM_OK);
	assert_ptr_equal(pol.ops, &kp_quota_ops);
	assert_string_equal(pol.args, "frames=4");
	assert_null(pol.dl);
	kp_policy_close(&pol);
	kp_policy_close(NULL);
	assert_int_equal(kp_policy_open("lru:frames=4", &pol, why,
	                                sizeof why), KM_EINVAL);
	assert_non_null(strstr(why, "unknown policy 'lru'"));
	assert_non_null(strstr(why, "clock-typed"));
	assert_null(pol.ops);
	assert_int_equal(kp_policy_open("/nonexistent/policy.so", &pol, why,
	                                sizeof why), KM_EIO);
	assert_non_null(strstr(why, "/nonexistent/policy.so"));
	/* A shared object without the ABI symbol: Debian's libc is one. */
	if (access(LIBC, R_OK) == 0) {
		assert_int_equal(kp_policy_open(LIBC, &pol, why, sizeof why),
		                 KM_EIO);
		assert_non_null(strstr(why, "no symbol kpsim_policy"));
	}
}

static void test_pagers_args_parse(void **state)
{
	static const char *const known[] = { "frames", "base", NULL };
	char why[128];
	uint32_t v;

	(void)state;
	assert_int_equal(kp_args_check("", known, why, sizeof why), KM_OK);
	assert_int_equal(kp_args_check("frames=4,base=0x1000", known, why,
	                               sizeof why), KM_OK);
	assert_int_equal(kp_args_check("frames=4,color=red", known, why,
	                               sizeof why), KM_EINVAL);
	assert_non_null(strstr(why, "unknown argument 'color'"));
	assert_int_equal(kp_args_check("frames", known, why, sizeof why),
	                 KM_EINVAL);
	assert_non_null(strstr(why, "not key=value"));
	assert_int_equal(kp_args_check("=3", known, why, sizeof why),
	                 KM_EINVAL);

	assert_int_equal(kp_arg_u32("frames=12", "frames", 7, &v, why,
	                            sizeof why), KM_OK);
	assert_int_equal(v, 12);
	assert_int_equal(kp_arg_u32("base=0x2000", "base", 7, &v, why,
	                            sizeof why), KM_OK);
	assert_int_equal(v, 0x2000);
	assert_int_equal(kp_arg_u32("base=1", "frames", 7, &v, why,
	                            sizeof why), KM_OK);
	assert_int_equal(v, 7);
	assert_int_equal(kp_arg_u32("frames=-1", "frames", 7, &v, why,
	                            sizeof why), KM_EINVAL);
	assert_int_equal(kp_arg_u32("frames=4294967296", "frames", 7, &v, why,
	                            sizeof why), KM_EINVAL);
	assert_int_equal(kp_arg_u32("frames=12x", "frames", 7, &v, why,
	                            sizeof why), KM_EINVAL);
	assert_int_equal(kp_arg_u32("frames=", "frames", 7, &v, why,
	                            sizeof why), KM_EINVAL);
	/* A key given twice is refused, by name. */
	assert_int_equal(kp_args_check("frames=1,base=0,frames=2", known, why,
	                               sizeof why), KM_EINVAL);
	assert_non_null(strstr(why, "'frames' given twice"));
	assert_int_equal(kp_args_check("frames=1,framesx=2", known, why,
	                               sizeof why), KM_EINVAL);
	assert_non_null(strstr(why, "unknown argument 'framesx'"));
	{
		static const char *const over[] = { "revoke", "deny", NULL };
		unsigned c;

		assert_int_equal(kp_arg_choice("over=deny", "over", over, &c,
		                               why, sizeof why), KM_OK);
		assert_int_equal(c, 1);
		assert_int_equal(kp_arg_choice("", "over", over, &c, why,
		                               sizeof why), KM_OK);
		assert_int_equal(c, 0);
		assert_int_equal(kp_arg_choice("over=dent", "over", over, &c,
		                               why, sizeof why), KM_EINVAL);
		assert_non_null(strstr(why, "over=dent: must be one of "
		                       "revoke, deny"));
	}
}

struct fx {
	struct km *km;
	km_task_t kt;
};

static int setup(void **state)
{
	static struct fx fx;
	struct km_config c = km_config_default(1024);

	c.kmem = KM_KMEM_KPAGER;
	if (km_create(&c, &fx.km, NULL, 0) != KM_OK ||
	    km_task_create(fx.km, KM_ROOT_KPAGER, &fx.kt) != KM_OK)
		return -1;
	*state = &fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	km_destroy(fx->km);
	return 0;
}

static struct kp_fault synthetic(uint32_t seq)
{
	struct kp_fault f;

	memset(&f, 0, sizeof f);
	f.seq = seq;
	f.kpage.task = 9;
	f.kpage.type = KM_KT_PT;
	f.kpage.index = seq;
	f.kva = km_kpage_kva(f.kpage);
	return f;
}

/* Through the ops table: three frames go out in order, the fourth fault
 * is denied, a released page goes out again. */
static void test_pagers_fcfs_denies_at_exhaustion(void **state)
{
	struct fx *fx = *state;
	const struct kp_ops *ops = &kp_fcfs_ops;
	void *st = NULL;
	char why[128];
	struct kp_decision d;
	km_vaddr_t got[3];

	assert_int_equal(ops->init(fx->km, fx->kt, "frames=3", &st, why,
	                           sizeof why), KM_OK);
	for (uint32_t i = 0; i < 3; i++) {
		struct kp_fault f = synthetic(i + 1);

		memset(&d, 0xff, sizeof d);
		ops->fault(st, &f, &d);
		assert_int_equal(d.action, KP_MAP);
		assert_int_equal(d.vaddr, BASE + i * KM_PAGE_SIZE);
		got[i] = d.vaddr;
	}
	{
		struct kp_fault f = synthetic(4);

		ops->fault(st, &f, &d);
		assert_int_equal(d.action, KP_DENY);
		ops->released(st, got[1], f.kpage);
		ops->fault(st, &f, &d);
		assert_int_equal(d.action, KP_MAP);
		assert_int_equal(d.vaddr, got[1]);
		ops->fault(st, &f, &d);
		assert_int_equal(d.action, KP_DENY);
	}
	ops->fini(st);
	ops->fini(NULL);
}

static void test_pagers_fcfs_refuses_bad_arguments(void **state)
{
	struct fx *fx = *state;
	struct km_stats before, after;
	void *st = NULL;
	char why[160];
	const char *bad[] = { "frames=0", "base=0x10000100", "pool=3",
	                      "frames=999999", "frames=3,base=0xbf000000" };

	km_stats(fx->km, &before);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		assert_int_not_equal(kp_fcfs_ops.init(fx->km, fx->kt, bad[i],
		                                      &st, why, sizeof why),
		                     KM_OK);
		assert_true(strlen(why) > 0);
		km_stats(fx->km, &after);
		assert_int_equal(after.sigma0_free, before.sigma0_free);
	}
}

/* End to end: the pool covers a task (PD, ND) and a thread (PT and NT of
 * the UTCB area, UTCB, KTCB); the next kernel page fault is denied and the
 * touch fails cleanly. */
static void test_pagers_fcfs_end_to_end(void **state)
{
	struct fx *fx = *state;
	struct km_kpager_stats ks;
	km_kpager_t kp;
	km_task_t t;
	km_thread_t th;
	char why[128];

	assert_int_equal(km_kpager_create(fx->km, &kp_fcfs_ops, fx->kt,
	                                  "frames=6", &kp, why, sizeof why),
	                 KM_OK);
	assert_int_equal(km_task_create(fx->km, kp, &t), KM_OK);
	assert_int_equal(km_thread_create(fx->km, t, 0, &th), KM_OK);
	assert_int_equal(km_kpager_stats(fx->km, kp, &ks), KM_OK);
	assert_int_equal(ks.faults, 6);
	assert_int_equal(ks.mapped, 6);
	assert_int_equal(ks.lent, 6);
	assert_int_equal(km_touch(fx->km, th, 0x08048000u, KM_ACC_READ),
	                 KM_EDENIED);
	assert_int_equal(km_kpager_stats(fx->km, kp, &ks), KM_OK);
	assert_int_equal(ks.denied, 1);
	assert_int_equal(ks.lent, 6);
	assert_true(km_check(fx->km, why, sizeof why));
	/* Its clients gone, every page comes back to the kpager. */
	assert_int_equal(km_task_destroy(fx->km, t), KM_OK);
	assert_int_equal(km_kpager_stats(fx->km, kp, &ks), KM_OK);
	assert_int_equal(ks.lent, 0);
	assert_int_equal(ks.released, 6);
	assert_true(km_check(fx->km, why, sizeof why));
}

/* The example policy from its shared object: found by path, run as a
 * kpager, and its arguments checked by itself. */
static void test_pagers_shared_object_policy(void **state)
{
	struct fx *fx = *state;
	struct kp_policy pol;
	struct km_kpager_stats ks;
	km_kpager_t kp;
	km_task_t t;
	char why[256];

	assert_int_equal(kp_policy_open(KP_EXAMPLE_POLICY ":frames=3", &pol,
	                                why, sizeof why), KM_OK);
	assert_non_null(pol.dl);
	assert_string_equal(pol.ops->name, "lifo");
	assert_string_equal(pol.args, "frames=3");
	assert_int_not_equal(km_kpager_create(fx->km, pol.ops, fx->kt,
	                                      "frames=lots", &kp, why,
	                                      sizeof why), KM_OK);
	assert_non_null(strstr(why, "frames=lots"));
	assert_int_equal(km_kpager_create(fx->km, pol.ops, fx->kt, pol.args,
	                                  &kp, why, sizeof why), KM_OK);
	assert_int_equal(km_task_create(fx->km, kp, &t), KM_OK);
	assert_int_equal(km_task_create(fx->km, kp, &t), KM_EDENIED);
	assert_int_equal(km_kpager_stats(fx->km, kp, &ks), KM_OK);
	assert_int_equal(ks.lent, 2);
	assert_true(km_check(fx->km, why, sizeof why));
	/* The object stays loaded while the model may call it. */
	km_destroy(fx->km);
	fx->km = NULL;
	kp_policy_close(&pol);
	assert_null(pol.dl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pagers_registry_finds_every_policy),
		cmocka_unit_test(test_pagers_spec_split),
		cmocka_unit_test(test_pagers_policy_open_refuses),
		cmocka_unit_test(test_pagers_args_parse),
		cmocka_unit_test_setup_teardown(
			test_pagers_fcfs_denies_at_exhaustion, setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_pagers_fcfs_refuses_bad_arguments, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pagers_fcfs_end_to_end,
		                                setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_pagers_shared_object_policy, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
