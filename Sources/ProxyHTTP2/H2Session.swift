import CNGHTTP2
import NIOCore

/// One HTTP/2 connection as a sans-I/O engine around an nghttp2 session (client or server role).
///
/// Bytes from the peer go in through `receive`, and what happened comes out as `H2Event` values from
/// `takeEvents`; requests, responses and body bytes go in through `submit…`/`sendBody`, and the frames to put on
/// the wire come out of `takeOutput`. No sockets, no event loop (curl's lib/http2.c and nghttp2's own examples
/// drive it the same way, through `nghttp2_session_mem_recv`/`mem_send`).
///
/// Receive windows are opened only by `consume`: automatic WINDOW_UPDATE is off, so a consumer that has not
/// taken a stream's bytes keeps that stream's window shut — backpressure reaches the peer.
///
/// Not Sendable: one connection, one thread (its event loop).
public final class H2Session {
    public struct Settings: Sendable {
        /// SETTINGS_MAX_CONCURRENT_STREAMS we announce (RFC 9113 §6.5.2).
        public var maxConcurrentStreams: UInt32 = 128
        /// SETTINGS_INITIAL_WINDOW_SIZE: how much of each stream the peer may send before we consume.
        public var initialWindowSize: UInt32 = 1 << 20
        /// Connection-level receive window (all streams together).
        public var connectionWindowSize: Int32 = 16 << 20
        /// SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113 §6.5.2).
        public var maxHeaderListSize: UInt32 = 64 << 10

        public init() {}
    }

    // Set once in init, after `self` exists (nghttp2 needs it as user data); never nil afterwards.
    private var handle: OpaquePointer!
    public let role: H2Role
    private var events: [H2Event] = []
    /// A list given back by `recycle`, empty, taking the next events in the memory it has.
    private var spareEvents: [H2Event] = []
    /// The header block being received (one at a time).
    private var block: HeaderBlock?
    /// Where received heads' fields are laid out.
    private var fieldBuilder = FieldBlockBuilder()
    /// Our SETTINGS_MAX_HEADER_LIST_SIZE: announcing it is advisory, so it is enforced here.
    private let maxHeaderListSize: Int
    /// Bodies we are sending, by stream; read by nghttp2's data provider.
    private var outgoing = H2StreamTable<OutgoingBody>()
    private let allocator = ByteBufferAllocator()
    /// nghttp2's own allocations; released after the session (stored properties outlive `deinit`'s body).
    private let memoryPool = H2MemoryPool()
    /// Where heads are laid out for nghttp2 (`H2HeadWriter`).
    private var headSpace = H2HeadSpace()
    /// Inside `receive`: how many bytes it was given (0 outside). DATA received meanwhile goes to `received`, and
    /// `dataSlices` says which event gets which part of it.
    private var receiving = 0
    private var received = ByteBuffer()
    private var dataSlices: [(event: Int, offset: Int, length: Int)] = []
    /// Inside `receive(_: ByteBuffer)`: the buffer and where its readable bytes start. A DATA chunk that fills a good
    /// part of it becomes a slice of it instead of a copy.
    private var input: (buffer: ByteBuffer, base: UnsafeRawPointer)?
    /// The peer sent GOAWAY: no new streams may be opened on this connection.
    public private(set) var peerWentAway = false
    /// RST_STREAM frames received so far (the server shell rate-limits them: CVE-2023-44487).
    public private(set) var resetsReceived = 0

