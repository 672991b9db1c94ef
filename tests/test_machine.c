/* test_machine.c: the hand-built page tables behind engine tests. */
#include "test_machine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int tm_init(struct tmach *m, uint32_t nframes)
{
	char msg[256];
	int err;

	memset(m, 0, sizeof *m);
	m->nframes = nframes;
	m->fd = memfd_create("tm-frames", MFD_CLOEXEC);
	if (m->fd < 0 || ftruncate(m->fd, (off_t)nframes * SIM_PAGE_SIZE) != 0)
		return SIM_EHOST;
	m->mem = mmap(NULL, (size_t)nframes * SIM_PAGE_SIZE,
				  PROT_READ | PROT_WRITE, MAP_SHARED, m->fd, 0);
	if (m->mem == MAP_FAILED)
		return SIM_EHOST;
	m->cfg = (struct sim_engine_config){
		.memfd = m->fd, .nframes = nframes, .sys_pfn = {0, 1}, .nsys = 2};
	m->next_free = 2;
	err = sim_kernel_pdes(&m->cfg, m->pdes, msg, sizeof msg);
	if (err != SIM_OK)
		fprintf(stderr, "tm_init: %s\n", msg);
	return err;
}

void tm_fini(struct tmach *m)
{
	if (m->mem && m->mem != MAP_FAILED)
		munmap(m->mem, (size_t)m->nframes * SIM_PAGE_SIZE);
	if (m->fd >= 0)
		close(m->fd);
}

uint32_t tm_alloc(struct tmach *m)
{
	if (m->next_free >= m->nframes) {
		fprintf(stderr, "tm_alloc: out of frames\n");
		abort();
	}
	memset(tm_frame(m, m->next_free), 0, SIM_PAGE_SIZE);
	return m->next_free++;
}

uint8_t *tm_frame(struct tmach *m, uint32_t pfn)
{
	return m->mem + (size_t)pfn * SIM_PAGE_SIZE;
}

uint32_t tm_addr(uint32_t pfn)
{
	return SIM_PHYS_BASE_DEFAULT + pfn * SIM_PAGE_SIZE;
}

int tm_task_init(struct tmach *m, struct tm_task *t)
{
	char msg[256];
	int err;

	t->pd_pfn = tm_alloc(m);
	memcpy(tm_frame(m, t->pd_pfn) + 4 * 768, m->pdes, sizeof m->pdes);
	err = sim_engine_create(&m->cfg, &t->e, msg, sizeof msg);
	if (err != SIM_OK) {
		fprintf(stderr, "sim_engine_create: %s\n", msg);
		return err;
	}
	err = sim_engine_set_cr3(t->e, tm_addr(t->pd_pfn));
	if (err != SIM_OK)
		fprintf(stderr, "set_cr3: %s\n", sim_engine_errmsg(t->e));
	return err;
}

void tm_task_fini(struct tm_task *t)
{
	sim_engine_destroy(t->e);
	t->e = NULL;
}

uint32_t *tm_pte(struct tmach *m, struct tm_task *t, uint32_t va, bool create)
{
	uint32_t *pd = (uint32_t *)tm_frame(m, t->pd_pfn);
	uint32_t pde = pd[va >> 22];

	if (!(pde & SIM_PTE_P)) {
		uint32_t pt;
		if (!create)
			return NULL;
		pt = tm_alloc(m);
		pde = tm_addr(pt) | SIM_PTE_P | SIM_PTE_RW | SIM_PTE_US;
		pd[va >> 22] = pde;
	}
	return (uint32_t *)(m->mem + ((pde & ~0xFFFu) - SIM_PHYS_BASE_DEFAULT)) +
		   ((va >> 12) & 1023);
}

int tm_map(struct tmach *m, struct tm_task *t, uint32_t va, uint32_t pfn,
		   uint32_t flags)
{
	int err = sim_engine_alias(t->e, va, pfn, flags & SIM_PTE_RW);
	if (err != SIM_OK)
		return err;
	*tm_pte(m, t, va, true) = tm_addr(pfn) | flags;
	return SIM_OK;
}

int tm_unmap(struct tmach *m, struct tm_task *t, uint32_t va)
{
	uint32_t *pte = tm_pte(m, t, va, false);
	int err;

	if (pte)
		*pte = 0;
	err = sim_engine_invlpg(t->e, va);
	if (err != SIM_OK)
		return err;
	return sim_engine_unalias(t->e, va);
}

void tm_put(struct tmach *m, uint32_t pfn, uint32_t off, const void *bytes,
			uint32_t len)
{
	memcpy(tm_frame(m, pfn) + off, bytes, len);
}
