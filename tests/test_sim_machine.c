/*
 * The machine: guests on the kernel model.  Each bundled workload runs
 * with assertions on its output and its fault records; two tasks at one
 * address keep separate memory; the A and D bits the MMU sets land in the
 * model's PTEs; a revoked mapping faults on the next access; malformed
 * ELF files and malformed system calls are refused with the right error;
 * the same inputs give the same cycles.  argv[1] is the test guest
 * (data/machine_guest.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "bundle.h"
#include "engine.h"
#include "machine.h"
#include "pagers.h"

static const char *guest_path;

struct recs {
	struct km_fault_rec v[4096];
	size_t n;
};

static void sink(void *ctx, const struct km_fault_rec *r)
{
	struct recs *rs = ctx;

	if (rs->n < 4096)
		rs->v[rs->n] = *r;
	rs->n++;
}

/* One run of some programs, with its output and records. */
struct run {
	struct sim_machine *m;
	struct sim_elf *img[64];
	const char *imgname[64];        /* bundled images by name, or NULL */
	size_t nimg;
	char *out;
	size_t outlen;
	FILE *outf;
	struct recs *rs;
	int rc;
	char why[320];
};

static const struct sim_elf *find(void *ctx, const char *name);

static struct sim_elf *bundled(struct run *r, const char *name)
{
	const struct kps_bundled *b = kps_bundled_find(name);
	struct sim_elf *img;
	char msg[SIM_ELF_MSG_SIZE];

	assert_non_null(b);
	assert_int_equal(sim_elf_load_buffer(b->elf, b->size, &img, msg,
	                                     sizeof msg), SIM_ELF_OK);
	assert_true(r->nimg < 64);
	r->img[r->nimg++] = img;
	return img;
}

/* Tasks start bundled programs by name: each image is loaded once. */
static const struct sim_elf *find(void *ctx, const char *name)
{
	struct run *r = ctx;

	for (size_t i = 0; i < r->nimg; i++)
		if (r->imgname[i] != NULL && strcmp(r->imgname[i], name) == 0)
			return r->img[i];
	if (kps_bundled_find(name) == NULL)
		return NULL;
	bundled(r, name);
	r->imgname[r->nimg - 1] = kps_bundled_find(name)->name;
	return r->img[r->nimg - 1];
}

static struct sim_elf *guest(struct run *r)
{
	struct sim_elf *img;
	char msg[SIM_ELF_MSG_SIZE];

	assert_int_equal(sim_elf_load_path(guest_path, &img, msg, sizeof msg),
	                 SIM_ELF_OK);
	r->img[r->nimg++] = img;
	return img;
}

static void start_with(struct run *r, enum km_kmem kmem, uint32_t frames)
{
	struct sim_machine_config c = sim_machine_config_default(frames);
	char why[256];

	memset(r, 0, sizeof *r);
	r->rs = calloc(1, sizeof *r->rs);
	assert_non_null(r->rs);
	r->outf = open_memstream(&r->out, &r->outlen);
	assert_non_null(r->outf);
	c.kmem = kmem;
	c.out = r->outf;
	c.sink = sink;
	c.sink_ctx = r->rs;
	c.find = find;
	c.find_ctx = r;
	if (sim_machine_create(&c, &r->m, why, sizeof why) != SIM_OK)
		fail_msg("sim_machine_create: %s", why);
}

static void start(struct run *r, enum km_kmem kmem)
{
	start_with(r, kmem, 4096);
}

/* Spawns "name arg ..." from img; returns its task. */
static km_task_t spawn(struct run *r, const struct sim_elf *img,
                       const char *cmd)
{
	char buf[128], *av[16], *save = NULL, why[256];
	int ac = 0;
	km_thread_t th;

	snprintf(buf, sizeof buf, "%s", cmd);
	for (char *w = strtok_r(buf, " ", &save); w;
	     w = strtok_r(NULL, " ", &save))
		av[ac++] = w;
	av[ac] = NULL;
	if (sim_machine_spawn(r->m, img, av[0], ac, av, &th, why,
	                      sizeof why) != SIM_OK)
		fail_msg("spawn %s: %s", cmd, why);
	return sim_machine_thread_task(r->m, th);
}

static void go(struct run *r)
{
	r->rc = sim_machine_run(r->m, r->why, sizeof r->why);
	fflush(r->outf);
}

