/*
 * Tests of the ELF loader: a hand-assembled minimal static i386 executable
 * that must load, one test per kind of damage that must be refused with its
 * own error, truncation and mutation loops that must never crash, and a real
 * binary built by gcc (its path is argv[1]).
 */
#include "sim.h"

#include <elf.h> /* the system's: Elf32_Ehdr, PT_* */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/*
 * The minimal executable, laid out as a struct so tests damage it by field:
 *   0x0000  ELF header
 *   0x0034  program headers: text, data, GNU_STACK, one spare (PT_NULL)
 *   0x00c0  code; the entry point          } text: offset 0, 0x08048000,
 *   0x0100  padding                        }   filesz = memsz = 0x100, R X
 *   0x1010  data, 0x1100 bytes               data: offset 0x1010, 0x0804a010,
 *                                              filesz 0x1100, memsz 0x3000, RW
 * The data segment starts mid-page, covers two file pages (the second one
 * partly) and ends in three pages of bss; it ends at the end of the file,
 * so every shorter file must be refused.
 */
#define TEXT_VA 0x08048000u
#define ENTRY_VA 0x080480c0u
#define DATA_VA 0x0804a010u
#define DATA_OFF 0x1010u
#define DATA_FILESZ 0x1100u
#define DATA_MEMSZ 0x3000u
#define NPHDR 4

struct test_file {
	Elf32_Ehdr eh;
	Elf32_Phdr ph[NPHDR];
	uint8_t pad0[0xc0 - sizeof(Elf32_Ehdr) - NPHDR * sizeof(Elf32_Phdr)];
	uint8_t code[0x40];
	uint8_t pad1[DATA_OFF - 0x100];
	uint8_t data[DATA_FILESZ];
};

_Static_assert(offsetof(struct test_file, ph) == 0x34, "phdrs at 0x34");
_Static_assert(offsetof(struct test_file, code) == 0xc0, "code at 0xc0");
_Static_assert(offsetof(struct test_file, data) == DATA_OFF, "data offset");
_Static_assert(sizeof(struct test_file) == DATA_OFF + DATA_FILESZ,
               "no tail padding: data ends the file");

static const uint8_t test_code[] = {
	0xb8, 0x01, 0x00, 0x00, 0x00,  /* mov eax, 1 */
	0xbb, 0x2a, 0x00, 0x00, 0x00,  /* mov ebx, 42 */
	0xcd, 0x80,                    /* int 0x80 */
	0xf4,                          /* hlt */
};

static uint8_t data_byte(size_t i)
{
	return (uint8_t)(i * 7 + 1);
}

static void build_valid(struct test_file *f)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->eh.e_ident, ELFMAG, SELFMAG);
	f->eh.e_ident[EI_CLASS] = ELFCLASS32;
	f->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	f->eh.e_ident[EI_VERSION] = EV_CURRENT;
	f->eh.e_ident[EI_OSABI] = ELFOSABI_SYSV;
	f->eh.e_type = ET_EXEC;
	f->eh.e_machine = EM_386;
	f->eh.e_version = EV_CURRENT;
	f->eh.e_entry = ENTRY_VA;
	f->eh.e_phoff = offsetof(struct test_file, ph);
	f->eh.e_ehsize = sizeof(Elf32_Ehdr);
	f->eh.e_phentsize = sizeof(Elf32_Phdr);
	f->eh.e_phnum = 3;

	f->ph[0] = (Elf32_Phdr){
		.p_type = PT_LOAD, .p_offset = 0, .p_vaddr = TEXT_VA,
		.p_paddr = TEXT_VA, .p_filesz = 0x100, .p_memsz = 0x100,
		.p_flags = PF_R | PF_X, .p_align = 0x1000,
	};
	f->ph[1] = (Elf32_Phdr){
		.p_type = PT_LOAD, .p_offset = DATA_OFF, .p_vaddr = DATA_VA,
		.p_paddr = DATA_VA, .p_filesz = DATA_FILESZ,
		.p_memsz = DATA_MEMSZ, .p_flags = PF_R | PF_W,
		.p_align = 0x1000,
	};
	f->ph[2] = (Elf32_Phdr){
		.p_type = PT_GNU_STACK, .p_flags = PF_R | PF_W, .p_align = 16,
	};
	memcpy(f->code, test_code, sizeof(test_code));
	for (size_t i = 0; i < sizeof(f->data); i++)
		f->data[i] = data_byte(i);
}

/* Loads f, expects err, and checks the failure contract: no image, a
 * non-empty message. Returns the message for further checks. */
