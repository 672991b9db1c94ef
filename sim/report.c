/*
 * sim/report.c: the options, the fault CSV and the report kpsim run and
 * kpsim replay share (report.h).
 */
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- Options --------------------------------------------------------------- */

void model_opts_init(struct model_opts *o, const char *cmd)
{
	memset(o, 0, sizeof *o);
	o->cmd = cmd;
	o->frames = MODEL_DEFAULT_MEM / 4096;
	o->kmem = KM_KMEM_POOL;
}

int parse_size(const char *s, uint32_t *frames)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || end == s || *s == '-')
		return -1;
	if (*end == 'K' || *end == 'k')
		v <<= 10, end++;
	else if (*end == 'M' || *end == 'm')
		v <<= 20, end++;
	else if (*end == 'G' || *end == 'g')
		v <<= 30, end++;
	if (*end != '\0' || v % 4096 != 0 || v / 4096 > UINT32_MAX)
		return -1;
	*frames = (uint32_t)(v / 4096);
	return 0;
}

char *read_text(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	long len;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 &&
	    len < (1 << 20) && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)len + 1)) != NULL) {
		if (fread(buf, 1, (size_t)len, f) != (size_t)len) {
			free(buf);
			buf = NULL;
		} else {
			buf[len] = '\0';
		}
	}
	fclose(f);
	return buf;
}

int model_opt(struct model_opts *o, int c, const char *arg)
{
	switch (c) {
	case 'k':
		if (strcmp(arg, "pool") != 0 && strcmp(arg, "kpager") != 0) {
			fprintf(stderr, "%s: --kmem must be pool or kpager, "
			        "not '%s'\n", o->cmd, arg);
			return -1;
		}
		o->kmem = strcmp(arg, "pool") == 0 ? KM_KMEM_POOL :
		          KM_KMEM_KPAGER;
		o->kmem_set = true;
		return 1;
	case 'p':
		o->kpager = arg;
		return 1;
	case 'm':
		if (parse_size(arg, &o->frames) != 0) {
			fprintf(stderr, "%s: --mem '%s' is not a size in whole "
			        "pages (e.g. 64M)\n", o->cmd, arg);
			return -1;
		}
		return 1;
	case 'c':
		o->costs_path = arg;
		return 1;
	case 'f':
		o->faults_path = arg;
		return 1;
	case 'j':
		o->json = true;
		return 1;
	default:
		return 0;
	}
}

int model_opts_finish(struct model_opts *o)
{
	char why[256];

	if (o->kpager != NULL) {
		if (kp_policy_open(o->kpager, &o->policy, why, sizeof why) !=
		    KM_OK) {
			fprintf(stderr, "%s: --kpager %s: %s\n", o->cmd,
			        o->kpager, why);
			return -1;
		}
		if (o->kmem_set && o->kmem == KM_KMEM_POOL) {
			fprintf(stderr, "%s: --kpager needs --kmem kpager, not "
			        "pool\n", o->cmd);
			return -1;
		}
		o->kmem = KM_KMEM_KPAGER;
	} else if (o->kmem == KM_KMEM_KPAGER) {
		o->policy.ops = &kp_fcfs_ops;
		o->policy.args = "";
	}
	if (o->costs_path != NULL &&
	    (o->costs = read_text(o->costs_path)) == NULL) {
		fprintf(stderr, "%s: cannot read the cost table %s: %s\n",
		        o->cmd, o->costs_path, strerror(errno ? errno : EIO));
		return -1;
	}
	return 0;
}

void model_opts_free(struct model_opts *o)
{
	free(o->costs);
	o->costs = NULL;
	kp_policy_close(&o->policy);
}

/* ---- Fault records --------------------------------------------------------- */

FILE *faults_csv_open(const char *path, const char *cmd)
{
	FILE *f = fopen(path, "w");

	if (f == NULL) {
		fprintf(stderr, "%s: cannot write %s: %s\n", cmd, path,
		        strerror(errno));
		return NULL;
	}
	fprintf(f, "seq,parent,cycle,task,thread,kind,address,kpage,type,"
	        "kpage_task,decision,pfn,cycles,breakdown\n");
	return f;
}

