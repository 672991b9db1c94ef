/*
 * traces/reader.c: the trace reader.  Lines are parsed in place from a
 * large buffer (zlib's gzread reads plain files as they are and gzip ones
 * inflated), fields are split on blanks, every number is parsed by hand
 * with its range, and each event is checked against the ids that are live
 * (struct tr_state) before it is returned.  The first error sticks.
 *
 * Touches and user work are most of any trace: a line of exactly the
 * writer's shape ("touch 7 0x08049000 w", "user 7 1200 1500") is taken by
 * a fast path that accepts nothing the general parser would not, and
 * gives up on anything else (a tab, a comment, a long number, a value out
 * of range), which the general parser then takes and names.
 */
#include "trace_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define BUF_SIZE (256u * 1024u)
#define MAX_FIELDS 8

struct tr_reader {
	gzFile gz;                      /* NULL: a trace in memory */
	const char *mem;
	size_t mem_len;
	char *buf;                      /* [BUF_SIZE + 1] for files */
	const char *p, *end;            /* unparsed bytes */
	bool eof;                       /* nothing more to read */
	uint64_t line, size;
	bool failed;
	bool no_fast;                   /* tests: the general parser only */
	struct tr_state *st;
	char name[128];
	char err[TR_WHY_SIZE];
};

