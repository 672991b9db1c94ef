/*
 * sim/engine.h: one Unicorn 2.0.1 engine per simulated task.
 *
 * The engine runs IA-32 guest code at CPL 3 with paging on. The emulated MMU
 * walks page tables that the host writes into "physical frames" held in one
 * memfd; it enforces P, RW and US and writes A/D back into those tables.
 * Because Debian's Unicorn 2.0.1 then accesses guest-physical == virtual
 * (upstream #1953), every user page VA -> frame N is also a host alias: memfd
 * page N mapped at (reservation + VA). See /work/shared/UNICORN-NOTES.md.
 *
 * Address layout of every engine (all addresses are 32-bit guest addresses):
 *   [0, phys_base)               user half: host aliases of user pages
 *   [phys_base, +nframes*4 KiB)  the physical window: frame N is at
 *                                phys_base + N * 4096. PDEs, PTEs and CR3
 *                                hold window addresses.
 * The kernel half of every page directory (PDEs 768..1023) must equal the
 * template from sim_kernel_pdes(): it maps the engine's system page (GDT and
 * ring-0 stubs) supervisor-only. Page tables themselves need no mapping: the
 * 2.0.1 walk reads guest-physical == window directly.
 *
 * ORDER RULES (the caller's duty; breaking them is a silent breach or a host
 * SIGSEGV inside Unicorn):
 *  1. Map:     sim_engine_alias() first, then write the PTE. If alias fails,
 *              the PTE stays absent and nothing leaked.
 *  2. Upgrade: (RO -> RW) re-alias writable first, then set PTE.RW. No flush
 *              is needed: the engine never caches a failed or read-only walk
 *              as writable.
 *  3. Revoke or downgrade: clear (or downgrade) the PTE, flush this engine's
 *              TLB (sim_engine_invlpg() or sim_engine_set_cr3()) before it
 *              runs again, and only then sim_engine_unalias() (or re-alias
 *              read-only).
 *  4. Code:    translated code is keyed by virtual address. When the frame
 *              behind a page that may hold code changes (or the host writes
 *              code into a mapped frame), call sim_engine_forget_code() for it
 *              while its new PTE is present, before the next run.
 *  5. The system frames named in the config belong to the engines: never map
 *              them to users, never hand them to the kernel model.
 *
 * Engines are not thread-safe; distinct engines may share the memfd and the
 * system frames but must run one at a time (they share the iret frame in the
 * system page, and Unicorn is single-threaded per engine anyway).
 *
 * A host SIGSEGV whose address lies inside an engine's reservation means rule
 * 3 was broken (an access through a stale TLB entry to a removed alias). The
 * engine installs no signal handler; sim_engine_owns() lets a process-wide
 * handler name the culprit.
 */
#ifndef SIM_ENGINE_H
#define SIM_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One error enum for the simulator; SIM_OK == 0. */
enum sim_err {
	SIM_OK = 0,
	SIM_EARG,   /* bad argument; nothing was changed */
	SIM_EHOST,  /* a host call (mmap, memfd) failed */
	SIM_EUC,    /* a Unicorn call failed; the engine should be destroyed */
	SIM_ESTATE, /* call not valid in this state (e.g. run before set_cr3) */
	SIM_EQUIRK, /* the engine did not behave as 2.0.1 does; destroy it */
};

/* Static text for an enum sim_err value (never NULL). */
const char *sim_strerror(int err);

#define SIM_PAGE_SIZE 4096u
#define SIM_PHYS_BASE_DEFAULT 0xC0000000u
#define SIM_MAX_FRAMES (1u << 18)  /* 1 GiB of 4 KiB frames */
#define SIM_KERNEL_PDES 256u       /* PDEs 768..1023 */
#define SIM_SYSCALL_VECTOR 0x30u   /* int 0x30 (sysenter is broken in 2.0.1) */

/* IA-32 non-PAE PDE/PTE bits (4 KiB pages only; PSE stays off). */
#define SIM_PTE_P 0x001u
#define SIM_PTE_RW 0x002u
#define SIM_PTE_US 0x004u
#define SIM_PTE_A 0x020u
#define SIM_PTE_D 0x040u

/* #PF error code bits (no fetch bit without PAE/NX). */
#define SIM_PF_P 0x1u /* 1: protection violation, 0: not present */
#define SIM_PF_W 0x2u /* 1: write access */
#define SIM_PF_U 0x4u /* 1: access from CPL 3 */

struct sim_engine;

