/*
 * kpsim compare: the same work replayed under several kpager policies with
 * the same kernel-memory budget, side by side.  The work is a trace file
 * or a built-in scenario: bundled programs run once on the emulated
 * machine (with the in-kernel pool, so that nothing is denied while it is
 * recorded), their recording then replayed under each policy.  Where the
 * work has attackers (tasks named in --attackers), each policy also
 * replays it without them, and the victims' slowdown is the ratio of the
 * cycles spent on their events with and without.  The policies' replays
 * are independent, so they run in parallel (--jobs); the tables are
 * printed once all are done, in the order the policies were given.
 */
#include "cli.h"
#include "bundle.h"
#include "machine.h"
#include "report.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_POLICIES 16
#define MAX_INPUTS 8
#define SAMPLE_DEFAULT 100000u  /* cycles between kernel-frame samples */
#define BUDGET_DEFAULT 128u     /* frames: the victims fit, the bomb not */
#define QUOTA_CLIENT_DEFAULT 16u /* quota's frames per client: a Linux 2.4
                                  * task needs 13 (Figure 2: P5 N5 M1 U1,
                                  * and a KTCB page) */

/* ---- Scenarios ------------------------------------------------------------------ */

struct scenario {
	const char *name;
	const char *summary;
	const char *programs[6];        /* "name args", as kpsim run takes */
	const char *attackers;          /* task names, comma separated */
};

static const struct scenario scenarios[] = {
	{ "linux-dos", "a shell starting a Linux 2.4 process every 1M cycles "
	  "(8 in all), beside a page-table bomb writing to 256 fresh 4 MiB "
	  "regions", { "shell 8 1000000", "ptbomb 256" }, "ptbomb" },
	{ "linux", "the same shell and processes, alone",
	  { "shell 8 1000000" }, "" },
	{ "mix", "every kind of request: Linux-like processes, IPC, threads, "
	  "a mapping chain and its unmap", { "linuxlike", "pingpong 200",
	  "spawn 32", "mapper 4" }, "" },
};

static const struct scenario *find_scenario(const char *name)
{
	if (strcmp(name, "default") == 0)
		return &scenarios[0];
	for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
		if (strcmp(scenarios[i].name, name) == 0)
			return &scenarios[i];
	return NULL;
}

/* ---- Options ------------------------------------------------------------------ */

struct policy {
	char label[48];                 /* as printed */
	enum km_kmem kmem;
	struct kp_policy pol;
	char spec[160];                 /* what --kpager(s) said */
	char args[256];                 /* with the budget */
};

struct input {
	char name[64];
	const char *path;               /* a trace file, or NULL */
	char *text;                     /* a scenario's recording */
	size_t len;
	const char *attackers;
};

struct opts {
	uint32_t frames, budget;
	bool budget_set;
	const char *costs_path;
	char *costs;
	const char *attackers;
	uint64_t sample;
	bool csv, json;
	const char *plot_dir;
	uint32_t jobs;                  /* replays at once, >= 1 */
	struct policy pol[MAX_POLICIES];
	size_t npol;
	struct input in[MAX_INPUTS];
	size_t nin;
};

static void compare_usage(FILE *out)
{
	fprintf(out,
	"usage: kpsim compare [OPTIONS] [TRACE|SCENARIO...]\n\n"
	"Replays the same work under each kpager policy with the same\n"
	"kernel-memory budget and prints one table per work: kernel frames,\n"
	"kernel page faults, revocations, restores, aborts, denials, the\n"
	"cycles spent on kernel memory and their share, and, where the work\n"
	"has attackers, the victims' slowdown against running without them.\n"
	"With no TRACE or SCENARIO: the default scenario, linux-dos.\n\n"
	"options:\n"
	"  --kpagers LIST         policies by name, comma separated; 'pool'\n"
	"                         is the in-kernel allocator (default:\n"
	"                         pool,fcfs,quota,ws,clock-typed,pinned)\n"
	"  --kpager SPEC          one more policy, POLICY[:ARGS] or a shared\n"
	"                         object's path (may repeat)\n"
	"  --budget FRAMES        kernel memory each policy gets: its pool\n"
	"                         (default %u)\n"
	"  --attackers NAMES      tasks whose victims' slowdown is measured,\n"
	"                         comma separated (default: the scenario's;\n"
	"                         for traces, ptbomb)\n"
	"  --mem SIZE             simulated RAM (default 64M)\n"
	"  --costs FILE           the cost table (default: Pentium II/400)\n"
	"  --sample CYCLES        kernel frames are sampled this often\n"
	"                         (default %u)\n"
	"  --csv                  the same data as CSV on stdout\n"
	"  --json                 the same data as JSON on stdout\n"
	"  --plot DIR             gnuplot plots into DIR: cycles-per-fault CDF\n"
	"                         per policy, kernel frames over time per task\n"
	"  --jobs N               policies replayed at once (default: the\n"
	"                         processors online); the results are the\n"
	"                         same whatever N is\n"
	"  --help                 this text\n\nscenarios:\n",
	BUDGET_DEFAULT, SAMPLE_DEFAULT);
	for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
		fprintf(out, "  %-10s %s\n", scenarios[i].name,
		        scenarios[i].summary);
}

/* Is key=... among the "key=value,..." arguments? */
static bool arg_given(const char *args, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = args; p != NULL && *p;) {
		if (strncmp(p, key, n) == 0 && p[n] == '=')
			return true;
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	return false;
}

/* The argument that carries a built-in policy's pool size. */
static const char *budget_key(const char *name)
{
	static const struct { const char *policy, *key; } keys[] = {
		{ "fcfs", "frames" }, { "pinned", "frames" },
		{ "quota", "pool" }, { "ws", "pool" },
		{ "clock-typed", "pool" },
	};

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (strcmp(keys[i].policy, name) == 0)
			return keys[i].key;
	return NULL;
}