/* Every run ends with the model's invariants intact. */
static void finish(struct run *r)
{
	char why[256] = "";

	if (!km_check(sim_machine_model(r->m), why, sizeof why))
		fail_msg("km_check after the run: %s", why);
	sim_machine_destroy(r->m);
	for (size_t i = 0; i < r->nimg; i++)
		sim_elf_destroy(r->img[i]);
	fclose(r->outf);
	free(r->out);
	free(r->rs);
}

static int exit_of(struct run *r, km_task_t t)
{
	int status = 12345;

	assert_true(sim_machine_exit_status(r->m, t, &status));
	return status;
}

/* Runs one bundled workload command; asserts it ends with status 0 and
 * printed `expect`. */
static void workload(struct run *r, enum km_kmem kmem, const char *cmd,
                     const char *expect)
{
	char name[32];
	km_task_t t;

	sscanf(cmd, "%31s", name);
	start(r, kmem);
	t = spawn(r, bundled(r, name), cmd);
	go(r);
	if (r->rc != SIM_OK)
		fail_msg("%s: %s", cmd, r->why);
	if (strstr(r->out, expect) == NULL)
		fail_msg("%s printed '%s', not '%s'", cmd, r->out, expect);
	assert_int_equal(exit_of(r, t), 0);
}

static size_t count(struct run *r, enum km_fault_kind kind,
                    enum km_decision d)
{
	size_t n = 0;

	for (size_t i = 0; i < r->rs->n && i < 4096; i++)
		n += r->rs->v[i].kind == kind && r->rs->v[i].decision == d;
	return n;
}

/* ---- Workloads -------------------------------------------------------------- */

static void test_sim_machine_hello(void **state)
{
	struct run r;

	(void)state;
	workload(&r, KM_KMEM_POOL, "hello a b", "hello from hello: 2 arguments");
	/* Text, data and stack: three pages, each a user fault. */
	assert_int_equal(count(&r, KM_FK_USER, KM_D_MAPPED), 3);
	finish(&r);
}

static void test_sim_machine_touch_faults_once_per_page(void **state)
{
	struct run r;
	size_t nmark, in = 0;
	const struct sim_marker *mk;

	(void)state;
	workload(&r, KM_KMEM_POOL, "touch 100 dense write",
	         "touch: 100 pages dense write");
	mk = sim_machine_markers(r.m, &nmark);
	assert_int_equal(nmark, 2);
	for (size_t i = 0; i < r.rs->n; i++) {
		const struct km_fault_rec *f = &r.rs->v[i];

		/* The pool's records of the region's tables come first. */
		if (f->seq > mk[0].fault_seq && f->seq <= mk[1].fault_seq &&
		    f->kind != KM_FK_KPOOL) {
			assert_int_equal(f->kind, KM_FK_USER);
			assert_int_equal(f->addr, 0x20000000u + in * 4096);
			assert_int_equal(f->access, KM_ACC_WRITE);
			in++;
		}
	}
	assert_int_equal(in, 100);
	finish(&r);
}

static void test_sim_machine_touch_sparse_read(void **state)
{
	struct run r;

	(void)state;
	workload(&r, KM_KMEM_POOL, "touch 32 sparse read",
	         "touch: 32 pages sparse read");
	finish(&r);
}

static void test_sim_machine_ptbomb_kpager(void **state)
{
	struct run r;

	(void)state;
	workload(&r, KM_KMEM_KPAGER, "ptbomb 20", "ptbomb: 20 regions");
	/* A page table and a node table for each region, from the kpager. */
	assert_true(count(&r, KM_FK_KERNEL, KM_D_MAPPED) >= 40);
	finish(&r);
}

static void test_sim_machine_fig3(void **state)
{
	struct run r;
	size_t nmark;
	const struct sim_marker *mk;
	uint64_t cycles = 0;

	(void)state;
	workload(&r, KM_KMEM_KPAGER, "fig3", "fig3: one complex page fault");
	mk = sim_machine_markers(r.m, &nmark);
	assert_int_equal(nmark, 2);
	for (size_t i = 0; i < r.rs->n; i++)
		if (r.rs->v[i].seq > mk[0].fault_seq &&
		    r.rs->v[i].seq <= mk[1].fault_seq)
			cycles += r.rs->v[i].cycles;
	assert_int_equal(mk[1].fault_seq - mk[0].fault_seq, 3);
	assert_true(cycles >= 21454 - 214 && cycles <= 21454 + 214);
	finish(&r);
}

