/*
 * libFuzzer target: the /proc importer on any maps text, against one
 * pagemap in which every other page is present.  What it writes must read
 * back with the checking reader, and a refused snapshot writes no event.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "import.h"
#include "trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A pagemap of IA-32 user space (6 MiB, written once): present bits on
 * every other page, as a tiny address space would never have them. */
static void make_pagemap(const char *path)
{
	static uint64_t ent[512];
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0)
		abort();
	for (size_t i = 0; i < 512; i += 2)
		ent[i] = 1ull << 63;
	for (off_t off = 0; off < (off_t)(TR_USER_TOP >> 12) * 8;
	     off += sizeof ent)
		if (pwrite(fd, ent, sizeof ent, off) != (ssize_t)sizeof ent)
			abort();
	close(fd);
}

static char maps[64], pagemap[64], out[64];

/* The 6 MiB pagemap must not outlive the run. */
static void remove_pagemap(void)
{
	unlink(pagemap);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tr_import_stats st;
	struct tr_writer *w;
	struct tr_reader *rd;
	struct tr_event ev;
	char why[TR_WHY_SIZE];
	FILE *f;
	int rc, got;

	if (maps[0] == '\0') {
		int pid = (int)getpid();

		snprintf(maps, sizeof maps, "/tmp/kpsim-fuzz-maps-%d", pid);
		snprintf(pagemap, sizeof pagemap, "/tmp/kpsim-fuzz-pm-%d", pid);
		snprintf(out, sizeof out, "/tmp/kpsim-fuzz-proc-%d.trace",
		         pid);
		make_pagemap(pagemap);
		atexit(remove_pagemap);
	}
	if ((f = fopen(maps, "w")) == NULL ||
	    fwrite(data, 1, size, f) != size || fclose(f) != 0)
		abort();
	if (tr_create(out, &w, why, sizeof why) != 0)
		abort();
	rc = tr_import_proc_files(maps, pagemap, NULL, w, &st, why,
	                          sizeof why);
	if (rc != 0 && tr_written(w) != 0)
		abort();        /* a refused snapshot left events behind */
	if (tr_finish(w, why, sizeof why) != 0 && rc == 0)
		abort();
	if (rc == 0) {
		if (tr_open(out, &rd, why, sizeof why) != 0)
			abort();
		while ((got = tr_next(rd, &ev)) == 1)
			;
		if (got != 0)
			abort();        /* the importer wrote a bad trace */
		tr_close(rd);
	}
	unlink(maps);
	unlink(out);
	return 0;
}
