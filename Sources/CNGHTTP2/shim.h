#ifndef CLAUDE_PROXY_CNGHTTP2_SHIM_H
#define CLAUDE_PROXY_CNGHTTP2_SHIM_H
// nghttp2's public API is plain functions; macros and variadics that Swift cannot call get wrappers here
// when the HTTP/2 engine needs them.
#include <nghttp2/nghttp2.h>
#endif
