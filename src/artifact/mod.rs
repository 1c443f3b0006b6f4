//! What is on disk: checking a library file before anything of it runs.
//!
//! [`open_library`] is the only way a library file gets mapped. It checks
//! the file's header and the structures the system loader reads, reading
//! only those, and — when signatures are required — reads the whole file,
//! verifies it and maps exactly those bytes from a sealed in-memory file, so
//! nothing can swap the file between verification and `dlopen`.

pub mod header;
pub mod package;
pub mod signature;

use crate::disk::{Limit, Links, RegularFile};
use crate::error::{Error, Result, Status};
use signature::TrustedKey;
use std::path::Path;

/// A mapped library, plus the sealed copy it was mapped from, if any.
pub struct MappedLibrary {
    // Field order matters: the library is unmapped before the sealed copy's
    // descriptor is closed, so its `/proc/self/fd/N` name cannot be reused
    // while the library is loaded.
    library: libloading::Library,
    _sealed: Option<sealed::SealedFile>,
}

impl MappedLibrary {
    /// The loaded library.
    pub fn library(&self) -> &libloading::Library {
        &self.library
    }
}

/// Maps `path` (opened as `file`) after checking it. `trusted` is `Some` when signatures are
/// required; the file is then never mapped unless one of the keys verifies it.
/// Files larger than `max_bytes` are refused; the rest of a file is read only
/// after its header says it is a library for this process.
pub fn open_library(path: &Path, mut file: RegularFile, trusted: Option<&[TrustedKey]>, max_bytes: u64) -> Result<MappedLibrary> {
    let head = file.read_head(path, header::HEAD_LEN)?;
    header::check_head(path, &head)?;
    let limit = Limit::new(max_bytes, "library file");
    match trusted {
        // The file is copied once, by the kernel, into a sealed in-memory
        // file; what is checked and verified is that copy, and only it is
        // mapped.
        Some(keys) => {
            let sealed = sealed::SealedFile::copy_of(path, file, limit)?;
            let bytes = sealed.view(path)?;
            header::check(path, &bytes[..])?;
            signature::verify_detached(path, &bytes, keys)?;
            drop(bytes);
            let library = dlopen(path, &sealed.proc_path())?;
            Ok(MappedLibrary { library, _sealed: Some(sealed) })
        }
        // Unsigned code may run anyway: the checks read what the loader will
        // read, and mapping the file by its own path keeps its name in
        // debuggers and stack traces.
        None => {
            let chunks = file.into_chunks(path, limit)?;
            header::check(path, &chunks).map_err(|e| chunks.read_error(path).unwrap_or(e))?;
            Ok(MappedLibrary { library: dlopen(path, path)?, _sealed: None })
        }
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
            // SAFETY: the file is sealed against writes, growing and
            // shrinking, so the mapping can neither change nor fault.
            unsafe { memmap2::Mmap::map(&self.file) }
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

        pub fn view(&self, _path: &Path) -> Result<Vec<u8>> {
            unreachable!("SealedFile cannot be built on this platform")
        }

        pub fn proc_path(&self) -> PathBuf {
            unreachable!("SealedFile cannot be built on this platform")
        }
    }
}
