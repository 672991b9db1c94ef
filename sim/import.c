/*
 * kpsim import: traces of real programs (traces/import.h): a valgrind
 * lackey log, or a snapshot of a running process.
 */
#include "cli.h"
#include "import.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void import_usage(FILE *out)
{
	fprintf(out,
	"usage: kpsim import lackey LOG [-o TRACE] [--name NAME]\n"
	"       kpsim import proc PID|DIR [-o TRACE] [--name NAME]\n\n"
	"Makes a trace (traces/FORMAT.md) of a real program: one task, one\n"
	"thread, a touch at the first access to each page.\n\n"
	"  lackey LOG   the log of valgrind --tool=lackey --trace-mem=yes\n"
	"               --log-file=LOG of an i386 program run under\n"
	"               setarch i386 -3 -R (so every address is below\n"
	"               0xC0000000); '-' reads standard input\n"
	"  proc PID     the pages a running IA-32 process has now\n"
	"               (/proc/PID/maps and /proc/PID/pagemap)\n"
	"  proc DIR     the same from a directory holding maps, pagemap\n"
	"               and (optionally) comm: a snapshot kept or made\n"
	"               elsewhere (traces/regenerate-samples.sh makes one\n"
	"               of a process run by qemu-i386)\n\n"
	"options:\n"
	"  -o, --output TRACE  where to write (default standard output;\n"
	"                      gzip if the name ends in .gz)\n"
	"  --name NAME         the task's name (default: the program's)\n"
	"  --help              this text\n");
}

int kpsim_import(int argc, char **argv)
{
	static const struct option longs[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "name", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *out = "-", *name = NULL, *what, *src;
	struct tr_import_stats st;
	struct tr_writer *w = NULL;
	char why[TR_WHY_SIZE], line[200];
	int c, rc, proc_pid = 0;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "o:h", longs, NULL)) != -1) {
		switch (c) {
		case 'o':
			out = optarg;
			break;
		case 'n':
			name = optarg;
			break;
		case 'h':
			import_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "kpsim import: unknown option or missing "
			        "argument '%s'\n\n", argv[optind - 1]);
			import_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 2 || (strcmp(argv[optind], "lackey") != 0 &&
	                           strcmp(argv[optind], "proc") != 0)) {
		fprintf(stderr, "kpsim import: lackey LOG or proc PID, "
		        "please\n\n");
		import_usage(stderr);
		return 2;
	}
	what = argv[optind];
	src = argv[optind + 1];
	/* Is a proc source a process id (all digits) or a directory? */
	if (strcmp(what, "proc") == 0 && src[strspn(src, "0123456789")] ==
	    '\0') {
		char *end;
		long pid;

		errno = 0;
		pid = strtol(src, &end, 10);
		if (errno || *end || end == src || pid <= 0 || pid > 4194304) {
			fprintf(stderr, "kpsim import: proc: '%s' is not a "
			        "process id\n", src);
			return 2;
		}
		proc_pid = (int)pid;
	} else if (strcmp(what, "proc") == 0) {
		struct stat sb;

		if (stat(src, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
			fprintf(stderr, "kpsim import: proc: '%s' is neither a "
			        "process id nor a directory\n", src);
			return 2;
		}
	}
	if (tr_create(out, &w, why, sizeof why) != 0) {
		fprintf(stderr, "kpsim import: %s\n", why);
		return 2;
	}
	snprintf(line, sizeof line, "kpsim import %s %s", what, src);
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	tr_comment(w, line);
	if (strcmp(what, "lackey") == 0) {
		FILE *in = strcmp(src, "-") == 0 ? stdin : fopen(src, "r");

		if (in == NULL) {
			fprintf(stderr, "kpsim import: %s: %s\n", src,
			        strerror(errno));
			tr_finish(w, why, sizeof why);
			return 2;
		}
		rc = tr_import_lackey(in, strcmp(src, "-") == 0 ? "<stdin>" :
		                      src, name, w, &st, why, sizeof why);
		if (in != stdin)
			fclose(in);
	} else {
		rc = proc_pid > 0 ? tr_import_proc(proc_pid, name, w, &st, why,
		                                   sizeof why) :
		     tr_import_proc_dir(src, name, w, &st, why, sizeof why);
	}
	if (rc != 0) {
		fprintf(stderr, "kpsim import: %s\n", why);
		tr_finish(w, why, sizeof why);
		if (strcmp(out, "-") != 0)
			remove(out);    /* no half a trace */
		return 1;
	}
	if (tr_finish(w, why, sizeof why) != 0) {
		fprintf(stderr, "kpsim import: %s\n", why);
		return 1;
	}
	fprintf(stderr, "kpsim import: %" PRIu64 " lines, %" PRIu64
	        " instructions, %" PRIu64 " data accesses, %" PRIu64
	        " pages: %" PRIu64 " events\n", st.lines, st.insns,
	        st.accesses, st.pages, st.events);
	return 0;
}
