/*
 * sim/p6cost.c: cycles of one IA-32 instruction on a P6 core (Pentium
 * Pro, II, III), by instruction class.  The engine charges each
 * translation block the sum over its instructions once, when it first
 * sees the block, so the cost of this table is paid per block learned,
 * not per instruction run.
 *
 * The model: an in-order machine that finishes one simple instruction a
 * cycle, which is what the P6's three-wide decoders and retirement
 * sustain on integer code with warm caches, plus the extra cycles of the
 * classes that break that rhythm: micro-coded and multi-micro-op
 * instructions, long-latency arithmetic, and locked or serialising ones.
 * Values are per instruction, rounded to whole cycles.  Sources: Agner Fog,
 * "Instruction tables: lists of instruction latencies, throughputs and
 * micro-operation breakdowns", the Pentium II and III table (micro-ops and
 * latencies), and Intel, "Intel Architecture Optimization Reference
 * Manual" (1999), appendix C (latencies); the rounding and the one-cycle
 * floor are this model's estimates, not measurements.  Branch
 * mispredictions, cache misses and partial-register stalls are not
 * modelled.
 */
#include "engine.h"

#include <stdbool.h>

enum {
	C_SIMPLE = 1,   /* ALU, mov, lea, push, pop, jcc, jmp, setcc, ...:
	                 * 1 to 2 micro-ops, one a cycle */
	C_RMW = 2,      /* ALU with a memory destination: 4 micro-ops */
	C_CALLRET = 2,  /* call, ret: 4 micro-ops each */
	C_CMOV = 2,     /* cmovcc: 2 micro-ops, latency 2 */
	C_IMUL = 4,     /* imul r, r/m (and imm): latency 4 */
	C_MUL = 5,      /* mul, imul r/m32 (EDX:EAX): latency 4 to 5 */
	C_DIV8 = 19,    /* div, idiv r/m8: latency 19 */
	C_DIV32 = 39,   /* div, idiv r/m32: latency 39 */
	C_STRING = 3,   /* one movs, cmps, scas, lods, stos: micro-coded */
	C_LOCKED = 20,  /* xchg with memory, lock prefix: a locked bus cycle */
	C_SERIAL = 30,  /* cpuid, rdtsc, segment loads, far transfers,
	                 * pushad, popad: serialising or micro-coded */
	C_FPU = 3,      /* x87 arithmetic: latency 3 (fadd) to 5 (fmul) */
	C_FLAGS = 2,    /* pushf, popf, cld, std, sahf: micro-coded */
	C_BITSCAN = 2,  /* bsf, bsr, bt with memory: 2 to 3 micro-ops */
	C_SHIFTD = 3,   /* shld, shrd: latency 3 */
	C_TRAP = 0,     /* int n: the kernel charges the trap itself */
};

/* Does the ModRM byte after the opcode at p name memory? */
static bool modrm_mem(const uint8_t *p, unsigned len, unsigned at)
{
	return at < len && (p[at] >> 6) != 3;
}

/* The /digit of the ModRM byte at p[at]. */
static unsigned modrm_reg(const uint8_t *p, unsigned len, unsigned at)
{
	return at < len ? (p[at] >> 3) & 7u : 0;
}

static unsigned two_byte(const uint8_t *p, unsigned len, unsigned i)
{
	uint8_t op = p[i];

	if (op >= 0x40 && op <= 0x4f)
		return C_CMOV;
	if (op == 0xaf)
		return C_IMUL;
	if (op == 0xbc || op == 0xbd)
		return C_BITSCAN;
	if (op == 0xa4 || op == 0xa5 || op == 0xac || op == 0xad)
		return C_SHIFTD;
	if ((op == 0xa3 || op == 0xab || op == 0xb3 || op == 0xbb ||
	     op == 0xba) && modrm_mem(p, len, i + 1))
		return C_BITSCAN;
	if (op == 0xa2 || op == 0x31 || op == 0xa0 || op == 0xa1 ||
	    op == 0xa8 || op == 0xa9 || op <= 0x0f)
		return C_SERIAL;        /* cpuid, rdtsc, push/pop fs/gs, system */
	if (op == 0xb0 || op == 0xb1 || op == 0xc0 || op == 0xc1)
		return C_RMW;           /* cmpxchg, xadd */
	return C_SIMPLE;                /* jcc, setcc, movzx, movsx, bswap */
}

