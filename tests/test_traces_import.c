/*
 * The importers (traces/import.h), on real inputs kept in tests/data:
 * - busybox-true.lackey: the first 420 lines of valgrind lackey's log of
 *   Debian's busybox-static:i386 running `true` (this machine runs i386
 *   code only under qemu-i386, where valgrind gets this far);
 * - amd64-true.lackey: lackey's log of a 64-bit /bin/true, refused;
 * - i386-busybox.maps: /proc/self/maps as an i386 busybox saw it (under
 *   qemu-i386 -R 0xC0000000), with a pagemap made here;
 * - i386-busybox-sh.maps and .pagemap: a whole snapshot, maps and the
 *   present pages, of an i386 busybox sh asleep (under qemu-i386);
 * and on small made-up inputs for what real ones rarely show (accesses
 * straddling pages, writes after reads, every malformed line).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "import.h"
#include "trace.h"

#ifndef DATA_DIR
#error "DATA_DIR must name tests/data"
#endif

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof tmpdir, "/tmp/kpsim-import-XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* The events of a trace file, read back with the checking reader. */
struct events {
	struct tr_event v[4096];
	size_t n;
};

static void read_back(const char *path, struct events *e)
{
	struct tr_reader *r;
	char why[TR_WHY_SIZE];
	int got;

	if (tr_open(path, &r, why, sizeof why) != 0)
		fail_msg("%s", why);
	e->n = 0;
	while ((got = tr_next(r, &e->v[e->n])) == 1)
		assert_true(++e->n < 4096);
	if (got < 0)
		fail_msg("the import does not read back: %s", tr_error(r));
	tr_close(r);
}

/* Imports text (or a file when text is NULL) with the lackey importer;
 * returns its result, the events in e when it succeeded. */
static int lackey(const char *text, const char *file, const char *name,
                  struct events *e, struct tr_import_stats *st, char *why,
                  size_t why_len, size_t text_len)
{
	char out[128];
	struct tr_writer *w;
	FILE *in;
	int rc;

	snprintf(out, sizeof out, "%s/out.trace", tmpdir);
	if (text != NULL)
		in = fmemopen((void *)text, text_len ? text_len : strlen(text),
		              "r");
	else
		in = fopen(file, "r");
	assert_non_null(in);
	assert_int_equal(tr_create(out, &w, why, why_len), 0);
	rc = tr_import_lackey(in, text ? "t.lackey" : strrchr(file, '/') + 1,
	                      name, w, st, why, why_len);
	fclose(in);
	tr_finish(w, why + (rc ? strlen(why) : 0), rc ? 1 : why_len);
	if (rc == 0)
		read_back(out, e);
	return rc;
}

static void expect_touch(const struct tr_event *ev, uint32_t va,
                         uint8_t access, uint64_t insns)
{
	if (ev->kind != TR_TOUCH || ev->va != va || ev->access != access ||
	    ev->insns != insns || ev->cycles != insns) {
		char line[TR_LINE_MAX + 1];

		tr_format(ev, line);
		fail_msg("got '%s', expected touch 1 0x%08x %c %llu", line, va,
		         access == TR_ACC_WRITE ? 'w' : access == TR_ACC_EXEC ?
		         'x' : 'r', (unsigned long long)insns);
	}
}

/* Every instruction is counted once: in a touch, or in the last user. */
static uint64_t counted(const struct events *e)
{
	uint64_t n = 0;

	for (size_t i = 0; i < e->n; i++)
		if (e->v[i].kind == TR_TOUCH || e->v[i].kind == TR_USER)
			n += e->v[i].insns;
	return n;
}

