/*
 * traces/import.c: the importers of import.h.  Both stream their input
 * (a lackey log of a long run is gigabytes), keep one byte per IA-32 user
 * page (768 KiB) for what was touched, and write through the checked
 * writer, so what they make is a trace kpsim reads.
 */
#include "import.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#define PAGES (TR_USER_TOP >> 12)       /* IA-32 user pages */
#define PG_SEEN 1u                      /* read or fetched */
#define PG_WRITTEN 2u

/* What an import has made so far. */
struct imp {
	struct tr_writer *w;
	struct tr_import_stats *st;
	uint8_t *page;                  /* [PAGES]: PG_* */
	char name[TR_NAME_MAX + 1];
	int32_t status;                 /* the task's exit status */
	bool started;
	char *why;
	size_t why_len;
};

__attribute__((format(printf, 2, 3)))
static int fail(struct imp *im, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(im->why, im->why_len, fmt, ap);
	va_end(ap);
	return -1;
}

static int put(struct imp *im, const struct tr_event *ev)
{
	if (tr_write(im->w, ev) != 0)
		return fail(im, "%s", tr_writer_error(im->w));
	im->st->events++;
	return 0;
}

/* task 1 NAME, thread 1 1: once, before the first touch. */
static int start(struct imp *im)
{
	struct tr_event ev;

	if (im->started)
		return 0;
	im->started = true;
	memset(&ev, 0, sizeof ev);
	ev.kind = TR_TASK;
	ev.a = 1;
	tr_name_sanitize(ev.name, im->name);
	if (put(im, &ev) != 0)
		return -1;
	ev.kind = TR_THREAD;
	ev.b = 1;
	return put(im, &ev);
}

/* user 1 N if N > 0, then endthread 1, endtask 1. */
static int finish(struct imp *im, uint64_t insns)
{
	struct tr_event ev;

	if (start(im) != 0)
		return -1;
	memset(&ev, 0, sizeof ev);
	ev.a = 1;
	if (insns > 0) {
		ev.kind = TR_USER;
		ev.insns = ev.cycles = insns;
		if (put(im, &ev) != 0)
			return -1;
	}
	ev.insns = ev.cycles = 0;
	ev.kind = TR_ENDTHREAD;
	if (put(im, &ev) != 0)
		return -1;
	ev.kind = TR_ENDTASK;
	ev.status = im->status;
	return put(im, &ev);
}

/* Writes "# PREFIX TEXT", TEXT up to its line's end, each byte that is not
 * printable ASCII made '?', the whole cut to what a comment line holds:
 * text from a log is untrusted, and a comment must stay one line. */
static int note(struct imp *im, const char *prefix, const char *text)
{
	char buf[TR_LINE_MAX - 1];
	size_t n = (size_t)snprintf(buf, sizeof buf, "%s ", prefix);

	for (; n + 1 < sizeof buf && *text != '\0' && *text != '\n' &&
	       *text != '\r'; text++)
		buf[n++] = *text >= ' ' && *text <= '~' ? *text : '?';
	buf[n] = '\0';
	if (tr_comment(im->w, buf) != 0)
		return fail(im, "%s", tr_writer_error(im->w));
	return 0;
}

/* A touch of page `pg` if it is new to this kind of access.  Returns 1
 * if one was written, 0 if not, -1 on failure. */
static int touch(struct imp *im, uint32_t pg, uint8_t access,
                 uint64_t insns)
{
	uint8_t want = access == TR_ACC_WRITE ? PG_WRITTEN : PG_SEEN;
	struct tr_event ev;

	if (im->page[pg] & want)
		return 0;
	if (im->page[pg] == 0)
		im->st->pages++;
	im->page[pg] |= PG_SEEN | want;
	if (start(im) != 0)
		return -1;
	memset(&ev, 0, sizeof ev);
	ev.kind = TR_TOUCH;
	ev.a = 1;
	ev.va = pg << 12;
	ev.access = access;
	ev.insns = ev.cycles = insns;
	return put(im, &ev) == 0 ? 1 : -1;
}

static int imp_init(struct imp *im, struct tr_writer *w,
                    struct tr_import_stats *st, char *why, size_t why_len)
{
	memset(im, 0, sizeof *im);
	memset(st, 0, sizeof *st);
	im->w = w;
	im->st = st;
	im->why = why;
	im->why_len = why_len;
	im->page = calloc(PAGES, 1);
	if (im->page == NULL)
		return fail(im, "out of host memory");
	return 0;
}