__attribute__((format(printf, 2, 3)))
static int fail(struct tr_reader *r, const char *fmt, ...)
{
	char msg[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (!r->failed)
		snprintf(r->err, sizeof r->err, "%s:%llu: %s", r->name,
		         (unsigned long long)r->line, msg);
	r->failed = true;
	return -1;
}

/* Refills the buffer so that a whole line, if there is one, lies in
 * [p, end).  Returns -1 on a read error. */
static int refill(struct tr_reader *r)
{
	size_t keep = (size_t)(r->end - r->p);
	int n;

	if (r->gz == NULL || r->eof)
		return 0;
	memmove(r->buf, r->p, keep);
	n = gzread(r->gz, r->buf + keep, (unsigned)(BUF_SIZE - keep));
	if (n < 0) {
		int zerr;
		const char *m = gzerror(r->gz, &zerr);

		return fail(r, "reading failed: %s", zerr == Z_ERRNO ?
		            strerror(errno) : m);
	}
	if (n == 0) {
		int zerr;
		const char *m = gzerror(r->gz, &zerr);

		/* A gzip stream cut short ends with an error, not an end. */
		if (zerr != Z_OK)
			return fail(r, "the gzip stream is damaged or cut short: "
			            "%s", m);
		r->eof = true;
	}
	r->p = r->buf;
	r->end = r->buf + keep + n;
	return 0;
}

/* The next line as [*s, *e) without its end of line; 1, 0 at the end of
 * the trace, -1 on an error. */
static int next_line(struct tr_reader *r, const char **s, const char **e)
{
	const char *nl;

	for (;;) {
		nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
		if (nl != NULL || r->eof || r->gz == NULL)
			break;
		if ((size_t)(r->end - r->p) > TR_LINE_MAX + 1) {
			r->line++;
			return fail(r, "line longer than %u bytes",
			            TR_LINE_MAX);
		}
		if (refill(r) != 0)
			return -1;
	}
	if (r->p == r->end)
		return 0;
	r->line++;
	*s = r->p;
	*e = nl != NULL ? nl : r->end;
	r->p = nl != NULL ? nl + 1 : r->end;
	if (*e > *s && (*e)[-1] == '\r')
		(*e)--;
	if ((size_t)(*e - *s) > TR_LINE_MAX)
		return fail(r, "line longer than %u bytes", TR_LINE_MAX);
	return 1;
}

/* What every line not taken by the fast path is checked for first (the
 * fast path takes no NUL). */
static int no_nul(struct tr_reader *r, const char *s, const char *e)
{
	if (memchr(s, '\0', (size_t)(e - s)) != NULL)
		return fail(r, "a NUL byte in the line");
	return 0;
}

struct field {
	const char *s;
	size_t n;
};

/* Splits [s, e) into fields up to a '#'; returns their number, or
 * MAX_FIELDS + 1 if there are more. */
static int split(const char *s, const char *e, struct field *f)
{
	int n = 0;

	for (;;) {
		while (s < e && (*s == ' ' || *s == '\t'))
			s++;
		if (s == e || *s == '#')
			return n;
		if (n == MAX_FIELDS)
			return MAX_FIELDS + 1;
		f[n].s = s;
		while (s < e && *s != ' ' && *s != '\t' && *s != '#')
			s++;
		f[n].n = (size_t)(s - f[n].s);
		n++;
	}
}

/* Parses an unsigned decimal or 0x-hex number no larger than max. */
static int parse_u64(const struct field *f, uint64_t max, uint64_t *out)
{
	const char *s = f->s, *e = f->s + f->n;
	uint64_t v = 0, lim;
	unsigned base = 10;

	if (f->n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (s == e)
		return -1;
	/* v <= lim keeps v * base from overflowing: one division a number,
	 * not one a digit (this loop is most of the parse). */
	lim = base == 16 ? max >> 4 : max / 10;
	for (; s < e; s++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		if (v > lim || v * base > max - d)
			return -2;
		v = v * base + d;
	}
	*out = v;
	return 0;
}

static int num(struct tr_reader *r, const struct field *f, const char *what,
               uint64_t min, uint64_t max, uint64_t *out)
{
	int e = parse_u64(f, max, out);

	if (e == -1)
		return fail(r, "%s '%.*s' is not a number", what, (int)f->n,
		            f->s);
	if (e == -2 || *out < min)
		return fail(r, "%s %.*s is not in %llu .. %llu", what,
		            (int)f->n, f->s, (unsigned long long)min,
		            (unsigned long long)max);
	return 0;
}

static int id(struct tr_reader *r, const struct field *f, const char *what,
              uint32_t *out)
{
	uint64_t v;

	if (num(r, f, what, 1, TR_ID_MAX, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int u32(struct tr_reader *r, const struct field *f, const char *what,
               uint32_t max, uint32_t *out)
{
	uint64_t v;

	if (num(r, f, what, 0, max, &v) != 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int status(struct tr_reader *r, const struct field *f, int32_t *out)
{
	struct field g = *f;
	uint64_t v;
	bool neg = g.n > 1 && g.s[0] == '-';

	if (neg) {
		g.s++;
		g.n--;
	}
	if (parse_u64(&g, neg ? 2147483648u : 2147483647u, &v) != 0)
		return fail(r, "status '%.*s' is not a number in -2147483648 "
		            ".. 2147483647", (int)f->n, f->s);
	*out = neg ? (int32_t)(-(int64_t)v) : (int32_t)v;
	return 0;
}

static int access_kind(struct tr_reader *r, const struct field *f,
                       uint8_t *out)
{
	if (f->n == 1 && (f->s[0] == 'r' || f->s[0] == 'w' || f->s[0] == 'x')) {
		*out = f->s[0] == 'r' ? TR_ACC_READ : f->s[0] == 'w' ?
		       TR_ACC_WRITE : TR_ACC_EXEC;
		return 0;
	}
	return fail(r, "access '%.*s' is not r, w or x", (int)f->n, f->s);
}

static int rights(struct tr_reader *r, const struct field *f, uint8_t *out)
{
	static const char order[] = "rwx";
	static const uint8_t bit[] = { TR_R, TR_W, TR_X };
	size_t i = 0;

	*out = 0;
	if (f->n == 1 && f->s[0] == '-')
		return 0;
	for (size_t k = 0; k < f->n; k++) {
		while (i < 3 && order[i] != f->s[k])
			i++;
		if (i == 3)
			return fail(r, "rights '%.*s' are not '-' or a subset "
			            "of rwx in that order", (int)f->n, f->s);
		*out |= bit[i++];
	}
	return f->n > 0 ? 0 : -1;
}

static int fpage(struct tr_reader *r, const struct field *f,
                 struct tr_event *ev)
{
	const char *slash = memchr(f->s, '/', f->n);
	struct field b, l;
	uint64_t base, log2;

	if (slash == NULL)
		return fail(r, "flexpage '%.*s' is not BASE/LOG2", (int)f->n,
		            f->s);
	b = (struct field){ f->s, (size_t)(slash - f->s) };
	l = (struct field){ slash + 1, f->n - b.n - 1 };
	if (num(r, &b, "flexpage base", 0, TR_USER_TOP - 1, &base) != 0 ||
	    num(r, &l, "flexpage size (log2)", 12, 31, &log2) != 0)
		return -1;
	ev->base = (uint32_t)base;
	ev->log2 = (uint8_t)log2;
	return 0;
}

static int counts(struct tr_reader *r, const struct field *f, int n,
                  struct tr_event *ev)
{
	ev->insns = ev->cycles = 0;
	if (n >= 1 && num(r, &f[0], "instruction count", 0, TR_COUNT_MAX,
	                  &ev->insns) != 0)
		return -1;
	ev->cycles = ev->insns;
	if (n >= 2 && num(r, &f[1], "cycle count", 0, TR_COUNT_MAX,
	                  &ev->cycles) != 0)
		return -1;
	return 0;
}

/* The fields each kind takes: at least min, at most max (with the kind). */
static const struct { uint8_t min, max; } arity[TR_KIND_COUNT] = {
	[TR_TASK] = { 3, 3 }, [TR_ENDTASK] = { 2, 3 }, [TR_THREAD] = { 3, 3 },
	[TR_ENDTHREAD] = { 2, 2 }, [TR_USER] = { 3, 4 },
	[TR_TOUCH] = { 4, 6 }, [TR_SYSCALL] = { 3, 3 },
	[TR_SYSRET] = { 2, 2 }, [TR_TIMER] = { 2, 2 }, [TR_IPC] = { 3, 3 },
	[TR_MAP] = { 6, 6 }, [TR_GRANT] = { 6, 6 }, [TR_UNMAP] = { 4, 5 },
	[TR_MARKER] = { 3, 3 },
};

static int parse_event(struct tr_reader *r, const struct field *f, int n,
                       struct tr_event *ev)
{
	int k = tr_kind_parse(f[0].s, f[0].n), s;

	if (k < 0)
		return fail(r, "unknown event '%.*s'", (int)f[0].n, f[0].s);
	memset(ev, 0, offsetof(struct tr_event, name) + 1);
	ev->kind = (enum tr_kind)k;
	if (n < arity[k].min || n > arity[k].max) {
		if (arity[k].min == arity[k].max)
			return fail(r, "%s takes %d fields, not %d",
			            tr_kind_name(ev->kind), arity[k].min - 1,
			            n - 1);
		return fail(r, "%s takes %d to %d fields, not %d",
		            tr_kind_name(ev->kind), arity[k].min - 1,
		            arity[k].max - 1, n - 1);
	}
	if (id(r, &f[1], ev->kind == TR_TASK || ev->kind == TR_ENDTASK ||
	       ev->kind == TR_MAP || ev->kind == TR_GRANT ||
	       ev->kind == TR_UNMAP ? "task" : "thread", &ev->a) != 0)
		return -1;
	switch (ev->kind) {
	case TR_TASK:
		if (f[2].n > TR_NAME_MAX)
			return fail(r, "task name longer than %u bytes",
			            TR_NAME_MAX);
		memcpy(ev->name, f[2].s, f[2].n);
		ev->name[f[2].n] = '\0';
		break;
	case TR_ENDTASK:
		if (n == 3 && status(r, &f[2], &ev->status) != 0)
			return -1;
		break;
	case TR_THREAD:
		if (id(r, &f[2], "task", &ev->b) != 0)
			return -1;
		break;
	case TR_IPC:
		if (id(r, &f[2], "thread", &ev->b) != 0)
			return -1;
		break;
	case TR_USER:
		if (counts(r, &f[2], n - 2, ev) != 0)
			return -1;
		break;
	case TR_TOUCH:
		if (u32(r, &f[2], "address", TR_USER_TOP - 1, &ev->va) != 0 ||
		    access_kind(r, &f[3], &ev->access) != 0 ||
		    counts(r, &f[4], n - 4, ev) != 0)
			return -1;
		break;
	case TR_SYSCALL:
		if ((s = tr_sys_parse(f[2].s, f[2].n)) < 0)
			return fail(r, "unknown system call '%.*s'",
			            (int)f[2].n, f[2].s);
		ev->id = (uint32_t)s;
		break;
	case TR_MAP: case TR_GRANT:
		if (fpage(r, &f[2], ev) != 0 || rights(r, &f[3], &ev->rights) ||
		    id(r, &f[4], "task", &ev->b) != 0 ||
		    u32(r, &f[5], "destination", TR_USER_TOP - 1, &ev->va) != 0)
			return -1;
		break;
	case TR_UNMAP:
		if (fpage(r, &f[2], ev) != 0 || rights(r, &f[3], &ev->rights))
			return -1;
		if (n == 5 && !(f[4].n == 4 && memcmp(f[4].s, "self", 4) == 0))
			return fail(r, "unmap's last field is 'self' or nothing, "
			            "not '%.*s'", (int)f[4].n, f[4].s);
		ev->self = n == 5;
		break;
	case TR_MARKER:
		if (u32(r, &f[2], "marker", UINT32_MAX, &ev->id) != 0)
			return -1;
		break;
	default:
		break;
	}
	return 0;
}

/* ---- The fast path -------------------------------------------------------- */

/*
 * A number at *p, decimal or 0x-hex, ending at e or at a space, no larger
 * than max; *p is left after it.  False for anything else, including
 * numbers of more digits than can be summed without a care (15 decimal,
 * 12 hex: below 2^50).
 */
static bool fast_num(const char **p, const char *e, uint64_t max,
                     uint64_t *out)
{
	const char *s = *p, *d;
	uint64_t v = 0;

	if (e - s > 2 && s[0] == '0' && s[1] == 'x') {
		for (d = s += 2; s < e && *s != ' '; s++) {
			unsigned c = (unsigned char)*s, h = c - '0';

			/* A digit, else a letter a-f in either case (or-ing
			 * in 0x20 lowers A-F and moves nothing else there). */
			if (h > 9) {
				h = (c | 0x20u) - 'a';
				if (h > 5)
					return false;
				h += 10;
			}
			v = v << 4 | h;
		}
		if (s == d || s - d > 12)
			return false;
	} else {
		for (d = s; s < e && *s != ' '; s++) {
			unsigned h = (unsigned char)*s - (unsigned)'0';

			if (h > 9)
				return false;
			v = v * 10 + h;
		}
		if (s == d || s - d > 15)
			return false;
	}
	if (v > max)
		return false;
	*out = v;
	*p = s;
	return true;
}

/* One space, then more of the line. */
static bool fast_sep(const char **p, const char *e)
{
	if (e - *p < 2 || **p != ' ')
		return false;
	(*p)++;
	return true;
}

/* The counts that end a touch or user line: none (allowed if `optional`:
 * a touch's counts are then 0), one (cycles equal to it), or instructions
 * and cycles. */
static bool fast_counts(const char *s, const char *e, bool optional,
                        struct tr_event *ev)
{
	if (s == e)
		return optional;
	if (!fast_sep(&s, e) || !fast_num(&s, e, TR_COUNT_MAX, &ev->insns))
		return false;
	ev->cycles = ev->insns;
	if (s == e)
		return true;
	return fast_sep(&s, e) && fast_num(&s, e, TR_COUNT_MAX, &ev->cycles) &&
	       s == e;
}

/* Takes [s, e) if it is a touch or user line of the writer's shape. */
static bool fast_event(const char *s, const char *e, struct tr_event *ev)
{
	uint64_t id, va;
	enum tr_kind kind;

	if (e - s > 6 && memcmp(s, "touch ", 6) == 0) {
		kind = TR_TOUCH;
		s += 6;
	} else if (e - s > 5 && memcmp(s, "user ", 5) == 0) {
		kind = TR_USER;
		s += 5;
	} else {
		return false;
	}
	memset(ev, 0, offsetof(struct tr_event, name) + 1);
	ev->kind = kind;
	if (!fast_num(&s, e, TR_ID_MAX, &id) || id == 0)
		return false;
	ev->a = (uint32_t)id;
	if (kind == TR_USER)
		return fast_counts(s, e, false, ev);
	if (!fast_sep(&s, e) || !fast_num(&s, e, TR_USER_TOP - 1, &va) ||
	    !fast_sep(&s, e))
		return false;
	ev->va = (uint32_t)va;
	switch (*s++) {
	case 'r': ev->access = TR_ACC_READ; break;
	case 'w': ev->access = TR_ACC_WRITE; break;
	case 'x': ev->access = TR_ACC_EXEC; break;
	default: return false;
	}
	return fast_counts(s, e, true, ev);
}

void tr_reader_general_only(struct tr_reader *r)
{
	r->no_fast = true;
}

static int check_header(struct tr_reader *r)
{
	const char *s, *e;
	struct field f[MAX_FIELDS];
	uint64_t v;
	int n = next_line(r, &s, &e);

	if (n < 0 || (n > 0 && no_nul(r, s, e) != 0))
		return -1;
	if (n == 0) {
		r->line = 1;
		return fail(r, "empty: no '%s %u' header", TR_MAGIC,
		            TR_VERSION);
	}
	n = split(s, e, f);
	if (n < 1 || f[0].n != strlen(TR_MAGIC) ||
	    memcmp(f[0].s, TR_MAGIC, f[0].n) != 0)
		return fail(r, "not a kpsim trace: the first line must be "
		            "'%s %u'", TR_MAGIC, TR_VERSION);
	if (n != 2 || parse_u64(&f[1], UINT32_MAX, &v) != 0)
		return fail(r, "the header must be '%s VERSION'", TR_MAGIC);
	if (v != TR_VERSION)
		return fail(r, "trace version %llu; this kpsim reads version "
		            "%u", (unsigned long long)v, TR_VERSION);
	return 0;
}

static int finish_open(struct tr_reader *r, const char *name,
                       struct tr_reader **out, char *why, size_t why_len)
{
	snprintf(r->name, sizeof r->name, "%s", name);
	r->st = tr_state_new();
	if (r->st == NULL) {
		snprintf(why, why_len, "%s: out of host memory", name);
		tr_close(r);
		return -1;
	}
	if (check_header(r) != 0) {
		snprintf(why, why_len, "%s", r->err);
		tr_close(r);
		return -1;
	}
	*out = r;
	return 0;
}

int tr_open(const char *path, struct tr_reader **out, char *why,
            size_t why_len)
{
	struct tr_reader *r = calloc(1, sizeof *r);
	bool std = strcmp(path, "-") == 0;
	int fd = std ? dup(STDIN_FILENO) : open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;

	*out = NULL;
	if (r == NULL || (r->buf = malloc(BUF_SIZE + 1)) == NULL) {
		snprintf(why, why_len, "%s: out of host memory", path);
		if (fd >= 0)
			close(fd);
		tr_close(r);
		return -1;
	}
	if (fd < 0) {
		snprintf(why, why_len, "%s: %s", path, strerror(errno));
		tr_close(r);
		return -1;
	}
	if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode)) {
		snprintf(why, why_len, "%s: a directory, not a trace", path);
		close(fd);
		tr_close(r);
		return -1;
	}
	if (S_ISREG(sb.st_mode))
		r->size = (uint64_t)sb.st_size;
	r->gz = gzdopen(fd, "rb");
	if (r->gz == NULL) {
		snprintf(why, why_len, "%s: out of host memory", path);
		close(fd);
		tr_close(r);
		return -1;
	}
	gzbuffer(r->gz, 128u * 1024u);
	r->p = r->end = r->buf;
	return finish_open(r, std ? "<stdin>" : path, out, why, why_len);
}

int tr_open_mem(const void *buf, size_t len, const char *name,
                struct tr_reader **out, char *why, size_t why_len)
{
	struct tr_reader *r = calloc(1, sizeof *r);

	*out = NULL;
	if (r == NULL) {
		snprintf(why, why_len, "%s: out of host memory", name);
		return -1;
	}
	r->mem = buf;
	r->mem_len = len;
	r->p = buf;
	r->end = r->p + len;
	r->eof = true;
	r->size = len;
	return finish_open(r, name, out, why, why_len);
}

int tr_next(struct tr_reader *r, struct tr_event *ev)
{
	struct field f[MAX_FIELDS + 1];
	const char *s, *e;
	char why[320];
	int n;

	if (r->failed)
		return -1;
	for (;;) {
		if ((n = next_line(r, &s, &e)) <= 0)
			return n;
		if (r->no_fast || !fast_event(s, e, ev)) {
			if (no_nul(r, s, e) != 0)
				return -1;
			n = split(s, e, f);
			if (n == 0)
				continue;
			if (n > MAX_FIELDS)
				return fail(r, "more than %d fields",
				            MAX_FIELDS - 1);
			if (parse_event(r, f, n, ev) != 0)
				return -1;
			if (tr_check_fields(ev, why, sizeof why) != 0)
				return fail(r, "%s", why);
		}
		/* (A fast event has its fields in range by construction:
		 * tr_check_fields asks nothing more of a touch or user.) */
		if (tr_state_check(r->st, ev, why, sizeof why) != 0)
			return fail(r, "%s", why);
		tr_state_commit(r->st, ev);
		return 1;
	}
}

const char *tr_error(const struct tr_reader *r)
{
	return r->failed ? r->err : "";
}

uint64_t tr_line(const struct tr_reader *r)
{
	return r->line;
}

uint64_t tr_offset(const struct tr_reader *r)
{
	if (r->gz == NULL)
		return (uint64_t)(r->p - r->mem);
	return (uint64_t)gzoffset(r->gz);
}

uint64_t tr_size(const struct tr_reader *r)
{
	return r->size;
}

void tr_close(struct tr_reader *r)
{
	if (r == NULL)
		return;
	if (r->gz != NULL)
		gzclose(r->gz);
	tr_state_free(r->st);
	free(r->buf);
	free(r);
}
