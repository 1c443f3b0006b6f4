//! The one way the library reads a file from disk.
//!
//! Every file the host reads — libraries, signatures, keys, manifests,
//! package files, interface files, components — goes through [`read`] (or
//! [`RegularFile`] when the head is checked before the rest is read). A path
//! that names anything but a regular file (a FIFO that would block forever,
//! a device that never ends, a socket, a directory) is refused before it is
//! read, and no read goes past the limit of its kind of file: the size
//! `stat` reports is not trusted (`/proc` files report 0, files grow), so
//! the read itself stops one byte past the limit.

use crate::error::{Error, Result, Status};
use std::fs::{File, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest `.sig` file: a raw Ed25519 signature.
pub const SIGNATURE_LIMIT: u64 = 64;
/// Largest key file: a raw Ed25519 public key.
pub const KEY_LIMIT: u64 = 32;
/// Largest `package.toml`.
pub const MANIFEST_LIMIT: u64 = 1 << 20;
/// Largest interface file.
pub const INTERFACE_LIMIT: u64 = 1 << 20;
/// Default largest library file (configurable on the builder).
pub const DEFAULT_LIBRARY_LIMIT: u64 = 512 << 20;
/// Default largest package, all files together (configurable on the builder).
pub const DEFAULT_PACKAGE_LIMIT: u64 = 512 << 20;

/// How large a file of some kind may be, and what to call it in messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Most bytes read.
    pub bytes: u64,
    /// What the file is, e.g. "signature file".
    pub what: &'static str,
}

impl Limit {
    /// A limit of `bytes` for files called `what`.
    pub const fn new(bytes: u64, what: &'static str) -> Limit {
        Limit { bytes, what }
    }
}

/// Whether the last component of a path may be a symbolic link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Follow a link to the regular file it names.
    Follow,
    /// Refuse a link (the path was already resolved, a link there is a swap).
    Refuse,
}

/// An open regular file, checked on its descriptor.
#[derive(Debug)]
pub struct RegularFile {
    file: File,
    metadata: Metadata,
}

impl RegularFile {
    /// Opens `path` without blocking (a FIFO without a writer would block
    /// `open` itself), and refuses anything `fstat` does not call a regular
    /// file. Devices are refused by `stat` before they are opened, since
    /// opening some devices has effects of its own.
    pub fn open(path: &Path, links: Links) -> Result<RegularFile> {
        let before = match links {
            Links::Follow => std::fs::metadata(path),
            Links::Refuse => std::fs::symlink_metadata(path),
        }
        .map_err(|e| Error::io(path, &e))?;
        check_regular(path, &before)?;
        let mut options = std::fs::OpenOptions::new();
        options.read(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            let no_follow = if links == Links::Refuse { libc::O_NOFOLLOW } else { 0 };
            // O_CLOEXEC is set by std on every open.
            options.custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | no_follow);
        }
        let file = options.open(path).map_err(|e| Error::io(path, &e))?;
        let metadata = file.metadata().map_err(|e| Error::io(path, &e))?;
        check_regular(path, &metadata)?;
        Ok(RegularFile { file, metadata })
    }

    /// What `fstat` said of the open file.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Reads up to `n` bytes from the current position (fewer at the end of
    /// the file).
    pub fn read_head(&mut self, path: &Path, n: usize) -> Result<Vec<u8>> {
        let mut head = Vec::with_capacity(n);
        (&mut self.file).take(n as u64).read_to_end(&mut head).map_err(|e| Error::io(path, &e))?;
        Ok(head)
    }

    /// Reads the rest of the file after `head` (bytes already read from its
    /// start) and returns the whole file; fails past `limit` without reading
    /// or allocating more than the limit.
    pub fn read_rest(mut self, path: &Path, mut head: Vec<u8>, limit: Limit) -> Result<Vec<u8>> {
        let too_large = |size: String| {
            Error::at(
                Status::FileTooLarge,
                path,
                format!("the {} is {size} bytes, more than the limit of {} bytes", limit.what, limit.bytes),
            )
        };
        if self.metadata.len() > limit.bytes {
            return Err(too_large(self.metadata.len().to_string()));
        }
        // The size was checked against the limit, so this allocation is
        // bounded; it may still fail on a host short of memory.
        let expected = usize::try_from(self.metadata.len()).unwrap_or(usize::MAX);
        head.try_reserve_exact(expected.saturating_sub(head.len())).map_err(|_| {
            Error::at(Status::Io, path, format!("cannot allocate {expected} bytes to read the {}", limit.what))
        })?;
        let remaining = (limit.bytes + 1).saturating_sub(head.len() as u64);
        (&mut self.file).take(remaining).read_to_end(&mut head).map_err(|e| Error::io(path, &e))?;
        if head.len() as u64 > limit.bytes {
            return Err(too_large(format!("more than {}", limit.bytes)));
        }
        Ok(head)
    }
}

