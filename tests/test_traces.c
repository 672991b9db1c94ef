/*
 * The trace format's reader and writer (traces/trace.h): random event
 * streams survive a write and a read unchanged, plain and gzip; every kind
 * of malformed field and every liveness violation is refused with the
 * file, the line and a reason that names it; mutated traces never crash
 * the reader.  Seeds are printed; KPSIM_TRACE_SEED replays one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "kmodel.h"
#include "trace.h"
#include "trace_int.h"
#include "kmtest.h"

static char tmpdir[64];

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kpsim-trace-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int remove_tmpdir(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- Random valid streams ------------------------------------------------- */

#define MAX_LIVE 16

struct gen {
	uint64_t rng;
	struct tr_state *st;
	uint32_t tasks[MAX_LIVE], ntasks;
	uint32_t threads[MAX_LIVE], nthreads;
	uint32_t in_call;               /* a thread in a system call, or 0 */
};

static uint32_t pick(struct gen *g, uint32_t n)
{
	return (uint32_t)(kmt_rng(&g->rng) % n);
}

static uint32_t some_id(struct gen *g)
{
	/* Small ids collide and are reused; a few are at the range's end. */
	return pick(g, 8) == 0 ? TR_ID_MAX - pick(g, 3) : 1 + pick(g, 40);
}

static void gen_fpage(struct gen *g, struct tr_event *ev)
{
	ev->log2 = (uint8_t)(12 + pick(g, 20));
	ev->base = (uint32_t)((kmt_rng(&g->rng) % (TR_USER_TOP >> ev->log2))
	                      << ev->log2);
	if ((uint64_t)ev->base + (1ull << ev->log2) > TR_USER_TOP)
		ev->base = 0;
	ev->va = (uint32_t)((kmt_rng(&g->rng) % (TR_USER_TOP >> ev->log2))
	                    << ev->log2);
	if ((uint64_t)ev->va + (1ull << ev->log2) > TR_USER_TOP)
		ev->va = 0;
	ev->rights = (uint8_t)pick(g, 8);
}

/* A random event the state accepts (tries until one is accepted). */
static void gen_event(struct gen *g, struct tr_event *ev)
{
	char why[TR_WHY_SIZE];

	for (;;) {
		memset(ev, 0, sizeof *ev);
		ev->kind = (enum tr_kind)pick(g, TR_KIND_COUNT);
		ev->a = some_id(g);
		ev->b = some_id(g);
		if (g->in_call != 0 && pick(g, 3) == 0) {
			ev->kind = TR_SYSRET;
			ev->a = g->in_call;
		}
		switch (ev->kind) {
		case TR_TASK: {
			static const char chars[] = "abcXYZ019._+-";
			size_t n = 1 + pick(g, TR_NAME_MAX);

			for (size_t i = 0; i < n; i++)
				ev->name[i] = chars[pick(g, sizeof chars - 1)];
			break;
		}
		case TR_ENDTASK:
			ev->status = (int32_t)(uint32_t)kmt_rng(&g->rng);
			if (pick(g, 2))
				ev->status = 0;
			break;
		case TR_USER: case TR_TOUCH:
			ev->insns = kmt_rng(&g->rng) >> (16 + pick(g, 48));
			ev->cycles = pick(g, 2) ? ev->insns :
			             kmt_rng(&g->rng) >> (16 + pick(g, 48));
			ev->va = (uint32_t)kmt_rng(&g->rng) % TR_USER_TOP;
			ev->access = (uint8_t)(1u << pick(g, 3));
			break;
		case TR_SYSCALL:
			ev->id = pick(g, TR_SYS_COUNT);
			break;
		case TR_MAP: case TR_GRANT: case TR_UNMAP:
			gen_fpage(g, ev);
			ev->self = ev->kind == TR_UNMAP && pick(g, 2);
			if (ev->kind == TR_UNMAP)
				ev->va = 0;
			break;
		case TR_MARKER:
			ev->id = (uint32_t)kmt_rng(&g->rng);
			break;
		default:
			break;
		}
		if (ev->kind != TR_MAP && ev->kind != TR_GRANT &&
		    ev->kind != TR_TOUCH)
			ev->va = 0;
		if (ev->kind != TR_USER && ev->kind != TR_TOUCH)
			ev->insns = ev->cycles = 0;
		if (ev->kind != TR_TOUCH)
			ev->access = 0;
		if (ev->kind != TR_THREAD && ev->kind != TR_IPC &&
		    ev->kind != TR_MAP && ev->kind != TR_GRANT)
			ev->b = 0;
		if (tr_state_apply(g->st, ev, why, sizeof why) == 0)
			break;
	}
	if (ev->kind == TR_SYSCALL)
		g->in_call = ev->a;
	if (ev->kind == TR_SYSRET)
		g->in_call = 0;
}

