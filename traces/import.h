/*
 * traces/import.h: traces of real programs.  Two importers turn what Linux
 * tools see of a program into trace events (traces/FORMAT.md) written
 * through a tr_writer: a valgrind lackey memory trace, and a snapshot of
 * a running process (/proc/PID/maps and /proc/PID/pagemap).  Each makes
 * one task with one thread.  Both refuse, with the line or mapping, any
 * address that does not fit IA-32 user space [0, 0xC0000000).
 */
#ifndef KPSIM_IMPORT_H
#define KPSIM_IMPORT_H

#include <stdint.h>
#include <stdio.h>

#include "trace.h"

struct tr_import_stats {
	uint64_t lines;                 /* input lines read */
	uint64_t insns;                 /* instructions (lackey) */
	uint64_t accesses;              /* data accesses (lackey) */
	uint64_t pages;                 /* distinct pages touched */
	uint64_t events;                /* trace events written */
};

/*
 * Imports the output of `valgrind --tool=lackey --trace-mem=yes PROG`
 * (its log: lines "I  ADDR,SIZE", " L ADDR,SIZE", " S ADDR,SIZE",
 * " M ADDR,SIZE", and valgrind's own "==PID==", "--PID--" and "**PID**"
 * lines) read from `in`, which messages call in_name.  It writes:
 *   comments: the log's first valgrind line (the tool), its "Using"
 *   (version) and "Command:" lines;
 *   task 1 NAME, thread 1 1;
 *   a touch at the first access to each page (x for an instruction
 *   fetch, r for a load, w for a store or modify), and another, w, at the
 *   first write to a page first only read or fetched; an access that
 *   straddles pages touches each; each touch carries the instructions
 *   completed since the previous event (the instruction making the
 *   access has not completed);
 *   user 1 N for the instructions after the last touch; endthread, endtask
 *   with the log's "Exit code:" (0 without one).
 * NAME is `name`, or the program's from the log's "Command:" line, or
 * "lackey".  A log with valgrind lines of two processes (a forked child
 * traced into the same file) is refused: lackey's lines do not say whose
 * they are.  Returns 0, or -1 with "IN_NAME:LINE: reason" in why; what
 * was written by then is a trace cut short (the caller removes it).
 */
int tr_import_lackey(FILE *in, const char *in_name, const char *name,
                     struct tr_writer *w, struct tr_import_stats *st,
                     char *why, size_t why_len);

/*
 * Imports a snapshot of process `pid`: every page of its mappings that
 * /proc/PID/pagemap says is present or swapped, in address order, touched
 * with x (an executable mapping), w (a writable one) or r; then the task
 * ends.  NAME is `name`, or /proc/PID/comm.  A process with a mapping at
 * or above 0xC0000000 (any 64-bit process) is refused, naming the
 * mapping.  Reading the pagemap's present bits needs no privilege.
 * Returns 0, or -1 with the reason in why.
 */
int tr_import_proc(int pid, const char *name, struct tr_writer *w,
                   struct tr_import_stats *st, char *why, size_t why_len);

/* The same from a directory holding maps, pagemap and (optionally) comm:
 * /proc/PID itself, or a snapshot copied from it or made by hand (a
 * process run by qemu-i386, whose own /proc files are 64-bit). */
int tr_import_proc_dir(const char *dir, const char *name,
                       struct tr_writer *w, struct tr_import_stats *st,
                       char *why, size_t why_len);

/* The same from files: a maps text and a pagemap (64-bit entries indexed
 * by virtual page number), for tests and for snapshots taken elsewhere.
 * maps is read once, whole, and checked (every line well formed, in
 * address order, below 3 GiB) before the first event is written. */
int tr_import_proc_files(const char *maps_path, const char *pagemap_path,
                         const char *name, struct tr_writer *w,
                         struct tr_import_stats *st, char *why,
                         size_t why_len);

#endif /* KPSIM_IMPORT_H */
