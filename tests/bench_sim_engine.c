/*
 * bench_sim_engine.c: guest MIPS of a compute loop with the counting block
 * hook, with a block hook that does nothing (Unicorn's own cost of calling
 * a hook: the floor under counting) and with no hook, the cost of a demand
 * page fault handled by the host (fault, frame + alias + PTE, resume), and of an
 * int 0x30 round trip through sim_engine_run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine.h"
#include "test_machine.h"

#define VA_CODE 0x08048000u
#define VA_STACK 0x0804F000u
#define VA_HEAP 0x10000000u
#define VA_SRC 0x0804A000u
#define VA_DST 0x0804C000u /* even page numbers: "and" wraps in-page */
#define USER_RW (SIM_PTE_P | SIM_PTE_US | SIM_PTE_RW)

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what, int err, struct sim_engine *e)
{
	fprintf(stderr, "%s: %s (%s)\n", what, sim_strerror(err),
			e ? sim_engine_errmsg(e) : "");
	exit(1);
}

#define CHECK(what, call, e)                                                 \
	do {                                                                     \
		int check_err_ = (call);                                             \
		if (check_err_ != SIM_OK)                                            \
			die(what, check_err_, e);                                        \
	} while (0)

/* The engines compared: counting (the block hook kpsim runs), a block
 * hook that does nothing (what Unicorn's call of a hook costs), none. */
enum kind { COUNTED, EMPTY_HOOK, RAW, KINDS };

/* One task with its code page, on an engine of that kind. */
static void make_task(struct tmach *m, struct tm_task *t, enum kind k,
					  const uint8_t *code, uint32_t len)
{
	uint32_t pfn;

	m->cfg.no_icount = k != COUNTED;
	m->cfg.empty_block_hook = k == EMPTY_HOOK;
	CHECK("task", tm_task_init(m, t), t->e);
	pfn = tm_alloc(m);
	tm_put(m, pfn, 0, code, len);
	CHECK("map code", tm_map(m, t, VA_CODE, pfn, SIM_PTE_P | SIM_PTE_US),
		  t->e);
}

/* Seconds for one run of a loop (n iterations) to its syscall. */
static double time_loop(struct tm_task *t, uint32_t n)
{
	struct sim_regs r = {.ecx = n, .esi = VA_SRC, .edi = VA_DST,
						 .esp = VA_STACK, .eip = VA_CODE};
	struct sim_event ev;
	double t0 = now();

	CHECK("run", sim_engine_run(t->e, &r, UINT64_MAX, &ev), t->e);
	if (ev.kind != SIM_EV_SYSCALL)
		die("loop did not end in its syscall", SIM_EQUIRK, t->e);
	return now() - t0;
}

/* The same loop on each kind of engine, alternated, best of 3 each. */
static void bench_mips(const char *name, const uint8_t *code, uint32_t len,
					   double insns_per_iter, uint32_t n)
{
	static const char *const label[KINDS] = {
		"with block-hook count:", "empty block hook:", "raw engine (no hooks):"
	};
	const double insns = insns_per_iter * n + 1;
	struct tmach m;
	struct tm_task t[KINDS];
	double best[KINDS];

	CHECK("tm_init", tm_init(&m, 256), NULL);
	for (int k = 0; k < KINDS; k++) {
		make_task(&m, &t[k], (enum kind)k, code, len);
		CHECK("map", tm_map(&m, &t[k], VA_SRC, tm_alloc(&m), USER_RW),
			  t[k].e);
		CHECK("map", tm_map(&m, &t[k], VA_DST, tm_alloc(&m), USER_RW),
			  t[k].e);
		best[k] = 1e9;
	}
	for (int i = 0; i < 3; i++) {
		for (int k = 0; k < KINDS; k++) {
			double d = time_loop(&t[k], n);
			best[k] = d < best[k] ? d : best[k];
		}
	}
	printf("%s, %.0f guest instructions per run (best of 3):\n", name, insns);
	for (int k = KINDS - 1; k >= 0; k--)
		printf("  %-24s %7.1f MIPS  (ratio to raw %.3f)\n", label[k],
			   insns / best[k] / 1e6, best[RAW] / best[k]);
	for (int k = 0; k < KINDS; k++)
		tm_task_fini(&t[k]);
	tm_fini(&m);
}

static void bench_loops(void)
{
	static const uint8_t alu[] = {
		0x01, 0xC8,                         /* 0: add eax, ecx          */
		0x6B, 0xC0, 0x03,                   /* 2: imul eax, eax, 3      */
		0x31, 0xC2,                         /* 5: xor edx, eax          */
		0x49,                               /* 7: dec ecx               */
		0x75, 0xF6,                         /* 8: jnz 0                 */
		0xCD, 0x30,                         /* A: int 0x30              */
	};
	static const uint8_t mem[] = {
		0x8B, 0x06,                         /* 0: mov eax, [esi]        */
		0x01, 0xC2,                         /* 2: add edx, eax          */
		0x89, 0x17,                         /* 4: mov [edi], edx        */
		0x83, 0xC6, 0x04,                   /* 6: add esi, 4            */
		0x81, 0xE6, 0xFC, 0xAF, 0x04, 0x08, /* 9: and esi, 0x0804AFFC   */
		0x83, 0xC7, 0x04,                   /* F: add edi, 4            */
		0x81, 0xE7, 0xFC, 0xCF, 0x04, 0x08, /* 12: and edi, 0x0804CFFC  */
		0x49,                               /* 18: dec ecx              */
		0x75, 0xE5,                         /* 19: jnz 0                */
		0xCD, 0x30,                         /* 1B: int 0x30             */
	};
	bench_mips("ALU loop (5-instruction blocks)", alu, sizeof alu, 5,
			   40000000);
	bench_mips("load/store loop (9-instruction blocks)", mem, sizeof mem, 9,
			   20000000);
}

