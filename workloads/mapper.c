/*
 * mapper: a chain of tasks that map pages onwards, then a recursive unmap.
 * The server writes four pages and maps them to a client task, which maps
 * them to the next, DEPTH deep (default 4): a mapping tree one branch
 * deep.  Every client checks the server's bytes.  Then the server unmaps
 * the pages (not its own mappings): every derived mapping in every client
 * goes, and each client's next read faults and gets a fresh zeroed page
 * from its pager.  Usage: mapper [DEPTH]; the clients are "mapper client
 * PARENT DEPTH".
 */
#include "kps.h"

#define SRC 0x20000000u         /* the server's pages */
#define DST 0x30000000u         /* where each client receives them */
#define LOG2 14u                /* four pages */
#define PAGES 4u
#define MAGIC 0xC0DE0000u

static uint32_t call(uint32_t to, uint32_t w0, uint32_t window,
                     struct kps_ipc *m)
{
	*m = (struct kps_ipc){ .to = to, .from = to, .w0 = w0,
	                       .window = window };
	return (uint32_t)kps_ipc(m);
}

/* Waits for a request from anyone and answers it with a map item of
 * [base, base + 16 KiB).  Returns the requester. */
static uint32_t serve_map(uint32_t base)
{
	struct kps_ipc m = { .from = KPS_ANY };
	uint32_t who;

	kps_ipc(&m);
	who = m.sender;
	m = (struct kps_ipc){ .flags = KPS_IPC_NB, .to = who,
	                      .item = KPS_FPAGE(base, LOG2, KPS_R | KPS_W) };
	kps_ipc(&m);
	return who;
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

	call(parent, 0, KPS_FPAGE(DST, LOG2, KPS_R | KPS_W), &m);
	for (uint32_t i = 0; i < PAGES; i++)
		ok &= *(volatile uint32_t *)(DST + i * 4096) == MAGIC + i;
	kps_printf("mapper client depth %u: %u pages mapped, bytes %s\n",
	           depth, m.pages, ok ? "right" : "WRONG");
	if (depth > 0) {
		if (spawn_client(depth - 1) < 0)
			return 1;
		child = serve_map(DST);
		m = (struct kps_ipc){ .from = child };
		kps_ipc(&m);                            /* its "done" */
	}
	call(parent, ok, 0, &m);                        /* "done"; wait */
	/* The server has unmapped: this read faults to a fresh page. */
	ok = *(volatile uint32_t *)DST == 0;
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
	int pages;

	if (argc == 4 && strcmp(argv[1], "client") == 0)
		return client(kps_atou(argv[2]), kps_atou(argv[3]));
	if (depth == 0 || depth > 9) {
		kps_puts("mapper: DEPTH must be 1 .. 9\n");
		return 2;
	}
	for (uint32_t i = 0; i < PAGES; i++)
		*(volatile uint32_t *)(SRC + i * 4096) = MAGIC + i;
	if (spawn_client(depth - 1) < 0)
		return 1;
	child = serve_map(SRC);
	m = (struct kps_ipc){ .from = child };
	kps_ipc(&m);                                    /* "done" */
	pages = kps_unmap(KPS_FPAGE(SRC, LOG2, KPS_R | KPS_W | KPS_X), 0);
	call(child, 0, 0, &m);                          /* "check" */
	kps_printf("mapper: depth %u, unmap removed %d mappings, clients "
	           "%s\n", depth, pages, m.w0 ? "saw fresh pages" :
	           "still saw the old bytes");
	return m.w0 && pages == (int)(depth * PAGES) ? 0 : 1;
}
