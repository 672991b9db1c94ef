/*
 * The kpsim command line: one function per subcommand, each taking its own
 * argc/argv (argv[0] is the subcommand's name) and returning the process's
 * exit status: 0 on success, 1 when the work failed, 2 for a usage error.
 */
#ifndef KPSIM_CLI_H
#define KPSIM_CLI_H

int kpsim_demo(int argc, char **argv);
int kpsim_run(int argc, char **argv);
int kpsim_paper(int argc, char **argv);

#endif /* KPSIM_CLI_H */
