/*
 * crt0: the entry point of every kpsim guest.  The simulator starts the
 * first thread here with ESP pointing at argc, then argv[0..argc-1], then
 * a null pointer (workloads/README.md); main's result is the task's exit
 * status.
 */
	.text
	.globl _start
_start:
	mov	(%esp), %eax		/* argc */
	lea	4(%esp), %ecx		/* argv */
	and	$-16, %esp		/* the i386 ABI's alignment for calls */
	sub	$8, %esp
	push	%ecx
	push	%eax
	call	main
	push	%eax
	call	kps_exit
1:	jmp	1b			/* kps_exit does not return */

/*
 * int kps_ipc(struct kps_ipc *m): the IPC system call, which takes six
 * registers including EBP, so it is written here rather than as inline
 * assembly.  Offsets follow struct kps_ipc in kps.h.
 */
	.globl kps_ipc
kps_ipc:
	push	%ebp
	push	%ebx
	push	%esi
	push	%edi
	mov	20(%esp), %eax		/* m: above four saves and the return */
	push	%eax
	mov	4(%eax), %ebx		/* to */
	mov	8(%eax), %ecx		/* from */
	mov	12(%eax), %edx		/* w0 */
	mov	16(%eax), %esi		/* w1 */
	mov	20(%eax), %edi		/* item */
	mov	24(%eax), %ebp		/* window */
	mov	0(%eax), %eax		/* flags */
	or	$8, %eax		/* KPS_SYS_IPC */
	int	$0x30
	pop	%ecx
	mov	%ebx, 28(%ecx)		/* sender */
	mov	%edx, 12(%ecx)
	mov	%esi, 16(%ecx)
	mov	%edi, 32(%ecx)		/* pages */
	pop	%edi
	pop	%esi
	pop	%ebx
	pop	%ebp
	ret

	.section .note.GNU-stack,"",@progbits
