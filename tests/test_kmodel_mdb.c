/*
 * Tests of kmodel's mapping database through its public API alone: sigma0
 * roots, map, grant and unmap on flexpages, km_lookup, and every refusal
 * the km_map/km_unmap contracts list, each checked for its exact error and
 * for leaving the model unchanged.  Written from kmodel.h, not the code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmodel.h"
#include "kmtest.h"

/* ---------------------------------------------------------------------- */
/* Fixture: a fresh model and three empty tasks per test.                   */

#define VA_A 0x10000000u
#define VA_B 0x20000000u
#define VA_C 0x30000000u
#define PG KM_PAGE_SIZE
#define NO_SUCH_TASK ((km_task_t)12345)

struct fx {
	struct km *km;
	struct km_config cfg;
	km_task_t dp, a, b, c;
};

static int setup(void **state)
{
	struct fx *fx = calloc(1, sizeof *fx);
	char why[256] = "";

	if (fx == NULL)
		return -1;
	fx->cfg = km_config_default(4096);
	if (km_create(&fx->cfg, &fx->km, why, sizeof why) != KM_OK ||
	    km_task_create(fx->km, KM_ROOT_KPAGER, &fx->a) != KM_OK ||
	    km_task_create(fx->km, KM_ROOT_KPAGER, &fx->b) != KM_OK ||
	    km_task_create(fx->km, KM_ROOT_KPAGER, &fx->c) != KM_OK) {
		print_error("setup failed: %s\n", why);
		km_destroy(fx->km);
		free(fx);
		return -1;
	}
	fx->dp = km_default_pager(fx->km);
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fx *fx = *state;

	km_destroy(fx->km);
	free(fx);
	return 0;
}

static const km_vaddr_t snap_vas[] = {
	VA_A, VA_A + PG, VA_A + 2 * PG, VA_A + 3 * PG,
	VA_B, VA_B + PG, VA_B + 2 * PG,
	VA_C, VA_C + PG,
	KM_UTCB_AREA, KM_UTCB_AREA - PG, KM_UTCB_AREA + KM_UTCB_AREA_SIZE,
};

/* A snapshot of everything a refused call must not change (see
 * kmt_snap_assert_same). */
static void fx_snap(const struct fx *fx, struct kmt_snap *s)
{
	km_task_t t[] = { KM_SIGMA0, fx->dp, fx->a, fx->b, fx->c };

	kmt_snap_take(fx->km, KM_ROOT_KPAGER, t, sizeof t / sizeof t[0],
	              snap_vas, sizeof snap_vas / sizeof snap_vas[0], s);
}

/* The call must fail with exactly `want` and leave the model unchanged. */
#define REFUSED(fx, expr, want)                                         \
	do {                                                            \
		struct kmt_snap before_, after_;                        \
		fx_snap((fx), &before_);                                \
		ERR((expr), (want));                                    \
		fx_snap((fx), &after_);                                 \
		kmt_snap_assert_same(&before_, &after_, true);          \
		CHECK((fx)->km);                                        \
	} while (0)

static struct km_mapping lookup(const struct km *km, km_task_t t,
                                km_vaddr_t va)
{
	struct km_mapping m;

	memset(&m, 0, sizeof m);
	OK(km_lookup(km, t, va, &m));
	return m;
}

static void assert_unmapped(const struct km *km, km_task_t t, km_vaddr_t va)
{
	struct km_mapping m;

	ERR(km_lookup(km, t, va, &m), KM_ENOMAP);
	assert_int_equal(km_pte(km, t, va) & KM_PTE_P, 0);
}

static struct km_task_stats tstats(const struct km *km, km_task_t t)
{
	struct km_task_stats s;

	memset(&s, 0, sizeof s);
	OK(km_task_stats(km, t, &s));
	return s;
}

static uint32_t sigma0_free(const struct km *km)
{
	struct km_stats s;

	km_stats(km, &s);
	return s.sigma0_free;
}

/* a holds a root RWX page at VA_A, mapped to b at VA_B, mapped to c at VA_C. */
static km_pfn_t build_chain(struct fx *fx)
{
	uint32_t pages = 0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_RWX));
	CHECK(fx->km);
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b, VA_B,
	          KM_MAP, &pages));
	assert_int_equal(pages, 1);
	CHECK(fx->km);
	OK(km_map(fx->km, fx->b, km_fpage(VA_B, 12, KM_RWX), fx->c, VA_C,
	          KM_MAP, &pages));
	assert_int_equal(pages, 1);
	CHECK(fx->km);
	return lookup(fx->km, fx->a, VA_A).pfn;
}

/* ---------------------------------------------------------------------- */
/* sigma0 roots and lookups.                                               */