static void assert_same_event(const struct tr_event *a,
                              const struct tr_event *b, uint64_t i)
{
	if (a->kind != b->kind || a->a != b->a || a->b != b->b ||
	    a->va != b->va || a->base != b->base || a->log2 != b->log2 ||
	    a->rights != b->rights || a->access != b->access ||
	    a->self != b->self || a->id != b->id || a->status != b->status ||
	    a->insns != b->insns || a->cycles != b->cycles ||
	    strcmp(a->name, b->name) != 0) {
		char la[TR_LINE_MAX + 1], lb[TR_LINE_MAX + 1];

		tr_format(a, la);
		tr_format(b, lb);
		fail_msg("event %llu: wrote '%s', read '%s'",
		         (unsigned long long)i, la, lb);
	}
}

static void round_trip(const char *name, uint64_t seed, uint64_t n)
{
	struct gen g = { .rng = seed };
	struct tr_event *evs = calloc(n, sizeof *evs), ev;
	struct tr_writer *w;
	struct tr_reader *r;
	char path[128], why[TR_WHY_SIZE];
	uint64_t i = 0;
	int got;

	assert_non_null(evs);
	g.st = tr_state_new();
	assert_non_null(g.st);
	snprintf(path, sizeof path, "%s/%s", tmpdir, name);
	assert_int_equal(tr_create(path, &w, why, sizeof why), 0);
	assert_int_equal(tr_comment(w, "a random stream"), 0);
	for (i = 0; i < n; i++) {
		gen_event(&g, &evs[i]);
		if (tr_write(w, &evs[i]) != 0)
			fail_msg("write %llu: %s", (unsigned long long)i,
			         tr_writer_error(w));
	}
	assert_int_equal(tr_written(w), n);
	assert_int_equal(tr_finish(w, why, sizeof why), 0);
	if (tr_open(path, &r, why, sizeof why) != 0)
		fail_msg("%s", why);
	for (i = 0; (got = tr_next(r, &ev)) == 1; i++) {
		assert_true(i < n);
		assert_same_event(&evs[i], &ev, i);
	}
	if (got < 0)
		fail_msg("%s", tr_error(r));
	assert_int_equal(i, n);
	tr_close(r);
	tr_state_free(g.st);
	free(evs);
}

static uint64_t seed_for(const char *what)
{
	uint64_t seed = kmt_env_u64("KPSIM_TRACE_SEED", 0);

	if (seed == 0) {
		seed = (uint64_t)time(NULL) * 2654435761u ^ (uint64_t)getpid();
		for (const char *p = what; *p; p++)
			seed = seed * 31 + (unsigned char)*p;
		seed |= 1;
	}
	printf("%s: seed %llu (KPSIM_TRACE_SEED=%llu replays it)\n", what,
	       (unsigned long long)seed, (unsigned long long)seed);
	return seed;
}

static void test_round_trip_plain(void **state)
{
	(void)state;
	round_trip("plain.trace", seed_for("round trip, plain"), 20000);
}

static void test_round_trip_gzip(void **state)
{
	(void)state;
	round_trip("packed.trace.gz", seed_for("round trip, gzip"), 20000);
}

/* ---- Refusals ---------------------------------------------------------------- */

