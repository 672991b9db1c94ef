/*
 * touch: touches N pages of a fresh region, densely (every page) or
 * sparsely (one page in 16), reading or writing, between markers 1 and 2.
 * Usage: touch [PAGES [dense|sparse [read|write]]]; default 64 dense write.
 * Each page is a user page fault; a new 4 MiB region also needs a page
 * table and a node table.
 */
#include "kps.h"

#define REGION 0x20000000u
#define SPARSE_STRIDE 16u

int main(int argc, char **argv)
{
	uint32_t pages = argc > 1 ? kps_atou(argv[1]) : 64;
	uint32_t stride = argc > 2 && strcmp(argv[2], "sparse") == 0 ?
	                  SPARSE_STRIDE : 1;
	int write = !(argc > 3 && strcmp(argv[3], "read") == 0);
	uint32_t sum = 0;
	uint64_t t0, t1;

	if (pages == 0 || (uint64_t)pages * stride * 4096 > 0x40000000u) {
		kps_puts("touch: PAGES must be 1 .. 1 GiB / stride\n");
		return 2;
	}
	t0 = kps_cycles();
	kps_marker(1);
	for (uint32_t i = 0; i < pages; i++) {
		volatile uint32_t *p = (uint32_t *)(REGION + i * stride * 4096);

		if (write)
			*p = i;
		else
			sum += *p;
	}
	kps_marker(2);
	t1 = kps_cycles();
	kps_printf("touch: %u pages %s %s, %llu cycles (sum %u)\n", pages,
	           stride == 1 ? "dense" : "sparse", write ? "write" : "read",
	           (unsigned long long)(t1 - t0), sum);
	return 0;
}
