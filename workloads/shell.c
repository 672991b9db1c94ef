/*
 * shell: a login shell's day in miniature.  It starts a program (by
 * default linuxlike, a Linux 2.4 process) N times, one every GAP cycles,
 * the way a user runs commands one after another; each new process needs
 * its own page tables, node tables, mapping nodes and TCBs when it starts.
 * Beside a page-table bomb it shows whether a kpager policy lets a
 * newcomer get kernel memory the bomb got first.
 * Usage: shell [N [GAP [PROGRAM]]], default 8, 1000000, linuxlike.
 */
#include "kps.h"

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? kps_atou(argv[1]) : 8;
	uint32_t gap = argc > 2 ? kps_atou(argv[2]) : 1000000;
	const char *prog = argc > 3 ? argv[3] : "linuxlike";
	uint32_t started = 0;

	if (n == 0 || n > 100) {
		kps_puts("shell: N must be 1 .. 100\n");
		return 2;
	}
	for (uint32_t i = 0; i < n; i++) {
		uint64_t until = kps_cycles() + gap;

		if (kps_task_create(prog) > 0)
			started++;
		while (kps_cycles() < until)
			kps_yield();
	}
	kps_printf("shell: started %u of %u\n", started, n);
	return started == n ? 0 : 1;
}
