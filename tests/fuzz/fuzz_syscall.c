/*
 * libFuzzer target: the guest system-call layer (sim/syscall.c).  A
 * machine runs the bundled hello and linuxlike tasks; the input is a
 * series of system calls, each its seven registers at `int 0x30` (EAX,
 * EBX, ECX, EDX, ESI, EDI, EBP) and which ready thread makes it, handed
 * to the machine as its trap would.  Whatever the registers say, the
 * machine must answer with an error code or do the call, and the model
 * must stay whole.  The guests then run for a short while, to meet what
 * the calls changed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bundle.h"
#include "machine_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct sim_elf *img[2];

static const struct sim_elf *find(void *ctx, const char *name)
{
	(void)ctx;
	if (strcmp(name, "hello") == 0)
		return img[0];
	if (strcmp(name, "linuxlike") == 0)
		return img[1];
	return NULL;
}

static uint32_t word(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sim_machine_config c = sim_machine_config_default(1024);
	struct sim_machine *m;
	char why[320], *av[] = { "hello", NULL }, *lv[] = { "linuxlike", NULL };
	km_thread_t th;

	if (img[0] == NULL) {
		const struct kps_bundled *h = kps_bundled_find("hello");
		const struct kps_bundled *l = kps_bundled_find("linuxlike");
		char msg[SIM_ELF_MSG_SIZE];

		if (sim_elf_load_buffer(h->elf, h->size, &img[0], msg,
		                        sizeof msg) != SIM_ELF_OK ||
		    sim_elf_load_buffer(l->elf, l->size, &img[1], msg,
		                        sizeof msg) != SIM_ELF_OK)
			abort();
	}
	c.kmem = (size && data[0] & 1) ? KM_KMEM_KPAGER : KM_KMEM_POOL;
	c.kpager_args = "frames=48";
	c.find = find;
	c.max_cycles = 2000000;
	if (sim_machine_create(&c, &m, why, sizeof why) != SIM_OK)
		abort();
	if (sim_machine_spawn(m, img[0], "hello", 1, av, &th, why,
	                      sizeof why) != SIM_OK ||
	    sim_machine_spawn(m, img[1], "linuxlike", 1, lv, &th, why,
	                      sizeof why) != SIM_OK)
		goto out;
	for (size_t off = 1; off + 29 <= size; off += 29) {
		const uint8_t *p = data + off;
		km_thread_t pick = KM_NO_THREAD;
		uint32_t n = p[28], seen = 0;
		struct sim_regs *r;

		/* The (n mod ready)-th ready thread makes the call. */
		for (km_thread_t t = 1; t < m->max_threads; t++)
			if (m->thread[t].st == MT_READY)
				seen++;
		if (seen == 0)
			break;
		n %= seen;
		for (km_thread_t t = 1; t < m->max_threads; t++)
			if (m->thread[t].st == MT_READY && n-- == 0) {
				pick = t;
				break;
			}
		r = &m->thread[pick].regs;
		r->eax = word(p);
		r->ebx = word(p + 4);
		r->ecx = word(p + 8);
		r->edx = word(p + 12);
		r->esi = word(p + 16);
		r->edi = word(p + 20);
		r->ebp = word(p + 24);
		m->current = pick;
		sim_m_syscall(m, pick);
		m->current = KM_NO_THREAD;
		if (m->fatal != SIM_OK)
			abort();        /* an engine or host failure */
		if (!km_check(m->km, why, sizeof why)) {
			fprintf(stderr, "km_check: %s\n", why);
			abort();
		}
	}
	/* Let the guests meet what the calls did (killed guests are
	 * fine; an engine failure is not). */
	if (sim_machine_run(m, why, sizeof why) != SIM_OK &&
	    m->fatal != SIM_OK) {
		fprintf(stderr, "machine: %s\n", why);
		abort();
	}
	if (!km_check(m->km, why, sizeof why)) {
		fprintf(stderr, "km_check after running: %s\n", why);
		abort();
	}
out:
	sim_machine_destroy(m);
	return 0;
}