/* Reads text to its end or first error; returns the error ("" if none). */
static const char *read_all(const char *text, char *buf, size_t len)
{
	struct tr_reader *r;
	struct tr_event ev;
	char why[TR_WHY_SIZE];
	int got;

	if (tr_open_mem(text, strlen(text), "t.trace", &r, why,
	                sizeof why) != 0) {
		snprintf(buf, len, "%s", why);
		return buf;
	}
	while ((got = tr_next(r, &ev)) == 1)
		;
	snprintf(buf, len, "%s", got < 0 ? tr_error(r) : "");
	if (got < 0)
		assert_int_equal(tr_next(r, &ev), -1);  /* it sticks */
	tr_close(r);
	return buf;
}

#define H "kpsim-trace 1\n"
#define T H "task 1 init\nthread 1 1\n"

static const struct refusal {
	const char *text;
	const char *want;       /* "t.trace:LINE: reason..." prefix */
} refusals[] = {
	/* The header. */
	{ "", "t.trace:1: empty" },
	{ "kpsim-trace\n", "t.trace:1: the header must be" },
	{ "kpsim-trace 2\n", "t.trace:1: trace version 2; this kpsim reads version 1" },
	{ "kpsim-trace x\n", "t.trace:1: the header must be" },
	{ "task 1 init\n", "t.trace:1: not a kpsim trace" },
	/* Lines. */
	{ H "frobnicate 1\n", "t.trace:2: unknown event 'frobnicate'" },
	{ H "task 1\n", "t.trace:2: task takes 2 fields, not 1" },
	{ H "task 1 a b\n", "t.trace:2: task takes 2 fields, not 3" },
	{ T "touch 1 0x1000\n", "t.trace:4: touch takes 3 to 5 fields, not 2" },
	{ T "user 1 1 2 3 4 5 6 7 8\n", "t.trace:4: more than 7 fields" },
	/* Ids. */
	{ H "task 0 init\n", "t.trace:2: task 0 is not in 1 .. 65535" },
	{ H "task 65536 init\n", "t.trace:2: task 65536 is not in 1 .. 65535" },
	{ H "task x init\n", "t.trace:2: task 'x' is not a number" },
	{ H "task -1 init\n", "t.trace:2: task '-1' is not a number" },
	{ H "task 0x init\n", "t.trace:2: task '0x' is not a number" },
	{ T "thread 0 1\n", "t.trace:4: thread 0 is not in 1 .. 65535" },
	{ T "thread 2 99999999999999999999999\n", "t.trace:4: task 99999999999999999999999 is not in" },
	/* Names. */
	{ H "task 1 abcdefghijklmnopqrstuvwxyz0123456\n", "t.trace:2: task name longer than 31 bytes" },
	{ H "task 1 a/b\n", "t.trace:2: task: byte 2 of the name (0x2f)" },
	/* Status. */
	{ T "endtask 1 2147483648\n", "t.trace:4: status '2147483648' is not a number in" },
	{ T "endtask 1 -2147483649\n", "t.trace:4: status '-2147483649'" },
	{ T "endtask 1 --1\n", "t.trace:4: status '--1'" },
	/* Addresses and access kinds. */
	{ T "touch 1 0xc0000000 r\n", "t.trace:4: address 0xc0000000 is not in 0 .. 3221225471" },
	{ T "touch 1 0x100000000 r\n", "t.trace:4: address 0x100000000 is not in" },
	{ T "touch 1 0x1000 q\n", "t.trace:4: access 'q' is not r, w or x" },
	{ T "touch 1 0x1000 rw\n", "t.trace:4: access 'rw' is not r, w or x" },
	/* Counts. */
	{ T "user 1 281474976710656\n", "t.trace:4: instruction count 281474976710656 is not in 0 .. 281474976710655" },
	{ T "user 1 5 281474976710656\n", "t.trace:4: cycle count 281474976710656 is not in" },
	{ T "touch 1 0x1000 r 1 z\n", "t.trace:4: cycle count 'z' is not a number" },
	/* System calls. */
	{ T "syscall 1 fork\n", "t.trace:4: unknown system call 'fork'" },
	/* Flexpages, rights, destinations. */
	{ T "unmap 1 0x1000 rw\n", "t.trace:4: flexpage '0x1000' is not BASE/LOG2" },
	{ T "unmap 1 0x1000/11 rw\n", "t.trace:4: flexpage size (log2) 11 is not in 12 .. 31" },
	{ T "unmap 1 0x0/32 rw\n", "t.trace:4: flexpage size (log2) 32 is not in 12 .. 31" },
	{ T "unmap 1 0x1000/13 rw\n", "t.trace:4: unmap: 0x00001000/13 is not a flexpage" },
	{ T "unmap 1 0x80000000/31 rw\n", "t.trace:4: unmap: 0x80000000/31 is not a flexpage" },
	{ T "unmap 1 0x1000/12 wr\n", "t.trace:4: rights 'wr' are not '-' or a subset of rwx" },
	{ T "unmap 1 0x1000/12 rq\n", "t.trace:4: rights 'rq'" },
	{ T "unmap 1 0x1000/12 rr\n", "t.trace:4: rights 'rr'" },
	{ T "unmap 1 0x1000/12 r other\n", "t.trace:4: unmap's last field is 'self' or nothing, not 'other'" },
	{ T "task 2 b\nmap 1 0x2000/13 rw 2 0x1000\n", "t.trace:5: map: destination 0x00001000 is not a multiple of 2^13" },
	{ T "task 2 b\ngrant 1 0x1000/12 rw 2 0xbffff001\n", "t.trace:5: grant: destination 0xbffff001" },
	/* Markers. */
	{ T "marker 1 4294967296\n", "t.trace:4: marker 4294967296 is not in 0 .. 4294967295" },
	/* Liveness. */
	{ H "thread 1 1\n", "t.trace:2: thread: task 1 is not live" },
	{ T "task 1 again\n", "t.trace:4: task: task 1 is live already" },
	{ T "thread 1 1\n", "t.trace:4: thread: thread 1 is live already" },
	{ T "touch 2 0x1000 r\n", "t.trace:4: touch: thread 2 is not live" },
	{ T "endtask 1\ntouch 1 0x1000 r\n", "t.trace:5: touch: thread 1 is not live" },
	{ T "endthread 1\nendthread 1\n", "t.trace:5: endthread: thread 1 is not live" },
	{ T "sysret 1\n", "t.trace:4: sysret: thread 1 is not in a system call" },
	{ T "syscall 1 write\nsyscall 1 write\n", "t.trace:5: syscall: thread 1 is in a system call already" },
	{ T "syscall 1 exit\nendthread 1\nthread 1 1\n", "t.trace:6: thread: thread 1 ended in a system call" },
	{ T "ipc 1 1\n", "t.trace:4: ipc: thread 1 sends to itself" },
	{ T "ipc 1 2\n", "t.trace:4: ipc: thread 2 is not live" },
	{ T "map 1 0x1000/12 r 2 0x1000\n", "t.trace:4: map: task 2 is not live" },
	{ H "unmap 3 0x1000/12 r\n", "t.trace:2: unmap: task 3 is not live" },
	{ T "marker 7 1\n", "t.trace:4: marker: thread 7 is not live" },
};