static const char *expect_error(const void *buf, size_t len,
                                enum sim_elf_err err, char *msg)
{
	struct sim_elf *img = (struct sim_elf *)&img; /* not NULL: must be reset */

	assert_int_equal(sim_elf_load_buffer(buf, len, &img, msg,
	                                     SIM_ELF_MSG_SIZE), err);
	assert_null(img);
	assert_true(msg[0] != '\0');
	assert_true(strlen(msg) < SIM_ELF_MSG_SIZE);
	return msg;
}

static const char *expect_file_error(const struct test_file *f,
                                     enum sim_elf_err err, char *msg)
{
	return expect_error(f, sizeof(*f), err, msg);
}

static struct sim_elf *expect_load(const void *buf, size_t len)
{
	char msg[SIM_ELF_MSG_SIZE] = "junk";
	struct sim_elf *img = NULL;
	enum sim_elf_err err = sim_elf_load_buffer(buf, len, &img, msg,
	                                           sizeof(msg));

	if (err != SIM_ELF_OK)
		fail_msg("load failed: %s: %s", sim_elf_strerror(err), msg);
	assert_non_null(img);
	assert_string_equal(msg, "");
	return img;
}

static void test_sim_elf_loads_minimal(void **state)
{
	struct test_file f;
	struct sim_elf *img;
	const struct sim_elf_segment *s;

	(void)state;
	build_valid(&f);
	img = expect_load(&f, sizeof(f));
	assert_int_equal(sim_elf_entry(img), ENTRY_VA);
	assert_int_equal(sim_elf_segment_count(img), 2);

	s = sim_elf_segment(img, 0);
	assert_non_null(s);
	assert_int_equal(s->vaddr, TEXT_VA);
	assert_int_equal(s->memsz, 0x100);
	assert_int_equal(s->filesz, 0x100);
	assert_int_equal(s->offset, 0);
	assert_int_equal(s->rights, SIM_ELF_RIGHT_R | SIM_ELF_RIGHT_X);

	s = sim_elf_segment(img, 1);
	assert_non_null(s);
	assert_int_equal(s->vaddr, DATA_VA);
	assert_int_equal(s->memsz, DATA_MEMSZ);
	assert_int_equal(s->filesz, DATA_FILESZ);
	assert_int_equal(s->offset, DATA_OFF);
	assert_int_equal(s->rights, SIM_ELF_RIGHT_R | SIM_ELF_RIGHT_W);

	assert_null(sim_elf_segment(img, 2));
	sim_elf_destroy(img);
}

/* The image must not borrow the caller's buffer. */
static void test_sim_elf_copies_the_buffer(void **state)
{
	struct test_file *f = malloc(sizeof(*f));
	struct sim_elf *img;
	uint8_t page[SIM_ELF_PAGE_SIZE];

	(void)state;
	assert_non_null(f);
	build_valid(f);
	img = expect_load(f, sizeof(*f));
	memset(f, 0xee, sizeof(*f));
	free(f);
	assert_true(sim_elf_page(img, ENTRY_VA, page));
	assert_memory_equal(page + (ENTRY_VA - TEXT_VA), test_code,
	                    sizeof(test_code));
	sim_elf_destroy(img);
}

static void assert_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			fail_msg("byte %zu is 0x%02x, expected 0", i, p[i]);
}

static void test_sim_elf_page_bytes(void **state)
{
	struct test_file f;
	struct sim_elf *img;
	uint8_t page[SIM_ELF_PAGE_SIZE];
	const uint8_t *file = (const uint8_t *)&f;

	(void)state;
	build_valid(&f);
	img = expect_load(&f, sizeof(f));

	/* text: 0x100 file bytes (headers and code), then zero */
	assert_true(sim_elf_page(img, TEXT_VA, page));
	assert_memory_equal(page, file, 0x100);
	assert_memory_equal(page + 0xc0, test_code, sizeof(test_code));
	assert_zero(page + 0x100, SIM_ELF_PAGE_SIZE - 0x100);

	/* data, first page: zero before vaddr, then file bytes to the end
	 * of the page; an unaligned va names the same page */
	memset(page, 0xaa, sizeof(page));
	assert_true(sim_elf_page(img, DATA_VA + 0x123, page));
	assert_zero(page, 0x10);
	assert_memory_equal(page + 0x10, f.data, SIM_ELF_PAGE_SIZE - 0x10);

	/* data, second page: the partial last file page, then bss */
	memset(page, 0xaa, sizeof(page));
	assert_true(sim_elf_page(img, 0x0804b000, page));
	assert_memory_equal(page, f.data + 0xff0, 0x110);
	assert_int_equal(page[0x10f], data_byte(DATA_FILESZ - 1));
	assert_zero(page + 0x110, SIM_ELF_PAGE_SIZE - 0x110);

	/* pure bss, including the last page the segment only touches */
	memset(page, 0xaa, sizeof(page));
	assert_true(sim_elf_page(img, 0x0804c000, page));
	assert_zero(page, sizeof(page));
	memset(page, 0xaa, sizeof(page));
	assert_true(sim_elf_page(img, 0x0804dfff, page));
	assert_zero(page, sizeof(page));

	/* outside every segment: false, out untouched */
	for (uint32_t va = 0; va < 0x0804f000; va += 0x1000) {
		if (va == TEXT_VA)
			va = 0x08049000;        /* the gap between segments */
		if (va == 0x0804a000)
			va = 0x0804e000;        /* past the bss */
		memset(page, 0xaa, sizeof(page));
		assert_false(sim_elf_page(img, va, page));
		assert_int_equal(page[0], 0xaa);
		if (va == 0x1000)
			va = 0x08046000;        /* skip the boring middle */
	}
	assert_false(sim_elf_page(img, 0xffffffffu, page));
	sim_elf_destroy(img);
}

