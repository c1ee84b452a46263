#!/usr/bin/env python3
"""Where a relay's CPU goes, by component: reads `perf script` output of a `perf record -g` of claude-proxy (see
scripts/profile-relay.sh) and puts every sample in one bucket by walking its call chain from the leaf.

    perf script -i /tmp/profile-relay-ours-S1.data | swift demangle --simplified | scripts/perf-buckets.py
    ... | scripts/perf-buckets.py --top ours      # the functions of one bucket, by samples charged to them

The first frame in the kernel, OpenSSL, nghttp2 or mimalloc decides the bucket. In the C library, memmove, memcpy,
memchr, memcmp, memset and strcmp are "libc mem"; its other functions (system-call wrappers) are passed over to their
caller. Swift runtime frames (swift_retain/release, value witnesses, outlined copies) and standard-library generics
are passed over too, so reference counting is charged to the first caller that is ours or NIO's. Frames are told
apart by name (demangled): the patterns below name our types and NIO's; whatever matches neither is "other".
"""
import argparse
import collections
import re
import sys

NIO = re.compile(
    r"BaseSocketChannel|BaseStreamSocketChannel|ChannelPipeline|ChannelHandlerContext|\bSelector\b|Selector\.|"
    r"SelectableEventLoop|PendingWrites|PendingStreamWrites|ByteBuffer|CircularBuffer|EventLoopFuture|"
    r"EventLoopPromise|NIOAny|\bSocket\b|Socket\.|HeadChannelHandler|TailChannelHandler|NIOPooledRecv|"
    r"RecvByteBufferAllocator|UnderlyingTask|ScheduledTask|NIOLock|NIOThread|EventLoop|IOData|NIODeadline|Posix|"
    r"Epoll|NIOCore|NIOPosix|MarkedCircular|_NIODataStructures|lifecycleManager|ChannelCore"
)
OURS = re.compile(
    r"TLSHandler|TLSSession|HTTP1|FastRelay|H2[A-Z]|Upstream|Usage|Relay|Field|LineReader|Histogram|ProxyMetrics|"
    r"RequestModel|Balancer|RoundRobin|ClientAuth|ClientKey|KeepAlive|RequestHead|Account|RecentTraffic|"
    r"TokenRefresher|HTTPDate|ProxyLogHandler|CoarseClock|Secret|OutgoingBody|FastRequestID"
)
RUNTIME = re.compile(
    r"^swift_|^swift::|^__swift|^_swift|outlined|initializeWithCopy|initializeWithTake|destroy for|assignWith|"
    r"getEnumTag|^tuple_|^\[unknown\]|^$|Array|Dictionary|String|Hasher|_Contiguous|_Native|Unsafe|Collection|"
    r"Sequence|Duration|ManagedAtomic|Mutex|Optional"
)
NIO_WITNESS = re.compile(r"protocol witness for .* in conformance (HeadChannelHandler|Socket|BaseSocketChannel)")
LIBC_MEM = re.compile(r"mem(cpy|move|set|cmp|chr)|strcmp|strlen")


def bucket(frames):
    """(bucket, frame) for a call chain of (symbol, object) pairs, leaf first."""
    for symbol, dso in frames:
        if "[kernel" in dso or "vdso" in dso:
            return "kernel", symbol
        if "libcrypto" in dso or "libssl" in dso:
            return "openssl", symbol
        if "nghttp2" in dso:
            return "nghttp2", symbol
        if "mimalloc" in dso:
            return "mimalloc", symbol
        if "libc.so" in dso:
            if LIBC_MEM.search(symbol):
                return "libc mem", symbol
            continue
        if OURS.search(symbol) and not NIO_WITNESS.match(symbol):
            return "ours", symbol
        if NIO.search(symbol):
            return "nio", symbol
        if RUNTIME.search(symbol):
            continue
        return "other", symbol
    return "other", "?"


def samples(lines):
    """Each sample's call chain from `perf script` output."""
    frames = []
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                yield frames
            frames = []
            continue
        if line[0] not in " \t":
            frames = []
            continue
        parts = line.strip().split(None, 1)
        if len(parts) < 2:
            continue
        match = re.match(r"(.*) \((.*)\)$", parts[1])
        symbol, dso = (match.group(1), match.group(2)) if match else (parts[1], "")
        frames.append((re.sub(r"\+0x[0-9a-f]+$", "", symbol), dso))
    if frames:
        yield frames


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--top", metavar="BUCKET", help="list the functions charged within one bucket")
    parser.add_argument("--count", type=int, default=40, help="how many functions --top lists")
    args = parser.parse_args()
    buckets = collections.Counter()
    functions = collections.Counter()
    total = 0
    for frames in samples(sys.stdin):
        total += 1
        name, frame = bucket(frames)
        buckets[name] += 1
        if name == args.top:
            functions[frame] += 1
    if total == 0:
        sys.exit("no samples with call chains on standard input (perf record -g, then perf script)")
    if args.top:
        for frame, count in functions.most_common(args.count):
            print(f"{100 * count / total:6.2f} %  {frame[:140]}")
    else:
        print(f"{total} samples")
        for name, count in buckets.most_common():
            print(f"{100 * count / total:6.2f} %  {name}")


if __name__ == "__main__":
    main()
