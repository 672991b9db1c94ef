/*
 * kpsim run and kpsim paper: IA-32 guest programs on the kernel model.
 * `run` loads each program (a bundled workload by name, or a static i386
 * ELF file by path), runs them together on one machine and reports the
 * cycles, the faults (optionally one CSV row each) and each task's kernel
 * memory.  `paper fig3` runs the fig3 workload with the in-kernel pool and
 * with an FCFS kpager and sets the cycles of its complex page fault beside
 * the paper's Figure 3.
 */
#include "cli.h"
#include "bundle.h"
#include "engine.h"
#include "machine.h"
#include "pagers.h"
#include "report.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROGRAMS 16

/* Images loaded for a run: the programs named on the command line and the
 * bundled ones tasks start by name. */
struct images {
	struct sim_elf *img[64];
	const char *name[64];           /* a bundled program's; NULL: a file */
	size_t n;
	char err[SIM_ELF_MSG_SIZE + 64];
};

static struct sim_elf *load_bundled(struct images *im, const char *name)
{
	const struct kps_bundled *b = kps_bundled_find(name);
	char msg[SIM_ELF_MSG_SIZE];
	struct sim_elf *img;

	for (size_t i = 0; i < im->n; i++)
		if (im->name[i] != NULL && strcmp(im->name[i], name) == 0)
			return im->img[i];
	if (b == NULL || im->n == sizeof im->img / sizeof im->img[0]) {
		snprintf(im->err, sizeof im->err, "no bundled program '%s'",
		         name);
		return NULL;
	}
	if (sim_elf_load_buffer(b->elf, b->size, &img, msg, sizeof msg) !=
	    SIM_ELF_OK) {
		snprintf(im->err, sizeof im->err, "bundled %s: %s", name, msg);
		return NULL;
	}
	im->img[im->n] = img;
	im->name[im->n++] = b->name;
	return img;
}

static const struct sim_elf *find_program(void *ctx, const char *name)
{
	return load_bundled(ctx, name);
}

static void images_free(struct images *im)
{
	for (size_t i = 0; i < im->n; i++)
		sim_elf_destroy(im->img[i]);
	im->n = 0;
}

/* A program word: "name arg ..." for a bundled program, "path arg ..."
 * (anything with a '/') for a file. */
static struct sim_elf *load_program(struct images *im, const char *path)
{
	char msg[SIM_ELF_MSG_SIZE];
	struct sim_elf *img;
	enum sim_elf_err e;

	if (strchr(path, '/') == NULL)
		return load_bundled(im, path);
	if (im->n == sizeof im->img / sizeof im->img[0]) {
		snprintf(im->err, sizeof im->err, "too many programs");
		return NULL;
	}
	e = sim_elf_load_path(path, &img, msg, sizeof msg);
	if (e != SIM_ELF_OK) {
		snprintf(im->err, sizeof im->err, "%s: %s", path, msg);
		return NULL;
	}
	/* Files are not found by name: tasks start bundled programs only. */
	im->img[im->n] = img;
	im->name[im->n++] = NULL;
	return img;
}

/* ---- Fault records -------------------------------------------------------- */

struct records {
	struct fault_log log;
	FILE *csv;
	struct revocations rv;
};

static void on_fault(void *ctx, const struct km_fault_rec *r)
{
	struct records *rs = ctx;

	if (rs->csv != NULL)
		faults_csv_row(rs->csv, r);
	revocations_count(&rs->rv, r);
	fault_log_add(&rs->log, r);
}

/* ---- Options ---------------------------------------------------------------- */

struct run_opts {
	struct model_opts mo;
	struct sim_machine_config mc;
	const char *record_path;
};

static void run_usage(FILE *out)
{
	fprintf(out,
	"usage: kpsim run [OPTIONS] PROGRAM...\n\n"
	"Runs IA-32 guest programs together on the kernel model, each in a\n"
	"task of its own, and reports the cycles and faults.  A PROGRAM is a\n"
	"bundled workload by name or a static i386 ELF file by path (it holds\n"
	"a '/'), with its arguments in the same word: 'touch 256 sparse read'.\n\n"
	"options:\n"
	MODEL_OPTIONS_HELP
	"                         (guest output then goes to stderr)\n"
	"  --record FILE          write the run's trace (traces/FORMAT.md;\n"
	"                         gzip if FILE ends in .gz) for kpsim replay\n"
	"  --slice CYCLES         the time slice (default %u)\n"
	"  --max-cycles N         stop the run at this simulated clock\n"
	"  --help                 this text\n\n"
	"bundled workloads:", SIM_SLICE_DEFAULT);
	for (const struct kps_bundled *b = kps_bundled; b->name; b++)
		fprintf(out, " %s", b->name);
	fprintf(out, "\n");
}

