import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `storage.data_folder`: private to the proxy's user (0700), created if missing; files in it are written
/// atomically (temporary file, fsync, rename, fsync of the folder) with mode 0600.
public struct DataFolder: Sendable {
    public let path: String

    /// Creates the folder (0700) if it does not exist; refuses one that group or others can read or write.
    public init(path: String) throws(VaultError) {
        self.path = path.count > 1 && path.hasSuffix("/") ? String(path.dropLast()) : path
        var info = stat()
        if stat(self.path, &info) != 0 {
            guard errno == ENOENT else { throw .io(operation: "stat", path: self.path, errno: errno) }
            do {
                try FileManager.default.createDirectory(
                    atPath: self.path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw .folderUnusable(path: self.path, reason: "cannot create it")
            }
            // The umask may have narrowed or the attribute may not have applied to the last component.
            guard chmod(self.path, 0o700) == 0, stat(self.path, &info) == 0 else {
                throw .io(operation: "chmod", path: self.path, errno: errno)
            }
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { throw .folderUnusable(path: self.path, reason: "not a folder") }
        let permissions = UInt16(info.st_mode & 0o777)
        guard permissions & 0o077 == 0 else { throw .insecureFolder(path: self.path, mode: permissions) }
    }

    public func file(_ name: String) -> String { path + "/" + name }

    public func exists(_ name: String) -> Bool { access(file(name), F_OK) == 0 }

    /// Names of the entries in the folder (no `.`/`..`), sorted.
    public func fileNames() throws(VaultError) -> [String] {
        do {
            return try FileManager.default.contentsOfDirectory(atPath: path).sorted()
        } catch {
            throw .folderUnusable(path: path, reason: "cannot list it")
        }
    }

    public func read(_ name: String) throws(VaultError) -> [UInt8] {
        guard let data = FileManager.default.contents(atPath: file(name)) else {
            throw .io(operation: "read", path: file(name), errno: errno == 0 ? EIO : errno)
        }
        return Array(data)
    }

    /// Replaces (or creates) `name` with `bytes` so that a crash at any instant leaves either the old or the
    /// new content, never a mix: write a temporary file in the same folder (O_EXCL, 0600), fsync it, rename it
    /// over the target (atomic on POSIX), then fsync the folder so the rename itself is durable.
    public func writeAtomically(_ bytes: [UInt8], to name: String) throws(VaultError) {
        let suffix = (try? SecureRandom.bytes(6).map { String($0, radix: 16) }.joined()) ?? "0"
        let temporaryName = Self.temporaryPrefix + name + ".\(getpid()).\(suffix)"
        let temporaryPath = file(temporaryName)
        let descriptor = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw .io(operation: "create", path: temporaryPath, errno: errno) }
        var failure: VaultError?
        var written = 0
        bytes.withUnsafeBytes { buffer in
            while written < buffer.count {
                let result = write(descriptor, buffer.baseAddress! + written, buffer.count - written)
                if result < 0 {
                    if errno == EINTR { continue }
                    failure = .io(operation: "write", path: temporaryPath, errno: errno)
                    return
                }
                written += result
            }
        }
        if failure == nil && fsync(descriptor) != 0 {
            failure = .io(operation: "fsync", path: temporaryPath, errno: errno)
        }
        if close(descriptor) != 0 && failure == nil {
            failure = .io(operation: "close", path: temporaryPath, errno: errno)
        }
        if failure == nil && rename(temporaryPath, file(name)) != 0 {
            failure = .io(operation: "rename", path: temporaryPath, errno: errno)
        }
        if let failure {
            unlink(temporaryPath)
            throw failure
        }
        try syncFolder()
    }

    /// Renames within the folder and makes the rename durable.
    public func move(_ from: String, to: String) throws(VaultError) {
        guard rename(file(from), file(to)) == 0 else { throw .io(operation: "rename", path: file(from), errno: errno) }
        try syncFolder()
    }

    public func syncFolder() throws(VaultError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw .io(operation: "open", path: path, errno: errno) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw .io(operation: "fsync", path: path, errno: errno) }
    }

    /// Temporary files start with this; readers ignore them.
    static let temporaryPrefix = ".tmp-"

    /// Removes temporary files left by writers that died (their pid is gone); a live writer's are kept.
    public func removeAbandonedTemporaryFiles() throws(VaultError) {
        for name in try fileNames() where name.hasPrefix(Self.temporaryPrefix) {
            let parts = name.split(separator: ".")
            guard parts.count >= 3, let pid = Int32(parts[parts.count - 2]) else { continue }
            if pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH { unlink(file(name)) }
        }
    }
}
