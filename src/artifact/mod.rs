//! What is on disk: checking a library file before anything of it runs.
//!
//! [`open_library`] is the only way a library file gets mapped. It checks
//! the file's header and the structures the system loader reads, reading
//! only those, and — when signatures are required — reads the whole file,
//! verifies it and maps exactly those bytes from a sealed in-memory file, so
//! nothing can swap the file between verification and `dlopen`.

pub mod archive;
pub mod header;
pub mod package;
pub mod signature;

use crate::disk::{FileIdentity, Limit, Links, RegularFile};
use crate::error::{Error, Result, Status};
use signature::TrustedKey;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A mapped library, plus the verified copy it was mapped from, if any.
pub struct MappedLibrary {
    // Field order matters: the library is unmapped before the sealed copy's
    // descriptor is closed, so its `/proc/self/fd/N` name cannot be reused
    // while the library is loaded.
    library: libloading::Library,
    _verified: Option<Arc<VerifiedCopy>>,
}

impl MappedLibrary {
    /// The loaded library.
    pub fn library(&self) -> &libloading::Library {
        &self.library
    }
}

/// What a load checks a library against when signatures are required: the
/// keys, and the copies verified before.
#[derive(Clone, Copy)]
pub struct Trust<'a> {
    pub keys: &'a [TrustedKey],
    pub copies: &'a VerifiedCopies,
}

/// Maps `path` (opened as `file`) after checking it. `trust` is `Some` when
/// signatures are required; the file is then never mapped unless one of the
/// keys verifies it. Files larger than `max_bytes` are refused; the rest of
/// a file is read only after its header says it is a library for this
/// process.
pub fn open_library(path: &Path, mut file: RegularFile, trust: Option<Trust<'_>>, max_bytes: u64) -> Result<MappedLibrary> {
    let head = file.read_head(path, header::HEAD_LEN)?;
    header::check_head(path, &head)?;
    let limit = Limit::new(max_bytes, "library file");
    match trust {
        // The file is copied once, by the kernel, into a sealed in-memory
        // file; what is checked and verified is that copy, and only it is
        // mapped. A file holding the very bytes and signature of a copy
        // verified before is mapped from that copy.
        Some(trust) => {
            let signature = signature::read_signature(&signature::detached_signature_path(path), path)?;
            let identity = FileIdentity::of_open(path, &file);
            let copy = match trust.copies.matching(path, &identity, &file, &signature)? {
                Some(copy) => copy,
                None => {
                    let sealed = sealed::SealedFile::copy_of(path, file, limit)?;
                    let bytes = sealed.view(path)?;
                    header::check(path, &bytes[..])?;
                    signature::check(path, &bytes, &signature, trust.keys)?;
                    trust.copies.keep(VerifiedCopy { identity, sealed, bytes, signature })
                }
            };
            let library = dlopen(path, &copy.sealed.proc_path())?;
            Ok(MappedLibrary { library, _verified: Some(copy) })
        }
        // Unsigned code may run anyway: the checks read what the loader will
        // read, and mapping the file by its own path keeps its name in
        // debuggers and stack traces.
        None => {
            let chunks = file.into_chunks(path, limit)?;
            header::check(path, &chunks).map_err(|e| chunks.read_error(path).unwrap_or(e))?;
            Ok(MappedLibrary { library: dlopen(path, path)?, _verified: None })
        }
    }
}

/// A library's bytes in a sealed in-memory file, verified with the
/// signature kept beside them.
pub struct VerifiedCopy {
    /// The file they were copied from: only that file can match them.
    identity: FileIdentity,
    sealed: sealed::SealedFile,
    bytes: sealed::View,
    signature: Vec<u8>,
}

/// Sealed copies of the libraries a host verified, kept after the libraries
/// are unmapped, so that a later load of the same file costs a comparison
/// rather than a verification: a file that still holds the very bytes of a
/// copy, next to the very signature that verified them, is mapped from that
/// copy. At most [`KEPT_COPIES`] copies of at most [`KEPT_BYTES`] in all;
/// the least recently used goes first.
#[derive(Default)]
pub struct VerifiedCopies {
    /// Least recently used first.
    kept: Mutex<VecDeque<Arc<VerifiedCopy>>>,
}

/// Most verified copies a host keeps.
pub const KEPT_COPIES: usize = 8;
/// Most bytes of verified copies a host keeps.
pub const KEPT_BYTES: usize = 128 << 20;

