/*
 * kpsim paper fig2: the paper's Figure 2 (kernel memory per address space
 * of an L4Linux system) beside kpsim's.  A process mix shaped like the
 * figure's is generated as trace events and replayed on the kernel model:
 * - an L4Linux-like server with 19 threads, which takes the pages its
 *   processes use from its pager and maps them on to them, as L4Linux
 *   backs Linux processes with its own memory;
 * - pingpong, an L4 task with two threads, its pages from its pager;
 * - the Debian daemons and tools, two threads each (a Linux process and
 *   its signal thread), with Linux 2.4 layouts: text, data and heap from
 *   0x08048000, ld.so and libc from 0x40000000, the stack below
 *   0xC0000000, the kernel's UTCB area at 0xBF000000; their resident
 *   sizes are the figure's, mapped by the server.
 * Every kpsim number is the model's own accounting (km_task_stats, the
 * most each task held); the paper's are printed beside them.
 */
#include "cli.h"
#include "replay.h"
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SERVER 1u               /* the trace's task ids */
#define PINGPONG 2u
#define FIRST_LINUX 3u
#define SERVER_POOL 0x10000000u /* where the server holds process pages */
#define SERVER_IMAGE_PAGES 384u /* its text and data, 1.5 MiB */

struct row {
	const char *name;
	unsigned threads;
	const char *resident;           /* as the paper prints it */
	uint32_t kb;                    /* resident in KiB */
	uint8_t p, n, m, u;             /* the paper's */
};

/* Figure 2, row by row (its "131.080k" is 131,080 KiB). */
static const struct row rows[] = {
	{ "sigma0", 1, "131,080k", 131080, 3, 1, 8, 1 },
	{ "L4Linux", 19, "129,804k", 129804, 5, 5, 8, 3 },
	{ "pingpong", 2, "20k", 20, 4, 4, 1, 1 },
	{ "init", 2, "76k", 76, 5, 5, 1, 1 },
	{ "bash", 2, "52k", 52, 5, 5, 2, 1 },
	{ "bash", 2, "392k", 392, 5, 5, 2, 1 },
	{ "getty", 2, "80k", 80, 5, 5, 1, 1 },
	{ "syslogd", 2, "152k", 152, 5, 5, 1, 1 },
	{ "portmap", 2, "96k", 96, 5, 5, 1, 1 },
	{ "klogd", 2, "108k", 108, 5, 5, 1, 1 },
	{ "rpc.statd", 2, "108k", 108, 5, 5, 1, 1 },
	{ "gpm", 2, "96k", 96, 5, 5, 1, 1 },
	{ "inetd", 2, "100k", 100, 5, 5, 1, 1 },
	{ "lpd", 2, "112k", 112, 5, 5, 1, 1 },
	{ "smbd", 2, "260k", 260, 5, 5, 1, 1 },
	{ "rpc.nfsd", 2, "272k", 272, 5, 5, 1, 1 },
	{ "rpc.mountd", 2, "284k", 284, 5, 5, 1, 1 },
	{ "cron", 2, "140k", 140, 5, 5, 1, 1 },
	{ "getty", 2, "80k", 80, 5, 5, 1, 1 },
	{ "getty", 2, "80k", 80, 5, 5, 1, 1 },
	{ "getty", 2, "80k", 80, 5, 5, 1, 1 },
	{ "cc", 2, "164k", 164, 5, 5, 1, 1 },
	{ "emacs", 2, "2,700k", 2700, 5, 5, 4, 1 },
};
#define NROWS (sizeof rows / sizeof rows[0])

/* The events, checked as the reader checks a file's. */
struct mix {
	struct tr_event *ev;
	size_t n, cap;
	struct tr_state *st;
	uint32_t next_thread;
	uint32_t pool_next;             /* the server's next pool page */
	char why[TR_WHY_SIZE];
};

static int add(struct mix *x, const struct tr_event *ev)
{
	if (tr_state_apply(x->st, ev, x->why, sizeof x->why) != 0)
		return -1;
	if (x->n == x->cap) {
		size_t cap = x->cap ? 2 * x->cap : 4096;
		struct tr_event *n = realloc(x->ev, cap * sizeof *n);

		if (n == NULL) {
			snprintf(x->why, sizeof x->why, "out of host memory");
			return -1;
		}
		x->ev = n;
		x->cap = cap;
	}
	x->ev[x->n++] = *ev;
	return 0;
}

