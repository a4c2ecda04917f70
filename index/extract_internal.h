/*
 * extract_internal: what extract.c shares with the per-format extractors
 * in other files of index/ (extract_pdf.c). Not part of the public API.
 */
#ifndef SEEKFS_EXTRACT_INTERNAL_H
#define SEEKFS_EXTRACT_INTERNAL_H

#include <stddef.h>

#include "index/index.h"

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1), 0 if invalid:
 * overlong forms, surrogates and values past U+10FFFF are invalid. The one
 * rule every extractor uses to decide where U+FFFD goes. */
size_t extract_utf8_valid(const unsigned char *s, size_t n);

/* Extract a PDF's text (buf/len: the whole file, len may be 0) into *out,
 * which extract_text has zeroed and whose type it has set. Same contract
 * as extract_text: 0, or -EILSEQ / -ENOTSUP / -ENOMEM with out->reason set
 * and no text in *out. */
int extract_pdf(const unsigned char *buf, size_t len, struct extract_result *out);

#endif
