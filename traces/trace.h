/*
 * traces/trace.h: kpsim trace format v1 (traces/FORMAT.md), its reader and
 * its writer.  A trace is the stream of kernel-relevant events at the
 * boundary between programs and the kernel, one event a line.  The reader
 * owns the validation of untrusted traces: every event it returns has
 * every field in range and names only tasks and threads that are live at
 * that point (so a replayer can trust it); anything else is an error with
 * the file, the line and the reason.  Traces may be gzip-compressed
 * (zlib); the reader tells by the content, the writer by a ".gz" name.
 *
 * No Unicorn here: the trace library sits beside kmodel and the pagers.
 */
#ifndef KPSIM_TRACE_H
#define KPSIM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TR_VERSION 1u
#define TR_MAGIC "kpsim-trace"          /* the header: "kpsim-trace 1" */
#define TR_ID_MAX 65535u                /* task and thread ids: 1 .. this */
#define TR_NAME_MAX 31u                 /* bytes of a task's name */
#define TR_COUNT_MAX ((1ull << 48) - 1) /* instructions, cycles */
#define TR_USER_TOP 0xC0000000u         /* addresses lie below this */
#define TR_LINE_MAX 255u                /* bytes of a line, without '\n' */
#define TR_WHY_SIZE 512u                /* enough for any error message */

enum tr_kind {
	TR_TASK = 0,    /* a = task; name */
	TR_ENDTASK,     /* a = task; status (its live threads end with it) */
	TR_THREAD,      /* a = thread, b = its task */
	TR_ENDTHREAD,   /* a = thread */
	TR_USER,        /* a = thread; insns, cycles: user work */
	TR_TOUCH,       /* a = thread; va, access; insns, cycles before it */
	TR_SYSCALL,     /* a = thread; sys: it enters the kernel */
	TR_SYSRET,      /* a = thread (which may have ended in the call) */
	TR_TIMER,       /* a = thread: a timer interrupt ends its slice */
	TR_IPC,         /* a = sender thread, b = receiver thread */
	TR_MAP,         /* a = from task, b = to task; fp; va = destination */
	TR_GRANT,       /* as TR_MAP */
	TR_UNMAP,       /* a = task; fp; self */
	TR_MARKER,      /* a = thread; id */
	TR_KIND_COUNT
};

/* The system calls a TR_SYSCALL names (workloads/abi.h's, and one for a
 * number the kernel does not know). */
enum tr_sys {
	TR_SYS_EXIT = 0, TR_SYS_WRITE, TR_SYS_CYCLES, TR_SYS_MARKER,
	TR_SYS_YIELD, TR_SYS_THREAD_CREATE, TR_SYS_THREAD_EXIT,
	TR_SYS_TASK_CREATE, TR_SYS_IPC, TR_SYS_UNMAP, TR_SYS_MYID,
	TR_SYS_INVALID, TR_SYS_COUNT
};

/* Access kinds of a touch: the same bits as KM_ACC_*. */
#define TR_ACC_READ  1u
#define TR_ACC_WRITE 2u
#define TR_ACC_EXEC  4u

/* Rights of a flexpage: the same bits as KM_R, KM_W, KM_X. */
#define TR_R 4u
#define TR_W 2u
#define TR_X 1u

struct tr_event {
	enum tr_kind kind;
	uint32_t a, b;          /* task or thread ids, as the kind says */
	uint32_t va;            /* touch: the address; map, grant: the
	                         * destination base */
	uint32_t base;          /* map, grant, unmap: the flexpage */
	uint8_t log2;           /* its size, 12 .. 31 */
	uint8_t rights;         /* TR_R | TR_W | TR_X, 0 allowed */
	uint8_t access;         /* touch: one TR_ACC_* */
	bool self;              /* unmap: the task's own mappings too */
	uint32_t id;            /* marker: its number; syscall: enum tr_sys */
	int32_t status;         /* endtask: the exit status */
	uint64_t insns, cycles; /* user, touch: work since the last event */
	char name[TR_NAME_MAX + 1]; /* task: its name */
};