static int task(struct mix *x, uint32_t id, const char *name,
                unsigned threads)
{
	struct tr_event ev;

	memset(&ev, 0, sizeof ev);
	ev.kind = TR_TASK;
	ev.a = id;
	tr_name_sanitize(ev.name, name);
	if (add(x, &ev) != 0)
		return -1;
	for (unsigned i = 0; i < threads; i++) {
		memset(&ev, 0, sizeof ev);
		ev.kind = TR_THREAD;
		ev.a = x->next_thread++;
		ev.b = id;
		if (add(x, &ev) != 0)
			return -1;
	}
	return 0;
}

/* A task's own touch of `pages` pages from va (its pager backs them). */
static int touch(struct mix *x, uint32_t thread, uint32_t va,
                 uint32_t pages, uint8_t access)
{
	for (uint32_t i = 0; i < pages; i++) {
		struct tr_event ev;

		memset(&ev, 0, sizeof ev);
		ev.kind = TR_TOUCH;
		ev.a = thread;
		ev.va = va + i * 4096u;
		ev.access = access;
		if (add(x, &ev) != 0)
			return -1;
	}
	return 0;
}

/* `pages` pages of the server's pool mapped to task `to` from va: the
 * server takes each from its pager first (its first thread touches it). */
static int serve(struct mix *x, uint32_t to, uint32_t va, uint32_t pages,
                 uint8_t rights)
{
	for (uint32_t i = 0; i < pages; i++) {
		struct tr_event ev;
		uint32_t src = SERVER_POOL + x->pool_next++ * 4096u;

		if (touch(x, 1, src, 1, TR_ACC_WRITE) != 0)
			return -1;
		memset(&ev, 0, sizeof ev);
		ev.kind = TR_MAP;
		ev.a = SERVER;
		ev.b = to;
		ev.base = src;
		ev.log2 = 12;
		ev.rights = rights;
		ev.va = va + i * 4096u;
		if (add(x, &ev) != 0)
			return -1;
	}
	return 0;
}

/* A Linux 2.4 process of `kb` KiB resident, its pages from the server:
 * ld.so 2 pages, libc's data 1, the stack 2, libc's text up to 40, the
 * program's data 2, and the rest text and heap. */
static int linux_process(struct mix *x, uint32_t id, uint32_t kb)
{
	uint32_t pages = kb / 4, rest, libc, text;

	if (pages < 9)
		pages = 9;
	rest = pages - 7;
	libc = rest / 3 < 40 ? rest / 3 : 40;
	rest -= libc;
	text = rest / 2;
	return serve(x, id, 0x08048000u, text, TR_R | TR_X) ||
	       serve(x, id, 0x08048000u + text * 4096u, 2, TR_R | TR_W) ||
	       serve(x, id, 0x08048000u + (text + 2) * 4096u, rest - text,
	             TR_R | TR_W) ||
	       serve(x, id, 0x40000000u, 2, TR_R | TR_X) ||
	       serve(x, id, 0x40014000u, libc, TR_R | TR_X) ||
	       serve(x, id, 0x4010a000u, 1, TR_R | TR_W) ||
	       serve(x, id, 0xbfffe000u, 2, TR_R | TR_W) ? -1 : 0;
}

static int build_mix(struct mix *x)
{
	memset(x, 0, sizeof *x);
	x->next_thread = 1;
	if ((x->st = tr_state_new()) == NULL) {
		snprintf(x->why, sizeof x->why, "out of host memory");
		return -1;
	}
	/* The server: its image (text, data) near the bottom, 19 threads. */
	if (task(x, SERVER, "L4Linux", 19) != 0 ||
	    touch(x, 1, 0x00400000u, 256, TR_ACC_EXEC) != 0 ||
	    touch(x, 1, 0x00500000u, SERVER_IMAGE_PAGES - 256,
	          TR_ACC_WRITE) != 0)
		return -1;
	/* pingpong: an L4 task, text and data, a stack, two threads. */
	if (task(x, PINGPONG, "pingpong", 2) != 0 ||
	    touch(x, 20, 0x00001000u, 2, TR_ACC_EXEC) != 0 ||
	    touch(x, 20, 0x00003000u, 1, TR_ACC_WRITE) != 0 ||
	    touch(x, 20, 0xbfffe000u, 2, TR_ACC_WRITE) != 0)
		return -1;
	for (size_t i = 3; i < NROWS; i++)
		if (task(x, FIRST_LINUX + (uint32_t)(i - 3), rows[i].name,
		         rows[i].threads) != 0 ||
		    linux_process(x, FIRST_LINUX + (uint32_t)(i - 3),
		                  rows[i].kb) != 0)
			return -1;
	return 0;
}