static void test_refusals(void **state)
{
	char got[TR_WHY_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
		const struct refusal *f = &refusals[i];
		const char *text = f->text;
		size_t len = strlen(text);
		struct tr_reader *r;
		struct tr_event ev;
		char why[TR_WHY_SIZE];
		int rc;

		if (tr_open_mem(text, len, "t.trace", &r, why, sizeof why) != 0) {
			snprintf(got, sizeof got, "%s", why);
		} else {
			while ((rc = tr_next(r, &ev)) == 1)
				;
			snprintf(got, sizeof got, "%s", rc < 0 ? tr_error(r) :
			         "(accepted)");
			tr_close(r);
		}
		if (strncmp(got, f->want, strlen(f->want)) != 0)
			fail_msg("refusal %zu: for\n%s\nwanted '%s...'\ngot    "
			         "'%s'", i, text, f->want, got);
	}
}

static void test_nul_and_long_lines(void **state)
{
	static const char nul[] = H "task 1 a\0b\n";
	char got[TR_WHY_SIZE], line[600];
	struct tr_reader *r;
	struct tr_event ev;
	char why[TR_WHY_SIZE];

	(void)state;
	assert_int_equal(tr_open_mem(nul, sizeof nul - 1, "t.trace", &r, why,
	                             sizeof why), 0);
	assert_int_equal(tr_next(r, &ev), -1);
	assert_string_equal(tr_error(r), "t.trace:2: a NUL byte in the line");
	tr_close(r);

	snprintf(line, sizeof line, H "task 1 init # %0300d\n", 7);
	assert_string_equal(read_all(line, got, sizeof got),
	                    "t.trace:2: line longer than 255 bytes");
}

