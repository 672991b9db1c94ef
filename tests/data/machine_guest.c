/*
 * The guest of test_sim_machine: one small program with a mode per test,
 * chosen by argv[1].  Its exit status says whether what it saw was right
 * (0), wrong (1) or the mode unknown (2).
 *   private V  writes V at PRIVATE, yields so the other tasks run, reads it
 *              back: two tasks at one address keep separate memory.
 *   ad         reads page AD_R and writes page AD_W, which the test mapped
 *              before the run (no fault, so only the MMU sets A and D),
 *              then blocks for good so its page tables stay.
 *   revoke     writes a page, unmaps it from itself and reads it again:
 *              the read must fault and find a fresh zeroed page.
 *   badcalls   makes malformed system calls and checks each error code.
 *   ud2        executes an invalid instruction: the task is killed.
 *   spin N     N iterations of arithmetic: a compute-bound guest.
 *   memspin N  N iterations of loads and stores over 64 KiB, with a call
 *              and a branch in each: compute-bound, with memory.
 *   zeros OFF  jumps into fresh zeroed pages ("add [eax], al" over and
 *              over, EAX pointing OFF bytes in): a guest gone astray,
 *              whose new code fills Unicorn's translation cache.
 *   selfmod N  N times round a loop of 500 "add [esi], al" whose first
 *              instruction stores into the loop's own code (the byte
 *              that is there): each round is translated anew, under
 *              the same addresses.
 *   crc N      the CRC-32 of N bytes (a 16 KiB buffer over and over),
 *              byte by byte through a 1 KiB table, as zlib's simplest
 *              loop: a compute kernel of real programs.
 *   rep N      copies N bytes with one rep movsb.
 *   taskbomb   creates tasks that wait for it, until the machine refuses.
 *   fuzz N     N system calls with random numbers and registers (none
 *              that would end, block or unmap the fuzzer itself).
 *   reread N   writes a page, then reads it back N times: the test
 *              revokes its page table and directory meanwhile.
 */
#include "kps.h"

#define PRIVATE 0x20000000u
#define AD_R 0x50000000u
#define AD_W 0x50001000u
#define REVOKE 0x21000000u
#define REREAD 0x22000000u

static uint32_t sys1(uint32_t nr, uint32_t b)
{
	uint32_t r;

	__asm__ volatile("int $0x30" : "=a"(r), "+b"(b) : "a"(nr)
	                 : "ecx", "edx", "memory");
	return r;
}

static int private_memory(uint32_t v)
{
	volatile uint32_t *p = (uint32_t *)PRIVATE;

	*p = v;
	for (int i = 0; i < 3; i++)
		kps_yield();
	return *p == v ? 0 : 1;
}

static int ad_bits(void)
{
	struct kps_ipc m = { .from = KPS_ANY };
	uint32_t v = *(volatile uint32_t *)AD_R;

	*(volatile uint32_t *)AD_W = v + 1;
	kps_ipc(&m);            /* nobody sends: the run ends in deadlock */
	return 1;
}

static int revoke(void)
{
	volatile uint32_t *p = (uint32_t *)REVOKE;
	int pages;

	*p = 0x1234;
	if (*p != 0x1234)
		return 1;
	pages = kps_unmap(KPS_FPAGE(REVOKE, 12, KPS_R | KPS_W | KPS_X),
	                  KPS_UNMAP_SELF);
	return pages == 1 && *p == 0 ? 0 : 1;
}

static int badcalls(void)
{
	struct kps_ipc m = { .to = 4000 };
	int bad = 0;

	bad |= (int)sys1(99, 0) != -KPS_ENOSYS;
	bad |= (int)sys1(KPS_SYS_WRITE | 0x100u, 0) != -KPS_ENOSYS;
	bad |= kps_write((void *)0xC0001000u, 16) != -KPS_EFAULT;
	bad |= kps_write((void *)0x1000u, 100000) != -KPS_EINVAL;
	bad |= kps_ipc(&m) != -KPS_ENOENT;
	m = (struct kps_ipc){ .to = kps_myid(0) };
	bad |= kps_ipc(&m) != -KPS_ENOENT;
	m = (struct kps_ipc){ .from = KPS_ANY, .window = 0x1000u | (5u << 4) };
	bad |= kps_ipc(&m) != -KPS_EINVAL;
	bad |= kps_unmap(0x1000u | (40u << 4), 0) != -KPS_EINVAL;
	bad |= kps_unmap(KPS_FPAGE(0x1000u, 12, 7), 8) != -KPS_EINVAL;
	bad |= kps_task_create("no-such-program") != -KPS_ENOENT;
	bad |= (int)sys1(KPS_SYS_THREAD_CREATE, 0xC0001000u) != -KPS_EINVAL;
	return bad;
}

