/*
 * sim: the simulator's public interface.  So far it holds the ELF loader,
 * which turns a static i386 executable into an image a task's pager can
 * back on demand, one page at a time.  It owns the validation of untrusted
 * guest files; everything it accepts fits the guest address space
 * [SIM_ELF_USER_MIN, SIM_ELF_USER_LIMIT) with no two segments sharing a
 * page.  The machine that runs such images is in machine.h.
 */
#ifndef KPSIM_SIM_H
#define KPSIM_SIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_ELF_PAGE_SIZE 4096u          /* in bytes, the i386 small page */
#define SIM_ELF_MAX_SEGMENTS 16u         /* PT_LOAD segments per image */
#define SIM_ELF_USER_MIN 0x00001000u     /* page zero stays unmapped */
#define SIM_ELF_USER_LIMIT 0xBF000000u   /* the UTCB area starts here */
#define SIM_ELF_MAX_FILE (256u << 20)    /* in bytes, sim_elf_load_path cap */
#define SIM_ELF_MSG_SIZE 256u            /* in bytes, enough for any message */

/* Segment rights, the same bit values as ELF's PF_* and L4's fpage rwx. */
#define SIM_ELF_RIGHT_X 1u
#define SIM_ELF_RIGHT_W 2u
#define SIM_ELF_RIGHT_R 4u

enum sim_elf_err {
	SIM_ELF_OK = 0,
	SIM_ELF_ERR_ARG,          /* NULL out, or NULL buffer with length > 0 */
	SIM_ELF_ERR_NOMEM,        /* the host ran out of memory */
	SIM_ELF_ERR_IO,           /* path could not be opened or read */
	SIM_ELF_ERR_LIBELF,       /* libelf failed in a way no check foresaw */
	SIM_ELF_ERR_NOT_ELF,      /* no ELF magic */
	SIM_ELF_ERR_TRUNCATED,    /* ELF magic, but the header is cut short */
	SIM_ELF_ERR_CLASS,        /* not ELFCLASS32 */
	SIM_ELF_ERR_DATA,         /* not ELFDATA2LSB */
	SIM_ELF_ERR_VERSION,      /* not EV_CURRENT */
	SIM_ELF_ERR_MACHINE,      /* not EM_386 */
	SIM_ELF_ERR_TYPE,         /* not ET_EXEC (PIE, .o, core) */
	SIM_ELF_ERR_PHDR_TABLE,   /* program header table outside the file */
	SIM_ELF_ERR_DYNAMIC,      /* PT_INTERP or PT_DYNAMIC present */
	SIM_ELF_ERR_NO_LOAD,      /* no non-empty PT_LOAD segment */
	SIM_ELF_ERR_TOO_MANY,     /* more than SIM_ELF_MAX_SEGMENTS PT_LOADs */
	SIM_ELF_ERR_FILE_RANGE,   /* segment bytes lie outside the file */
	SIM_ELF_ERR_FILESZ,       /* p_filesz > p_memsz */
	SIM_ELF_ERR_CONGRUENCE,   /* p_vaddr != p_offset mod page size */
	SIM_ELF_ERR_ADDRESS,      /* wraps, below USER_MIN or past USER_LIMIT */
	SIM_ELF_ERR_OVERLAP,      /* two PT_LOADs share a page */
	SIM_ELF_ERR_ENTRY,        /* entry not in an executable PT_LOAD */
	SIM_ELF_ERR_COUNT         /* number of codes; not an error */
};

/* One PT_LOAD segment, as validated. Read-only for callers. */
struct sim_elf_segment {
	uint32_t vaddr;   /* guest virtual address of the first byte */
	uint32_t memsz;   /* in bytes, > 0, >= filesz */
	uint32_t filesz;  /* in bytes taken from the file; the rest is zero */
	uint32_t offset;  /* file offset of the byte at vaddr */
	unsigned rights;  /* SIM_ELF_RIGHT_* bits, from p_flags */
};

/* A loaded image. Opaque; immutable once loaded, so it may be shared. */
struct sim_elf;

/*
 * Validates the ELF file in buf[0, len) and builds an image of it. The image
 * keeps a private copy of the file: buf is only borrowed for the call.
 * msg (may be NULL when msg_size is 0) receives a NUL-terminated message
 * naming the problem with its numbers, e.g. "segment 2: [0x08049000,
 * 0x0804a100) overlaps segment 1 at page 0x08049000"; segments are named by
 * their index in the program header table. SIM_ELF_MSG_SIZE is always enough.
 * Returns SIM_ELF_OK and sets *out to a new image (free it with
 * sim_elf_destroy), msg set to "". On error returns the code of the first
 * problem found, *out is NULL (when out is not NULL) and nothing is leaked.
 * Never aborts, whatever the bytes: this is the entry point for fuzzing.
 */
enum sim_elf_err sim_elf_load_buffer(const void *buf, size_t len,
                                     struct sim_elf **out,
                                     char *msg, size_t msg_size);

/*
 * Reads the file at path (at most SIM_ELF_MAX_FILE bytes) and loads it as
 * sim_elf_load_buffer does. Same results; SIM_ELF_ERR_IO, with the path and
 * the reason in msg, when the file cannot be opened or read, or is too big.
 */
enum sim_elf_err sim_elf_load_path(const char *path, struct sim_elf **out,
                                   char *msg, size_t msg_size);

/* Frees img and everything it owns. Cannot fail; accepts NULL. */
void sim_elf_destroy(struct sim_elf *img);

/*
 * Accessors. img must be an image from a successful load (not NULL); none
 * of them changes it, so concurrent readers need no lock.
 */

/* The entry point; always inside an executable segment. */
uint32_t sim_elf_entry(const struct sim_elf *img);

/* Number of segments, 1 to SIM_ELF_MAX_SEGMENTS, in program header order. */
size_t sim_elf_segment_count(const struct sim_elf *img);

/*
 * Segment i, or NULL when i >= sim_elf_segment_count(img). The pointer is
 * borrowed from img and stays valid until sim_elf_destroy(img).
 */
const struct sim_elf_segment *sim_elf_segment(const struct sim_elf *img,
                                              size_t i);

/*
 * The segment whose pages cover va (any address in a page the segment
 * touches, so also the bytes before vaddr in its first page), or NULL.
 * At most one segment qualifies: loading refused page-level overlap.
 * Borrowed as for sim_elf_segment.
 */
const struct sim_elf_segment *sim_elf_segment_at(const struct sim_elf *img,
                                                 uint32_t va);

/*
 * The initial contents of the page containing va (va need not be aligned):
 * the segment's file bytes where the page meets [vaddr, vaddr + filesz),
 * zero elsewhere: bss, the tail after the last file byte, and the bytes of
 * the first page before vaddr (not part of the segment, so not exposed).
 * Returns true and fills out when va lies in a page of some segment
 * (sim_elf_segment_at gives its rights); returns false and leaves out
 * untouched otherwise.
 */
bool sim_elf_page(const struct sim_elf *img, uint32_t va,
                  uint8_t out[SIM_ELF_PAGE_SIZE]);

/* A static one-line description of err; "unknown error" when out of range. */
const char *sim_elf_strerror(enum sim_elf_err err);

#endif /* KPSIM_SIM_H */