/* A positive number for --slice or --max-cycles; 0 after printing why. */
static uint64_t parse_count(const char *opt, const char *arg)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || v == 0 || *arg == '-') {
		fprintf(stderr, "kpsim run: --%s needs a positive number, not "
		        "'%s'\n", opt, arg);
		return 0;
	}
	return v;
}

/* Parses the options; returns the index of the first program, or -1 after
 * printing why (exit status 2), or 0 for --help (status 0). */
static int parse_run(int argc, char **argv, struct run_opts *o)
{
	static const struct option longs[] = {
		MODEL_OPTIONS,
		{ "record", required_argument, NULL, 'r' },
		{ "slice", required_argument, NULL, 's' },
		{ "max-cycles", required_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int c, mine;

	model_opts_init(&o->mo, "kpsim run");
	o->mc = sim_machine_config_default(o->mo.frames);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
		if ((mine = model_opt(&o->mo, c, optarg)) != 0) {
			if (mine < 0)
				return -1;
			continue;
		}
		switch (c) {
		case 'r':
			o->record_path = optarg;
			break;
		case 's':
			if ((o->mc.slice = parse_count("slice", optarg)) == 0)
				return -1;
			break;
		case 'x':
			if ((o->mc.max_cycles = parse_count("max-cycles",
			                                    optarg)) == 0)
				return -1;
			break;
		case 'h':
			run_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "kpsim run: unknown option '%s'\n\n",
			        argv[optind - 1]);
			run_usage(stderr);
			return -1;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "kpsim run: no PROGRAM given\n\n");
		run_usage(stderr);
		return -1;
	}
	if (argc - optind > MAX_PROGRAMS) {
		fprintf(stderr, "kpsim run: at most %d programs\n",
		        MAX_PROGRAMS);
		return -1;
	}
	if (model_opts_finish(&o->mo) != 0)
		return -1;
	o->mc.frames = o->mo.frames;
	o->mc.kmem = o->mo.kmem;
	if (o->mo.policy.ops != NULL) {
		o->mc.kpager = o->mo.policy.ops;
		o->mc.kpager_args = o->mo.policy.args;
	}
	o->mc.costs = o->mo.costs;
	return optind;
}

/* ---- Reports ---------------------------------------------------------------- */

/* The report of a machine's run: every task it named, every marker. */
static void report(struct sim_machine *m, const struct revocations *rv,
                   bool json, const char *error, const char *check)
{
	struct sim_machine_stats st;
	struct sim_task_info ti;
	struct report_task *task;
	struct tr_marker *mark;
	const struct sim_marker *mk;
	struct report r;
	size_t nmark, ntask = 0;

	memset(&r, 0, sizeof r);
	sim_machine_stats(m, &st);
	km_stats(sim_machine_model(m), &r.ks);
	r.cycles = st.cycles;
	r.guest_insns = st.guest_insns;
	r.guest_cycles = st.guest_cycles;
	r.syscalls = st.syscalls;
	r.ipcs = st.ipcs;
	/* Every task spawned, in order, those whose ids later tasks took
	 * again included: the rows the replay of the recording prints. */
	while (sim_machine_task_info(m, ntask, &ti))
		ntask++;
	mk = sim_machine_markers(m, &nmark);
	task = calloc(ntask ? ntask : 1, sizeof *task);
	mark = calloc(nmark ? nmark : 1, sizeof *mark);
	if (task == NULL || mark == NULL) {
		fprintf(stderr, "kpsim run: out of host memory for the "
		        "report\n");
		free(task);
		free(mark);
		return;
	}
	for (size_t i = 0; i < ntask && sim_machine_task_info(m, i, &ti);
	     i++) {
		struct report_task *rt = &task[r.ntask++];

		rt->id = ti.id;
		rt->name = ti.name;
		rt->st = ti.st;
		rt->kept = ti.kept;
		if (ti.done)
			snprintf(rt->exit, sizeof rt->exit, "%d", ti.status);
		else
			snprintf(rt->exit, sizeof rt->exit, "running");
	}
	for (size_t i = 0; i < nmark; i++)
		mark[r.nmark++] = (struct tr_marker){ mk[i].id, mk[i].cycle,
		        mk[i].fault_seq, mk[i].task, mk[i].thread };
	r.task = task;
	r.mark = mark;
	r.rv = *rv;
	r.check = check;
	r.error = error;
	if (json)
		report_json(stdout, &r);
	else
		report_text(stdout, &r);
	free(task);
	free(mark);
}