static void test_sim_machine_linuxlike(void **state)
{
	struct run r;
	bool lib = false, stack = false;

	(void)state;
	workload(&r, KM_KMEM_POOL, "linuxlike", "linuxlike: lib at 40000000");
	assert_non_null(strstr(r.out, "utcb at bf000"));
	for (size_t i = 0; i < r.rs->n; i++) {
		lib |= r.rs->v[i].addr >> 22 == 0x40000000u >> 22;
		stack |= r.rs->v[i].addr >> 22 == 0xBFC00000u >> 22;
		/* The UTCB area is the kernel's: no user fault there. */
		assert_true(r.rs->v[i].kind != KM_FK_USER ||
		            r.rs->v[i].addr >> 22 != KM_UTCB_AREA >> 22);
	}
	assert_true(lib && stack);
	finish(&r);
}

static void test_sim_machine_pingpong(void **state)
{
	struct run r;
	struct sim_machine_stats st;

	(void)state;
	workload(&r, KM_KMEM_POOL, "pingpong 50", "pingpong: 50 round trips");
	sim_machine_stats(r.m, &st);
	assert_int_equal(st.ipcs, 100);
	finish(&r);
}

/* The kernel pages of threads a guest makes by system call are faulted
 * in for the thread that made the call (not for none, nor for a thread an
 * earlier call left behind). */
static void test_sim_machine_spawn(void **state)
{
	struct run r;
	km_thread_t spawner = KM_NO_THREAD;
	size_t made = 0;

	(void)state;
	workload(&r, KM_KMEM_KPAGER, "spawn 40", "spawn: 40 threads reported");
	for (size_t i = 0; i < r.rs->n && i < 4096; i++) {
		const struct km_fault_rec *f = &r.rs->v[i];

		if (f->kind == KM_FK_USER && spawner == KM_NO_THREAD)
			spawner = f->thread;
		/* The first KTCB and UTCB pages came with the task. */
		if (f->kind == KM_FK_KERNEL && f->decision == KM_D_MAPPED &&
		    (f->kpage.type == KM_KT_KTCB ||
		     f->kpage.type == KM_KT_UTCB) && f->kpage.index > 0) {
			assert_int_equal(f->thread, spawner);
			made++;
		}
	}
	assert_true(spawner != KM_NO_THREAD && made > 0);
	finish(&r);
}

static void test_sim_machine_mapper(void **state)
{
	struct run r;

	(void)state;
	workload(&r, KM_KMEM_POOL, "mapper 3",
	         "mapper: depth 3, unmap removed 12 mappings, clients saw "
	         "fresh pages, the granted page moved on");
	finish(&r);
}

/* Every workload at once, in one machine, with kernel memory from an FCFS
 * kpager and a short slice, so that tasks, IPC and faults interleave. */
static void test_sim_machine_all_workloads_together(void **state)
{
	static const char *const cmds[] = {
		"hello", "touch 64 sparse", "ptbomb 16", "fig3", "linuxlike",
		"pingpong 200", "spawn 24", "mapper 3",
	};
	struct sim_machine_config c = sim_machine_config_default(8192);
	struct run r;
	km_task_t t[8];
	char why[256];

	(void)state;
	memset(&r, 0, sizeof r);
	r.rs = calloc(1, sizeof *r.rs);
	r.outf = open_memstream(&r.out, &r.outlen);
	c.kmem = KM_KMEM_KPAGER;
	c.kpager_args = "frames=1024";
	c.slice = 5000;
	c.out = r.outf;
	c.sink = sink;
	c.sink_ctx = r.rs;
	c.find = find;
	c.find_ctx = &r;
	if (sim_machine_create(&c, &r.m, why, sizeof why) != SIM_OK)
		fail_msg("sim_machine_create: %s", why);
	for (int i = 0; i < 8; i++) {
		char name[32];

		sscanf(cmds[i], "%31s", name);
		t[i] = spawn(&r, bundled(&r, name), cmds[i]);
	}
	go(&r);
	if (r.rc != SIM_OK)
		fail_msg("%s", r.why);
	for (int i = 0; i < 8; i++)
		if (exit_of(&r, t[i]) != 0)
			fail_msg("%s ended with %d; output:\n%s", cmds[i],
			         exit_of(&r, t[i]), r.out);
	finish(&r);
}

/* ---- Memory ----------------------------------------------------------------- */

