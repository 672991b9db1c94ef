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

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <unistd.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MEM (64u << 20)
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
};

static void csv_row(FILE *f, const struct km_fault_rec *r)
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

static void on_fault(void *ctx, const struct km_fault_rec *r)
{
	struct records *rs = ctx;

	if (rs->csv != NULL)
		csv_row(rs->csv, r);
	fault_log_add(&rs->log, r);
}

/* ---- Options ---------------------------------------------------------------- */

struct run_opts {
	struct sim_machine_config mc;
	const char *kpager;             /* "POLICY[:ARGS]" */
	const char *costs_path;
	const char *faults_path;
	bool json;
	char *costs;                    /* the file's text */
	struct kp_policy policy;        /* --kpager's, built in or loaded */
};

static int parse_size(const char *s, uint32_t *frames)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno != 0 || end == s)
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

static char *read_text(const char *path)
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

static void run_usage(FILE *out)
{
	fprintf(out,
	"usage: kpsim run [OPTIONS] PROGRAM...\n\n"
	"Runs IA-32 guest programs together on the kernel model, each in a\n"
	"task of its own, and reports the cycles and faults.  A PROGRAM is a\n"
	"bundled workload by name or a static i386 ELF file by path (it holds\n"
	"a '/'), with its arguments in the same word: 'touch 256 sparse read'.\n\n"
	"options:\n"
	"  --kmem pool|kpager     kernel memory from the in-kernel pool\n"
	"                         (default) or from a user-level kpager\n"
	"  --kpager POLICY[:ARGS] the kpager policy, built in or a shared\n"
	"                         object's path (implies --kmem kpager);\n"
	"                         default fcfs\n"
	"  --mem SIZE             simulated RAM, e.g. 64M (default), 1G - 8K max\n"
	"  --costs FILE           the cost table (default: Pentium II/400)\n"
	"  --faults FILE.csv      one row per fault: seq, parent, cycle, task,\n"
	"                         thread, kind, address, kernel page, data\n"
	"                         type, its task, decision, pfn, cycles, and\n"
	"                         the costs charged (name*count)\n"
	"  --slice CYCLES         the time slice (default %u)\n"
	"  --max-cycles N         stop the run at this simulated clock\n"
	"  --json                 a summary on stdout (guest output goes to\n"
	"                         stderr)\n"
	"  --help                 this text\n\n"
	"bundled workloads:", SIM_SLICE_DEFAULT);
	for (const struct kps_bundled *b = kps_bundled; b->name; b++)
		fprintf(out, " %s", b->name);
	fprintf(out, "\n");
}

/* --kpager POLICY[:ARGS]: finds the policy, built in or a shared object
 * by path; kernel memory then comes from kpagers.  Returns 0, or -1 after
 * printing why. */
static int parse_kpager(struct run_opts *o, bool kmem_set)
{
	char why[256];

	if (kp_policy_open(o->kpager, &o->policy, why, sizeof why) != KM_OK) {
		fprintf(stderr, "kpsim run: --kpager %s: %s\n", o->kpager, why);
		return -1;
	}
	o->mc.kpager = o->policy.ops;
	o->mc.kpager_args = o->policy.args;
	if (kmem_set && o->mc.kmem == KM_KMEM_POOL) {
		fprintf(stderr, "kpsim run: --kpager needs --kmem kpager, not "
		        "pool\n");
		return -1;
	}
	o->mc.kmem = KM_KMEM_KPAGER;
	return 0;
}

/* A positive number for --slice or --max-cycles; 0 after printing why. */
static uint64_t parse_count(const char *opt, const char *arg)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || v == 0) {
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
		{ "kmem", required_argument, NULL, 'k' },
		{ "kpager", required_argument, NULL, 'p' },
		{ "mem", required_argument, NULL, 'm' },
		{ "costs", required_argument, NULL, 'c' },
		{ "faults", required_argument, NULL, 'f' },
		{ "slice", required_argument, NULL, 's' },
		{ "max-cycles", required_argument, NULL, 'x' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool kmem_set = false;
	int c;

	o->mc = sim_machine_config_default(DEFAULT_MEM / 4096);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
		switch (c) {
		case 'k':
			if (strcmp(optarg, "pool") != 0 &&
			    strcmp(optarg, "kpager") != 0) {
				fprintf(stderr, "kpsim run: --kmem must be pool "
				        "or kpager, not '%s'\n", optarg);
				return -1;
			}
			o->mc.kmem = strcmp(optarg, "pool") == 0 ?
			             KM_KMEM_POOL : KM_KMEM_KPAGER;
			kmem_set = true;
			break;
		case 'p':
			o->kpager = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &o->mc.frames) != 0) {
				fprintf(stderr, "kpsim run: --mem '%s' is not a "
				        "size in whole pages (e.g. 64M)\n", optarg);
				return -1;
			}
			break;
		case 'c':
			o->costs_path = optarg;
			break;
		case 'f':
			o->faults_path = optarg;
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
		case 'j':
			o->json = true;
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
	if (o->kpager != NULL && parse_kpager(o, kmem_set) != 0)
		return -1;
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
	if (o->costs_path != NULL &&
	    (o->costs = read_text(o->costs_path)) == NULL) {
		fprintf(stderr, "kpsim run: cannot read the cost table %s: "
		        "%s\n", o->costs_path, strerror(errno ? errno : EIO));
		return -1;
	}
	o->mc.costs = o->costs;
	return optind;
}