/* ---- A host fault inside a guest's reservation --------------------------------- */

/* A signal handler reaches the running machine only through a static. */
static const struct sim_machine *segv_machine;

static void say(const char *s)
{
	ssize_t r = write(STDERR_FILENO, s, strlen(s));

	(void)r;
}

/* Names the culprit of a SIGSEGV plainly, then dies of it as usual. */
static void on_segv(int sig, siginfo_t *si, void *uctx)
{
	(void)uctx;
	if (segv_machine != NULL && sim_machine_owns(segv_machine, si->si_addr))
		say("kpsim: host SIGSEGV inside a guest's address space: an "
		    "alias outlived its PTE's TLB flush (sim/engine.h, rule 3), "
		    "a simulator bug\n");
	else
		say("kpsim: host SIGSEGV outside the guests: a simulator bug\n");
	signal(sig, SIG_DFL);
	raise(sig);
}

static void watch_segv(const struct sim_machine *m)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_segv;
	sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
	sigemptyset(&sa.sa_mask);
	segv_machine = m;
	sigaction(SIGSEGV, &sa, NULL);
}

/* ---- kpsim run ---------------------------------------------------------------- */

/* Spawns PROGRAM words [first, argc).  Returns 0 or prints why. */
static int spawn_all(struct sim_machine *m, struct images *im, int argc,
                     char **argv, int first)
{
	for (int i = first; i < argc; i++) {
		char word[512], *av[64], *save = NULL, *w;
		char why[256];
		struct sim_elf *img;
		int ac = 0;

		if (strlen(argv[i]) >= sizeof word) {
			fprintf(stderr, "kpsim run: PROGRAM '%.40s...' is %zu "
			        "bytes long; at most %zu\n", argv[i],
			        strlen(argv[i]), sizeof word - 1);
			return -1;
		}
		snprintf(word, sizeof word, "%s", argv[i]);
		for (w = strtok_r(word, " ", &save); w != NULL;
		     w = strtok_r(NULL, " ", &save)) {
			if (ac == 63) {
				fprintf(stderr, "kpsim run: PROGRAM '%s' has "
				        "more than 63 words (the program and "
				        "its arguments)\n", av[0]);
				return -1;
			}
			av[ac++] = w;
		}
		av[ac] = NULL;
		if (ac == 0) {
			fprintf(stderr, "kpsim run: an empty PROGRAM\n");
			return -1;
		}
		if ((img = load_program(im, av[0])) == NULL) {
			fprintf(stderr, "kpsim run: %s\n", im->err);
			return -1;
		}
		/* A file's task is named after its base name. */
		if (sim_machine_spawn(m, img, strrchr(av[0], '/') ?
		                      strrchr(av[0], '/') + 1 : av[0], ac, av,
		                      NULL, why, sizeof why) != SIM_OK) {
			fprintf(stderr, "kpsim run: %s: %s\n", av[0], why);
			return -1;
		}
	}
	return 0;
}

/* 0 when every task spawned ended with status 0 (those whose ids later
 * tasks took again included). */
static int all_exited_ok(struct sim_machine *m)
{
	struct sim_task_info ti;

	for (size_t i = 0; sim_machine_task_info(m, i, &ti); i++)
		if (!ti.done || ti.status != 0)
			return 1;
	return 0;
}

/* Writes each event of the run to the trace; the first failure stops the
 * writer, which tr_finish then reports. */
static void on_record(void *ctx, const struct tr_event *ev)
{
	tr_write(ctx, ev);
}

/* Opens the --record trace and says what made it. */
static struct tr_writer *record_open(const char *path, int argc, char **argv)
{
	struct tr_writer *w;
	char why[TR_WHY_SIZE], line[TR_LINE_MAX - 2];
	size_t n;