    public init(role: H2Role, settings: Settings = Settings()) throws(H2Error) {
        self.role = role
        self.maxHeaderListSize = Int(settings.maxHeaderListSize)
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0, let callbacks else {
            throw H2Error(operation: "nghttp2_session_callbacks_new")
        }
        defer { nghttp2_session_callbacks_del(callbacks) }
        H2Callbacks.install(on: callbacks)

        var option: OpaquePointer?
        guard nghttp2_option_new(&option) == 0, let option else { throw H2Error(operation: "nghttp2_option_new") }
        defer { nghttp2_option_del(option) }
        nghttp2_option_set_no_auto_window_update(option, 1)
        // Peers announce their own limit in SETTINGS; until then assume a conservative one.
        nghttp2_option_set_peer_max_concurrent_streams(option, 100)
        // nghttp2's own rapid-reset guard (Debian backport, CVE-2023-44487) ends the session with INTERNAL_ERROR;
        // the server shell counts resets itself and answers ENHANCE_YOUR_CALM (RFC 9113 §7), so nghttp2's
        // limit is only a far-off backstop.
        nghttp2_option_set_stream_reset_rate_limit(option, 100_000, 10_000)
        // A server keeps closed streams only for RFC 7540's priority tree, which RFC 9113 deprecated and clients no
        // longer send: closing a stream then cost evicting an older one on every request.
        nghttp2_option_set_no_closed_streams(option, 1)

        let userData = Unmanaged.passUnretained(self).toOpaque()
        var session: OpaquePointer?
        var memory = memoryPool.nghttp2Memory()
        let created =
            role == .client
            ? nghttp2_session_client_new3(&session, callbacks, userData, option, &memory)
            : nghttp2_session_server_new3(&session, callbacks, userData, option, &memory)
        guard created == 0, let session else { throw H2Error(code: created, operation: "nghttp2_session_new") }
        handle = session

        var entries = [
            Self.setting(NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, settings.maxConcurrentStreams),
            Self.setting(NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings.initialWindowSize),
            Self.setting(NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, settings.maxHeaderListSize),
        ]
        if role == .client { entries.append(Self.setting(NGHTTP2_SETTINGS_ENABLE_PUSH, 0)) }
        try check(
            nghttp2_submit_settings(handle, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count),
            "submit SETTINGS")
        try check(
            nghttp2_session_set_local_window_size(
                handle, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, settings.connectionWindowSize),
            "set connection window"
        )
    }

    deinit {
        nghttp2_session_del(handle)
        headSpace.deallocate()
    }

    private static func setting(_ id: nghttp2_settings_id, _ value: UInt32) -> nghttp2_settings_entry {
        nghttp2_settings_entry(settings_id: Int32(id.rawValue), value: value)
    }

    private func check(_ result: Int32, _ operation: String) throws(H2Error) {
        guard result == 0 else { throw H2Error(code: result, operation: operation, detail: Self.errorText(result)) }
    }

    static func errorText(_ code: Int32) -> String {
        String(cString: nghttp2_strerror(code))
    }

    // MARK: - Bytes in and out

    /// Processes bytes from the peer. Events land in `takeEvents`; frames to answer with in `takeOutput`.
    /// An error means the connection is finished (nghttp2 has queued a GOAWAY where appropriate).
    public func receive(_ buffer: ByteBuffer) -> H2Error? {
        buffer.withUnsafeReadableBytes { bytes in
            if let base = bytes.baseAddress { input = (buffer, base) }
            defer { input = nil }
            return receive(bytes)
        }
    }

    /// The same for bytes lent for the call: all DATA is copied out of them.
    public func receive(_ bytes: UnsafeRawBufferPointer) -> H2Error? {
        guard let base = bytes.baseAddress, bytes.count > 0 else { return nil }
        receiving = bytes.count
        let consumed = nghttp2_session_mem_recv(handle, base.assumingMemoryBound(to: UInt8.self), bytes.count)
        receiving = 0
        if !dataSlices.isEmpty { sliceReceivedData() }
        if consumed < 0 {
            let code = Int32(consumed)
            return H2Error(code: code, operation: "HTTP/2 receive", detail: Self.errorText(code))
        }
        return nil
    }

    public func takeEvents() -> [H2Event] {
        // Handed over whole, not copied: emptying a shared array keeping its capacity would allocate every time,
        // also when there was nothing to take.
        guard !events.isEmpty else { return [] }
        let taken = events
        events = spareEvents
        spareEvents = []
        return taken
    }