static void test_sim_elf_segment_at_pages(void **state)
{
	struct test_file f;
	struct sim_elf *img;

	(void)state;
	build_valid(&f);
	img = expect_load(&f, sizeof(f));
	assert_ptr_equal(sim_elf_segment_at(img, TEXT_VA),
	                 sim_elf_segment(img, 0));
	assert_ptr_equal(sim_elf_segment_at(img, TEXT_VA + 0xfff),
	                 sim_elf_segment(img, 0));
	assert_null(sim_elf_segment_at(img, TEXT_VA + 0x1000));
	assert_null(sim_elf_segment_at(img, TEXT_VA - 1));
	assert_ptr_equal(sim_elf_segment_at(img, 0x0804a000),
	                 sim_elf_segment(img, 1));
	assert_ptr_equal(sim_elf_segment_at(img, 0x0804dfff),
	                 sim_elf_segment(img, 1));
	assert_null(sim_elf_segment_at(img, 0x0804e000));
	sim_elf_destroy(img);
}

static void test_sim_elf_destroy_accepts_null(void **state)
{
	(void)state;
	sim_elf_destroy(NULL);
}

static void test_sim_elf_strerror_covers_every_code(void **state)
{
	(void)state;
	assert_string_equal(sim_elf_strerror(SIM_ELF_OK), "success");
	for (int e = 1; e < SIM_ELF_ERR_COUNT; e++) {
		const char *text = sim_elf_strerror((enum sim_elf_err)e);

		assert_non_null(text);
		assert_string_not_equal(text, "unknown error");
		for (int d = 0; d < e; d++)
			assert_string_not_equal(text, sim_elf_strerror(
			                        (enum sim_elf_err)d));
	}
	assert_string_equal(sim_elf_strerror(SIM_ELF_ERR_COUNT),
	                    "unknown error");
	assert_string_equal(sim_elf_strerror((enum sim_elf_err)-1),
	                    "unknown error");
}

static void test_sim_elf_rejects_bad_arguments(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	assert_int_equal(sim_elf_load_buffer(&f, sizeof(f), NULL, msg,
	                                     sizeof(msg)), SIM_ELF_ERR_ARG);
	assert_true(msg[0] != '\0');
	expect_error(NULL, 10, SIM_ELF_ERR_ARG, msg);
	expect_error(NULL, 0, SIM_ELF_ERR_NOT_ELF, msg);
}

/* Messages are optional and truncated, never overrun. */
static void test_sim_elf_message_buffer_is_optional(void **state)
{
	struct test_file f;
	struct sim_elf *img = NULL;
	char small[8];

	(void)state;
	build_valid(&f);
	f.eh.e_machine = EM_X86_64;
	assert_int_equal(sim_elf_load_buffer(&f, sizeof(f), &img, NULL, 0),
	                 SIM_ELF_ERR_MACHINE);
	assert_null(img);
	assert_int_equal(sim_elf_load_buffer(&f, sizeof(f), &img, small,
	                                     sizeof(small)),
	                 SIM_ELF_ERR_MACHINE);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	f.eh.e_machine = EM_386;
	assert_int_equal(sim_elf_load_buffer(&f, sizeof(f), &img, NULL, 0),
	                 SIM_ELF_OK);
	sim_elf_destroy(img);
}

