/*
 * sim/syscall.c: the machine's system calls (`int 0x30`, numbers in
 * workloads/abi.h, described in workloads/README.md) and its blocking,
 * L4-flavoured IPC with map and grant items.  Every argument is checked
 * before anything changes; a bad one gets a negative KPS_E* code in EAX,
 * never an abort.  Each call is charged a trap entry and exit from the
 * model's cost table; each message delivered one IPC (the table's
 * fault_ipc: one-way L4 short IPC with its address-space switch); map and
 * grant items are charged by the model itself.
 */
#include "machine_int.h"

#include <stdlib.h>
#include <string.h>

#include "abi.h"

#define WRITE_MAX (64u * 1024u)         /* bytes per KPS_SYS_WRITE */
#define CMDLINE_MAX 255u                /* bytes per KPS_SYS_TASK_CREATE */

/* A model error as the guest sees it. */
static uint32_t guest_err(int km_err)
{
	int e;

	switch (km_err) {
	case KM_OK: e = KPS_OK; break;
	case KM_EINVAL: case KM_ERESERVED: case KM_ECYCLE: e = KPS_EINVAL; break;
	case KM_ENOTASK: case KM_ENOTHREAD: case KM_ENOMAP: e = KPS_ENOENT; break;
	case KM_ENOMEM: case KM_ELIMIT: e = KPS_ENOMEM; break;
	case KM_EDENIED: e = KPS_EDENIED; break;
	default: e = KPS_EPERM; break;
	}
	return (uint32_t)-e;
}

/* Is w a well-formed flexpage word for user space? */
static bool fpage_ok(uint32_t w)
{
	uint32_t log2 = KPS_FPAGE_LOG2(w), base = KPS_FPAGE_BASE(w);

	return log2 >= 12 && log2 <= 31 && (base & ((1u << log2) - 1)) == 0 &&
	       (uint64_t)base + (1ull << log2) <= KM_USER_TOP &&
	       (w & 0xc00u) == 0;
}

static void record_fpage(struct sim_machine *m, enum tr_kind kind,
                         km_task_t a, struct km_fpage fp, km_task_t b,
                         uint32_t dst, bool self)
{
	struct tr_event ev;

	if (m->cfg.record == NULL)
		return;
	memset(&ev, 0, sizeof ev);
	ev.kind = kind;
	ev.a = a;
	ev.b = b;
	ev.base = fp.base;
	ev.log2 = fp.log2;
	ev.rights = fp.rights;
	ev.va = dst;
	ev.self = self;
	sim_m_record(m, &ev);
}

static bool thread_live(const struct sim_machine *m, uint32_t th)
{
	return th != 0 && th < m->max_threads && m->thread[th].st != MT_FREE;
}

/* ---- IPC ------------------------------------------------------------------ */

/*
 * Delivers the message of sender s to receiver r, which waits for it:
 * the words, and the item mapped or granted into r's receive window.
 * r becomes ready with the result in its registers.  Returns the status
 * both sides see.
 */
static uint32_t deliver(struct sim_machine *m, km_thread_t s, km_thread_t r)
{
	struct mthread *ts = &m->thread[s], *tr = &m->thread[r];
	uint32_t status = KPS_OK, pages = 0;

	if (ts->item != 0) {
		uint32_t il = KPS_FPAGE_LOG2(ts->item);
		uint32_t wl = KPS_FPAGE_LOG2(tr->window);

		/* Does the item fit the receiver's window? */
		if (tr->window == 0 || il > wl) {
			status = (uint32_t)-KPS_EINVAL;
		} else {
			uint32_t dst = KPS_FPAGE_BASE(tr->window) +
			               (KPS_FPAGE_BASE(ts->item) &
			                ((1u << wl) - 1));
			struct km_fpage fp = km_fpage(KPS_FPAGE_BASE(ts->item),
			                              il,
			                              KPS_FPAGE_RIGHTS(ts->item));
			bool grant = (ts->item & KPS_FPAGE_GRANT) != 0;
			int err;

			record_fpage(m, grant ? TR_GRANT : TR_MAP, ts->task, fp,
			             tr->task, dst, false);
			err = km_map(m->km, ts->task, fp, tr->task, dst,
			             grant ? KM_GRANT : KM_MAP, &pages);

			status = guest_err(err);
		}
	}
	sim_m_record_ids(m, TR_IPC, s, r, 0);
	sim_m_charge(m, KM_C_FAULT_IPC);
	m->st.ipcs++;
	tr->regs.eax = status;
	tr->regs.ebx = s;
	tr->regs.edx = ts->w0;
	tr->regs.esi = ts->w1;
	tr->regs.edi = pages;
	tr->to = tr->from = 0;
	sim_m_wake(m, r);
	return status;
}

static void receive(struct sim_machine *m, km_thread_t th);

/* The send phase of sender s is done with `status`: it goes on to its
 * receive phase, or back to running. */