/* ---- valgrind lackey -------------------------------------------------------- */

/* Parses "ADDR,SIZE" (hex, decimal) at s; returns 0 or -1. */
static int addr_size(const char *s, uint64_t *addr, uint64_t *size)
{
	uint64_t a = 0, z = 0;
	int n = 0;

	for (; *s != ','; s++, n++) {
		unsigned d;

		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -1;
		if (n == 16)
			return -1;
		a = a << 4 | d;
	}
	if (n == 0)
		return -1;
	s++;
	for (n = 0; *s >= '0' && *s <= '9'; s++, n++) {
		if (n == 6)
			return -1;
		z = z * 10 + (uint64_t)(*s - '0');
	}
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	if (n == 0 || *s != '\0')
		return -1;
	*addr = a;
	*size = z;
	return 0;
}

/*
 * Valgrind's own lines: "==PID== text" (its messages to the user), "--PID--
 * text" (warnings and -v output) and "**PID** text" (the client's own, by
 * request).  Returns the text after the prefix and stores PID, or returns
 * NULL for any other line.
 */
static const char *chatter(const char *line, uint64_t *pid)
{
	char c = line[0];
	uint64_t v = 0;
	size_t n;

	if ((c != '=' && c != '-' && c != '*') || line[1] != c)
		return NULL;
	for (n = 2; line[n] >= '0' && line[n] <= '9'; n++) {
		if (n == 12)
			return NULL;    /* more digits than any pid */
		v = v * 10 + (uint64_t)(line[n] - '0');
	}
	if (n == 2 || line[n] != c || line[n + 1] != c)
		return NULL;
	*pid = v;
	line += n + 2;
	return *line == ' ' ? line + 1 : line;
}

/* "Exit code: STATUS", as lackey ends its log; 0 if not a number. */
static int32_t exit_code(const char *s)
{
	long long v;
	char *end;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || v < INT32_MIN || v > INT32_MAX ||
	    strspn(end, " \t\r\n") != strlen(end))
		return 0;
	return (int32_t)v;
}

/* The program's name from valgrind's "Command: PATH ARGS" line: PATH's
 * last component, in which valgrind writes a space as "\ ". */
static void command_name(struct imp *im, const char *cmd)
{
	char word[TR_NAME_MAX + 1];
	size_t n = 0;

	for (; *cmd != '\0' && !strchr(" \t\r\n", *cmd); cmd++) {
		if (*cmd == '/') {
			n = 0;
			continue;
		}
		if (*cmd == '\\' && cmd[1] != '\0')
			cmd++;
		if (n < TR_NAME_MAX)    /* a name holds no more */
			word[n++] = *cmd;
	}
	if (n == 0)
		return;
	word[n] = '\0';
	tr_name_sanitize(im->name, word);
}

