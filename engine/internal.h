/*
 * Helpers shared by the engine's source files; not part of the public API
 * (engine/engine.h).
 */
#ifndef SEEKFS_ENGINE_INTERNAL_H
#define SEEKFS_ENGINE_INTERNAL_H

#include <stddef.h>

/* Write a message into the caller's (err, errsz) buffer, if it has one. */
void eng_err(char *err, size_t errsz, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
