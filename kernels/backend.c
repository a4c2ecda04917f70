/*
 * The table of compute backends compiled into this build. The CPU backend is
 * always present; the CUDA backend is added when the build found the CUDA
 * toolkit (SEEKFS_HAVE_CUDA). Callers pick one by name or take the first
 * available.
 */
#include <stdio.h>
#include <string.h>

#include "kernels/kernels.h"

static int cpu_available(void)
{
	return 1;
}

static void cpu_describe(char *buf, size_t n)
{
	snprintf(buf, n, "cpu (%s)", kt_isa_name(kt_cpu_isa()));
}

static const struct kt_backend cpu_backend = {
	.name = "cpu",
	.available = cpu_available,
	.describe = cpu_describe,
};

#ifdef SEEKFS_HAVE_CUDA
static const struct kt_backend cuda_backend = {
	.name = "cuda",
	.available = kt_cuda_available,
	.describe = kt_cuda_describe,
};
#endif

static const struct kt_backend *const backends[] = {
#ifdef SEEKFS_HAVE_CUDA
	&cuda_backend,
#endif
	&cpu_backend,
	NULL,
};

const struct kt_backend *const *kt_backends(void)
{
	return backends;
}

const struct kt_backend *kt_backend_find(const char *name)
{
	for (int i = 0; backends[i]; i++)
		if (!strcmp(backends[i]->name, name))
			return backends[i];
	return NULL;
}