static void test_mdb_sigma0_map_creates_contiguous_roots(void **state)
{
	struct fx *fx = *state;
	uint32_t free0 = sigma0_free(fx->km);
	struct km_task_stats s0 = tstats(fx->km, fx->a), s1;
	struct km_mapping m0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 3, KM_R | KM_W));
	CHECK(fx->km);
	assert_int_equal(sigma0_free(fx->km), free0 - 3);
	s1 = tstats(fx->km, fx->a);
	assert_int_equal(s1.mappings, s0.mappings + 3);

	m0 = lookup(fx->km, fx->a, VA_A);
	assert_true(m0.pfn < km_frame_count(fx->km));
	assert_int_equal(m0.from_vaddr % PG, 0);
	for (uint32_t i = 0; i < 3; i++) {
		km_vaddr_t va = VA_A + i * PG;
		struct km_mapping m = lookup(fx->km, fx->a, va);
		uint32_t pte = km_pte(fx->km, fx->a, va);

		/* Lowest frames first: the run is physically contiguous. */
		assert_int_equal(m.pfn, m0.pfn + i);
		assert_int_equal(m.from_vaddr, m0.from_vaddr + i * PG);
		assert_int_equal(m.rights, KM_R | KM_W);
		assert_int_equal(m.from, KM_SIGMA0);
		assert_false(m.lent);
		assert_int_equal(pte & 0xfffff000u,
		                 fx->cfg.phys_base + m.pfn * PG);
		assert_int_equal(pte & (KM_PTE_P | KM_PTE_RW | KM_PTE_US),
		                 KM_PTE_P | KM_PTE_RW | KM_PTE_US);
	}
	assert_unmapped(fx->km, fx->a, VA_A + 3 * PG);
	assert_unmapped(fx->km, fx->a, VA_A - PG);
}

static void test_mdb_sigma0_map_hands_out_lowest_free_frame(void **state)
{
	struct fx *fx = *state;
	km_pfn_t pa, pb;
	uint32_t pages = 0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_RWX));
	CHECK(fx->km);
	OK(km_sigma0_map(fx->km, fx->b, VA_B, 1, KM_RWX));
	CHECK(fx->km);
	pa = lookup(fx->km, fx->a, VA_A).pfn;
	pb = lookup(fx->km, fx->b, VA_B).pfn;
	assert_true(pb > pa);

	/* a's frame goes back to sigma0 and is the lowest free one again. */
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), KM_UNMAP_SELF,
	            &pages));
	assert_int_equal(pages, 1);
	CHECK(fx->km);
	OK(km_sigma0_map(fx->km, fx->c, VA_C, 1, KM_RWX));
	CHECK(fx->km);
	assert_int_equal(lookup(fx->km, fx->c, VA_C).pfn, pa);
}

static void test_mdb_sigma0_map_read_only_root_is_not_writable(void **state)
{
	struct fx *fx = *state;
	uint32_t pte;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_R));
	CHECK(fx->km);
	assert_int_equal(lookup(fx->km, fx->a, VA_A).rights, KM_R);
	pte = km_pte(fx->km, fx->a, VA_A);
	assert_int_equal(pte & KM_PTE_P, KM_PTE_P);
	assert_int_equal(pte & KM_PTE_RW, 0);
}

static void test_mdb_sigma0_map_exhausted_is_enomem(void **state)
{
	struct fx *fx = *state;
	uint32_t n = sigma0_free(fx->km);

	REFUSED(fx, km_sigma0_map(fx->km, fx->a, VA_A, n + 1, KM_RWX),
	        KM_ENOMEM);
}

static void test_mdb_sigma0_map_refusals(void **state)
{
	struct fx *fx = *state;

	REFUSED(fx, km_sigma0_map(fx->km, KM_SIGMA0, VA_A, 1, KM_RWX),
	        KM_EPERM);
	REFUSED(fx, km_sigma0_map(fx->km, NO_SUCH_TASK, VA_A, 1, KM_RWX),
	        KM_ENOTASK);
	REFUSED(fx, km_sigma0_map(fx->km, fx->a, KM_UTCB_AREA, 1, KM_RWX),
	        KM_ERESERVED);
	/* The second page of the run falls into the UTCB area. */
	REFUSED(fx, km_sigma0_map(fx->km, fx->a, KM_UTCB_AREA - PG, 2, KM_RWX),
	        KM_ERESERVED);
	REFUSED(fx, km_sigma0_map(fx->km, fx->a, VA_A + 0x800, 1, KM_RWX),
	        KM_EINVAL);
	REFUSED(fx, km_sigma0_map(fx->km, fx->a, KM_USER_TOP, 1, KM_RWX),
	        KM_EINVAL);
	/* Starts in user space, ends past KM_USER_TOP. */
	REFUSED(fx, km_sigma0_map(fx->km, fx->a, KM_USER_TOP - PG, 2, KM_RWX),
	        KM_EINVAL);
	REFUSED(fx, km_sigma0_map(fx->km, fx->a, VA_A, 1, 8u), KM_EINVAL);
}

