/*
 * kps.h: the tiny freestanding runtime of kpsim guests: system-call stubs
 * (workloads/abi.h, workloads/README.md), a few string helpers and a
 * minimal formatted print.  No libc: guests are static i386 ELF files
 * built with -nostdlib.
 */
#ifndef KPSIM_KPS_H
#define KPSIM_KPS_H

#include <stddef.h>
#include <stdint.h>

#include "abi.h"

/* One IPC (KPS_SYS_IPC): fill the inputs, read the outputs. */
struct kps_ipc {
	uint32_t flags;         /* in: KPS_IPC_NB or 0 */
	uint32_t to, from;      /* in: partners (0: no such phase) */
	uint32_t w0, w1;        /* in: words to send; out: words received */
	uint32_t item;          /* in: map or grant item, or 0 */
	uint32_t window;        /* in: receive window, or 0 */
	uint32_t sender;        /* out: who sent what was received */
	uint32_t pages;         /* out: pages the received item mapped */
};
_Static_assert(sizeof(struct kps_ipc) == 36, "offsets used by crt0.S");

int kps_ipc(struct kps_ipc *m);                 /* status, or -KPS_E* */

__attribute__((noreturn)) void kps_exit(int status);
int kps_write(const void *buf, uint32_t len);
uint64_t kps_cycles(void);
void kps_marker(uint32_t id);
void kps_yield(void);
int kps_thread_create(void (*fn)(uint32_t), void *stack_top, uint32_t arg);
__attribute__((noreturn)) void kps_thread_exit(void);
int kps_task_create(const char *cmdline);       /* its first thread */
int kps_unmap(uint32_t fpage, uint32_t flags);  /* pages changed */
/* The thread's id; its task's id and its UTCB's address (in the UTCB
 * area, mapped by the kernel) where the pointers are not NULL. */
uint32_t kps_myid2(uint32_t *task, uint32_t *utcb);
static inline uint32_t kps_myid(uint32_t *task)
{
	return kps_myid2(task, 0);
}

/* Strings and output. */
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
uint32_t kps_atou(const char *s);               /* decimal or 0x hex */
void kps_puts(const char *s);
/* %s %u %d %x %llu and %%, nothing else. */
void kps_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* KPSIM_KPS_H */
