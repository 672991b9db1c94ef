/*
 * Policy arguments, "key=value,key=value": the small parser every policy
 * uses to read and check its arguments.
 */
#include "pagers.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Finds `key` in args; on success *val points at its value and *len is
 * the value's length.  Returns false if absent. */
static bool find_key(const char *args, const char *key, const char **val,
                     size_t *len)
{
	size_t klen = strlen(key);
	const char *p = args;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);

		if (n > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			*val = p + klen + 1;
			*len = n - klen - 1;
			return true;
		}
		p = end ? end + 1 : NULL;
	}
	return false;
}

/* Does the key of `len` bytes at `key` (inside args) occur before it? */
static bool seen_before(const char *args, const char *key, size_t len)
{
	const char *p = args;

	while (p < key) {
		const char *end = strchr(p, ',');

		if (strncmp(p, key, len) == 0 && p[len] == '=')
			return true;
		p = end + 1;    /* key lies further on, so there is a comma */
	}
	return false;
}

int kp_args_check(const char *args, const char *const *known,
                  char *why, size_t why_len)
{
	const char *p = args;

	while (p != NULL && *p != '\0') {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', n);
		bool ok = false;

		if (eq == NULL || eq == p) {
			snprintf(why, why_len, "argument '%.*s' is not "
			         "key=value", (int)n, p);
			return KM_EINVAL;
		}
		for (size_t i = 0; known[i] != NULL; i++)
			if (strlen(known[i]) == (size_t)(eq - p) &&
			    strncmp(p, known[i], (size_t)(eq - p)) == 0)
				ok = true;
		if (!ok) {
			snprintf(why, why_len, "unknown argument '%.*s'",
			         (int)(eq - p), p);
			return KM_EINVAL;
		}
		/* A key given twice is refused: the reader takes the first,
		 * and silently dropping the second hides a typo. */
		if (seen_before(args, p, (size_t)(eq - p))) {
			snprintf(why, why_len, "argument '%.*s' given twice",
			         (int)(eq - p), p);
			return KM_EINVAL;
		}
		p = end ? end + 1 : NULL;
	}
	return KM_OK;
}

int kp_arg_u32(const char *args, const char *key, uint32_t dflt,
               uint32_t *out, char *why, size_t why_len)
{
	const char *val;
	size_t len;
	char buf[32], *end;
	unsigned long long v;

	if (!find_key(args, key, &val, &len)) {
		*out = dflt;
		return KM_OK;
	}
	if (len == 0 || len >= sizeof buf) {
		snprintf(why, why_len, "%s: needs a number", key);
		return KM_EINVAL;
	}
	memcpy(buf, val, len);
	buf[len] = '\0';
	errno = 0;
	v = strtoull(buf, &end, 0);
	if (*end != '\0' || errno != 0 || buf[0] == '-' || v > UINT32_MAX) {
		snprintf(why, why_len, "%s=%s: not a number from 0 to %u", key,
		         buf, UINT32_MAX);
		return KM_EINVAL;
	}
	*out = (uint32_t)v;
	return KM_OK;
}

int kp_arg_choice(const char *args, const char *key,
                  const char *const *choices, unsigned *out, char *why,
                  size_t why_len)
{
	const char *val;
	size_t len, used = 0;
	char list[128];

	*out = 0;
	if (!find_key(args, key, &val, &len))
		return KM_OK;
	for (unsigned i = 0; choices[i] != NULL; i++) {
		if (strlen(choices[i]) == len &&
		    strncmp(val, choices[i], len) == 0) {
			*out = i;
			return KM_OK;
		}
		used += (size_t)snprintf(list + used, sizeof list - used,
		                         "%s%s", i ? ", " : "", choices[i]);
		if (used >= sizeof list)
			used = sizeof list - 1;
	}
	snprintf(why, why_len, "%s=%.*s: must be one of %s", key, (int)len,
	         val, list);
	return KM_EINVAL;
}
