/*
 * workloads/bundle.h: the guest programs built with kpsim, compiled into
 * the simulator as static i386 ELF images (embed_elfs.cmake), so that a
 * clean build runs them by name from anywhere.
 */
#ifndef KPSIM_WORKLOADS_BUNDLE_H
#define KPSIM_WORKLOADS_BUNDLE_H

#include <stddef.h>

struct kps_bundled {
	const char *name;               /* "hello", "touch", ... */
	const unsigned char *elf;       /* the file's bytes */
	size_t size;                    /* in bytes */
};

/* Every bundled program, ended by an entry whose name is NULL. */
extern const struct kps_bundled kps_bundled[];

/* The bundled program called `name`, or NULL. */
const struct kps_bundled *kps_bundled_find(const char *name);

#endif /* KPSIM_WORKLOADS_BUNDLE_H */
