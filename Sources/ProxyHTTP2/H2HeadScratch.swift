import CNGHTTP2
import NIOCore

/// Where a head's `nghttp2_nv` array and its bytes are laid out before a submit call; grown as heads need, freed
/// with the session.
final class H2HeadScratch {
    private var byteSpace = Space<UInt8>(capacity: 1024)
    private var nameValueSpace = Space<nghttp2_nv>(capacity: 32)

    func bytes(_ count: Int) -> UnsafeMutablePointer<UInt8> { byteSpace.reserve(count) }

    func nameValues(_ count: Int) -> UnsafeMutablePointer<nghttp2_nv> { nameValueSpace.reserve(count) }

    deinit {
        byteSpace.pointer.deallocate()
        nameValueSpace.pointer.deallocate()
    }

    /// Room for `capacity` elements (uninitialized; nothing in it outlives one submit call).
    private struct Space<Element> {
        var pointer: UnsafeMutablePointer<Element>
        var capacity: Int

        init(capacity: Int) {
            pointer = .allocate(capacity: capacity)
            self.capacity = capacity
        }

        mutating func reserve(_ count: Int) -> UnsafeMutablePointer<Element> {
            if count > capacity {
                pointer.deallocate()
                capacity = max(count, capacity * 2)
                pointer = .allocate(capacity: capacity)
            }
            return pointer
        }
    }
}
