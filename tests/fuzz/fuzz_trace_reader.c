/*
 * libFuzzer target: the trace reader (traces/reader.c) on any bytes, and
 * every event it accepts replayed on a small model, so that a trace the
 * reader lets through cannot break the replayer or the model either.  The
 * input is also read by the general parser alone: the fast path for touch
 * and user lines must agree with it on every input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kmodel.h"
#include "replay.h"
#include "trace.h"
#include "trace_int.h"

/* Aborts unless the fast path and the general parser read data alike. */
static void agree(const uint8_t *data, size_t size)
{
	struct tr_reader *a, *b;
	struct tr_event ea, eb;
	char why[TR_WHY_SIZE];
	int ga, gb;

	if (tr_open_mem(data, size, "fuzz", &a, why, sizeof why) != 0)
		return;
	if (tr_open_mem(data, size, "fuzz", &b, why, sizeof why) != 0)
		abort();
	tr_reader_general_only(b);
	do {
		memset(&ea, 0, sizeof ea);
		memset(&eb, 0, sizeof eb);
		ga = tr_next(a, &ea);
		gb = tr_next(b, &eb);
		if (ga != gb || (ga == 1 && memcmp(&ea, &eb, sizeof ea) != 0))
			abort();
	} while (ga == 1);
	if (strcmp(tr_error(a), tr_error(b)) != 0)
		abort();
	tr_close(a);
	tr_close(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tr_replay_config cfg = tr_replay_config_default(512);
	struct tr_replay *r = NULL;
	struct tr_reader *rd;
	struct tr_event ev;
	char why[TR_WHY_SIZE];
	size_t n = 0;

	agree(data, size);
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