static void test_sim_machine_tasks_at_one_address_keep_separate_memory(
	void **state)
{
	struct run r;
	struct sim_elf *img;
	km_task_t t[3];

	(void)state;
	start(&r, KM_KMEM_POOL);
	img = guest(&r);
	for (int i = 0; i < 3; i++) {
		char cmd[32];

		snprintf(cmd, sizeof cmd, "guest private %d", 1000 + i);
		t[i] = spawn(&r, img, cmd);
	}
	go(&r);
	assert_int_equal(r.rc, SIM_OK);
	for (int i = 0; i < 3; i++)
		assert_int_equal(exit_of(&r, t[i]), 0);
	finish(&r);
}

static void test_sim_machine_mmu_sets_accessed_and_dirty_in_the_model(
	void **state)
{
	struct run r;
	struct km *km;
	km_task_t t;
	uint32_t pr, pw;

	(void)state;
	start(&r, KM_KMEM_POOL);
	t = spawn(&r, guest(&r), "guest ad");
	km = sim_machine_model(r.m);
	/* Mapped before the run, so no fault (and no km_touch) sets A/D. */
	assert_int_equal(km_sigma0_map(km, t, 0x50000000u, 2, KM_R | KM_W),
	                 KM_OK);
	assert_int_equal(km_pte(km, t, 0x50000000u) & (KM_PTE_A | KM_PTE_D),
	                 0);
	assert_int_equal(km_pte(km, t, 0x50001000u) & (KM_PTE_A | KM_PTE_D),
	                 0);
	go(&r);
	assert_int_equal(r.rc, SIM_ESTATE);     /* blocked for good */
	assert_non_null(strstr(r.why, "deadlock"));
	pr = km_pte(km, t, 0x50000000u);
	pw = km_pte(km, t, 0x50001000u);
	assert_int_equal(pr & (KM_PTE_A | KM_PTE_D), KM_PTE_A);
	assert_int_equal(pw & (KM_PTE_A | KM_PTE_D), KM_PTE_A | KM_PTE_D);
	for (size_t i = 0; i < r.rs->n; i++)
		assert_true(r.rs->v[i].addr >> 13 != 0x50000000u >> 13);
	finish(&r);
}

static void test_sim_machine_revoked_mapping_faults_next_access(
	void **state)
{
	struct run r;
	km_task_t t;
	size_t faults = 0;

	(void)state;
	start(&r, KM_KMEM_POOL);
	t = spawn(&r, guest(&r), "guest revoke");
	go(&r);
	assert_int_equal(r.rc, SIM_OK);
	assert_int_equal(exit_of(&r, t), 0);
	for (size_t i = 0; i < r.rs->n; i++)
		faults += r.rs->v[i].kind == KM_FK_USER &&
		          r.rs->v[i].addr == 0x21000000u;
	assert_int_equal(faults, 2);    /* the write, and the read after */
	finish(&r);
}

/* A kpager that remembers which of its pages holds which kernel page, so
 * the test can revoke a chosen one (forms discarded: page tables and
 * directories come back rebuilt). */
#define RK_POOL 0x10000000u
#define RK_PAGES 256u

struct rk {
	uint64_t kva[RK_PAGES];         /* 0: free */
};

static int rk_init(struct km *km, km_task_t task, const char *args,
                   void **state, char *why, size_t why_len)
{
	(void)why;
	(void)why_len;
	if (sscanf(args, "ctx=%p", state) != 1)
		return KM_EINVAL;
	memset(*state, 0, sizeof(struct rk));
	return km_sigma0_map(km, task, RK_POOL, RK_PAGES, KM_R | KM_W);
}

static void rk_fault(void *state, const struct kp_fault *f,
                     struct kp_decision *d)
{
	struct rk *rk = state;

	d->action = KP_DENY;
	d->discarded = f->restore;
	for (uint32_t i = 0; i < RK_PAGES; i++) {
		if (rk->kva[i] == 0) {
			rk->kva[i] = f->kva;
			d->action = KP_MAP;
			d->vaddr = RK_POOL + i * 4096;
			return;
		}
	}
}

static void rk_released(void *state, km_vaddr_t va, struct km_kpage kp)
{
	(void)kp;
	((struct rk *)state)->kva[(va - RK_POOL) / 4096] = 0;
}

static const struct kp_ops rk_ops = {
	.name = "rk", .init = rk_init, .fault = rk_fault,
	.released = rk_released,
};