static void test_lackey_real_busybox(void **state)
{
	static struct events e;
	struct tr_import_stats st;
	char why[TR_WHY_SIZE];

	(void)state;
	if (lackey(NULL, DATA_DIR "/busybox-true.lackey", NULL, &e, &st, why,
	           sizeof why, 0) != 0)
		fail_msg("%s", why);
	/* The name from valgrind's "Command:" line. */
	assert_int_equal(e.v[0].kind, TR_TASK);
	assert_string_equal(e.v[0].name, "busybox");
	assert_int_equal(e.v[1].kind, TR_THREAD);
	/* The first instruction's fetch; its stack load (the instruction
	 * at 08049b02 has completed one before it); the first store to the
	 * same page three instructions later; the next code page. */
	expect_touch(&e.v[2], 0x08049000, TR_ACC_EXEC, 0);
	expect_touch(&e.v[3], 0x3f800000, TR_ACC_READ, 1);
	expect_touch(&e.v[4], 0x3f800000, TR_ACC_WRITE, 3);
	expect_touch(&e.v[5], 0x0804b000, TR_ACC_EXEC, 14);
	/* What the 414 trace lines hold, counted independently with
	 * grep: 314 instructions, 100 data accesses, 8 pages. */
	assert_int_equal(st.lines, 420);
	assert_int_equal(st.insns, 314);
	assert_int_equal(st.accesses, 100);
	assert_int_equal(st.pages, 8);
	assert_int_equal(counted(&e), st.insns);
	assert_int_equal(e.v[e.n - 2].kind, TR_ENDTHREAD);
	assert_int_equal(e.v[e.n - 1].kind, TR_ENDTASK);
	assert_int_equal(st.events, e.n);
}

static void test_lackey_straddles_and_writes(void **state)
{
	static const char text[] =
		"==1== Command: /opt/x/prog arg\n"
		"I  08048ffe,4\n"               /* fetch over two pages */
		" L 0804affc,8\n"               /* load over two pages */
		"I  08049002,2\n"
		" S 0804a000,4\n"               /* write after read: w */
		"I  08049004,1\n"
		" M 0804c000,4\n"               /* modify: w at once */
		"I  08049005,1\n"
		" L 0804c004,4\n"               /* read after write: nothing */
		"I  08049006,1\n"
		"I  08049007,1\n";
	static struct events e;
	struct tr_import_stats st;
	char why[TR_WHY_SIZE];

	(void)state;
	if (lackey(text, NULL, NULL, &e, &st, why, sizeof why, 0) != 0)
		fail_msg("%s", why);
	assert_string_equal(e.v[0].name, "prog");
	expect_touch(&e.v[2], 0x08048000, TR_ACC_EXEC, 0);
	expect_touch(&e.v[3], 0x08049000, TR_ACC_EXEC, 0);
	expect_touch(&e.v[4], 0x0804a000, TR_ACC_READ, 0);
	expect_touch(&e.v[5], 0x0804b000, TR_ACC_READ, 0);
	expect_touch(&e.v[6], 0x0804a000, TR_ACC_WRITE, 1);
	expect_touch(&e.v[7], 0x0804c000, TR_ACC_WRITE, 1);
	/* Three more instructions completed, the last at the end. */
	assert_int_equal(e.v[8].kind, TR_USER);
	assert_int_equal(e.v[8].insns, 4);
	assert_int_equal(counted(&e), 6);
	assert_int_equal(st.pages, 5);
	assert_int_equal(e.n, 11);
}

static void test_lackey_name_given(void **state)
{
	static struct events e;
	struct tr_import_stats st;
	char why[TR_WHY_SIZE];

	(void)state;
	assert_int_equal(lackey("I  00001000,1\n", NULL, "my prog/2", &e, &st,
	                        why, sizeof why, 0), 0);
	assert_string_equal(e.v[0].name, "my_prog_2");
	assert_int_equal(lackey("I  00001000,1\n", NULL, NULL, &e, &st, why,
	                        sizeof why, 0), 0);
	assert_string_equal(e.v[0].name, "lackey");     /* no Command: */
}

/* A log without an instruction is not lackey's account of a run: an
 * empty file, or valgrind's own lines alone (its log went elsewhere). */
static void test_lackey_no_instruction(void **state)
{
	static struct events e;
	struct tr_import_stats st;
	char why[TR_WHY_SIZE];

	(void)state;
	assert_int_equal(lackey("", NULL, NULL, &e, &st, why, sizeof why, 0),
	                 -1);
	assert_non_null(strstr(why, "no instruction ('I  ADDR,SIZE') in 0 "
	                       "lines"));
	assert_int_equal(lackey("==7== Lackey, an example Valgrind tool\n"
	                        "==7== Command: /bin/true\n\n", NULL, NULL,
	                        &e, &st, why, sizeof why, 0), -1);
	assert_non_null(strstr(why, "in 3 lines"));
	assert_int_equal(lackey(" L 00001000,4\n", NULL, NULL, &e, &st, why,
	                        sizeof why, 0), -1);
	assert_non_null(strstr(why, "no instruction"));
}

/* The whole of a small file, NUL-terminated, in buf. */
static void slurp(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, size - 1, f);
	assert_true(n < size - 1);
	buf[n] = '\0';
	fclose(f);
}

