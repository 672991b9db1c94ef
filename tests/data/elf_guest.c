/*
 * A minimal static i386 guest for the loader's real-binary test. It has
 * code, read-only data, initialised data and bss, so the linker emits every
 * kind of segment the loader must handle; it never runs here.
 */

const char sim_elf_guest_marker[] = "kpsim-elf-guest-marker";
int sim_elf_guest_counter = 5;                 /* .data: file bytes */
static volatile unsigned char scratch[3 * 4096]; /* .bss: zero pages */

void _start(void);

void _start(void)
{
	/* volatile: keeps gcc from turning the loop into a memcpy call,
	 * which -nostdlib could not resolve. */
	for (unsigned i = 0; i < sizeof(scratch); i++)
		scratch[i] = (unsigned char)sim_elf_guest_marker[
			i % sizeof(sim_elf_guest_marker)] +
			(unsigned char)sim_elf_guest_counter;
	for (;;)
		__asm__ volatile("hlt");
}
