/*
 * Helpers shared by the engine's source files (engine/internal.h).
 */
#include <stdarg.h>
#include <stdio.h>

#include "engine/internal.h"

void eng_err(char *err, size_t errsz, const char *fmt, ...)
{
	if (!err || !errsz)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}
