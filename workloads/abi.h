/*
 * workloads/abi.h: the guest ABI of kpsim, shared by the simulator (host C)
 * and the guest runtime (freestanding i386 C).  workloads/README.md
 * explains each call; this header holds only the numbers.
 *
 * A system call is `int 0x30` with the call number in EAX and arguments in
 * EBX, ECX, EDX, ESI, EDI, EBP; the result comes back in EAX (negative: one
 * of KPS_E*), some calls return more in EBX, EDX, ESI, EDI.  Every other
 * register is preserved.
 */
#ifndef KPSIM_WORKLOADS_ABI_H
#define KPSIM_WORKLOADS_ABI_H

/* Call numbers (EAX bits 7..0); bits 15..8 carry the call's flags. */
#define KPS_SYS_EXIT          0u  /* EBX status: ends the whole task */
#define KPS_SYS_WRITE         1u  /* EBX buffer, ECX length -> bytes */
#define KPS_SYS_CYCLES        2u  /* -> EAX low, EDX high 32 bits */
#define KPS_SYS_MARKER        3u  /* EBX id: records the clock */
#define KPS_SYS_YIELD         4u  /* gives up the rest of the slice */
#define KPS_SYS_THREAD_CREATE 5u  /* EBX eip, ECX esp, EDX arg -> thread */
#define KPS_SYS_THREAD_EXIT   6u  /* ends the calling thread */
#define KPS_SYS_TASK_CREATE   7u  /* EBX command line, ECX length -> thread */
#define KPS_SYS_IPC           8u  /* see below */
#define KPS_SYS_UNMAP         9u  /* EBX fpage, ECX flags -> pages changed */
#define KPS_SYS_MYID         10u  /* -> EAX thread, EDX task, ECX UTCB */
#define KPS_SYS_COUNT        11u

/* Errors, returned negated in EAX. */
#define KPS_OK       0
#define KPS_ENOSYS   1   /* no such system call */
#define KPS_EINVAL   2   /* a malformed argument */
#define KPS_EFAULT   3   /* a buffer the task cannot read */
#define KPS_ENOENT   4   /* no such thread or program */
#define KPS_ENOMEM   5   /* the kernel or a pager ran out of memory */
#define KPS_EPERM    6   /* the kernel refused the operation */
#define KPS_EAGAIN   7   /* a non-blocking send found no receiver */
#define KPS_EDENIED  8   /* a kpager denied a kernel page fault */

/*
 * IPC: EBX destination thread (0: no send phase), ECX source thread to
 * receive from (0: no receive phase, KPS_ANY: anyone), EDX and ESI two
 * message words, EDI a map or grant item (a flexpage; 0: none), EBP the
 * receive window (a flexpage: where received items may land; 0: none).
 * Flags: KPS_IPC_NB makes the send phase fail with KPS_EAGAIN instead of
 * blocking when the destination is not waiting (a reply).
 * Returns EAX status, and after a receive phase EBX the sender, EDX and ESI
 * its words, EDI the pages its item mapped.
 */
#define KPS_ANY     0xffffffffu
#define KPS_IPC_NB  0x100u

/*
 * A flexpage in one word: base (bits 31..12, aligned to the size), log2
 * of the size (bits 9..4, 12..31), grant (bit 3; items only), rights
 * (bits 2..0: read 4, write 2, execute 1).
 */
#define KPS_FPAGE(base, log2, rights) \
	(((base) & 0xfffff000u) | ((unsigned)(log2) << 4) | (rights))
#define KPS_FPAGE_GRANT 0x8u
#define KPS_FPAGE_BASE(w)   ((w) & 0xfffff000u)
#define KPS_FPAGE_LOG2(w)   (((w) >> 4) & 0x3fu)
#define KPS_FPAGE_RIGHTS(w) ((w) & 0x7u)
#define KPS_R 4u
#define KPS_W 2u
#define KPS_X 1u

/* Unmap flags: also take the rights from the caller's own mappings. */
#define KPS_UNMAP_SELF 1u

/* Where the simulator puts things in every task. */
#define KPS_STACK_TOP 0xC0000000u   /* the first thread's stack, growing down */

#endif /* KPSIM_WORKLOADS_ABI_H */
