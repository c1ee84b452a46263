#ifndef CLAUDE_PROXY_CZLIB_SHIM_H
#define CLAUDE_PROXY_CZLIB_SHIM_H
#include <zlib.h>

// deflateInit2 and inflateInit2 are macros that pass ZLIB_VERSION and sizeof(z_stream).
static inline int cp_deflateInit2(z_streamp strm, int level, int method, int windowBits, int memLevel, int strategy) {
    return deflateInit2(strm, level, method, windowBits, memLevel, strategy);
}
static inline int cp_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
#endif
