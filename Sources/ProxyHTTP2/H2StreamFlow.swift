import NIOCore

/// What both connection handlers track per stream for flow control in each direction.
class H2StreamFlow {
    /// A writer waiting for the stream's outgoing queue to drain below the low-water mark.
    var writeWaiter: EventLoopPromise<Void>?
    /// Bytes handed to the reader and not yet consumed: they hold the connection's receive window until the
    /// reader takes them or the stream ends.
    var unconsumed = 0

    /// Completes `promise` now, or parks it while the stream's queue is above `highWatermark`.
    func admitWrite(_ promise: EventLoopPromise<Void>, queued: Int, highWatermark: Int) {
        guard queued > highWatermark else {
            promise.succeed(())
            return
        }
        writeWaiter?.succeed(())
        writeWaiter = promise
    }
}

extension H2Session {
    /// Lets the parked writers of streams whose queue drained to half the high-water mark go on.
    func releaseWriters(of streams: H2StreamTable<some H2StreamFlow>, highWatermark: Int) {
        for (id, stream) in streams where stream.writeWaiter != nil {
            if bufferedBodyBytes(streamID: id) <= highWatermark / 2 {
                let waiter = stream.writeWaiter
                stream.writeWaiter = nil
                waiter?.succeed(())
            }
        }
    }

    /// The reader of `stream` took `count` bytes: the window may open again.
    func consumed(_ count: Int, of stream: H2StreamFlow, id: Int32) {
        stream.unconsumed -= count
        consume(streamID: id, count)
    }
}
