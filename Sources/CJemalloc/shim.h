#ifndef CLAUDE_PROXY_CJEMALLOC_SHIM_H
#define CLAUDE_PROXY_CJEMALLOC_SHIM_H
// The production binary links jemalloc (Debian's build: unprefixed, so it replaces malloc and free for the whole
// process, the Swift runtime included). Only its control interface is declared here: jemalloc.h re-declares the
// C library's allocation functions, which would clash with Glibc's module.
#include <stddef.h>
int mallctl(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
#endif