/// Reads the regular file at `path`, at most `limit` bytes.
pub fn read(path: &Path, links: Links, limit: Limit) -> Result<Vec<u8>> {
    RegularFile::open(path, links)?.read_rest(path, Vec::new(), limit)
}

/// Refuses anything but a regular file, naming what it is.
pub fn check_regular(path: &Path, metadata: &Metadata) -> Result<()> {
    if metadata.is_file() {
        return Ok(());
    }
    Err(Error::at(
        Status::NotARegularFile,
        path,
        format!("is {}, not a regular file", file_type_name(metadata)),
    ))
}

/// "a directory", "a FIFO", … for messages.
fn file_type_name(metadata: &Metadata) -> &'static str {
    let kind = metadata.file_type();
    if kind.is_dir() {
        return "a directory";
    }
    if kind.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
    }
    "a special file"
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fidius-disk-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn status(path: &Path, links: Links, bytes: u64) -> Status {
        read(path, links, Limit::new(bytes, "test file")).unwrap_err().status()
    }

    #[test]
    fn refuses_special_files_without_blocking() {
        let dir = scratch("special");
        let fifo = dir.join("fifo");
        let c_path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: plain syscall with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) }, 0);
        let err = read(&fifo, Links::Follow, Limit::new(64, "signature file")).unwrap_err();
        assert_eq!(err.status(), Status::NotARegularFile);
        assert!(err.message().contains("is a FIFO, not a regular file"), "{}", err.message());
        assert_eq!(status(Path::new("/dev/zero"), Links::Follow, 64), Status::NotARegularFile);
        assert_eq!(status(&dir, Links::Follow, 64), Status::NotARegularFile);
        let link = dir.join("zero-link");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        assert_eq!(status(&link, Links::Follow, 64), Status::NotARegularFile);
        assert_eq!(status(&dir.join("missing"), Links::Follow, 64), Status::FileNotFound);
    }

    #[test]
    fn reads_at_most_the_limit() {
        let dir = scratch("limits");
        let sparse = dir.join("sparse");
        std::fs::File::create(&sparse).unwrap().set_len(8 << 30).unwrap();
        let err = read(&sparse, Links::Follow, Limit::new(1 << 20, "interface file")).unwrap_err();
        assert_eq!(err.status(), Status::FileTooLarge);
        assert!(err.message().contains("interface file is 8589934592 bytes, more than the limit of 1048576"), "{}", err.message());
        // /proc files say they are empty: the read itself stops past the limit.
        assert_eq!(status(Path::new("/proc/self/maps"), Links::Follow, 16), Status::FileTooLarge);
        let exact = dir.join("exact");
        std::fs::write(&exact, [7u8; 64]).unwrap();
        assert_eq!(read(&exact, Links::Follow, Limit::new(64, "x")).unwrap(), vec![7u8; 64]);
        assert_eq!(status(&exact, Links::Follow, 63), Status::FileTooLarge);
    }

    #[test]
    fn refuses_links_where_none_is_expected() {
        let dir = scratch("links");
        std::fs::write(dir.join("real"), b"data").unwrap();
        std::os::unix::fs::symlink(dir.join("real"), dir.join("link")).unwrap();
        assert_eq!(read(&dir.join("link"), Links::Follow, Limit::new(8, "x")).unwrap(), b"data");
        assert_eq!(status(&dir.join("link"), Links::Refuse, 8), Status::NotARegularFile);
    }
}

/// Identifies one version of one file (canonical path, device, inode,
/// length, modification time), so what is made from an unchanged file is
/// made once per host and a replaced file is read and checked anew.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FileIdentity {
    path: PathBuf,
    device: u64,
    inode: u64,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

impl FileIdentity {
    /// The identity of the file at `path` now; it must be a regular file.
    pub fn of(path: &Path) -> Result<FileIdentity> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, &e))?;
        check_regular(path, &meta)?;
        let path = std::fs::canonicalize(path).map_err(|e| Error::io(path, &e))?;
        #[cfg(unix)]
        let (device, inode) = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let (device, inode) = (0, 0);
        Ok(FileIdentity { path, device, inode, len: meta.len(), modified: meta.modified().ok() })
    }

    /// The file's canonical path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
