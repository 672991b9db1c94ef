/*
 * The fault records a command keeps: a growing array (see cli.h).
 */
#include "cli.h"

#include <stdlib.h>

void fault_log_add(struct fault_log *log, const struct km_fault_rec *r)
{
	if (log->n == log->cap) {
		size_t cap = log->cap ? 2 * log->cap : 256;
		struct km_fault_rec *n = realloc(log->rec, cap * sizeof *n);

		if (n == NULL) {
			log->oom = true;
			return;
		}
		log->rec = n;
		log->cap = cap;
	}
	log->rec[log->n++] = *r;
}