/* What the reader accepts besides the plain form. */
static void test_accepted_forms(void **state)
{
	static const char text[] =
		"kpsim-trace 1   # the header may carry a comment\r\n"
		"\n"
		"   # an indented comment\n"
		"task\t1\tinit # trailing comment\n"
		"thread 0x1 1\r\n"
		"touch 1 0xBFFFFFFF x 0 0\n"
		"touch 1 4096 r 7\n"
		"endtask 1 -2147483648\n"
		"task 1 init";          /* no newline at the end */
	struct tr_reader *r;
	struct tr_event ev;
	char why[TR_WHY_SIZE];

	(void)state;
	assert_int_equal(tr_open_mem(text, strlen(text), "t.trace", &r, why,
	                             sizeof why), 0);
	assert_int_equal(tr_next(r, &ev), 1);
	assert_int_equal(ev.kind, TR_TASK);
	assert_string_equal(ev.name, "init");
	assert_int_equal(tr_line(r), 4);
	assert_int_equal(tr_next(r, &ev), 1);
	assert_int_equal(ev.kind, TR_THREAD);
	assert_int_equal(ev.a, 1);
	assert_int_equal(tr_next(r, &ev), 1);
	assert_int_equal(ev.va, 0xBFFFFFFFu);
	assert_int_equal(ev.access, TR_ACC_EXEC);
	assert_int_equal(tr_next(r, &ev), 1);
	assert_int_equal(ev.va, 4096);
	assert_int_equal(ev.insns, 7);
	assert_int_equal(ev.cycles, 7);         /* absent: one per insn */
	assert_int_equal(tr_next(r, &ev), 1);
	assert_int_equal(ev.status, INT32_MIN);
	assert_int_equal(tr_next(r, &ev), 1);   /* the id is free again */
	assert_int_equal(tr_line(r), 9);
	assert_int_equal(tr_next(r, &ev), 0);
	tr_close(r);
}

/* The writer refuses what the reader would, and tr_finish says so. */
static void test_writer_refuses(void **state)
{
	struct tr_writer *w;
	struct tr_event ev;
	char path[128], why[TR_WHY_SIZE];

	(void)state;
	snprintf(path, sizeof path, "%s/refused.trace", tmpdir);
	assert_int_equal(tr_create(path, &w, why, sizeof why), 0);
	memset(&ev, 0, sizeof ev);
	ev.kind = TR_TOUCH;
	ev.a = 3;
	ev.access = TR_ACC_READ;
	assert_int_equal(tr_write(w, &ev), -1);
	assert_non_null(strstr(tr_writer_error(w), "touch: thread 3 is not "
	                                           "live"));
	assert_int_equal(tr_comment(w, "after"), -1);
	assert_int_equal(tr_finish(w, why, sizeof why), -1);
	assert_non_null(strstr(why, "event 1 refused"));

	assert_int_equal(tr_create("/nonexistent-dir/x.trace", &w, why,
	                           sizeof why), -1);
	assert_non_null(strstr(why, "/nonexistent-dir/x.trace: "));
}