/* ---- The command ------------------------------------------------------------ */

static void fig2_usage(FILE *out)
{
	fprintf(out,
	"usage: kpsim paper fig2 [--costs FILE] [--trace FILE]\n\n"
	"Replays a process mix shaped like the paper's Figure 2 (an\n"
	"L4Linux-like server, pingpong, and Debian daemons and tools with\n"
	"Linux 2.4 layouts and the figure's resident sizes) and prints per\n"
	"address space the paper's page-table (P), node-table (N), mapping-\n"
	"database (M) and UTCB (U) pages and metadata size beside kpsim's.\n\n"
	"  --trace FILE   also write the mix as a trace, for replay or compare\n");
}

struct out_row {
	struct km_task_stats st;
	bool have;
};

static unsigned meta_kb(unsigned p, unsigned n, unsigned m, unsigned u)
{
	return (p + n + m + u) * 4;
}

static int print_table(struct tr_replay *r, uint32_t server_pages)
{
	struct out_row out[NROWS];
	unsigned same = 0, close = 0, differ = 0;

	memset(out, 0, sizeof out);
	/* sigma0 is the model's own. */
	out[0].have = km_task_stats(tr_replay_model(r), KM_SIGMA0,
	                            &out[0].st) == KM_OK;
	for (size_t i = 0; tr_replay_task(r, i) != NULL; i++) {
		const struct tr_task_result *t = tr_replay_task(r, i);

		/* Trace task k is row k (1: L4Linux, 2: pingpong, ...). */
		if (t->trace_id >= 1 && t->trace_id < NROWS) {
			out[t->trace_id].st = t->peak;
			out[t->trace_id].have = true;
		}
	}
	printf("Figure 2: kernel memory per address space of an L4Linux "
	       "system: the paper's\nnumbers beside kpsim's for a process mix "
	       "of that shape.  P page tables (and\nthe directory), N node "
	       "tables (and the node directory), M mapping database,\nU UTCB "
	       "pages; metadata is (P + N + M + U) * 4 KiB.  K: kpsim's KTCB "
	       "pages\n(not in the paper's metadata).\n\n");
	printf("%-11s %7s %9s | %3s %3s %3s %3s %5s | %3s %3s %3s %3s %5s %3s "
	       "|\n", "space", "threads", "resident", "P", "N", "M", "U",
	       "meta", "P", "N", "M", "U", "meta", "K");
	printf("%-11s %7s %9s | %-21s | %-25s |\n", "", "", "", "paper",
	       "kpsim");
	for (size_t i = 0; i < NROWS; i++) {
		const struct row *w = &rows[i];
		const uint32_t *g = out[i].st.group;
		const char *mark;

		if (!out[i].have) {
			mark = "(no such task)";
			differ++;
		} else if (g[KM_KG_P] == w->p && g[KM_KG_N] == w->n &&
		           g[KM_KG_U] == w->u && g[KM_KG_M] == w->m) {
			mark = "";
			same++;
		} else if (g[KM_KG_P] == w->p && g[KM_KG_N] == w->n &&
		           g[KM_KG_U] == w->u &&
		           (g[KM_KG_M] + 1 == w->m || g[KM_KG_M] == w->m + 1u)) {
			mark = "M within one (b)";
			close++;
		} else {
			mark = i == 0 ? "differs (c)" : "differs (d)";
			differ++;
		}
		printf("%-11s %7u %9s | %3u %3u %3u %3u %4uk | %3u %3u %3u %3u "
		       "%4uk %3u | %s\n", w->name, w->threads, w->resident,
		       w->p, w->n, w->m, w->u,
		       meta_kb(w->p, w->n, w->m, w->u), g[KM_KG_P],
		       g[KM_KG_N], g[KM_KG_M], g[KM_KG_U],
		       meta_kb(g[KM_KG_P], g[KM_KG_N], g[KM_KG_M],
		               g[KM_KG_U]), g[KM_KG_K], mark);
	}
	printf("\n%u rows equal, %u with M within one page, %u differ.\n\n",
	       same, close, differ);
	printf(
	"(a) Rows without a mark equal the paper's P, N, M and U.\n"
	"(b) M is the mapping nodes' pages: 170 nodes a page in kpsim, one per\n"
	"    page mapped to the process, so up to 680 KiB resident takes one\n"
	"    page and emacs four, as in the paper.  The paper gives both bash\n"
	"    rows (13 and 98 pages) 2 but processes up to 71 pages 1; what\n"
	"    the second page of a bash holds (shared pages?) it does not say.\n"
	"(c) kpsim's sigma0 is the model's root of all frames: it never runs,\n"
	"    so it has no directory, page tables, node tables or UTCB; it\n"
	"    hands out frames by number.  Its M is the nodes of the frames it\n"
	"    gave the default pager, one per 4 KiB frame.  The paper's sigma0\n"
	"    is a running task with all 128 MiB mapped in 4 MiB superpages:\n"
	"    a directory, two page tables, 8 pages of nodes.\n");
	printf(
	"(d) P, N and U (3 pages: 19 threads at 512 bytes a UTCB) are the\n"
	"    paper's.  M: kpsim maps 4 KiB pages only, so the server has a\n"
	"    node for each of the %u pages it received (its %u-page image\n"
	"    and the %u it maps on to the processes) and one for each page\n"
	"    it mapped on: %u nodes, 170 a page.  The paper's L4Linux holds\n"
	"    all 128 MiB through 4 MiB superpages and needs 8 pages.\n",
	server_pages, SERVER_IMAGE_PAGES, server_pages - SERVER_IMAGE_PAGES,
	2 * server_pages - SERVER_IMAGE_PAGES);
	return differ > 2 ? 1 : 0;
}