static void test_mdb_lookup_refusals(void **state)
{
	struct fx *fx = *state;
	struct km_mapping m;

	ERR(km_lookup(fx->km, NO_SUCH_TASK, VA_A, &m), KM_ENOTASK);
	ERR(km_lookup(fx->km, fx->a, KM_USER_TOP, &m), KM_EINVAL);
	ERR(km_lookup(fx->km, fx->a, 0xfffff000u, &m), KM_EINVAL);
	ERR(km_lookup(fx->km, fx->a, VA_A, &m), KM_ENOMAP);
	CHECK(fx->km);
}

/* sigma0 maps by physical address: the address km_lookup reports as the
 * root's from_vaddr names the same frame in a km_map from sigma0. */
static void test_mdb_sigma0_km_map_by_physical_address(void **state)
{
	struct fx *fx = *state;
	struct km_mapping m;
	uint32_t pages = 0, free0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 2, KM_RWX));
	CHECK(fx->km);
	m = lookup(fx->km, fx->a, VA_A + PG);
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A + PG, 12, KM_RWX),
	            KM_UNMAP_SELF, &pages));
	assert_int_equal(pages, 1);
	CHECK(fx->km);
	free0 = sigma0_free(fx->km);

	OK(km_map(fx->km, KM_SIGMA0, km_fpage(m.from_vaddr, 12, KM_R | KM_W),
	          fx->b, VA_B, KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	assert_int_equal(sigma0_free(fx->km), free0 - 1);
	{
		struct km_mapping mb = lookup(fx->km, fx->b, VA_B);

		assert_int_equal(mb.pfn, m.pfn);
		assert_int_equal(mb.from, KM_SIGMA0);
		assert_int_equal(mb.from_vaddr, m.from_vaddr);
		assert_int_equal(mb.rights, KM_R | KM_W);
	}
}

/* ---------------------------------------------------------------------- */
/* map                                                                      */

static void test_mdb_map_derives_from_source(void **state)
{
	struct fx *fx = *state;
	struct km_mapping ma, ma2, mb;
	struct km_task_stats sa0, sb0;
	uint32_t pages = 0, free0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_RWX));
	CHECK(fx->km);
	ma = lookup(fx->km, fx->a, VA_A);
	sa0 = tstats(fx->km, fx->a);
	sb0 = tstats(fx->km, fx->b);
	free0 = sigma0_free(fx->km);

	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b, VA_B,
	          KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	mb = lookup(fx->km, fx->b, VA_B);
	assert_int_equal(mb.pfn, ma.pfn);
	assert_int_equal(mb.from, fx->a);
	assert_int_equal(mb.from_vaddr, VA_A);
	assert_int_equal(mb.rights, KM_RWX);
	assert_false(mb.lent);
	assert_int_equal(km_pte(fx->km, fx->b, VA_B) & 0xfffff000u,
	                 fx->cfg.phys_base + ma.pfn * PG);

	/* The mapper keeps its mapping. */
	ma2 = lookup(fx->km, fx->a, VA_A);
	assert_int_equal(ma2.pfn, ma.pfn);
	assert_int_equal(ma2.from, KM_SIGMA0);
	assert_int_equal(ma2.rights, KM_RWX);
	assert_int_equal(tstats(fx->km, fx->a).mappings, sa0.mappings);
	assert_int_equal(tstats(fx->km, fx->b).mappings, sb0.mappings + 1);
	assert_int_equal(sigma0_free(fx->km), free0);
}

static void test_mdb_map_flexpage_maps_every_page(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 4, KM_RWX));
	CHECK(fx->km);
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 14, KM_RWX), fx->b, VA_B,
	          KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 4);
	for (uint32_t i = 0; i < 4; i++) {
		struct km_mapping mb = lookup(fx->km, fx->b, VA_B + i * PG);

		assert_int_equal(mb.pfn, lookup(fx->km, fx->a, VA_A + i * PG).pfn);
		assert_int_equal(mb.from, fx->a);
		assert_int_equal(mb.from_vaddr, VA_A + i * PG);
	}
	assert_unmapped(fx->km, fx->b, VA_B + 4 * PG);
	assert_int_equal(tstats(fx->km, fx->b).mappings, 4);
}