/* Valgrind's three kinds of lines of its own (here as valgrind -v wrote
 * them), around lackey's: the log's tool, version and command become
 * comments, and its exit code the task's status. */
static void test_lackey_valgrind_lines(void **state)
{
	static const char text[] =
		"==12812== Lackey, an example Valgrind tool\n"
		"==12812== Copyright (C) 2002-2017, and GNU GPL'd, by "
		"Nicholas Nethercote.\n"
		"==12812== Using Valgrind-3.19.0-8d3c8034b8-20220411 and "
		"LibVEX; rerun with -h for copyright info\n"
		"==12812== Command: /usr/bin/my\\ prog -x\n"
		"--12812-- Valgrind options:\n"
		"--12812--    --tool=lackey\n"
		"==12812== \n"
		"I  08048000,2\n"
		"--12812-- WARNING: unhandled x86-linux syscall: 999\n"
		"**12812** a client message\n"
		" S 0804c000,4\n"
		"I  08048002,1\n"
		"==12812== \n"
		"==12812== Exit code:       3\n";
	static const char want[] =
		"kpsim-trace 1\n"
		"# lackey log: Lackey, an example Valgrind tool\n"
		"# lackey log: Using Valgrind-3.19.0-8d3c8034b8-20220411 and "
		"LibVEX; rerun with -h for copyright info\n"
		"# lackey log: Command: /usr/bin/my\\ prog -x\n"
		"task 1 my_prog\n"
		"thread 1 1\n"
		"touch 1 0x08048000 x\n"
		"touch 1 0x0804c000 w\n"
		"user 1 2\n"
		"endthread 1\n"
		"endtask 1 3\n";
	static struct events e;
	struct tr_import_stats st;
	char why[TR_WHY_SIZE], path[128], got[1024];

	(void)state;
	if (lackey(text, NULL, NULL, &e, &st, why, sizeof why, 0) != 0)
		fail_msg("%s", why);
	snprintf(path, sizeof path, "%s/out.trace", tmpdir);
	slurp(path, got, sizeof got);
	assert_string_equal(got, want);
	assert_int_equal(st.lines, 14);
	assert_int_equal(e.n, 7);
	assert_int_equal(e.v[6].status, 3);
}