static void test_sim_elf_rejects_not_elf(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.eh.e_ident[EI_MAG1] = 'F';
	expect_file_error(&f, SIM_ELF_ERR_NOT_ELF, msg);
	expect_error("", 0, SIM_ELF_ERR_NOT_ELF, msg);
	expect_error("#!/bin/sh\nexit 0\n", 17, SIM_ELF_ERR_NOT_ELF, msg);
}

static void test_sim_elf_rejects_truncated_header(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	expect_error(&f, 10, SIM_ELF_ERR_TRUNCATED, msg);
	expect_error(&f, sizeof(Elf32_Ehdr) - 1, SIM_ELF_ERR_TRUNCATED, msg);
	assert_non_null(strstr(msg, "51 bytes"));
}

static void test_sim_elf_rejects_wrong_class(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.eh.e_ident[EI_CLASS] = ELFCLASS64;
	expect_file_error(&f, SIM_ELF_ERR_CLASS, msg);
	assert_non_null(strstr(msg, "ELFCLASS64"));
	f.eh.e_ident[EI_CLASS] = ELFCLASSNONE;
	expect_file_error(&f, SIM_ELF_ERR_CLASS, msg);
}

static void test_sim_elf_rejects_big_endian(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.eh.e_ident[EI_DATA] = ELFDATA2MSB;
	expect_file_error(&f, SIM_ELF_ERR_DATA, msg);
	assert_non_null(strstr(msg, "big endian"));
	f.eh.e_ident[EI_DATA] = 7;
	expect_file_error(&f, SIM_ELF_ERR_DATA, msg);
}

static void test_sim_elf_rejects_wrong_version(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.eh.e_ident[EI_VERSION] = EV_NONE;
	expect_file_error(&f, SIM_ELF_ERR_VERSION, msg);
}

static void test_sim_elf_rejects_wrong_machine(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.eh.e_machine = EM_X86_64;
	expect_file_error(&f, SIM_ELF_ERR_MACHINE, msg);
	assert_non_null(strstr(msg, "machine 62 (x86-64)"));
	f.eh.e_machine = 0xbeef;
	expect_file_error(&f, SIM_ELF_ERR_MACHINE, msg);
}

static void test_sim_elf_rejects_pie(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.eh.e_type = ET_DYN;
	expect_file_error(&f, SIM_ELF_ERR_TYPE, msg);
	assert_non_null(strstr(msg, "-static -no-pie"));
	f.eh.e_type = ET_REL;
	expect_file_error(&f, SIM_ELF_ERR_TYPE, msg);
	f.eh.e_type = ET_CORE;
	expect_file_error(&f, SIM_ELF_ERR_TYPE, msg);
}

static void test_sim_elf_rejects_dynamic(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.ph[2].p_type = PT_INTERP;
	expect_file_error(&f, SIM_ELF_ERR_DYNAMIC, msg);
	assert_non_null(strstr(msg, "PT_INTERP"));
	f.ph[2].p_type = PT_DYNAMIC;
	expect_file_error(&f, SIM_ELF_ERR_DYNAMIC, msg);
	assert_non_null(strstr(msg, "PT_DYNAMIC"));
}

static void test_sim_elf_rejects_no_load(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.ph[0].p_type = PT_NULL;
	f.ph[1].p_type = PT_NOTE;
	expect_file_error(&f, SIM_ELF_ERR_NO_LOAD, msg);

	build_valid(&f);
	f.eh.e_phnum = 0;
	expect_file_error(&f, SIM_ELF_ERR_NO_LOAD, msg);

	/* only empty PT_LOADs: nothing to map */
	build_valid(&f);
	f.ph[0].p_filesz = f.ph[0].p_memsz = 0;
	f.ph[1].p_filesz = f.ph[1].p_memsz = 0;
	expect_file_error(&f, SIM_ELF_ERR_NO_LOAD, msg);
}

static void test_sim_elf_skips_empty_load(void **state)
{
	struct test_file f;
	struct sim_elf *img;

	(void)state;
	build_valid(&f);
	f.eh.e_phnum = 4;
	f.ph[3] = (Elf32_Phdr){ .p_type = PT_LOAD, .p_vaddr = TEXT_VA,
	                        .p_flags = PF_R };
	img = expect_load(&f, sizeof(f));
	assert_int_equal(sim_elf_segment_count(img), 2);
	sim_elf_destroy(img);
}