static int add_policy(struct opts *o, const char *spec)
{
	struct policy *p;
	char why[256];

	if (o->npol == MAX_POLICIES) {
		fprintf(stderr, "kpsim compare: at most %d policies\n",
		        MAX_POLICIES);
		return -1;
	}
	if (spec[0] == '\0') {
		fprintf(stderr, "kpsim compare: an empty policy name\n");
		return -1;
	}
	if (strlen(spec) >= sizeof p->spec) {
		fprintf(stderr, "kpsim compare: policy '%.40s...' is %zu bytes "
		        "long; at most %zu\n", spec, strlen(spec),
		        sizeof p->spec - 1);
		return -1;
	}
	/* Two columns of one table under one label could not be told
	 * apart. */
	for (size_t i = 0; i < o->npol; i++)
		if (strcmp(o->pol[i].spec, spec) == 0) {
			fprintf(stderr, "kpsim compare: policy %s is listed "
			        "twice\n", spec);
			return -1;
		}
	p = &o->pol[o->npol];
	memset(p, 0, sizeof *p);
	snprintf(p->spec, sizeof p->spec, "%s", spec);
	if (strcmp(spec, "pool") == 0) {
		p->kmem = KM_KMEM_POOL;
		snprintf(p->label, sizeof p->label, "pool");
		o->npol++;
		return 0;
	}
	p->kmem = KM_KMEM_KPAGER;
	if (kp_policy_open(p->spec, &p->pol, why, sizeof why) != KM_OK) {
		fprintf(stderr, "kpsim compare: policy %s: %s\n", spec, why);
		return -1;
	}
	/* A shared object is labelled by its file's name. */
	if (p->pol.dl != NULL && strrchr(spec, '/') != NULL)
		snprintf(p->label, sizeof p->label, "%s", strrchr(spec, '/') + 1);
	else
		snprintf(p->label, sizeof p->label, "%s", spec);
	o->npol++;
	return 0;
}

/* Adds each policy of a comma-separated list; an empty one (",," or a
 * comma at either end) is an error, not skipped. */
static int add_policies(struct opts *o, const char *list)
{
	char *buf = strdup(list), *w, *next;
	int rc = 0;

	if (buf == NULL) {
		fprintf(stderr, "kpsim compare: out of host memory\n");
		return -1;
	}
	for (w = buf; rc == 0 && w != NULL; w = next) {
		if ((next = strchr(w, ',')) != NULL)
			*next++ = '\0';
		rc = add_policy(o, w);
	}
	free(buf);
	return rc;
}

/* Gives each policy the budget, unless its arguments set it already. */
static int apply_budget(struct opts *o)
{
	for (size_t i = 0; i < o->npol; i++) {
		struct policy *p = &o->pol[i];
		const char *key;

		if (p->kmem == KM_KMEM_POOL)
			continue;
		key = budget_key(p->pol.ops->name);
		snprintf(p->args, sizeof p->args, "%s", p->pol.args);
		if (key == NULL) {
			if (o->budget_set)
				fprintf(stderr, "kpsim compare: note: policy %s "
				        "has no known pool argument; --budget "
				        "does not apply to it\n", p->label);
			continue;
		}
		if (!arg_given(p->args, key))
			snprintf(p->args + strlen(p->args),
			         sizeof p->args - strlen(p->args), "%s%s=%u",
			         p->args[0] ? "," : "", key, o->budget);
		/* Quota's own default, 8 frames a client, is less than the
		 * first fault of a Linux-like task needs (directories, a
		 * stack page table and node table, its MDB page, UTCB and
		 * KTCB: 9 pages), so such a task could never start. */
		if (strcmp(p->pol.ops->name, "quota") == 0 &&
		    !arg_given(p->args, "frames"))
			snprintf(p->args + strlen(p->args),
			         sizeof p->args - strlen(p->args),
			         ",frames=%u", QUOTA_CLIENT_DEFAULT);
	}
	if (o->budget < 16 || o->budget > o->frames / 2) {
		fprintf(stderr, "kpsim compare: --budget must be 16 .. %u "
		        "frames (half the simulated RAM), not %u\n",
		        o->frames / 2, o->budget);
		return -1;
	}
	return 0;
}

static uint64_t parse_u64_arg(const char *opt, const char *arg, uint64_t min)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(arg, &end, 0);
	if (errno || end == arg || *end || *arg == '-' || v < min) {
		fprintf(stderr, "kpsim compare: --%s needs a number >= %llu, "
		        "not '%s'\n", opt, (unsigned long long)min, arg);
		return 0;
	}
	return v;
}

/* Returns 1 to go on, 0 for --help, -1 after printing why. */
static int parse_compare(int argc, char **argv, struct opts *o)
{
	static const struct option longs[] = {
		{ "kpagers", required_argument, NULL, 'P' },
		{ "kpager", required_argument, NULL, 'p' },
		{ "budget", required_argument, NULL, 'b' },
		{ "attackers", required_argument, NULL, 'a' },
		{ "mem", required_argument, NULL, 'm' },
		{ "costs", required_argument, NULL, 'c' },
		{ "sample", required_argument, NULL, 's' },
		{ "csv", no_argument, NULL, 'C' },
		{ "json", no_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'g' },
		{ "jobs", required_argument, NULL, 'J' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	bool listed = false;
	uint64_t v;
	int c;

	o->frames = MODEL_DEFAULT_MEM / 4096;
	o->budget = BUDGET_DEFAULT;
	o->sample = SAMPLE_DEFAULT;
	{
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		o->jobs = n < 1 ? 1 : n > MAX_POLICIES ? MAX_POLICIES : (uint32_t)n;
	}
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+h", longs, NULL)) != -1) {
		switch (c) {
		case 'P':
			if (add_policies(o, optarg) != 0)
				return -1;
			listed = true;
			break;
		case 'p':
			if (add_policy(o, optarg) != 0)
				return -1;
			listed = true;
			break;
		case 'b':
			if ((v = parse_u64_arg("budget", optarg, 1)) == 0)
				return -1;
			if (v > UINT32_MAX) {
				fprintf(stderr, "kpsim compare: --budget %s is "
				        "more frames than any simulated RAM\n",
				        optarg);
				return -1;
			}
			o->budget = (uint32_t)v;
			o->budget_set = true;
			break;
		case 'a':
			o->attackers = optarg;
			break;
		case 'm':
			if (parse_size(optarg, &o->frames) != 0) {
				fprintf(stderr, "kpsim compare: --mem '%s' is not "
				        "a size in whole pages (e.g. 64M)\n",
				        optarg);
				return -1;
			}
			break;
		case 'c':
			o->costs_path = optarg;
			break;
		case 's':
			if ((o->sample = parse_u64_arg("sample", optarg,
			                               1000)) == 0)
				return -1;
			break;
		case 'C':
			o->csv = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'J':
			if ((v = parse_u64_arg("jobs", optarg, 1)) == 0)
				return -1;
			o->jobs = v > MAX_POLICIES ? MAX_POLICIES : (uint32_t)v;
			break;
		case 'g':
			/* The gnuplot script names its files in single
			 * quotes, and paths are built in 4 KiB. */
			if (strpbrk(optarg, "'\n") != NULL ||
			    strlen(optarg) > 3800 || optarg[0] == '\0') {
				fprintf(stderr, "kpsim compare: --plot '%s': a "
				        "directory of at most 3800 bytes, "
				        "without quotes or newlines\n", optarg);
				return -1;
			}
			o->plot_dir = optarg;
			break;
		case 'h':
			compare_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "kpsim compare: unknown option '%s'\n\n",
			        argv[optind - 1]);
			compare_usage(stderr);
			return -1;
		}
	}
	if (o->csv && o->json) {
		fprintf(stderr, "kpsim compare: --csv or --json, not both\n");
		return -1;
	}
	if (!listed && add_policies(o, "pool,fcfs,quota,ws,clock-typed,"
	                            "pinned") != 0)
		return -1;
	if (apply_budget(o) != 0)
		return -1;
	if (o->costs_path != NULL &&
	    (o->costs = read_text(o->costs_path)) == NULL) {
		fprintf(stderr, "kpsim compare: cannot read the cost table %s: "
		        "%s\n", o->costs_path, strerror(errno ? errno : EIO));
		return -1;
	}
	for (int i = optind; i < argc; i++) {
		struct input *in = &o->in[o->nin];
		const struct scenario *sc = find_scenario(argv[i]);
		struct stat sb;

		if (o->nin == MAX_INPUTS) {
			fprintf(stderr, "kpsim compare: at most %d traces or "
			        "scenarios\n", MAX_INPUTS);
			return -1;
		}
		if (sc == NULL && stat(argv[i], &sb) != 0) {
			fprintf(stderr, "kpsim compare: '%s' is neither a "
			        "scenario (see --help) nor a trace file: %s\n",
			        argv[i], strerror(errno));
			return -1;
		}
		snprintf(in->name, sizeof in->name, "%s", sc ? sc->name :
		         argv[i]);
		in->path = sc ? NULL : argv[i];
		in->attackers = o->attackers ? o->attackers : sc ?
		                sc->attackers : "ptbomb";
		o->nin++;
	}
	if (o->nin == 0) {
		snprintf(o->in[0].name, sizeof o->in[0].name, "%s",
		         scenarios[0].name);
		o->in[0].attackers = o->attackers ? o->attackers :
		                     scenarios[0].attackers;
		o->nin = 1;
	}
	return 1;
}