int kpsim_paper_fig2(int argc, char **argv)
{
	const char *costs_path = NULL, *trace_path = NULL;
	struct tr_replay_config cfg = tr_replay_config_default(49152);
	struct tr_replay *r = NULL;
	struct mix x;
	char *costs = NULL, why[TR_WHY_SIZE];
	int rc = 1;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fig2_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--costs") == 0 && i + 1 < argc) {
			costs_path = argv[++i];
		} else if (strcmp(argv[i], "--trace") == 0 && i + 1 < argc) {
			trace_path = argv[++i];
		} else {
			fprintf(stderr, "kpsim paper fig2: unknown option or "
			        "missing argument '%s'\n\n", argv[i]);
			fig2_usage(stderr);
			return 2;
		}
	}
	if (costs_path != NULL && (costs = read_text(costs_path)) == NULL) {
		fprintf(stderr, "kpsim paper fig2: cannot read %s: %s\n",
		        costs_path, strerror(errno ? errno : EIO));
		return 2;
	}
	if (build_mix(&x) != 0) {
		fprintf(stderr, "kpsim paper fig2: the mix: %s\n", x.why);
		goto out;
	}
	if (trace_path != NULL) {
		struct tr_writer *w;

		if (tr_create(trace_path, &w, why, sizeof why) != 0) {
			fprintf(stderr, "kpsim paper fig2: %s\n", why);
			rc = 2;
			goto out;
		}
		tr_comment(w, "kpsim paper fig2: a process mix shaped like "
		           "the paper's Figure 2");
		for (size_t i = 0; i < x.n; i++)
			tr_write(w, &x.ev[i]);
		if (tr_finish(w, why, sizeof why) != 0) {
			fprintf(stderr, "kpsim paper fig2: %s\n", why);
			goto out;
		}
	}
	/* The paper's machine had 192 MB. */
	cfg.costs = costs;
	if (tr_replay_create(&cfg, &r, why, sizeof why) != 0) {
		fprintf(stderr, "kpsim paper fig2: %s\n", why);
		goto out;
	}
	for (size_t i = 0; i < x.n; i++)
		if (tr_replay_event(r, &x.ev[i], why, sizeof why) != 0) {
			fprintf(stderr, "kpsim paper fig2: %s\n", why);
			goto out;
		}
	tr_replay_finish(r);
	if (!km_check(tr_replay_model(r), why, sizeof why)) {
		fprintf(stderr, "kpsim paper fig2: the model's invariants broke: "
		        "%s\n", why);
		goto out;
	}
	rc = print_table(r, SERVER_IMAGE_PAGES + x.pool_next);
out:
	tr_replay_destroy(r);
	tr_state_free(x.st);
	free(x.ev);
	free(costs);
	return rc;
}