int tr_import_lackey(FILE *in, const char *in_name, const char *name,
                     struct tr_writer *w, struct tr_import_stats *st,
                     char *why, size_t why_len)
{
	struct imp im;
	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	uint64_t lineno = 0, completed = 0, pid, first_pid = UINT64_MAX;
	bool current = false;           /* an instruction is under way */
	bool named = name != NULL, tool_noted = false;
	int rc = -1;

	if (imp_init(&im, w, st, why, why_len) != 0)
		return -1;
	tr_name_sanitize(im.name, named ? name : "lackey");
	while ((len = getline(&line, &cap, in)) >= 0) {
		uint64_t addr, size, last;
		uint8_t access;
		const char *p;
		char kind;

		lineno++;
		if ((size_t)len != strlen(line)) {
			fail(&im, "%s:%" PRIu64 ": a NUL byte in the line",
			     in_name, lineno);
			goto out;
		}
		if ((p = chatter(line, &pid)) != NULL) {
			/* One process a log: lackey's lines do not say whose
			 * they are, so a child's would be taken for its
			 * parent's. */
			if (first_pid == UINT64_MAX) {
				first_pid = pid;
			} else if (pid != first_pid) {
				fail(&im, "%s:%" PRIu64 ": valgrind's lines of "
				     "a second process (%" PRIu64 ", the log "
				     "began with %" PRIu64 "): the program "
				     "forked, and both wrote their accesses "
				     "here; give valgrind --log-file=LOG.%%p",
				     in_name, lineno, pid, first_pid);
				goto out;
			}
			/* Where the trace came from, before its events: the
			 * tool (the log's first line), its version and the
			 * command. */
			if (!im.started && p[strspn(p, " \t\r\n")] != '\0' &&
			    (!tool_noted || strncmp(p, "Using ", 6) == 0 ||
			     strncmp(p, "Command: ", 9) == 0)) {
				tool_noted = true;
				if (note(&im, "lackey log:", p) != 0)
					goto out;
			}
			if (strncmp(p, "Command: ", 9) == 0 && !named &&
			    !im.started)
				command_name(&im, p + 9);
			if (strncmp(p, "Exit code:", 10) == 0)
				im.status = exit_code(p + 10);
			continue;
		}
		if (strspn(line, " \t\r\n") == (size_t)len)
			continue;
		if (line[0] == 'I' && line[1] == ' ') {
			kind = 'I';
			p = line + 1;
		} else if (line[0] == ' ' && (line[1] == 'L' || line[1] == 'S' ||
		           line[1] == 'M') && line[2] == ' ') {
			kind = line[1];
			p = line + 2;
		} else {
			fail(&im, "%s:%" PRIu64 ": not a lackey line (\"I  ADDR,"
			     "SIZE\" or \" L|S|M ADDR,SIZE\"); give valgrind "
			     "--log-file so the program's own output stays out "
			     "of the log", in_name, lineno);
			goto out;
		}
		while (*p == ' ')
			p++;
		if (addr_size(p, &addr, &size) != 0 || size > 4096) {
			fail(&im, "%s:%" PRIu64 ": '%.*s' is not ADDR,SIZE (hex "
			     "address, size 0 .. 4096)", in_name, lineno,
			     (int)strcspn(p, "\r\n"), p);
			goto out;
		}
		/* Does [addr, addr + size) lie below 3 GiB?  addr is checked
		 * on its own first: with 16 hex digits, addr + size can wrap
		 * past 2^64 to a small number. */
		last = addr + (size ? size - 1 : 0);
		if (addr >= TR_USER_TOP || last >= TR_USER_TOP) {
			fail(&im, "%s:%" PRIu64 ": address 0x%" PRIx64 " (%"
			     PRIu64 " bytes) is not in IA-32 user space "
			     "(below 0xc0000000): trace an i386 program run "
			     "under setarch i386 -3 -R", in_name, lineno, addr,
			     size);
			goto out;
		}
		if (kind == 'I') {
			/* The previous instruction has completed. */
			completed += current;
			current = true;
			st->insns++;
			access = TR_ACC_EXEC;
		} else {
			st->accesses++;
			access = kind == 'L' ? TR_ACC_READ : TR_ACC_WRITE;
		}
		/* Each page the access covers, in order. */
		for (uint64_t pg = addr >> 12; pg <= last >> 12; pg++) {
			int t = touch(&im, (uint32_t)pg, access, completed);

			if (t < 0)
				goto out;
			if (t > 0)
				completed = 0;
		}
	}
	if (ferror(in)) {
		fail(&im, "%s: reading failed: %s", in_name, strerror(errno));
		goto out;
	}
	st->lines = lineno;
	/* Every program runs an instruction: a log without one is not
	 * lackey's account of a run (valgrind wrote it elsewhere, or it is
	 * another file), and an empty trace would pass for one. */
	if (st->insns == 0) {
		fail(&im, "%s: no instruction ('I  ADDR,SIZE') in %" PRIu64
		     " lines: not the log of valgrind --tool=lackey "
		     "--trace-mem=yes --log-file=LOG", in_name, lineno);
		goto out;
	}
	rc = finish(&im, completed + current);
out:
	st->lines = lineno;
	free(line);
	free(im.page);
	return rc;
}

/* ---- /proc snapshots ------------------------------------------------------------ */

/* Bits of a pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
 * Both are readable without CAP_SYS_ADMIN, which only the PFN needs. */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_CHUNK 512u                   /* entries read at a time */

/* A mapping of the maps file, checked. */
struct mapping {
	uint32_t lo, hi;                /* its pages: [lo, hi), in bytes */
	uint8_t access;                 /* TR_ACC_* a touch of it makes */
};

/* Parses the hex number at *s (1 .. 16 digits, no prefix) up to a byte
 * that is not a hex digit; advances *s.  Returns 0 or -1. */
