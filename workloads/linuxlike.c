/*
 * linuxlike: a Linux 2.4 process layout: text and data at 0x08048000, a
 * "shared library" (its code and data) at 0x40000000, the stack below
 * 0xC0000000 and the kernel's UTCB area at 0xBF000000.  It calls into the
 * library, grows a heap after its bss and uses some stack, so its page
 * tables look like the paper's init and bash.
 */
#include "kps.h"

#define LIB __attribute__((section(".lib_text"), noinline))
#define LIBDATA __attribute__((section(".lib_data")))

LIBDATA volatile uint32_t lib_state[2048] = { 1 };

LIB uint32_t lib_work(uint32_t n)
{
	uint32_t s = 0;

	for (uint32_t i = 0; i < n; i++) {
		lib_state[(i * 97) % 2048] += i;
		s += lib_state[(i * 31) % 2048];
	}
	return s;
}

static uint8_t heap[64 * 1024];

/* Uses `depth` KiB of stack. */
static uint32_t recurse(uint32_t depth)
{
	volatile uint8_t frame[1024];

	frame[0] = (uint8_t)depth;
	frame[1023] = frame[0];
	return depth ? recurse(depth - 1) + frame[1023] : 0;
}

int main(void)
{
	uint32_t s = lib_work(5000), utcb;
	volatile uint32_t *u;

	/* The UTCB is the kernel's mapping: using it takes no fault. */
	kps_myid2(0, &utcb);
	u = (volatile uint32_t *)utcb;
	u[0] = 0x1234;
	s += u[0] == 0x1234;

	for (uint32_t i = 0; i < sizeof heap; i += 4096)
		heap[i] = (uint8_t)i;
	s += recurse(24);
	kps_printf("linuxlike: lib at %x, heap at %x, stack near %x, utcb at "
	           "%x, sum %u\n", (uint32_t)lib_work, (uint32_t)heap,
	           (uint32_t)&s, utcb, s);
	return 0;
}