static volatile uint32_t mem_table[16384];

static __attribute__((noinline)) uint32_t mix(uint32_t a, uint32_t b)
{
	return (a ^ (b >> 3)) + (b << 1);
}

static int memspin(uint32_t n)
{
	uint32_t h = 7;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t j = (i * 2654435761u) >> 18;

		h = mix(h, mem_table[j]);
		if (h & 1)
			mem_table[j] = h;
	}
	return h == 0xffffffffu;
}

#define ZEROS 0x30000000u

static int zeros(uint32_t off)
{
	__asm__ volatile("mov %0, %%eax\n\tjmp *%1" : : "r"(ZEROS + off),
	                 "r"(ZEROS) : "eax", "memory");
	return 1;
}

static uint8_t selfmod_code[4096] __attribute__((aligned(4096)));
static uint8_t selfmod_data[16];

static int selfmod(uint32_t n)
{
	uint8_t *p = selfmod_code;
	int32_t back;

	if (n == 0)
		return 0;
	*p++ = 0x88;                    /* mov [ebx], cl */
	*p++ = 0x0B;
	for (int i = 0; i < 500; i++) {
		*p++ = 0x00;            /* add [esi], al */
		*p++ = 0x06;
	}
	*p++ = 0x4A;                    /* dec edx */
	*p++ = 0x0F;                    /* jnz selfmod_code */
	*p++ = 0x85;
	back = (int32_t)((uintptr_t)selfmod_code - (uintptr_t)(p + 4));
	memcpy(p, &back, 4);
	p += 4;
	*p++ = 0xC3;                    /* ret */
	__asm__ volatile("call *%%edi"
	                 : : "D"(selfmod_code), "b"(selfmod_code + 10),
	                   "c"((uint32_t)selfmod_code[10]), "S"(selfmod_data),
	                   "a"(0), "d"(n)
	                 : "memory", "cc");
	return 0;
}

static uint8_t crc_buf[16384];

static int crc(uint32_t n)
{
	uint32_t table[256], c = 0xffffffffu;
	volatile uint32_t sink;

	for (uint32_t i = 0; i < 256; i++) {
		uint32_t v = i;

		for (int k = 0; k < 8; k++)
			v = v & 1 ? 0xedb88320u ^ (v >> 1) : v >> 1;
		table[i] = v;
	}
	for (uint32_t i = 0; i < sizeof crc_buf; i++)
		crc_buf[i] = (uint8_t)(i * 7u + (i >> 5));
	for (uint32_t i = 0; i < n; i++)
		c = table[(c ^ crc_buf[i & (sizeof crc_buf - 1)]) & 0xffu] ^
		    (c >> 8);
	sink = ~c;
	(void)sink;
	return 0;
}

static int spin(uint32_t n)
{
	volatile uint32_t sink;
	uint32_t a = 1, b = 2;

	for (uint32_t i = 0; i < n; i++) {
		a = a * 3 + b;
		b ^= a >> 3;
	}
	sink = a + b;
	(void)sink;
	return 0;
}

/* One system call with every argument register set: a[0..5] go to EBX,
 * ECX, EDX, ESI, EDI and EBP. */
static uint32_t sys6(uint32_t nr, const uint32_t a[6])
{
	uint32_t r, b = a[0], c = a[1], d = a[2], si = a[3], di = a[4];

	/* The sixth argument is pushed before anything moves ESP (the
	 * operand may be ESP-relative), then swapped into EBP. */
	__asm__ volatile("push %7\n\t"
	                 "xchg %%ebp, (%%esp)\n\t"
	                 "int $0x30\n\t"
	                 "pop %%ebp"
	                 : "=a"(r), "+b"(b), "+c"(c), "+d"(d), "+S"(si),
	                   "+D"(di)
	                 : "a"(nr), "m"(a[5])
	                 : "memory");
	return r;
}

