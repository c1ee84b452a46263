import CNGHTTP2

/// nghttp2's C callbacks. Each one finds its `H2Session` through the session's user-data pointer (set to an
/// unretained reference: the session owns the nghttp2 session, so it outlives every callback), records what
/// happened, and returns 0 — callbacks never throw and never fail the session (curl's lib/http2.c does the same).
enum H2Callbacks {
    /// Calls `body` with the session without retaining it: callbacks run only inside the session's own calls
    /// into nghttp2, so it is alive, and a retain and release per header field added up (~1% of a relayed request).
    static func withSession<Result>(_ userData: UnsafeMutableRawPointer?, _ body: (H2Session) -> Result) -> Result {
        Unmanaged<H2Session>.fromOpaque(userData!)._withUnsafeGuaranteedRef(body)
    }

    static func install(on callbacks: OpaquePointer) {
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
            H2Callbacks.withSession(userData) { $0.beginHeaders(streamID: frame.pointee.hd.stream_id) }
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) {
            _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
            let accepted = H2Callbacks.withSession(userData) {
                $0.header(
                    streamID: frame.pointee.hd.stream_id,
                    name: UnsafeBufferPointer(start: name, count: nameLength),
                    value: UnsafeBufferPointer(start: value, count: valueLength)
                )
            }
            // Over the header list limit: nghttp2 resets just this stream.
            return accepted ? 0 : NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            H2Callbacks.withSession(userData) { H2Callbacks.frameReceived(frame.pointee, $0) }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) {
            _, _, streamID, data, length, userData in
            H2Callbacks.withSession(userData) {
                $0.dataChunk(streamID: streamID, bytes: UnsafeBufferPointer(start: data, count: length))
            }
            return 0
        }
        nghttp2_session_callbacks_set_send_data_callback(callbacks) { _, frame, header, length, _, userData in
            guard let frame, let header else { return NGHTTP2_ERR_CALLBACK_FAILURE.rawValue }
            return H2Callbacks.withSession(userData) {
                $0.sendData(
                    streamID: frame.pointee.hd.stream_id, frameHeader: header, length: length,
                    padding: frame.pointee.data.padlen)
            }
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            H2Callbacks.withSession(userData) { $0.streamClosed(streamID: streamID, errorCode: errorCode) }
            return 0
        }
    }

    static func frameReceived(_ frame: nghttp2_frame, _ session: H2Session) {
        let header = frame.hd
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        switch UInt32(header.type) {
        case NGHTTP2_HEADERS.rawValue:
            session.headersComplete(streamID: header.stream_id, endStream: endStream)
        case NGHTTP2_DATA.rawValue:
            if endStream { session.record(.endStream(streamID: header.stream_id)) }
        case NGHTTP2_RST_STREAM.rawValue:
            session.resetReceived(streamID: header.stream_id, errorCode: frame.rst_stream.error_code)
        case NGHTTP2_GOAWAY.rawValue:
            let goaway = frame.goaway
            let debug =
                goaway.opaque_data.map {
                    String(decoding: UnsafeBufferPointer(start: $0, count: goaway.opaque_data_len), as: UTF8.self)
                }
                ?? ""
            session.record(.goAway(lastStreamID: goaway.last_stream_id, errorCode: goaway.error_code, debugData: debug))
        case NGHTTP2_SETTINGS.rawValue:
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { session.settingsReceived() }
        case NGHTTP2_PING.rawValue:
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0 { session.record(.pingAcknowledged) }
        default:
            break
        }
    }

    /// The data provider handed to nghttp2 for every stream with a body; the stream id selects the body.
    static let bodyProvider = nghttp2_data_provider(
        source: nghttp2_data_source(ptr: nil),
        read_callback: { _, streamID, _, length, flags, _, userData in
            guard let flags else { return Int(NGHTTP2_ERR_CALLBACK_FAILURE.rawValue) }
            return H2Callbacks.withSession(userData) {
                $0.readBody(streamID: streamID, maxLength: length, flags: &flags.pointee)
            }
        }
    )
}
