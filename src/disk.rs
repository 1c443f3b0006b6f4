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
        RegularFile::open_checked(path, links)
    }

    /// Opens `path`, which a directory listing has just called a regular
    /// file (not a link): the listing stands in for the `stat` `open` makes
    /// first, and is no older than that `stat` would be. Links are refused.
    pub fn open_listed(path: &Path) -> Result<RegularFile> {
        RegularFile::open_checked(path, Links::Refuse)
    }

    /// Opens `path`, found to be a regular file, and checks again on the
    /// descriptor.
    fn open_checked(path: &Path, links: Links) -> Result<RegularFile> {
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

    /// The open file itself, for reading it as a stream.
    pub fn into_file(self) -> File {
        self.file
    }

    /// What `fstat` said of the open file.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// Whether the file holds exactly `bytes`: its size, then its contents
    /// read by offset a chunk at a time (the file position is left alone).
    #[cfg(unix)]
    pub fn holds(&self, bytes: &[u8]) -> std::io::Result<bool> {
        use std::os::unix::fs::FileExt;
        if self.metadata.len() != bytes.len() as u64 {
            return Ok(false);
        }
        const CHUNK: usize = 64 << 10;
        let mut buffer = vec![0u8; CHUNK.min(bytes.len())];
        for (index, expected) in bytes.chunks(CHUNK).enumerate() {
            let read = &mut buffer[..expected.len()];
            match self.file.read_exact_at(read, (index * CHUNK) as u64) {
                Ok(()) if read == expected => {}
                Ok(()) => return Ok(false),
                // Shorter than fstat said: changed since.
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Files cannot be read by offset here: never known to hold anything.
    #[cfg(not(unix))]
    pub fn holds(&self, _bytes: &[u8]) -> std::io::Result<bool> {
        Ok(false)
    }

    /// Reads up to `n` bytes from the current position (fewer at the end of
    /// the file).
    pub fn read_head(&mut self, path: &Path, n: usize) -> Result<Vec<u8>> {
        let mut head = Vec::with_capacity(n);
        (&mut self.file).take(n as u64).read_to_end(&mut head).map_err(|e| Error::io(path, &e))?;
        Ok(head)
    }

    /// Copies the whole file (from its start) into `out`, at most `limit`
    /// bytes. The kernel copies it where it can (`copy_file_range`,
    /// `sendfile`), without passing it through a buffer here.
    pub fn copy_into(self, path: &Path, out: &mut File, limit: Limit) -> Result<()> {
        let len = self.metadata.len();
        if len > limit.bytes {
            return Err(too_large(path, limit, len.to_string()));
        }
        let mut file = self.file;
        std::io::Seek::rewind(&mut file).map_err(|e| Error::io(path, &e))?;
        // One byte past the limit tells a file that grew past it.
        let copied = std::io::copy(&mut (&file).take(limit.bytes + 1), out).map_err(|e| Error::io(path, &e))?;
        if copied > limit.bytes {
            return Err(too_large(path, limit, format!("more than {}", limit.bytes)));
        }
        Ok(())
    }

    /// Reads the file by offset, in chunks as they are asked for; fails if
    /// `fstat` says it is larger than `limit`.
    pub fn into_chunks(self, path: &Path, limit: Limit) -> Result<FileChunks> {
        let len = self.metadata.len();
        if len > limit.bytes {
            return Err(too_large(path, limit, len.to_string()));
        }
        let count = usize::try_from(len.div_ceil(CHUNK_LEN as u64)).unwrap_or(usize::MAX);
        let mut chunks = Vec::new();
        chunks.try_reserve_exact(count).map_err(|_| {
            Error::at(Status::Io, path, format!("cannot allocate an index of {count} chunks to read the {}", limit.what))
        })?;
        chunks.resize_with(count, || None);
        Ok(FileChunks { file: self.file, len, chunks: chunks.into(), error: None.into() })
    }

    /// Reads the rest of the file after `head` (bytes already read from its
    /// start) and returns the whole file; fails past `limit` without reading
    /// or allocating more than the limit.
    pub fn read_rest(mut self, path: &Path, mut head: Vec<u8>, limit: Limit) -> Result<Vec<u8>> {
        let too_large = |size: String| too_large(path, limit, size);
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

/// Bytes of a file read by offset: a whole file in memory, or
/// [`FileChunks`] reading an open file piece by piece.
pub trait ReadAt {
    /// The file's length in bytes.
    fn size(&self) -> u64;
    /// Fills `out` with the bytes at `offset`; false if any of them lies
    /// past the end (or cannot be read).
    fn read_at(&self, offset: u64, out: &mut [u8]) -> bool;
}

impl ReadAt for [u8] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> bool {
        let Ok(start) = usize::try_from(offset) else { return false };
        match start.checked_add(out.len()).and_then(|end| self.get(start..end)) {
            Some(bytes) => {
                out.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
}

/// Bytes of a [`FileChunks`] read at once: a library's headers, tables and
/// dynamic section lie in a few of them, however large the file.
const CHUNK_LEN: usize = 16 << 10;

/// An open regular file read in [`CHUNK_LEN`] pieces as they are asked
/// for, each piece once. The file's length was checked against a limit,
/// which bounds what is kept.
#[derive(Debug)]
pub struct FileChunks {
    file: File,
    len: u64,
    chunks: std::cell::RefCell<Vec<Option<Box<[u8]>>>>,
    /// The first read error, reported instead of a "truncated file".
    error: std::cell::RefCell<Option<std::io::Error>>,
}

impl FileChunks {
    /// The error a failed read met, if any; checks that found the file
    /// "truncated" report this instead.
    pub fn read_error(&self, path: &Path) -> Option<Error> {
        self.error.borrow().as_ref().map(|e| Error::io(path, e))
    }

    /// Reads chunk `index` into `slot`; false if it cannot be read.
    fn fill(&self, index: usize, slot: &mut Option<Box<[u8]>>) -> bool {
        let start = (index * CHUNK_LEN) as u64;
        let mut chunk = vec![0u8; (self.len - start).min(CHUNK_LEN as u64) as usize];
        if let Err(e) = read_exact_at(&self.file, &mut chunk, start) {
            // A file that shrank since `fstat` is a truncated file, not an I/O error.
            if e.kind() != std::io::ErrorKind::UnexpectedEof {
                self.error.borrow_mut().get_or_insert(e);
            }
            return false;
        }
        *slot = Some(chunk.into_boxed_slice());
        true
    }
}

impl ReadAt for FileChunks {
    fn size(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, out: &mut [u8]) -> bool {
        let Some(end) = offset.checked_add(out.len() as u64).filter(|end| *end <= self.len) else { return false };
        // The file is at most `usize::MAX` bytes: it was allocated an index.
        let (mut at, end) = (offset as usize, end as usize);
        let mut chunks = self.chunks.borrow_mut();
        let mut filled = 0;
        // A field may straddle two chunks.
        while at < end {
            let index = at / CHUNK_LEN;
            let slot = &mut chunks[index];
            if slot.is_none() && !self.fill(index, slot) {
                return false;
            }
            let chunk = slot.as_deref().expect("filled above");
            let from = at % CHUNK_LEN;
            let n = (chunk.len() - from).min(end - at);
            out[filled..filled + n].copy_from_slice(&chunk[from..from + n]);
            filled += n;
            at += n;
        }
        true
    }
}

#[cfg(unix)]
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Reads the regular file at `path`, at most `limit` bytes.
pub fn read(path: &Path, links: Links, limit: Limit) -> Result<Vec<u8>> {
    RegularFile::open(path, links)?.read_rest(path, Vec::new(), limit)
}

fn too_large(path: &Path, limit: Limit, size: String) -> Error {
    Error::at(
        Status::FileTooLarge,
        path,
        format!("the {} is {size} bytes, more than the limit of {} bytes", limit.what, limit.bytes),
    )
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
    fn reads_chunks_by_offset() {
        let dir = scratch("chunks");
        let path = dir.join("file");
        let content: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let open = || RegularFile::open(&path, Links::Follow).unwrap();
        let too_small = open().into_chunks(&path, Limit::new(39_999, "library file")).unwrap_err();
        assert_eq!(too_small.status(), Status::FileTooLarge);
        let chunks = open().into_chunks(&path, Limit::new(40_000, "library file")).unwrap();
        assert_eq!(chunks.size(), 40_000);
        let mut field = [0u8; 8];
        // Inside a chunk, across two chunks, at the very end, and past it.
        for offset in [0u64, 100, CHUNK_LEN as u64 - 3, 2 * CHUNK_LEN as u64 - 1, 39_992] {
            assert!(chunks.read_at(offset, &mut field), "offset {offset}");
            assert_eq!(field[..], content[offset as usize..offset as usize + 8]);
        }
        assert!(!chunks.read_at(39_993, &mut field));
        assert!(!chunks.read_at(u64::MAX - 2, &mut field));
        assert!(chunks.read_at(40_000, &mut []));
        // A file that shrinks while it is read: what is gone reads as
        // outside the file, and that is no I/O error.
        let shrinking = open().into_chunks(&path, Limit::new(40_000, "library file")).unwrap();
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(20_000).unwrap();
        assert!(shrinking.read_at(100, &mut field));
        assert!(!shrinking.read_at(30_000, &mut field));
        assert!(shrinking.read_error(&path).is_none());
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

/// Identifies one version of one file (device, inode, length, modification
/// time), so what is made from an unchanged file is made once per host and
/// a replaced file is read and checked anew. Two paths to one file have one
/// identity, as they have one mapping in the system loader. (Where files
/// have no inode numbers, the canonical path stands in for them.)
#[derive(Debug, Clone)]
pub struct FileIdentity {
    /// The path it was found by, for messages; not part of the identity.
    path: PathBuf,
    /// Device and inode, or the canonical path where there are none.
    file: FileKey,
    len: u64,
    modified: Option<std::time::SystemTime>,
}

#[cfg(unix)]
type FileKey = (u64, u64);
#[cfg(not(unix))]
type FileKey = PathBuf;

impl FileIdentity {
    /// The identity of the file at `path` now; it must be a regular file.
    pub fn of(path: &Path) -> Result<FileIdentity> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, &e))?;
        check_regular(path, &meta)?;
        Ok(FileIdentity::from_metadata(path, &meta))
    }

    /// The identity of a file opened at `path`, from its `fstat`.
    pub fn of_open(path: &Path, file: &RegularFile) -> FileIdentity {
        FileIdentity::from_metadata(path, file.metadata())
    }

    fn from_metadata(path: &Path, meta: &Metadata) -> FileIdentity {
        #[cfg(unix)]
        let file = {
            use std::os::unix::fs::MetadataExt;
            (meta.dev(), meta.ino())
        };
        #[cfg(not(unix))]
        let file = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        FileIdentity { path: path.to_path_buf(), file, len: meta.len(), modified: meta.modified().ok() }
    }

    /// Whether both name one file (device and inode), whatever its size and
    /// modification time.
    pub fn same_file(&self, other: &FileIdentity) -> bool {
        self.file == other.file
    }

    /// The path the file was found by.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl PartialEq for FileIdentity {
    fn eq(&self, other: &FileIdentity) -> bool {
        (&self.file, self.len, self.modified) == (&other.file, other.len, other.modified)
    }
}

impl Eq for FileIdentity {}

impl std::hash::Hash for FileIdentity {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (&self.file, self.len, self.modified).hash(state);
    }
}
