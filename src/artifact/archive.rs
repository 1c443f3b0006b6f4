//! `.fid` archives: a package packed by `fidius package pack` (tar +
//! bzip2, one top-level directory `{name}-{version}/`).
//!
//! An archive is read whole into memory and checked before anything of it
//! is used or written: only regular files and directories, every path
//! relative and inside the one top-level directory, no path twice, at most
//! [`MAX_FILES`] files of at most the package size limit in all, and a
//! bound on the decompressed stream, so neither a bomb nor a flood of empty
//! entries runs long. The files are then what a package directory's walk
//! would give: the digest and the signature are checked on them.

use super::package::{digest_of, MANIFEST, MAX_FILES, SIGNATURE};
use super::signature::{self, TrustedKey};
use crate::disk::{Links, RegularFile};
use crate::error::{Error, Result, Status};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// What a `.fid` file name ends in.
pub const EXTENSION: &str = "fid";

/// Bytes of tar structure allowed per entry beyond its contents: a header,
/// an extended-name header and its name, and padding.
const TAR_OVERHEAD_PER_ENTRY: u64 = 4 << 10;

/// The files of an archive, by path inside its top-level directory.
#[derive(Debug)]
pub struct Archive {
    /// The top-level directory, `{name}-{version}`.
    pub top: String,
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Reads the archive at `path`: at most `max_bytes` compressed and as many
/// in files once decompressed.
pub fn read(path: &Path, max_bytes: u64) -> Result<Archive> {
    let file = RegularFile::open(path, Links::Follow)?;
    if file.metadata().len() > max_bytes {
        return Err(Error::at(
            Status::FileTooLarge,
            path,
            format!("the archive is {} bytes, more than the limit of {max_bytes} bytes", file.metadata().len()),
        ));
    }
    read_stream(path, bzip2::read::BzDecoder::new(file.into_file()), max_bytes)
}

/// [`read`] of the decompressed tar stream `decompressed`; errors name
/// `path`.
pub fn read_stream(path: &Path, decompressed: impl Read, max_bytes: u64) -> Result<Archive> {
    // Files, their tar headers and padding: past this, the stream is not a
    // package this host would load, however it decompresses.
    let stream_limit = max_bytes.saturating_add(2 * MAX_FILES as u64 * TAR_OVERHEAD_PER_ENTRY);
    let decompressed = decompressed.take(stream_limit);
    let invalid = |what: String| Error::at(Status::InvalidManifest, path, format!("not a valid .fid archive: {what}"));
    let mut tar = tar::Archive::new(decompressed);
    let entries = tar.entries().map_err(|e| invalid(e.to_string()))?;
    let (mut top, mut files, mut total, mut seen) = (None::<String>, BTreeMap::new(), 0u64, 0usize);
    for entry in entries {
        let mut entry = entry.map_err(|e| invalid(e.to_string()))?;
        seen += 1;
        if seen > 2 * MAX_FILES {
            return Err(invalid(format!("it holds more than {} entries", 2 * MAX_FILES)));
        }
        let name = entry.path().map_err(|e| invalid(format!("an entry's path is not valid: {e}")))?.into_owned();
        let shown = name.display().to_string();
        let (entry_top, relative) = split_path(&name).map_err(|why| invalid(format!("entry '{shown}' {why}")))?;
        match &top {
            None => top = Some(entry_top),
            Some(top) if *top != entry_top => {
                return Err(invalid(format!("entry '{shown}' is outside the top-level directory '{top}/'")));
            }
            Some(_) => {}
        }
        let kind = entry.header().entry_type();
        if kind.is_dir() {
            continue;
        }
        if !kind.is_file() {
            return Err(invalid(format!("entry '{shown}' is a {}, and only files and directories may be packed", kind_name(kind))));
        }
        let Some(relative) = relative else {
            return Err(invalid(format!("entry '{shown}' is a file where the top-level directory should be")));
        };
        if files.len() >= MAX_FILES {
            return Err(invalid(format!("it holds more than {MAX_FILES} files")));
        }
        let size = entry.header().size().map_err(|e| invalid(format!("entry '{shown}': {e}")))?;
        total = total.saturating_add(size);
        if total > max_bytes {
            return Err(Error::at(
                Status::FileTooLarge,
                path,
                format!("the archive's files come to more than the limit of {max_bytes} bytes (at '{shown}')"),
            ));
        }
        // Read exactly the declared size (bounded just above), no more.
        let mut contents = Vec::new();
        contents.try_reserve_exact(size as usize).map_err(|_| invalid(format!("cannot allocate {size} bytes for '{shown}'")))?;
        (&mut entry).take(size).read_to_end(&mut contents).map_err(|e| invalid(format!("entry '{shown}': {e}")))?;
        if contents.len() as u64 != size {
            return Err(invalid(format!("entry '{shown}' is cut short")));
        }
        if files.insert(relative.clone(), contents).is_some() {
            return Err(invalid(format!("'{relative}' is packed twice")));
        }
    }
    let top = top.ok_or_else(|| invalid("it is empty".into()))?;
    if !files.contains_key(MANIFEST) {
        return Err(invalid(format!("'{top}/' holds no {MANIFEST}")));
    }
    Ok(Archive { top, files })
}

/// The top-level directory and the path below it (`None` for the directory
/// itself) of an entry; why not, when the path could leave it.
fn split_path(path: &Path) -> std::result::Result<(String, Option<String>), &'static str> {
    let mut parts = Vec::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => parts.push(part.to_str().ok_or("has a path that is not UTF-8")?),
            Component::CurDir => {}
            Component::ParentDir => return Err("has a '..' component"),
            Component::RootDir | Component::Prefix(_) => return Err("has an absolute path"),
        }
    }
    let (top, rest) = parts.split_first().ok_or("has an empty path")?;
    Ok((top.to_string(), (!rest.is_empty()).then(|| rest.join("/"))))
}