impl VerifiedCopies {
    /// The kept copy of the file opened as `file` (`identity`), if the file
    /// and its `signature` are still what was verified.
    fn matching(&self, path: &Path, identity: &FileIdentity, file: &RegularFile, signature: &[u8]) -> Result<Option<Arc<VerifiedCopy>>> {
        let Some(copy) = self.lock().iter().rev().find(|copy| copy.identity.same_file(identity)).cloned() else {
            return Ok(None);
        };
        // Read outside the lock: other loads need not wait for it.
        if copy.signature != signature || !file.holds(&copy.bytes).map_err(|e| Error::io(path, &e))? {
            return Ok(None);
        }
        let mut kept = self.lock();
        if let Some(at) = kept.iter().position(|kept| Arc::ptr_eq(kept, &copy)) {
            let used = kept.remove(at).expect("found at this index");
            kept.push_back(used);
        }
        Ok(Some(copy))
    }

    /// Keeps `copy` in place of any older copy of the same file.
    fn keep(&self, copy: VerifiedCopy) -> Arc<VerifiedCopy> {
        let copy = Arc::new(copy);
        if copy.bytes.len() > KEPT_BYTES {
            return copy;
        }
        let mut kept = self.lock();
        kept.retain(|kept| !kept.identity.same_file(&copy.identity));
        kept.push_back(copy.clone());
        while kept.len() > KEPT_COPIES || kept.iter().map(|kept| kept.bytes.len()).sum::<usize>() > KEPT_BYTES {
            kept.pop_front();
        }
        copy
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<VerifiedCopy>>> {
        self.kept.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Checks a library file's detached signature against `keys`, reading at
/// most `max_bytes` and mapping nothing.
pub fn verify_library(path: &Path, keys: &[TrustedKey], max_bytes: u64) -> Result<()> {
    let bytes = crate::disk::read(path, Links::Follow, Limit::new(max_bytes, "library file"))?;
    signature::verify_detached(path, &bytes, keys)
}

/// `dlopen(source, RTLD_NOW | RTLD_LOCAL)`; errors name `shown`.
fn dlopen(shown: &Path, source: &Path) -> Result<libloading::Library> {
    #[cfg(unix)]
    {
        use libloading::os::unix::{Library, RTLD_LOCAL, RTLD_NOW};
        // SAFETY: running a library's initialisers is what loading a plugin
        // means; the checks above decided that this library may run.
        unsafe { Library::open(Some(source), RTLD_NOW | RTLD_LOCAL) }
            .map(Into::into)
            .map_err(|e| Error::at(Status::LibraryLoadFailed, shown, format!("dlopen failed: {e}")))
    }
    #[cfg(not(unix))]
    {
        // SAFETY: as above.
        unsafe { libloading::Library::new(source) }
            .map_err(|e| Error::at(Status::LibraryLoadFailed, shown, format!("load failed: {e}")))
    }
}

#[cfg(target_os = "linux")]
mod sealed {
    use crate::disk::{Limit, RegularFile};
    use crate::error::{Error, Result, Status};
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::{Path, PathBuf};

    /// An anonymous in-memory file holding a copy of a library, sealed
    /// against any further change.
    pub struct SealedFile {
        file: std::fs::File,
    }

    impl SealedFile {
        /// Copies `file` (at most `limit` bytes) into a new sealed file.
        pub fn copy_of(path: &Path, file: RegularFile, limit: Limit) -> Result<SealedFile> {
            let fail = |what: &str| {
                let e = std::io::Error::last_os_error();
                Error::at(Status::Io, path, format!("cannot make a sealed copy ({what}): {e}"))
            };
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let name = CString::new(format!("fidius-host:{}", name.replace('\0', "")))
                .expect("NUL bytes were removed");
            // SAFETY: plain syscall with a valid C string.
            let raw = unsafe {
                libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC | libc::MFD_ALLOW_SEALING)
            };
            if raw < 0 {
                return Err(fail("memfd_create"));
            }
            // SAFETY: `raw` is a fresh descriptor we own.
            let mut copy = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(raw) });
            file.copy_into(path, &mut copy, limit)?;
            let seals =
                libc::F_SEAL_SEAL | libc::F_SEAL_SHRINK | libc::F_SEAL_GROW | libc::F_SEAL_WRITE;
            // SAFETY: fcntl on a descriptor we own.
            if unsafe { libc::fcntl(copy.as_raw_fd(), libc::F_ADD_SEALS, seals) } != 0 {
                return Err(fail("F_ADD_SEALS"));
            }
            Ok(SealedFile { file: copy })
        }

        /// The sealed bytes, mapped read-only.
        pub fn view(&self, path: &Path) -> Result<View> {
            let len = self.file.metadata().map_err(|e| Error::io(path, &e))?.len();
            if len == 0 {
                return Ok(View::Empty);
            }
            // Populated at once: the checks and the hash read every page,
            // and one call maps them faster than a fault per page would.
            // SAFETY: the file is sealed against writes, growing and
            // shrinking, so the mapping can neither change nor fault.
            unsafe { memmap2::MmapOptions::new().populate().map(&self.file) }
                .map(View::Mapped)
                .map_err(|e| Error::at(Status::Io, path, format!("cannot map the sealed copy: {e}")))
        }

        /// A path `dlopen` can open that refers to this file.
        pub fn proc_path(&self) -> PathBuf {
            PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
        }
    }