/* A comment from the log is one printable line, however long. */
static void test_lackey_comment_cut(void **state)
{
	static char text[1200];
	static struct events e;
	struct tr_import_stats st;
	char why[TR_WHY_SIZE], path[128], got[1024], *nl;
	size_t n;

	(void)state;
	n = (size_t)snprintf(text, sizeof text, "==1== Command: /x/");
	memset(text + n, 'a', 900);
	n += 900;
	n += (size_t)snprintf(text + n, sizeof text - n, "\x01\x7f b\n"
	                      "I  08048000,1\n");
	if (lackey(text, NULL, NULL, &e, &st, why, sizeof why, 0) != 0)
		fail_msg("%s", why);
	/* The name: 31 bytes of the last path component. */
	assert_string_equal(e.v[0].name, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	snprintf(path, sizeof path, "%s/out.trace", tmpdir);
	slurp(path, got, sizeof got);
	nl = strchr(got + strlen("kpsim-trace 1\n"), '\n');
	assert_non_null(nl);
	/* "# lackey log: Command: /x/aaa...": TR_LINE_MAX - 2 bytes after
	 * "# ", all of them printable. */
	assert_int_equal(nl - got - strlen("kpsim-trace 1\n"), TR_LINE_MAX);
	assert_memory_equal(got + strlen("kpsim-trace 1\n"),
	                    "# lackey log: Command: /x/aaa", 29);
	/* Shorter: the unprintable bytes become '?'. */
	snprintf(text, sizeof text, "==1== Command: /x/aaaaaaaaaa\x01\x7f b\n"
	         "I  08048000,1\n");
	if (lackey(text, NULL, NULL, &e, &st, why, sizeof why, 0) != 0)
		fail_msg("%s", why);
	slurp(path, got, sizeof got);
	assert_non_null(strstr(got, "\n# lackey log: Command: /x/aaaaaaaaaa"
	                       "?? b\ntask 1 aaaaaaaaaa__\n"));
}

/* Two processes in one log (a child forked and traced): refused, as the
 * accesses of both are mixed without saying whose they are. */
static void test_lackey_two_processes(void **state)
{
	static struct events e;
	struct tr_import_stats st;
	char why[TR_WHY_SIZE];

	(void)state;
	assert_int_equal(lackey("==7== Lackey\nI  08048000,2\n==8== \n"
	                        "==8== Exit code: 0\n", NULL, NULL, &e, &st,
	                        why, sizeof why, 0), -1);
	assert_string_equal(why, "t.lackey:3: valgrind's lines of a second "
	                    "process (8, the log began with 7): the program "
	                    "forked, and both wrote their accesses here; give "
	                    "valgrind --log-file=LOG.%p");
}

static const struct {
	const char *text;
	const char *want;
} refusals[] = {
	/* Not valgrind's own lines either: no pid, no closing mark. */
	{ "==x== hello\n", "t.lackey:1: not a lackey line" },
	{ "==12 hello\n", "t.lackey:1: not a lackey line" },
	{ "=-12-= hello\n", "t.lackey:1: not a lackey line" },
	{ "==12345678901== hello\n", "t.lackey:1: not a lackey line" },
	{ "I  bffffffe,4\n", "t.lackey:1: address 0xbffffffe (4 bytes) is "
	  "not in IA-32 user space (below 0xc0000000): trace an i386 program "
	  "run under setarch i386 -3 -R" },
	{ "I  08048000,2\n L c0000000,1\n", "t.lackey:2: address 0xc0000000" },
	/* 64-bit addresses whose end wraps past 2^64 to a small number. */
	{ "I  08048000,2\n L fffffffffffffffe,4\n",
	  "t.lackey:2: address 0xfffffffffffffffe (4 bytes) is not in IA-32" },
	{ "I  08048000,2\n S ffffffffffffffff,2\n",
	  "t.lackey:2: address 0xffffffffffffffff (2 bytes) is not in IA-32" },
	{ "I  08048000,2\nhello world\n", "t.lackey:2: not a lackey line" },
	{ "I  08048000\n", "t.lackey:1: '08048000' is not ADDR,SIZE" },
	{ "I  zz,3\n", "t.lackey:1: 'zz,3' is not ADDR,SIZE" },
	{ "I  08048000,5000\n", "t.lackey:1: '08048000,5000' is not ADDR,SIZE" },
	{ "I  08048000,3x\n", "t.lackey:1: '08048000,3x' is not ADDR,SIZE" },
	{ "I  12345678901234567,3\n", "t.lackey:1: '12345678901234567,3'" },
	{ " X 08048000,3\n", "t.lackey:1: not a lackey line" },
	{ "IL 08048000,3\n", "t.lackey:1: not a lackey line" },
};

static void test_lackey_refusals(void **state)
{
	static struct events e;
	struct tr_import_stats st;
	char why[TR_WHY_SIZE];

	(void)state;
	for (size_t i = 0; i < sizeof refusals / sizeof refusals[0]; i++) {
		why[0] = '\0';
		if (lackey(refusals[i].text, NULL, NULL, &e, &st, why,
		           sizeof why, 0) == 0)
			fail_msg("accepted: %s", refusals[i].text);
		if (strncmp(why, refusals[i].want, strlen(refusals[i].want)))
			fail_msg("for %s\nwanted '%s'\ngot    '%s'",
			         refusals[i].text, refusals[i].want, why);
	}
	/* A NUL byte. */
	assert_int_equal(lackey("I  0804\0" "8000,2\n", NULL, NULL, &e, &st,
	                        why, sizeof why, 15), -1);
	assert_string_equal(why, "t.lackey:1: a NUL byte in the line");
	/* A real 64-bit program: its stack is far above 3 GiB. */
	assert_int_equal(lackey(NULL, DATA_DIR "/amd64-true.lackey", NULL, &e,
	                        &st, why, sizeof why, 0), -1);
	assert_string_equal(why, "amd64-true.lackey:9: address 0x1fff000628 "
	                    "(8 bytes) is not in IA-32 user space (below "
	                    "0xc0000000): trace an i386 program run under "
	                    "setarch i386 -3 -R");
}

/* ---- /proc snapshots --------------------------------------------------------- */

/* A pagemap for the i386 maps: the pages in present[] are present, the
 * one in swapped is swapped out, every other is absent. */
static void make_pagemap(const char *path, const uint32_t *present,
                         size_t n, uint32_t swapped)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	uint64_t ent;

	assert_true(fd >= 0);
	/* Every page of the maps must be readable: a sparse file of zero
	 * entries up to 3 GiB's worth. */
	assert_int_equal(ftruncate(fd, (off_t)(0xC0000000ull >> 12) * 8), 0);
	for (size_t i = 0; i < n; i++) {
		ent = 1ull << 63 | 0x1234;
		assert_int_equal(pwrite(fd, &ent, 8, (off_t)(present[i] >> 12)
		                        * 8), 8);
	}
	ent = 1ull << 62;
	assert_int_equal(pwrite(fd, &ent, 8, (off_t)(swapped >> 12) * 8), 8);
	close(fd);
}