static void test_open_errors(void **state)
{
	struct tr_reader *r;
	char why[TR_WHY_SIZE], path[128];
	FILE *f;

	(void)state;
	assert_int_equal(tr_open("/nonexistent.trace", &r, why, sizeof why),
	                 -1);
	assert_null(r);
	assert_string_equal(why, "/nonexistent.trace: No such file or "
	                    "directory");
	assert_int_equal(tr_open(tmpdir, &r, why, sizeof why), -1);
	assert_non_null(strstr(why, "a directory, not a trace"));
	/* A gzip file cut short is an error, not a short trace. */
	snprintf(path, sizeof path, "%s/cut.trace.gz", tmpdir);
	round_trip("whole.trace.gz", 12345, 3000);
	{
		char whole[128], cmd[400];

		snprintf(whole, sizeof whole, "%s/whole.trace.gz", tmpdir);
		snprintf(cmd, sizeof cmd, "head -c 2000 %s > %s", whole, path);
		assert_int_equal(system(cmd), 0);
	}
	/* zlib may find the cut at the first read (the header's) or later:
	 * either way an error naming the file, never a clean end. */
	if (tr_open(path, &r, why, sizeof why) != 0) {
		assert_non_null(strstr(why, "cut.trace.gz:"));
	} else {
		struct tr_event ev;
		int got;

		while ((got = tr_next(r, &ev)) == 1)
			;
		assert_int_equal(got, -1);
		assert_non_null(strstr(tr_error(r), "cut.trace.gz:"));
		tr_close(r);
	}
	f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(tr_open(path, &r, why, sizeof why), -1);
	assert_non_null(strstr(why, ":1: empty"));
}

/*
 * Reads the trace buf[0 .. n) twice, with the fast path for touch and user
 * lines and with the general parser only, and fails unless both give the
 * same events and the same error.  Returns what the last tr_next gave, or
 * 2 if the trace was refused at open.
 */
static int read_both(const char *buf, size_t n)
{
	struct tr_reader *fast, *general;
	struct tr_event a, b;
	char why_a[TR_WHY_SIZE], why_b[TR_WHY_SIZE];
	int ga, gb, oa, ob;

	oa = tr_open_mem(buf, n, "m.trace", &fast, why_a, sizeof why_a);
	ob = tr_open_mem(buf, n, "m.trace", &general, why_b, sizeof why_b);
	assert_int_equal(oa, ob);
	if (oa != 0) {
		assert_string_equal(why_a, why_b);
		return 2;
	}
	tr_reader_general_only(general);
	do {
		memset(&a, 0, sizeof a);
		memset(&b, 0, sizeof b);
		ga = tr_next(fast, &a);
		gb = tr_next(general, &b);
		if (ga != gb)
			fail_msg("line %llu read with the fast path: %d, with "
			         "the general parser: %d (%s)",
			         (unsigned long long)tr_line(general), ga, gb,
			         tr_error(general));
		if (ga == 1 && memcmp(&a, &b, sizeof a) != 0)
			fail_msg("the fast path read line %llu otherwise",
			         (unsigned long long)tr_line(general));
	} while (ga == 1);
	assert_string_equal(tr_error(fast), tr_error(general));
	tr_close(fast);
	tr_close(general);
	return ga;
}

/* Touch and user lines near the fast path's edges: every one is read the
 * same with and without it. */