/* ---- Recording a scenario ---------------------------------------------------------- */

struct text {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void text_add(void *ctx, const struct tr_event *ev)
{
	struct text *t = ctx;

	if (t->oom)
		return;
	if (t->len + TR_LINE_MAX + 2 > t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 1 << 16;
		char *n = realloc(t->buf, cap);

		if (n == NULL) {
			t->oom = true;
			return;
		}
		t->buf = n;
		t->cap = cap;
	}
	t->len += tr_format(ev, t->buf + t->len);
	t->buf[t->len++] = '\n';
}

static const struct sim_elf *find_bundled(void *ctx, const char *name)
{
	struct sim_elf **cache = ctx;
	char msg[SIM_ELF_MSG_SIZE];
	size_t i = 0;

	for (const struct kps_bundled *b = kps_bundled; b->name; b++, i++) {
		if (strcmp(b->name, name) != 0)
			continue;
		if (cache[i] == NULL &&
		    sim_elf_load_buffer(b->elf, b->size, &cache[i], msg,
		                        sizeof msg) != SIM_ELF_OK)
			return NULL;
		return cache[i];
	}
	return NULL;
}

/* Spawns a bundled program from "name arg ...". */
static int spawn_words(struct sim_machine *m, struct sim_elf **cache,
                       const char *words, char *why, size_t why_len)
{
	char buf[256], *av[16], *save = NULL;
	const struct sim_elf *img;
	int ac = 0;

	snprintf(buf, sizeof buf, "%s", words);
	for (char *w = strtok_r(buf, " ", &save); w != NULL && ac < 15;
	     w = strtok_r(NULL, " ", &save))
		av[ac++] = w;
	av[ac] = NULL;
	if (ac == 0 || (img = find_bundled(cache, av[0])) == NULL) {
		snprintf(why, why_len, "no bundled program '%s'", words);
		return SIM_EARG;
	}
	return sim_machine_spawn(m, img, av[0], ac, av, NULL, why, why_len);
}

/* Runs a scenario's programs on the emulated machine and keeps the
 * recording.  0, or -1 after printing why. */
static int record_scenario(const struct opts *o, const struct scenario *sc,
                           struct input *in)
{
	struct sim_machine_config mc = sim_machine_config_default(o->frames);
	struct sim_elf *cache[32] = { 0 };
	struct sim_machine *m = NULL;
	struct text t = { 0 };
	char why[TR_WHY_SIZE];
	int err, rc = -1;

