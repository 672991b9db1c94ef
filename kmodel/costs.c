/*
 * Named cycle costs of kernel paths, the simulated clock, and fault
 * records.  Every kernel path charges named costs through km_charge; a
 * fault record open at the time collects them, so each fault's cycles come
 * with their breakdown.
 */
#include "internal.h"

#include <ctype.h>
#include <errno.h>

static const char *const cost_names[KM_C_COUNT] = {
	[KM_C_TRAP_ENTRY] = "trap_entry",
	[KM_C_TRAP_EXIT] = "trap_exit",
	[KM_C_PF_DECODE] = "pf_decode",
	[KM_C_PT_WALK] = "pt_walk",
	[KM_C_FAULT_IPC] = "fault_ipc",
	[KM_C_REPLY_IPC] = "reply_ipc",
	[KM_C_PAGER_HANDLER] = "pager_handler",
	[KM_C_KPAGER_HANDLER] = "kpager_handler",
	[KM_C_MAP_ITEM] = "map_item",
	[KM_C_MAP_PAGE] = "map_page",
	[KM_C_MDB_INSERT] = "mdb_insert",
	[KM_C_MDB_REMOVE] = "mdb_remove",
	[KM_C_UNMAP_PAGE] = "unmap_page",
	[KM_C_KPOOL_ALLOC] = "kpool_alloc",
	[KM_C_KPOOL_FREE] = "kpool_free",
	[KM_C_KMAP] = "kmap",
	[KM_C_KUNMAP] = "kunmap",
	[KM_C_ZERO_FRAME] = "zero_frame",
	[KM_C_KPAGE_INIT] = "kpage_init",
	[KM_C_TASK_CREATE] = "task_create",
	[KM_C_TASK_DELETE] = "task_delete",
	[KM_C_THREAD_CREATE] = "thread_create",
	[KM_C_THREAD_DELETE] = "thread_delete",
	[KM_C_REVOKE] = "revoke",
	[KM_C_EXPORT] = "export",
	[KM_C_IMPORT] = "import",
	[KM_C_SEAL] = "seal",
	[KM_C_VALIDATE] = "validate",
	[KM_C_PT_REFILL] = "pt_refill",
	[KM_C_DIGEST] = "digest",
	[KM_C_LOCALISE] = "localise",
};

const char *km_cost_name(enum km_cost c)
{
	return (unsigned)c < KM_C_COUNT ? cost_names[c] : "?";
}

/*
 * Parses a cost table: lines of "name value source...", '#' comments and
 * blank lines.  Every cost must be given exactly once, with a source.
 * Fills cost[] only on success; on error returns KM_EPARSE with the line
 * number and reason in why.
 */
int km_costs_parse(uint32_t cost[KM_C_COUNT], const char *text,
                   char *why, size_t why_len)
{
	uint32_t val[KM_C_COUNT];
	bool seen[KM_C_COUNT] = { false };
	unsigned line = 0;
	const char *p = text;

	if (text == NULL) {
		snprintf(why, why_len, "no cost table");
		return KM_EPARSE;
	}
	while (*p != '\0') {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		char buf[512], name[64];
		unsigned long long v;
		int n = 0;
		char *s, *end;
		int c;

		line++;
		if (len >= sizeof buf) {
			snprintf(why, why_len, "line %u: longer than %zu bytes",
			         line, sizeof buf - 1);
			return KM_EPARSE;
		}
		memcpy(buf, p, len);
		buf[len] = '\0';
		p += len + (eol != NULL);

		s = buf;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0' || *s == '#')
			continue;
		if (sscanf(s, "%63s%n", name, &n) != 1) {
			snprintf(why, why_len, "line %u: no cost name", line);
			return KM_EPARSE;
		}
		s += n;
		for (c = 0; c < KM_C_COUNT; c++)
			if (strcmp(name, cost_names[c]) == 0)
				break;
		if (c == KM_C_COUNT) {
			snprintf(why, why_len, "line %u: unknown cost '%s'",
			         line, name);
			return KM_EPARSE;
		}
		if (seen[c]) {
			snprintf(why, why_len, "line %u: cost '%s' given twice",
			         line, name);
			return KM_EPARSE;
		}
		while (isspace((unsigned char)*s))
			s++;
		errno = 0;
		v = strtoull(s, &end, 10);
		if (end == s || !isdigit((unsigned char)*s) || errno != 0 ||
		    v > 100000000ull) {
			snprintf(why, why_len, "line %u: cost '%s' needs a "
			         "value from 0 to 100000000 cycles", line, name);
			return KM_EPARSE;
		}
		s = end;
		if (*s != '\0' && !isspace((unsigned char)*s)) {
			snprintf(why, why_len, "line %u: cost '%s': value is not "
			         "a whole number", line, name);
			return KM_EPARSE;
		}
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '\0') {
			snprintf(why, why_len, "line %u: cost '%s' has no source",
			         line, name);
			return KM_EPARSE;
		}
		seen[c] = true;
		val[c] = (uint32_t)v;
	}
	for (int c = 0; c < KM_C_COUNT; c++) {
		if (!seen[c]) {
			snprintf(why, why_len, "cost '%s' is missing",
			         cost_names[c]);
			return KM_EPARSE;
		}
	}
	memcpy(cost, val, sizeof val);
	return KM_OK;
}

void km_charge(struct km *km, enum km_cost c)
{
	uint32_t v = km->cost[c];

	km->now += v;
	km->cost_total[c] += v;
	if (km->cur_rec != NULL) {
		km->cur_rec->count[c]++;
		km->cur_rec->cycles += v;
	}
}

uint64_t km_cost_value(const struct km *km, enum km_cost c)
{
	return (unsigned)c < KM_C_COUNT ? km->cost_total[c] : 0;
}

/* Opens a fault record: costs charged from now on are its own, until a
 * nested record opens or it ends.  Returns the record it interrupts, which
 * km_rec_end resumes: nesting is strictly last in, first out. */
struct km_fault_rec *km_rec_begin(struct km *km, struct km_fault_rec *rec,
                                  enum km_fault_kind kind, km_task_t task)
{
	struct km_fault_rec *outer = km->cur_rec;

	memset(rec, 0, sizeof *rec);
	rec->seq = ++km->fault_seq;
	rec->parent = km->op_parent;
	rec->cycle = km->now;
	rec->task = task;
	rec->thread = km->op_thread;
	rec->kind = kind;
	rec->pfn = KM_NO_PFN;
	rec->decision = KM_D_FAILED;
	rec->kpage.task = task;
	km->cur_rec = rec;
	return outer;
}

/* Closes a record, hands it to the sink, and resumes charging to `outer`. */
void km_rec_end(struct km *km, struct km_fault_rec *rec,
                struct km_fault_rec *outer)
{
	KM_ASSERT(km->cur_rec == rec);
	km->cur_rec = outer;
	if (km->sink != NULL)
		km->sink(km->sink_ctx, rec);
}

uint64_t km_now(const struct km *km)
{
	return km->now;
}

uint64_t km_pager_cycles(const struct km *km)
{
	return km->pager_cycles;
}

void km_advance(struct km *km, uint64_t cycles)
{
	km->now += cycles;
}

void km_set_fault_sink(struct km *km, km_fault_sink sink, void *ctx)
{
	km->sink = sink;
	km->sink_ctx = ctx;
}

uint32_t km_cost_cycles(const struct km *km, enum km_cost c)
{
	return (unsigned)c < KM_C_COUNT ? km->cost[c] : 0;
}
