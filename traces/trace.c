/*
 * traces/trace.c: what the reader and the writer share: the names of
 * kinds and system calls, the range check of one event's fields, the
 * liveness check of its ids (struct tr_state), and the formatter.
 */
#include "trace_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[TR_KIND_COUNT] = {
	[TR_TASK] = "task", [TR_ENDTASK] = "endtask", [TR_THREAD] = "thread",
	[TR_ENDTHREAD] = "endthread", [TR_USER] = "user",
	[TR_TOUCH] = "touch", [TR_SYSCALL] = "syscall",
	[TR_SYSRET] = "sysret", [TR_TIMER] = "timer", [TR_IPC] = "ipc",
	[TR_MAP] = "map", [TR_GRANT] = "grant", [TR_UNMAP] = "unmap",
	[TR_MARKER] = "marker",
};

static const char *const sys_names[TR_SYS_COUNT] = {
	[TR_SYS_EXIT] = "exit", [TR_SYS_WRITE] = "write",
	[TR_SYS_CYCLES] = "cycles", [TR_SYS_MARKER] = "marker",
	[TR_SYS_YIELD] = "yield", [TR_SYS_THREAD_CREATE] = "thread_create",
	[TR_SYS_THREAD_EXIT] = "thread_exit",
	[TR_SYS_TASK_CREATE] = "task_create", [TR_SYS_IPC] = "ipc",
	[TR_SYS_UNMAP] = "unmap", [TR_SYS_MYID] = "myid",
	[TR_SYS_INVALID] = "invalid",
};

const char *tr_kind_name(enum tr_kind k)
{
	return (unsigned)k < TR_KIND_COUNT ? kind_names[k] : "?";
}

const char *tr_sys_name(enum tr_sys s)
{
	return (unsigned)s < TR_SYS_COUNT ? sys_names[s] : "?";
}

/* Which of names[0 .. count) is spelled [s, s + n), or -1.  The first
 * letter rules out most names without a call: every line of a trace
 * comes through here. */
static int name_index(const char *const *names, int count, const char *s,
                      size_t n)
{
	for (int k = 0; k < count; k++)
		if (n > 0 && names[k][0] == s[0] && strlen(names[k]) == n &&
		    memcmp(names[k], s, n) == 0)
			return k;
	return -1;
}

int tr_kind_parse(const char *s, size_t n)
{
	return name_index(kind_names, TR_KIND_COUNT, s, n);
}

int tr_sys_parse(const char *s, size_t n)
{
	return name_index(sys_names, TR_SYS_COUNT, s, n);
}

bool tr_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '+' ||
	       c == '-';
}

void tr_name_sanitize(char *dst, const char *src)
{
	size_t n = 0;

	for (; src[n] != '\0' && n < TR_NAME_MAX; n++)
		dst[n] = tr_name_char(src[n]) ? src[n] : '_';
	if (n == 0)
		dst[n++] = '_';
	dst[n] = '\0';
}

/* Is [base, base + 2^log2) a flexpage of user space? */
static bool fpage_ok(uint32_t base, unsigned log2)
{
	return log2 >= 12 && log2 <= 31 &&
	       (base & ((1u << log2) - 1)) == 0 &&
	       (uint64_t)base + (1ull << log2) <= TR_USER_TOP;
}

static bool id_ok(uint32_t id)
{
	return id >= 1 && id <= TR_ID_MAX;
}