	if (tr_create(path, &w, why, sizeof why) != 0) {
		fprintf(stderr, "kpsim run: --record: %s\n", why);
		return NULL;
	}
	n = (size_t)snprintf(line, sizeof line, "kpsim run");
	for (int i = 1; i < argc && n < sizeof line; i++)
		n += (size_t)snprintf(line + n, sizeof line - n,
		                      strchr(argv[i], ' ') ? " '%s'" : " %s",
		                      argv[i]);
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	tr_comment(w, line);
	return w;
}

int kpsim_run(int argc, char **argv)
{
	struct run_opts o;
	struct images im;
	struct records rs;
	struct sim_machine *m = NULL;
	struct tr_writer *rec = NULL;
	char why[TR_WHY_SIZE];
	int first, rc = 1, err;

	memset(&o, 0, sizeof o);
	memset(&im, 0, sizeof im);
	memset(&rs, 0, sizeof rs);
	first = parse_run(argc, argv, &o);
	if (first <= 0) {
		model_opts_free(&o.mo);
		return first == 0 ? 0 : 2;
	}
	if ((o.mo.faults_path != NULL &&
	     (rs.csv = faults_csv_open(o.mo.faults_path, "kpsim run")) == NULL) ||
	    (o.record_path != NULL &&
	     (rec = record_open(o.record_path, argc, argv)) == NULL)) {
		if (rs.csv != NULL)
			fclose(rs.csv);
		model_opts_free(&o.mo);
		return 2;
	}
	o.mc.out = o.mo.json ? stderr : stdout;
	o.mc.find = find_program;
	o.mc.find_ctx = &im;
	o.mc.sink = on_fault;
	o.mc.sink_ctx = &rs;
	if (rec != NULL) {
		o.mc.record = on_record;
		o.mc.record_ctx = rec;
	}
	err = sim_machine_create(&o.mc, &m, why, sizeof why);
	if (err != SIM_OK) {
		fprintf(stderr, "kpsim run: %s\n", why);
		rc = err == SIM_EARG ? 2 : 1;
	} else if (spawn_all(m, &im, argc, argv, first) == 0) {
		watch_segv(m);
		char check[256] = "ok";
		bool ok;

		err = sim_machine_run(m, why, sizeof why);
		segv_machine = NULL;
		fflush(o.mc.out);
		/* The model's invariants after the guests, as the demo shows. */
		ok = km_check(sim_machine_model(m), check, sizeof check);
		report(m, &rs.rv, o.mo.json, err == SIM_OK ? NULL : why,
		       check);
		rc = err == SIM_OK && ok ? all_exited_ok(m) : 1;
	}
	sim_machine_destroy(m);
	images_free(&im);
	if (rs.csv != NULL && fclose(rs.csv) != 0) {
		fprintf(stderr, "kpsim run: writing %s failed\n",
		        o.mo.faults_path);
		rc = 1;
	}
	if (tr_finish(rec, why, sizeof why) != 0) {
		fprintf(stderr, "kpsim run: --record: %s\n", why);
		rc = 1;
	}
	free(rs.log.rec);
	model_opts_free(&o.mo);         /* after the model that ran it */
	return rc;
}

/* ---- kpsim paper fig3 ------------------------------------------------------- */

struct fig3_result {
	uint64_t cycles;        /* the faults between markers 1 and 2 */
	unsigned faults;        /* user and kernel page faults among them */
};

static int run_fig3(enum km_kmem kmem, const char *costs,
                    struct fig3_result *res, char *why, size_t why_len)
{
	struct sim_machine_config mc = sim_machine_config_default(4096);
	struct images im;
	struct records rs;
	struct sim_machine *m = NULL;
	const struct sim_marker *mk;
	size_t nmark;
	int err;