struct sim_engine_config {
	int memfd;           /* the frames; borrowed, must outlive every engine */
	uint32_t nframes;    /* frames in memfd, 1..SIM_MAX_FRAMES */
	uint32_t phys_base;  /* window start; 0 means SIM_PHYS_BASE_DEFAULT;
							4 MiB aligned, >= 0xC0000000 */
	uint32_t sys_pfn[2]; /* system frames (see nsys) */
	unsigned nsys;       /* 1: sys_pfn[0] is both the kernel page table and
							the system page (it maps itself; the layout avoids
							its own PTE slot); 2: sys_pfn[0] is the kernel
							page table, sys_pfn[1] the system page */
	bool no_icount;      /* benchmarks only: no block hook, so icount stays 0
							and the budget is ignored */
	bool empty_block_hook; /* benchmarks only, with no_icount: a block hook
							that does nothing, to measure what Unicorn's
							call of a hook costs by itself */
};

/* Guest general registers as seen at CPL 3. */
struct sim_regs {
	uint32_t eax, ecx, edx, ebx, esp, ebp, esi, edi;
	uint32_t eip;
	uint32_t eflags; /* only CF PF AF ZF SF DF OF are taken from the caller;
						IF is forced on, IOPL/VM/TF off */
};

enum sim_event_kind {
	SIM_EV_PAGE_FAULT = 1, /* #PF raised by the MMU: eip, cr2, error_code */
	SIM_EV_SYSCALL,        /* int 0x30: eip is after the instruction */
	SIM_EV_EXCEPTION,      /* any other exception or software interrupt */
	SIM_EV_BUDGET,         /* instruction budget reached at a block boundary */
	SIM_EV_HLT,            /* the CPU stopped with no exception (halted) */
};

struct sim_event {
	enum sim_event_kind kind;
	uint32_t vector;     /* 14 for #PF, 0x30 for syscalls, else the vector */
	uint32_t eip;        /* faulting instruction, or the one after int n */
	uint32_t cr2;        /* page faults: the faulting linear address */
	uint32_t error_code; /* hardware exceptions that push one, else 0 */
	bool software;       /* raised by int n / int3 / into (eip is after it) */
	uint64_t icount;     /* guest instructions retired in this run (exact,
							unless stats.inexact grew; see sim_engine_run) */
	uint64_t cycles;     /* their P6 cycles by instruction class
							(sim_p6_insn_cycles) */
};

struct sim_engine_stats {
	uint64_t icount;        /* guest instructions retired, all runs */
	uint64_t runs;          /* calls to sim_engine_run that ran the guest */
	uint64_t blocks_learned;/* distinct (address, size) blocks seen */
	uint64_t blocks_unchecked; /* blocks whose length decoding disagreed
							   with Unicorn's icount (should stay 0) */
	uint64_t blocks_relearned; /* known blocks counted again because
							   Unicorn translated them again (code
							   rewritten, or its cache flushed) */
	uint64_t midblock_stops;/* exceptions that needed the over-count fix */
	uint64_t inexact;       /* fixes that could not be made exact */
	uint64_t stub_runs;     /* ring-0 stub executions (TLB flushes) */
	uint64_t tcache_flushes;/* translation-cache flushes kpsim made
							   (engine.c, "The translation cache") */
	uint64_t run_cuts;      /* stops inside runs to check that cache */
	uint64_t tcache_resident; /* bytes of that cache in host memory now
							   (0 if the engine did not find it) */
};

/*
 * Computes the kernel half of every page directory for cfg: pdes[i] is PDE
 * 768 + i. Every page directory given to sim_engine_set_cr3() must hold
 * exactly these values in PDEs 768..1023 (the MMU may set their A bits).
 * Returns SIM_OK, or SIM_EARG (with msg) for a bad cfg; pdes is then untouched.
 */
int sim_kernel_pdes(const struct sim_engine_config *cfg,
					uint32_t pdes[SIM_KERNEL_PDES], char *msg, size_t msglen);

/*
 * Creates an engine: reserves 4 GiB of host address space (PROT_NONE,
 * MAP_NORESERVE) registered with one uc_mem_map_ptr, maps the memfd as the
 * physical window, writes the GDT, ring-0 stubs and kernel page table into
 * the system frames (idempotent: every engine writes the same bytes), loads
 * ring-0 segments and turns paging on. The CPU is left at CPL 0 with no CR3:
 * call sim_engine_set_cr3() before sim_engine_run().
 * Returns SIM_OK and *out, or an error with msg filled and *out == NULL
 * (everything allocated is released).
 */
int sim_engine_create(const struct sim_engine_config *cfg,
					  struct sim_engine **out, char *msg, size_t msglen);

