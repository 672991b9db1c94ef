/*
 * traces/trace_int.h: what the reader and the writer share, private to
 * traces/.
 */
#ifndef KPSIM_TRACE_INT_H
#define KPSIM_TRACE_INT_H

#include "trace.h"

/* The kind or system call named by the n bytes at s, or -1. */
int tr_kind_parse(const char *s, size_t n);
int tr_sys_parse(const char *s, size_t n);

/* Checks the ranges of ev's fields (FORMAT.md, "Fields").  0, or -1 with
 * the reason in why. */
int tr_check_fields(const struct tr_event *ev, char *why, size_t why_len);
/* Checks ev's ids against the live ones, and applies ev once checked. */
int tr_state_check(const struct tr_state *s, const struct tr_event *ev,
                   char *why, size_t why_len);
void tr_state_commit(struct tr_state *s, const struct tr_event *ev);

/* Tests: makes r parse every line with the general parser, not the fast
 * path for touch and user lines (the two must agree on every line). */
void tr_reader_general_only(struct tr_reader *r);

#endif /* KPSIM_TRACE_INT_H */
