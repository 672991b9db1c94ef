/*
 * The registry of built-in policies.
 */
#include "pagers.h"

#include <string.h>

static const struct kp_ops *const builtin[] = {
	&kp_fcfs_ops, &kp_quota_ops, &kp_ws_ops, &kp_clock_typed_ops,
	&kp_pinned_ops,
};
static const char *const builtin_names[] = {
	"fcfs", "quota", "ws", "clock-typed", "pinned", NULL
};

#define NBUILTIN (sizeof builtin / sizeof builtin[0])

const struct kp_ops *kp_find(const char *name)
{
	for (size_t i = 0; i < NBUILTIN; i++)
		if (name != NULL && strcmp(builtin[i]->name, name) == 0)
			return builtin[i];
	return NULL;
}

const char *const *kp_names(void)
{
	return builtin_names;
}