static void rk_revoke(struct run *r, struct rk *rk, struct km_kpage kp)
{
	uint64_t kva = km_kpage_kva(kp);

	for (uint32_t i = 0; i < RK_PAGES; i++) {
		if (rk->kva[i] == kva) {
			assert_int_equal(km_kpager_revoke(sim_machine_model(r->m),
			                 sim_machine_kpager(r->m),
			                 RK_POOL + i * 4096, true), KM_OK);
			rk->kva[i] = 0;
			return;
		}
	}
	fail_msg("no kpager page holds %s %u", km_ktype_name(kp.type),
	         kp.index);
}

/* Runs on until the clock passes `limit` more cycles. */
static void run_for(struct run *r, uint64_t cycles)
{
	sim_machine_set_limit(r->m, km_now(sim_machine_model(r->m)) + cycles);
	go(r);
	assert_int_equal(r->rc, SIM_ESTATE);
	assert_non_null(strstr(r->why, "limit"));
}

static size_t refills_at(struct run *r, uint32_t va, size_t from)
{
	size_t n = 0;

	for (size_t i = from; i < r->rs->n; i++)
		n += r->rs->v[i].kind == KM_FK_USER &&
		     r->rs->v[i].addr == va &&
		     r->rs->v[i].decision == KM_D_REFILLED;
	return n;
}

/* A kpager revokes the page table under a page the guest keeps reading,
 * then its page directory: the next read faults (the PTE is refilled from
 * the mapping database), and the guest never sees wrong bytes. */
static void test_sim_machine_revoked_page_table_faults_next_access(
	void **state)
{
	struct sim_machine_config c = sim_machine_config_default(4096);
	struct rk *rk = calloc(1, sizeof *rk);
	char args[64], why[256];
	struct run r;
	km_task_t t;
	size_t before;

	(void)state;
	assert_non_null(rk);
	memset(&r, 0, sizeof r);
	r.rs = calloc(1, sizeof *r.rs);
	r.outf = open_memstream(&r.out, &r.outlen);
	snprintf(args, sizeof args, "ctx=%p", (void *)rk);
	c.kmem = KM_KMEM_KPAGER;
	c.kpager = &rk_ops;
	c.kpager_args = args;
	c.sink = sink;
	c.sink_ctx = r.rs;
	c.out = r.outf;
	if (sim_machine_create(&c, &r.m, why, sizeof why) != SIM_OK)
		fail_msg("sim_machine_create: %s", why);
	t = spawn(&r, guest(&r), "guest reread 200000");

	run_for(&r, 300000);
	before = r.rs->n;
	rk_revoke(&r, rk, (struct km_kpage){ t, KM_KT_PT, 0x22000000u >> 22 });
	run_for(&r, 300000);
	assert_int_equal(refills_at(&r, 0x22000000u, before), 1);

	rk_revoke(&r, rk, (struct km_kpage){ t, KM_KT_PD, 0 });
	assert_int_equal(km_task_cr3(sim_machine_model(r.m), t), 0);
	sim_machine_set_limit(r.m, 0);
	go(&r);
	assert_int_equal(r.rc, SIM_OK);
	assert_int_equal(exit_of(&r, t), 0);
	finish(&r);
	free(rk);
}

/* ---- Refusals ----------------------------------------------------------------- */

static void test_sim_machine_bad_system_calls_get_error_codes(void **state)
{
	struct run r;
	km_task_t t;

	(void)state;
	start(&r, KM_KMEM_POOL);
	t = spawn(&r, guest(&r), "guest badcalls");
	go(&r);
	assert_int_equal(r.rc, SIM_OK);
	assert_int_equal(exit_of(&r, t), 0);
	finish(&r);
}

/* Thousands of system calls with random numbers and registers: every one
 * gets an answer, the simulator survives, the model stays consistent. */
static void test_sim_machine_random_system_calls(void **state)
{
	struct run r;
	struct sim_machine_stats st;
	km_task_t t;

	(void)state;
	start(&r, KM_KMEM_KPAGER);
	t = spawn(&r, guest(&r), "guest fuzz 5000");
	go(&r);
	if (r.rc != SIM_OK)
		fail_msg("%s", r.why);
	assert_int_equal(exit_of(&r, t), 0);
	sim_machine_stats(r.m, &st);
	assert_true(st.syscalls > 3000);
	finish(&r);
}

/* A guest that creates tasks without end meets a limit, as an error code,
 * long before the host runs out of memory for engines. */
