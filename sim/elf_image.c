/*
 * The ELF loader: validation of untrusted static i386 executables and the
 * page-sized view of their segments that a pager backs on demand.
 * libelf reads the headers; every check on what they say is made here,
 * before the image is handed out (validate, then commit).
 */
#include "sim.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct sim_elf {
	uint32_t entry;                       /* guest virtual address */
	size_t nsegments;                     /* 1..SIM_ELF_MAX_SEGMENTS */
	struct sim_elf_segment segment[SIM_ELF_MAX_SEGMENTS];
	unsigned char *file;                  /* private copy of the file */
	size_t file_len;                      /* in bytes */
};

static const char *const error_text[SIM_ELF_ERR_COUNT] = {
	[SIM_ELF_OK] = "success",
	[SIM_ELF_ERR_ARG] = "invalid argument",
	[SIM_ELF_ERR_NOMEM] = "out of memory",
	[SIM_ELF_ERR_IO] = "cannot read file",
	[SIM_ELF_ERR_LIBELF] = "libelf error",
	[SIM_ELF_ERR_NOT_ELF] = "not an ELF file",
	[SIM_ELF_ERR_TRUNCATED] = "truncated ELF header",
	[SIM_ELF_ERR_CLASS] = "not a 32-bit ELF file",
	[SIM_ELF_ERR_DATA] = "not a little-endian ELF file",
	[SIM_ELF_ERR_VERSION] = "unknown ELF version",
	[SIM_ELF_ERR_MACHINE] = "not an i386 ELF file",
	[SIM_ELF_ERR_TYPE] = "not a static executable (ET_EXEC)",
	[SIM_ELF_ERR_PHDR_TABLE] = "bad program header table",
	[SIM_ELF_ERR_DYNAMIC] = "dynamically linked executable",
	[SIM_ELF_ERR_NO_LOAD] = "no loadable segment",
	[SIM_ELF_ERR_TOO_MANY] = "too many loadable segments",
	[SIM_ELF_ERR_FILE_RANGE] = "segment outside the file",
	[SIM_ELF_ERR_FILESZ] = "segment file size exceeds memory size",
	[SIM_ELF_ERR_CONGRUENCE] = "segment address and offset disagree mod page size",
	[SIM_ELF_ERR_ADDRESS] = "segment outside user address space",
	[SIM_ELF_ERR_OVERLAP] = "segments overlap",
	[SIM_ELF_ERR_ENTRY] = "entry point not in an executable segment",
};

const char *sim_elf_strerror(enum sim_elf_err err)
{
	if ((unsigned)err >= SIM_ELF_ERR_COUNT || error_text[err] == NULL)
		return "unknown error";
	return error_text[err];
}

/* Writes the message for err into msg (if any room) and returns err, so a
 * check reads "return fail(...)". */
