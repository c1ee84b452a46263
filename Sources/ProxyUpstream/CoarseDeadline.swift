import NIOCore

#if canImport(Glibc)
    import Glibc
#endif

extension NIODeadline {
    /// `now()` as of the kernel's last tick (`CLOCK_MONOTONIC_COARSE`: about 3 ns to read instead of about 21, and up
    /// to one tick, 4 ms at 250 Hz, behind). For idle timers and deadlines set on every request, whose scale is
    /// seconds; durations that are reported keep the precise clocks. Elsewhere than Linux it is `now()`.
    public static var coarseNow: NIODeadline {
        #if os(Linux)
            var time = timespec()
            clock_gettime(CLOCK_MONOTONIC_COARSE, &time)
            return .uptimeNanoseconds(UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec))
        #else
            return .now()
        #endif
    }
}
