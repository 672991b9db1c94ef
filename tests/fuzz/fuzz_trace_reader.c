/*
 * libFuzzer target: the trace reader (traces/reader.c) on any bytes, and
 * every event it accepts replayed on a small model, so that a trace the
 * reader lets through cannot break the replayer or the model either.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "kmodel.h"
#include "replay.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tr_replay_config cfg = tr_replay_config_default(512);
	struct tr_replay *r = NULL;
	struct tr_reader *rd;
	struct tr_event ev;
	char why[TR_WHY_SIZE];
	size_t n = 0;

	if (tr_open_mem(data, size, "fuzz", &rd, why, sizeof why) != 0)
		return 0;
	if (tr_replay_create(&cfg, &r, why, sizeof why) != 0)
		abort();
	/* A bound on work per input: the reader is the target. */
	while (n++ < 4096 && tr_next(rd, &ev) == 1)
		if (tr_replay_event(r, &ev, why, sizeof why) != 0)
			abort();
	tr_replay_finish(r);
	if (!km_check(tr_replay_model(r), why, sizeof why))
		abort();
	tr_replay_destroy(r);
	tr_close(rd);
	return 0;
}
