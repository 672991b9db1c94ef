/*
 * qemu-lackey: a QEMU TCG plugin that logs what valgrind's lackey logs
 * (--tool=lackey --trace-mem=yes): one "I  ADDR,SIZE" line per executed
 * guest instruction and one " L ADDR,SIZE" or " S ADDR,SIZE" line per data
 * access, in program order.  It exists because valgrind's 32-bit tools
 * need a kernel that runs i386 binaries; where the kernel does not
 * (CONFIG_IA32_EMULATION off), qemu-i386 runs them, and this plugin
 * traces them in a form `kpsim import lackey` reads.  A read-modify-write
 * shows as a load and a store (lackey says M).
 *
 * Build (traces/regenerate-samples.sh does): cc -shared -fPIC -O2
 *   -I<qemu 7.2 source>/include/qemu -o qemu-lackey.so qemu-lackey.c
 * Use: qemu-i386 -R 0xC0000000 -plugin ./qemu-lackey.so,outfile=LOG PROG
 * (-R keeps the guest below 3 GiB, as setarch i386 -3 does).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static FILE *out;

/* The instruction's address and length, packed into the callback's data. */
static void on_insn(unsigned int vcpu, void *udata)
{
	uintptr_t v = (uintptr_t)udata;

	(void)vcpu;
	fprintf(out, "I  %08" PRIxPTR ",%u\n", v >> 8, (unsigned)(v & 0xff));
}

static void on_mem(unsigned int vcpu, qemu_plugin_meminfo_t info,
                   uint64_t vaddr, void *udata)
{
	(void)vcpu;
	(void)udata;
	fprintf(out, " %c %08" PRIx64 ",%u\n",
	        qemu_plugin_mem_is_store(info) ? 'S' : 'L', vaddr,
	        1u << qemu_plugin_mem_size_shift(info));
}

static void on_tb(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
	size_t n = qemu_plugin_tb_n_insns(tb);

	(void)id;
	for (size_t i = 0; i < n; i++) {
		struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
		uintptr_t v = (uintptr_t)qemu_plugin_insn_vaddr(insn) << 8 |
		              (qemu_plugin_insn_size(insn) & 0xff);

		qemu_plugin_register_vcpu_insn_exec_cb(insn, on_insn,
		                                       QEMU_PLUGIN_CB_NO_REGS,
		                                       (void *)v);
		qemu_plugin_register_vcpu_mem_cb(insn, on_mem,
		                                 QEMU_PLUGIN_CB_NO_REGS,
		                                 QEMU_PLUGIN_MEM_RW, NULL);
	}
}

static void on_done(qemu_plugin_id_t id, void *p)
{
	(void)id;
	(void)p;
	fflush(out);
	if (out != stderr)
		fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
	out = stderr;
	for (int i = 0; i < argc; i++) {
		if (strncmp(argv[i], "outfile=", 8) == 0) {
			out = fopen(argv[i] + 8, "w");
			if (out == NULL) {
				perror(argv[i] + 8);
				return -1;
			}
		} else {
			fprintf(stderr, "qemu-lackey: unknown argument %s\n",
			        argv[i]);
			return -1;
		}
	}
	setvbuf(out, NULL, _IOFBF, 1 << 20);
	fprintf(out, "==0== lackey-format trace by qemu-lackey (%s)\n",
	        info->target_name);
	qemu_plugin_register_vcpu_tb_trans_cb(id, on_tb);
	qemu_plugin_register_atexit_cb(id, on_done, NULL);
	return 0;
}