	memset(&im, 0, sizeof im);
	memset(&rs, 0, sizeof rs);
	memset(res, 0, sizeof *res);
	mc.kmem = kmem;
	mc.costs = costs;
	mc.sink = on_fault;
	mc.sink_ctx = &rs;
	err = sim_machine_create(&mc, &m, why, why_len);
	if (err == SIM_OK) {
		struct sim_elf *img = load_bundled(&im, "fig3");
		char *av[] = { "fig3", NULL };

		if (img == NULL) {
			snprintf(why, why_len, "%s", im.err);
			err = SIM_EARG;
		} else {
			err = sim_machine_spawn(m, img, "fig3", 1, av, NULL,
			                        why, why_len);
		}
	}
	if (err == SIM_OK)
		err = sim_machine_run(m, why, why_len);
	if (err == SIM_OK) {
		mk = sim_machine_markers(m, &nmark);
		if (nmark != 2 || rs.log.oom) {
			snprintf(why, why_len, "fig3 made %zu markers, not 2",
			         nmark);
			err = SIM_ESTATE;
		}
	}
	for (size_t i = 0; err == SIM_OK && i < rs.log.n; i++) {
		if (rs.log.rec[i].seq <= mk[0].fault_seq ||
		    rs.log.rec[i].seq > mk[1].fault_seq)
			continue;
		res->cycles += rs.log.rec[i].cycles;
		res->faults += rs.log.rec[i].kind != KM_FK_KPOOL;
	}
	sim_machine_destroy(m);
	images_free(&im);
	free(rs.log.rec);
	return err;
}

static double percent(uint64_t got, uint64_t paper)
{
	return 100.0 * ((double)got - (double)paper) / (double)paper;
}

static int paper_fig3(const char *costs)
{
	struct fig3_result pool, kp;
	char why[320];
	double per, per_paper = 1700.0; /* the paper's "about 1,700" */

	if (run_fig3(KM_KMEM_POOL, costs, &pool, why, sizeof why) != SIM_OK ||
	    run_fig3(KM_KMEM_KPAGER, costs, &kp, why, sizeof why) != SIM_OK) {
		fprintf(stderr, "kpsim paper fig3: %s\n", why);
		return 1;
	}
	per = ((double)kp.cycles - (double)pool.cycles) / 2;
	printf("Figure 3: the complex page fault (the fig3 workload's first "
	       "touch of an\nuntouched 4 MiB region: a page table and a node "
	       "table), in cycles\n\n");
	printf("%-32s %8s %8s %8s %7s\n", "kernel memory from", "paper",
	       "kpsim", "diff", "faults");
	printf("%-32s %8u %8" PRIu64 " %+8.3f%% %7u\n",
	       "in-kernel allocator", 18091u, pool.cycles,
	       percent(pool.cycles, 18091), pool.faults);
	printf("%-32s %8u %8" PRIu64 " %+8.3f%% %7u\n",
	       "user-level kpager (FCFS)", 21454u, kp.cycles,
	       percent(kp.cycles, 21454), kp.faults);
	printf("%-32s %8.0f %8.0f %+8.3f%%\n", "per kernel page fault "
	       "(diff / 2)", per_paper, per, 100.0 * (per - per_paper) /
	       per_paper);
	printf("\nThe paper reports about 1,700 cycles per kernel page "
	       "fault; its own two\ntotals differ by 3,363, i.e. 1,682 "
	       "a fault.\n");
	return 0;
}

int kpsim_paper(int argc, char **argv)
{
	const char *costs_path = NULL;
	char *costs = NULL;
	int rc;

	if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
	                  strcmp(argv[1], "-h") == 0)) {
		printf("usage: kpsim paper fig2|fig3 [--costs FILE]\n\n"
		       "fig2: a process mix shaped like the paper's Figure 2, "
		       "replayed, with\n      its kernel memory per address "
		       "space beside the paper's\n"
		       "fig3: the fig3 workload with the in-kernel allocator "
		       "and with an FCFS\n      kpager, the paper's Figure 3 "
		       "beside kpsim's cycles\n");
		return 0;
	}
	if (argc >= 2 && strcmp(argv[1], "fig2") == 0)
		return kpsim_paper_fig2(argc - 1, argv + 1);
	if (argc < 2 || strcmp(argv[1], "fig3") != 0) {
		fprintf(stderr, "kpsim paper: which figure? (fig2, fig3)\n");
		return 2;
	}
	if (argc == 4 && strcmp(argv[2], "--costs") == 0) {
		costs_path = argv[3];
	} else if (argc != 2) {
		fprintf(stderr, "usage: kpsim paper fig3 [--costs FILE]\n");
		return 2;
	}
	if (costs_path != NULL && (costs = read_text(costs_path)) == NULL) {
		fprintf(stderr, "kpsim paper: cannot read %s\n", costs_path);
		return 2;
	}
	rc = paper_fig3(costs);
	free(costs);
	return rc;
}
