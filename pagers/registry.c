/*
 * The registry of built-in policies, and policies named by a spec: a
 * built-in found by name, or one loaded from a shared object by path.
 */
#include "pagers.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

static const struct kp_ops *const builtin[] = {
	&kp_fcfs_ops, &kp_quota_ops, &kp_ws_ops, &kp_clock_typed_ops,
	&kp_pinned_ops, &kp_chaos_ops,
};
static const char *const builtin_names[] = {
	"fcfs", "quota", "ws", "clock-typed", "pinned", NULL
};

/* chaos is found by name but not listed: it is a test of the kernel, not
 * a policy to compare. */
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

int kp_spec_split(const char *spec, char *name, size_t name_len,
                  const char **args, char *why, size_t why_len)
{
	const char *colon;
	size_t n;

	/* Is there a name, and does it fit? */
	if (spec == NULL || *spec == '\0' || *spec == ':') {
		snprintf(why, why_len, "policy spec '%s': no policy name "
		         "(want name or name:key=value,...)", spec ? spec : "");
		return KM_EINVAL;
	}
	colon = strchr(spec, ':');
	n = colon ? (size_t)(colon - spec) : strlen(spec);
	if (n >= name_len) {
		snprintf(why, why_len, "policy spec '%s': name longer than %zu "
		         "characters", spec, name_len - 1);
		return KM_EINVAL;
	}
	memcpy(name, spec, n);
	name[n] = '\0';
	*args = colon ? colon + 1 : spec + n;
	return KM_OK;
}

/* Is the policy complete enough for the kernel to call? */
static bool ops_usable(const struct kp_ops *ops)
{
	return ops != NULL && ops->name != NULL && ops->init != NULL &&
	       ops->fault != NULL;
}

/* Loads the policy of the shared object at `path` into *out. */
static int load_object(const char *path, struct kp_policy *out, char *why,
                       size_t why_len)
{
	void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	kp_policy_fn fn;
	const struct kp_ops *ops;

	if (dl == NULL) {
		snprintf(why, why_len, "policy %s: %s", path, dlerror());
		return KM_EIO;
	}
	/* ISO C cannot convert void * to a function pointer; POSIX says
	 * this copy is how dlsym's result is used. */
	{
		void *sym = dlsym(dl, KP_ABI_SYMBOL);

		if (sym == NULL) {
			snprintf(why, why_len, "policy %s: no symbol %s: the "
			         "object must export const struct kp_ops *"
			         "%s(unsigned abi_version)", path,
			         KP_ABI_SYMBOL, KP_ABI_SYMBOL);
			dlclose(dl);
			return KM_EIO;
		}
		memcpy(&fn, &sym, sizeof fn);
	}
	ops = fn(KP_ABI_VERSION);
	if (!ops_usable(ops)) {
		snprintf(why, why_len, "policy %s: %s(%u) returned %s", path,
		         KP_ABI_SYMBOL, KP_ABI_VERSION,
		         ops == NULL ? "no policy: built for another ABI "
		         "version?" : "a policy without name, init or fault");
		dlclose(dl);
		return KM_EINVAL;
	}
	out->ops = ops;
	out->dl = dl;
	return KM_OK;
}

int kp_policy_open(const char *spec, struct kp_policy *out, char *why,
                   size_t why_len)
{
	char name[256];
	const char *args;
	int err;

	memset(out, 0, sizeof *out);
	if ((err = kp_spec_split(spec, name, sizeof name, &args, why,
	                         why_len)) != KM_OK)
		return err;
	if (strchr(name, '/') != NULL) {
		if ((err = load_object(name, out, why, why_len)) != KM_OK)
			return err;
	} else if ((out->ops = kp_find(name)) == NULL) {
		size_t used = (size_t)snprintf(why, why_len, "unknown policy "
		                               "'%s' (built in:", name);

		for (size_t i = 0; builtin_names[i] != NULL && used < why_len;
		     i++)
			used += (size_t)snprintf(why + used, why_len - used,
			                         " %s", builtin_names[i]);
		if (used < why_len)
			snprintf(why + used, why_len - used, "; or a path to "
			         "a shared object)");
		return KM_EINVAL;
	}
	out->args = args;
	return KM_OK;
}

void kp_policy_close(struct kp_policy *p)
{
	if (p == NULL)
		return;
	if (p->dl != NULL)
		dlclose(p->dl);
	memset(p, 0, sizeof *p);
}