/* Names for messages and for writing: "task", "touch", ..., "exit", ... */
const char *tr_kind_name(enum tr_kind k);
const char *tr_sys_name(enum tr_sys s);

/* Is c allowed in a task's name?  tr_name_sanitize copies src into dst
 * (TR_NAME_MAX + 1 bytes) cut to TR_NAME_MAX bytes, with every other byte
 * replaced by '_' ("_" for an empty name). */
bool tr_name_char(char c);
void tr_name_sanitize(char *dst, const char *src);

/* ---- Reading -------------------------------------------------------------- */

struct tr_reader;

/*
 * Opens a trace file ("-": standard input), plain or gzip, and checks its
 * header.  Returns 0 and *out, or -1 with the reason in why (which names
 * the file) and *out NULL.
 */
int tr_open(const char *path, struct tr_reader **out, char *why,
            size_t why_len);
/* The same for a trace in memory (borrowed until tr_close; plain text
 * only); name is what messages call it. */
int tr_open_mem(const void *buf, size_t len, const char *name,
                struct tr_reader **out, char *why, size_t why_len);

/*
 * The next event.  Returns 1 and *ev; 0 at the end of the trace; -1 on an
 * error, after which tr_error says "FILE:LINE: reason" and every later
 * call returns -1.  Comments and blank lines are skipped.
 */
int tr_next(struct tr_reader *r, struct tr_event *ev);
const char *tr_error(const struct tr_reader *r);
/* The line the last event (or error) came from, 1-based. */
uint64_t tr_line(const struct tr_reader *r);
/* Bytes of the file consumed so far (compressed bytes for gzip), and the
 * file's size if known (0 if not): for progress reports. */
uint64_t tr_offset(const struct tr_reader *r);
uint64_t tr_size(const struct tr_reader *r);
/* Accepts NULL. */
void tr_close(struct tr_reader *r);

/* ---- Checking a stream that does not come from a file --------------------- */

/*
 * The reader's semantic check for events made by a program (a recorder, an
 * importer, a scenario): which ids are live.  tr_state_apply returns 0 and
 * applies ev, or -1 with the reason in why and the state unchanged.
 */
struct tr_state;
struct tr_state *tr_state_new(void);
void tr_state_free(struct tr_state *s);
int tr_state_apply(struct tr_state *s, const struct tr_event *ev, char *why,
                   size_t why_len);
/* The task of a live thread, or 0. */
uint32_t tr_state_thread_task(const struct tr_state *s, uint32_t thread);

/* ---- Writing -------------------------------------------------------------- */

struct tr_writer;

/*
 * Creates a trace file ("-": standard output), gzip-compressed if path
 * ends in ".gz", and writes the header.  Returns 0 and *out, or -1 with
 * the reason in why.
 */
int tr_create(const char *path, struct tr_writer **out, char *why,
              size_t why_len);
/* Writes one comment line ("# text"); text must not hold a newline. */
int tr_comment(struct tr_writer *w, const char *text);
/*
 * Writes one event: checked like the reader checks it (a writer never
 * makes a trace the reader refuses).  Returns 0, or -1 with the reason in
 * tr_writer_error (then nothing more is written).
 */
int tr_write(struct tr_writer *w, const struct tr_event *ev);
const char *tr_writer_error(const struct tr_writer *w);
/* Events written so far. */
uint64_t tr_written(const struct tr_writer *w);
/* Flushes and closes.  Returns 0, or -1 if anything failed since
 * tr_create (an event refused, a write error), with the reason in why.
 * Accepts NULL (returns 0). */
int tr_finish(struct tr_writer *w, char *why, size_t why_len);

/*
 * Formats one event as its line, without the newline, into buf (at least
 * TR_LINE_MAX + 1 bytes); returns the length.  No checks.
 */
size_t tr_format(const struct tr_event *ev, char *buf);

#endif /* KPSIM_TRACE_H */