	mc.costs = o->costs;
	mc.find = find_bundled;
	mc.find_ctx = cache;
	mc.record = text_add;
	mc.record_ctx = &t;
	t.cap = 1 << 16;
	if ((t.buf = malloc(t.cap)) == NULL) {
		fprintf(stderr, "kpsim compare: out of host memory\n");
		return -1;
	}
	t.len = (size_t)snprintf(t.buf, t.cap, "%s %u\n# scenario %s\n",
	                         TR_MAGIC, TR_VERSION, sc->name);
	err = sim_machine_create(&mc, &m, why, sizeof why);
	for (size_t i = 0; err == SIM_OK && i < 6 && sc->programs[i]; i++)
		err = spawn_words(m, cache, sc->programs[i], why, sizeof why);
	if (err == SIM_OK)
		err = sim_machine_run(m, why, sizeof why);
	if (err != SIM_OK)
		fprintf(stderr, "kpsim compare: scenario %s: %s\n", sc->name,
		        why);
	else if (t.oom)
		fprintf(stderr, "kpsim compare: scenario %s: out of host "
		        "memory\n", sc->name);
	else
		rc = 0;
	sim_machine_destroy(m);
	for (size_t i = 0; i < 32; i++)
		sim_elf_destroy(cache[i]);
	if (rc == 0) {
		in->text = t.buf;
		in->len = t.len;
	} else {
		free(t.buf);
	}
	return rc;
}

/* ---- Replaying under one policy ------------------------------------------------------ */

struct task_row {
	char name[TR_NAME_MAX + 1];
	uint32_t trace_id;
	bool attacker, killed;
	uint32_t kframes_peak;
	double kframes_mean;
	uint64_t cycles;                /* spent on its events */
};

struct sample {
	uint64_t cycle;
	uint32_t task;                  /* index in the task rows */
	uint32_t kframes;
};

struct result {
	uint64_t cycles, guest_cycles, kmm_cycles;
	uint64_t ufaults, kfaults, revocations, restores, aborts, denials;
	uint64_t events, skipped;
	uint32_t killed, victims_killed;
	uint32_t kframes_peak;          /* all tasks together, sampled */
	double kframes_mean;
	bool has_attacker;
	uint64_t victim_cycles;         /* with the attackers */
	uint64_t alone_cycles;          /* without them */
	uint32_t alone_killed;
	double slowdown;                /* see slowdown_of */
	struct task_row *task;
	size_t ntask;
	uint64_t *fault_cycles;         /* per fault, nested ones included */
	size_t nfault, fault_cap;
	struct sample *smp;
	size_t nsmp, smp_cap;
	uint64_t nested_parent, nested_sum;
	uint64_t total_sum, total_n;    /* kernel frames of all, per sample */
	uint64_t last_cycle;
	uint32_t last_total;
	bool oom;
};

/* Is name one of the comma-separated names? */
static bool named_in(const char *list, const char *name)
{
	size_t n = strlen(name);

	for (const char *p = list; p != NULL && *p;) {
		const char *e = strchr(p, ',');
		size_t len = e ? (size_t)(e - p) : strlen(p);

		if (len == n && strncmp(p, name, n) == 0)
			return true;
		p = e ? e + 1 : NULL;
	}
	return false;
}

static bool grow(void **v, size_t *cap, size_t n, size_t size)
{
	void *p;

	if (n < *cap)
		return true;
	p = realloc(*v, (*cap ? 2 * *cap : 1024) * size);
	if (p == NULL)
		return false;
	*v = p;
	*cap = *cap ? 2 * *cap : 1024;
	return true;
}

static void on_fault(void *ctx, const struct km_fault_rec *r)
{
	struct result *res = ctx;
	uint64_t total;

	switch (r->kind) {
	case KM_FK_USER:
		res->ufaults++;
		break;
	case KM_FK_KERNEL:
		res->kfaults++;
		res->kmm_cycles += r->cycles;
		if (r->decision == KM_D_RESTORED ||
		    r->decision == KM_D_REBUILT || r->decision == KM_D_LOST ||
		    r->decision == KM_D_STOPPED || r->decision == KM_D_REJECTED)
			res->restores++;
		break;
	case KM_FK_KPOOL:
		res->kmm_cycles += r->cycles;
		break;
	case KM_FK_REVOKE:
		res->revocations++;
		res->kmm_cycles += r->cycles;
		break;
	}
	if (r->decision == KM_D_ABORTED)
		res->aborts++;
	if (r->decision == KM_D_DENIED)
		res->denials++;
	/* A fault's own cycles and those of the faults it raised (they
	 * are reported first, with it as their parent). */
	if (r->parent != 0) {
		if (res->nested_parent != r->parent)
			res->nested_sum = 0;
		res->nested_parent = r->parent;
		res->nested_sum += r->cycles;
		return;
	}
	total = r->cycles;
	if (res->nested_parent == r->seq)
		total += res->nested_sum;
	res->nested_parent = res->nested_sum = 0;
	if (!grow((void **)&res->fault_cycles, &res->fault_cap, res->nfault,
	          sizeof *res->fault_cycles)) {
		res->oom = true;
		return;
	}
	res->fault_cycles[res->nfault++] = total;
}

/* Samples: kept for the plots; the sum of all tasks' frames per sample
 * point for the totals. */
struct sampler {
	struct result *res;
	struct tr_replay *r;
	bool keep;
};

static void on_sample(void *ctx, uint64_t cycle, size_t task,
                      uint32_t kframes)
{
	struct sampler *s = ctx;
	struct result *res = s->res;

	if (cycle != res->last_cycle) {
		if (res->last_cycle != 0) {
			res->total_sum += res->last_total;
			res->total_n++;
			if (res->last_total > res->kframes_peak)
				res->kframes_peak = res->last_total;
		}
		res->last_cycle = cycle;
		res->last_total = 0;
	}
	res->last_total += kframes;
	if (!s->keep)
		return;
	if (!grow((void **)&res->smp, &res->smp_cap, res->nsmp,
	          sizeof *res->smp)) {
		res->oom = true;
		return;
	}
	res->smp[res->nsmp++] = (struct sample){ cycle, (uint32_t)task,
	                                         kframes };
}

/* An event's task, for leaving the attackers out. */
struct filter {
	const char *attackers;
	uint8_t task[TR_ID_MAX + 1];    /* 1: an attacker task */
	uint8_t thread[TR_ID_MAX + 1];  /* 1: one of its threads */
};

/* Updates the filter and says whether ev belongs to an attacker. */
static bool attacker_event(struct filter *f, const struct tr_event *ev)
{
	switch (ev->kind) {
	case TR_TASK:
		f->task[ev->a] = named_in(f->attackers, ev->name);
		return f->task[ev->a];
	case TR_ENDTASK: case TR_UNMAP:
		return f->task[ev->a];
	case TR_THREAD:
		f->thread[ev->a] = f->task[ev->b];
		return f->thread[ev->a];
	case TR_MAP: case TR_GRANT:
		return f->task[ev->a] || f->task[ev->b];
	case TR_IPC:
		return f->thread[ev->a] || f->thread[ev->b];
	default:
		return f->thread[ev->a];
	}
}

/* A replay's error message. */
struct msg {
	char text[TR_WHY_SIZE + 160];
};

static int open_input(const struct input *in, struct tr_reader **r,
                      struct msg *m)
{
	char why[TR_WHY_SIZE];
	int rc = in->path ? tr_open(in->path, r, why, sizeof why) :
	         tr_open_mem(in->text, in->len, in->name, r, why, sizeof why);

	if (rc != 0)
		snprintf(m->text, sizeof m->text, "%s", why);
	return rc;
}

/*
 * Replays input `in` under policy p; with alone, leaves the attackers'
 * events out.  Fills res (the task rows only when !alone).  0, or -1
 * with why in *m.  Touches nothing but its own result, message and what
 * it makes, so that several run at once; prog (shown on stderr) may be
 * NULL.
 */
static int replay_one(const struct opts *o, const struct input *in,
                      const struct policy *p, bool alone,
                      struct result *res, struct progress *prog,
                      struct msg *m)
{
	struct tr_replay_config cfg = tr_replay_config_default(o->frames);
	struct result scratch;
	struct result *into = alone ? &scratch : res;
	struct sampler smp = { into, NULL, o->plot_dir != NULL && !alone };
	struct filter *flt = NULL;
	struct tr_replay *r = NULL;
	struct tr_reader *rd = NULL;
	struct tr_event ev;
	char why[TR_WHY_SIZE], check[256];
	uint64_t n = 0;
	int got, rc = -1;