    /// Gives a list `takeEvents` returned back once its events are handled, for the next ones to go in its memory:
    /// one list is not allocated for every read.
    public func recycle(_ taken: consuming [H2Event]) {
        var list = taken
        guard list.capacity <= Self.spareEventsLimit else { return }
        list.removeAll(keepingCapacity: true)
        spareEvents = list
    }

    static let spareEventsLimit = 256

    /// Appends every frame nghttp2 wants to send to `buffer`. DATA frames are written by `sendData`, called from
    /// inside `nghttp2_session_mem_send`, into the same buffer (held in `output` meanwhile).
    public func takeOutput(into buffer: inout ByteBuffer) -> H2Error? {
        swap(&output, &buffer)
        defer { swap(&output, &buffer) }
        while true {
            var data: UnsafePointer<UInt8>?
            let length = nghttp2_session_mem_send(handle, &data)
            if length < 0 {
                let code = Int32(length)
                return H2Error(code: code, operation: "HTTP/2 send", detail: Self.errorText(code))
            }
            guard length > 0, let data else { return nil }
            reserveOutput(length)
            output.writeBytes(UnsafeRawBufferPointer(start: data, count: length))
        }
    }

    /// Inside `takeOutput`: the buffer frames are written to.
    private var output = ByteBuffer()

    /// Room for the usual flush at once: nghttp2 hands out one frame at a time, and growing the buffer frame by
    /// frame reallocates.
    private func reserveOutput(_ length: Int) {
        if output.writableBytes < length { output.reserveCapacity(minimumWritableBytes: Swift.max(length, 8192)) }
    }

    /// A DATA frame whose bytes `readBody` left where they are queued (NGHTTP2_DATA_FLAG_NO_COPY): its header,
    /// then its bytes copied once, from the queued body straight into the output (not into nghttp2's frame buffer
    /// and out of it again). No padding is ever asked for, but it is written as nghttp2 says if there is any.
    /// Nothing is written unless the bytes are there: then nghttp2 resets just this stream (it cannot happen, as
    /// nothing runs between `readBody` and this call).
    func sendData(streamID: Int32, frameHeader: UnsafePointer<UInt8>, length: Int, padding: Int) -> Int32 {
        let sent = outgoing.withValue(forKey: streamID) { body -> Bool? in
            guard body.bufferedBytes >= length else { return nil }
            reserveOutput(9 + length + padding)
            output.writeBytes(UnsafeRawBufferPointer(start: frameHeader, count: 9))
            if padding > 0 { output.writeInteger(UInt8(padding - 1)) }
            output.writeWithUnsafeMutableBytes(minimumWritableBytes: length) { target in
                body.take(into: UnsafeMutableRawBufferPointer(rebasing: target[..<length]))
            }
            if padding > 1 { output.writeRepeatingByte(0, count: padding - 1) }
            return body.isEmpty && body.ended
        }
        // Nil for no body as for too few bytes; otherwise whether the body is now all sent.
        guard let finished = sent ?? nil else { return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue }
        if finished { outgoing.removeValue(forKey: streamID) }
        return 0
    }

    /// All pending output as an array (tests).
    public func takeOutput() -> [UInt8] {
        var buffer = allocator.buffer(capacity: 0)
        _ = takeOutput(into: &buffer)
        return Array(buffer.readableBytesView)
    }

    /// Whether the session still expects to read or write (false once both sides said GOAWAY and streams ended).
    public var isAlive: Bool { nghttp2_session_want_read(handle) != 0 || nghttp2_session_want_write(handle) != 0 }

    // MARK: - Streams

    /// Opens a stream with a request (client role). With `endStream` the request has no body; otherwise send
    /// it with `sendBody`. Returns the new stream's id.
    public func submitRequest(_ fields: [H2Field], endStream: Bool) throws(H2Error) -> Int32 {
        try submitRequest(endStream: endStream) { head in head.add(fields) }
    }

