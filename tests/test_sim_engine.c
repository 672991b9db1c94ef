/*
 * test_sim_engine.c: cmocka tests of sim/engine over page tables built by
 * hand in a memfd (test_machine.c). Guest code is written one instruction
 * per line with its disassembly; every engine call's result is checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "engine.h"
#include "test_machine.h"

#define OK(call) assert_int_equal((call), SIM_OK)

#define VA_CODE 0x08048000u
#define VA_DATA 0x0804A000u
#define VA_DATA2 0x0804B000u
#define VA_STACK 0x0804F000u
#define USER_RO (SIM_PTE_P | SIM_PTE_US)
#define USER_RW (SIM_PTE_P | SIM_PTE_US | SIM_PTE_RW)

struct fixture {
	struct tmach m;
	struct tm_task t;
	uint32_t code_pfn;
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof f);
	if (tm_init(&f.m, 1024) != SIM_OK || tm_task_init(&f.m, &f.t) != SIM_OK)
		return -1;
	f.code_pfn = tm_alloc(&f.m);
	if (tm_map(&f.m, &f.t, VA_CODE, f.code_pfn, USER_RO) != SIM_OK)
		return -1;
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	tm_task_fini(&f->t);
	tm_fini(&f->m);
	return 0;
}

/* Runs from eip with a large budget and checks the event kind. */
static struct sim_event run_to(struct sim_engine *e, struct sim_regs *r,
							   uint32_t eip, enum sim_event_kind kind)
{
	struct sim_event ev;

	r->eip = eip;
	OK(sim_engine_run(e, r, UINT64_MAX, &ev));
	assert_int_equal(ev.kind, kind);
	assert_int_equal(ev.eip, r->eip);
	return ev;
}

static uint32_t word_at(struct tmach *m, uint32_t pfn, uint32_t off)
{
	uint32_t v;
	memcpy(&v, tm_frame(m, pfn) + off, sizeof v);
	return v;
}

static void test_sim_engine_selftest_passes(void **state)
{
	char why[256];

	(void)state;
	assert_true(sim_engine_selftest(why, sizeof why));
	assert_string_equal(why, "");
}

