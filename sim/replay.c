/*
 * kpsim replay: a trace (traces/FORMAT.md) replayed against the kernel
 * model without emulation, with the options and the report of kpsim run,
 * so that a run and the replay of its recording can be compared line by
 * line.
 */
#include "cli.h"
#include "report.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void replay_usage(FILE *out)
{
	fprintf(out,
	"usage: kpsim replay [OPTIONS] TRACE\n\n"
	"Replays a trace (traces/FORMAT.md; '-' reads standard input; gzip is\n"
	"read as it is) against the kernel model, without emulation, and\n"
	"reports the cycles and faults as kpsim run does.  The replay of a\n"
	"recording (kpsim run --record) gives the run's faults and cycles.\n\n"
	"options:\n"
	MODEL_OPTIONS_HELP
	"  --help                 this text\n");
}

static double elapsed(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	       (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

void progress_start(struct progress *p)
{
	p->on = isatty(STDERR_FILENO);
	p->shown = false;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
}

void progress_show(struct progress *p, const char *what, uint64_t events,
                   uint64_t done, uint64_t total)
{
	double s;

	if (!p->on || (s = elapsed(&p->start)) < 1.0)
		return;
	if (total > 0)
		fprintf(stderr, "\r%s: %llu events, %.0f%%, %.1f s ", what,
		        (unsigned long long)events,
		        100.0 * (double)done / (double)total, s);
	else
		fprintf(stderr, "\r%s: %llu events, %.1f s ", what,
		        (unsigned long long)events, s);
	p->shown = true;
}

void progress_end(struct progress *p)
{
	if (p->shown)
		fprintf(stderr, "\r%60s\r", "");
	p->shown = false;
}

struct sink {
	FILE *csv;
	struct revocations rv;
};

static void on_fault(void *ctx, const struct km_fault_rec *r)
{
	struct sink *s = ctx;

	if (s->csv != NULL)
		faults_csv_row(s->csv, r);
	revocations_count(&s->rv, r);
}

/* As kpsim run: did every task end, with status 0? */
static bool all_ended_ok(const struct tr_replay *r)
{
	const struct tr_task_result *t;

	for (size_t i = 0; (t = tr_replay_task(r, i)) != NULL; i++)
		if (!t->ended || t->status != 0)
			return false;
	return true;
}

static void report(struct tr_replay *r, const struct revocations *rv,
                   bool json, const char *error, const char *check)
{
	struct tr_replay_stats st;
	const struct tr_task_result *t;
	struct report_task *task;
	struct report rep;
	size_t n = 0;

	memset(&rep, 0, sizeof rep);
	tr_replay_stats(r, &st);
	km_stats(tr_replay_model(r), &rep.ks);
	while (tr_replay_task(r, n) != NULL)
		n++;
	task = calloc(n ? n : 1, sizeof *task);
	if (task == NULL) {
		fprintf(stderr, "kpsim replay: out of host memory\n");
		return;
	}
	for (size_t i = 0; i < n; i++) {
		t = tr_replay_task(r, i);
		task[i].id = t->km_id;
		task[i].name = t->name;
		task[i].st = t->peak;
		task[i].kept = t->kept;
		if (t->ended)
			snprintf(task[i].exit, sizeof task[i].exit, "%d",
			         (int)t->status);
		else
			snprintf(task[i].exit, sizeof task[i].exit, "running");
	}
	rep.cycles = st.cycles;
	rep.guest_insns = st.guest_insns;
	rep.guest_cycles = st.guest_cycles;
	rep.syscalls = st.syscalls;
	rep.ipcs = st.ipcs;
	rep.task = task;
	rep.ntask = n;
	rep.mark = tr_replay_markers(r, &rep.nmark);
	rep.rv = *rv;
	rep.check = check;
	rep.error = error;
	rep.replay = true;
	rep.events = st.events;
	rep.skipped = st.skipped;
	rep.kept = st.kept;
	if (json)
		report_json(stdout, &rep);
	else
		report_text(stdout, &rep);
	free(task);
}

int kpsim_replay(int argc, char **argv)
{
	static const struct option longs[] = {
		MODEL_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct model_opts o;
	struct tr_replay_config cfg;
	struct tr_replay *r = NULL;
	struct tr_reader *in = NULL;
	struct tr_event ev;
	struct progress prog;
	struct sink sink = { NULL, { 0 } };
	char why[TR_WHY_SIZE], check[256] = "ok";
	const char *error = NULL;
	int c, mine, got, rc = 2;

	model_opts_init(&o, "kpsim replay");
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
		if ((mine = model_opt(&o, c, optarg)) != 0) {
			if (mine < 0)
				goto out;
			continue;
		}
		if (c == 'h') {
			replay_usage(stdout);
			rc = 0;
			goto out;
		}
		fprintf(stderr, "kpsim replay: unknown option '%s'\n\n",
		        argv[optind - 1]);
		replay_usage(stderr);
		goto out;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "kpsim replay: one TRACE, please\n\n");
		replay_usage(stderr);
		goto out;
	}
	if (model_opts_finish(&o) != 0)
		goto out;
	if (tr_open(argv[optind], &in, why, sizeof why) != 0) {
		fprintf(stderr, "kpsim replay: %s\n", why);
		goto out;
	}
	if (o.faults_path != NULL &&
	    (sink.csv = faults_csv_open(o.faults_path, "kpsim replay")) == NULL)
		goto out;
	cfg = tr_replay_config_default(o.frames);
	cfg.kmem = o.kmem;
	cfg.kpager = o.policy.ops;
	cfg.kpager_args = o.policy.args;
	cfg.costs = o.costs;
	cfg.sink = on_fault;
	cfg.sink_ctx = &sink;
	if (tr_replay_create(&cfg, &r, why, sizeof why) != 0) {
		fprintf(stderr, "kpsim replay: %s\n", why);
		goto out;
	}
	rc = 1;
	progress_start(&prog);
	for (uint64_t n = 1; (got = tr_next(in, &ev)) > 0; n++) {
		if (tr_replay_event(r, &ev, why, sizeof why) != 0) {
			error = why;
			break;
		}
		if ((n & 0xffff) == 0)
			progress_show(&prog, "kpsim replay", n, tr_offset(in),
			              tr_size(in));
	}
	progress_end(&prog);
	if (got < 0)
		error = tr_error(in);
	tr_replay_finish(r);
	if (!km_check(tr_replay_model(r), check, sizeof check) && error == NULL)
		error = "the model's invariants broke";
	report(r, &sink.rv, o.json, error, check);
	rc = error == NULL && all_ended_ok(r) ? 0 : 1;
out:
	if (sink.csv != NULL && fclose(sink.csv) != 0) {
		fprintf(stderr, "kpsim replay: writing %s failed\n",
		        o.faults_path);
		rc = 1;
	}
	tr_replay_destroy(r);
	tr_close(in);
	model_opts_free(&o);
	return rc;
}