	memset(&scratch, 0, sizeof scratch);
	cfg.kmem = p->kmem;
	cfg.kpager = p->pol.ops;
	cfg.kpager_args = p->args;
	cfg.costs = o->costs;
	if (p->kmem == KM_KMEM_POOL)
		cfg.kpool_frames = o->budget;
	cfg.sink = on_fault;
	cfg.sink_ctx = into;
	cfg.sample_every = o->sample;
	cfg.sample = on_sample;
	cfg.sample_ctx = &smp;
	if ((flt = calloc(1, sizeof *flt)) == NULL) {
		snprintf(m->text, sizeof m->text, "out of host memory");
		return -1;
	}
	flt->attackers = in->attackers;
	if (open_input(in, &rd, m) != 0)
		goto out;
	if (tr_replay_create(&cfg, &r, why, sizeof why) != 0) {
		snprintf(m->text, sizeof m->text, "%s under %s: %s", in->name,
		         p->label, why);
		goto out;
	}
	smp.r = r;
	while ((got = tr_next(rd, &ev)) > 0) {
		bool att = attacker_event(flt, &ev);

		if (att && ev.kind == TR_TASK)
			res->has_attacker = true;
		if (alone && att)
			continue;
		if (tr_replay_event(r, &ev, why, sizeof why) != 0) {
			snprintf(m->text, sizeof m->text, "%s under %s: %s",
			         in->name, p->label, why);
			goto out;
		}
		if ((++n & 0xffff) == 0 && prog != NULL)
			progress_show(prog, "kpsim compare", n, tr_offset(rd),
			              tr_size(rd));
	}
	if (got < 0) {
		snprintf(m->text, sizeof m->text, "%s", tr_error(rd));
		goto out;
	}
	tr_replay_finish(r);
	if (!km_check(tr_replay_model(r), check, sizeof check)) {
		snprintf(m->text, sizeof m->text, "%s under %s: the model's "
		         "invariants broke: %s", in->name, p->label, check);
		goto out;
	}
	{
		struct tr_replay_stats st;
		const struct tr_task_result *t;
		size_t nt = 0;

		tr_replay_stats(r, &st);
		while (tr_replay_task(r, nt) != NULL)
			nt++;
		if (alone) {
			for (size_t i = 0; i < nt; i++) {
				t = tr_replay_task(r, i);
				res->alone_cycles += t->cycles;
				res->alone_killed += t->killed;
			}
			rc = 0;
			goto out;
		}
		into->cycles = st.cycles;
		into->guest_cycles = st.guest_cycles;
		into->events = st.events;
		into->skipped = st.skipped;
		into->killed = st.killed;
		if (into->last_cycle != 0) {    /* the last sample point */
			into->total_sum += into->last_total;
			into->total_n++;
			if (into->last_total > into->kframes_peak)
				into->kframes_peak = into->last_total;
		}
		into->kframes_mean = into->total_n ? (double)into->total_sum /
		                     (double)into->total_n : 0;
		if ((into->task = calloc(nt ? nt : 1, sizeof *into->task)) ==
		    NULL) {
			snprintf(m->text, sizeof m->text,
			         "out of host memory");
			goto out;
		}
		into->ntask = nt;
		for (size_t i = 0; i < nt; i++) {
			struct task_row *row = &into->task[i];

			t = tr_replay_task(r, i);
			snprintf(row->name, sizeof row->name, "%s", t->name);
			row->trace_id = t->trace_id;
			row->attacker = named_in(in->attackers, t->name);
			row->killed = t->killed;
			row->kframes_peak = t->kframes_peak;
			row->kframes_mean = t->samples ? (double)t->kframes_sum /
			                    (double)t->samples : 0;
			row->cycles = t->cycles;
			if (!row->attacker) {
				into->victim_cycles += t->cycles;
				into->victims_killed += t->killed;
			}
		}
	}
	if (into->oom) {
		snprintf(m->text, sizeof m->text, "out of host memory");
		goto out;
	}
	rc = 0;
out:
	free(scratch.fault_cycles);
	free(scratch.smp);
	tr_replay_destroy(r);
	tr_close(rd);
	free(flt);
	return rc;
}

/* ---- Output ---------------------------------------------------------------------- */

static double share(const struct result *r)
{
	return r->cycles ? 100.0 * (double)r->kmm_cycles / (double)r->cycles
	                 : 0;
}

/* What the victims' slowdown is: not measured (no attackers, or no other
 * task did any work to compare), victims lost to the attackers, or a
 * ratio. */
enum slowdown { SD_NONE, SD_LOST, SD_RATIO };

static enum slowdown slowdown_of(const struct result *r)
{
	if (!r->has_attacker)
		return SD_NONE;
	if (r->victims_killed > r->alone_killed)
		return SD_LOST;
	return r->alone_cycles > 0 ? SD_RATIO : SD_NONE;
}

/* The victims' slowdown as printed: a ratio, "N lost", or "-". */
static void slowdown_text(const struct result *r, char *buf, size_t len)
{
	switch (slowdown_of(r)) {
	case SD_NONE:
		snprintf(buf, len, "-");
		break;
	case SD_LOST:
		snprintf(buf, len, "%u lost", r->victims_killed -
		         r->alone_killed);
		break;
	case SD_RATIO:
		snprintf(buf, len, "%.3fx", r->slowdown);
		break;
	}
}

/* Row t's label in the per-task table: "*" for an attacker, the name and
 * trace id, and, where the trace used that id for a task of that name
 * before (a shell's processes, one after another), which one it is. */
static void task_label(const struct result *r, size_t t, char *buf,
                       size_t len)
{
	const struct task_row *row = &r->task[t];
	unsigned k = 1;
	const char *suffix;

	for (size_t u = 0; u < t; u++)
		k += r->task[u].trace_id == row->trace_id &&
		     strcmp(r->task[u].name, row->name) == 0;
	if (k == 1) {
		snprintf(buf, len, "%s%s#%u", row->attacker ? "*" : "",
		         row->name, row->trace_id);
		return;
	}
	suffix = k % 100 / 10 == 1 ? "th" : k % 10 == 1 ? "st" :
	         k % 10 == 2 ? "nd" : k % 10 == 3 ? "rd" : "th";
	snprintf(buf, len, "%s%s#%u (%u%s)", row->attacker ? "*" : "",
	         row->name, row->trace_id, k, suffix);
}

static void print_text(const struct opts *o, const struct input *in,
                       struct result *res)
{
	char sd[32];
	int width = 20;

