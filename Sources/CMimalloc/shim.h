#ifndef CLAUDE_PROXY_CMIMALLOC_SHIM_H
#define CLAUDE_PROXY_CMIMALLOC_SHIM_H
// The production binary links mimalloc (Debian's build overrides malloc and free), so it serves every allocation of
// the process, the Swift runtime's included. mimalloc.h declares only its own mi_* interface.
#include <mimalloc.h>
#endif