static void test_sim_engine_runs_at_ring3(void **state)
{
	static const uint8_t code[] = {
		0x8C, 0xC8,       /* 0: mov eax, cs  */
		0xCD, 0x30,       /* 2: int 0x30     */
		0xFA,             /* 4: cli          */
		0xCD, 0x30,       /* 5: int 0x30     */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK};
	struct sim_event ev;

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	ev = run_to(f->t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	assert_int_equal(r.eax & 3, 3);
	assert_int_equal(ev.eip, VA_CODE + 4);
	/* cli is privileged at CPL 3 with IOPL 0. */
	ev = run_to(f->t.e, &r, ev.eip, SIM_EV_EXCEPTION);
	assert_int_equal(ev.vector, 13);
	assert_int_equal(ev.eip, VA_CODE + 4);
	assert_false(ev.software);
}

static void test_sim_engine_two_tasks_same_va_separate_frames(void **state)
{
	static const uint8_t code[] = {
		0xA3, 0x00, 0xA0, 0x04, 0x08,       /* 0: mov [0x0804A000], eax */
		0xCD, 0x30,                         /* 5: int 0x30              */
		0x8B, 0x1D, 0x00, 0xA0, 0x04, 0x08, /* 7: mov ebx, [0x0804A000] */
		0xCD, 0x30,                         /* D: int 0x30              */
	};
	struct fixture *f = *state;
	struct tm_task t2;
	uint32_t a = tm_alloc(&f->m), b = tm_alloc(&f->m);
	struct sim_regs r1 = {.eax = 111, .esp = VA_STACK};
	struct sim_regs r2 = {.eax = 222, .esp = VA_STACK};
	struct sim_event e1, e2;

	OK(tm_task_init(&f->m, &t2));
	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	OK(tm_map(&f->m, &t2, VA_CODE, f->code_pfn, USER_RO));
	OK(tm_map(&f->m, &f->t, VA_DATA, a, USER_RW));
	OK(tm_map(&f->m, &t2, VA_DATA, b, USER_RW));

	/* Interleaved: both store, then both load back. */
	e1 = run_to(f->t.e, &r1, VA_CODE, SIM_EV_SYSCALL);
	e2 = run_to(t2.e, &r2, VA_CODE, SIM_EV_SYSCALL);
	run_to(f->t.e, &r1, e1.eip, SIM_EV_SYSCALL);
	run_to(t2.e, &r2, e2.eip, SIM_EV_SYSCALL);
	assert_int_equal(r1.ebx, 111);
	assert_int_equal(r2.ebx, 222);
	assert_int_equal(word_at(&f->m, a, 0), 111);
	assert_int_equal(word_at(&f->m, b, 0), 222);
	tm_task_fini(&t2);
}

static void test_sim_engine_shared_frame_seen_by_both(void **state)
{
	static const uint8_t code[] = {
		0xA3, 0x00, 0xB0, 0x04, 0x08,       /* 0: mov [0x0804B000], eax */
		0xCD, 0x30,                         /* 5: int 0x30              */
		0x8B, 0x1D, 0x00, 0xB0, 0x04, 0x08, /* 7: mov ebx, [0x0804B000] */
		0xCD, 0x30,                         /* D: int 0x30              */
	};
	struct fixture *f = *state;
	struct tm_task t2;
	uint32_t s = tm_alloc(&f->m);
	struct sim_regs r1 = {.eax = 0x5157, .esp = VA_STACK};
	struct sim_regs r2 = {.esp = VA_STACK};

	OK(tm_task_init(&f->m, &t2));
	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	OK(tm_map(&f->m, &t2, VA_CODE, f->code_pfn, USER_RO));
	OK(tm_map(&f->m, &f->t, VA_DATA2, s, USER_RW));
	OK(tm_map(&f->m, &t2, VA_DATA2, s, USER_RO));

	run_to(f->t.e, &r1, VA_CODE, SIM_EV_SYSCALL);
	run_to(t2.e, &r2, VA_CODE + 7, SIM_EV_SYSCALL);
	assert_int_equal(r2.ebx, 0x5157);
	tm_task_fini(&t2);
}

static void test_sim_engine_ad_bits_in_memfd(void **state)
{
	static const uint8_t code[] = {
		0xA1, 0x00, 0xA0, 0x04, 0x08,       /* 0: mov eax, [0x0804A000] */
		0xCD, 0x30,                         /* 5: int 0x30              */
		0x89, 0x1D, 0x00, 0xA0, 0x04, 0x08, /* 7: mov [0x0804A000], ebx */
		0xCD, 0x30,                         /* D: int 0x30              */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK};
	struct sim_event ev;
	uint32_t *pte;

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	OK(tm_map(&f->m, &f->t, VA_DATA, tm_alloc(&f->m), USER_RW));
	pte = tm_pte(&f->m, &f->t, VA_DATA, false);
	assert_int_equal(*pte & (SIM_PTE_A | SIM_PTE_D), 0);

	ev = run_to(f->t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	assert_int_equal(*pte & (SIM_PTE_A | SIM_PTE_D), SIM_PTE_A);
	assert_true(*tm_pte(&f->m, &f->t, VA_CODE, false) & SIM_PTE_A);
	run_to(f->t.e, &r, ev.eip, SIM_EV_SYSCALL);
	assert_int_equal(*pte & (SIM_PTE_A | SIM_PTE_D), SIM_PTE_A | SIM_PTE_D);
}

static void test_sim_engine_cleared_pte_faults_after_flush(void **state)
{
	static const uint8_t code[] = {
		0xB8, 0x05, 0x00, 0x00, 0x00,       /* 0: mov eax, 5            */
		0x8B, 0x0D, 0x23, 0xA1, 0x04, 0x08, /* 5: mov ecx, [0x0804A123] */
		0xA3, 0x40, 0xA0, 0x04, 0x08,       /* B: mov [0x0804A040], eax */
		0xCD, 0x30,                         /* 10: int 0x30             */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK};
	struct sim_event ev;
	uint32_t pfn = tm_alloc(&f->m), *pte;

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	OK(tm_map(&f->m, &f->t, VA_DATA, pfn, USER_RW));
	run_to(f->t.e, &r, VA_CODE, SIM_EV_SYSCALL);

	/* Revoke (rule 3): PTE cleared, full flush, then the alias goes. */
	pte = tm_pte(&f->m, &f->t, VA_DATA, false);
	*pte = 0;
	OK(sim_engine_set_cr3(f->t.e, tm_addr(f->t.pd_pfn)));
	OK(sim_engine_unalias(f->t.e, VA_DATA));
	ev = run_to(f->t.e, &r, VA_CODE, SIM_EV_PAGE_FAULT);
	assert_int_equal(ev.vector, 14);
	assert_int_equal(ev.eip, VA_CODE + 5);
	assert_int_equal(ev.cr2, 0x0804A123u);
	assert_int_equal(ev.error_code, SIM_PF_U);
	assert_int_equal(ev.icount, 1);

	/* Map it back; then revoke again with invlpg: the write faults. */
	OK(tm_map(&f->m, &f->t, VA_DATA, pfn, USER_RW));
	run_to(f->t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	OK(tm_unmap(&f->m, &f->t, VA_DATA));
	ev = run_to(f->t.e, &r, VA_CODE + 0xB, SIM_EV_PAGE_FAULT);
	assert_int_equal(ev.eip, VA_CODE + 0xB);
	assert_int_equal(ev.cr2, 0x0804A040u);
	assert_int_equal(ev.error_code, SIM_PF_U | SIM_PF_W);
	assert_int_equal(ev.icount, 0);
}

static void test_sim_engine_write_to_readonly_faults(void **state)
{
	static const uint8_t code[] = {
		0xB8, 0xEF, 0xBE, 0xAD, 0xDE,       /* 0: mov eax, 0xDEADBEEF   */
		0xA3, 0x10, 0xA0, 0x04, 0x08,       /* 5: mov [0x0804A010], eax */
		0xCD, 0x30,                         /* A: int 0x30              */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK};
	struct sim_event ev;
	uint32_t pfn = tm_alloc(&f->m);

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	OK(tm_map(&f->m, &f->t, VA_DATA, pfn, USER_RO));
	ev = run_to(f->t.e, &r, VA_CODE, SIM_EV_PAGE_FAULT);
	assert_int_equal(ev.eip, VA_CODE + 5);
	assert_int_equal(ev.cr2, 0x0804A010u);
	assert_int_equal(ev.error_code, SIM_PF_P | SIM_PF_W | SIM_PF_U);
	assert_int_equal(word_at(&f->m, pfn, 0x10), 0);

	/* Upgrade (rule 2): writable alias, then PTE.RW; no flush needed. */
	OK(tm_map(&f->m, &f->t, VA_DATA, pfn, USER_RW));
	run_to(f->t.e, &r, ev.eip, SIM_EV_SYSCALL);
	assert_int_equal(word_at(&f->m, pfn, 0x10), 0xDEADBEEFu);
}

static void test_sim_engine_icount_loop_exact(void **state)
{
	static const uint8_t code[] = {
		0xB9, 0xE8, 0x03, 0x00, 0x00,       /* 0: mov ecx, 1000         */
		0x01, 0xC8,                         /* 5: add eax, ecx          */
		0x49,                               /* 7: dec ecx               */
		0x75, 0xFB,                         /* 8: jnz 5                 */
		0xCD, 0x30,                         /* A: int 0x30              */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK};
	struct sim_engine_stats st;
	struct sim_event ev;

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	ev = run_to(f->t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	assert_int_equal(ev.icount, 1 + 1000 * 3 + 1);
	assert_int_equal(r.eax, 500500);
	sim_engine_get_stats(f->t.e, &st);
	assert_int_equal(st.icount, 3002);
	assert_int_equal(st.blocks_unchecked, 0);
}

/* A long block of mixed encodings, then a fault in its middle. */
static void test_sim_engine_icount_after_midblock_fault(void **state)
{
	static const uint8_t code[] = {
		0xB8, 0x01, 0x00, 0x00, 0x00,             /* mov eax, 1            */
		0x66, 0xB9, 0x34, 0x12,                   /* mov cx, 0x1234        */
		0x8D, 0x44, 0x24, 0x08,                   /* lea eax, [esp+8]      */
		0x8D, 0x84, 0x88, 0x00, 0x01, 0x00, 0x00, /* lea eax, [eax+ecx*4+0x100] */
		0x8D, 0x04, 0x8D, 0x00, 0x00, 0x00, 0x00, /* lea eax, [ecx*4]      */
		0x0F, 0xAF, 0xC1,                         /* imul eax, ecx         */
		0x0F, 0xB6, 0xC1,                         /* movzx eax, cl         */
		0xC1, 0xE0, 0x03,                         /* shl eax, 3            */
		0xF7, 0xC1, 0xFF, 0x00, 0x00, 0x00,       /* test ecx, 0xff        */
		0xF6, 0xC1, 0x0F,                         /* test cl, 0x0f         */
		0xF7, 0xD0,                               /* not eax               */
		0x69, 0xC0, 0x10, 0x27, 0x00, 0x00,       /* imul eax, eax, 10000  */
		0x6B, 0xC0, 0x03,                         /* imul eax, eax, 3      */
		0x81, 0xC1, 0x00, 0x10, 0x00, 0x00,       /* add ecx, 0x1000       */
		0x66, 0x81, 0xC1, 0x01, 0x00,             /* add cx, 1             */
		0x0F, 0x44, 0xC1,                         /* cmove eax, ecx        */
		0x0F, 0x90, 0xC0,                         /* seto al               */
		0x90,                                     /* nop                   */
		0xF3, 0x90,                               /* pause                 */
		0x0F, 0x1F, 0x44, 0x00, 0x00,             /* nop dword [eax+eax]   */
		0xD9, 0xE8,                               /* fld1                  */
		0xDD, 0xD8,                               /* fstp st(0)            */
		0x0F, 0x57, 0xC0,                         /* xorps xmm0, xmm0      */
		0x66, 0x0F, 0x6F, 0xC8,                   /* movdqa xmm1, xmm0     */
		0x8B, 0x15, 0x00, 0xA0, 0x04, 0x08,       /* mov edx, [0x0804A000] */
		0x42,                                     /* inc edx               */
		0xCD, 0x30,                               /* int 0x30              */
	};
	const uint32_t fault_off = sizeof code - 9;
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK};
	struct sim_engine_stats st;
	struct sim_event ev;

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	ev = run_to(f->t.e, &r, VA_CODE, SIM_EV_PAGE_FAULT);
	assert_int_equal(ev.eip, VA_CODE + fault_off);
	assert_int_equal(ev.cr2, VA_DATA);
	assert_int_equal(ev.icount, 24);
	OK(tm_map(&f->m, &f->t, VA_DATA, tm_alloc(&f->m), USER_RO));
	ev = run_to(f->t.e, &r, ev.eip, SIM_EV_SYSCALL);
	assert_int_equal(ev.icount, 3);
	assert_int_equal(r.edx, 1);
	sim_engine_get_stats(f->t.e, &st);
	assert_int_equal(st.icount, 27);
	assert_int_equal(st.midblock_stops, 1);
	assert_int_equal(st.inexact, 0);
	assert_int_equal(st.blocks_unchecked, 0);
}

static void test_sim_engine_syscall_round_trip(void **state)
{
	static const uint8_t code[] = {
		0xB8, 0x07, 0x00, 0x00, 0x00,       /* 0: mov eax, 7            */
		0xCD, 0x30,                         /* 5: int 0x30              */
		0x6B, 0xC0, 0x06,                   /* 7: imul eax, eax, 6      */
		0xCD, 0x30,                         /* A: int 0x30              */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK};
	struct sim_event ev;

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	ev = run_to(f->t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	assert_int_equal(ev.vector, SIM_SYSCALL_VECTOR);
	assert_true(ev.software);
	assert_int_equal(ev.eip, VA_CODE + 7);
	assert_int_equal(r.eax, 7);
	r.eax = 100; /* the "kernel" returns its result in EAX */
	ev = run_to(f->t.e, &r, ev.eip, SIM_EV_SYSCALL);
	assert_int_equal(ev.eip, VA_CODE + 0xC);
	assert_int_equal(r.eax, 600);
}

static void test_sim_engine_budget_stops_at_block_boundary(void **state)
{
	static const uint8_t code[] = {
		0xB9, 0x0A, 0x00, 0x00, 0x00,       /* 0: mov ecx, 10           */
		0x01, 0xC8,                         /* 5: add eax, ecx          */
		0x49,                               /* 7: dec ecx               */
		0x75, 0xFB,                         /* 8: jnz 5                 */
		0xCD, 0x30,                         /* A: int 0x30              */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK, .eip = VA_CODE};
	struct sim_event ev;
	uint64_t total = 0;
	unsigned stops = 0;

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	/* Budget 5: the 4-instruction first block, then one 3-block per run
	 * (a block larger than what is left still runs if it is the first). */
	for (;;) {
		OK(sim_engine_run(f->t.e, &r, 5, &ev));
		total += ev.icount;
		if (ev.kind == SIM_EV_SYSCALL)
			break;
		assert_int_equal(ev.kind, SIM_EV_BUDGET);
		assert_true(ev.icount <= 5);
		assert_int_equal(ev.eip, VA_CODE + 5);
		stops++;
	}
	assert_int_equal(total, 1 + 10 * 3 + 1);
	assert_int_equal(r.eax, 55);
	assert_int_equal(stops, 9);
}

/* A run longer than the engine's check interval is cut into parts (to
 * look at the translation cache between them): the guest must not tell,
 * neither in what it computes nor in what the run counts. */
static void test_sim_engine_long_run_cut_unseen(void **state)
{
	static const uint8_t code[] = {
		0xB9, 0x40, 0x0D, 0x03, 0x00,       /* 0: mov ecx, 200000       */
		0x01, 0xC8,                         /* 5: add eax, ecx          */
		0x49,                               /* 7: dec ecx               */
		0x75, 0xFB,                         /* 8: jnz 5                 */
		0xCD, 0x30,                         /* A: int 0x30              */
	};
	const uint32_t n = 200000;
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK, .eip = VA_CODE};
	struct sim_engine_stats st;
	struct sim_event ev;

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	/* A budget stop inside a part: the first block is 4 instructions,
	 * the loop's 3, so 250,000 is met exactly after 83,333 rounds. */
	OK(sim_engine_run(f->t.e, &r, 250000, &ev));
	assert_int_equal(ev.kind, SIM_EV_BUDGET);
	assert_int_equal(ev.icount, 250000);
	assert_int_equal(ev.eip, VA_CODE + 5);
	assert_int_equal(r.ecx, n - 83333);
	/* The rest in one run, to the system call. */
	OK(sim_engine_run(f->t.e, &r, UINT64_MAX, &ev));
	assert_int_equal(ev.kind, SIM_EV_SYSCALL);
	assert_int_equal(ev.icount, 3 * (n - 83333) + 1);
	assert_int_equal(r.eax, (uint32_t)((uint64_t)n * (n + 1) / 2));
	sim_engine_get_stats(f->t.e, &st);
	assert_int_equal(st.icount, 3 * n + 2);
	assert_true(st.run_cuts >= 5);
}

/*
 * A subroutine rewritten in place to other instructions of the same total
 * length: Unicorn translates it again, and the count must follow.  The
 * engine once kept the count learned for the old code, so a guest could
 * swap a long instruction for as many short ones as fit, unaccounted:
 * here it counted 8 instructions for 9.
 */
static void test_sim_engine_icount_code_rewritten_in_place(void **state)
{
	enum { SUB = 0x40 };
	static const uint8_t code[] = {
		0xE8, SUB - 5, 0x00, 0x00, 0x00,    /* 0: call SUB              */
		0x66, 0xC7, 0x05,                   /* 5: mov word [SUB], 0x9090 */
		(uint8_t)(VA_DATA2 + SUB), (uint8_t)((VA_DATA2 + SUB) >> 8),
		(uint8_t)((VA_DATA2 + SUB) >> 16), (uint8_t)((VA_DATA2 + SUB) >> 24),
		0x90, 0x90,
		0xE8, SUB - 19, 0x00, 0x00, 0x00,   /* E: call SUB              */
		0xCD, 0x30,                         /* 13: int 0x30             */
	};
	static const uint8_t sub[] = {
		0x31, 0xC0,                         /* SUB: xor eax, eax, later */
		0xC3,                               /*      nop; nop; then ret  */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.eax = 7, .esp = VA_STACK};
	struct sim_engine_stats st;
	struct sim_event ev;
	uint32_t pfn = tm_alloc(&f->m), stack = tm_alloc(&f->m);

	OK(tm_map(&f->m, &f->t, VA_DATA2, pfn, USER_RW));
	OK(tm_map(&f->m, &f->t, VA_STACK - SIM_PAGE_SIZE, stack, USER_RW));
	tm_put(&f->m, pfn, 0, code, sizeof code);
	tm_put(&f->m, pfn, SUB, sub, sizeof sub);

	ev = run_to(f->t.e, &r, VA_DATA2, SIM_EV_SYSCALL);
	assert_int_equal(ev.eip, VA_DATA2 + 0x15);
	assert_int_equal(r.eax, 0);                /* the first call ran xor */
	assert_int_equal(word_at(&f->m, pfn, SUB), 0x00C39090u);
	/* call, xor, ret, mov, call, nop, nop, ret, int 0x30 */
	assert_int_equal(ev.icount, 9);
	sim_engine_get_stats(f->t.e, &st);
	assert_int_equal(st.blocks_unchecked, 0);
	assert_true(st.blocks_relearned >= 1);
}

/* Code that rewrites itself is translated again every round; past a
 * sixteenth of the translation cache the engine flushes it and gives the
 * memory back, so that the guest cannot make the host hold the 1 GiB the
 * flush zeroes (nor crash it in 2.0.1's reuse of a full cache). */
static void test_sim_engine_selfmod_cache_given_back(void **state)
{
	enum { ADDS = 200, ROUNDS = 20000 };
	static uint8_t code[16 + 3 * ADDS + 16];
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK, .eip = VA_DATA2};
	struct sim_engine_stats st;
	struct sim_event ev;
	uint32_t pfn = tm_alloc(&f->m), at = 0, loop;

	OK(tm_map(&f->m, &f->t, VA_DATA2, pfn, USER_RW));
	code[at++] = 0xB9;                          /* mov ecx, ROUNDS       */
	memcpy(&code[at], &(uint32_t){ ROUNDS }, 4);
	at += 4;
	loop = at;
	code[at++] = 0xC6;                          /* mov byte [imm], 1:    */
	code[at++] = 0x05;                          /* the first add's imm8, */
	memcpy(&code[at], &(uint32_t){ VA_DATA2 + loop + 7 + 2 }, 4);
	at += 4;                                    /* the same, rewritten   */
	code[at++] = 0x01;
	for (int i = 0; i < ADDS; i++) {            /* add eax, 1            */
		code[at++] = 0x83;
		code[at++] = 0xC0;
		code[at++] = 0x01;
	}
	code[at++] = 0x49;                          /* dec ecx               */
	code[at++] = 0x0F;                          /* jnz loop              */
	code[at++] = 0x85;
	memcpy(&code[at], &(int32_t){ (int32_t)loop - (int32_t)(at + 4) }, 4);
	at += 4;
	code[at++] = 0xCD;                          /* int 0x30              */
	code[at++] = 0x30;
	assert_true(at <= sizeof code);
	tm_put(&f->m, pfn, 0, code, at);

	OK(sim_engine_run(f->t.e, &r, UINT64_MAX, &ev));
	assert_int_equal(ev.kind, SIM_EV_SYSCALL);
	assert_int_equal(r.eax, ADDS * ROUNDS);
	sim_engine_get_stats(f->t.e, &st);
	print_message("translation cache: %llu flushes, %llu MiB resident\n",
	              (unsigned long long)st.tcache_flushes,
	              (unsigned long long)(st.tcache_resident >> 20));
	assert_true(st.tcache_flushes >= 1);
	assert_true(st.tcache_resident <= (128u << 20));
}

static void test_sim_engine_consecutive_faults_no_double_fault(void **state)
{
	static const uint8_t code[] = {
		0xBB, 0x00, 0x00, 0x00, 0x10,       /* 0: mov ebx, 0x10000000   */
		0x89, 0x03,                         /* 5: mov [ebx], eax        */
		0x81, 0xC3, 0x00, 0x10, 0x00, 0x00, /* 7: add ebx, 0x1000       */
		0x49,                               /* D: dec ecx               */
		0x75, 0xF5,                         /* E: jnz 5                 */
		0xCD, 0x30,                         /* 10: int 0x30             */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.ecx = 8, .eax = 9, .esp = VA_STACK, .eip = VA_CODE};
	struct sim_event ev;
	uint64_t total = 0;
	unsigned faults = 0;

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	for (;;) {
		OK(sim_engine_run(f->t.e, &r, UINT64_MAX, &ev));
		total += ev.icount;
		if (ev.kind == SIM_EV_SYSCALL)
			break;
		assert_int_equal(ev.kind, SIM_EV_PAGE_FAULT);
		assert_int_equal(ev.vector, 14);
		assert_int_equal(ev.eip, VA_CODE + 5);
		assert_int_equal(ev.cr2, 0x10000000u + faults * SIM_PAGE_SIZE);
		assert_int_equal(ev.error_code, SIM_PF_U | SIM_PF_W);
		OK(tm_map(&f->m, &f->t, ev.cr2, tm_alloc(&f->m), USER_RW));
		faults++;
	}
	assert_int_equal(faults, 8);
	assert_int_equal(total, 1 + 8 * 4 + 1);
}

static void test_sim_engine_user_state_survives_flush(void **state)
{
	static const uint8_t code[] = {
		0xD9, 0xE8,                         /* 0: fld1                  */
		0xCD, 0x30,                         /* 2: int 0x30              */
		0xDB, 0x1D, 0x00, 0xA0, 0x04, 0x08, /* 4: fistp dword [0x0804A000] */
		0x8C, 0xC8,                         /* A: mov eax, cs           */
		0xCD, 0x30,                         /* C: int 0x30              */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK};
	struct sim_event ev;
	uint32_t pfn = tm_alloc(&f->m);

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	OK(tm_map(&f->m, &f->t, VA_DATA, pfn, USER_RW));
	ev = run_to(f->t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	/* Both stubs park the CPL 3 state (x87 stack included) and restore it. */
	OK(sim_engine_set_cr3(f->t.e, tm_addr(f->t.pd_pfn)));
	OK(sim_engine_invlpg(f->t.e, VA_DATA));
	run_to(f->t.e, &r, ev.eip, SIM_EV_SYSCALL);
	assert_int_equal(word_at(&f->m, pfn, 0), 1);
	assert_int_equal(r.eax & 3, 3);
}

static void test_sim_engine_forget_code(void **state)
{
	static const uint8_t one[] = {
		0xB8, 0x01, 0x00, 0x00, 0x00,       /* 0: mov eax, 1            */
		0xCD, 0x30,                         /* 5: int 0x30              */
	};
	static const uint8_t two[] = {
		0xB8, 0x02, 0x00, 0x00, 0x00,       /* 0: mov eax, 2            */
		0x40,                               /* 5: inc eax               */
		0xCD, 0x30,                         /* 6: int 0x30              */
	};
	struct fixture *f = *state;
	struct sim_regs r = {.esp = VA_STACK};
	struct sim_event ev;
	uint32_t other = tm_alloc(&f->m);

	tm_put(&f->m, f->code_pfn, 0, one, sizeof one);
	tm_put(&f->m, other, 0, two, sizeof two);
	run_to(f->t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	assert_int_equal(r.eax, 1);

	/* Another frame behind the code page (rules 3, 1, then 4). */
	OK(tm_unmap(&f->m, &f->t, VA_CODE));
	OK(tm_map(&f->m, &f->t, VA_CODE, other, USER_RO));
	OK(sim_engine_forget_code(f->t.e, VA_CODE, SIM_PAGE_SIZE));
	ev = run_to(f->t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	assert_int_equal(r.eax, 3);
	assert_int_equal(ev.icount, 3);
}

static void test_sim_engine_rejects_bad_args(void **state)
{
	static const uint8_t code[] = {
		0x40,                               /* 0: inc eax               */
		0xCD, 0x30,                         /* 1: int 0x30              */
	};
	struct fixture *f = *state;
	struct sim_engine_config cfg = f->m.cfg;
	struct sim_engine *e = NULL;
	struct sim_regs r = {.esp = VA_STACK};
	struct sim_event ev;
	uint32_t pdes[SIM_KERNEL_PDES];
	uint32_t bad_pd = tm_alloc(&f->m);
	char msg[128];

	tm_put(&f->m, f->code_pfn, 0, code, sizeof code);
	assert_int_equal(sim_engine_alias(f->t.e, 0xC0000000u, 5, true), SIM_EARG);
	assert_int_equal(sim_engine_alias(f->t.e, VA_DATA + 4, 5, true), SIM_EARG);
	assert_int_equal(sim_engine_alias(f->t.e, VA_DATA, 1024, true), SIM_EARG);
	assert_int_equal(sim_engine_alias(f->t.e, VA_DATA, 1, true), SIM_EARG);
	assert_int_equal(sim_engine_forget_code(f->t.e, 0xBFFFF000u, 0x2000),
					 SIM_EARG);
	/* A page directory without the kernel half is refused, CR3 kept. */
	assert_int_equal(sim_engine_set_cr3(f->t.e, tm_addr(bad_pd)), SIM_EARG);
	assert_int_equal(sim_engine_set_cr3(f->t.e, tm_addr(f->t.pd_pfn) + 4),
					 SIM_EARG);
	assert_int_equal(sim_engine_run(f->t.e, &r, 0, &ev), SIM_EARG);
	run_to(f->t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	assert_int_equal(r.eax, 1);

	cfg.nsys = 3;
	assert_int_equal(sim_kernel_pdes(&cfg, pdes, msg, sizeof msg), SIM_EARG);
	cfg = f->m.cfg;
	cfg.phys_base = 0x80000000u;
	assert_int_equal(sim_engine_create(&cfg, &e, msg, sizeof msg), SIM_EARG);
	assert_null(e);
	cfg = f->m.cfg;
	cfg.nframes = 4096; /* more than the memfd holds */
	assert_int_equal(sim_engine_create(&cfg, &e, msg, sizeof msg), SIM_EARG);
	assert_null(e);
	/* A fresh engine cannot run before it has a CR3. */
	OK(sim_engine_create(&f->m.cfg, &e, msg, sizeof msg));
	assert_int_equal(sim_engine_run(e, &r, 10, &ev), SIM_ESTATE);
	assert_int_equal(sim_engine_invlpg(e, VA_CODE), SIM_ESTATE);
	sim_engine_destroy(e);
	sim_engine_destroy(NULL);
}

/* One system frame mapping itself, with its PTE slot in either half. */
static void run_with_one_sys_frame(uint32_t sys_pfn)
{
	static const uint8_t code[] = {
		0x8C, 0xC8,                         /* 0: mov eax, cs           */
		0xCD, 0x30,                         /* 2: int 0x30              */
	};
	struct tmach m;
	struct tm_task t;
	struct sim_regs r = {.esp = VA_STACK};
	uint32_t pfn;

	OK(tm_init(&m, 1024));
	m.cfg.nsys = 1;
	m.cfg.sys_pfn[0] = sys_pfn;
	m.next_free = sys_pfn + 1;
	OK(sim_kernel_pdes(&m.cfg, m.pdes, NULL, 0));
	OK(tm_task_init(&m, &t));
	pfn = tm_alloc(&m);
	tm_put(&m, pfn, 0, code, sizeof code);
	OK(tm_map(&m, &t, VA_CODE, pfn, USER_RO));
	run_to(t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	assert_int_equal(r.eax & 3, 3);
	OK(sim_engine_set_cr3(t.e, tm_addr(t.pd_pfn)));
	run_to(t.e, &r, VA_CODE, SIM_EV_SYSCALL);
	tm_task_fini(&t);
	tm_fini(&m);
}

static void test_sim_engine_one_sys_frame(void **state)
{
	(void)state;
	run_with_one_sys_frame(5);   /* PTE slot at 20: layout in upper half */
	run_with_one_sys_frame(700); /* PTE slot at 2800: layout in lower half */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_engine_selftest_passes),
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
		T(test_sim_engine_runs_at_ring3),
		T(test_sim_engine_two_tasks_same_va_separate_frames),
		T(test_sim_engine_shared_frame_seen_by_both),
		T(test_sim_engine_ad_bits_in_memfd),
		T(test_sim_engine_cleared_pte_faults_after_flush),
		T(test_sim_engine_write_to_readonly_faults),
		T(test_sim_engine_icount_loop_exact),
		T(test_sim_engine_icount_after_midblock_fault),
		T(test_sim_engine_syscall_round_trip),
		T(test_sim_engine_budget_stops_at_block_boundary),
		T(test_sim_engine_long_run_cut_unseen),
		T(test_sim_engine_icount_code_rewritten_in_place),
		T(test_sim_engine_selfmod_cache_given_back),
		T(test_sim_engine_consecutive_faults_no_double_fault),
		T(test_sim_engine_user_state_survives_flush),
		T(test_sim_engine_forget_code),
		T(test_sim_engine_rejects_bad_args),
#undef T
		cmocka_unit_test(test_sim_engine_one_sys_frame),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