	printf("kpsim compare: %s, budget %u frames (%u KiB) of kernel memory "
	       "per policy\n\n", in->name, o->budget, o->budget * 4);
	printf("%-14s %12s %9s %7s %7s %7s %6s %7s %6s %12s %6s %10s\n",
	       "policy", "kframes", "", "kernel", "revoc-", "re-", "aborts",
	       "denials", "tasks", "kernel-mem", "share", "victims'");
	printf("%-14s %12s %9s %7s %7s %7s %6s %7s %6s %12s %6s %10s\n",
	       "", "peak", "mean", "faults", "ations", "stores", "", "",
	       "lost", "cycles", "", "slowdown");
	for (size_t i = 0; i < o->npol; i++) {
		const struct result *r = &res[i];

		slowdown_text(r, sd, sizeof sd);
		printf("%-14.14s %12u %9.1f %7" PRIu64 " %7" PRIu64 " %7" PRIu64
		       " %6" PRIu64 " %7" PRIu64 " %6u %12" PRIu64 " %5.1f%% "
		       "%10s\n", o->pol[i].label, r->kframes_peak,
		       r->kframes_mean, r->kfaults, r->revocations,
		       r->restores, r->aborts, r->denials, r->killed,
		       r->kmm_cycles, share(r), sd);
	}
	printf("\nkernel frames per task, peak/mean (sampled every %" PRIu64
	       " cycles); * attacker, ! lost\n", o->sample);
	/* The first column is as wide as its longest label. */
	for (size_t t = 0; t < res[0].ntask; t++) {
		char name[64];

		task_label(&res[0], t, name, sizeof name);
		if (strlen(name) > (size_t)width)
			width = (int)strlen(name);
	}
	printf("%-*s", width, "task");
	for (size_t i = 0; i < o->npol; i++)
		printf(" %13.13s", o->pol[i].label);
	printf("\n");
	for (size_t t = 0; t < res[0].ntask; t++) {
		char name[64];

		task_label(&res[0], t, name, sizeof name);
		printf("%-*s", width, name);
		for (size_t i = 0; i < o->npol; i++) {
			const struct task_row *row = t < res[i].ntask ?
			                             &res[i].task[t] : NULL;
			char cell[32] = "-";

			if (row != NULL)
				snprintf(cell, sizeof cell, "%s%u/%.1f",
				         row->killed ? "!" : "",
				         row->kframes_peak, row->kframes_mean);
			printf(" %13s", cell);
		}
		printf("\n");
	}
	printf("\nkframes: kernel frames of all tasks together, sampled.  "
	       "Tasks lost: killed,\nor never created for want of kernel "
	       "memory.  Kernel-mem cycles: kernel page\nfaults, in-kernel "
	       "pool takes and revocations; share: of the policy's total\n"
	       "cycles.  Victims' slowdown: cycles spent on the other tasks' "
	       "events with the\nattackers (%s) over without them, under the "
	       "same policy.\n\n", in->attackers[0] ? in->attackers : "none");
}

static void print_csv_header(void)
{
	printf("input,policy,task,trace_id,attacker,killed,kframes_peak,"
	       "kframes_mean,cycles,kernel_faults,revocations,restores,aborts,"
	       "denials,tasks_killed,kmem_cycles,kmem_share,user_faults,"
	       "victims_slowdown\n");
}

static void print_csv(const struct opts *o, const struct input *in,
                      const struct result *res)
{
	for (size_t i = 0; i < o->npol; i++) {
		const struct result *r = &res[i];
		char sd[32] = "";

		if (slowdown_of(r) == SD_RATIO)
			snprintf(sd, sizeof sd, "%.4f", r->slowdown);
		else if (slowdown_of(r) == SD_LOST)
			snprintf(sd, sizeof sd, "killed");
		printf("%s,%s,all,,,,%u,%.2f,%" PRIu64 ",%" PRIu64 ",%" PRIu64
		       ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%u,%" PRIu64
		       ",%.4f,%" PRIu64 ",%s\n", in->name, o->pol[i].label,
		       r->kframes_peak, r->kframes_mean, r->cycles, r->kfaults,
		       r->revocations, r->restores, r->aborts, r->denials,
		       r->killed, r->kmm_cycles, share(r) / 100, r->ufaults,
		       sd);
		for (size_t t = 0; t < r->ntask; t++) {
			const struct task_row *row = &r->task[t];

			printf("%s,%s,%s,%u,%d,%d,%u,%.2f,%" PRIu64
			       ",,,,,,,,,,\n", in->name, o->pol[i].label,
			       row->name, row->trace_id, row->attacker,
			       row->killed, row->kframes_peak,
			       row->kframes_mean, row->cycles);
		}
	}
}

static void print_json(const struct opts *o, const struct input *in,
                       const struct result *res, bool first)
{
	printf("%s{\"input\": ", first ? "" : ",\n ");
	json_put_string(stdout, in->name);
	printf(", \"budget_frames\": %u, \"attackers\": ", o->budget);
	json_put_string(stdout, in->attackers);
	printf(", \"policies\": [");
	for (size_t i = 0; i < o->npol; i++) {
		const struct result *r = &res[i];

		printf("%s\n  {\"policy\": ", i ? "," : "");
		json_put_string(stdout, o->pol[i].label);
		printf(", \"cycles\": %" PRIu64 ", \"kframes_peak\": %u, "
		       "\"kframes_mean\": %.2f, \"kernel_faults\": %" PRIu64
		       ", \"user_faults\": %" PRIu64 ", \"revocations\": %" PRIu64
		       ", \"restores\": %" PRIu64 ", \"aborts\": %" PRIu64
		       ", \"denials\": %" PRIu64 ", \"tasks_killed\": %u, "
		       "\"kmem_cycles\": %" PRIu64 ", \"kmem_share\": %.6f, "
		       "\"victims_slowdown\": ", r->cycles, r->kframes_peak,
		       r->kframes_mean, r->kfaults, r->ufaults, r->revocations,
		       r->restores, r->aborts, r->denials, r->killed,
		       r->kmm_cycles, share(r) / 100);
		if (slowdown_of(r) == SD_NONE)
			printf("null");
		else if (slowdown_of(r) == SD_LOST)
			printf("\"killed\"");
		else
			printf("%.6f", r->slowdown);
		printf(", \"tasks\": [");
		for (size_t t = 0; t < r->ntask; t++) {
			const struct task_row *row = &r->task[t];

			printf("%s{\"name\": ", t ? ", " : "");
			json_put_string(stdout, row->name);
			printf(", \"trace_id\": %u, \"attacker\": %s, "
			       "\"killed\": %s, \"kframes_peak\": %u, "
			       "\"kframes_mean\": %.2f, \"cycles\": %" PRIu64 "}",
			       row->trace_id, row->attacker ? "true" : "false",
			       row->killed ? "true" : "false",
			       row->kframes_peak, row->kframes_mean, row->cycles);
		}
		printf("]}");
	}
	printf("]}");
}

/* ---- Plots ------------------------------------------------------------------------ */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* A file name part: the label with anything odd replaced. */
static void file_part(char *dst, size_t len, const char *s)
{
	size_t i = 0;

	for (; s[i] && i + 1 < len; i++)
		dst[i] = tr_name_char(s[i]) && s[i] != '+' ? s[i] : '_';
	dst[i] = '\0';
}

static bool have_gnuplot(void)
{
	const char *path = getenv("PATH");
	char buf[4096], *save = NULL;

	snprintf(buf, sizeof buf, "%s", path ? path : "/usr/bin:/bin");
	for (char *d = strtok_r(buf, ":", &save); d != NULL;
	     d = strtok_r(NULL, ":", &save)) {
		char exe[4200];

		snprintf(exe, sizeof exe, "%s/gnuplot", d);
		if (access(exe, X_OK) == 0)
			return true;
	}
	return false;
}

/* Creates DIR/BASE-POLICY-WHAT.dat (its path in path), or prints why. */
static FILE *open_data(const struct opts *o, const char *base,
                       const char *pol, const char *what, char *path,
                       size_t len)
{
	FILE *f;

	snprintf(path, len, "%s/%s-%s-%s.dat", o->plot_dir, base, pol, what);
	if ((f = fopen(path, "w")) == NULL)
		fprintf(stderr, "kpsim compare: %s: %s\n", path,
		        strerror(errno));
	return f;
}

/* Writes the data and the gnuplot script of one input's plots; runs
 * gnuplot if it is there.  0, or -1 after printing why. */
static int plot(const struct opts *o, const struct input *in,
                struct result *res)
{
	char base[96], path[4200], pol[64];
	FILE *gp, *f;
	int rc;