static int hex64(const char **s, uint64_t *v)
{
	const char *p = *s;
	uint64_t x = 0;

	for (; isxdigit((unsigned char)*p); p++) {
		if (p - *s == 16)
			return -1;
		x = x << 4 | (uint64_t)(isdigit((unsigned char)*p) ? *p - '0' :
		                        tolower((unsigned char)*p) - 'a' + 10);
	}
	if (p == *s)
		return -1;
	*s = p;
	*v = x;
	return 0;
}

/*
 * Parses a maps line, "START-END PERMS OFFSET DEV INODE [PATH]", of which
 * only START, END and PERMS matter.  Returns 0 with the range and the
 * access kind, 1 if the range lies (partly) above 3 GiB, or -1 if the
 * line is not a maps line.
 */
static int maps_line(const char *line, struct mapping *m)
{
	static const char *const perms[4] = { "r-", "w-", "x-", "ps" };
	uint64_t lo, hi;
	const char *p = line;

	if (hex64(&p, &lo) != 0 || *p++ != '-' || hex64(&p, &hi) != 0 ||
	    *p++ != ' ')
		return -1;
	for (int i = 0; i < 4; i++)
		if (p[i] == '\0' || strchr(perms[i], p[i]) == NULL)
			return -1;
	if (p[4] != ' ' && p[4] != '\n' && p[4] != '\0')
		return -1;
	if (lo >= hi || (lo & 0xfff) || (hi & 0xfff))
		return -1;
	if (hi > TR_USER_TOP)
		return 1;
	m->lo = (uint32_t)lo;
	m->hi = (uint32_t)hi;
	/* Executable, else writable, else read: the strongest access the
	 * page allows is the one the program most likely made first.  A
	 * page present in a mapping with no rights (once accessible, or a
	 * guard the kernel filled) is held all the same: read. */
	m->access = p[2] == 'x' ? TR_ACC_EXEC : p[1] == 'w' ? TR_ACC_WRITE :
	            TR_ACC_READ;
	return 0;
}

/*
 * Reads and checks the whole maps file first, so that a refused process
 * leaves no touches behind and a file that changes (a live /proc file, a
 * pipe) is read exactly once.  Returns 0 with *out (malloc'd) and *n, or
 * -1 with the reason.
 */
static int read_maps(struct imp *im, const char *path, struct mapping **out,
                     size_t *n)
{
	FILE *f;
	struct mapping *v = NULL, m;
	size_t cap = 0, len = 0, lcap = 0;
	char *line = NULL;
	uint64_t lineno = 0;
	ssize_t got;
	int rc = -1;

	if ((f = fopen(path, "r")) == NULL)
		return fail(im, "%s: %s", path, strerror(errno));
	while ((got = getline(&line, &lcap, f)) >= 0) {
		int kind;

		lineno++;
		if ((size_t)got != strlen(line)) {
			fail(im, "%s:%" PRIu64 ": a NUL byte in the line", path,
			     lineno);
			goto out;
		}
		line[strcspn(line, "\n")] = '\0';
		kind = maps_line(line, &m);
		if (kind < 0) {
			fail(im, "%s:%" PRIu64 ": '%.60s' is not a maps line "
			     "(START-END PERMS ..., page-aligned hex, START < "
			     "END)", path, lineno, line);
			goto out;
		}
		if (kind > 0) {
			fail(im, "%s:%" PRIu64 ": not an IA-32 process: the "
			     "mapping '%.100s' lies above 0xc0000000 (a 64-bit "
			     "process, or an i386 one not run under setarch "
			     "i386 -3)", path, lineno, line);
			goto out;
		}
		if (len > 0 && m.lo < v[len - 1].hi) {
			fail(im, "%s:%" PRIu64 ": the mapping at 0x%08" PRIx32
			     " overlaps or precedes the one before it (maps "
			     "lists mappings in address order)", path, lineno,
			     m.lo);
			goto out;
		}
		if (len == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct mapping *nv = realloc(v, ncap * sizeof *v);

			if (nv == NULL) {
				fail(im, "out of host memory");
				goto out;
			}
			v = nv;
			cap = ncap;
		}
		v[len++] = m;
	}
	if (ferror(f)) {
		fail(im, "%s: reading failed: %s", path, strerror(errno));
		goto out;
	}
	im->st->lines = lineno;
	*out = v;
	*n = len;
	v = NULL;
	rc = 0;
out:
	free(v);
	free(line);
	fclose(f);
	return rc;
}