/// Whether the package digest covers `path`, as a package directory's walk
/// gives files: not a `*.sig` file, nothing under a `target/` or `.git/`
/// directory.
fn is_digested(path: &str) -> bool {
    let (dirs, name) = path.rsplit_once('/').unwrap_or(("", path));
    !name.ends_with(".sig") && !dirs.split('/').any(|dir| dir == "target" || dir == ".git")
}

fn kind_name(kind: tar::EntryType) -> &'static str {
    match kind {
        tar::EntryType::Symlink => "symbolic link",
        tar::EntryType::Link => "hard link",
        tar::EntryType::Char => "character device",
        tar::EntryType::Block => "block device",
        tar::EntryType::Fifo => "FIFO",
        _ => "special entry",
    }
}

impl Archive {
    /// The files the package digest covers (see [`is_digested`]), taken
    /// out of the archive.
    pub fn into_digested_files(mut self) -> BTreeMap<String, Vec<u8>> {
        self.files.retain(|path, _| is_digested(path));
        self.files
    }

    /// Checks `package.sig` in the archive against `keys`, over the files'
    /// digest; errors name `shown` (the archive).
    pub fn verify(&self, shown: &Path, keys: &[TrustedKey]) -> Result<()> {
        let sig = self.files.get(SIGNATURE).ok_or_else(|| {
            Error::at(Status::SignatureRequired, shown, format!("signatures are required and the archive holds no {SIGNATURE}"))
        })?;
        let digest = digest_of(self.files.iter().filter(|(path, _)| is_digested(path)));
        signature::check(shown, &digest, sig, keys)
    }

    /// Writes the package into `dest/{top}`, which must not exist yet: into
    /// a staging directory first, renamed into place when complete, so a
    /// failure leaves nothing behind. Returns the package's directory.
    pub fn unpack(&self, shown: &Path, dest: &Path) -> Result<PathBuf> {
        let target = dest.join(&self.top);
        if target.symlink_metadata().is_ok() {
            return Err(Error::at(Status::InvalidArgument, &target, "already exists; nothing was unpacked over it"));
        }
        // A name no other unpacking (of this process or another) uses.
        static SERIAL: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let serial = SERIAL.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let staging = dest.join(format!(".{}.unpacking.{}.{serial}", self.top, std::process::id()));
        std::fs::create_dir(&staging).map_err(|e| Error::at(Status::Io, &staging, format!("cannot create: {e}")))?;
        let written = self.write_tree(&staging).and_then(|()| {
            std::fs::rename(&staging, &target).map_err(|e| Error::at(Status::Io, &target, format!("cannot move the package into place: {e}")))
        });
        if written.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        written.map_err(|e| e.context(format_args!("unpacking {}", shown.display())))?;
        Ok(target)
    }

    /// Writes every file under `root`, an empty directory.
    fn write_tree(&self, root: &Path) -> Result<()> {
        for (relative, contents) in &self.files {
            let path = root.join(relative);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::at(Status::Io, parent, format!("cannot create: {e}")))?;
            }
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| Error::at(Status::Io, &path, format!("cannot create: {e}")))?;
            std::io::Write::write_all(&mut file, contents).map_err(|e| Error::at(Status::Io, &path, format!("cannot write: {e}")))?;
        }
        Ok(())
    }
}

/// Reads the archive at `archive` and writes its package into `dest`
/// (created when missing). With `keys`, the archive's `package.sig` must
/// verify over the files read before anything is written.
pub fn unpack(archive: &Path, dest: &Path, keys: Option<&[TrustedKey]>, max_bytes: u64) -> Result<PathBuf> {
    let read = read(archive, max_bytes)?;
    if let Some(keys) = keys {
        read.verify(archive, keys)?;
    }
    std::fs::create_dir_all(dest).map_err(|e| Error::at(Status::Io, dest, format!("cannot create: {e}")))?;
    read.unpack(archive, dest)
}

/// Whether `path` names a `.fid` archive (by its extension).
pub fn is_archive(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == EXTENSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_covers_what_a_directory_walk_reads() {
        for (path, covered) in [
            ("package.toml", true),
            ("vendor/m/__init__.py", true),
            ("target", true),
            ("src/git.py", true),
            ("package.sig", false),
            ("lib/x.so.sig", false),
            ("target/debug/x", false),
            ("a/.git/HEAD", false),
        ] {
            assert_eq!(is_digested(path), covered, "{path}");
        }
    }
}