	if (mkdir(o->plot_dir, 0777) != 0 && errno != EEXIST) {
		fprintf(stderr, "kpsim compare: --plot %s: %s\n", o->plot_dir,
		        strerror(errno));
		return -1;
	}
	file_part(base, sizeof base, in->name);
	snprintf(path, sizeof path, "%s/%s.gp", o->plot_dir, base);
	if ((gp = fopen(path, "w")) == NULL) {
		fprintf(stderr, "kpsim compare: %s: %s\n", path,
		        strerror(errno));
		return -1;
	}
	fprintf(gp, "# kpsim compare --plot: %s\nset terminal svg size 900,600 "
	        "dynamic\nset key outside right\nset grid\n", in->name);
	fprintf(gp, "set output '%s/%s-fault-cdf.svg'\nset title 'cycles per "
	        "fault (nested kernel faults included), %s'\nset logscale x\n"
	        "set xlabel 'cycles'\nset ylabel 'fraction of faults'\nplot ",
	        o->plot_dir, base, in->name);
	for (size_t i = 0; i < o->npol; i++) {
		struct result *r = &res[i];

		file_part(pol, sizeof pol, o->pol[i].label);
		if ((f = open_data(o, base, pol, "faults", path,
		                   sizeof path)) == NULL) {
			fclose(gp);
			return -1;
		}
		if (r->nfault > 0)      /* (none: no array to sort) */
			qsort(r->fault_cycles, r->nfault,
			      sizeof *r->fault_cycles, cmp_u64);
		for (size_t k = 0; k < r->nfault; k++)
			fprintf(f, "%" PRIu64 " %.6f\n", r->fault_cycles[k],
			        (double)(k + 1) / (double)r->nfault);
		fclose(f);
		fprintf(gp, "%s'%s' with steps title '%s'", i ? ", " : "",
		        path, o->pol[i].label);
	}
	fprintf(gp, "\nunset logscale x\n");
	for (size_t i = 0; i < o->npol; i++) {
		struct result *r = &res[i];

		file_part(pol, sizeof pol, o->pol[i].label);
		if ((f = open_data(o, base, pol, "kframes", path,
		                   sizeof path)) == NULL) {
			fclose(gp);
			return -1;
		}
		/* One block per task (gnuplot's index), in trace order. */
		for (size_t t = 0; t < r->ntask; t++) {
			fprintf(f, "# %s#%u\n", r->task[t].name,
			        r->task[t].trace_id);
			for (size_t k = 0; k < r->nsmp; k++)
				if (r->smp[k].task == t)
					fprintf(f, "%" PRIu64 " %u\n",
					        r->smp[k].cycle,
					        r->smp[k].kframes);
			fprintf(f, "\n\n");
		}
		fclose(f);
		fprintf(gp, "set output '%s/%s-%s-kframes.svg'\nset title "
		        "'kernel frames per task under %s, %s'\nset xlabel "
		        "'cycle'\nset ylabel 'kernel frames'\nplot ", o->plot_dir,
		        base, pol, o->pol[i].label, in->name);
		/* Tasks never sampled (never created) have empty blocks. */
		{
			const char *sep = "";

			for (size_t t = 0; t < r->ntask; t++) {
				bool any = false;

				for (size_t k = 0; k < r->nsmp && !any; k++)
					any = r->smp[k].task == t;
				if (!any)
					continue;
				fprintf(gp, "%s'%s' index %zu with steps title "
				        "'%s%s#%u (%zu)'", sep, path, t,
				        r->task[t].attacker ? "*" : "",
				        r->task[t].name, r->task[t].trace_id,
				        t + 1);
				sep = ", ";
			}
			fprintf(gp, "%s\n", sep[0] ? "" : "0 notitle");
		}
	}
	fclose(gp);
	snprintf(path, sizeof path, "%s/%s.gp", o->plot_dir, base);
	if (!have_gnuplot()) {
		fprintf(stderr, "kpsim compare: gnuplot is not installed "
		        "(apt-get install gnuplot-nox): the data and the script "
		        "are in %s; 'gnuplot %s' draws them\n", o->plot_dir,
		        path);
		return 0;
	}
	{
		char cmd[8500];

		snprintf(cmd, sizeof cmd, "gnuplot '%s'", path);
		if (strchr(path, '\'') != NULL ||
		    (rc = system(cmd)) != 0) {
			fprintf(stderr, "kpsim compare: gnuplot failed on %s\n",
			        path);
			return -1;
		}
	}
	fprintf(stderr, "kpsim compare: plots of %s in %s\n", in->name,
	        o->plot_dir);
	return 0;
}

/* ---- kpsim compare -------------------------------------------------------------------- */

static void free_results(struct result *res, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(res[i].task);
		free(res[i].fault_cycles);
		free(res[i].smp);
	}
}