static void test_mdb_map_sparse_source_maps_only_present_pages(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_RWX));
	OK(km_sigma0_map(fx->km, fx->a, VA_A + 2 * PG, 1, KM_RWX));
	CHECK(fx->km);
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 14, KM_RWX), fx->b, VA_B,
	          KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 2);
	assert_int_equal(lookup(fx->km, fx->b, VA_B).from_vaddr, VA_A);
	assert_int_equal(lookup(fx->km, fx->b, VA_B + 2 * PG).from_vaddr,
	                 VA_A + 2 * PG);
	assert_unmapped(fx->km, fx->b, VA_B + PG);
	assert_unmapped(fx->km, fx->b, VA_B + 3 * PG);
}

static void test_mdb_map_of_nothing_moves_zero_pages(void **state)
{
	struct fx *fx = *state;
	struct kmt_snap before, after;
	uint32_t pages = 0xdeadbeefu;

	fx_snap(fx, &before);
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 14, KM_RWX), fx->b, VA_B,
	          KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 0);
	fx_snap(fx, &after);
	kmt_snap_assert_same(&before, &after, true);

	pages = 0xdeadbeefu;
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b, VA_B,
	          KM_GRANT, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 0);
	fx_snap(fx, &after);
	kmt_snap_assert_same(&before, &after, true);
}

static void test_mdb_map_rights_are_masked(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0, pte;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_R | KM_W));
	CHECK(fx->km);
	/* Fewer rights than the source: the flexpage's rights win. */
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_R), fx->b, VA_B,
	          KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(lookup(fx->km, fx->b, VA_B).rights, KM_R);
	pte = km_pte(fx->km, fx->b, VA_B);
	assert_int_equal(pte & KM_PTE_P, KM_PTE_P);
	assert_int_equal(pte & KM_PTE_RW, 0);
	/* More rights than the source: the source's rights win. */
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->c, VA_C,
	          KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(lookup(fx->km, fx->c, VA_C).rights, KM_R | KM_W);
	assert_int_equal(km_pte(fx->km, fx->c, VA_C) & KM_PTE_RW, KM_PTE_RW);
	/* A derived mapping passes on no more than it has. */
	OK(km_map(fx->km, fx->b, km_fpage(VA_B, 12, KM_RWX), fx->c,
	          VA_C + PG, KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(lookup(fx->km, fx->c, VA_C + PG).rights, KM_R);
	assert_int_equal(km_pte(fx->km, fx->c, VA_C + PG) & KM_PTE_RW, 0);
}

static void test_mdb_map_replaces_existing_destination(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0, free0;
	km_pfn_t pa, old;
	struct km_mapping mb;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_RWX));
	/* b already holds a root at VA_B with c derived from it. */
	OK(km_sigma0_map(fx->km, fx->b, VA_B, 1, KM_RWX));
	OK(km_map(fx->km, fx->b, km_fpage(VA_B, 12, KM_RWX), fx->c, VA_C,
	          KM_MAP, &pages));
	CHECK(fx->km);
	pa = lookup(fx->km, fx->a, VA_A).pfn;
	old = lookup(fx->km, fx->b, VA_B).pfn;
	assert_int_not_equal(pa, old);
	free0 = sigma0_free(fx->km);

	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b, VA_B,
	          KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	mb = lookup(fx->km, fx->b, VA_B);
	assert_int_equal(mb.pfn, pa);
	assert_int_equal(mb.from, fx->a);
	assert_int_equal(km_pte(fx->km, fx->b, VA_B) & 0xfffff000u,
	                 fx->cfg.phys_base + pa * PG);
	/* The replaced root took its derived mapping with it, and its
	 * frame is sigma0's again. */
	assert_unmapped(fx->km, fx->c, VA_C);
	assert_int_equal(tstats(fx->km, fx->c).mappings, 0);
	assert_int_equal(tstats(fx->km, fx->b).mappings, 1);
	assert_int_equal(sigma0_free(fx->km), free0 + 1);
}

static void test_mdb_map_cycle_is_refused(void **state)
{
	struct fx *fx = *state;

	build_chain(fx);
	/* b's mapping derives from a's: a's page is an ancestor. */
	REFUSED(fx, km_map(fx->km, fx->b, km_fpage(VA_B, 12, KM_RWX), fx->a,
	                   VA_A, KM_MAP, NULL), KM_ECYCLE);
	/* Two generations down. */
	REFUSED(fx, km_map(fx->km, fx->c, km_fpage(VA_C, 12, KM_RWX), fx->a,
	                   VA_A, KM_MAP, NULL), KM_ECYCLE);
	REFUSED(fx, km_map(fx->km, fx->c, km_fpage(VA_C, 12, KM_RWX), fx->b,
	                   VA_B, KM_GRANT, NULL), KM_ECYCLE);
}

