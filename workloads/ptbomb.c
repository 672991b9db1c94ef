/*
 * ptbomb: one page in each of N 4 MiB regions (default 64), the cheapest
 * way to make the kernel allocate page tables and node tables: the
 * Scout-style attacker of the paper.  Usage: ptbomb [REGIONS].
 */
#include "kps.h"

#define BASE 0x10000000u
#define REGION (4u << 20)

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? kps_atou(argv[1]) : 64;
	uint32_t done = 0;

	if (n == 0 || n > (0xB0000000u - BASE) / REGION) {
		kps_puts("ptbomb: REGIONS must be 1 .. 640\n");
		return 2;
	}
	kps_marker(1);
	for (uint32_t i = 0; i < n; i++) {
		*(volatile uint32_t *)(BASE + i * REGION) = i;
		done++;
	}
	kps_marker(2);
	kps_printf("ptbomb: %u regions touched\n", done);
	return 0;
}