static void send_done(struct sim_machine *m, km_thread_t s, uint32_t status)
{
	struct mthread *t = &m->thread[s];

	t->to = 0;
	if (t->from != 0 && (int32_t)status >= 0) {
		receive(m, s);
		return;
	}
	t->from = 0;
	t->regs.eax = status;
	sim_m_wake(m, s);
}

/* The receive phase of th: takes the longest-waiting matching sender, or
 * blocks. */
static void receive(struct sim_machine *m, km_thread_t th)
{
	struct mthread *t = &m->thread[th];
	km_thread_t best = KM_NO_THREAD;

	for (km_thread_t s = 1; s < m->max_threads; s++) {
		const struct mthread *c = &m->thread[s];

		if (c->st == MT_SENDING && c->to == th &&
		    (t->from == KPS_ANY || t->from == s) &&
		    (best == KM_NO_THREAD || c->since < m->thread[best].since))
			best = s;
	}
	if (best == KM_NO_THREAD) {
		t->st = MT_RECEIVING;
		return;
	}
	send_done(m, best, deliver(m, best, th));
}

static void sys_ipc(struct sim_machine *m, km_thread_t th, uint32_t flags)
{
	struct mthread *t = &m->thread[th];
	struct sim_regs *r = &t->regs;
	struct mthread *d;

	/* Are the partners, the item and the window well formed? */
	if ((flags & ~KPS_IPC_NB) != 0 ||
	    (r->edi != 0 && !fpage_ok(r->edi & ~KPS_FPAGE_GRANT)) ||
	    (r->ebp != 0 && !fpage_ok(r->ebp))) {
		r->eax = (uint32_t)-KPS_EINVAL;
		return;
	}
	if ((r->ebx != 0 && (!thread_live(m, r->ebx) || r->ebx == th)) ||
	    (r->ecx != 0 && r->ecx != KPS_ANY &&
	     (!thread_live(m, r->ecx) || r->ecx == th))) {
		r->eax = (uint32_t)-KPS_ENOENT;
		return;
	}
	t->to = r->ebx;
	t->from = r->ecx;
	t->w0 = r->edx;
	t->w1 = r->esi;
	t->item = r->edi;
	t->window = r->ebp;
	if (t->to == 0) {
		if (t->from == 0) {
			r->eax = KPS_OK;
			return;
		}
		receive(m, th);
		return;
	}
	d = &m->thread[t->to];
	if (d->st == MT_RECEIVING && (d->from == KPS_ANY || d->from == th)) {
		send_done(m, th, deliver(m, th, t->to));
	} else if (flags & KPS_IPC_NB) {
		t->to = t->from = 0;
		r->eax = (uint32_t)-KPS_EAGAIN;
	} else {
		t->st = MT_SENDING;
		t->since = ++m->block_seq;
	}
}

/* Thread `dead` is gone: whoever waits for it specifically gets
 * KPS_ENOENT. */
void sim_m_ipc_gone(struct sim_machine *m, km_thread_t dead)
{
	for (km_thread_t th = 1; th < m->max_threads; th++) {
		struct mthread *t = &m->thread[th];

		if ((t->st == MT_SENDING && t->to == dead) ||
		    (t->st == MT_RECEIVING && t->from == dead)) {
			t->to = t->from = 0;
			t->regs.eax = (uint32_t)-KPS_ENOENT;
			sim_m_wake(m, th);
		}
	}
}

/* ---- The other calls ------------------------------------------------------ */

static void sys_write(struct sim_machine *m, km_thread_t th)
{
	struct sim_regs *r = &m->thread[th].regs;
	char buf[1024];

	if (r->ecx > WRITE_MAX) {
		r->eax = (uint32_t)-KPS_EINVAL;
		return;
	}
	/* In pieces: a buffer the task cannot read fails where it stops
	 * being readable, after what came before was written. */
	for (uint32_t done = 0; done < r->ecx;) {
		uint32_t n = r->ecx - done < sizeof buf ? r->ecx - done :
		             (uint32_t)sizeof buf;

		if (sim_m_read_guest(m, th, r->ebx + done, buf, n) != KM_OK) {
			r->eax = (uint32_t)-KPS_EFAULT;
			return;
		}
		if (m->cfg.out != NULL)
			fwrite(buf, 1, n, m->cfg.out);
		done += n;
	}
	r->eax = r->ecx;
}

static void sys_marker(struct sim_machine *m, km_thread_t th)
{
	struct sim_regs *r = &m->thread[th].regs;

	if (m->nmark == m->mark_cap) {
		size_t cap = m->mark_cap ? 2 * m->mark_cap : 16;
		struct sim_marker *n = realloc(m->mark, cap * sizeof *n);

		if (n == NULL) {
			r->eax = (uint32_t)-KPS_ENOMEM;
			return;
		}
		m->mark = n;
		m->mark_cap = cap;
	}
	sim_m_record_ids(m, TR_MARKER, th, 0, r->ebx);
	m->mark[m->nmark++] = (struct sim_marker){
		.id = r->ebx, .cycle = km_now(m->km), .fault_seq = m->last_seq,
		.task = m->thread[th].task, .thread = th };
	r->eax = KPS_OK;
}