static void test_mdb_map_bad_flexpage_is_einval(void **state)
{
	struct fx *fx = *state;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 2, KM_RWX));
	CHECK(fx->km);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 11, KM_RWX), fx->b,
	                   VA_B, KM_MAP, NULL), KM_EINVAL);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 33, KM_RWX), fx->b,
	                   VA_B, KM_MAP, NULL), KM_EINVAL);
	/* Base not aligned to the flexpage's size. */
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A + PG, 13, KM_RWX),
	                   fx->b, VA_B, KM_MAP, NULL), KM_EINVAL);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A + 0x800, 12, KM_RWX),
	                   fx->b, VA_B, KM_MAP, NULL), KM_EINVAL);
	/* Source range in kernel space. */
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(KM_USER_TOP, 12, KM_RWX),
	                   fx->b, VA_B, KM_MAP, NULL), KM_EINVAL);
	/* Bad rights and mode. */
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, 8u), fx->b,
	                   VA_B, KM_MAP, NULL), KM_EINVAL);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b,
	                   VA_B, (enum km_map_mode)2, NULL), KM_EINVAL);
}

static void test_mdb_map_bad_destination_is_einval(void **state)
{
	struct fx *fx = *state;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 2, KM_RWX));
	CHECK(fx->km);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b,
	                   VA_B + 0x800, KM_MAP, NULL), KM_EINVAL);
	/* Page-aligned but not aligned to the 8 KiB flexpage. */
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 13, KM_RWX), fx->b,
	                   VA_B + PG, KM_MAP, NULL), KM_EINVAL);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b,
	                   KM_USER_TOP, KM_MAP, NULL), KM_EINVAL);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 13, KM_RWX), fx->b,
	                   0xfffe0000u, KM_GRANT, NULL), KM_EINVAL);
}

static void test_mdb_map_into_utcb_area_is_reserved(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_RWX));
	CHECK(fx->km);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b,
	                   KM_UTCB_AREA, KM_MAP, NULL), KM_ERESERVED);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b,
	                   KM_UTCB_AREA + KM_UTCB_AREA_SIZE - PG, KM_MAP,
	                   NULL), KM_ERESERVED);
	/* A 16 MiB destination window that covers the area. */
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 24, KM_RWX), fx->b,
	                   0xBF000000u, KM_MAP, NULL), KM_ERESERVED);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b,
	                   KM_UTCB_AREA, KM_GRANT, NULL), KM_ERESERVED);

	/* The pages just outside the area are ordinary user pages. */
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b,
	          KM_UTCB_AREA - PG, KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b,
	          KM_UTCB_AREA + KM_UTCB_AREA_SIZE, KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
}

static void test_mdb_map_from_utcb_area_is_reserved(void **state)
{
	struct fx *fx = *state;
	km_thread_t t;
	km_vaddr_t utcb;

	OK(km_thread_create(fx->km, fx->a, 0, &t));
	CHECK(fx->km);
	OK(km_thread_utcb(fx->km, t, &utcb));
	REFUSED(fx, km_map(fx->km, fx->a,
	                   km_fpage(utcb & ~(PG - 1), 12, KM_RWX), fx->b,
	                   VA_B, KM_MAP, NULL), KM_ERESERVED);
	REFUSED(fx, km_map(fx->km, fx->a,
	                   km_fpage(utcb & ~(PG - 1), 12, KM_RWX), fx->b,
	                   VA_B, KM_GRANT, NULL), KM_ERESERVED);
}

static void test_mdb_map_sigma0_rules_are_eperm(void **state)
{
	struct fx *fx = *state;
	struct km_mapping m;
	uint32_t pages = 0;

	/* A physical address that sigma0 holds and has not mapped. */
	OK(km_sigma0_map(fx->km, fx->c, VA_C, 1, KM_RWX));
	m = lookup(fx->km, fx->c, VA_C);
	OK(km_unmap(fx->km, fx->c, km_fpage(VA_C, 12, KM_RWX), KM_UNMAP_SELF,
	            &pages));
	CHECK(fx->km);

	REFUSED(fx, km_map(fx->km, KM_SIGMA0, km_fpage(m.from_vaddr, 12, KM_RWX),
	                   fx->b, VA_B, KM_GRANT, NULL), KM_EPERM);

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_RWX));
	CHECK(fx->km);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), KM_SIGMA0,
	                   VA_B, KM_MAP, NULL), KM_EPERM);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), KM_SIGMA0,
	                   VA_B, KM_GRANT, NULL), KM_EPERM);
}

