import CZlib
import NIOCore

/// gzip through zlib: request bodies sent with `Content-Encoding: gzip` are decoded (with a limit on the decoded
/// size, so a small bomb cannot fill memory), and dashboard assets are encoded once at start.
enum Gzip {
    enum Failure: Error, Equatable {
        /// The decoded bytes would exceed the limit.
        case tooLarge
        /// Not gzip, truncated, or a checksum mismatch.
        case corrupt
    }

    /// Decodes one gzip member (or several concatenated ones, as RFC 1952 allows).
    static func decompress(_ input: ByteBuffer, limit: Int) throws(Failure) -> ByteBuffer {
        guard input.readableBytes > 0 else { throw .corrupt }
        var stream = z_stream()
        // 16 + MAX_WBITS: gzip wrapper only.
        guard cp_inflateInit2(&stream, 16 + MAX_WBITS) == Z_OK else { throw .corrupt }
        defer { inflateEnd(&stream) }
        var output = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let bytes = Array(input.readableBytesView)
        var consumed = 0
        while true {
            var status: Int32 = Z_OK
            var produced = 0
            bytes.withUnsafeBufferPointer { inputPointer in
                chunk.withUnsafeMutableBufferPointer { outputPointer in
                    stream.next_in = UnsafeMutablePointer(mutating: inputPointer.baseAddress! + consumed)
                    stream.avail_in = UInt32(bytes.count - consumed)
                    stream.next_out = outputPointer.baseAddress
                    stream.avail_out = UInt32(outputPointer.count)
                    status = inflate(&stream, Z_NO_FLUSH)
                    produced = outputPointer.count - Int(stream.avail_out)
                    consumed = bytes.count - Int(stream.avail_in)
                }
            }
            guard output.readableBytes + produced <= limit else { throw .tooLarge }
            output.writeBytes(chunk[0..<produced])
            switch status {
            case Z_STREAM_END:
                // Another member may follow.
                guard consumed < bytes.count else { return output }
                guard inflateReset(&stream) == Z_OK else { throw .corrupt }
            case Z_OK:
                continue
            case Z_BUF_ERROR where consumed == bytes.count:
                throw .corrupt  // input ended inside a member
            default:
                throw .corrupt
            }
        }
    }

    static func compress(_ input: [UInt8], level: Int32 = 9) -> [UInt8] {
        var stream = z_stream()
        guard cp_deflateInit2(&stream, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK else {
            return []
        }
        defer { deflateEnd(&stream) }
        var output = [UInt8](repeating: 0, count: Int(deflateBound(&stream, UInt(input.count))) + 32)
        var produced = 0
        input.withUnsafeBufferPointer { inputPointer in
            output.withUnsafeMutableBufferPointer { outputPointer in
                stream.next_in = UnsafeMutablePointer(mutating: inputPointer.baseAddress)
                stream.avail_in = UInt32(inputPointer.count)
                stream.next_out = outputPointer.baseAddress
                stream.avail_out = UInt32(outputPointer.count)
                _ = deflate(&stream, Z_FINISH)
                produced = outputPointer.count - Int(stream.avail_out)
            }
        }
        return Array(output[0..<produced])
    }
}