/*
 * Touches npages fresh pages, one store each; every #PF gets a new frame,
 * an alias and a PTE, then the guest resumes. prefault: the frames' memfd
 * pages are touched before the clock starts.
 */
static void bench_faults(uint32_t npages, bool prefault)
{
	static const uint8_t code[] = {
		0xBB, 0x00, 0x00, 0x00, 0x10,       /* 0: mov ebx, 0x10000000   */
		0x89, 0x03,                         /* 5: mov [ebx], eax        */
		0x81, 0xC3, 0x00, 0x10, 0x00, 0x00, /* 7: add ebx, 0x1000       */
		0x49,                               /* D: dec ecx               */
		0x75, 0xF5,                         /* E: jnz 5                 */
		0xCD, 0x30,                         /* 10: int 0x30             */
	};
	struct tmach m;
	struct tm_task t;
	struct sim_regs r = {.ecx = npages, .esp = VA_STACK, .eip = VA_CODE};
	struct sim_event ev;
	uint32_t faults = 0, first;
	double t0, dt;

	CHECK("tm_init", tm_init(&m, npages + 64), NULL);
	make_task(&m, &t, false, code, sizeof code);
	/* Page tables exist up front: a fault then costs one PTE write. */
	for (uint32_t va = VA_HEAP; va < VA_HEAP + npages * SIM_PAGE_SIZE;
		 va += 1024 * SIM_PAGE_SIZE)
		tm_pte(&m, &t, va, true);
	first = m.next_free;
	if (prefault)
		memset(tm_frame(&m, first), 0,
			   (size_t)(m.nframes - first) * SIM_PAGE_SIZE);
	t0 = now();
	for (;;) {
		uint32_t pfn;
		CHECK("run", sim_engine_run(t.e, &r, UINT64_MAX, &ev), t.e);
		if (ev.kind != SIM_EV_PAGE_FAULT)
			break;
		/* The "kernel": next frame (contiguous, so aliases merge into one
		 * VMA), alias first, then the PTE. */
		pfn = m.next_free++;
		CHECK("alias", sim_engine_alias(t.e, ev.cr2 & ~0xFFFu, pfn, true),
			  t.e);
		*tm_pte(&m, &t, ev.cr2, false) =
			tm_addr(pfn) | SIM_PTE_P | SIM_PTE_RW | SIM_PTE_US;
		faults++;
	}
	dt = now() - t0;
	if (ev.kind != SIM_EV_SYSCALL || faults != npages)
		die("fault loop ended oddly", SIM_EQUIRK, t.e);
	printf("demand faults (%s memfd): %u faults in %.3f s = %.2f us each, "
		   "%.0f faults/s\n", prefault ? "pre-touched" : "fresh", faults, dt,
		   dt / faults * 1e6, faults / dt);
	tm_task_fini(&t);
	tm_fini(&m);
}

static void bench_syscalls(uint32_t n)
{
	static const uint8_t code[] = {
		0xCD, 0x30, /* 0: int 0x30 */
		0xEB, 0xFC, /* 2: jmp 0    */
	};
	struct tmach m;
	struct tm_task t;
	struct sim_regs r = {.esp = VA_STACK, .eip = VA_CODE};
	struct sim_event ev;
	double t0, dt;

	CHECK("tm_init", tm_init(&m, 64), NULL);
	make_task(&m, &t, false, code, sizeof code);
	t0 = now();
	for (uint32_t i = 0; i < n; i++)
		CHECK("run", sim_engine_run(t.e, &r, UINT64_MAX, &ev), t.e);
	dt = now() - t0;
	printf("int 0x30 round trip via sim_engine_run: %.3f us\n",
		   dt / n * 1e6);
	t0 = now();
	for (uint32_t i = 0; i < n / 10; i++)
		CHECK("flush", sim_engine_set_cr3(t.e, tm_addr(t.pd_pfn)), t.e);
	dt = now() - t0;
	printf("full TLB flush (mov-cr3 stub, from CPL 3): %.3f us\n",
		   dt / (n / 10) * 1e6);
	t0 = now();
	for (uint32_t i = 0; i < n / 10; i++)
		CHECK("invlpg", sim_engine_invlpg(t.e, VA_CODE), t.e);
	dt = now() - t0;
	printf("invlpg stub (from CPL 3): %.3f us\n", dt / (n / 10) * 1e6);
	tm_task_fini(&t);
	tm_fini(&m);
}

int main(void)
{
	char why[256];

	if (!sim_engine_selftest(why, sizeof why)) {
		fprintf(stderr, "self-test failed: %s\n", why);
		return 1;
	}
	bench_loops();
	bench_faults(20000, false);
	bench_faults(20000, true);
	bench_syscalls(200000);
	return 0;
}
