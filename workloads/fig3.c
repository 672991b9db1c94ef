/*
 * fig3: the paper's complex page fault (Figure 3).  After the task has
 * touched memory (its text, stack and data), it writes once to a 4 MiB
 * region it never touched: the fault needs a page table and a node table
 * (and with a kpager, two kernel page faults).  Markers 1 and 2 bracket
 * that one store, so the fault records between them are the figure's.
 */
#include "kps.h"

#define UNTOUCHED 0x40000000u

static volatile uint32_t data_word = 1;

int main(void)
{
	data_word++;            /* the data page: a mapping node page exists */
	kps_marker(1);
	*(volatile uint32_t *)UNTOUCHED = data_word;
	kps_marker(2);
	kps_puts("fig3: one complex page fault done\n");
	return 0;
}