static void test_sim_machine_task_bomb_is_refused(void **state)
{
	struct run r;
	km_task_t t;

	(void)state;
	start_with(&r, KM_KMEM_POOL, 65536);     /* RAM is not the limit */
	t = spawn(&r, guest(&r), "guest taskbomb");
	go(&r);
	assert_int_equal(exit_of(&r, t), 0);
	assert_non_null(strstr(r.out, "taskbomb: 127 tasks, then -5"));
	finish(&r);
}

static void test_sim_machine_exception_kills_only_its_task(void **state)
{
	struct run r;
	struct sim_elf *img;
	km_task_t bad, good;

	(void)state;
	start(&r, KM_KMEM_POOL);
	img = guest(&r);
	bad = spawn(&r, img, "guest ud2");
	good = spawn(&r, img, "guest private 7");
	go(&r);
	assert_int_equal(r.rc, SIM_ESTATE);
	assert_non_null(strstr(r.why, "exception 6"));
	assert_int_equal(exit_of(&r, bad), -1);
	assert_int_equal(exit_of(&r, good), 0);
	finish(&r);
}

/* Damaged copies of a bundled workload: each refused with its own error,
 * so nothing reaches the machine. */
static void test_sim_machine_malformed_elf_is_refused(void **state)
{
	const struct kps_bundled *b = kps_bundled_find("hello");
	uint8_t *buf = malloc(b->size);
	struct sim_elf *img = (struct sim_elf *)1;
	char msg[SIM_ELF_MSG_SIZE];
	struct run r;
	uint32_t phoff, entry;

	(void)state;
	assert_non_null(buf);
#define REFUSED(len, want) do {                                           \
		assert_int_equal(sim_elf_load_buffer(buf, (len), &img, msg,   \
		                                     sizeof msg), (want));    \
		assert_null(img);                                             \
		assert_true(msg[0] != '\0');                                  \
		memcpy(buf, b->elf, b->size);                                 \
	} while (0)
	memcpy(buf, b->elf, b->size);
	REFUSED(20, SIM_ELF_ERR_TRUNCATED);
	REFUSED(b->size / 8, SIM_ELF_ERR_FILE_RANGE);
	buf[4] = 2;                                     /* ELFCLASS64 */
	REFUSED(b->size, SIM_ELF_ERR_CLASS);
	buf[18] = 62;                                   /* EM_X86_64 */
	REFUSED(b->size, SIM_ELF_ERR_MACHINE);
	memcpy(&phoff, buf + 28, 4);
	memcpy(&entry, buf + 24, 4);
	/* The second segment starts inside the first one's pages. */
	memcpy(buf + phoff + 32 + 8, buf + phoff + 8, 4);
	memcpy(buf + phoff + 32 + 4, buf + phoff + 4, 4);
	REFUSED(b->size, SIM_ELF_ERR_OVERLAP);
	{
		uint32_t high = 0xBFFFF000u;    /* in the UTCB area */

		memcpy(buf + phoff + 8, &high, 4);
		memcpy(buf + phoff + 4, &(uint32_t){ 0 }, 4);
		REFUSED(b->size, SIM_ELF_ERR_ADDRESS);
	}
	entry = 0x00000100u;
	memcpy(buf + 24, &entry, 4);
	REFUSED(b->size, SIM_ELF_ERR_ENTRY);
#undef REFUSED
	free(buf);

	/* And the machine refuses a missing image with a sentence. */
	start(&r, KM_KMEM_POOL);
	assert_int_equal(sim_machine_spawn(r.m, NULL, "x", 0, NULL, NULL,
	                                   msg, sizeof msg), SIM_EARG);
	assert_true(msg[0] != '\0');
	finish(&r);
}

/* Random mixes of workloads on small machines and small kpager pools, so
 * that kernel page faults are denied in every kind of operation (faults,
 * thread and task creation, IPC map items): guests may be killed, with a
 * reason, but the simulator never fails and the model stays consistent. */