static void test_mdb_map_unknown_task_is_enotask(void **state)
{
	struct fx *fx = *state;
	km_task_t gone;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_RWX));
	OK(km_task_create(fx->km, KM_ROOT_KPAGER, &gone));
	OK(km_task_destroy(fx->km, gone));
	CHECK(fx->km);
	REFUSED(fx, km_map(fx->km, NO_SUCH_TASK, km_fpage(VA_A, 12, KM_RWX),
	                   fx->b, VA_B, KM_MAP, NULL), KM_ENOTASK);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX),
	                   NO_SUCH_TASK, VA_B, KM_MAP, NULL), KM_ENOTASK);
	REFUSED(fx, km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), gone,
	                   VA_B, KM_GRANT, NULL), KM_ENOTASK);
	REFUSED(fx, km_map(fx->km, gone, km_fpage(VA_A, 12, KM_RWX), fx->b,
	                   VA_B, KM_MAP, NULL), KM_ENOTASK);
}

/* 170 mapping-node parts fit a mapping-database page: a receiver's 171st
 * mapping needs its second page. */
static void test_mdb_map_node_parts_fill_mdb_pages(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 170, KM_RWX));
	OK(km_sigma0_map(fx->km, fx->a, VA_A + 0x100000u, 1, KM_RWX));
	CHECK(fx->km);
	assert_int_equal(tstats(fx->km, fx->b).pages[KM_KT_MDB], 0);
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 20, KM_RWX), fx->b, VA_B,
	          KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 170);
	assert_int_equal(tstats(fx->km, fx->b).pages[KM_KT_MDB], 1);
	assert_int_equal(tstats(fx->km, fx->b).group[KM_KG_M], 1);
	OK(km_map(fx->km, fx->a, km_fpage(VA_A + 0x100000u, 12, KM_RWX), fx->b,
	          VA_B + 0x100000u, KM_MAP, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	assert_int_equal(tstats(fx->km, fx->b).pages[KM_KT_MDB], 2);
	assert_int_equal(tstats(fx->km, fx->b).mappings, 171);
}

/* ---------------------------------------------------------------------- */
/* unmap                                                                    */

static void test_mdb_unmap_removes_derived_keeps_own(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0, free0;
	km_pfn_t pfn = build_chain(fx);

	free0 = sigma0_free(fx->km);
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), 0, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 2);
	assert_int_equal(lookup(fx->km, fx->a, VA_A).pfn, pfn);
	assert_int_equal(lookup(fx->km, fx->a, VA_A).rights, KM_RWX);
	assert_unmapped(fx->km, fx->b, VA_B);
	assert_unmapped(fx->km, fx->c, VA_C);
	assert_int_equal(tstats(fx->km, fx->b).mappings, 0);
	assert_int_equal(tstats(fx->km, fx->c).mappings, 0);
	assert_int_equal(sigma0_free(fx->km), free0);
}

static void test_mdb_unmap_self_removes_own_and_derived(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0, free0 = sigma0_free(fx->km);

	build_chain(fx);
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), KM_UNMAP_SELF,
	            &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 3);
	assert_unmapped(fx->km, fx->a, VA_A);
	assert_unmapped(fx->km, fx->b, VA_B);
	assert_unmapped(fx->km, fx->c, VA_C);
	assert_int_equal(tstats(fx->km, fx->a).mappings, 0);
	/* The root is gone: its frame is sigma0's again. */
	assert_int_equal(sigma0_free(fx->km), free0);
}

static void test_mdb_unmap_in_the_middle_of_a_chain(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0;

	build_chain(fx);
	OK(km_unmap(fx->km, fx->b, km_fpage(VA_B, 12, KM_RWX), KM_UNMAP_SELF,
	            &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 2);
	assert_int_equal(lookup(fx->km, fx->a, VA_A).rights, KM_RWX);
	assert_unmapped(fx->km, fx->b, VA_B);
	assert_unmapped(fx->km, fx->c, VA_C);
}

static void test_mdb_unmap_downgrade_keeps_mappings(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0;

	build_chain(fx);
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A, 12, KM_W), 0, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 2);
	assert_int_equal(lookup(fx->km, fx->a, VA_A).rights, KM_RWX);
	assert_int_equal(km_pte(fx->km, fx->a, VA_A) & KM_PTE_RW, KM_PTE_RW);
	assert_int_equal(lookup(fx->km, fx->b, VA_B).rights, KM_R | KM_X);
	assert_int_equal(lookup(fx->km, fx->c, VA_C).rights, KM_R | KM_X);
	assert_int_equal(km_pte(fx->km, fx->b, VA_B) & (KM_PTE_P | KM_PTE_RW),
	                 KM_PTE_P);
	assert_int_equal(km_pte(fx->km, fx->c, VA_C) & (KM_PTE_P | KM_PTE_RW),
	                 KM_PTE_P);
	/* The tree is intact: c still derives from b. */
	assert_int_equal(lookup(fx->km, fx->c, VA_C).from, fx->b);
	assert_int_equal(tstats(fx->km, fx->c).mappings, 1);
}