int tr_import_proc_files(const char *maps_path, const char *pagemap_path,
                         const char *name, struct tr_writer *w,
                         struct tr_import_stats *st, char *why,
                         size_t why_len)
{
	struct imp im;
	struct mapping *maps = NULL;
	size_t nmaps = 0;
	int pm = -1, rc = -1;

	if (imp_init(&im, w, st, why, why_len) != 0)
		return -1;
	tr_name_sanitize(im.name, name ? name : "proc");
	if (read_maps(&im, maps_path, &maps, &nmaps) != 0)
		goto out;
	if ((pm = open(pagemap_path, O_RDONLY | O_CLOEXEC)) < 0) {
		fail(&im, "%s: %s", pagemap_path, strerror(errno));
		goto out;
	}
	for (size_t i = 0; i < nmaps; i++) {
		uint32_t pg = maps[i].lo >> 12, end = maps[i].hi >> 12;

		while (pg < end) {
			uint64_t ent[PM_CHUNK];
			size_t n = end - pg < PM_CHUNK ? end - pg : PM_CHUNK;
			ssize_t got;

			/* The entry of page pg is the pg-th 8 bytes. */
			got = pread(pm, ent, n * 8, (off_t)pg * 8);
			if (got < 0 || (size_t)got != n * 8) {
				fail(&im, "%s: reading the entries of pages "
				     "0x%08" PRIx32 "..0x%08" PRIx32 " failed: "
				     "%s", pagemap_path, pg << 12,
				     (uint32_t)(pg + n - 1) << 12, got < 0 ?
				     strerror(errno) : "the file ends there");
				goto out;
			}
			for (size_t k = 0; k < n; k++, pg++)
				if ((ent[k] & (PM_PRESENT | PM_SWAPPED)) &&
				    touch(&im, pg, maps[i].access, 0) < 0)
					goto out;
		}
	}
	rc = finish(&im, 0);
out:
	free(maps);
	if (pm >= 0)
		close(pm);
	free(im.page);
	return rc;
}

/* DIR/FILE in a malloc'd string, or NULL. */
static char *path_in(const char *dir, const char *file)
{
	size_t n = strlen(dir) + strlen(file) + 2;
	char *p = malloc(n);

	if (p != NULL)
		snprintf(p, n, "%s/%s", dir, file);
	return p;
}

int tr_import_proc_dir(const char *dir, const char *name,
                       struct tr_writer *w, struct tr_import_stats *st,
                       char *why, size_t why_len)
{
	char *maps = path_in(dir, "maps"), *pagemap = path_in(dir, "pagemap");
	char *comm_path = path_in(dir, "comm"), comm[64] = "";
	struct stat sb;
	FILE *f;
	int rc = -1;

	if (maps == NULL || pagemap == NULL || comm_path == NULL) {
		snprintf(why, why_len, "out of host memory");
		goto out;
	}
	/* Is it there at all?  (The usual mistake: a process that has
	 * ended, or a typo.) */
	if (stat(dir, &sb) != 0) {
		snprintf(why, why_len, "%s: %s", dir, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(sb.st_mode)) {
		snprintf(why, why_len, "%s: not a directory (/proc/PID, or "
		         "one holding a copy of its maps and pagemap)", dir);
		goto out;
	}
	/* comm is optional: a copied snapshot may have none. */
	if (name == NULL && (f = fopen(comm_path, "r")) != NULL) {
		if (fgets(comm, sizeof comm, f) == NULL)
			comm[0] = '\0';
		comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
	}
	rc = tr_import_proc_files(maps, pagemap, name ? name : comm[0] ?
	                          comm : "proc", w, st, why, why_len);
out:
	free(maps);
	free(pagemap);
	free(comm_path);
	return rc;
}

int tr_import_proc(int pid, const char *name, struct tr_writer *w,
                   struct tr_import_stats *st, char *why, size_t why_len)
{
	char dir[32];

	if (pid <= 0) {
		snprintf(why, why_len, "%d is not a process id", pid);
		return -1;
	}
	snprintf(dir, sizeof dir, "/proc/%d", pid);
	if (access(dir, F_OK) != 0) {
		snprintf(why, why_len, "process %d: %s: %s", pid, dir,
		         errno == ENOENT ? "no such process" : strerror(errno));
		return -1;
	}
	return tr_import_proc_dir(dir, name, w, st, why, why_len);
}