    /// The same with the head written by `head` straight into the session's head space.
    public func submitRequest(endStream: Bool, head: (inout H2HeadWriter) -> Void) throws(H2Error) -> Int32 {
        guard !peerWentAway else {
            throw H2Error(
                code: Int32(NGHTTP2_ERR_START_STREAM_NOT_ALLOWED.rawValue), operation: "submit request",
                detail: "peer sent GOAWAY")
        }
        var writer = H2HeadWriter(headSpace)
        head(&writer)
        let (nva, count, space) = writer.finish()
        headSpace = space
        let streamID: Int32
        if endStream {
            streamID = nghttp2_submit_request(handle, nil, nva, count, nil, nil)
        } else {
            var provider = H2Callbacks.bodyProvider
            streamID = nghttp2_submit_request(handle, nil, nva, count, &provider, nil)
        }
        guard streamID > 0 else {
            throw H2Error(code: streamID, operation: "submit request", detail: Self.errorText(streamID))
        }
        if !endStream { outgoing[streamID] = OutgoingBody() }
        return streamID
    }

    /// Answers a stream with a response head (server role); body as for `submitRequest`.
    public func submitResponse(streamID: Int32, _ fields: [H2Field], endStream: Bool) throws(H2Error) {
        try submitResponse(streamID: streamID, endStream: endStream) { head in head.add(fields) }
    }

    /// Bytes in the HPACK encoder's dynamic table (RFC 7541 §4.1 sizes): what the heads sent so far left indexed.
    var encoderTableSize: Int { nghttp2_session_get_hd_deflate_dynamic_table_size(handle) }

    /// The same with the head written by `head` straight into the session's head space.
    public func submitResponse(
        streamID: Int32, endStream: Bool, head: (inout H2HeadWriter) -> Void
    ) throws(H2Error) {
        // nghttp2 refuses these too, but the stream table cannot even hold 0 (the connection).
        guard streamID > 0 else {
            let code = Int32(NGHTTP2_ERR_INVALID_ARGUMENT.rawValue)
            throw H2Error(code: code, operation: "submit response", detail: Self.errorText(code))
        }
        if !endStream { outgoing[streamID] = OutgoingBody() }
        var writer = H2HeadWriter(headSpace)
        head(&writer)
        let (nva, count, space) = writer.finish()
        headSpace = space
        let result: Int32
        if endStream {
            result = nghttp2_submit_response(handle, streamID, nva, count, nil)
        } else {
            var provider = H2Callbacks.bodyProvider
            result = nghttp2_submit_response(handle, streamID, nva, count, &provider)
        }
        if result != 0 {
            outgoing[streamID] = nil
            throw H2Error(code: result, operation: "submit response", detail: Self.errorText(result))
        }
    }

    /// Queues body bytes for a stream opened with `endStream: false`. With `endStream` the body ends after them.
    public func sendBody(streamID: Int32, _ bytes: ByteBuffer, endStream: Bool) {
        let resume = outgoing.withValue(forKey: streamID) { body in
            if bytes.readableBytes > 0 { body.append(bytes) }
            if endStream { body.ended = true }
            defer { body.deferred = false }
            return body.deferred
        }
        if resume == true { _ = nghttp2_session_resume_data(handle, streamID) }
    }

    /// Body bytes queued for `streamID` that nghttp2 has not framed yet (the sender's backpressure signal).
    public func bufferedBodyBytes(streamID: Int32) -> Int {
        outgoing[streamID]?.bufferedBytes ?? 0
    }

    /// Tells nghttp2 the consumer has taken `count` bytes of `streamID`'s body: its window may open again.
    public func consume(streamID: Int32, _ count: Int) {
        guard count > 0 else { return }
        if nghttp2_session_consume(handle, streamID, count) != 0 {
            // The stream is gone: the bytes still count against the connection window.
            _ = nghttp2_session_consume_connection(handle, count)
        }
    }

    /// Resets a stream (RST_STREAM), e.g. CANCEL when the client of a proxied request went away.
    public func resetStream(_ streamID: Int32, errorCode: UInt32) {
        outgoing[streamID] = nil
        _ = nghttp2_submit_rst_stream(handle, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, errorCode)
    }

