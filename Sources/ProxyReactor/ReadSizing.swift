/// How large a channel's next read is, as NIO's adaptive receive allocator decides: doubled (up to `maximum`) after a
/// read that filled its buffer, halved (down to `minimum`) after two reads in a row that half of it would have held.
///
/// A fixed 16 KB read split nearly every full-size TLS record (16 KB of plaintext and its overhead) across two reads,
/// and a busy upstream connection's SSE stream took twice the reads and more of OpenSSL's time than on NIO. Starting
/// small (as NIO does) keeps what an idle connection holds to 2 KB: with `limits.max_connections` at 10,000, 20 MB of
/// read buffers rather than 160 MB.
struct ReadSizing {
    static let minimum = 2 * 1024
    static let maximum = 64 * 1024

    private(set) var size = Self.minimum
    private var smallReads = 0

    mutating func record(_ count: Int) {
        if count >= size {
            size = min(size * 2, Self.maximum)
            smallReads = 0
        } else if count <= size / 2 && size > Self.minimum {
            smallReads += 1
            if smallReads == 2 {
                size /= 2
                smallReads = 0
            }
        } else {
            smallReads = 0
        }
    }
}