/* ---- Reports ---------------------------------------------------------------- */

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void report_text(struct sim_machine *m, const char *error,
                        const char *check)
{
	struct sim_machine_stats st;
	struct km_stats ks;
	size_t nmark;
	const struct sim_marker *mk = sim_machine_markers(m, &nmark);

	sim_machine_stats(m, &st);
	km_stats(sim_machine_model(m), &ks);
	printf("\nkpsim: %" PRIu64 " cycles: %" PRIu64 " guest instructions "
	       "(%" PRIu64 " cycles), kernel %" PRIu64 "\n", st.cycles,
	       st.guest_insns, st.guest_cycles, st.cycles - st.guest_cycles);
	printf("faults: %" PRIu64 " user, %" PRIu64 " kernel page faults, %"
	       PRIu64 " denied; %" PRIu64 " system calls, %" PRIu64
	       " messages\n", ks.ufaults, ks.kfaults, ks.denied, st.syscalls,
	       st.ipcs);
	printf("kernel pages each task held at most, by Figure 2's groups: "
	       "P page tables,\nN node tables, M mapping database, U UTCBs, "
	       "K KTCBs\n");
	printf("%-4s %-12s %6s %5s %5s %5s %5s %5s %8s %8s\n", "task",
	       "program", "exit", "P", "N", "M", "U", "K", "ufaults",
	       "kfaults");
	for (km_task_t t = sim_machine_task_next(m, 0); t != 0;
	     t = sim_machine_task_next(m, t)) {
		struct km_task_stats ts;
		int status = 0;
		char ex[16] = "running";

		sim_machine_task_stats(m, t, &ts);
		if (sim_machine_exit_status(m, t, &status))
			snprintf(ex, sizeof ex, "%d", status);
		printf("%-4u %-12.12s %6s %5u %5u %5u %5u %5u %8" PRIu64
		       " %8" PRIu64 "\n", t, sim_machine_task_name(m, t), ex,
		       ts.group[KM_KG_P], ts.group[KM_KG_N], ts.group[KM_KG_M],
		       ts.group[KM_KG_U], ts.group[KM_KG_K], ts.ufaults,
		       ts.kfaults);
	}
	for (size_t i = 0; i < nmark; i++)
		printf("marker %u: cycle %" PRIu64 " (task %u thread %u)\n",
		       mk[i].id, mk[i].cycle, mk[i].task, mk[i].thread);
	printf("km_check: %s\n", check);
	if (error != NULL)
		printf("error: %s\n", error);
}