static unsigned one_byte(const uint8_t *p, unsigned len, unsigned i,
                         bool rep)
{
	uint8_t op = p[i];
	unsigned reg = modrm_reg(p, len, i + 1);
	bool mem = modrm_mem(p, len, i + 1);

	/* ALU r/m, r: add or adc and sbb and sub xor (not cmp), to memory. */
	if (op < 0x40 && (op & 7) <= 1 && (op >> 3) != 7)
		return mem ? C_RMW : C_SIMPLE;
	switch (op) {
	case 0x80: case 0x81: case 0x83:
		return mem && reg != 7 ? C_RMW : C_SIMPLE;
	case 0xfe: case 0xff:
		if (reg == 2 || reg == 4)
			return reg == 2 ? C_CALLRET : C_SIMPLE;
		if (reg == 3 || reg == 5)
			return C_SERIAL;        /* far call, far jmp */
		return mem && reg <= 1 ? C_RMW : C_SIMPLE;
	case 0xd0: case 0xd1: case 0xd2: case 0xd3: case 0xc0: case 0xc1:
		return mem ? C_RMW : C_SIMPLE;
	case 0xf6: case 0xf7:
		if (reg == 4 || reg == 5)
			return C_MUL;
		if (reg == 6 || reg == 7)
			return op == 0xf6 ? C_DIV8 : C_DIV32;
		return mem && (reg == 2 || reg == 3) ? C_RMW : C_SIMPLE;
	case 0x69: case 0x6b:
		return C_IMUL;
	case 0x86: case 0x87:
		return mem ? C_LOCKED : C_SIMPLE;
	case 0xe8: case 0xc2: case 0xc3:
		return C_CALLRET;
	case 0xa4: case 0xa5: case 0xa6: case 0xa7: case 0xaa: case 0xab:
	case 0xac: case 0xad: case 0xae: case 0xaf:
		/* With rep, each iteration is a block of its own in the
		 * engine, so this is the cost per iteration. */
		return rep ? C_SIMPLE : C_STRING;
	case 0x60: case 0x61: case 0x9a: case 0xca: case 0xcb: case 0xcf:
	case 0x8e: case 0x06: case 0x07: case 0x0e: case 0x16: case 0x17:
	case 0x1e: case 0x1f: case 0xc4: case 0xc5: case 0xea: case 0xf4:
		return C_SERIAL;
	case 0x9c: case 0x9d: case 0x9e: case 0xfc: case 0xfd:
		return C_FLAGS;
	case 0xcc: case 0xcd: case 0xce:
		return C_TRAP;
	default:
		break;
	}
	if (op >= 0xd8 && op <= 0xdf)
		return C_FPU;
	return C_SIMPLE;
}

unsigned sim_p6_insn_cycles(const uint8_t *p, unsigned len)
{
	unsigned i = 0;
	bool rep = false, lock = false;

	/* Prefixes: operand and address size, segments, rep, lock. */
	while (i < len && (p[i] == 0x66 || p[i] == 0x67 || p[i] == 0x26 ||
	                   p[i] == 0x2e || p[i] == 0x36 || p[i] == 0x3e ||
	                   p[i] == 0x64 || p[i] == 0x65 || p[i] == 0xf0 ||
	                   p[i] == 0xf2 || p[i] == 0xf3)) {
		rep |= p[i] == 0xf2 || p[i] == 0xf3;
		lock |= p[i] == 0xf0;
		i++;
	}
	if (i >= len)
		return C_SIMPLE;
	if (lock)
		return C_LOCKED;
	if (p[i] == 0x0f)
		return i + 1 < len ? two_byte(p, len, i + 1) : C_SIMPLE;
	return one_byte(p, len, i, rep);
}
