/*
 * The kpsim command line: one function per subcommand, each taking its own
 * argc/argv (argv[0] is the subcommand's name) and returning the process's
 * exit status: 0 on success, 1 when the work failed, 2 for a usage error.
 */
#ifndef KPSIM_CLI_H
#define KPSIM_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "kmodel.h"

/* Fault records as the model reports them, kept in a growing array. */
struct fault_log {
	struct km_fault_rec *rec;
	size_t n, cap;
	bool oom;               /* some record was dropped: no host memory */
};

/* Appends a record (a km_fault_sink body); sets oom if it cannot. */
void fault_log_add(struct fault_log *log, const struct km_fault_rec *r);

int kpsim_demo(int argc, char **argv);
int kpsim_run(int argc, char **argv);
int kpsim_paper(int argc, char **argv);
int kpsim_replay(int argc, char **argv);
int kpsim_compare(int argc, char **argv);
int kpsim_import(int argc, char **argv);
int kpsim_paper_fig2(int argc, char **argv);

/* Progress on stderr for work longer than a second, on a terminal only. */
struct progress {
	bool on;
	struct timespec start;
	bool shown;
};
void progress_start(struct progress *p);
void progress_show(struct progress *p, const char *what, uint64_t events,
                   uint64_t done, uint64_t total);
void progress_end(struct progress *p);

#endif /* KPSIM_CLI_H */