static void test_sim_machine_random_mixes_under_pressure(void **state)
{
	static const char *const pick[] = {
		"hello", "touch 200", "touch 300 sparse read", "ptbomb 40",
		"fig3", "linuxlike", "pingpong 50", "spawn 60", "mapper 5",
	};
	uint64_t x = 0x9E3779B97F4A7C15ull;
	unsigned killed = 0, refused = 0;

	(void)state;
	for (int round = 0; round < 24; round++) {
		struct sim_machine_config c;
		char why[256], args[32];
		struct run r;
		int n;

		x ^= x >> 12;
		x ^= x << 25;
		x ^= x >> 27;
		c = sim_machine_config_default(x % 2 ? 1024 : 4096);
		memset(&r, 0, sizeof r);
		r.rs = calloc(1, sizeof *r.rs);
		r.outf = open_memstream(&r.out, &r.outlen);
		snprintf(args, sizeof args, "frames=%u", 8u + (unsigned)(x % 90));
		c.kmem = (x >> 8) % 3 ? KM_KMEM_KPAGER : KM_KMEM_POOL;
		c.kpager_args = args;
		c.slice = 2000 + (x >> 16) % 50000;
		c.out = r.outf;
		c.sink = sink;
		c.sink_ctx = r.rs;
		c.find = find;
		c.find_ctx = &r;
		if (sim_machine_create(&c, &r.m, why, sizeof why) != SIM_OK)
			fail_msg("round %d: %s", round, why);
		n = 1 + (int)((x >> 24) % 4);
		for (int i = 0; i < n; i++) {
			char cmd[64], *av[8], *save = NULL;
			km_thread_t th;
			int ac = 0;

			snprintf(cmd, sizeof cmd, "%s",
			         pick[(x >> (32 + 4 * i)) % 9]);
			for (char *w = strtok_r(cmd, " ", &save); w && ac < 7;
			     w = strtok_r(NULL, " ", &save))
				av[ac++] = w;
			av[ac] = NULL;
			/* Spawning itself may find no memory: that is an
			 * answer too. */
			if (sim_machine_spawn(r.m, find(&r, av[0]), av[0], ac,
			                      av, &th, why, sizeof why) != SIM_OK)
				refused++;
		}
		go(&r);
		if (r.rc != SIM_OK && r.rc != SIM_ESTATE)
			fail_msg("round %d: the machine failed: %s", round,
			         r.why);
		killed += r.rc == SIM_ESTATE;
		finish(&r);
	}
	/* The pools are small enough that something was refused. */
	assert_true(killed + refused > 0);
}

/* ---- Guest cycles ------------------------------------------------------------ */

static void test_sim_machine_p6_classes(void **state)
{
	static const struct { uint8_t b[8]; unsigned len, cycles; } c[] = {
		{ { 0x01, 0xd8 }, 2, 1 },               /* add eax, ebx */
		{ { 0x01, 0x18 }, 2, 2 },               /* add [eax], ebx */
		{ { 0x3b, 0x18 }, 2, 1 },               /* cmp ebx, [eax] */
		{ { 0x8b, 0x18 }, 2, 1 },               /* mov ebx, [eax] */
		{ { 0xe8, 0, 0, 0, 0 }, 5, 2 },         /* call rel32 */
		{ { 0xc3 }, 1, 2 },                     /* ret */
		{ { 0x0f, 0xaf, 0xc3 }, 3, 4 },         /* imul eax, ebx */
		{ { 0xf7, 0xe3 }, 2, 5 },               /* mul ebx */
		{ { 0xf7, 0xf3 }, 2, 39 },              /* div ebx */
		{ { 0xf6, 0xf3 }, 2, 19 },              /* div bl */
		{ { 0x0f, 0x44, 0xc3 }, 3, 2 },         /* cmove eax, ebx */
		{ { 0xa5 }, 1, 3 },                     /* movsd */
		{ { 0xf3, 0xa5 }, 2, 1 },               /* rep movsd: per step */
		{ { 0xf0, 0x01, 0x18 }, 3, 20 },        /* lock add [eax], ebx */
		{ { 0x87, 0x18 }, 2, 20 },              /* xchg [eax], ebx */
		{ { 0x0f, 0xa2 }, 2, 30 },              /* cpuid */
		{ { 0xcd, 0x30 }, 2, 0 },               /* int 0x30 */
		{ { 0x75, 0xfe }, 2, 1 },               /* jne */
	};

	(void)state;
	for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
		if (sim_p6_insn_cycles(c[i].b, c[i].len) != c[i].cycles)
			fail_msg("case %zu: %u cycles, expected %u", i,
			         sim_p6_insn_cycles(c[i].b, c[i].len),
			         c[i].cycles);
}

/* Guest cycles (and instructions) of one run of the test guest. */
static uint64_t guest_cycles(const char *cmd, uint64_t *insns)
{
	struct run r;
	struct sim_machine_stats st;

	start(&r, KM_KMEM_POOL);
	spawn(&r, guest(&r), cmd);
	go(&r);
	assert_int_equal(r.rc, SIM_OK);
	sim_machine_stats(r.m, &st);
	finish(&r);
	*insns = st.guest_insns;
	return st.guest_cycles;
}