static void test_proc_i386_snapshot(void **state)
{
	static const uint32_t present[] = {
		0x08048000, 0x08049000, 0x08239000,     /* text (r--p) */
		0x0823e000,                             /* data (rw-p) */
		0x3ffff000,                             /* r-xp */
		0x40800000,                             /* the stack */
		0x40000000,                             /* ---p: as given */
	};
	static struct events e;
	struct tr_import_stats st;
	struct tr_writer *w;
	char pm[128], out[128], why[TR_WHY_SIZE];

	(void)state;
	snprintf(pm, sizeof pm, "%s/pagemap", tmpdir);
	snprintf(out, sizeof out, "%s/proc.trace", tmpdir);
	make_pagemap(pm, present, sizeof present / sizeof present[0],
	             0x08240000);
	assert_int_equal(tr_create(out, &w, why, sizeof why), 0);
	if (tr_import_proc_files(DATA_DIR "/i386-busybox.maps", pm, "busybox",
	                         w, &st, why, sizeof why) != 0)
		fail_msg("%s", why);
	assert_int_equal(tr_finish(w, why, sizeof why), 0);
	read_back(out, &e);
	assert_string_equal(e.v[0].name, "busybox");
	/* In address order, with the mapping's access kind. */
	expect_touch(&e.v[2], 0x08048000, TR_ACC_READ, 0);
	expect_touch(&e.v[3], 0x08049000, TR_ACC_READ, 0);
	expect_touch(&e.v[4], 0x08239000, TR_ACC_READ, 0);
	expect_touch(&e.v[5], 0x0823e000, TR_ACC_WRITE, 0);
	expect_touch(&e.v[6], 0x08240000, TR_ACC_WRITE, 0);   /* swapped */
	expect_touch(&e.v[7], 0x3ffff000, TR_ACC_EXEC, 0);
	expect_touch(&e.v[8], 0x40000000, TR_ACC_READ, 0);
	expect_touch(&e.v[9], 0x40800000, TR_ACC_WRITE, 0);
	assert_int_equal(e.v[10].kind, TR_ENDTHREAD);
	assert_int_equal(e.n, 12);
	assert_int_equal(st.pages, 8);
	assert_int_equal(st.lines, 8);
}

/*
 * A real snapshot: i386-busybox-sh.maps is what an i386 busybox sh, asleep
 * under qemu-i386, read of its own /proc/self/maps; i386-busybox-sh.pagemap
 * lists the runs of present pages the host's pagemap held for it then, as
 * "VA PAGES ENTRY" (traces/regenerate-samples.sh, KPSIM_TESTDATA).  The
 * counts below were made by hand from those two files.
 */