static void test_sim_elf_rejects_segment_outside_file(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	/* one byte too many */
	build_valid(&f);
	f.ph[1].p_filesz = DATA_FILESZ + 1;
	expect_file_error(&f, SIM_ELF_ERR_FILE_RANGE, msg);
	assert_non_null(strstr(msg, "segment 1"));

	/* offset + filesz wraps 32 bits to a small number */
	build_valid(&f);
	f.ph[1].p_offset = 0xfffff010u;
	f.ph[1].p_filesz = 0x2000;
	f.ph[1].p_memsz = 0x3000;
	expect_file_error(&f, SIM_ELF_ERR_FILE_RANGE, msg);

	/* offset inside, size wraps */
	build_valid(&f);
	f.ph[1].p_filesz = 0xfffffff0u;
	f.ph[1].p_memsz = 0xfffffff0u;
	expect_file_error(&f, SIM_ELF_ERR_FILE_RANGE, msg);
}

static void test_sim_elf_rejects_filesz_above_memsz(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.ph[1].p_memsz = DATA_FILESZ - 1;
	expect_file_error(&f, SIM_ELF_ERR_FILESZ, msg);
	assert_non_null(strstr(msg, "0x1100"));
}

static void test_sim_elf_rejects_incongruent_offset(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.ph[1].p_vaddr = DATA_VA + 0x10;
	expect_file_error(&f, SIM_ELF_ERR_CONGRUENCE, msg);
}

static void test_sim_elf_rejects_address_outside_user(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	/* wraps past 4 GiB */
	build_valid(&f);
	f.ph[1].p_vaddr = 0xfffff010u;
	expect_file_error(&f, SIM_ELF_ERR_ADDRESS, msg);
	assert_non_null(strstr(msg, "wraps"));

	/* crosses into the UTCB area */
	build_valid(&f);
	f.ph[1].p_vaddr = 0xbeffe010u;
	expect_file_error(&f, SIM_ELF_ERR_ADDRESS, msg);
	assert_non_null(strstr(msg, "0xbf000000"));

	/* entirely above the limit */
	build_valid(&f);
	f.ph[1].p_vaddr = 0xc0000010u;
	expect_file_error(&f, SIM_ELF_ERR_ADDRESS, msg);

	/* in page zero */
	build_valid(&f);
	f.ph[0].p_vaddr = 0;
	f.eh.e_entry = 0xc0;
	expect_file_error(&f, SIM_ELF_ERR_ADDRESS, msg);
	assert_non_null(strstr(msg, "page zero"));
}

static void test_sim_elf_accepts_user_space_edges(void **state)
{
	struct test_file f;
	struct sim_elf *img;
	uint8_t page[SIM_ELF_PAGE_SIZE];

	(void)state;
	build_valid(&f);
	f.ph[0].p_vaddr = SIM_ELF_USER_MIN;
	f.eh.e_entry = SIM_ELF_USER_MIN + 0xc0;
	f.ph[1].p_vaddr = 0xbeffd010u;
	f.ph[1].p_memsz = SIM_ELF_USER_LIMIT - 0xbeffd010u;
	img = expect_load(&f, sizeof(f));
	assert_true(sim_elf_page(img, SIM_ELF_USER_LIMIT - 1, page));
	assert_false(sim_elf_page(img, SIM_ELF_USER_LIMIT, page));
	assert_false(sim_elf_page(img, SIM_ELF_USER_MIN - 1, page));
	sim_elf_destroy(img);
}

static void test_sim_elf_rejects_overlap(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	/* bytes overlap */
	build_valid(&f);
	f.ph[1].p_vaddr = TEXT_VA + 0x10;
	expect_file_error(&f, SIM_ELF_ERR_OVERLAP, msg);

	/* bytes disjoint, but both touch page 0x08048000 */
	build_valid(&f);
	f.eh.e_phnum = 4;
	f.ph[3] = (Elf32_Phdr){
		.p_type = PT_LOAD, .p_offset = 0x200, .p_vaddr = TEXT_VA + 0x200,
		.p_memsz = 0x10, .p_flags = PF_R | PF_W,
	};
	expect_file_error(&f, SIM_ELF_ERR_OVERLAP, msg);
	assert_string_equal(msg, "segment 3: [0x08048200, 0x08048210) "
	                    "overlaps segment 0 at page 0x08048000");
}

static void test_sim_elf_rejects_bad_entry(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.eh.e_entry = DATA_VA;                 /* RW, not X */
	expect_file_error(&f, SIM_ELF_ERR_ENTRY, msg);
	assert_non_null(strstr(msg, "not executable"));
	f.eh.e_entry = 0x09000000u;             /* nowhere */
	expect_file_error(&f, SIM_ELF_ERR_ENTRY, msg);
	f.eh.e_entry = TEXT_VA + 0x100;         /* one past the text */
	expect_file_error(&f, SIM_ELF_ERR_ENTRY, msg);
	f.eh.e_entry = 0;
	expect_file_error(&f, SIM_ELF_ERR_ENTRY, msg);
}

