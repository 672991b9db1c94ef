/*
 * json_check FILE...: is each file exactly one JSON value, strictly formed
 * (RFC 8259: UTF-8, no raw control bytes in strings, no bare words, no
 * key twice in an object), with nothing after it but white space?
 * Researchers feed kpsim's --json output to their own tools; output that
 * only looks like JSON must fail here, not there.  The parser is
 * Jansson's.  Prints the first fault of each bad file; exit status 1 if
 * any, 2 for a file it cannot read.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

int main(int argc, char **argv)
{
	int bad = 0;

	if (argc < 2) {
		fprintf(stderr, "usage: json_check FILE... ('-': standard "
		        "input)\n");
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		FILE *f = strcmp(argv[i], "-") == 0 ? stdin :
		          fopen(argv[i], "rb");
		json_error_t err;
		json_t *v;

		if (f == NULL) {
			fprintf(stderr, "json_check: %s: %s\n", argv[i],
			        strerror(errno));
			return 2;
		}
		v = json_loadf(f, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES,
		               &err);
		if (f != stdin)
			fclose(f);
		if (v == NULL) {
			fprintf(stderr, "%s: line %d, column %d (byte %d): %s\n",
			        argv[i], err.line, err.column, err.position,
			        err.text);
			bad = 1;
		}
		json_decref(v);
	}
	return bad;
}