static void test_mdb_unmap_self_downgrade_includes_own(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0;

	build_chain(fx);
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A, 12, KM_W), KM_UNMAP_SELF,
	            &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 3);
	assert_int_equal(lookup(fx->km, fx->a, VA_A).rights, KM_R | KM_X);
	assert_int_equal(lookup(fx->km, fx->b, VA_B).rights, KM_R | KM_X);
	assert_int_equal(lookup(fx->km, fx->c, VA_C).rights, KM_R | KM_X);
	assert_int_equal(km_pte(fx->km, fx->a, VA_A) & (KM_PTE_P | KM_PTE_RW),
	                 KM_PTE_P);
}

static void test_mdb_unmap_part_of_a_flexpage(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 4, KM_RWX));
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 14, KM_RWX), fx->b, VA_B,
	          KM_MAP, &pages));
	CHECK(fx->km);
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A + PG, 12, KM_RWX), 0, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	assert_unmapped(fx->km, fx->b, VA_B + PG);
	lookup(fx->km, fx->b, VA_B);
	lookup(fx->km, fx->b, VA_B + 2 * PG);
	lookup(fx->km, fx->b, VA_B + 3 * PG);
	/* A 4 MiB flexpage over the rest. */
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A, 22, KM_RWX), 0, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 3);
	assert_int_equal(tstats(fx->km, fx->b).mappings, 0);
	assert_int_equal(tstats(fx->km, fx->a).mappings, 4);
}

static void test_mdb_unmap_of_nothing_changes_nothing(void **state)
{
	struct fx *fx = *state;
	struct kmt_snap before, after;
	uint32_t pages = 0xdeadbeefu;

	build_chain(fx);
	fx_snap(fx, &before);
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A + PG, 12, KM_RWX),
	            KM_UNMAP_SELF, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 0);
	/* c has nothing derived from its page. */
	pages = 0xdeadbeefu;
	OK(km_unmap(fx->km, fx->c, km_fpage(VA_C, 12, KM_RWX), 0, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 0);
	fx_snap(fx, &after);
	kmt_snap_assert_same(&before, &after, true);
}

static void test_mdb_unmap_refusals(void **state)
{
	struct fx *fx = *state;

	build_chain(fx);
	REFUSED(fx, km_unmap(fx->km, NO_SUCH_TASK, km_fpage(VA_A, 12, KM_RWX),
	                     0, NULL), KM_ENOTASK);
	REFUSED(fx, km_unmap(fx->km, fx->a, km_fpage(VA_A, 11, KM_RWX),
	                     KM_UNMAP_SELF, NULL), KM_EINVAL);
	REFUSED(fx, km_unmap(fx->km, fx->a, km_fpage(VA_A, 33, KM_RWX),
	                     KM_UNMAP_SELF, NULL), KM_EINVAL);
	REFUSED(fx, km_unmap(fx->km, fx->a, km_fpage(VA_A + PG, 13, KM_RWX),
	                     KM_UNMAP_SELF, NULL), KM_EINVAL);
	REFUSED(fx, km_unmap(fx->km, fx->a, km_fpage(KM_USER_TOP, 12, KM_RWX),
	                     KM_UNMAP_SELF, NULL), KM_EINVAL);
	REFUSED(fx, km_unmap(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), 0x80u,
	                     NULL), KM_EINVAL);
	REFUSED(fx, km_unmap(fx->km, fx->a, km_fpage(VA_A, 12, 8u),
	                     KM_UNMAP_SELF, NULL), KM_EINVAL);
}

/* ---------------------------------------------------------------------- */
/* grant                                                                    */

