/*
 * libFuzzer target: the ELF loader (sim/elf_image.c) on any bytes; an
 * image it accepts is walked page by page as a task's pager would.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "sim.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t page[SIM_ELF_PAGE_SIZE];
	struct sim_elf *img;
	char msg[SIM_ELF_MSG_SIZE];

	if (sim_elf_load_buffer(data, size, &img, msg, sizeof msg) !=
	    SIM_ELF_OK)
		return 0;
	for (size_t i = 0; i < sim_elf_segment_count(img); i++) {
		const struct sim_elf_segment *s = sim_elf_segment(img, i);
		uint64_t end = (uint64_t)s->vaddr + s->memsz;

		if (end > SIM_ELF_USER_LIMIT || s->vaddr < SIM_ELF_USER_MIN)
			abort();        /* the loader promised otherwise */
		/* At most 64 pages a segment: the loader is the target. */
		for (uint64_t va = s->vaddr & ~0xfffull, k = 0;
		     va < end && k < 64; va += SIM_ELF_PAGE_SIZE, k++)
			sim_elf_page(img, (uint32_t)va, page);
	}
	sim_elf_destroy(img);
	return 0;
}
