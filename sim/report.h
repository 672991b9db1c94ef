/*
 * sim/report.h: what kpsim run and kpsim replay share: the options that
 * configure the kernel model, the fault-record CSV, and the report of a
 * run (text or JSON), so that a run and the replay of its recording print
 * the same thing for the same result.
 */
#ifndef KPSIM_SIM_REPORT_H
#define KPSIM_SIM_REPORT_H

#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "kmodel.h"
#include "pagers.h"
#include "replay.h"

#define MODEL_DEFAULT_MEM (64u << 20)

/* The options that configure the model, as getopt_long entries. */
#define MODEL_OPTIONS \
	{ "kmem", required_argument, NULL, 'k' }, \
	{ "kpager", required_argument, NULL, 'p' }, \
	{ "mem", required_argument, NULL, 'm' }, \
	{ "costs", required_argument, NULL, 'c' }, \
	{ "faults", required_argument, NULL, 'f' }, \
	{ "json", no_argument, NULL, 'j' }

/* Their help text. */
#define MODEL_OPTIONS_HELP \
	"  --kmem pool|kpager     kernel memory from the in-kernel pool\n" \
	"                         (default) or from a user-level kpager\n" \
	"  --kpager POLICY[:ARGS] the kpager policy, built in or a shared\n" \
	"                         object's path (implies --kmem kpager);\n" \
	"                         default fcfs\n" \
	"  --mem SIZE             simulated RAM, e.g. 64M (default), 1G - 8K max\n" \
	"  --costs FILE           the cost table (default: Pentium II/400)\n" \
	"  --faults FILE.csv      one row per fault: seq, parent, cycle, task,\n" \
	"                         thread, kind, address, kernel page, data\n" \
	"                         type, its task, decision, pfn, cycles, and\n" \
	"                         the costs charged (name*count)\n" \
	"  --json                 a summary on stdout\n"

struct model_opts {
	const char *cmd;                /* "kpsim run", for messages */
	uint32_t frames;
	enum km_kmem kmem;
	bool kmem_set;
	const char *kpager;             /* "POLICY[:ARGS]" */
	struct kp_policy policy;        /* --kpager's, built in or loaded */
	const char *costs_path;
	char *costs;                    /* the file's text */
	const char *faults_path;
	bool json;
};

void model_opts_init(struct model_opts *o, const char *cmd);
/* Takes option c with its argument: 1 if it was one of MODEL_OPTIONS, 0
 * if not, -1 after printing why it is wrong. */
int model_opt(struct model_opts *o, int c, const char *arg);
/* After the options: opens the policy, reads the cost table.  0, or -1
 * after printing why. */
int model_opts_finish(struct model_opts *o);
/* After the model that used them is gone. */
void model_opts_free(struct model_opts *o);

/* A size in whole pages ("64M", "1G", "4096"): 0 and *frames, or -1. */
int parse_size(const char *s, uint32_t *frames);
/* A whole file's text (< 1 MiB), or NULL with errno set. */
char *read_text(const char *path);
/* s as a JSON string, always valid: bytes that are not UTF-8 become
 * U+FFFD. */
void json_put_string(FILE *f, const char *s);

/* The fault-record CSV: opens it and writes the header (NULL after
 * printing why), one row per record. */
FILE *faults_csv_open(const char *path, const char *cmd);
void faults_csv_row(FILE *f, const struct km_fault_rec *r);

struct report_task {
	km_task_t id;
	const char *name;
	char exit[16];                  /* the status, or "running" */
	bool kept;                      /* ended, but the kernel kept it */
	struct km_task_stats st;
};

/* What became of revoked kernel pages, counted from the fault records. */
struct revocations {
	uint64_t revoked, discarded;    /* revocations; their forms dropped */
	uint64_t restored, rebuilt;     /* came back from the form; rebuilt */
	uint64_t refused;               /* a form the kernel refused */
	uint64_t lost, stopped;         /* came back empty; a thread stopped */
};
void revocations_count(struct revocations *v, const struct km_fault_rec *r);

struct report {
	uint64_t cycles, guest_insns, guest_cycles, syscalls, ipcs;
	struct km_stats ks;
	const struct report_task *task;
	size_t ntask;
	const struct tr_marker *mark;
	size_t nmark;
	const char *check;              /* km_check's verdict */
	const char *error;              /* why the run stopped, or NULL */
	struct revocations rv;
	bool replay;                    /* a replay: events and skipped */
	uint64_t events, skipped;
	uint32_t kept;                  /* ended tasks the kernel kept */
};

void report_text(FILE *f, const struct report *r);
void report_json(FILE *f, const struct report *r);

#endif /* KPSIM_SIM_REPORT_H */