static void test_proc_real_snapshot(void **state)
{
	static struct events e;
	struct tr_import_stats st;
	struct tr_writer *w;
	char pm[128], out[128], why[TR_WHY_SIZE];
	unsigned va, pages, acc[8] = { 0 };
	unsigned long long ent;
	FILE *f;
	int fd;

	(void)state;
	/* The excerpt, back to a pagemap: a sparse file of 3 GiB's entries. */
	snprintf(pm, sizeof pm, "%s/pagemap", tmpdir);
	fd = open(pm, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)(0xC0000000ull >> 12) * 8), 0);
	f = fopen(DATA_DIR "/i386-busybox-sh.pagemap", "r");
	assert_non_null(f);
	while (fscanf(f, "%x %u %llx", &va, &pages, &ent) == 3)
		for (unsigned i = 0; i < pages; i++)
			assert_int_equal(pwrite(fd, &ent, 8, (off_t)((va >> 12)
			                        + i) * 8), 8);
	assert_true(feof(f));
	fclose(f);
	close(fd);

	snprintf(out, sizeof out, "%s/real.trace", tmpdir);
	assert_int_equal(tr_create(out, &w, why, sizeof why), 0);
	if (tr_import_proc_files(DATA_DIR "/i386-busybox-sh.maps", pm, NULL,
	                         w, &st, why, sizeof why) != 0)
		fail_msg("%s", why);
	assert_int_equal(tr_finish(w, why, sizeof why), 0);
	read_back(out, &e);
	assert_string_equal(e.v[0].name, "proc");
	assert_int_equal(st.lines, 8);
	assert_int_equal(st.pages, 401);
	assert_int_equal(e.n, 401 + 4);
	/* In address order, each page once. */
	for (size_t i = 3; i < 2 + 401; i++)
		assert_true(e.v[i].va > e.v[i - 1].va);
	for (size_t i = 2; i < 2 + 401; i++)
		acc[e.v[i].access]++;
	/* qemu shows busybox's text r--p (one host mapping, the rights of
	 * its first page), its relro r--p; then the data, brk and stack rw;
	 * the signal trampoline r-x. */
	assert_int_equal(acc[TR_ACC_READ], 160 + 32 * 3 + 128 + 2 + 2);
	assert_int_equal(acc[TR_ACC_WRITE], 2 + 5 + 1 + 2 + 2);
	assert_int_equal(acc[TR_ACC_EXEC], 1);
	expect_touch(&e.v[2], 0x08048000, TR_ACC_READ, 0);
	expect_touch(&e.v[2 + 160 + 96 + 128 + 3], 0x0823d000, TR_ACC_READ,
	             0);
	expect_touch(&e.v[2 + 160 + 96 + 128 + 4], 0x0823e000, TR_ACC_WRITE,
	             0);
	expect_touch(&e.v[2 + 398], 0x3ffff000, TR_ACC_EXEC, 0);
	expect_touch(&e.v[2 + 399], 0x407ff000, TR_ACC_WRITE, 0);
	expect_touch(&e.v[2 + 400], 0x40800000, TR_ACC_WRITE, 0);
}

/* This test itself is a 64-bit process: refused, naming a mapping. */
static void test_proc_refuses_64_bit(void **state)
{
	struct tr_import_stats st;
	struct tr_writer *w;
	char out[128], why[TR_WHY_SIZE];

	(void)state;
	snprintf(out, sizeof out, "%s/self.trace", tmpdir);
	assert_int_equal(tr_create(out, &w, why, sizeof why), 0);
	assert_int_equal(tr_import_proc(getpid(), NULL, w, &st, why,
	                                sizeof why), -1);
	assert_non_null(strstr(why, ": not an IA-32 process: the mapping '"));
	assert_non_null(strstr(why, "lies above 0xc0000000"));
	tr_finish(w, why, sizeof why);
	assert_int_equal(tr_import_proc(999999999, NULL, NULL, &st, why,
	                                sizeof why), -1);
	assert_string_equal(why, "process 999999999: /proc/999999999: no "
	                    "such process");
	assert_int_equal(tr_import_proc(0, NULL, NULL, &st, why, sizeof why),
	                 -1);
}

static const struct {
	const char *maps;
	const char *want;       /* after "DIR/bad.maps:" */
} bad_maps[] = {
	{ "nonsense\n", "1: 'nonsense' is not a maps line (START-END PERMS "
	  "..., page-aligned hex, START < END)" },
	{ "08048000-08049000 r-xp 0 0:0 0 /x\nnonsense\n",
	  "2: 'nonsense' is not a maps line" },
	{ "08049000-08048000 r-xp 0 0:0 0\n", "1: '08049000-08048000 r-xp 0 "
	  "0:0 0' is not a maps line" },
	{ "08048000-08048000 r-xp 0 0:0 0\n", "1: '08048000-08048000" },
	{ "08048001-08049000 r-xp 0 0:0 0\n", "1: '08048001-08049000" },
	{ "08048000-08049000 rwxq 0 0:0 0\n", "1: '08048000-08049000 rwxq" },
	{ "08048000-08049000 r-x 0 0:0 0\n", "1: '08048000-08049000 r-x 0" },
	{ "08048000-08049000 r-xpp 0 0:0 0\n", "1: '08048000-08049000 r-xpp" },
	{ "08048000-08049000  r-xp 0 0:0 0\n", "1: '08048000-08049000  r-xp" },
	{ "0x8048000-0x8049000 r-xp 0 0:0 0\n", "1: '0x8048000-0x8049000" },
	{ "-8048000-8049000 r-xp 0 0:0 0\n", "1: '-8048000-8049000" },
	{ "10000000000000000-10000000000001000 r-xp 0 0:0 0\n",
	  "1: '10000000000000000-10000000000001000 r-xp 0 0:0 0' is not" },
	{ "08048000-08049000 r-xp 0 0:0 0\n08040000-08048000 r--p 0 0:0 0\n",
	  "2: the mapping at 0x08040000 overlaps or precedes the one before it "
	  "(maps lists mappings in address order)" },
	{ "08048000-08049000 r-xp 0 0:0 0\n08048000-0804a000 r--p 0 0:0 0\n",
	  "2: the mapping at 0x08048000 overlaps" },
	{ "08048000-08049000 r-xp 0 0:0 0\n"
	  "bffff000-c0001000 rw-p 00000000 00:00 0          [stack]\n",
	  "2: not an IA-32 process: the mapping 'bffff000-c0001000 rw-p "
	  "00000000 00:00 0          [stack]' lies above 0xc0000000 (a 64-bit "
	  "process, or an i386 one not run under setarch i386 -3)" },
	{ "ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0     "
	  "[vsyscall]\n", "1: not an IA-32 process: the mapping "
	  "'ffffffffff600000-ffffffffff601000 --xp" },
};

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Every malformed maps file is refused, naming the line, before anything
 * is written: the first mapping's present page makes no touch. */
