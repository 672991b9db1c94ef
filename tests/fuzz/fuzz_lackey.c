/*
 * libFuzzer target: the lackey importer on any bytes.  What it writes must
 * read back with the checking reader.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "import.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[64];
	struct tr_import_stats st;
	struct tr_writer *w;
	struct tr_reader *rd;
	struct tr_event ev;
	char why[TR_WHY_SIZE];
	FILE *in;
	int rc, got;

	if (path[0] == '\0')
		snprintf(path, sizeof path, "/tmp/kpsim-fuzz-lackey-%d.trace",
		         (int)getpid());
	if (size == 0 || (in = fmemopen((void *)data, size, "r")) == NULL)
		return 0;
	if (tr_create(path, &w, why, sizeof why) != 0)
		abort();
	rc = tr_import_lackey(in, "fuzz", NULL, w, &st, why, sizeof why);
	fclose(in);
	if (tr_finish(w, why, sizeof why) != 0 && rc == 0)
		abort();
	if (rc == 0) {
		if (tr_open(path, &rd, why, sizeof why) != 0)
			abort();
		while ((got = tr_next(rd, &ev)) == 1)
			;
		if (got != 0)
			abort();        /* the importer wrote a bad trace */
		tr_close(rd);
	}
	unlink(path);
	return 0;
}