/* Releases everything the engine owns (not the memfd). Accepts NULL. */
void sim_engine_destroy(struct sim_engine *e);

/* Text of the engine's last error; valid until the next call on e. */
const char *sim_engine_errmsg(const struct sim_engine *e);

/* Window (guest-physical) address of frame pfn: phys_base + pfn * 4096. */
uint32_t sim_engine_frame_addr(const struct sim_engine *e, uint32_t pfn);

/* True if host address p lies inside e's 4 GiB reservation. */
bool sim_engine_owns(const struct sim_engine *e, const void *p);

/*
 * Loads CR3 (the window address of a page directory) through the ring-0
 * stub "mov cr3, eax; hlt", which flushes the whole TLB; calling it with the
 * current CR3 is the full TLB flush. Checks first that cr3 is a frame of the
 * window and that its PDEs 768..1023 match the template (ignoring A bits).
 * Returns SIM_OK; SIM_EARG (nothing changed); SIM_EUC/SIM_EQUIRK if the stub
 * failed (destroy the engine).
 */
int sim_engine_set_cr3(struct sim_engine *e, uint32_t cr3);

/*
 * Flushes the TLB entry for va with the ring-0 stub "invlpg [eax]; hlt".
 * Returns SIM_OK; SIM_ESTATE without a CR3; SIM_EUC/SIM_EQUIRK if the stub
 * failed (destroy the engine).
 */
int sim_engine_invlpg(struct sim_engine *e, uint32_t va);

/*
 * Maps memfd frame pfn at reservation + va (MAP_SHARED|MAP_FIXED), read-only
 * unless writable. va must be page aligned and below 0xC0000000; pfn below
 * nframes. Replaces any previous alias at va. Returns SIM_OK; SIM_EARG or
 * SIM_EHOST (the previous alias, if any, is then unchanged or PROT_NONE;
 * the PTE must not be written).
 */
int sim_engine_alias(struct sim_engine *e, uint32_t va, uint32_t pfn,
					 bool writable);

/*
 * Replaces the alias at va by PROT_NONE anonymous memory (never munmap inside
 * the reservation: the hole could be reused by the host). The PTE must
 * already be cleared and the TLB flushed (rule 3). Returns SIM_OK, SIM_EARG
 * or SIM_EHOST.
 */
int sim_engine_unalias(struct sim_engine *e, uint32_t va);

/*
 * Drops translated code and the engine's instruction-count cache for
 * [va, va + len) (rule 4). The pages' PTEs must be present, else Unicorn
 * silently keeps the code. Returns SIM_OK, SIM_EARG or SIM_EUC.
 */
int sim_engine_forget_code(struct sim_engine *e, uint32_t va, uint32_t len);

/*
 * Runs the guest at CPL 3 from regs until an event, and stores the event in
 * *ev and the registers at the event in *regs (regs->eip == ev->eip).
 * budget (>= 1) bounds the guest instructions of this run: the engine runs
 * whole translation blocks and stops before the first block that would take
 * the count past budget (at least one block always runs).
 *
 * Instruction counts are exact: a block hook adds each block's instruction
 * count up front; when an exception stops the guest inside a block, the
 * instructions not retired are taken off again (see engine.c, "Counting").
 * After every hardware exception the engine resets QEMU's "previous
 * exception" field, so consecutive faults are never reported as #DF.
 *
 * Returns SIM_OK; SIM_EARG (nothing ran); SIM_ESTATE without a CR3;
 * SIM_EUC/SIM_EQUIRK on engine failure (regs unspecified; destroy it).
 */
int sim_engine_run(struct sim_engine *e, struct sim_regs *regs,
				   uint64_t budget, struct sim_event *ev);

/* Copies the engine's counters, and measures tcache_resident (a mincore
 * over the 1 GiB cache: for tests and diagnostics, not a hot path). */
void sim_engine_get_stats(const struct sim_engine *e,
						  struct sim_engine_stats *st);

/*
 * P6 (Pentium II) cycles of the instruction in p[0, len) by its class
 * (sim/p6cost.c documents the table and its sources); at least 1, except 0
 * for int n, whose trap the kernel charges.
 */
unsigned sim_p6_insn_cycles(const uint8_t *p, unsigned len);

/*
 * Start-up self-test: builds a private memfd and engine and checks every
 * engine behaviour the simulator relies on (see engine.c, "Self-test").
 * Returns true, or false with a plain sentence in why (e.g. when a newer
 * Unicorn translates addresses). Leaves no state behind.
 */
bool sim_engine_selftest(char *why, size_t len);

#endif