static void test_proc_bad_maps(void **state)
{
	static const uint32_t present[] = { 0x08048000 };
	struct tr_import_stats st;
	struct tr_writer *w;
	char maps[128], pm[128], out[128], why[TR_WHY_SIZE], want[600];

	(void)state;
	snprintf(maps, sizeof maps, "%s/bad.maps", tmpdir);
	snprintf(pm, sizeof pm, "%s/pagemap", tmpdir);
	snprintf(out, sizeof out, "%s/bad.trace", tmpdir);
	make_pagemap(pm, present, 1, 0x08049000);
	for (size_t i = 0; i < sizeof bad_maps / sizeof bad_maps[0]; i++) {
		write_file(maps, bad_maps[i].maps, strlen(bad_maps[i].maps));
		assert_int_equal(tr_create(out, &w, why, sizeof why), 0);
		if (tr_import_proc_files(maps, pm, NULL, w, &st, why,
		                         sizeof why) == 0)
			fail_msg("accepted: %s", bad_maps[i].maps);
		snprintf(want, sizeof want, "%s:%s", maps, bad_maps[i].want);
		if (strncmp(why, want, strlen(want)) != 0)
			fail_msg("for %s\nwanted '%s'\ngot    '%s'",
			         bad_maps[i].maps, want, why);
		assert_int_equal(tr_written(w), 0);
		tr_finish(w, why, sizeof why);
	}
	/* A NUL byte. */
	write_file(maps, "08048000-08049000 r-xp\0 0 0:0 0\n", 33);
	assert_int_equal(tr_create(out, &w, why, sizeof why), 0);
	assert_int_equal(tr_import_proc_files(maps, pm, NULL, w, &st, why,
	                                      sizeof why), -1);
	snprintf(want, sizeof want, "%s:1: a NUL byte in the line", maps);
	assert_string_equal(why, want);
	tr_finish(w, why, sizeof why);
	/* A pagemap that ends before the mappings do. */
	write_file(pm, "", 0);
	write_file(maps, "08048000-08049000 r-xp 0 0:0 0 /x\n", 34);
	assert_int_equal(tr_create(out, &w, why, sizeof why), 0);
	assert_int_equal(tr_import_proc_files(maps, pm, NULL, w, &st, why,
	                                      sizeof why), -1);
	snprintf(want, sizeof want, "%s: reading the entries of pages "
	         "0x08048000..0x08048000 failed: the file ends there", pm);
	assert_string_equal(why, want);
	tr_finish(w, why, sizeof why);
	/* Missing files. */
	assert_int_equal(tr_create(out, &w, why, sizeof why), 0);
	assert_int_equal(tr_import_proc_files(maps, "/nonexistent/pagemap",
	                                      NULL, w, &st, why, sizeof why),
	                 -1);
	assert_string_equal(why, "/nonexistent/pagemap: No such file or "
	                    "directory");
	tr_finish(w, why, sizeof why);
}

/* A mapping may end at 3 GiB exactly; an empty maps file is a task that
 * holds nothing. */