static void sys_task_create(struct sim_machine *m, km_thread_t th)
{
	struct sim_regs *r = &m->thread[th].regs;
	char cmd[CMDLINE_MAX + 1], why[200];
	km_thread_t child;
	int err;

	if (r->ecx == 0 || r->ecx > CMDLINE_MAX) {
		r->eax = (uint32_t)-KPS_EINVAL;
		return;
	}
	if ((err = sim_m_read_guest(m, th, r->ebx, cmd, r->ecx)) != KM_OK) {
		r->eax = (uint32_t)-KPS_EFAULT;
		return;
	}
	cmd[r->ecx] = '\0';
	err = sim_m_spawn_args(m, cmd, &child, why, sizeof why);
	r->eax = err == SIM_OK ? child : (uint32_t)-(err == SIM_EARG ?
	         KPS_ENOENT : KPS_ENOMEM);
}

static void sys_thread_create(struct sim_machine *m, km_thread_t th)
{
	struct sim_regs *r = &m->thread[th].regs;
	km_thread_t child;
	int err;

	if (r->ebx >= KM_USER_TOP || r->ecx >= KM_USER_TOP + 1u) {
		r->eax = (uint32_t)-KPS_EINVAL;
		return;
	}
	err = sim_m_thread_create(m, th, r->ebx, r->ecx, r->edx, &child);
	r->eax = err == KM_OK ? child : guest_err(err);
}

static void sys_unmap(struct sim_machine *m, km_thread_t th)
{
	struct sim_regs *r = &m->thread[th].regs;
	struct km_fpage fp;
	uint32_t pages = 0;
	int err;

	if (!fpage_ok(r->ebx) || (r->ecx & ~KPS_UNMAP_SELF) != 0) {
		r->eax = (uint32_t)-KPS_EINVAL;
		return;
	}
	fp = km_fpage(KPS_FPAGE_BASE(r->ebx), KPS_FPAGE_LOG2(r->ebx),
	              KPS_FPAGE_RIGHTS(r->ebx));
	record_fpage(m, TR_UNMAP, m->thread[th].task, fp, 0, 0,
	             (r->ecx & KPS_UNMAP_SELF) != 0);
	err = km_unmap(m->km, m->thread[th].task, fp,
	               (r->ecx & KPS_UNMAP_SELF) ? KM_UNMAP_SELF : 0, &pages);
	sim_m_retry_waiting(m);
	r->eax = err == KM_OK ? pages : guest_err(err);
}

void sim_m_syscall(struct sim_machine *m, km_thread_t th)
{
	struct sim_regs *r = &m->thread[th].regs;
	uint32_t nr = r->eax & 0xffu, flags = r->eax & ~0xffu;
	uint64_t now;

	m->st.syscalls++;
	/* Only IPC takes flags. */
	if (flags != 0 && nr != KPS_SYS_IPC)
		nr = KPS_SYS_COUNT;
	sim_m_record_ids(m, TR_SYSCALL, th, 0,
	                 nr < KPS_SYS_COUNT ? nr : TR_SYS_INVALID);
	sim_m_charge(m, KM_C_TRAP_ENTRY);
	switch (nr) {
	case KPS_SYS_EXIT:
		sim_m_kill_task(m, m->thread[th].task, (int)r->ebx);
		break;
	case KPS_SYS_WRITE:
		sys_write(m, th);
		break;
	case KPS_SYS_CYCLES:
		now = km_now(m->km);
		r->eax = (uint32_t)now;
		r->edx = (uint32_t)(now >> 32);
		break;
	case KPS_SYS_MARKER:
		sys_marker(m, th);
		break;
	case KPS_SYS_YIELD:
		m->yielded = true;
		r->eax = KPS_OK;
		break;
	case KPS_SYS_THREAD_CREATE:
		sys_thread_create(m, th);
		break;
	case KPS_SYS_THREAD_EXIT:
		sim_m_exit_thread(m, th);
		break;
	case KPS_SYS_TASK_CREATE:
		sys_task_create(m, th);
		break;
	case KPS_SYS_IPC:
		sys_ipc(m, th, flags);
		break;
	case KPS_SYS_UNMAP:
		sys_unmap(m, th);
		break;
	case KPS_SYS_MYID:
		r->eax = th;
		r->edx = m->thread[th].task;
		r->ecx = 0;
		km_thread_utcb(m->km, th, &r->ecx);
		break;
	default:
		r->eax = (uint32_t)-KPS_ENOSYS;
		break;
	}
	sim_m_record_ids(m, TR_SYSRET, th, 0, 0);
	sim_m_charge(m, KM_C_TRAP_EXIT);
}
