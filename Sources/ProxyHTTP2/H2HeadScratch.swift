import CNGHTTP2
import NIOCore

/// Where a head's `nghttp2_nv` array and its bytes are laid out before a submit call; grown as heads need, freed
/// with the session.
final class H2HeadScratch {
    private var byteSpace = UnsafeMutablePointer<UInt8>.allocate(capacity: 1024)
    private var byteCapacity = 1024
    private var nameValueSpace = UnsafeMutablePointer<nghttp2_nv>.allocate(capacity: 32)
    private var nameValueCapacity = 32

    func bytes(_ count: Int) -> UnsafeMutablePointer<UInt8> {
        if count > byteCapacity {
            byteSpace.deallocate()
            byteCapacity = max(count, byteCapacity * 2)
            byteSpace = .allocate(capacity: byteCapacity)
        }
        return byteSpace
    }

    func nameValues(_ count: Int) -> UnsafeMutablePointer<nghttp2_nv> {
        if count > nameValueCapacity {
            nameValueSpace.deallocate()
            nameValueCapacity = max(count, nameValueCapacity * 2)
            nameValueSpace = .allocate(capacity: nameValueCapacity)
        }
        return nameValueSpace
    }

    deinit {
        byteSpace.deallocate()
        nameValueSpace.deallocate()
    }
}