    /// Announces GOAWAY: streams above the last one the peer opened will not be processed.
    public func goAway(errorCode: UInt32, debugData: String = "") {
        let last = nghttp2_session_get_last_proc_stream_id(handle)
        var bytes = Array(debugData.utf8)
        _ = nghttp2_submit_goaway(handle, UInt8(NGHTTP2_FLAG_NONE.rawValue), last, errorCode, &bytes, bytes.count)
    }

    public func ping() {
        _ = nghttp2_submit_ping(handle, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil)
    }

    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS (100 until its SETTINGS arrive).
    public var peerMaxConcurrentStreams: UInt32 {
        nghttp2_session_get_remote_settings(handle, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
    }

    /// How many more bytes of `streamID`'s body the peer lets us send now.
    public func sendWindow(streamID: Int32) -> Int {
        Int(
            min(
                nghttp2_session_get_stream_remote_window_size(handle, streamID),
                nghttp2_session_get_remote_window_size(handle)))
    }

    // MARK: - From the callbacks (H2Callbacks)

    func record(_ event: H2Event) {
        if case .goAway = event { peerWentAway = true }
        events.append(event)
    }

    func beginHeaders(streamID: Int32) {
        block = HeaderBlock(streamID: streamID)
        fieldBuilder.begin()
    }

    /// Adds a field to the block being received; false when the block grew past our header list limit (the
    /// stream is then reset; HPACK can expand a small frame into a large list, so frame sizes are no bound).
    func header(streamID: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) -> Bool {
        guard block?.streamID == streamID else { return false }
        guard
            block!.add(
                name: UnsafeRawBufferPointer(name), value: UnsafeRawBufferPointer(value), limit: maxHeaderListSize)
        else {
            block = nil
            return false
        }
        fieldBuilder.add(name: UnsafeRawBufferPointer(name), value: UnsafeRawBufferPointer(value))
        return true
    }

    func headersComplete(streamID: Int32, endStream: Bool) {
        var fields = FieldBlock()
        if block?.streamID == streamID {
            block = nil
            fields = fieldBuilder.finish()
        }
        events.append(.headers(streamID: streamID, fields: fields, endStream: endStream))
    }

    /// A slice keeps its whole buffer alive (a body held back for a slow reader, say), so the shared buffer is kept
    /// small: at most this much, and larger chunks get their own.
    static let sharedDataLimit = 16 * 1024

    /// A large chunk received from a `ByteBuffer` is a slice of it (`inputSlice`). Other body bytes are gathered
    /// into one buffer per `receive` call (the DATA of all its frames fits in the bytes received), and each event
    /// gets its slice once nghttp2 is done: one allocation per socket read instead of one per DATA frame. (Slicing
    /// as they come would not do: writing to a buffer that slices share copies it.)
    func dataChunk(streamID: Int32, bytes: UnsafeBufferPointer<UInt8>) {
        if let slice = inputSlice(bytes) {
            events.append(.data(streamID: streamID, bytes: slice))
            return
        }
        if receiving > 0, dataSlices.isEmpty {
            received = allocator.buffer(capacity: min(receiving, Self.sharedDataLimit))
        }
        guard receiving > 0, received.writableBytes >= bytes.count else {
            events.append(.data(streamID: streamID, bytes: allocator.buffer(bytes: bytes)))
            return
        }
        let offset = received.writerIndex
        received.writeBytes(bytes)
        dataSlices.append((event: events.count, offset: offset, length: bytes.count))
        events.append(.data(streamID: streamID, bytes: ByteBuffer()))
    }

    /// The chunk as a slice of the buffer being received, if it lies in it and is at least a quarter of the buffer's
    /// storage (what a slice held back for a slow reader keeps alive is then at most four times its size): a large
    /// DATA frame, an event stream's whole body say, is not copied.
    private func inputSlice(_ bytes: UnsafeBufferPointer<UInt8>) -> ByteBuffer? {
        guard let input, let start = bytes.baseAddress, bytes.count * 4 >= input.buffer.capacity else { return nil }
        let offset = input.base.distance(to: UnsafeRawPointer(start))
        guard offset >= 0, offset + bytes.count <= input.buffer.readableBytes else { return nil }
        return input.buffer.getSlice(at: input.buffer.readerIndex + offset, length: bytes.count)
    }

    private func sliceReceivedData() {
        for slice in dataSlices {
            guard case .data(let streamID, _) = events[slice.event],
                let bytes = received.getSlice(at: slice.offset, length: slice.length)
            else { continue }
            events[slice.event] = .data(streamID: streamID, bytes: bytes)
        }
        dataSlices.removeAll(keepingCapacity: true)
        received = ByteBuffer()
    }

    func resetReceived(streamID: Int32, errorCode: UInt32) {
        resetsReceived += 1
        outgoing[streamID] = nil
        events.append(.reset(streamID: streamID, errorCode: errorCode))
    }

    func streamClosed(streamID: Int32, errorCode: UInt32) {
        outgoing[streamID] = nil
        if block?.streamID == streamID { block = nil }
        events.append(.streamClosed(streamID: streamID, errorCode: errorCode))
    }

    func settingsReceived() {
        events.append(
            .settings(
                maxConcurrentStreams: nghttp2_session_get_remote_settings(
                    handle, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
                initialWindowSize: nghttp2_session_get_remote_settings(handle, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE)
            ))
    }

    /// nghttp2's data provider: how many queued body bytes the next DATA frame carries (at most `maxLength`), left
    /// where they are for `sendData` (nghttp2's frame buffer is not written); or defers until more arrive.
    func readBody(streamID: Int32, maxLength: Int, flags: inout UInt32) -> Int {
        let taken = outgoing.withValue(forKey: streamID) { body in
            let length = Swift.min(body.bufferedBytes, maxLength)
            if body.bufferedBytes == 0, !body.ended { body.deferred = true }
            return (length, length == body.bufferedBytes, body.ended)
        }
        guard let (length, drained, ended) = taken else {
            flags |= NGHTTP2_DATA_FLAG_EOF.rawValue
            return 0
        }
        if drained {
            if ended {
                flags |= NGHTTP2_DATA_FLAG_EOF.rawValue  // the body is forgotten once `sendData` has sent it
            } else if length == 0 {
                return Int(NGHTTP2_ERR_DEFERRED.rawValue)
            }
        }
        flags |= NGHTTP2_DATA_FLAG_NO_COPY.rawValue
        return length
    }
}

/// A stream's outgoing body, fed by `sendBody` and drained by nghttp2's data provider. A value in the session's
/// table, its chunks queue only made when a second chunk waits behind the first (a JSON body or an SSE event is
/// usually framed before the next one arrives): no allocation per stream for the common case.
struct OutgoingBody {
    /// The oldest chunk not framed yet, then the ones behind it.
    private var first: ByteBuffer?
    private var rest: CircularBuffer<ByteBuffer>?
    private(set) var bufferedBytes = 0
    var ended = false
    /// The provider returned NGHTTP2_ERR_DEFERRED: `sendBody` must resume the stream.
    var deferred = false

    var isEmpty: Bool { first == nil }

    mutating func append(_ bytes: ByteBuffer) {
        bufferedBytes += bytes.readableBytes
        if first == nil {
            first = bytes
        } else {
            if rest == nil { rest = CircularBuffer(initialCapacity: 4) }
            rest!.append(bytes)
        }
    }

    /// Copies queued bytes, oldest first, into `buffer`; returns how many.
    mutating func take(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var written = 0
        while written < buffer.count, var chunk = first {
            let count = min(buffer.count - written, chunk.readableBytes)
            chunk.readWithUnsafeReadableBytes { source in
                UnsafeMutableRawBufferPointer(rebasing: buffer[written..<(written + count)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: source[..<count]))
                return count
            }
            written += count
            if chunk.readableBytes == 0 {
                first = rest?.popFirst()
            } else {
                first = chunk
            }
        }
        bufferedBytes -= written
        return written
    }
}

@available(*, unavailable)
extension H2Session: Sendable {}
