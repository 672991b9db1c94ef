/*
 * test_machine.h: a tiny host-side "kernel" for engine tests and benchmarks:
 * one memfd of frames, a bump frame allocator, and per-task page
 * directories built by hand, following engine.h's order rules.
 */
#ifndef TEST_MACHINE_H
#define TEST_MACHINE_H

#include <stdbool.h>
#include <stdint.h>

#include "engine.h"

struct tmach {
	int fd;                      /* the frames' memfd */
	uint32_t nframes;            /* frames in it */
	uint8_t *mem;                /* host view of all frames */
	uint32_t next_free;          /* bump allocator: next unused frame */
	uint32_t pdes[SIM_KERNEL_PDES]; /* kernel half for every PD */
	struct sim_engine_config cfg;
};

struct tm_task {
	struct sim_engine *e;
	uint32_t pd_pfn; /* its page directory */
};

/* Frames 0 and 1 become the system frames. Returns SIM_OK or an error. */
int tm_init(struct tmach *m, uint32_t nframes);
void tm_fini(struct tmach *m);
/* Next zeroed frame; aborts the test program when out of frames. */
uint32_t tm_alloc(struct tmach *m);
uint8_t *tm_frame(struct tmach *m, uint32_t pfn);
uint32_t tm_addr(uint32_t pfn);
/* Page directory + engine + CR3. Returns SIM_OK or the engine's error. */
int tm_task_init(struct tmach *m, struct tm_task *t);
void tm_task_fini(struct tm_task *t);
/* The PTE slot for va, creating its page table when create is set. */
uint32_t *tm_pte(struct tmach *m, struct tm_task *t, uint32_t va, bool create);
/* Alias, then PTE (rule 1). flags: SIM_PTE_* bits besides the frame. */
int tm_map(struct tmach *m, struct tm_task *t, uint32_t va, uint32_t pfn,
		   uint32_t flags);
/* PTE cleared, TLB entry flushed, then the alias removed (rule 3). */
int tm_unmap(struct tmach *m, struct tm_task *t, uint32_t va);
/* Copies guest code bytes into frame pfn at off. */
void tm_put(struct tmach *m, uint32_t pfn, uint32_t off, const void *bytes,
			uint32_t len);

#endif