    /// The bytes of a [`SealedFile`] (`mmap` refuses an empty file).
    pub enum View {
        Empty,
        Mapped(memmap2::Mmap),
    }

    impl std::ops::Deref for View {
        type Target = [u8];

        fn deref(&self) -> &[u8] {
            match self {
                View::Empty => &[],
                View::Mapped(map) => map,
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod sealed {
    use crate::disk::{Limit, RegularFile};
    use crate::error::{Error, Result, Status};
    use std::path::{Path, PathBuf};

    /// Sealed in-memory files need Linux's memfd; elsewhere signed loads are
    /// refused rather than done with a verification window.
    pub struct SealedFile;

    impl SealedFile {
        pub fn copy_of(path: &Path, _file: RegularFile, _limit: Limit) -> Result<SealedFile> {
            Err(Error::at(
                Status::Unsupported,
                path,
                "verified loading needs memfd_create, which this platform lacks",
            ))
        }

        pub fn view(&self, _path: &Path) -> Result<View> {
            unreachable!("SealedFile cannot be built on this platform")
        }

        pub fn proc_path(&self) -> PathBuf {
            unreachable!("SealedFile cannot be built on this platform")
        }
    }

    pub type View = Vec<u8>;
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// A verified copy of `path` as a load would keep it (the bytes need not
    /// be a library here: the copies only compare them).
    fn copy_of(path: &Path, signature: &[u8]) -> VerifiedCopy {
        let file = RegularFile::open(path, Links::Follow).unwrap();
        let identity = FileIdentity::of_open(path, &file);
        let sealed = sealed::SealedFile::copy_of(path, file, Limit::new(1 << 20, "test file")).unwrap();
        let bytes = sealed.view(path).unwrap();
        VerifiedCopy { identity, sealed, bytes, signature: signature.to_vec() }
    }

    fn matching(copies: &VerifiedCopies, path: &Path, signature: &[u8]) -> Option<Arc<VerifiedCopy>> {
        let file = RegularFile::open(path, Links::Follow).unwrap();
        copies.matching(path, &FileIdentity::of_open(path, &file), &file, signature).unwrap()
    }

    #[test]
    fn a_copy_matches_only_its_file_with_the_same_bytes_and_signature() {
        let dir = std::env::temp_dir().join(format!("fidius-copies-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (path, other) = (dir.join("a"), dir.join("b"));
        std::fs::write(&path, b"verified bytes").unwrap();
        std::fs::write(&other, b"verified bytes").unwrap();
        let copies = VerifiedCopies::default();
        let kept = copies.keep(copy_of(&path, b"sig"));
        assert!(Arc::ptr_eq(&matching(&copies, &path, b"sig").unwrap(), &kept));
        assert!(matching(&copies, &path, b"other sig").is_none());
        assert!(matching(&copies, &other, b"sig").is_none(), "same bytes, another file");
        std::fs::write(&path, b"verified bytez").unwrap();
        assert!(matching(&copies, &path, b"sig").is_none(), "same size, other bytes");
        std::fs::write(&path, b"verified bytes, longer").unwrap();
        assert!(matching(&copies, &path, b"sig").is_none(), "other size");
        std::fs::write(&path, b"verified bytes").unwrap();
        assert!(matching(&copies, &path, b"sig").is_some(), "the bytes that were verified again");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn copies_are_bounded_and_the_least_recently_used_goes_first() {
        let dir = std::env::temp_dir().join(format!("fidius-copies-lru-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let paths: Vec<_> = (0..=KEPT_COPIES).map(|i| dir.join(format!("f{i}"))).collect();
        let copies = VerifiedCopies::default();
        for (i, path) in paths.iter().enumerate() {
            std::fs::write(path, format!("file {i}")).unwrap();
            copies.keep(copy_of(path, b"sig"));
            if i == 1 {
                // Used again: the first file is now the more recent.
                assert!(matching(&copies, &paths[0], b"sig").is_some());
            }
        }
        assert_eq!(copies.lock().len(), KEPT_COPIES);
        assert!(matching(&copies, &paths[0], b"sig").is_some(), "used recently, kept");
        assert!(matching(&copies, &paths[1], b"sig").is_none(), "the least recently used went first");
        // Keeping a file again replaces its older copy.
        copies.keep(copy_of(&paths[0], b"sig"));
        assert_eq!(copies.lock().len(), KEPT_COPIES);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
