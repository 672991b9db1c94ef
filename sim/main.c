/*
 * kpsim: the command-line entry point.  It only dispatches to the
 * subcommands; each lives in its own file.
 */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	{ "demo", kpsim_demo,
	  "two Linux-2.4-like tasks on the kernel model, in-kernel pool "
	  "and FCFS kpager" },
	{ "run", kpsim_run,
	  "IA-32 guest programs on the kernel model, with every fault's "
	  "cycles" },
	{ "compare", kpsim_compare,
	  "the same work under several kpager policies, side by side" },
	{ "import", kpsim_import,
	  "a trace of a real program: a valgrind lackey log, a /proc "
	  "snapshot" },
	{ "replay", kpsim_replay,
	  "a trace replayed on the kernel model, without emulation" },
	{ "paper", kpsim_paper,
	  "the paper's figures beside kpsim's (fig2, fig3)" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: kpsim COMMAND [OPTIONS]\n\n"
	        "kpsim simulates user-level management of kernel memory "
	        "(Haeberlen and\nElphinstone, 2003): an L4-style kernel "
	        "whose metadata lives in frames that\nuser-level kpagers "
	        "lend.\n\ncommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %-8s %s\n", commands[i].name,
		        commands[i].summary);
	fprintf(out, "\n'kpsim COMMAND --help' describes a command's "
	        "options.\n");
}

/* The command's status, unless what it printed never arrived: a report
 * or table lost to a full disk or a closed pipe must not pass for one
 * written.  (Files named by options check their own writes.) */
static int stdout_flushed(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "kpsim: writing standard output failed: %s\n",
		        strerror(errno ? errno : EIO));
		return rc == 0 ? 1 : rc;
	}
	return rc;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
	    strcmp(argv[1], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[1], "--version") == 0) {
		printf("kpsim %s\n", KPSIM_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			return stdout_flushed(commands[i].run(argc - 1,
			                                      argv + 1));
	fprintf(stderr, "kpsim: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return 2;
}