void faults_csv_row(FILE *f, const struct km_fault_rec *r)
{
	const char *sep = "";

	fprintf(f, "%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%u,%u,%s,", r->seq,
	        r->parent, r->cycle, r->task, r->thread,
	        km_fault_kind_name(r->kind));
	if (r->kind == KM_FK_USER)
		fprintf(f, "0x%08x,,,", r->addr);
	else
		fprintf(f, ",0x%016" PRIx64 ",%s,%u", km_kpage_kva(r->kpage),
		        km_ktype_name(r->kpage.type), r->kpage.task);
	fprintf(f, ",%s,", km_decision_name(r->decision));
	if (r->pfn != KM_NO_PFN)
		fprintf(f, "%u", r->pfn);
	fprintf(f, ",%" PRIu64 ",", r->cycles);
	for (int c = 0; c < KM_C_COUNT; c++) {
		if (r->count[c] == 0)
			continue;
		fprintf(f, "%s%s*%u", sep, km_cost_name((enum km_cost)c),
		        r->count[c]);
		sep = " ";
	}
	fputc('\n', f);
}

/* ---- Reports --------------------------------------------------------------- */

/* The length of the well-formed UTF-8 sequence at s (RFC 3629: shortest
 * form, no surrogates, at most U+10FFFF), or 0 if it is not one.  s is
 * NUL-terminated, and NUL is no continuation byte: a sequence cut short
 * by the end is not read past it. */