static void test_fast_path_agrees(void **state)
{
	static const char *const base[] = {
		"touch 1 0x08049000 w", "touch 1 0x08049000 r 12",
		"touch 1 134516736 x 12 15", "user 1 1200", "user 1 1200 1500",
		"touch 65535 0xbffff000 w", "user 1 281474976710655",
		"touch 1 0xBFFFF000 r", "user 1 007 0x10",
	};
	static const char alphabet[] = " \t#xX0123456789abcdefABCDEFrwxu\r-";
	static const char prefix[] = H "task 1 p\nthread 1 1\n";
	uint64_t seed = seed_for("fast path"), rng = seed;
	uint64_t rounds = kmt_env_u64("KPSIM_TRACE_MUTATIONS", 20000);
	int accepted = 0;

	(void)state;
	for (uint64_t i = 0; i < rounds; i++) {
		char line[64], buf[160];
		size_t n, k = kmt_rng(&rng) % 4;

		n = (size_t)snprintf(line, sizeof line, "%s",
		                     base[kmt_rng(&rng) % (sizeof base /
		                                          sizeof base[0])]);
		for (size_t j = 0; j < k && n > 0; j++) {
			size_t at = kmt_rng(&rng) % n;

			switch (kmt_rng(&rng) % 4) {
			case 0:         /* a byte of the alphabet */
				line[at] = alphabet[kmt_rng(&rng) %
				                    (sizeof alphabet - 1)];
				break;
			case 1:         /* any byte */
				line[at] = (char)kmt_rng(&rng);
				break;
			case 2:         /* a digit inserted (long numbers) */
				if (n + 1 < sizeof line) {
					memmove(line + at + 1, line + at, n - at);
					line[at] = (char)('0' + kmt_rng(&rng) % 10);
					n++;
				}
				break;
			default:        /* a byte removed */
				memmove(line + at, line + at + 1, n - at - 1);
				n--;
				break;
			}
		}
		memcpy(buf, prefix, sizeof prefix - 1);
		memcpy(buf + sizeof prefix - 1, line, n);
		buf[sizeof prefix - 1 + n] = '\n';
		accepted += read_both(buf, sizeof prefix + n) == 0;
	}
	/* Both kinds of outcome were met. */
	assert_true(accepted > 0 && (uint64_t)accepted < rounds);
}

/* Mutated traces: the reader returns events or an error, never crashes
 * (ASan and UBSan builds check the "never"). */
static void test_mutations(void **state)
{
	uint64_t seed = seed_for("mutations");
	uint64_t rng = seed, rounds = kmt_env_u64("KPSIM_TRACE_MUTATIONS",
	                                          20000);
	struct gen g = { .rng = seed };
	char base[8192], buf[8192 + 64];
	size_t len = 0;

	(void)state;
	g.st = tr_state_new();
	len = (size_t)snprintf(base, sizeof base, H);
	while (len < sizeof base - TR_LINE_MAX - 2) {
		struct tr_event ev;

		gen_event(&g, &ev);
		len += tr_format(&ev, base + len);
		base[len++] = '\n';
	}
	tr_state_free(g.st);
	for (uint64_t i = 0; i < rounds; i++) {
		size_t n = len, k = 1 + kmt_rng(&rng) % 4;
		struct tr_reader *r;
		struct tr_event ev;
		char why[TR_WHY_SIZE];
		int got;

		memcpy(buf, base, len);
		for (size_t j = 0; j < k; j++) {
			size_t at = kmt_rng(&rng) % n;

			switch (kmt_rng(&rng) % 4) {
			case 0:         /* a random byte */
				buf[at] = (char)kmt_rng(&rng);
				break;
			case 1:         /* a digit or a separator */
				buf[at] = " \n#/x-0919"[kmt_rng(&rng) % 10];
				break;
			case 2:         /* cut */
				n = at;
				break;
			default:        /* a byte removed */
				memmove(buf + at, buf + at + 1, n - at - 1);
				n--;
				break;
			}
			if (n == 0)
				break;
		}
		if (read_both(buf, n) == 2 ||
		    tr_open_mem(buf, n, "m.trace", &r, why, sizeof why) != 0)
			continue;
		while ((got = tr_next(r, &ev)) == 1) {
			/* What it returns is in range. */
			assert_true(ev.a >= 1 && ev.a <= TR_ID_MAX);
			assert_true((unsigned)ev.kind < TR_KIND_COUNT);
		}
		if (got < 0)
			assert_non_null(strstr(tr_error(r), "m.trace:"));
		tr_close(r);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_plain),
		cmocka_unit_test(test_round_trip_gzip),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_nul_and_long_lines),
		cmocka_unit_test(test_accepted_forms),
		cmocka_unit_test(test_writer_refuses),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_mutations),
		cmocka_unit_test(test_fast_path_agrees),
	};

	return cmocka_run_group_tests(tests, make_tmpdir, remove_tmpdir);
}