/* Policy i's replays: the work, and the work without its attackers if
 * it has any.  0, or 1 with why in *m. */
static int replay_policy(const struct opts *o, const struct input *in,
                         size_t i, struct result *r, struct progress *prog,
                         struct msg *m)
{
	if (replay_one(o, in, &o->pol[i], false, r, prog, m) != 0)
		return 1;
	if (!r->has_attacker)
		return 0;
	if (replay_one(o, in, &o->pol[i], true, r, prog, m) != 0)
		return 1;
	r->slowdown = r->alone_cycles ? (double)r->victim_cycles /
	              (double)r->alone_cycles : 0;
	return 0;
}

/* Prints why a replay failed, below any progress line; returns 1. */
static int replay_failed(struct progress *prog, const struct msg *m)
{
	progress_end(prog);
	fprintf(stderr, "kpsim compare: %s\n", m->text);
	return 1;
}

/* Replays input `in` under every policy into res[], one after another,
 * up to the first that fails.  0, or 1 after printing why. */
static int replay_each(const struct opts *o, const struct input *in,
                       struct result *res, struct progress *prog)
{
	struct msg m;

	for (size_t i = 0; i < o->npol; i++)
		if (replay_policy(o, in, i, &res[i], prog, &m) != 0)
			return replay_failed(prog, &m);
	return 0;
}

/* The policies not yet taken, shared by the threads of replay_all. */
struct pool_of_work {
	const struct opts *o;
	const struct input *in;
	struct result *res;
	struct progress *prog;          /* shown by policy 0's replays */
	pthread_mutex_t lock;
	size_t next;                    /* the next policy to replay */
	bool failed;                    /* a replay failed: take no more */
	int rc[MAX_POLICIES];
	struct msg msg[MAX_POLICIES];
};

static void *replay_worker(void *arg)
{
	struct pool_of_work *w = arg;

	for (;;) {
		size_t i;
		int rc;

		pthread_mutex_lock(&w->lock);
		i = w->failed ? w->o->npol : w->next++;
		pthread_mutex_unlock(&w->lock);
		if (i >= w->o->npol)
			return NULL;
		rc = replay_policy(w->o, w->in, i, &w->res[i],
		                   i == 0 ? w->prog : NULL, &w->msg[i]);
		pthread_mutex_lock(&w->lock);
		w->rc[i] = rc;
		w->failed |= rc != 0;
		pthread_mutex_unlock(&w->lock);
	}
}

/*
 * Replays input `in` under every policy into res[], o->jobs at a time:
 * this thread and up to o->jobs - 1 more each take the next policy not
 * yet taken, until one fails.  (A thread that cannot be made leaves its
 * share to the others.)  Every replay has its own model and policy
 * instance, so the results do not depend on the number of jobs; of the
 * failures, the first policy's is printed, as replay_each would.  0, or
 * 1 after printing why.
 */
static int replay_all(const struct opts *o, const struct input *in,
                      struct result *res, struct progress *prog)
{
	struct pool_of_work w;
	pthread_t th[MAX_POLICIES];
	size_t nth = 0, extra = o->jobs - 1;

	if (o->jobs <= 1 || o->npol <= 1)
		return replay_each(o, in, res, prog);
	memset(&w, 0, sizeof w);
	w.o = o;
	w.in = in;
	w.res = res;
	w.prog = prog;
	if (pthread_mutex_init(&w.lock, NULL) != 0)
		return replay_each(o, in, res, prog);
	if (extra > o->npol - 1)
		extra = o->npol - 1;
	while (nth < extra &&
	       pthread_create(&th[nth], NULL, replay_worker, &w) == 0)
		nth++;
	replay_worker(&w);
	while (nth > 0)
		pthread_join(th[--nth], NULL);
	pthread_mutex_destroy(&w.lock);
	for (size_t i = 0; i < o->npol; i++)
		if (w.rc[i] != 0)
			return replay_failed(prog, &w.msg[i]);
	return 0;
}

int kpsim_compare(int argc, char **argv)
{
	struct opts *o = calloc(1, sizeof *o);
	struct result res[MAX_POLICIES];
	struct progress prog;
	int rc;

	if (o == NULL) {
		fprintf(stderr, "kpsim compare: out of host memory\n");
		return 1;
	}
	rc = parse_compare(argc, argv, o);
	if (rc <= 0) {
		rc = rc == 0 ? 0 : 2;
		goto out;
	}
	rc = 0;
	if (o->csv)
		print_csv_header();
	if (o->json)
		printf("[");
	progress_start(&prog);
	for (size_t k = 0; k < o->nin && rc == 0; k++) {
		struct input *in = &o->in[k];
		const struct scenario *sc = in->path ? NULL :
		                            find_scenario(in->name);

		if (sc != NULL && record_scenario(o, sc, in) != 0) {
			rc = 1;
			break;
		}
		memset(res, 0, sizeof res);
		rc = replay_all(o, in, res, &prog);
		progress_end(&prog);
		if (rc == 0) {
			if (o->csv)
				print_csv(o, in, res);
			else if (o->json)
				print_json(o, in, res, k == 0);
			else
				print_text(o, in, res);
			if (o->plot_dir != NULL && plot(o, in, res) != 0)
				rc = 1;
		}
		free_results(res, o->npol);
	}
	if (o->json)
		printf("]\n");
out:
	for (size_t i = 0; i < o->nin; i++)
		free(o->in[i].text);
	free(o->costs);
	for (size_t i = 0; i < o->npol; i++)
		kp_policy_close(&o->pol[i].pol);
	free(o);
	return rc;
}