/* A file of n one-page bss PT_LOADs, the first executable. */
#define MANY 17
struct many_file {
	Elf32_Ehdr eh;
	Elf32_Phdr ph[MANY];
};

static void build_many(struct many_file *f, unsigned n)
{
	memset(f, 0, sizeof(*f));
	memcpy(f->eh.e_ident, ELFMAG, SELFMAG);
	f->eh.e_ident[EI_CLASS] = ELFCLASS32;
	f->eh.e_ident[EI_DATA] = ELFDATA2LSB;
	f->eh.e_ident[EI_VERSION] = EV_CURRENT;
	f->eh.e_type = ET_EXEC;
	f->eh.e_machine = EM_386;
	f->eh.e_version = EV_CURRENT;
	f->eh.e_entry = TEXT_VA;
	f->eh.e_phoff = offsetof(struct many_file, ph);
	f->eh.e_ehsize = sizeof(Elf32_Ehdr);
	f->eh.e_phentsize = sizeof(Elf32_Phdr);
	f->eh.e_phnum = (Elf32_Half)n;
	for (unsigned i = 0; i < n; i++)
		f->ph[i] = (Elf32_Phdr){
			.p_type = PT_LOAD, .p_vaddr = TEXT_VA + i * 0x1000,
			.p_memsz = 0x1000, .p_flags = PF_R | PF_X,
		};
}

static void test_sim_elf_rejects_too_many_segments(void **state)
{
	struct many_file f;
	struct sim_elf *img;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_many(&f, SIM_ELF_MAX_SEGMENTS);
	img = expect_load(&f, sizeof(f));
	assert_int_equal(sim_elf_segment_count(img), SIM_ELF_MAX_SEGMENTS);
	sim_elf_destroy(img);

	build_many(&f, MANY);
	expect_error(&f, sizeof(f), SIM_ELF_ERR_TOO_MANY, msg);
	assert_non_null(strstr(msg, "17 PT_LOAD"));
}

static void test_sim_elf_rejects_phdr_table_outside_file(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	f.eh.e_phoff = sizeof(f) - 10;
	expect_file_error(&f, SIM_ELF_ERR_PHDR_TABLE, msg);

	f.eh.e_phoff = 0xfffffff0u;             /* end wraps 32 bits */
	expect_file_error(&f, SIM_ELF_ERR_PHDR_TABLE, msg);

	build_valid(&f);
	f.eh.e_phnum = 0x1000;                  /* count runs off the end */
	expect_file_error(&f, SIM_ELF_ERR_PHDR_TABLE, msg);

	build_valid(&f);
	f.eh.e_phnum = PN_XNUM;
	expect_file_error(&f, SIM_ELF_ERR_PHDR_TABLE, msg);

	build_valid(&f);
	f.eh.e_phentsize = 40;
	expect_file_error(&f, SIM_ELF_ERR_PHDR_TABLE, msg);
}

/* Every proper prefix of the file is an error with a message. */
static void test_sim_elf_rejects_every_truncation(void **state)
{
	struct test_file f;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	build_valid(&f);
	for (size_t len = 0; len < sizeof(f); len++) {
		/* a fresh heap copy of exactly len bytes, so ASan and
		 * valgrind see any read past the end */
		uint8_t *copy = malloc(len ? len : 1);
		struct sim_elf *img = (struct sim_elf *)&img;
		enum sim_elf_err err;

		assert_non_null(copy);
		memcpy(copy, &f, len);
		msg[0] = '\0';
		err = sim_elf_load_buffer(copy, len, &img, msg, sizeof(msg));
		if (err == SIM_ELF_OK)
			fail_msg("a %zu-byte prefix loaded", len);
		assert_null(img);
		assert_true(msg[0] != '\0');
		free(copy);
	}
}