static void report_json(struct sim_machine *m, const char *error,
                        const char *check)
{
	struct sim_machine_stats st;
	struct km_stats ks;
	size_t nmark;
	const struct sim_marker *mk = sim_machine_markers(m, &nmark);
	const char *sep = "";

	sim_machine_stats(m, &st);
	km_stats(sim_machine_model(m), &ks);
	printf("{\"cycles\": %" PRIu64 ", \"guest_instructions\": %" PRIu64
	       ", \"guest_cycles\": %" PRIu64 ", \"kernel_cycles\": %" PRIu64
	       ", \"user_faults\": %" PRIu64 ", \"kernel_faults\": %" PRIu64
	       ", \"denied\": %" PRIu64 ", \"syscalls\": %" PRIu64
	       ", \"messages\": %" PRIu64 ", \"tasks\": [", st.cycles,
	       st.guest_insns, st.guest_cycles, st.cycles - st.guest_cycles,
	       ks.ufaults, ks.kfaults, ks.denied, st.syscalls, st.ipcs);
	for (km_task_t t = sim_machine_task_next(m, 0); t != 0;
	     t = sim_machine_task_next(m, t)) {
		struct km_task_stats ts;
		int status = 0;

		sim_machine_task_stats(m, t, &ts);
		printf("%s{\"id\": %u, \"program\": ", sep, t);
		json_string(stdout, sim_machine_task_name(m, t));
		if (sim_machine_exit_status(m, t, &status))
			printf(", \"exit\": %d", status);
		printf(", \"P\": %u, \"N\": %u, \"M\": %u, \"U\": %u, "
		       "\"K\": %u, \"user_faults\": %" PRIu64
		       ", \"kernel_faults\": %" PRIu64 "}",
		       ts.group[KM_KG_P], ts.group[KM_KG_N], ts.group[KM_KG_M],
		       ts.group[KM_KG_U], ts.group[KM_KG_K], ts.ufaults,
		       ts.kfaults);
		sep = ", ";
	}
	printf("], \"markers\": [");
	for (size_t i = 0; i < nmark; i++)
		printf("%s{\"id\": %u, \"cycle\": %" PRIu64 ", \"task\": %u, "
		       "\"thread\": %u}", i ? ", " : "", mk[i].id, mk[i].cycle,
		       mk[i].task, mk[i].thread);
	printf("], \"km_check\": ");
	json_string(stdout, check);
	printf(", \"error\": ");
	if (error != NULL)
		json_string(stdout, error);
	else
		printf("null");
	printf("}\n");
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

		snprintf(word, sizeof word, "%s", argv[i]);
		for (w = strtok_r(word, " ", &save); w && ac < 63;
		     w = strtok_r(NULL, " ", &save))
			av[ac++] = w;
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

/* 0 when every task ended with status 0. */
static int all_exited_ok(struct sim_machine *m)
{
	for (km_task_t t = sim_machine_task_next(m, 0); t != 0;
	     t = sim_machine_task_next(m, t)) {
		int status;

		if (!sim_machine_exit_status(m, t, &status) || status != 0)
			return 1;
	}
	return 0;
}

int kpsim_run(int argc, char **argv)
{
	struct run_opts o;
	struct images im;
	struct records rs;
	struct sim_machine *m = NULL;
	char why[320];
	int first, rc = 1, err;

	memset(&o, 0, sizeof o);
	memset(&im, 0, sizeof im);
	memset(&rs, 0, sizeof rs);
	first = parse_run(argc, argv, &o);
	if (first <= 0) {
		free(o.costs);
		kp_policy_close(&o.policy);
		return first == 0 ? 0 : 2;
	}
	if (o.faults_path != NULL) {
		rs.csv = fopen(o.faults_path, "w");
		if (rs.csv == NULL) {
			fprintf(stderr, "kpsim run: cannot write %s: %s\n",
			        o.faults_path, strerror(errno));
			free(o.costs);
			kp_policy_close(&o.policy);
			return 2;
		}
		fprintf(rs.csv, "seq,parent,cycle,task,thread,kind,address,"
		        "kpage,type,kpage_task,decision,pfn,cycles,breakdown\n");
	}
	o.mc.out = o.json ? stderr : stdout;
	o.mc.find = find_program;
	o.mc.find_ctx = &im;
	o.mc.sink = on_fault;
	o.mc.sink_ctx = &rs;
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
		if (o.json)
			report_json(m, err == SIM_OK ? NULL : why, check);
		else
			report_text(m, err == SIM_OK ? NULL : why, check);
		rc = err == SIM_OK && ok ? all_exited_ok(m) : 1;
	}
	sim_machine_destroy(m);
	images_free(&im);
	if (rs.csv != NULL && fclose(rs.csv) != 0) {
		fprintf(stderr, "kpsim run: writing %s failed\n", o.faults_path);
		rc = 1;
	}
	free(rs.log.rec);
	free(o.costs);
	kp_policy_close(&o.policy);     /* after the model that ran it */
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
		printf("usage: kpsim paper fig3 [--costs FILE]\n\n"
		       "Runs the fig3 workload with the in-kernel allocator "
		       "and with an FCFS\nkpager and prints the paper's "
		       "Figure 3 beside kpsim's cycles.\n");
		return 0;
	}
	if (argc < 2 || strcmp(argv[1], "fig3") != 0) {
		fprintf(stderr, "kpsim paper: which figure? (fig3)\n");
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
