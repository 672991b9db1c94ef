/*
 * spawn: many threads in one task (default 64): TCB and UTCB pressure on
 * the kernel's memory.  Each thread touches its own stack, sends its
 * number to the main thread and ends.  Usage: spawn [THREADS].
 */
#include "kps.h"

#define MAX_THREADS 512u
#define STACK 1024u

static uint8_t stacks[MAX_THREADS][STACK];
static uint32_t main_thread;

static void worker(uint32_t n)
{
	struct kps_ipc m = { .to = main_thread, .w0 = n };

	kps_ipc(&m);
}

int main(int argc, char **argv)
{
	uint32_t n = argc > 1 ? kps_atou(argv[1]) : 64;
	uint32_t sum = 0, got = 0, created = 0;

	if (n == 0 || n > MAX_THREADS) {
		kps_puts("spawn: THREADS must be 1 .. 512\n");
		return 2;
	}
	main_thread = kps_myid(0);
	for (uint32_t i = 0; i < n; i++) {
		int rc = kps_thread_create(worker, stacks[i] + STACK, i + 1);

		if (rc < 0) {
			kps_printf("spawn: thread %u: create failed: %d\n", i,
			           rc);
			break;
		}
		created++;
	}
	for (;;) {
		struct kps_ipc m = { .from = KPS_ANY };

		/* Once every worker has sent, no thread is left to send:
		 * stop at the count created rather than block forever. */
		if (got == created || kps_ipc(&m) < 0)
			break;
		sum += m.w0;
		got++;
	}
	kps_printf("spawn: %u threads reported, sum %u\n", got, sum);
	return got == n && sum == n * (n + 1) / 2 ? 0 : 1;
}
