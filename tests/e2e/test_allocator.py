"""The proxy's memory allocator: the binary links jemalloc, which replaces malloc for the whole process (glibc's malloc
was 9.5 % of the HTTP/2 relay's CPU, jemalloc is 3.9 %: docs/benchmarks.md). The start-up line names the allocator
only after checking that the Swift runtime's allocations reach it."""

import re


def test_proxy_allocates_through_jemalloc(launch):
    proxy, _ = launch()
    starting = next(line for line in proxy.log().splitlines() if "claude-proxy: starting" in line)
    assert re.search(r'allocator="jemalloc \d+\.\d+\.\d+', starting), starting
    with open(f"/proc/{proxy.process.pid}/maps", encoding="utf-8") as maps:
        assert "libjemalloc.so" in maps.read()
