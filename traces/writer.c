/*
 * traces/writer.c: the trace writer.  Every event is checked as the
 * reader checks it before it is formatted, so a trace kpsim writes is one
 * kpsim reads.  Plain files go through stdio, ".gz" ones through zlib.
 */
#include "trace_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

struct tr_writer {
	FILE *f;                        /* plain, or NULL */
	gzFile gz;                      /* gzip, or NULL */
	bool close_f;                   /* not standard output */
	struct tr_state *st;
	uint64_t written;
	bool failed;
	char name[128];
	char err[TR_WHY_SIZE];
};

static int put(struct tr_writer *w, const char *s, size_t n)
{
	bool ok = w->gz != NULL ? gzwrite(w->gz, s, (unsigned)n) == (int)n :
	          fwrite(s, 1, n, w->f) == n;

	if (!ok && !w->failed) {
		snprintf(w->err, sizeof w->err, "%s: writing failed: %s",
		         w->name, strerror(errno ? errno : EIO));
		w->failed = true;
	}
	return ok ? 0 : -1;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

int tr_create(const char *path, struct tr_writer **out, char *why,
              size_t why_len)
{
	struct tr_writer *w = calloc(1, sizeof *w);
	char head[64];

	*out = NULL;
	if (w == NULL || (w->st = tr_state_new()) == NULL) {
		snprintf(why, why_len, "%s: out of host memory", path);
		free(w);
		return -1;
	}
	snprintf(w->name, sizeof w->name, "%s", path);
	errno = 0;
	if (strcmp(path, "-") == 0) {
		w->f = stdout;
	} else if (ends_with(path, ".gz")) {
		w->gz = gzopen(path, "wb6");
	} else {
		w->f = fopen(path, "w");
		w->close_f = true;
	}
	if (w->f == NULL && w->gz == NULL) {
		snprintf(why, why_len, "%s: %s", path,
		         errno ? strerror(errno) : "cannot be created");
		tr_state_free(w->st);
		free(w);
		return -1;
	}
	snprintf(head, sizeof head, "%s %u\n", TR_MAGIC, TR_VERSION);
	put(w, head, strlen(head));
	*out = w;
	return 0;
}

int tr_comment(struct tr_writer *w, const char *text)
{
	if (w->failed)
		return -1;
	if (strchr(text, '\n') != NULL || strlen(text) + 2 > TR_LINE_MAX) {
		snprintf(w->err, sizeof w->err, "%s: a comment must be one "
		         "line of at most %u bytes", w->name, TR_LINE_MAX - 2);
		w->failed = true;
		return -1;
	}
	if (put(w, "# ", 2) != 0 || put(w, text, strlen(text)) != 0)
		return -1;
	return put(w, "\n", 1);
}

int tr_write(struct tr_writer *w, const struct tr_event *ev)
{
	char line[TR_LINE_MAX + 2], why[320];
	size_t n;

	if (w->failed)
		return -1;
	if (tr_state_apply(w->st, ev, why, sizeof why) != 0) {
		snprintf(w->err, sizeof w->err, "%s: event %llu refused: %s",
		         w->name, (unsigned long long)w->written + 1, why);
		w->failed = true;
		return -1;
	}
	n = tr_format(ev, line);
	line[n++] = '\n';
	if (put(w, line, n) != 0)
		return -1;
	w->written++;
	return 0;
}

const char *tr_writer_error(const struct tr_writer *w)
{
	return w->failed ? w->err : "";
}

uint64_t tr_written(const struct tr_writer *w)
{
	return w->written;
}

int tr_finish(struct tr_writer *w, char *why, size_t why_len)
{
	int bad;

	if (w == NULL)
		return 0;
	errno = 0;
	if (w->gz != NULL) {
		if (gzclose(w->gz) != Z_OK && !w->failed) {
			snprintf(w->err, sizeof w->err, "%s: writing failed",
			         w->name);
			w->failed = true;
		}
	} else if ((w->close_f ? fclose(w->f) : fflush(w->f)) != 0 &&
	           !w->failed) {
		snprintf(w->err, sizeof w->err, "%s: writing failed: %s",
		         w->name, strerror(errno ? errno : EIO));
		w->failed = true;
	}
	bad = w->failed;
	if (bad)
		snprintf(why, why_len, "%s", w->err);
	tr_state_free(w->st);
	free(w);
	return bad ? -1 : 0;
}
