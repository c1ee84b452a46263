"""The proxy's memory allocator: the binary links mimalloc, which replaces malloc for the whole process (glibc's malloc
was 7.5 % of the HTTP/2 relay's CPU, mimalloc is 3.1 %: docs/benchmarks.md). The start-up line names the allocator
only after checking that the Swift runtime's allocations reach it."""

import re


def test_proxy_allocates_through_mimalloc(launch):
    proxy, _ = launch()
    starting = next(line for line in proxy.log().splitlines() if "claude-proxy: starting" in line)
    assert re.search(r'allocator="mimalloc \d+\.\d+\.\d+', starting), starting
    with open(f"/proc/{proxy.process.pid}/maps", encoding="utf-8") as maps:
        assert "libmimalloc.so" in maps.read()