/* xorshift32: deterministic, and its state lives on the test's stack. */
static uint32_t next_random(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* Random damage to the headers: whatever loads must satisfy every
 * promise of the header, whatever fails must say why. */
static void test_sim_elf_survives_mutations(void **state)
{
	static const uint32_t interesting[] = {
		0, 1, 0xfff, 0x1000, 0x7fffffffu, 0x80000000u, 0xbf000000u,
		0xfffff000u, 0xffffffffu,
	};
	struct test_file valid, f;
	uint32_t seed = 0x5eed1234u;
	unsigned loaded = 0;

	(void)state;
	build_valid(&valid);
	for (int iter = 0; iter < 20000; iter++) {
		char msg[SIM_ELF_MSG_SIZE];
		struct sim_elf *img = NULL;
		unsigned edits = 1 + next_random(&seed) % 3;
		enum sim_elf_err err;

		f = valid;
		for (unsigned k = 0; k < edits; k++) {
			/* headers live in the first 0xc0 bytes */
			size_t at = next_random(&seed) % 0xc0;
			uint8_t *bytes = (uint8_t *)&f;

			if (next_random(&seed) % 2 && at <= 0xc0 - 4) {
				uint32_t v = interesting[next_random(&seed) %
				             (sizeof(interesting) /
				              sizeof(interesting[0]))];
				memcpy(bytes + (at & ~(size_t)3), &v, 4);
			} else {
				bytes[at] = (uint8_t)next_random(&seed);
			}
		}
		err = sim_elf_load_buffer(&f, sizeof(f), &img, msg,
		                          sizeof(msg));
		if (err != SIM_ELF_OK) {
			assert_null(img);
			assert_true(msg[0] != '\0');
			continue;
		}
		loaded++;
		for (size_t i = 0; i < sim_elf_segment_count(img); i++) {
			const struct sim_elf_segment *s = sim_elf_segment(img, i);
			uint8_t page[SIM_ELF_PAGE_SIZE];

			assert_true(s->vaddr >= SIM_ELF_USER_MIN);
			assert_true((uint64_t)s->vaddr + s->memsz <=
			            SIM_ELF_USER_LIMIT);
			assert_true(s->filesz <= s->memsz);
			assert_true((uint64_t)s->offset + s->filesz <= sizeof(f));
			assert_true(sim_elf_page(img, s->vaddr, page));
			assert_true(sim_elf_page(img, s->vaddr + s->memsz - 1,
			                         page));
		}
		assert_true(sim_elf_segment_at(img, sim_elf_entry(img))->rights
		            & SIM_ELF_RIGHT_X);
		sim_elf_destroy(img);
	}
	/* the mutations must leave some files loadable, or the success
	 * branch above was never tested */
	assert_true(loaded > 0);
}

static void test_sim_elf_load_path_reports_io_errors(void **state)
{
	struct sim_elf *img = (struct sim_elf *)&img;
	char msg[SIM_ELF_MSG_SIZE];

	(void)state;
	assert_int_equal(sim_elf_load_path("/nonexistent/kpsim.elf", &img,
	                                   msg, sizeof(msg)), SIM_ELF_ERR_IO);
	assert_null(img);
	assert_non_null(strstr(msg, "/nonexistent/kpsim.elf"));
	assert_int_equal(sim_elf_load_path("/", &img, msg, sizeof(msg)),
	                 SIM_ELF_ERR_IO);
	assert_int_equal(sim_elf_load_path(NULL, &img, msg, sizeof(msg)),
	                 SIM_ELF_ERR_ARG);
}

/* A real static binary from gcc, path in the test's prestate. */
static void test_sim_elf_loads_real_binary(void **state)
{
	static const char marker[] = "kpsim-elf-guest-marker";
	const char *path = *state;
	struct sim_elf *img = NULL;
	char msg[SIM_ELF_MSG_SIZE];
	enum sim_elf_err err;
	bool found_marker = false, found_bss = false;

	if (path == NULL)
		fail_msg("pass the guest binary's path as argv[1]");
	err = sim_elf_load_path(path, &img, msg, sizeof(msg));
	if (err != SIM_ELF_OK)
		fail_msg("%s: %s: %s", path, sim_elf_strerror(err), msg);
	assert_non_null(sim_elf_segment_at(img, sim_elf_entry(img)));
	assert_true(sim_elf_segment_at(img, sim_elf_entry(img))->rights &
	            SIM_ELF_RIGHT_X);

	for (size_t i = 0; i < sim_elf_segment_count(img); i++) {
		const struct sim_elf_segment *s = sim_elf_segment(img, i);
		uint64_t end = (uint64_t)s->vaddr + s->memsz;
		uint8_t page[SIM_ELF_PAGE_SIZE];

		for (uint64_t va = s->vaddr & ~0xfffu; va < end; va += 0x1000) {
			assert_true(sim_elf_page(img, (uint32_t)va, page));
			if (memmem(page, sizeof(page), marker, sizeof(marker)))
				found_marker = true;
			/* a page wholly past the file bytes is bss */
			if (va >= (uint64_t)s->vaddr + s->filesz + 0xfff) {
				assert_zero(page, sizeof(page));
				found_bss = true;
			}
		}
	}
	assert_true(found_marker);
	assert_true(found_bss);
	sim_elf_destroy(img);
}

/* Every proper prefix of the real binary: an error with a message, or,
 * once all segment bytes are in (only section data is cut), the image. */
static void test_sim_elf_real_binary_truncations(void **state)
{
	const char *path = *state;
	struct sim_elf *full = NULL;
	char msg[SIM_ELF_MSG_SIZE];
	uint64_t needed = 0;
	uint8_t *bytes;
	long size;
	FILE *fp;

	if (path == NULL)
		fail_msg("pass the guest binary's path as argv[1]");
	assert_int_equal(sim_elf_load_path(path, &full, msg, sizeof(msg)),
	                 SIM_ELF_OK);
	for (size_t i = 0; i < sim_elf_segment_count(full); i++) {
		const struct sim_elf_segment *s = sim_elf_segment(full, i);

		if ((uint64_t)s->offset + s->filesz > needed)
			needed = (uint64_t)s->offset + s->filesz;
	}
	fp = fopen(path, "rb");
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	size = ftell(fp);
	assert_true(size > 0);
	rewind(fp);
	bytes = malloc((size_t)size);
	assert_non_null(bytes);
	assert_int_equal(fread(bytes, 1, (size_t)size, fp), (size_t)size);
	fclose(fp);

	for (size_t len = 0; len < (size_t)size; len++) {
		uint8_t *copy = malloc(len ? len : 1);
		struct sim_elf *img = NULL;
		enum sim_elf_err err;

		assert_non_null(copy);
		memcpy(copy, bytes, len);
		err = sim_elf_load_buffer(copy, len, &img, msg, sizeof(msg));
		if (len < needed) {
			assert_int_not_equal(err, SIM_ELF_OK);
			assert_null(img);
			assert_true(msg[0] != '\0');
		} else {
			assert_int_equal(err, SIM_ELF_OK);
			assert_int_equal(sim_elf_entry(img), sim_elf_entry(full));
		}
		sim_elf_destroy(img);
		free(copy);
	}
	free(bytes);
	sim_elf_destroy(full);
}

int main(int argc, char **argv)
{
	char *guest = argc > 1 ? argv[1] : NULL;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sim_elf_loads_minimal),
		cmocka_unit_test(test_sim_elf_copies_the_buffer),
		cmocka_unit_test(test_sim_elf_page_bytes),
		cmocka_unit_test(test_sim_elf_segment_at_pages),
		cmocka_unit_test(test_sim_elf_destroy_accepts_null),
		cmocka_unit_test(test_sim_elf_strerror_covers_every_code),
		cmocka_unit_test(test_sim_elf_rejects_bad_arguments),
		cmocka_unit_test(test_sim_elf_message_buffer_is_optional),
		cmocka_unit_test(test_sim_elf_rejects_not_elf),
		cmocka_unit_test(test_sim_elf_rejects_truncated_header),
		cmocka_unit_test(test_sim_elf_rejects_wrong_class),
		cmocka_unit_test(test_sim_elf_rejects_big_endian),
		cmocka_unit_test(test_sim_elf_rejects_wrong_version),
		cmocka_unit_test(test_sim_elf_rejects_wrong_machine),
		cmocka_unit_test(test_sim_elf_rejects_pie),
		cmocka_unit_test(test_sim_elf_rejects_dynamic),
		cmocka_unit_test(test_sim_elf_rejects_no_load),
		cmocka_unit_test(test_sim_elf_skips_empty_load),
		cmocka_unit_test(test_sim_elf_rejects_segment_outside_file),
		cmocka_unit_test(test_sim_elf_rejects_filesz_above_memsz),
		cmocka_unit_test(test_sim_elf_rejects_incongruent_offset),
		cmocka_unit_test(test_sim_elf_rejects_address_outside_user),
		cmocka_unit_test(test_sim_elf_accepts_user_space_edges),
		cmocka_unit_test(test_sim_elf_rejects_overlap),
		cmocka_unit_test(test_sim_elf_rejects_bad_entry),
		cmocka_unit_test(test_sim_elf_rejects_too_many_segments),
		cmocka_unit_test(test_sim_elf_rejects_phdr_table_outside_file),
		cmocka_unit_test(test_sim_elf_rejects_every_truncation),
		cmocka_unit_test(test_sim_elf_survives_mutations),
		cmocka_unit_test(test_sim_elf_load_path_reports_io_errors),
		cmocka_unit_test_prestate(test_sim_elf_loads_real_binary, guest),
		cmocka_unit_test_prestate(test_sim_elf_real_binary_truncations,
		                          guest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
