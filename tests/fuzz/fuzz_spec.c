/*
 * libFuzzer target: a kpager spec as a user types it after --kpager
 * ("name:key=value,..."), any bytes.  The spec goes the way `kpsim replay
 * --kpager SPEC` takes it: kp_policy_open, then the replay's model with
 * that kpager (its init reads the arguments and takes its frames).  Each
 * refusal must give a reason.  A spec both accept runs three clients
 * through a page-table bomb's pattern of faults and their ends, with
 * km_check after: a policy's arguments at their limits (no frames, a pool
 * of one page, every chaos rate at 1000, a base at the top of user space)
 * must leave the model whole.  Specs with '/' are skipped: they name a
 * shared object to load, which is code, not input.  (The chaos kpager
 * prints its summary to stderr as it ends; -close_fd_mask=2 quiets a long
 * run, and libFuzzer still reports a crash.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kmodel.h"
#include "pagers.h"
#include "replay.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPEC_MAX 600            /* longer than any useful spec */
#define CLIENTS 3

/* Stops the fuzzer on a broken promise: libFuzzer reports the input. */
static void broken(const char *spec, const char *what, const char *why)
{
	fprintf(stderr, "fuzz_spec: '%s': %s: %s\n", spec, what, why);
	abort();
}

static int feed(struct tr_replay *r, const struct tr_event *ev,
                const char *spec)
{
	char why[TR_WHY_SIZE];

	if (tr_replay_event(r, ev, why, sizeof why) != 0) {
		/* Out of host memory is the one acceptable stop. */
		if (strstr(why, "out of host memory") == NULL)
			broken(spec, "replay stopped", why);
		return -1;
	}
	return 0;
}

/* Client c's task and thread are ids c + 1.  Touches 4 MiB apart need a
 * page table each, as a page-table bomb's do; every third one writes. */
static int run_clients(struct tr_replay *r, const char *spec)
{
	struct tr_event ev;

	for (uint32_t c = 0; c < CLIENTS; c++) {
		memset(&ev, 0, sizeof ev);
		ev.kind = TR_TASK;
		ev.a = c + 1;
		snprintf(ev.name, sizeof ev.name, "client%u", c);
		if (feed(r, &ev, spec) != 0)
			return -1;
		memset(&ev, 0, sizeof ev);
		ev.kind = TR_THREAD;
		ev.a = c + 1;
		ev.b = c + 1;
		if (feed(r, &ev, spec) != 0)
			return -1;
	}
	for (uint32_t i = 0; i < 96; i++) {
		uint32_t c = i % CLIENTS;

		memset(&ev, 0, sizeof ev);
		ev.kind = TR_TOUCH;
		ev.a = c + 1;
		ev.va = 0x08000000u + (i / CLIENTS) * 0x00400000u +
		        (i % 7) * 0x1000u;
		ev.access = i % 3 == 0 ? TR_ACC_WRITE : TR_ACC_READ;
		ev.insns = 100;
		ev.cycles = 150;
		if (feed(r, &ev, spec) != 0)
			return -1;
		/* The first client ends halfway: its pages go back while the
		 * others still fault. */
		if (i == 47) {
			memset(&ev, 0, sizeof ev);
			ev.kind = TR_ENDTASK;
			ev.a = 1;
			if (feed(r, &ev, spec) != 0)
				return -1;
		}
	}
	for (uint32_t c = 1; c < CLIENTS; c++) {
		memset(&ev, 0, sizeof ev);
		ev.kind = TR_ENDTASK;
		ev.a = c + 1;
		if (feed(r, &ev, spec) != 0)
			return -1;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tr_replay_config cfg = tr_replay_config_default(512);
	struct tr_replay *r = NULL;
	struct kp_policy pol;
	char spec[SPEC_MAX + 1], why[TR_WHY_SIZE];

	if (size > SPEC_MAX)
		return 0;
	memcpy(spec, data, size);
	spec[size] = '\0';      /* a NUL inside ends it, as in argv */
	if (strchr(spec, '/') != NULL)
		return 0;
	why[0] = '\0';
	if (kp_policy_open(spec, &pol, why, sizeof why) != KM_OK) {
		if (why[0] == '\0')
			broken(spec, "kp_policy_open", "refused without a reason");
		return 0;
	}
	if (pol.dl != NULL)
		broken(spec, "kp_policy_open", "loaded a shared object");
	cfg.kmem = KM_KMEM_KPAGER;
	cfg.kpager = pol.ops;
	cfg.kpager_args = pol.args;
	cfg.sample_every = 10000;       /* the samples' path too */
	if (tr_replay_create(&cfg, &r, why, sizeof why) != 0) {
		if (why[0] == '\0')
			broken(spec, "tr_replay_create", "refused without a reason");
		kp_policy_close(&pol);
		return 0;
	}
	if (run_clients(r, spec) == 0) {
		tr_replay_finish(r);
		if (!km_check(tr_replay_model(r), why, sizeof why))
			broken(spec, "km_check", why);
	}
	tr_replay_destroy(r);
	kp_policy_close(&pol);
	return 0;
}
