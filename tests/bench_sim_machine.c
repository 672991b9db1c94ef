/*
 * bench_sim_machine: what the machine's accounting costs in host time, and
 * how fast user page faults go.  Not a test: it prints figures.
 *   1. The same compute-bound guests ("spin N", registers only,
 *      "memspin N", loads, stores and calls, and "crc N", CRC-32 through
 *      a table, of data/machine_guest.c) under
 *      full accounting (block hook, instruction count, time slices), as
 *      `kpsim run` uses it, and on engines with no hooks at all; MIPS of
 *      each and their ratio, in one process.
 *   2. User page faults per second: the touch workload over many pages
 *      (every fault through the model, its alias and the engine), with an
 *      FCFS kpager providing kernel memory and with the in-kernel pool.
 * Usage: bench_sim_machine MACHINE_GUEST.elf [SPIN_ITERATIONS [PAGES]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bundle.h"
#include "machine.h"
#include "pagers.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Runs `argv` from img on a fresh machine; returns the host seconds of
 * the run alone and its statistics. */
static double run_once(const struct sim_elf *img, char *const argv[],
                       int argc, uint32_t frames, bool raw, bool kpager,
                       struct sim_machine_stats *st, struct km_stats *ks)
{
	struct sim_machine_config c = sim_machine_config_default(frames);
	struct sim_machine *m;
	char why[320];
	double t0, t1;

	c.raw_engine = raw;
	if (kpager) {
		c.kmem = KM_KMEM_KPAGER;
		c.kpager = &kp_fcfs_ops;
		c.kpager_args = "frames=4096";
	}
	if (sim_machine_create(&c, &m, why, sizeof why) != SIM_OK ||
	    sim_machine_spawn(m, img, argv[0], argc, argv, NULL, why,
	                      sizeof why) != SIM_OK) {
		fprintf(stderr, "bench_sim_machine: %s\n", why);
		exit(1);
	}
	t0 = now_s();
	if (sim_machine_run(m, why, sizeof why) != SIM_OK) {
		fprintf(stderr, "bench_sim_machine: run: %s\n", why);
		exit(1);
	}
	t1 = now_s();
	sim_machine_stats(m, st);
	km_stats(sim_machine_model(m), ks);
	sim_machine_destroy(m);
	return t1 - t0;
}

int main(int argc, char **argv)
{
	const struct kps_bundled *b = kps_bundled_find("touch");
	struct sim_elf *guest, *touch;
	struct sim_machine_stats full, raw, tst;
	struct km_stats ks;
	char msg[SIM_ELF_MSG_SIZE], spin_n[32], pages_s[32];
	char *spin_argv[] = { "guest", "spin", spin_n, NULL };
	char *touch_argv[] = { "touch", pages_s, NULL };
	double t_full, t_raw, t_touch, mips_full, mips_raw;

	if (argc < 2) {
		fprintf(stderr, "usage: %s MACHINE_GUEST.elf [SPIN [PAGES]]\n",
		        argv[0]);
		return 2;
	}
	snprintf(spin_n, sizeof spin_n, "%s", argc > 2 ? argv[2] : "20000000");
	snprintf(pages_s, sizeof pages_s, "%s", argc > 3 ? argv[3] : "20000");
	if (sim_elf_load_path(argv[1], &guest, msg, sizeof msg) != SIM_ELF_OK ||
	    sim_elf_load_buffer(b->elf, b->size, &touch, msg, sizeof msg) !=
	    SIM_ELF_OK) {
		fprintf(stderr, "bench_sim_machine: %s\n", msg);
		return 1;
	}
	/* The raw engine counts nothing: the full run's count, which is
	 * exact and the same program, gives both rates. */
	for (int k = 0; k < 3; k++) {
		static const char *const mode[] = { "spin", "memspin", "crc" };

		spin_argv[1] = (char *)mode[k];
		t_full = run_once(guest, spin_argv, 3, 4096, false, false, &full,
		                  &ks);
		t_raw = run_once(guest, spin_argv, 3, 4096, true, false, &raw,
		                 &ks);
		mips_full = (double)full.guest_insns / t_full / 1e6;
		mips_raw = (double)full.guest_insns / t_raw / 1e6;
		printf("compute-bound guest (%s %s): %llu instructions\n",
		       spin_argv[1], spin_n,
		       (unsigned long long)full.guest_insns);
		printf("  full accounting (kpsim run): %8.3f s  %7.1f MIPS  "
		       "(%llu engine runs)\n", t_full, mips_full,
		       (unsigned long long)full.engine_runs);
		printf("  raw engine, no hooks:        %8.3f s  %7.1f MIPS  "
		       "(%llu engine runs)\n", t_raw, mips_raw,
		       (unsigned long long)raw.engine_runs);
		printf("  ratio full / raw:            %8.3f\n",
		       mips_full / mips_raw);
	}

	for (int k = 0; k < 2; k++) {
		t_touch = run_once(touch, touch_argv, 2, 65536, false, k == 0,
		                   &tst, &ks);
		printf("user page faults (touch %s, %s): %llu faults in %.3f s: "
		       "%.0f faults/s (%.1f us each, run included; %llu kernel "
		       "page faults)\n", pages_s,
		       k == 0 ? "fcfs kpager" : "in-kernel pool",
		       (unsigned long long)ks.ufaults, t_touch,
		       (double)ks.ufaults / t_touch,
		       1e6 * t_touch / (double)ks.ufaults,
		       (unsigned long long)ks.kfaults);
	}
	sim_elf_destroy(guest);
	sim_elf_destroy(touch);
	return 0;
}