int tr_check_fields(const struct tr_event *ev, char *why, size_t why_len)
{
	const char *k = tr_kind_name(ev->kind);

#define BAD(...) do { snprintf(why, why_len, __VA_ARGS__); return -1; } while (0)
	if ((unsigned)ev->kind >= TR_KIND_COUNT)
		BAD("unknown event kind %d", (int)ev->kind);
	if (!id_ok(ev->a))
		BAD("%s: id %u is not in 1 .. %u", k, ev->a, TR_ID_MAX);
	switch (ev->kind) {
	case TR_TASK: {
		size_t n = strnlen(ev->name, sizeof ev->name);

		if (n == 0 || n > TR_NAME_MAX)
			BAD("task: a name of 1 .. %u bytes", TR_NAME_MAX);
		for (size_t i = 0; i < n; i++)
			if (!tr_name_char(ev->name[i]))
				BAD("task: byte %zu of the name (0x%02x) is not "
				    "one of A-Z a-z 0-9 . _ + -", i + 1,
				    (unsigned char)ev->name[i]);
		break;
	}
	case TR_THREAD: case TR_IPC: case TR_MAP: case TR_GRANT:
		if (!id_ok(ev->b))
			BAD("%s: id %u is not in 1 .. %u", k, ev->b, TR_ID_MAX);
		if (ev->kind == TR_IPC && ev->a == ev->b)
			BAD("ipc: thread %u sends to itself", ev->a);
		break;
	default:
		break;
	}
	switch (ev->kind) {
	case TR_USER: case TR_TOUCH:
		if (ev->insns > TR_COUNT_MAX || ev->cycles > TR_COUNT_MAX)
			BAD("%s: instructions and cycles are at most 2^48 - 1", k);
		if (ev->kind == TR_USER)
			break;
		if (ev->va >= TR_USER_TOP)
			BAD("touch: address 0x%08x is not in user space (below "
			    "0xc0000000)", ev->va);
		if (ev->access != TR_ACC_READ && ev->access != TR_ACC_WRITE &&
		    ev->access != TR_ACC_EXEC)
			BAD("touch: access kind %u is not r, w or x", ev->access);
		break;
	case TR_SYSCALL:
		if (ev->id >= TR_SYS_COUNT)
			BAD("syscall: unknown system call %u", ev->id);
		break;
	case TR_MAP: case TR_GRANT: case TR_UNMAP:
		if (!fpage_ok(ev->base, ev->log2))
			BAD("%s: 0x%08x/%u is not a flexpage of user space "
			    "(size 2^12 .. 2^31, base a multiple of it, below "
			    "0xc0000000)", k, ev->base, ev->log2);
		if (ev->rights > 7)
			BAD("%s: rights %#x are not a subset of rwx", k,
			    ev->rights);
		if (ev->kind != TR_UNMAP && !fpage_ok(ev->va, ev->log2))
			BAD("%s: destination 0x%08x is not a multiple of 2^%u "
			    "whose flexpage ends below 0xc0000000", k, ev->va,
			    ev->log2);
		break;
	default:
		break;
	}
	return 0;
#undef BAD
}

/* ---- Liveness ------------------------------------------------------------ */

struct tr_state {
	uint16_t task_threads[TR_ID_MAX + 1];   /* live threads of a task */
	uint16_t thread_task[TR_ID_MAX + 1];    /* 0: the thread is not live */
	uint16_t next[TR_ID_MAX + 1], prev[TR_ID_MAX + 1]; /* a task's threads */
	uint16_t head[TR_ID_MAX + 1];
	uint8_t task_live[TR_ID_MAX + 1];
	uint8_t in_call[TR_ID_MAX + 1];         /* between syscall and sysret */
};

struct tr_state *tr_state_new(void)
{
	return calloc(1, sizeof(struct tr_state));
}

void tr_state_free(struct tr_state *s)
{
	free(s);
}

uint32_t tr_state_thread_task(const struct tr_state *s, uint32_t thread)
{
	return thread >= 1 && thread <= TR_ID_MAX ? s->thread_task[thread] : 0;
}

static void thread_unlink(struct tr_state *s, uint32_t th)
{
	uint32_t t = s->thread_task[th];

	if (s->prev[th])
		s->next[s->prev[th]] = s->next[th];
	else
		s->head[t] = s->next[th];
	if (s->next[th])
		s->prev[s->next[th]] = s->prev[th];
	s->thread_task[th] = 0;
	s->task_threads[t]--;
}

int tr_state_check(const struct tr_state *s, const struct tr_event *ev,
                   char *why, size_t why_len)
{
	const char *k = tr_kind_name(ev->kind);

#define BAD(...) do { snprintf(why, why_len, __VA_ARGS__); return -1; } while (0)
#define THREAD(id) do { if (s->thread_task[id] == 0) \
	BAD("%s: thread %u is not live", k, id); } while (0)
#define TASK(id) do { if (!s->task_live[id]) \
	BAD("%s: task %u is not live", k, id); } while (0)
	switch (ev->kind) {
	case TR_TASK:
		if (s->task_live[ev->a])
			BAD("task: task %u is live already", ev->a);
		break;
	case TR_ENDTASK:
		TASK(ev->a);
		break;
	case TR_THREAD:
		if (s->thread_task[ev->a] != 0)
			BAD("thread: thread %u is live already", ev->a);
		if (s->in_call[ev->a])
			BAD("thread: thread %u ended in a system call that has "
			    "not returned", ev->a);
		TASK(ev->b);
		break;
	case TR_SYSCALL:
		THREAD(ev->a);
		if (s->in_call[ev->a])
			BAD("syscall: thread %u is in a system call already",
			    ev->a);
		break;
	case TR_SYSRET:
		if (!s->in_call[ev->a])
			BAD("sysret: thread %u is not in a system call", ev->a);
		break;
	case TR_IPC:
		THREAD(ev->a);
		THREAD(ev->b);
		break;
	case TR_MAP: case TR_GRANT:
		TASK(ev->a);
		TASK(ev->b);
		break;
	case TR_UNMAP:
		TASK(ev->a);
		break;
	default:        /* endthread, user, touch, timer, marker */
		THREAD(ev->a);
		break;
	}
	return 0;
#undef THREAD
#undef TASK
#undef BAD
}

