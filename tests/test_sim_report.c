/*
 * The report kpsim run and kpsim replay print (sim/report.c): its JSON is
 * read back with a strict parser (Jansson) and must say what the report
 * holds, for the cases no bundled run shows: a task the kernel kept, a
 * running one, and strings with quotes, control bytes and bytes that are
 * not UTF-8 (file names may hold anything).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "report.h"

/* What f wrote, as one NUL-terminated string (free it). */
typedef void (*writer)(FILE *f, const void *arg);

static char *capture(writer w, const void *arg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	w(f, arg);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void write_json(FILE *f, const void *r)
{
	report_json(f, r);
}

static void write_text(FILE *f, const void *r)
{
	report_text(f, r);
}

static void write_string(FILE *f, const void *s)
{
	json_put_string(f, s);
}

/* text parsed strictly: one value, valid UTF-8, no key twice. */
static json_t *parse(const char *text)
{
	json_error_t err;
	json_t *v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
	                       &err);

	if (v == NULL)
		fail_msg("not JSON (line %d, column %d: %s):\n%s", err.line,
		         err.column, err.text, text);
	return v;
}

/* Two tasks of a replay: one ended and kept by the kernel, one running. */
static void sample(struct report *r, struct report_task task[2])
{
	memset(r, 0, sizeof *r);
	memset(task, 0, 2 * sizeof *task);
	task[0].id = 3;
	task[0].name = "ended";
	snprintf(task[0].exit, sizeof task[0].exit, "%d", -1);
	task[0].kept = true;
	task[0].st.group[KM_KG_N] = 2;
	task[0].st.ufaults = 7;
	task[1].id = 4;
	task[1].name = "runs";
	snprintf(task[1].exit, sizeof task[1].exit, "running");
	r->cycles = 1000;
	r->guest_cycles = 400;
	r->task = task;
	r->ntask = 2;
	r->check = "ok";
	r->replay = true;
	r->events = 12;
	r->kept = 1;
}

static void test_report_json_kept_and_running(void **state)
{
	struct report r;
	struct report_task task[2];
	json_t *v, *t0, *t1;
	char *text;

	(void)state;
	sample(&r, task);
	text = capture(write_json, &r);
	v = parse(text);
	assert_int_equal(json_integer_value(json_object_get(v, "kept")), 1);
	assert_int_equal(json_integer_value(json_object_get(v, "events")), 12);
	assert_int_equal(json_integer_value(json_object_get(v,
	                 "kernel_cycles")), 600);
	assert_true(json_is_null(json_object_get(v, "error")));
	assert_string_equal(json_string_value(json_object_get(v, "km_check")),
	                    "ok");
	assert_int_equal(json_array_size(json_object_get(v, "tasks")), 2);
	t0 = json_array_get(json_object_get(v, "tasks"), 0);
	t1 = json_array_get(json_object_get(v, "tasks"), 1);
	/* The kept task: its exit status a number, kept true. */
	assert_true(json_is_integer(json_object_get(t0, "exit")));
	assert_int_equal(json_integer_value(json_object_get(t0, "exit")), -1);
	assert_true(json_is_true(json_object_get(t0, "kept")));
	assert_int_equal(json_integer_value(json_object_get(t0, "N")), 2);
	assert_int_equal(json_integer_value(json_object_get(t0,
	                 "user_faults")), 7);
	/* The running one has neither. */
	assert_null(json_object_get(t1, "exit"));
	assert_null(json_object_get(t1, "kept"));
	assert_string_equal(json_string_value(json_object_get(t1, "program")),
	                    "runs");
	json_decref(v);
	free(text);
}

static void test_report_text_kept(void **state)
{
	struct report r;
	struct report_task task[2];
	char *text;

	(void)state;
	sample(&r, task);
	text = capture(write_text, &r);
	assert_non_null(strstr(text, "replay: 1 ended tasks the kernel could "
	                       "not delete, and kept"));
	assert_non_null(strstr(text, "ended        -1 kept"));
	assert_non_null(strstr(text, "runs         running"));
	free(text);
}

/* Strings that must come back from the parser as they went in. */
static void test_json_put_string_round_trip(void **state)
{
	static const char *const same[] = {
		"", "plain", "quote \" and back\\slash", "tab\tnew\nline\r",
		"\x01\x1f\x7f", "caf\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
		"\xef\xbf\xbf", "\xf4\x8f\xbf\xbf",
	};

	(void)state;
	for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
		char *text = capture(write_string, same[i]);
		json_t *v = parse(text);

		assert_string_equal(json_string_value(v), same[i]);
		json_decref(v);
		free(text);
	}
}

/* Bytes that are not UTF-8 come back as U+FFFD, one per byte, and the
 * text around them as it was. */
static void test_json_put_string_not_utf8(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "a\xff" "b", "a\xef\xbf\xbd" "b" },
		{ "\xc0\x80", "\xef\xbf\xbd\xef\xbf\xbd" },     /* overlong NUL */
		{ "\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
		{ "\xf4\x90\x80\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
		  "\xef\xbf\xbdx" },                            /* > U+10FFFF */
		{ "end \xe2\x82", "end \xef\xbf\xbd\xef\xbf\xbd" },   /* cut */
		{ "\x80" "\"", "\xef\xbf\xbd\"" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = capture(write_string, cases[i].in);
		json_t *v = parse(text);

		assert_string_equal(json_string_value(v), cases[i].out);
		json_decref(v);
		free(text);
	}
}

/* A run's error with every kind of awkward byte stays one JSON string. */
static void test_report_json_error_string(void **state)
{
	struct report r;
	struct report_task task[2];
	json_t *v;
	char *text;

	(void)state;
	sample(&r, task);
	task[1].name = "pro\"g\xff";
	r.error = "guest /tmp/x\xfe\n\"killed\"";
	r.check = "FAILED: \\ here";
	text = capture(write_json, &r);
	v = parse(text);
	assert_string_equal(json_string_value(json_object_get(v, "error")),
	                    "guest /tmp/x\xef\xbf\xbd\n\"killed\"");
	assert_string_equal(json_string_value(json_object_get(v, "km_check")),
	                    "FAILED: \\ here");
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	                    json_object_get(v, "tasks"), 1), "program")),
	                    "pro\"g\xef\xbf\xbd");
	json_decref(v);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_report_json_kept_and_running),
		cmocka_unit_test(test_report_text_kept),
		cmocka_unit_test(test_json_put_string_round_trip),
		cmocka_unit_test(test_json_put_string_not_utf8),
		cmocka_unit_test(test_report_json_error_string),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
