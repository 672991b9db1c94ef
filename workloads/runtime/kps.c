/*
 * kps.c: the guest runtime's system-call stubs and helpers.  Each stub is
 * one `int 0x30` with the call number in EAX and its arguments in EBX,
 * ECX, EDX (workloads/abi.h); kps_ipc, which needs EBP too, is in crt0.S.
 */
#include "kps.h"

#include <stdarg.h>

static inline uint32_t sys3(uint32_t nr, uint32_t b, uint32_t c, uint32_t d)
{
	uint32_t r;

	__asm__ volatile("int $0x30"
	                 : "=a"(r), "+b"(b), "+c"(c), "+d"(d)
	                 : "a"(nr)
	                 : "memory");
	return r;
}

void kps_exit(int status)
{
	sys3(KPS_SYS_EXIT, (uint32_t)status, 0, 0);
	for (;;)
		;       /* the kernel ended the task */
}

int kps_write(const void *buf, uint32_t len)
{
	return (int)sys3(KPS_SYS_WRITE, (uint32_t)buf, len, 0);
}

uint64_t kps_cycles(void)
{
	uint32_t lo, hi = 0;

	__asm__ volatile("int $0x30" : "=a"(lo), "=d"(hi)
	                 : "a"(KPS_SYS_CYCLES) : "memory");
	return (uint64_t)hi << 32 | lo;
}

void kps_marker(uint32_t id)
{
	sys3(KPS_SYS_MARKER, id, 0, 0);
}

void kps_yield(void)
{
	sys3(KPS_SYS_YIELD, 0, 0, 0);
}

int kps_thread_create(void (*fn)(uint32_t), void *stack_top, uint32_t arg)
{
	/* The new thread starts in fn as if called with arg, from a return
	 * address that ends the thread; ESP + 4 is 16-byte aligned, as the
	 * i386 ABI wants at a function's entry. */
	uint32_t *sp = (uint32_t *)((uint32_t)stack_top & ~15u) - 5;

	sp[0] = (uint32_t)kps_thread_exit;
	sp[1] = arg;
	return (int)sys3(KPS_SYS_THREAD_CREATE, (uint32_t)fn, (uint32_t)sp,
	                 arg);
}

void kps_thread_exit(void)
{
	sys3(KPS_SYS_THREAD_EXIT, 0, 0, 0);
	for (;;)
		;
}

int kps_task_create(const char *cmdline)
{
	return (int)sys3(KPS_SYS_TASK_CREATE, (uint32_t)cmdline,
	                 (uint32_t)strlen(cmdline), 0);
}

int kps_unmap(uint32_t fpage, uint32_t flags)
{
	return (int)sys3(KPS_SYS_UNMAP, fpage, flags, 0);
}

uint32_t kps_myid2(uint32_t *task, uint32_t *utcb)
{
	uint32_t th, t, u;

	__asm__ volatile("int $0x30" : "=a"(th), "=d"(t), "=c"(u)
	                 : "a"(KPS_SYS_MYID) : "memory");
	if (task)
		*task = t;
	if (utcb)
		*utcb = u;
	return th;
}

size_t strlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int strcmp(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return (unsigned char)*a - (unsigned char)*b;
}

void *memset(void *d, int c, size_t n)
{
	unsigned char *p = d;

	while (n--)
		*p++ = (unsigned char)c;
	return d;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *p = d;
	const unsigned char *q = s;

	while (n--)
		*p++ = *q++;
	return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *p = a, *q = b;

	for (; n; n--, p++, q++)
		if (*p != *q)
			return *p - *q;
	return 0;
}

uint32_t kps_atou(const char *s)
{
	uint32_t v = 0, base = 10;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	for (; *s; s++) {
		uint32_t d;

		if (*s >= '0' && *s <= '9')
			d = (uint32_t)(*s - '0');
		else if (base == 16 && *s >= 'a' && *s <= 'f')
			d = (uint32_t)(*s - 'a' + 10);
		else if (base == 16 && *s >= 'A' && *s <= 'F')
			d = (uint32_t)(*s - 'A' + 10);
		else
			break;
		v = v * base + d;
	}
	return v;
}

void kps_puts(const char *s)
{
	kps_write(s, (uint32_t)strlen(s));
}

/* Appends the digits of v in `base` to out at *n. */
static void put_num(char *out, size_t *n, size_t cap, uint64_t v,
                    unsigned base)
{
	char tmp[24];
	int i = 0;

	do {
		tmp[i++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v);
	while (i > 0 && *n < cap)
		out[(*n)++] = tmp[--i];
}

void kps_printf(const char *fmt, ...)
{
	char out[256];
	size_t n = 0;
	va_list ap;

	va_start(ap, fmt);
	for (; *fmt && n < sizeof out; fmt++) {
		if (*fmt != '%') {
			out[n++] = *fmt;
			continue;
		}
		fmt++;
		if (*fmt == 's') {
			for (const char *s = va_arg(ap, const char *);
			     *s && n < sizeof out; s++)
				out[n++] = *s;
		} else if (*fmt == 'u') {
			put_num(out, &n, sizeof out, va_arg(ap, unsigned), 10);
		} else if (*fmt == 'd') {
			int v = va_arg(ap, int);

			if (v < 0 && n < sizeof out)
				out[n++] = '-';
			put_num(out, &n, sizeof out,
			        v < 0 ? -(uint64_t)v : (uint64_t)v, 10);
		} else if (*fmt == 'x') {
			put_num(out, &n, sizeof out, va_arg(ap, unsigned), 16);
		} else if (fmt[0] == 'l' && fmt[1] == 'l' && fmt[2] == 'u') {
			put_num(out, &n, sizeof out,
			        va_arg(ap, unsigned long long), 10);
			fmt += 2;
		} else if (*fmt == '%') {
			out[n++] = '%';
		} else {
			break;
		}
	}
	va_end(ap);
	kps_write(out, (uint32_t)n);
}
