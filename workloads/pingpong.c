/*
 * pingpong: two threads of one task, N IPC round trips (default 1000):
 * the main thread calls, the partner replies and waits.  Usage:
 * pingpong [ROUNDS].
 */
#include "kps.h"

static uint8_t partner_stack[8192];
static uint32_t main_thread;

static void partner(uint32_t rounds)
{
	struct kps_ipc m = { .from = main_thread };

	kps_ipc(&m);                    /* the first request */
	for (uint32_t i = 1; i < rounds; i++) {
		m = (struct kps_ipc){ .to = main_thread, .from = main_thread,
		                      .w0 = m.w0 + 1 };
		kps_ipc(&m);            /* reply, and wait for the next */
	}
	m = (struct kps_ipc){ .to = main_thread, .w0 = m.w0 + 1 };
	kps_ipc(&m);
}

int main(int argc, char **argv)
{
	uint32_t rounds = argc > 1 ? kps_atou(argv[1]) : 1000;
	uint32_t value = 0;
	uint64_t t0, t1;
	int peer;

	if (rounds == 0) {
		kps_puts("pingpong: ROUNDS must be at least 1\n");
		return 2;
	}
	main_thread = kps_myid(0);
	peer = kps_thread_create(partner, partner_stack + sizeof partner_stack,
	                         rounds);
	if (peer < 0) {
		kps_printf("pingpong: thread create failed: %d\n", peer);
		return 1;
	}
	t0 = kps_cycles();
	for (uint32_t i = 0; i < rounds; i++) {
		struct kps_ipc m = { .to = (uint32_t)peer,
		                     .from = (uint32_t)peer, .w0 = value };
		int rc = kps_ipc(&m);

		if (rc < 0) {
			kps_printf("pingpong: ipc failed: %d\n", rc);
			return 1;
		}
		value = m.w0;
	}
	t1 = kps_cycles();
	kps_printf("pingpong: %u round trips, value %u, %llu cycles each\n",
	           rounds, value, (unsigned long long)((t1 - t0) / rounds));
	return value == rounds ? 0 : 1;
}