void tr_state_commit(struct tr_state *s, const struct tr_event *ev)
{
	uint32_t th, t;

	switch (ev->kind) {
	case TR_TASK:
		s->task_live[ev->a] = 1;
		s->head[ev->a] = 0;
		s->task_threads[ev->a] = 0;
		break;
	case TR_ENDTASK:
		while ((th = s->head[ev->a]) != 0)
			thread_unlink(s, th);
		s->task_live[ev->a] = 0;
		break;
	case TR_THREAD:
		th = ev->a;
		t = ev->b;
		s->thread_task[th] = (uint16_t)t;
		s->prev[th] = 0;
		s->next[th] = s->head[t];
		if (s->head[t])
			s->prev[s->head[t]] = (uint16_t)th;
		s->head[t] = (uint16_t)th;
		s->task_threads[t]++;
		break;
	case TR_ENDTHREAD:
		thread_unlink(s, ev->a);
		break;
	case TR_SYSCALL:
		s->in_call[ev->a] = 1;
		break;
	case TR_SYSRET:
		s->in_call[ev->a] = 0;
		break;
	default:
		break;
	}
}

int tr_state_apply(struct tr_state *s, const struct tr_event *ev, char *why,
                   size_t why_len)
{
	if (tr_check_fields(ev, why, why_len) != 0 ||
	    tr_state_check(s, ev, why, why_len) != 0)
		return -1;
	tr_state_commit(s, ev);
	return 0;
}

/* ---- Formatting ------------------------------------------------------------- */

static char *put_u64(char *p, uint64_t v)
{
	char tmp[24];
	int n = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	while (n > 0)
		*p++ = tmp[--n];
	return p;
}

static char *put_hex32(char *p, uint32_t v)
{
	static const char hex[] = "0123456789abcdef";

	*p++ = '0';
	*p++ = 'x';
	for (int sh = 28; sh >= 0; sh -= 4)
		*p++ = hex[(v >> sh) & 15u];
	return p;
}

static char *put_str(char *p, const char *s)
{
	while (*s)
		*p++ = *s++;
	return p;
}

static char *put_sp_u64(char *p, uint64_t v)
{
	*p++ = ' ';
	return put_u64(p, v);
}

static char *put_rights(char *p, unsigned rights)
{
	*p++ = ' ';
	if (rights == 0)
		*p++ = '-';
	if (rights & TR_R)
		*p++ = 'r';
	if (rights & TR_W)
		*p++ = 'w';
	if (rights & TR_X)
		*p++ = 'x';
	return p;
}

static char *put_fpage(char *p, uint32_t base, unsigned log2)
{
	*p++ = ' ';
	p = put_hex32(p, base);
	*p++ = '/';
	return put_u64(p, log2);
}

size_t tr_format(const struct tr_event *ev, char *buf)
{
	char *p = put_str(buf, tr_kind_name(ev->kind));

	p = put_sp_u64(p, ev->a);
	switch (ev->kind) {
	case TR_TASK:
		*p++ = ' ';
		p = put_str(p, ev->name);
		break;
	case TR_ENDTASK:
		if (ev->status != 0) {
			*p++ = ' ';
			if (ev->status < 0)
				*p++ = '-';
			p = put_u64(p, ev->status < 0 ?
			            (uint64_t)-(int64_t)ev->status :
			            (uint64_t)ev->status);
		}
		break;
	case TR_THREAD: case TR_IPC:
		p = put_sp_u64(p, ev->b);
		break;
	case TR_USER:
		p = put_sp_u64(p, ev->insns);
		if (ev->cycles != ev->insns)
			p = put_sp_u64(p, ev->cycles);
		break;
	case TR_TOUCH:
		*p++ = ' ';
		p = put_hex32(p, ev->va);
		*p++ = ' ';
		*p++ = ev->access == TR_ACC_WRITE ? 'w' :
		       ev->access == TR_ACC_EXEC ? 'x' : 'r';
		if (ev->insns != 0 || ev->cycles != 0)
			p = put_sp_u64(p, ev->insns);
		if (ev->cycles != ev->insns)
			p = put_sp_u64(p, ev->cycles);
		break;
	case TR_SYSCALL:
		*p++ = ' ';
		p = put_str(p, tr_sys_name((enum tr_sys)ev->id));
		break;
	case TR_MAP: case TR_GRANT:
		p = put_fpage(p, ev->base, ev->log2);
		p = put_rights(p, ev->rights);
		p = put_sp_u64(p, ev->b);
		*p++ = ' ';
		p = put_hex32(p, ev->va);
		break;
	case TR_UNMAP:
		p = put_fpage(p, ev->base, ev->log2);
		p = put_rights(p, ev->rights);
		if (ev->self)
			p = put_str(p, " self");
		break;
	case TR_MARKER:
		p = put_sp_u64(p, ev->id);
		break;
	default:        /* endthread, sysret, timer */
		break;
	}
	*p = '\0';
	return (size_t)(p - buf);
}