static int fuzz(uint32_t n)
{
	uint32_t x = 0x2545F491u, a[7];

	for (uint32_t i = 0; i < n; i++) {
		uint32_t nr;

		for (int k = 0; k < 7; k++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			a[k] = x;
		}
		/* Mostly real call numbers, one in eight with random flags. */
		nr = a[0] & 0xfu;
		if (((a[0] >> 4) & 7u) == 0)
			nr |= a[0] & 0xff00u;
		/* Not the calls that end, block, yield or start threads, nor
		 * an unmap of the fuzzer's own pages; a[1] is EBX, a[2] ECX. */
		switch (nr & 0xffu) {
		case KPS_SYS_EXIT: case KPS_SYS_THREAD_EXIT:
		case KPS_SYS_THREAD_CREATE: case KPS_SYS_YIELD:
			continue;
		case KPS_SYS_IPC:
			nr = (nr & 0xff00u) | KPS_IPC_NB | KPS_SYS_IPC;
			a[2] = 0;
			break;
		case KPS_SYS_UNMAP:
			a[2] &= ~KPS_UNMAP_SELF;
			break;
		case KPS_SYS_WRITE:
			a[2] &= 0x1ffffu;
			break;
		default:
			break;
		}
		sys6(nr, &a[1]);
	}
	return 0;
}

/* Each child ("mapper client ME 0") calls this thread, which never
 * answers: the children stay until it ends. */
static int taskbomb(void)
{
	char cmd[32] = "mapper client ";
	uint32_t me = kps_myid(0), n = 14;
	int created = 0, rc = 0;

	for (uint32_t d = 1000; d; d /= 10)
		if (me >= d || d == 1)
			cmd[n++] = (char)('0' + (me / d) % 10);
	cmd[n++] = ' ';
	cmd[n++] = '0';
	cmd[n] = '\0';
	while (created < 300 && (rc = kps_task_create(cmd)) > 0)
		created++;
	kps_printf("taskbomb: %d tasks, then %d\n", created, rc);
	return created < 300 && rc == -KPS_ENOMEM ? 0 : 1;
}

static uint8_t rep_src[8192], rep_dst[8192];

static int rep_copy(uint32_t n)
{
	void *d = rep_dst, *src = rep_src;

	if (n > sizeof rep_dst)
		return 2;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n)
	                 : : "memory");
	return 0;
}

static int reread(uint32_t n)
{
	volatile uint32_t *p = (uint32_t *)REREAD;
	uint32_t bad = 0;

	*p = 0xfeed;
	for (uint32_t i = 0; i < n; i++)
		bad += *p != 0xfeed;
	return bad != 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return 2;
	if (strcmp(argv[1], "private") == 0 && argc == 3)
		return private_memory(kps_atou(argv[2]));
	if (strcmp(argv[1], "ad") == 0)
		return ad_bits();
	if (strcmp(argv[1], "revoke") == 0)
		return revoke();
	if (strcmp(argv[1], "badcalls") == 0)
		return badcalls();
	if (strcmp(argv[1], "ud2") == 0)
		__asm__ volatile("ud2");
	if (strcmp(argv[1], "fuzz") == 0 && argc == 3)
		return fuzz(kps_atou(argv[2]));
	if (strcmp(argv[1], "taskbomb") == 0)
		return taskbomb();
	if (strcmp(argv[1], "rep") == 0 && argc == 3)
		return rep_copy(kps_atou(argv[2]));
	if (strcmp(argv[1], "reread") == 0 && argc == 3)
		return reread(kps_atou(argv[2]));
	if (strcmp(argv[1], "memspin") == 0 && argc == 3)
		return memspin(kps_atou(argv[2]));
	if (strcmp(argv[1], "spin") == 0 && argc == 3)
		return spin(kps_atou(argv[2]));
	if (strcmp(argv[1], "crc") == 0 && argc == 3)
		return crc(kps_atou(argv[2]));
	if (strcmp(argv[1], "zeros") == 0 && argc == 3)
		return zeros(kps_atou(argv[2]));
	if (strcmp(argv[1], "selfmod") == 0 && argc == 3)
		return selfmod(kps_atou(argv[2]));
	return 2;
}
