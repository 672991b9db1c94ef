/*
 * mapper: a chain of tasks that map and grant pages onwards, then a
 * recursive unmap.  The server writes four pages and maps them to a client
 * task, which maps them to the next, DEPTH deep (default 4): a mapping
 * tree DEPTH deep.  It also grants a fifth page, which each client grants
 * on, so it moves down the chain and leaves each granter (whose next read
 * finds a fresh page).  Every client checks the bytes it got.  Then the
 * server unmaps the four pages (not its own mappings): every derived
 * mapping in every client goes, and each client's next read faults and
 * gets a fresh zeroed page from its pager.  Usage: mapper [DEPTH]; the
 * clients are "mapper client PARENT DEPTH".
 */
#include "kps.h"

#define SRC 0x20000000u         /* the server's pages */
#define DST 0x30000000u         /* where each client receives them */
#define LOG2 14u                /* four pages */
#define PAGES 4u
#define MAGIC 0xC0DE0000u
#define GSRC 0x20010000u        /* the server's page to grant */
#define GDST 0x31000000u        /* where each client receives it */
#define GMAGIC 0x6A3A0000u

static uint32_t call(uint32_t to, uint32_t w0, uint32_t window,
                     struct kps_ipc *m)
{
	*m = (struct kps_ipc){ .to = to, .from = to, .w0 = w0,
	                       .window = window };
	return (uint32_t)kps_ipc(m);
}

/* Waits for a request from anyone and answers it with an item of
 * [base, base + 2^log2): a map, or with `grant` a grant.  Returns the
 * requester. */
static uint32_t serve(uint32_t base, uint32_t log2, int grant)
{
	struct kps_ipc m = { .from = KPS_ANY };
	uint32_t who;

	kps_ipc(&m);
	who = m.sender;
	m = (struct kps_ipc){ .flags = KPS_IPC_NB, .to = who,
	                      .item = KPS_FPAGE(base, log2, KPS_R | KPS_W) |
	                              (grant ? KPS_FPAGE_GRANT : 0) };
	kps_ipc(&m);
	return who;
}

/* Has the granted page left this task?  Its next read faults in a fresh
 * zeroed page. */
static int granted_away(uint32_t va)
{
	return *(volatile uint32_t *)va == 0;
}

static int spawn_client(uint32_t depth)
{
	char cmd[64];
	uint32_t me = kps_myid(0), n = 0;
	const char *pre = "mapper client ";

	/* "mapper client ME DEPTH", formatted by hand: no snprintf here. */
	for (; pre[n]; n++)
		cmd[n] = pre[n];
	for (uint32_t v = me, d = 1000000; d; d /= 10)
		if (v >= d || d == 1)
			cmd[n++] = (char)('0' + (v / d) % 10);
	cmd[n++] = ' ';
	cmd[n++] = (char)('0' + depth % 10);
	cmd[n] = '\0';
	return kps_task_create(cmd);
}

static int client(uint32_t parent, uint32_t depth)
{
	struct kps_ipc m;
	uint32_t ok = 1, child = 0;

	uint32_t mapped, granted;

	call(parent, 0, KPS_FPAGE(DST, LOG2, KPS_R | KPS_W), &m);
	mapped = m.pages;
	call(parent, 0, KPS_FPAGE(GDST, 12, KPS_R | KPS_W), &m);
	granted = m.pages;
	for (uint32_t i = 0; i < PAGES; i++)
		ok &= *(volatile uint32_t *)(DST + i * 4096) == MAGIC + i;
	ok &= *(volatile uint32_t *)GDST == GMAGIC;
	kps_printf("mapper client depth %u: %u pages mapped, %u granted, "
	           "bytes %s\n", depth, mapped, granted,
	           ok ? "right" : "WRONG");
	if (depth > 0) {
		if (spawn_client(depth - 1) < 0)
			return 1;
		child = serve(DST, LOG2, 0);
		serve(GDST, 12, 1);
		ok &= granted_away(GDST);
		m = (struct kps_ipc){ .from = child };
		kps_ipc(&m);                            /* its "done" */
	}
	call(parent, ok, 0, &m);                        /* "done"; wait */
	/* The server has unmapped: this read faults to a fresh page. */
	ok &= *(volatile uint32_t *)DST == 0;
	if (child != 0) {
		call(child, 0, 0, &m);                  /* "check" */
		ok &= m.w0;
	}
	m = (struct kps_ipc){ .flags = KPS_IPC_NB, .to = parent, .w0 = ok };
	kps_ipc(&m);
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	uint32_t depth = argc > 1 ? kps_atou(argv[1]) : 4;
	struct kps_ipc m;
	uint32_t child;
	int pages, gone;

	if (argc == 4 && strcmp(argv[1], "client") == 0)
		return client(kps_atou(argv[2]), kps_atou(argv[3]));
	if (depth == 0 || depth > 9) {
		kps_puts("mapper: DEPTH must be 1 .. 9\n");
		return 2;
	}
	for (uint32_t i = 0; i < PAGES; i++)
		*(volatile uint32_t *)(SRC + i * 4096) = MAGIC + i;
	*(volatile uint32_t *)GSRC = GMAGIC;
	if (spawn_client(depth - 1) < 0)
		return 1;
	child = serve(SRC, LOG2, 0);
	serve(GSRC, 12, 1);
	gone = granted_away(GSRC);
	m = (struct kps_ipc){ .from = child };
	kps_ipc(&m);                                    /* "done" */
	pages = kps_unmap(KPS_FPAGE(SRC, LOG2, KPS_R | KPS_W | KPS_X), 0);
	call(child, 0, 0, &m);                          /* "check" */
	kps_printf("mapper: depth %u, unmap removed %d mappings, clients "
	           "%s, the granted page %s\n", depth, pages,
	           m.w0 ? "saw fresh pages" : "still saw the old bytes",
	           gone ? "moved on" : "STAYED");
	return m.w0 && gone && pages == (int)(depth * PAGES) ? 0 : 1;
}
