/* workloads/bundle.c: finds a bundled guest program by name. */
#include "bundle.h"

#include <string.h>

const struct kps_bundled *kps_bundled_find(const char *name)
{
	for (const struct kps_bundled *b = kps_bundled; b->name != NULL; b++)
		if (strcmp(b->name, name) == 0)
			return b;
	return NULL;
}