static void test_proc_edges(void **state)
{
	static const uint32_t present[] = { 0xbffff000 };
	static struct events e;
	struct tr_import_stats st;
	struct tr_writer *w;
	char maps[128], pm[128], out[128], why[TR_WHY_SIZE];

	(void)state;
	snprintf(maps, sizeof maps, "%s/edge.maps", tmpdir);
	snprintf(pm, sizeof pm, "%s/pagemap", tmpdir);
	snprintf(out, sizeof out, "%s/edge.trace", tmpdir);
	make_pagemap(pm, present, 1, 0xbfffe000);
	write_file(maps, "bfffe000-c0000000 rw-p 0 0:0 0 [stack]", 38);
	assert_int_equal(tr_create(out, &w, why, sizeof why), 0);
	if (tr_import_proc_files(maps, pm, "edge", w, &st, why,
	                         sizeof why) != 0)
		fail_msg("%s", why);
	assert_int_equal(tr_finish(w, why, sizeof why), 0);
	read_back(out, &e);
	assert_int_equal(e.n, 6);
	expect_touch(&e.v[2], 0xbfffe000, TR_ACC_WRITE, 0);   /* swapped */
	expect_touch(&e.v[3], 0xbffff000, TR_ACC_WRITE, 0);
	write_file(maps, "", 0);
	assert_int_equal(tr_create(out, &w, why, sizeof why), 0);
	assert_int_equal(tr_import_proc_files(maps, pm, NULL, w, &st, why,
	                                      sizeof why), 0);
	assert_int_equal(tr_finish(w, why, sizeof why), 0);
	read_back(out, &e);
	assert_int_equal(e.n, 4);
	assert_string_equal(e.v[0].name, "proc");
}

/* A directory as /proc/PID is: its comm names the task. */
static void test_proc_dir(void **state)
{
	static const uint32_t present[] = { 0x08049000 };
	static struct events e;
	struct tr_import_stats st;
	struct tr_writer *w;
	char dir[128], path[160], out[128], why[TR_WHY_SIZE], want[300];

	(void)state;
	snprintf(dir, sizeof dir, "%s/snap", tmpdir);
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof path, "%s/maps", dir);
	write_file(path, "08048000-0804a000 r-xp 0 0:0 0 /x\n", 34);
	snprintf(path, sizeof path, "%s/pagemap", dir);
	make_pagemap(path, present, 1, 0x08048000);
	snprintf(path, sizeof path, "%s/comm", dir);
	write_file(path, "my prog\n", 8);
	snprintf(out, sizeof out, "%s/dir.trace", tmpdir);
	assert_int_equal(tr_create(out, &w, why, sizeof why), 0);
	if (tr_import_proc_dir(dir, NULL, w, &st, why, sizeof why) != 0)
		fail_msg("%s", why);
	assert_int_equal(tr_finish(w, why, sizeof why), 0);
	read_back(out, &e);
	assert_string_equal(e.v[0].name, "my_prog");
	expect_touch(&e.v[2], 0x08048000, TR_ACC_EXEC, 0);
	expect_touch(&e.v[3], 0x08049000, TR_ACC_EXEC, 0);
	assert_int_equal(e.n, 6);
	/* Not a directory; no directory. */
	assert_int_equal(tr_import_proc_dir(path, NULL, NULL, &st, why,
	                                    sizeof why), -1);
	snprintf(want, sizeof want, "%s: not a directory (/proc/PID, or one "
	         "holding a copy of its maps and pagemap)", path);
	assert_string_equal(why, want);
	assert_int_equal(tr_import_proc_dir("/nonexistent", NULL, NULL, &st,
	                                    why, sizeof why), -1);
	assert_string_equal(why, "/nonexistent: No such file or directory");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lackey_real_busybox),
		cmocka_unit_test(test_lackey_straddles_and_writes),
		cmocka_unit_test(test_lackey_name_given),
		cmocka_unit_test(test_lackey_no_instruction),
		cmocka_unit_test(test_lackey_valgrind_lines),
		cmocka_unit_test(test_lackey_comment_cut),
		cmocka_unit_test(test_lackey_two_processes),
		cmocka_unit_test(test_lackey_refusals),
		cmocka_unit_test(test_proc_i386_snapshot),
		cmocka_unit_test(test_proc_real_snapshot),
		cmocka_unit_test(test_proc_refuses_64_bit),
		cmocka_unit_test(test_proc_bad_maps),
		cmocka_unit_test(test_proc_edges),
		cmocka_unit_test(test_proc_dir),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
