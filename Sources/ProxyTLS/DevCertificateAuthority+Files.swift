#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

extension DevCertificateAuthority {
    /// Writes ca.crt, ca.key, server.crt, server.key into `directory` (created with 0700 if missing), each file mode 0600,
    /// written atomically (temp file in the same folder, fsync, rename). Refuses to overwrite existing files unless overwrite == true.
    ///
    /// Nothing is moved into place before all four files are on disk. Without `overwrite`, a file that already exists
    /// (or appears meanwhile) stops the write and the files this call had placed are removed again; with it, a crash
    /// between two renames can leave old and new files side by side.
    public static func write(
        _ certificates: DevCertificates,
        to directory: String,
        overwrite: Bool
    ) throws(OpenSSLError) {
        let folder = CertificateDirectory(path: directory)
        let files = [
            ("ca.crt", certificates.caCertificatePEM),
            ("ca.key", certificates.caPrivateKeyPEM),
            ("server.crt", certificates.serverCertificatePEM),
            ("server.key", certificates.serverPrivateKeyPEM),
        ]
        try folder.create()
        if !overwrite {
            for (name, _) in files {
                try folder.refuseExisting(name)
            }
        }

        var staged: [StagedFile] = []
        // A committed temp file no longer exists under its temporary name; unlinking it again is harmless.
        defer { for file in staged { unlink(file.temporaryPath) } }
        for (name, contents) in files {
            staged.append(try folder.stage(name, contents: contents))
        }

        var placed: [String] = []
        do throws(OpenSSLError) {
            for file in staged {
                try folder.commit(file, replacing: overwrite)
                placed.append(file.finalPath)
            }
        } catch {
            if !overwrite {
                for path in placed { unlink(path) }
            }
            throw error
        }
        try folder.syncEntries()
    }
}

/// A file written under a temporary name, waiting to be moved to its final one.
struct StagedFile {
    var temporaryPath: String
    var finalPath: String
}

/// The folder `DevCertificateAuthority.write` fills, through POSIX calls so that modes, fsync and no-clobber are
/// explicit.
struct CertificateDirectory {
    var path: String

    func file(_ name: String) -> String { "\(path)/\(name)" }

    /// Creates the folder (and missing parents, like `mkdir -p`) with mode 0700 for the folder itself; an existing
    /// folder is used as it is.
    func create() throws(OpenSSLError) {
        var info = stat()
        if stat(path, &info) == 0 {
            guard info.st_mode & S_IFMT == S_IFDIR else {
                throw OpenSSLError(kind: .file(path: path), operation: "use as certificate directory (not a directory)")
            }
            return
        }
        guard errno == ENOENT else { throw failure("stat", path) }
        try Self.makeDirectory(path, mode: 0o700)
        // mkdir's mode passes through the umask; the keys' folder must be 0700 whatever the umask is.
        guard chmod(path, 0o700) == 0 else { throw failure("chmod", path) }
    }

    func refuseExisting(_ name: String) throws(OpenSSLError) {
        var info = stat()
        if lstat(file(name), &info) == 0 {
            throw OpenSSLError(kind: .file(path: file(name)), operation: "write (file exists, overwrite is false)")
        }
    }

    /// Writes `contents` to a new hidden file beside the final one, mode 0600, and fsyncs it.
    func stage(_ name: String, contents: String) throws(OpenSSLError) -> StagedFile {
        let suffix = String(UInt64.random(in: .min ... .max), radix: 36)
        let temporary = file(".\(name).\(suffix).tmp")
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { throw failure("open", temporary) }
        var complete = false
        var isOpen = true
        defer {
            if isOpen { close(descriptor) }
            if !complete { unlink(temporary) }
        }
        // open's mode passes through the umask too.
        guard fchmod(descriptor, 0o600) == 0 else { throw failure("fchmod", temporary) }
        try Self.writeAll(Array(contents.utf8), to: descriptor, path: temporary)
        guard fsync(descriptor) == 0 else { throw failure("fsync", temporary) }
        isOpen = false
        guard close(descriptor) == 0 else { throw failure("close", temporary) }
        complete = true
        return StagedFile(temporaryPath: temporary, finalPath: file(name))
    }

    func commit(_ file: StagedFile, replacing: Bool) throws(OpenSSLError) {
        if replacing {
            guard rename(file.temporaryPath, file.finalPath) == 0 else { throw failure("rename", file.finalPath) }
        } else {
            // link(2) fails with EEXIST where rename(2) would replace: a file that appeared since the check survives.
            guard link(file.temporaryPath, file.finalPath) == 0 else {
                if errno == EEXIST {
                    throw OpenSSLError(
                        kind: .file(path: file.finalPath),
                        operation: "write (file exists, overwrite is false)"
                    )
                }
                throw failure("link", file.finalPath)
            }
            unlink(file.temporaryPath)
        }
    }

    /// Makes the new directory entries durable: fsync on the files covers their data, not the renames.
    func syncEntries() throws(OpenSSLError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("open", path) }
        defer { close(descriptor) }
        guard fsync(descriptor) == 0 else { throw failure("fsync", path) }
    }

    static func makeDirectory(_ path: String, mode: mode_t) throws(OpenSSLError) {
        if mkdir(path, mode) == 0 { return }
        let code = errno
        if code == EEXIST, isDirectory(path) { return }
        guard code == ENOENT, let parent = parent(of: path) else { throw failure("mkdir", path, code) }
        try makeDirectory(parent, mode: 0o755)
        if mkdir(path, mode) == 0 || (errno == EEXIST && isDirectory(path)) { return }
        throw failure("mkdir", path)
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
    }

    static func parent(of path: String) -> String? {
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        guard let slash = trimmed.lastIndex(of: "/") else { return nil }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    static func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws(OpenSSLError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                throw failure("write", path)
            }
            offset += written
        }
    }
}

private func failure(_ call: String, _ path: String, _ code: Int32 = errno) -> OpenSSLError {
    OpenSSLError(kind: .file(path: path), operation: "\(call) (\(String(cString: strerror(code))))")
}