static size_t utf8_len(const unsigned char *s)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t n;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return 0;
	if (s[0] == 0xe0)
		lo = 0xa0;              /* shorter forms of the same */
	else if (s[0] == 0xed)
		hi = 0x9f;              /* UTF-16 surrogates */
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;              /* past U+10FFFF */
	if (s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* A JSON string of s: quotes, backslashes and control bytes escaped, and
 * a byte that is not part of well-formed UTF-8 (a file name may hold
 * anything) given as U+FFFD, so that the output is always valid JSON. */
void json_put_string(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	fputc('"', f);
	while (*p) {
		size_t n = utf8_len(p);

		if (n == 0) {
			fputs("\\ufffd", f);
			p++;
		} else if (*p == '"' || *p == '\\') {
			fprintf(f, "\\%c", *p++);
		} else if (*p < 0x20) {
			fprintf(f, "\\u%04x", *p++);
		} else {
			fwrite(p, 1, n, f);
			p += n;
		}
	}
	fputc('"', f);
}

void revocations_count(struct revocations *v, const struct km_fault_rec *r)
{
	if (r->kind == KM_FK_REVOKE) {
		v->revoked++;
		v->discarded += r->decision == KM_D_DISCARDED;
		return;
	}
	if (r->kind != KM_FK_KERNEL && r->kind != KM_FK_KPOOL)
		return;
	v->restored += r->decision == KM_D_RESTORED;
	v->rebuilt += r->decision == KM_D_REBUILT;
	v->refused += r->decision == KM_D_REJECTED;
	v->lost += r->decision == KM_D_LOST;
	v->stopped += r->decision == KM_D_STOPPED;
}

void report_text(FILE *f, const struct report *r)
{
	fprintf(f, "\nkpsim: %" PRIu64 " cycles: %" PRIu64 " guest "
	        "instructions (%" PRIu64 " cycles), kernel %" PRIu64 "\n",
	        r->cycles, r->guest_insns, r->guest_cycles,
	        r->cycles - r->guest_cycles);
	fprintf(f, "faults: %" PRIu64 " user, %" PRIu64 " kernel page "
	        "faults, %" PRIu64 " denied; %" PRIu64 " system calls, %"
	        PRIu64 " messages\n", r->ks.ufaults, r->ks.kfaults,
	        r->ks.denied, r->syscalls, r->ipcs);
	if (r->replay)
		fprintf(f, "replay: %" PRIu64 " events, %" PRIu64 " skipped "
		        "(of tasks a fault ended)\n", r->events, r->skipped);
	if (r->replay && r->kept > 0)
		fprintf(f, "replay: %" PRIu32 " ended tasks the kernel could "
		        "not delete, and kept (exit \"kept\")\n", r->kept);
	if (r->rv.revoked > 0)
		fprintf(f, "revoked kernel pages: %" PRIu64 " revocations (%"
		        PRIu64 " forms discarded); back: %" PRIu64 " restored, %"
		        PRIu64 " rebuilt, %" PRIu64 " empty; %" PRIu64 " forms "
		        "refused, %" PRIu64 " threads stopped\n", r->rv.revoked,
		        r->rv.discarded, r->rv.restored, r->rv.rebuilt, r->rv.lost,
		        r->rv.refused, r->rv.stopped);
	fprintf(f, "kernel pages each task held at most, by Figure 2's "
	        "groups: P page tables,\nN node tables, M mapping database, "
	        "U UTCBs, K KTCBs\n");
	fprintf(f, "%-4s %-12s %7s %5s %5s %5s %5s %5s %8s %8s\n", "task",
	        "program", "exit", "P", "N", "M", "U", "K", "ufaults",
	        "kfaults");
	for (size_t i = 0; i < r->ntask; i++) {
		const struct report_task *t = &r->task[i];
		char exit[24];

		snprintf(exit, sizeof exit, "%s%s", t->exit,
		         t->kept ? " kept" : "");
		fprintf(f, "%-4u %-12.12s %7s %5u %5u %5u %5u %5u %8" PRIu64
		        " %8" PRIu64 "\n", t->id, t->name, exit,
		        t->st.group[KM_KG_P], t->st.group[KM_KG_N],
		        t->st.group[KM_KG_M], t->st.group[KM_KG_U],
		        t->st.group[KM_KG_K], t->st.ufaults, t->st.kfaults);
	}
	for (size_t i = 0; i < r->nmark; i++)
		fprintf(f, "marker %u: cycle %" PRIu64 " (task %u thread %u)\n",
		        r->mark[i].id, r->mark[i].cycle, r->mark[i].task,
		        r->mark[i].thread);
	fprintf(f, "km_check: %s\n", r->check);
	if (r->error != NULL)
		fprintf(f, "error: %s\n", r->error);
}

void report_json(FILE *f, const struct report *r)
{
	fprintf(f, "{\"cycles\": %" PRIu64 ", \"guest_instructions\": %" PRIu64
	        ", \"guest_cycles\": %" PRIu64 ", \"kernel_cycles\": %" PRIu64
	        ", \"user_faults\": %" PRIu64 ", \"kernel_faults\": %" PRIu64
	        ", \"denied\": %" PRIu64 ", \"syscalls\": %" PRIu64
	        ", \"messages\": %" PRIu64, r->cycles, r->guest_insns,
	        r->guest_cycles, r->cycles - r->guest_cycles, r->ks.ufaults,
	        r->ks.kfaults, r->ks.denied, r->syscalls, r->ipcs);
	if (r->replay)
		fprintf(f, ", \"events\": %" PRIu64 ", \"skipped\": %" PRIu64
		        ", \"kept\": %" PRIu32, r->events, r->skipped, r->kept);
	fprintf(f, ", \"revocations\": %" PRIu64 ", \"forms_discarded\": %"
	        PRIu64 ", \"restored\": %" PRIu64 ", \"rebuilt\": %" PRIu64
	        ", \"came_back_empty\": %" PRIu64 ", \"forms_refused\": %"
	        PRIu64 ", \"threads_stopped\": %" PRIu64, r->rv.revoked,
	        r->rv.discarded, r->rv.restored, r->rv.rebuilt, r->rv.lost,
	        r->rv.refused, r->rv.stopped);
	fprintf(f, ", \"tasks\": [");
	for (size_t i = 0; i < r->ntask; i++) {
		const struct report_task *t = &r->task[i];

		fprintf(f, "%s{\"id\": %u, \"program\": ", i ? ", " : "",
		        t->id);
		json_put_string(f, t->name);
		if (strcmp(t->exit, "running") != 0)
			fprintf(f, ", \"exit\": %s", t->exit);
		if (t->kept)
			fprintf(f, ", \"kept\": true");
		fprintf(f, ", \"P\": %u, \"N\": %u, \"M\": %u, \"U\": %u, "
		        "\"K\": %u, \"user_faults\": %" PRIu64
		        ", \"kernel_faults\": %" PRIu64 "}",
		        t->st.group[KM_KG_P], t->st.group[KM_KG_N],
		        t->st.group[KM_KG_M], t->st.group[KM_KG_U],
		        t->st.group[KM_KG_K], t->st.ufaults, t->st.kfaults);
	}
	fprintf(f, "], \"markers\": [");
	for (size_t i = 0; i < r->nmark; i++)
		fprintf(f, "%s{\"id\": %u, \"cycle\": %" PRIu64 ", \"task\": %u, "
		        "\"thread\": %u}", i ? ", " : "", r->mark[i].id,
		        r->mark[i].cycle, r->mark[i].task, r->mark[i].thread);
	fprintf(f, "], \"km_check\": ");
	json_put_string(f, r->check);
	fprintf(f, ", \"error\": ");
	if (r->error != NULL)
		json_put_string(f, r->error);
	else
		fprintf(f, "null");
	fprintf(f, "}\n");
}