static void test_mdb_grant_moves_mapping_with_its_subtree(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0, free0;
	km_pfn_t pfn;
	struct km_mapping mb, mc;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_RWX));
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->c, VA_C,
	          KM_MAP, &pages));
	CHECK(fx->km);
	pfn = lookup(fx->km, fx->a, VA_A).pfn;
	free0 = sigma0_free(fx->km);

	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b, VA_B,
	          KM_GRANT, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	assert_unmapped(fx->km, fx->a, VA_A);
	assert_int_equal(tstats(fx->km, fx->a).mappings, 0);
	mb = lookup(fx->km, fx->b, VA_B);
	assert_int_equal(mb.pfn, pfn);
	assert_int_equal(mb.rights, KM_RWX);
	/* The granted mapping keeps its place in the tree: a sigma0 root. */
	assert_int_equal(mb.from, KM_SIGMA0);
	assert_int_equal(sigma0_free(fx->km), free0);
	/* c's mapping moved along and now hangs below b's. */
	mc = lookup(fx->km, fx->c, VA_C);
	assert_int_equal(mc.pfn, pfn);
	assert_int_equal(mc.from, fx->b);
	assert_int_equal(mc.from_vaddr, VA_B);

	/* Unmapping at the old place reaches nothing; at the new one, c. */
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), 0, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 0);
	lookup(fx->km, fx->c, VA_C);
	OK(km_unmap(fx->km, fx->b, km_fpage(VA_B, 12, KM_RWX), 0, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	assert_unmapped(fx->km, fx->c, VA_C);
	assert_int_equal(lookup(fx->km, fx->b, VA_B).pfn, pfn);
}

static void test_mdb_grant_of_derived_mapping_keeps_parent(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0;
	struct km_mapping mc;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 1, KM_RWX));
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), fx->b, VA_B,
	          KM_MAP, &pages));
	CHECK(fx->km);
	OK(km_map(fx->km, fx->b, km_fpage(VA_B, 12, KM_RWX), fx->c, VA_C,
	          KM_GRANT, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	assert_unmapped(fx->km, fx->b, VA_B);
	mc = lookup(fx->km, fx->c, VA_C);
	assert_int_equal(mc.from, fx->a);
	assert_int_equal(mc.from_vaddr, VA_A);
	assert_int_equal(mc.pfn, lookup(fx->km, fx->a, VA_A).pfn);
	/* a still controls it. */
	OK(km_unmap(fx->km, fx->a, km_fpage(VA_A, 12, KM_RWX), 0, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 1);
	assert_unmapped(fx->km, fx->c, VA_C);
}

static void test_mdb_grant_flexpage_moves_every_page(void **state)
{
	struct fx *fx = *state;
	uint32_t pages = 0;
	km_pfn_t p0;

	OK(km_sigma0_map(fx->km, fx->a, VA_A, 4, KM_RWX));
	CHECK(fx->km);
	p0 = lookup(fx->km, fx->a, VA_A).pfn;
	OK(km_map(fx->km, fx->a, km_fpage(VA_A, 14, KM_RWX), fx->b, VA_B,
	          KM_GRANT, &pages));
	CHECK(fx->km);
	assert_int_equal(pages, 4);
	for (uint32_t i = 0; i < 4; i++) {
		assert_unmapped(fx->km, fx->a, VA_A + i * PG);
		assert_int_equal(lookup(fx->km, fx->b, VA_B + i * PG).pfn, p0 + i);
	}
	assert_int_equal(tstats(fx->km, fx->a).mappings, 0);
	assert_int_equal(tstats(fx->km, fx->b).mappings, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
		T(test_mdb_sigma0_map_creates_contiguous_roots),
		T(test_mdb_sigma0_map_hands_out_lowest_free_frame),
		T(test_mdb_sigma0_map_read_only_root_is_not_writable),
		T(test_mdb_sigma0_map_exhausted_is_enomem),
		T(test_mdb_sigma0_map_refusals),
		T(test_mdb_lookup_refusals),
		T(test_mdb_sigma0_km_map_by_physical_address),
		T(test_mdb_map_derives_from_source),
		T(test_mdb_map_flexpage_maps_every_page),
		T(test_mdb_map_sparse_source_maps_only_present_pages),
		T(test_mdb_map_of_nothing_moves_zero_pages),
		T(test_mdb_map_rights_are_masked),
		T(test_mdb_map_replaces_existing_destination),
		T(test_mdb_map_cycle_is_refused),
		T(test_mdb_map_bad_flexpage_is_einval),
		T(test_mdb_map_bad_destination_is_einval),
		T(test_mdb_map_into_utcb_area_is_reserved),
		T(test_mdb_map_from_utcb_area_is_reserved),
		T(test_mdb_map_sigma0_rules_are_eperm),
		T(test_mdb_map_unknown_task_is_enotask),
		T(test_mdb_map_node_parts_fill_mdb_pages),
		T(test_mdb_unmap_removes_derived_keeps_own),
		T(test_mdb_unmap_self_removes_own_and_derived),
		T(test_mdb_unmap_in_the_middle_of_a_chain),
		T(test_mdb_unmap_downgrade_keeps_mappings),
		T(test_mdb_unmap_self_downgrade_includes_own),
		T(test_mdb_unmap_part_of_a_flexpage),
		T(test_mdb_unmap_of_nothing_changes_nothing),
		T(test_mdb_unmap_refusals),
		T(test_mdb_grant_moves_mapping_with_its_subtree),
		T(test_mdb_grant_of_derived_mapping_keeps_parent),
		T(test_mdb_grant_flexpage_moves_every_page),
#undef T
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