__attribute__((format(printf, 4, 5)))
static enum sim_elf_err fail(char *msg, size_t msg_size, enum sim_elf_err err,
                             const char *fmt, ...)
{
	if (msg != NULL && msg_size > 0) {
		va_list ap;

		va_start(ap, fmt);
		vsnprintf(msg, msg_size, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* Page arithmetic in 64 bits, so that a segment ending at 4 GiB or beyond
 * is a number that compares, not one that wrapped to a small address. */
static uint64_t page_down(uint64_t a)
{
	return a & ~(uint64_t)(SIM_ELF_PAGE_SIZE - 1);
}

static uint64_t page_up(uint64_t a)
{
	return page_down(a + SIM_ELF_PAGE_SIZE - 1);
}

static const char *machine_name(unsigned machine)
{
	switch (machine) {
	case EM_X86_64: return "x86-64";
	case EM_ARM: return "ARM";
	case EM_AARCH64: return "AArch64";
	case EM_RISCV: return "RISC-V";
	case EM_PPC: return "PowerPC";
	case EM_MIPS: return "MIPS";
	case EM_NONE: return "none";
	default: return "unknown";
	}
}

static const char *type_name(unsigned type)
{
	switch (type) {
	case ET_NONE: return "ET_NONE";
	case ET_REL: return "ET_REL, an object file";
	case ET_DYN: return "ET_DYN";
	case ET_CORE: return "ET_CORE, a core dump";
	default: return "unknown";
	}
}

/*
 * The e_ident checks, made on the raw bytes: for a bad class, encoding or
 * version libelf's elf_memory only says "invalid ELF file data" (or parses a
 * 64-bit header), which cannot tell the user which one is wrong. The fixed
 * offsets of e_ident are the same for every ELF file, so this is not a
 * header parser; everything past e_ident is read through libelf.
 */
static enum sim_elf_err check_ident(const unsigned char *b, size_t len,
                                    char *msg, size_t msg_size)
{
	/* Is there a magic number at all? */
	if (len < SELFMAG || memcmp(b, ELFMAG, SELFMAG) != 0)
		return fail(msg, msg_size, SIM_ELF_ERR_NOT_ELF,
		            "no ELF magic (\\x7fELF) in the first bytes of "
		            "the %zu-byte file", len);
	/* Is e_ident complete? */
	if (len < EI_NIDENT)
		return fail(msg, msg_size, SIM_ELF_ERR_TRUNCATED,
		            "file is %zu bytes, e_ident alone needs %d", len,
		            EI_NIDENT);
	/* 32-bit? */
	if (b[EI_CLASS] != ELFCLASS32)
		return fail(msg, msg_size, SIM_ELF_ERR_CLASS,
		            "class %u (%s), expected ELFCLASS32 (%d)",
		            b[EI_CLASS],
		            b[EI_CLASS] == ELFCLASS64 ? "ELFCLASS64" :
		            "invalid", ELFCLASS32);
	/* Little endian, as i386 is? */
	if (b[EI_DATA] != ELFDATA2LSB)
		return fail(msg, msg_size, SIM_ELF_ERR_DATA,
		            "data encoding %u (%s), expected ELFDATA2LSB (%d)",
		            b[EI_DATA],
		            b[EI_DATA] == ELFDATA2MSB ? "big endian" :
		            "invalid", ELFDATA2LSB);
	/* A version we know? */
	if (b[EI_VERSION] != EV_CURRENT)
		return fail(msg, msg_size, SIM_ELF_ERR_VERSION,
		            "e_ident version %u, expected EV_CURRENT (%d)",
		            b[EI_VERSION], EV_CURRENT);
	/* The whole ELF header? */
	if (len < sizeof(Elf32_Ehdr))
		return fail(msg, msg_size, SIM_ELF_ERR_TRUNCATED,
		            "file is %zu bytes, the ELF header needs %zu", len,
		            sizeof(Elf32_Ehdr));
	return SIM_ELF_OK;
}

static enum sim_elf_err check_ehdr(const Elf32_Ehdr *eh, size_t len,
                                   char *msg, size_t msg_size)
{
	uint64_t table_end;

	/* An i386 program? */
	if (eh->e_machine != EM_386)
		return fail(msg, msg_size, SIM_ELF_ERR_MACHINE,
		            "machine %u (%s), expected EM_386 (%d)",
		            eh->e_machine, machine_name(eh->e_machine), EM_386);
	/* A position-dependent executable? PIEs need a relocating loader. */
	if (eh->e_type == ET_DYN)
		return fail(msg, msg_size, SIM_ELF_ERR_TYPE,
		            "type ET_DYN (shared object or PIE), expected "
		            "ET_EXEC (%d): link the guest with -static -no-pie",
		            ET_EXEC);
	if (eh->e_type != ET_EXEC)
		return fail(msg, msg_size, SIM_ELF_ERR_TYPE,
		            "type %u (%s), expected ET_EXEC (%d)", eh->e_type,
		            type_name(eh->e_type), ET_EXEC);
	/* Any program headers? Without them there is nothing to load. */
	if (eh->e_phnum == 0)
		return fail(msg, msg_size, SIM_ELF_ERR_NO_LOAD,
		            "no program headers (e_phnum 0), so no PT_LOAD");
	/* Plain numbering? Linux refuses PN_XNUM executables too. */
	if (eh->e_phnum == PN_XNUM)
		return fail(msg, msg_size, SIM_ELF_ERR_PHDR_TABLE,
		            "e_phnum is PN_XNUM (%u): extended numbering is "
		            "not supported", PN_XNUM);
	/* Entries of the size we read? */
	if (eh->e_phentsize != sizeof(Elf32_Phdr))
		return fail(msg, msg_size, SIM_ELF_ERR_PHDR_TABLE,
		            "program header size %u, expected %zu",
		            eh->e_phentsize, sizeof(Elf32_Phdr));
	/* Table inside the file? libelf quietly clamps e_phnum to what fits,
	 * so a cut-off table must be caught here, from the header's count.
	 * 64-bit sum: e_phoff near 4 GiB must not wrap to a small end. */
	table_end = (uint64_t)eh->e_phoff +
	            (uint64_t)eh->e_phnum * sizeof(Elf32_Phdr);
	if (table_end > len)
		return fail(msg, msg_size, SIM_ELF_ERR_PHDR_TABLE,
		            "program header table [0x%x, 0x%llx) (%u entries) "
		            "extends past the end of the %zu-byte file",
		            eh->e_phoff, (unsigned long long)table_end,
		            eh->e_phnum, len);
	return SIM_ELF_OK;
}

/* Checks one PT_LOAD against the file and the user address space and, if
 * it has any bytes in memory, appends it to img. */
static enum sim_elf_err add_segment(struct sim_elf *img, size_t index,
                                    const GElf_Phdr *ph, size_t len,
                                    char *msg, size_t msg_size)
{
	/* GElf fields are 64-bit but come from 32-bit ones: no overflow. */
	uint64_t vaddr = ph->p_vaddr, memsz = ph->p_memsz;
	uint64_t offset = ph->p_offset, filesz = ph->p_filesz;
	uint64_t end = vaddr + memsz;
	struct sim_elf_segment *seg;

	/* File bytes inside the file? Written as a subtraction so that it
	 * holds for any len, however offset + filesz would round. */
	if (offset > len || filesz > len - offset)
		return fail(msg, msg_size, SIM_ELF_ERR_FILE_RANGE,
		            "segment %zu: file bytes [0x%llx, 0x%llx) extend "
		            "past the end of the %zu-byte file", index,
		            (unsigned long long)offset,
		            (unsigned long long)(offset + filesz), len);
	/* Room in memory for the file bytes? */
	if (filesz > memsz)
		return fail(msg, msg_size, SIM_ELF_ERR_FILESZ,
		            "segment %zu: p_filesz 0x%llx exceeds p_memsz 0x%llx",
		            index, (unsigned long long)filesz,
		            (unsigned long long)memsz);
	/* Empty in memory? Nothing to back; Linux skips these too. */
	if (memsz == 0)
		return SIM_ELF_OK;
	/* Can a page be backed by a page of the file? A pager fills whole
	 * pages, and the file page for va is (va - vaddr + offset). */
	if (vaddr % SIM_ELF_PAGE_SIZE != offset % SIM_ELF_PAGE_SIZE)
		return fail(msg, msg_size, SIM_ELF_ERR_CONGRUENCE,
		            "segment %zu: p_vaddr 0x%08llx and p_offset 0x%llx "
		            "differ mod page size 0x%x (0x%llx vs 0x%llx)",
		            index, (unsigned long long)vaddr,
		            (unsigned long long)offset, SIM_ELF_PAGE_SIZE,
		            (unsigned long long)(vaddr % SIM_ELF_PAGE_SIZE),
		            (unsigned long long)(offset % SIM_ELF_PAGE_SIZE));
	/* Inside user space: not wrapping, above page zero, below the
	 * UTCB area? */
	if (end > UINT64_C(0x100000000))
		return fail(msg, msg_size, SIM_ELF_ERR_ADDRESS,
		            "segment %zu: [0x%08llx, 0x%llx) wraps around the "
		            "end of the 32-bit address space", index,
		            (unsigned long long)vaddr, (unsigned long long)end);
	if (vaddr < SIM_ELF_USER_MIN)
		return fail(msg, msg_size, SIM_ELF_ERR_ADDRESS,
		            "segment %zu: [0x%08llx, 0x%08llx) starts below "
		            "0x%08x (page zero stays unmapped)", index,
		            (unsigned long long)vaddr, (unsigned long long)end,
		            SIM_ELF_USER_MIN);
	if (end > SIM_ELF_USER_LIMIT)
		return fail(msg, msg_size, SIM_ELF_ERR_ADDRESS,
		            "segment %zu: [0x%08llx, 0x%08llx) extends past the "
		            "user limit 0x%08x (the UTCB area)", index,
		            (unsigned long long)vaddr, (unsigned long long)end,
		            SIM_ELF_USER_LIMIT);
	/* Room in the image? The caller counted PT_LOADs first, so this
	 * only fails if it did not; keep it as a guard on the array. */
	if (img->nsegments >= SIM_ELF_MAX_SEGMENTS)
		return fail(msg, msg_size, SIM_ELF_ERR_TOO_MANY,
		            "segment %zu: more than %u PT_LOAD segments", index,
		            SIM_ELF_MAX_SEGMENTS);

	seg = &img->segment[img->nsegments++];
	seg->vaddr = (uint32_t)vaddr;
	seg->memsz = (uint32_t)memsz;
	seg->filesz = (uint32_t)filesz;
	seg->offset = (uint32_t)offset;
	seg->rights = ((ph->p_flags & PF_R) ? SIM_ELF_RIGHT_R : 0) |
	              ((ph->p_flags & PF_W) ? SIM_ELF_RIGHT_W : 0) |
	              ((ph->p_flags & PF_X) ? SIM_ELF_RIGHT_X : 0);
	return SIM_ELF_OK;
}

/* Refuses two segments that touch the same page: a page has one owner, so
 * one set of rights and one source of bytes. index[] maps image segments
 * back to program header numbers for the message. */
static enum sim_elf_err check_overlap(const struct sim_elf *img,
                                      const size_t *index,
                                      char *msg, size_t msg_size)
{
	for (size_t i = 0; i < img->nsegments; i++) {
		const struct sim_elf_segment *a = &img->segment[i];
		uint64_t a_lo = page_down(a->vaddr);
		uint64_t a_hi = page_up((uint64_t)a->vaddr + a->memsz);

		for (size_t j = 0; j < i; j++) {
			const struct sim_elf_segment *b = &img->segment[j];
			uint64_t b_lo = page_down(b->vaddr);
			uint64_t b_hi = page_up((uint64_t)b->vaddr + b->memsz);

			if (a_lo < b_hi && b_lo < a_hi)
				return fail(msg, msg_size, SIM_ELF_ERR_OVERLAP,
				            "segment %zu: [0x%08x, 0x%08llx) "
				            "overlaps segment %zu at page 0x%08llx",
				            index[i], a->vaddr,
				            (unsigned long long)a->vaddr + a->memsz,
				            index[j], (unsigned long long)
				            (a_lo > b_lo ? a_lo : b_lo));
		}
	}
	return SIM_ELF_OK;
}

static enum sim_elf_err check_entry(const struct sim_elf *img,
                                    char *msg, size_t msg_size)
{
	for (size_t i = 0; i < img->nsegments; i++) {
		const struct sim_elf_segment *s = &img->segment[i];

		if (img->entry >= s->vaddr &&
		    (uint64_t)img->entry < (uint64_t)s->vaddr + s->memsz) {
			if (s->rights & SIM_ELF_RIGHT_X)
				return SIM_ELF_OK;
			return fail(msg, msg_size, SIM_ELF_ERR_ENTRY,
			            "entry point 0x%08x lies in segment [0x%08x, "
			            "0x%08llx), which is not executable",
			            img->entry, s->vaddr,
			            (unsigned long long)s->vaddr + s->memsz);
		}
	}
	return fail(msg, msg_size, SIM_ELF_ERR_ENTRY,
	            "entry point 0x%08x lies in no PT_LOAD segment", img->entry);
}

/* Fills img from the libelf view of its own file copy, or says why not.
 * On failure img may hold some segments; the caller discards it. */
static enum sim_elf_err validate(struct sim_elf *img, Elf *elf,
                                 char *msg, size_t msg_size)
{
	size_t len = img->file_len;
	size_t index[SIM_ELF_MAX_SEGMENTS];
	size_t nloads = 0;
	Elf32_Ehdr *eh;
	GElf_Phdr ph;
	enum sim_elf_err err;

	/* Did libelf take it? check_ident already vouched for e_ident. */
	if (elf_kind(elf) != ELF_K_ELF)
		return fail(msg, msg_size, SIM_ELF_ERR_LIBELF,
		            "libelf does not see an ELF file: %s",
		            elf_errmsg(-1));
	eh = elf32_getehdr(elf);
	if (eh == NULL)
		return fail(msg, msg_size, SIM_ELF_ERR_LIBELF,
		            "libelf cannot read the ELF header: %s",
		            elf_errmsg(-1));
	err = check_ehdr(eh, len, msg, msg_size);
	if (err != SIM_ELF_OK)
		return err;
	img->entry = eh->e_entry;

	/* First pass: refuse dynamic programs and count PT_LOADs before
	 * looking at any segment, so the message names the real problem. */
	for (size_t i = 0; i < eh->e_phnum; i++) {
		if (gelf_getphdr(elf, (int)i, &ph) == NULL)
			return fail(msg, msg_size, SIM_ELF_ERR_LIBELF,
			            "libelf cannot read program header %zu: %s",
			            i, elf_errmsg(-1));
		if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
			return fail(msg, msg_size, SIM_ELF_ERR_DYNAMIC,
			            "segment %zu is %s: the program is "
			            "dynamically linked; link it with -static",
			            i, ph.p_type == PT_INTERP ? "PT_INTERP" :
			            "PT_DYNAMIC");
		if (ph.p_type == PT_LOAD)
			nloads++;
	}
	if (nloads > SIM_ELF_MAX_SEGMENTS)
		return fail(msg, msg_size, SIM_ELF_ERR_TOO_MANY,
		            "%zu PT_LOAD segments, at most %u are supported",
		            nloads, SIM_ELF_MAX_SEGMENTS);

	for (size_t i = 0; i < eh->e_phnum; i++) {
		size_t before = img->nsegments;

		if (gelf_getphdr(elf, (int)i, &ph) == NULL)
			return fail(msg, msg_size, SIM_ELF_ERR_LIBELF,
			            "libelf cannot read program header %zu: %s",
			            i, elf_errmsg(-1));
		if (ph.p_type != PT_LOAD)
			continue;
		err = add_segment(img, i, &ph, len, msg, msg_size);
		if (err != SIM_ELF_OK)
			return err;
		if (img->nsegments > before)
			index[before] = i;
	}
	if (img->nsegments == 0)
		return fail(msg, msg_size, SIM_ELF_ERR_NO_LOAD,
		            nloads == 0 ? "no PT_LOAD among %u program headers" :
		            "all PT_LOAD segments among %u program headers are "
		            "empty (p_memsz 0)", eh->e_phnum);
	err = check_overlap(img, index, msg, msg_size);
	if (err != SIM_ELF_OK)
		return err;
	return check_entry(img, msg, msg_size);
}

enum sim_elf_err sim_elf_load_buffer(const void *buf, size_t len,
                                     struct sim_elf **out,
                                     char *msg, size_t msg_size)
{
	struct sim_elf *img;
	enum sim_elf_err err;
	Elf *elf;

	if (msg != NULL && msg_size > 0)
		msg[0] = '\0';
	if (out == NULL)
		return fail(msg, msg_size, SIM_ELF_ERR_ARG, "out is NULL");
	*out = NULL;
	if (buf == NULL && len > 0)
		return fail(msg, msg_size, SIM_ELF_ERR_ARG,
		            "buffer is NULL but length is %zu", len);
	err = check_ident(buf, len, msg, msg_size);
	if (err != SIM_ELF_OK)
		return err;

	/* Copy first: the image must outlive buf, and elf_memory takes a
	 * non-const pointer, so libelf only ever sees memory we own. */
	img = calloc(1, sizeof(*img));
	if (img == NULL)
		return fail(msg, msg_size, SIM_ELF_ERR_NOMEM,
		            "no memory for the image");
	img->file = malloc(len);
	if (img->file == NULL) {
		free(img);
		return fail(msg, msg_size, SIM_ELF_ERR_NOMEM,
		            "no memory for a %zu-byte copy of the file", len);
	}
	memcpy(img->file, buf, len);
	img->file_len = len;

	/* elf_version only records the version we were written for; it must
	 * precede every other libelf call and is idempotent. */
	if (elf_version(EV_CURRENT) == EV_NONE) {
		sim_elf_destroy(img);
		return fail(msg, msg_size, SIM_ELF_ERR_LIBELF,
		            "libelf does not support EV_CURRENT: %s",
		            elf_errmsg(-1));
	}
	elf = elf_memory((char *)img->file, len);
	if (elf == NULL) {
		sim_elf_destroy(img);
		return fail(msg, msg_size, SIM_ELF_ERR_LIBELF,
		            "libelf cannot open the %zu-byte file: %s", len,
		            elf_errmsg(-1));
	}
	err = validate(img, elf, msg, msg_size);
	elf_end(elf);
	if (err != SIM_ELF_OK) {
		sim_elf_destroy(img);
		return err;
	}
	*out = img;
	return SIM_ELF_OK;
}

/* Reads all of fd into a new buffer, up to SIM_ELF_MAX_FILE bytes. Reading
 * to EOF rather than trusting st_size works for pipes too; the cap keeps a
 * path like /dev/zero from eating the host. */
static enum sim_elf_err read_all(int fd, const char *path,
                                 unsigned char **data, size_t *len,
                                 char *msg, size_t msg_size)
{
	unsigned char *buf = NULL;
	size_t used = 0, cap = 0;

	for (;;) {
		ssize_t n;

		if (used == cap) {
			size_t new_cap = cap == 0 ? 65536 : cap * 2;
			unsigned char *bigger;

			/* Full at one byte past the cap: too big. */
			if (cap > SIM_ELF_MAX_FILE) {
				free(buf);
				return fail(msg, msg_size, SIM_ELF_ERR_IO,
				            "%s: larger than the %u-byte limit",
				            path, SIM_ELF_MAX_FILE);
			}
			if (new_cap > SIM_ELF_MAX_FILE)
				new_cap = SIM_ELF_MAX_FILE + (size_t)1;
			bigger = realloc(buf, new_cap);
			if (bigger == NULL) {
				free(buf);
				return fail(msg, msg_size, SIM_ELF_ERR_NOMEM,
				            "%s: no memory to read %zu bytes",
				            path, new_cap);
			}
			buf = bigger;
			cap = new_cap;
		}
		n = read(fd, buf + used, cap - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;

			free(buf);
			return fail(msg, msg_size, SIM_ELF_ERR_IO, "%s: %s",
			            path, strerror(e));
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	*data = buf;
	*len = used;
	return SIM_ELF_OK;
}

enum sim_elf_err sim_elf_load_path(const char *path, struct sim_elf **out,
                                   char *msg, size_t msg_size)
{
	unsigned char *data = NULL;
	size_t len = 0;
	enum sim_elf_err err;
	int fd;

	if (msg != NULL && msg_size > 0)
		msg[0] = '\0';
	if (out == NULL)
		return fail(msg, msg_size, SIM_ELF_ERR_ARG, "out is NULL");
	*out = NULL;
	if (path == NULL)
		return fail(msg, msg_size, SIM_ELF_ERR_ARG, "path is NULL");
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return fail(msg, msg_size, SIM_ELF_ERR_IO, "%s: %s", path,
		            strerror(errno));
	err = read_all(fd, path, &data, &len, msg, msg_size);
	close(fd);
	if (err != SIM_ELF_OK)
		return err;
	/* The buffer loader copies; this extra copy is the price of one
	 * code path for files and fuzz inputs. */
	err = sim_elf_load_buffer(data, len, out, msg, msg_size);
	free(data);
	return err;
}

void sim_elf_destroy(struct sim_elf *img)
{
	if (img == NULL)
		return;
	free(img->file);
	free(img);
}

uint32_t sim_elf_entry(const struct sim_elf *img)
{
	return img->entry;
}

size_t sim_elf_segment_count(const struct sim_elf *img)
{
	return img->nsegments;
}

const struct sim_elf_segment *sim_elf_segment(const struct sim_elf *img,
                                              size_t i)
{
	if (i >= img->nsegments)
		return NULL;
	return &img->segment[i];
}

const struct sim_elf_segment *sim_elf_segment_at(const struct sim_elf *img,
                                                 uint32_t va)
{
	for (size_t i = 0; i < img->nsegments; i++) {
		const struct sim_elf_segment *s = &img->segment[i];

		if (va >= page_down(s->vaddr) &&
		    va < page_up((uint64_t)s->vaddr + s->memsz))
			return s;
	}
	return NULL;
}

bool sim_elf_page(const struct sim_elf *img, uint32_t va,
                  uint8_t out[SIM_ELF_PAGE_SIZE])
{
	const struct sim_elf_segment *s = sim_elf_segment_at(img, va);
	uint64_t page, lo, hi;

	if (s == NULL)
		return false;
	page = page_down(va);
	/* The file-backed part of this page: its intersection with
	 * [vaddr, vaddr + filesz). Loading checked that range against the
	 * file, so the copy below stays inside img->file. */
	lo = page > s->vaddr ? page : s->vaddr;
	hi = (uint64_t)s->vaddr + s->filesz;
	if (hi > page + SIM_ELF_PAGE_SIZE)
		hi = page + SIM_ELF_PAGE_SIZE;
	memset(out, 0, SIM_ELF_PAGE_SIZE);
	if (lo < hi)
		memcpy(out + (lo - page),
		       img->file + s->offset + (lo - s->vaddr), hi - lo);
	return true;
}