/* The spin loop is eight one-cycle instructions (lea, add, add, mov, shr,
 * xor, cmp, jne), so 1000 more iterations cost 8000 more cycles, whatever
 * the time slices cut. */
static void test_sim_machine_guest_cycles_follow_the_class_table(
	void **state)
{
	uint64_t i1, i2, c1 = guest_cycles("guest spin 1000", &i1);
	uint64_t c2 = guest_cycles("guest spin 2000", &i2);

	(void)state;
	assert_int_equal(i2 - i1, 8000);
	assert_int_equal(c2 - c1, 8000);
	assert_true(c1 >= i1 - 4);      /* only int 0x30 costs nothing */
}

/* rep movsb runs as one block per iteration in the engine, so each byte
 * counts as an instruction of one cycle (sim/p6cost.c); a page fault in
 * the middle of the copy restarts the rep, which adds a few. */
static void test_sim_machine_rep_counts_each_iteration(void **state)
{
	uint64_t i1, i2, c1 = guest_cycles("guest rep 100", &i1);
	uint64_t c2 = guest_cycles("guest rep 1100", &i2);

	(void)state;
	assert_in_range(i2 - i1, 1000, 1020);
	assert_in_range(c2 - c1, 1000, 1020);
}

/* ---- Determinism -------------------------------------------------------------- */

static uint64_t run_cycles(struct recs *out)
{
	struct run r;
	struct sim_machine_stats st;
	struct sim_elf *img;

	start(&r, KM_KMEM_KPAGER);
	img = guest(&r);
	spawn(&r, bundled(&r, "pingpong"), "pingpong 20");
	spawn(&r, img, "guest private 3");
	spawn(&r, bundled(&r, "touch"), "touch 40 sparse");
	go(&r);
	assert_int_equal(r.rc, SIM_OK);
	sim_machine_stats(r.m, &st);
	memcpy(out, r.rs, sizeof *out);
	finish(&r);
	return st.cycles;
}

static void test_sim_machine_same_inputs_same_cycles(void **state)
{
	struct recs *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);

	(void)state;
	assert_true(a && b);
	assert_int_equal(run_cycles(a), run_cycles(b));
	assert_int_equal(a->n, b->n);
	assert_memory_equal(a->v, b->v, (a->n < 4096 ? a->n : 4096) *
	                    sizeof a->v[0]);
	free(a);
	free(b);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_machine_hello),
		cmocka_unit_test(test_sim_machine_touch_faults_once_per_page),
		cmocka_unit_test(test_sim_machine_touch_sparse_read),
		cmocka_unit_test(test_sim_machine_ptbomb_kpager),
		cmocka_unit_test(test_sim_machine_fig3),
		cmocka_unit_test(test_sim_machine_linuxlike),
		cmocka_unit_test(test_sim_machine_pingpong),
		cmocka_unit_test(test_sim_machine_spawn),
		cmocka_unit_test(test_sim_machine_mapper),
		cmocka_unit_test(test_sim_machine_all_workloads_together),
		cmocka_unit_test(test_sim_machine_random_mixes_under_pressure),
		cmocka_unit_test(
		   test_sim_machine_tasks_at_one_address_keep_separate_memory),
		cmocka_unit_test(
		   test_sim_machine_mmu_sets_accessed_and_dirty_in_the_model),
		cmocka_unit_test(
		   test_sim_machine_revoked_mapping_faults_next_access),
		cmocka_unit_test(
		   test_sim_machine_revoked_page_table_faults_next_access),
		cmocka_unit_test(
		   test_sim_machine_bad_system_calls_get_error_codes),
		cmocka_unit_test(test_sim_machine_random_system_calls),
		cmocka_unit_test(test_sim_machine_task_bomb_is_refused),
		cmocka_unit_test(test_sim_machine_exception_kills_only_its_task),
		cmocka_unit_test(test_sim_machine_malformed_elf_is_refused),
		cmocka_unit_test(test_sim_machine_p6_classes),
		cmocka_unit_test(
		   test_sim_machine_guest_cycles_follow_the_class_table),
		cmocka_unit_test(test_sim_machine_rep_counts_each_iteration),
		cmocka_unit_test(test_sim_machine_same_inputs_same_cycles),
	};

	if (argc != 2) {
		fprintf(stderr, "usage: %s MACHINE_GUEST.elf\n", argv[0]);
		return 2;
	}
	guest_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
