/*
 * km_check must fail when the model is broken: each test damages one
 * invariant in the frames' bytes (as a model bug or a stray write would),
 * asserts that km_check notices and says so, repairs it, and asserts that
 * the model checks again.  Kernel pages are found through the fault
 * records, which name each page and its frame.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "kmodel.h"

#define VA 0x08048000u

struct fx {
	struct km *km;
	km_task_t t;
	km_thread_t th;
	km_pfn_t pfn[KM_KT_COUNT];      /* the last frame seen per type of t */
};

static void sink(void *ctx, const struct km_fault_rec *r)
{
	struct fx *fx = ctx;

	if (r->kind != KM_FK_USER && r->kpage.task == fx->t &&
	    r->decision == KM_D_MAPPED)
		fx->pfn[r->kpage.type] = r->pfn;
}

static int setup(void **state)
{
	static struct fx fx;
	struct km_config c = km_config_default(1024);
	char why[128];

	memset(&fx, 0, sizeof fx);
	fx.t = 2;       /* the first task after the default pager */
	if (km_create(&c, &fx.km, why, sizeof why) != KM_OK)
		return -1;
	km_set_fault_sink(fx.km, sink, &fx);
	if (km_task_create(fx.km, KM_ROOT_KPAGER, &fx.t) != KM_OK ||
	    km_thread_create(fx.km, fx.t, 0, &fx.th) != KM_OK ||
	    km_touch(fx.km, fx.th, VA, KM_ACC_WRITE) != KM_OK)
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

/* Damages a 32-bit word, checks that km_check fails naming `what`, then
 * repairs it and checks that the model is whole again. */
static void damage(struct fx *fx, uint32_t *word, uint32_t value,
                   const char *what)
{
	uint32_t saved = *word;
	char why[256] = "";

	assert_true(km_check(fx->km, why, sizeof why));
	*word = value;
	if (km_check(fx->km, why, sizeof why))
		fail_msg("km_check missed: %s", what);
	assert_true(strlen(why) > 0);
	*word = saved;
	if (!km_check(fx->km, why, sizeof why))
		fail_msg("after repair: %s", why);
}

static uint32_t *word(struct fx *fx, km_pfn_t pfn, uint32_t index)
{
	return (uint32_t *)(void *)km_frame_ptr(fx->km, pfn) + index;
}

static void test_kmodel_check_catches_pte_rights(void **state)
{
	struct fx *fx = *state;
	uint32_t *pte = word(fx, fx->pfn[KM_KT_PT], (VA >> 12) & 0x3ff);

	assert_true(*pte & KM_PTE_RW);
	damage(fx, pte, *pte & ~KM_PTE_RW, "a PTE lost RW");
	damage(fx, pte, *pte & ~KM_PTE_US, "a PTE lost US");
}

static void test_kmodel_check_catches_pte_frame(void **state)
{
	struct fx *fx = *state;
	uint32_t *pte = word(fx, fx->pfn[KM_KT_PT], (VA >> 12) & 0x3ff);

	damage(fx, pte, *pte + KM_PAGE_SIZE, "a PTE points at another frame");
	damage(fx, pte, 0, "a PTE vanished under its mapping node");
	damage(fx, word(fx, fx->pfn[KM_KT_PT], 7), *pte,
	       "a PTE without a node-table entry");
}

static void test_kmodel_check_catches_node_table(void **state)
{
	struct fx *fx = *state;
	uint32_t *nte = word(fx, fx->pfn[KM_KT_NT], (VA >> 12) & 0x3ff);

	damage(fx, nte, *nte + 1, "a node-table entry names another part");
	damage(fx, nte, 0, "a node-table entry vanished");
}

static void test_kmodel_check_catches_node_directory(void **state)
{
	struct fx *fx = *state;
	uint32_t *nde = word(fx, fx->pfn[KM_KT_ND], VA >> 22);

	assert_int_equal(*nde, 1);
	damage(fx, nde, 2, "the live count of a page table");
}

/* The MMU's walk sets A in the PDEs it uses: that is not damage. */
static void test_kmodel_check_accepts_accessed_pde(void **state)
{
	struct fx *fx = *state;
	uint32_t *pde = word(fx, fx->pfn[KM_KT_PD], VA >> 22);
	char why[256];

	*pde |= KM_PTE_A;
	if (!km_check(fx->km, why, sizeof why))
		fail_msg("km_check refused an A bit in a PDE: %s", why);
}

static void test_kmodel_check_catches_page_directory(void **state)
{
	struct fx *fx = *state;
	uint32_t *pde = word(fx, fx->pfn[KM_KT_PD], VA >> 22);

	damage(fx, pde, 0, "a PDE lost its page table");
	damage(fx, word(fx, fx->pfn[KM_KT_PD], 900), 0x1234007,
	       "the kernel half of a page directory");
	damage(fx, word(fx, fx->pfn[KM_KT_PD], 5), *pde,
	       "a PDE without a page table");
}

/* Mapping-node parts: the task's first MDB page holds the receiver part
 * of its one mapping in slot 0 (16-byte header, 24-byte parts). */
static void test_kmodel_check_catches_mapping_nodes(void **state)
{
	struct fx *fx = *state;
	km_pfn_t mdb = fx->pfn[KM_KT_MDB];
	uint32_t *magic = word(fx, mdb, 0);
	uint32_t *part0 = word(fx, mdb, 4);  /* tag, rights, flags */

	damage(fx, magic, 0, "an MDB page header");
	damage(fx, part0 + 1, part0[1] + 1, "a receiver part's page");
	damage(fx, part0 + 2, part0[2] ^ 1, "a receiver part's frame");
	damage(fx, part0 + 4, part0[4] + 1, "a receiver part's sender link");
	damage(fx, part0 + 5, 0, "a receiver part's child list");
	damage(fx, part0, (part0[0] & ~0xff00u) | (KM_RWX << 8) | 0x10000u,
	       "a receiver part's flags");
}

static void test_kmodel_check_catches_ktcb(void **state)
{
	struct fx *fx = *state;

	damage(fx, word(fx, fx->pfn[KM_KT_KTCB], 0), 0, "a KTCB's magic");
	damage(fx, word(fx, fx->pfn[KM_KT_KTCB], 1), 99, "a KTCB's thread");
}

static void test_kmodel_check_catches_utcb_mapping(void **state)
{
	struct fx *fx = *state;
	km_vaddr_t utcb;
	uint32_t *pte;

	uint32_t pde;
	km_pfn_t pt;

	/* The UTCB area's table was faulted in at thread creation: find it
	 * through the page directory, as the MMU would. */
	assert_int_equal(km_thread_utcb(fx->km, fx->th, &utcb), KM_OK);
	pde = *word(fx, fx->pfn[KM_KT_PD], utcb >> 22);
	pt = ((pde & ~0xfffu) - 0xC0000000u) >> 12;
	pte = word(fx, pt, (utcb >> 12) & 0x3ff);
	assert_int_equal(*pte & (KM_PTE_P | KM_PTE_US), KM_PTE_P | KM_PTE_US);
	damage(fx, pte, 0, "the UTCB page's PTE");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_kmodel_check_catches_pte_rights),
		T(test_kmodel_check_catches_pte_frame),
		T(test_kmodel_check_catches_node_table),
		T(test_kmodel_check_catches_node_directory),
		T(test_kmodel_check_catches_page_directory),
		T(test_kmodel_check_accepts_accessed_pde),
		T(test_kmodel_check_catches_mapping_nodes),
		T(test_kmodel_check_catches_ktcb),
		T(test_kmodel_check_catches_utcb_mapping),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
