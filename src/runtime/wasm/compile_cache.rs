//! The persistent compile cache: compiled components kept in a directory,
//! so that later processes deserialize them instead of compiling.
//!
//! What is kept is native code, which runs outside the sandbox, so nothing
//! is run from the directory that this cache did not write:
//!
//! * the directory and its key file belong to the user running the host,
//!   and nobody else may write (or, for the key, read) them;
//! * each entry carries an HMAC-SHA-256, under the cache's own secret key,
//!   of its name and its code. The name is a digest of the component's
//!   bytes and of everything that makes compiled code compatible with this
//!   engine (wasmtime's version, its settings, the CPU's features), so an
//!   entry can neither be changed nor be passed off as another one;
//! * an entry is checked from the bytes read, and those very bytes are
//!   deserialized: a file changed afterwards changes nothing.
//!
//! An entry that fails its check is compiled again and overwritten. Entries
//! are written to a temporary file and renamed into place, so a reader never
//! sees half of one. The directory is kept under its size bound by removing
//! the entries used least recently (a hit updates an entry's modification
//! time).

use crate::disk::{Limit, Links, RegularFile};
use crate::error::{Error, Result, Status};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The first bytes of every entry: the format's name and version.
const MAGIC: &[u8; 8] = b"FIDCC\x001\n";
/// Bytes of the HMAC after the magic.
const TAG_LEN: usize = 32;
/// The secret key's file in the directory, and its length.
const KEY_FILE: &str = "cache.key";
const KEY_LEN: usize = 32;
/// What entries' names end in (the rest of the directory is not ours).
const ENTRY_SUFFIX: &str = ".entry";
/// A temporary file of ours (`.*.tmp`) older than this was left by a
/// process that died while writing it: removed when the cache is trimmed.
const STALE_TEMPORARY: std::time::Duration = std::time::Duration::from_secs(3600);

/// A compile cache directory, opened and checked.
pub struct CompileCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
    max_bytes: u64,
}

impl std::fmt::Debug for CompileCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("CompileCache").field("dir", &self.dir).field("max_bytes", &self.max_bytes).finish()
    }
}

impl CompileCache {
    /// Opens the cache in `dir`, creating the directory (mode 0700) and its
    /// secret key when missing. Fails, naming the problem, when the
    /// directory or the key belongs to another user or may be written by
    /// others.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<CompileCache> {
        create_private_dir(dir)?;
        check_private(dir, 0o022, "the compile cache directory")?;
        let key = read_or_create_key(dir)?;
        Ok(CompileCache { dir: dir.to_path_buf(), key, max_bytes })
    }

    /// The compiled component kept under entry `name` (see
    /// [`entry_name`]), if there is one and it is authentic. `notes`
    /// receives why an entry was not used.
    pub fn load(&self, engine: &Engine, name: &str, notes: &mut Vec<String>) -> Option<Component> {
        let path = self.dir.join(name);
        let file = match RegularFile::open(&path, Links::Refuse) {
            Ok(file) => file,
            Err(e) if e.status() == Status::FileNotFound => return None,
            Err(e) => {
                notes.push(format!("compile cache: {}; compiled the component instead", e.message()));
                return None;
            }
        };
        let limit = Limit::new(self.max_bytes.saturating_add((MAGIC.len() + TAG_LEN) as u64), "compile cache entry");
        let bytes = match file.read_rest(&path, Vec::new(), limit) {
            Ok(bytes) => bytes,
            Err(e) => {
                notes.push(format!("compile cache: {}; compiled the component instead", e.message()));
                return None;
            }
        };
        let Some(code) = self.authentic_code(name, &bytes) else {
            notes.push(format!(
                "compile cache: {} failed its check (changed or damaged); compiled the component again",
                path.display()
            ));
            return None;
        };
        // SAFETY: the code is what this cache wrote for this component and
        // engine (its HMAC, under a key only this user can read, covers the
        // name, which digests both); wasmtime also checks that it was made by
        // this version and these settings.
        match unsafe { Component::deserialize(engine, code) } {
            Ok(component) => {
                // Most recently used: the last to go when the cache is trimmed.
                if let Ok(entry) = std::fs::File::options().write(true).open(&path) {
                    let _ = entry.set_modified(std::time::SystemTime::now());
                }
                Some(component)
            }
            Err(e) => {
                notes.push(format!("compile cache: {} cannot be used ({e:#}); compiled the component again", path.display()));
                None
            }
        }
    }

    /// Keeps `compiled` as entry `name`, then trims the cache to its size
    /// bound. `notes` receives why it could not be kept.
    pub fn store(&self, name: &str, compiled: &Component, notes: &mut Vec<String>) {
        let code = match compiled.serialize() {
            Ok(code) => code,
            Err(e) => return notes.push(format!("compile cache: cannot serialize the compiled component ({e:#})")),
        };
        if code.len() as u64 > self.max_bytes {
            return notes.push(format!(
                "compile cache: the compiled component ({} bytes) is larger than the cache's bound ({} bytes); not kept",
                code.len(),
                self.max_bytes
            ));
        }
        if let Err(e) = self.write_entry(name, &code) {
            return notes.push(format!("compile cache: cannot write {}: {e}", self.dir.join(name).display()));
        }
        self.trim(name);
    }

    /// The code of entry `name`, if `bytes` are its magic, a valid tag and
    /// the code.
    fn authentic_code<'a>(&self, name: &str, bytes: &'a [u8]) -> Option<&'a [u8]> {
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let (tag, code) = rest.split_at_checked(TAG_LEN)?;
        self.mac(name, code).verify_slice(tag).ok()?;
        Some(code)
    }

    fn mac(&self, name: &str, code: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes a key of any length");
        mac.update(&(name.len() as u64).to_le_bytes());
        mac.update(name.as_bytes());
        mac.update(code);
        mac
    }

    /// Writes the entry to a temporary file, then renames it into place.
    fn write_entry(&self, name: &str, code: &[u8]) -> std::io::Result<()> {
        let tag = self.mac(name, code).finalize().into_bytes();
        let temporary = self.dir.join(format!(".{name}.{}.{}.tmp", std::process::id(), next_serial()));
        let written = (|| {
            let mut file = private_file_options().create_new(true).write(true).open(&temporary)?;
            file.write_all(MAGIC)?;
            file.write_all(&tag)?;
            file.write_all(code)?;
            std::fs::rename(&temporary, self.dir.join(name))
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temporary);
        }
        written
    }

    /// Removes the least recently used entries (never `keep`, just written)
    /// until the entries fit the size bound, and stale temporary files.
    fn trim(&self, keep: &str) {
        let Ok(listing) = std::fs::read_dir(&self.dir) else { return };
        let stale = std::time::SystemTime::now().checked_sub(STALE_TEMPORARY);
        let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = listing
            .filter_map(|entry| {
                let entry = entry.ok()?;
                let name = entry.file_name().into_string().ok()?;
                if name.starts_with('.') && name.ends_with(".tmp") {
                    let modified = entry.metadata().ok()?.modified().ok()?;
                    if stale.is_some_and(|stale| modified < stale) {
                        let _ = std::fs::remove_file(entry.path());
                    }
                    return None;
                }
                if !name.ends_with(ENTRY_SUFFIX) || name == keep {
                    return None;
                }
                let meta = entry.metadata().ok().filter(std::fs::Metadata::is_file)?;
                Some((meta.modified().ok()?, meta.len(), entry.path()))
            })
            .collect();
        let kept = std::fs::metadata(self.dir.join(keep)).map_or(0, |m| m.len());
        let mut total = kept + entries.iter().map(|(_, len, _)| len).sum::<u64>();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if std::fs::remove_file(path).is_ok() {
                total -= len;
            }
        }
    }
}

/// The entry's file name: a digest of the component and of what makes
/// compiled code compatible with `engine`, plus this library's version
/// (whose code decides what goes into the engine).
pub fn entry_name(engine: &Engine, component: &[u8]) -> String {
    let mut digest = Sha256::new();
    digest.update(b"libfidius_host compile cache\0");
    digest.update(env!("CARGO_PKG_VERSION").as_bytes());
    digest.update(Sha256::digest(component));
    let mut compatibility = DigestHasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut compatibility);
    digest.update(compatibility.0.finalize());
    let hex: String = digest.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("{hex}{ENTRY_SUFFIX}")
}

/// A `Hasher` writing into a SHA-256: a digest of a `Hash` value that is
/// the same in every process (std's hashers promise no such thing).
struct DigestHasher(Sha256);

impl Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        let digest = self.0.clone().finalize();
        u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
    }
}

/// A number no other temporary file of this process has.
fn next_serial() -> u64 {
    static SERIAL: AtomicU64 = AtomicU64::new(0);
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// Files only their owner may read or write.
fn private_file_options() -> std::fs::OpenOptions {
    let mut options = std::fs::OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|e| Error::at(Status::Io, dir, format!("cannot create the compile cache directory: {e}")))
}

/// Refuses `path` unless it belongs to this user and has none of the
/// permission bits in `forbidden`.
#[cfg(unix)]
fn check_private(path: &Path, forbidden: u32, what: &str) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, &e))?;
    // SAFETY: no arguments, no failure.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(Error::at(
            Status::InvalidArgument,
            path,
            format!("{what} belongs to user {}, not to this user ({me}): another user could plant code in it", meta.uid()),
        ));
    }
    if meta.mode() & forbidden != 0 {
        return Err(Error::at(
            Status::InvalidArgument,
            path,
            format!(
                "{what} has mode {:o}: others may {} it, so it cannot keep code safe (make it {:o})",
                meta.mode() & 0o777,
                if forbidden & 0o044 != 0 { "read or write" } else { "write" },
                meta.mode() & 0o777 & !forbidden
            ),
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _forbidden: u32, _what: &str) -> Result<()> {
    Ok(())
}

/// The cache's secret key: read, or made from the system's random source
/// and linked into place (so that two processes creating it at once agree
/// on one key).
fn read_or_create_key(dir: &Path) -> Result<[u8; KEY_LEN]> {
    let path = dir.join(KEY_FILE);
    if !path.exists() {
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(|e| Error::at(Status::Io, &path, format!("cannot make a key: {e}")))?;
        let temporary = dir.join(format!(".{KEY_FILE}.{}.{}.tmp", std::process::id(), next_serial()));
        let made = (|| {
            let mut file = private_file_options().create_new(true).write(true).open(&temporary)?;
            file.write_all(&key)?;
            file.sync_all()?;
            // Fails if another process linked its key first: that one is used.
            match std::fs::hard_link(&temporary, &path) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => Err(e),
                _ => Ok(()),
            }
        })();
        let _ = std::fs::remove_file(&temporary);
        made.map_err(|e| Error::at(Status::Io, &path, format!("cannot write the compile cache's key: {e}")))?;
    }
    check_private(&path, 0o077, "the compile cache's key")?;
    let bytes = crate::disk::read(&path, Links::Refuse, Limit::new(KEY_LEN as u64, "compile cache key"))?;
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        Error::at(Status::InvalidArgument, &path, format!("a compile cache key is {KEY_LEN} bytes, this one {}", bytes.len()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache_in(test: &str) -> (PathBuf, CompileCache) {
        let dir = std::env::temp_dir().join(format!("fidius-compile-cache-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let cache = CompileCache::open(&dir, crate::runtime::wasm::DEFAULT_COMPILE_CACHE_BYTES).unwrap();
        (dir, cache)
    }

    #[test]
    fn entries_are_bound_to_their_name_and_code() {
        let (dir, cache) = cache_in("tags");
        let code = b"compiled code".to_vec();
        let tag = cache.mac("a.entry", &code).finalize().into_bytes();
        let entry = [MAGIC.as_slice(), &tag, &code].concat();
        assert_eq!(cache.authentic_code("a.entry", &entry), Some(code.as_slice()));
        assert_eq!(cache.authentic_code("b.entry", &entry), None, "another entry's name");
        let mut changed = entry.clone();
        *changed.last_mut().unwrap() ^= 1;
        assert_eq!(cache.authentic_code("a.entry", &changed), None, "changed code");
        assert_eq!(cache.authentic_code("a.entry", &entry[..MAGIC.len() + 4]), None, "cut short");
        assert_eq!(cache.authentic_code("a.entry", b""), None);
        // Another cache (another key) does not accept it either.
        let (other_dir, other) = cache_in("tags-other");
        assert_eq!(other.authentic_code("a.entry", &entry), None);
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(other_dir);
    }

    #[test]
    fn the_key_is_made_once_and_kept_private() {
        let (dir, cache) = cache_in("key");
        let again = CompileCache::open(&dir, crate::runtime::wasm::DEFAULT_COMPILE_CACHE_BYTES).unwrap();
        assert_eq!(cache.key, again.key);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&dir), 0o700);
            assert_eq!(mode(&dir.join(KEY_FILE)), 0o600);
            std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = CompileCache::open(&dir, crate::runtime::wasm::DEFAULT_COMPILE_CACHE_BYTES).unwrap_err();
            assert_eq!(e.status(), Status::InvalidArgument);
            assert!(e.message().contains("others may read or write it"), "{}", e.message());
            std::fs::set_permissions(dir.join(KEY_FILE), std::fs::Permissions::from_mode(0o600)).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            let e = CompileCache::open(&dir, crate::runtime::wasm::DEFAULT_COMPILE_CACHE_BYTES).unwrap_err();
            assert!(e.message().contains("others may write it"), "{}", e.message());
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            CompileCache::open(&dir, crate::runtime::wasm::DEFAULT_COMPILE_CACHE_BYTES).unwrap();
        }
        std::fs::write(dir.join(KEY_FILE), b"short").unwrap();
        let e = CompileCache::open(&dir, crate::runtime::wasm::DEFAULT_COMPILE_CACHE_BYTES).unwrap_err();
        assert!(e.message().contains("32 bytes"), "{}", e.message());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn trimming_removes_the_least_recently_used_entries() {
        let (dir, mut cache) = cache_in("trim");
        cache.max_bytes = 250;
        let now = std::time::SystemTime::now();
        for (i, age) in [(0, 30), (1, 10), (2, 20)] {
            let path = dir.join(format!("{i}{ENTRY_SUFFIX}"));
            std::fs::write(&path, [0u8; 100]).unwrap();
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(now - std::time::Duration::from_secs(age)).unwrap();
        }
        std::fs::write(dir.join("unrelated"), [0u8; 1000]).unwrap();
        // Temporary files: one left by a process that died long ago, one
        // being written now.
        for (name, age) in [(".0.entry.1.1.tmp", 2 * 3600), (".0.entry.1.2.tmp", 0)] {
            std::fs::write(dir.join(name), [0u8; 10]).unwrap();
            let file = std::fs::File::options().write(true).open(dir.join(name)).unwrap();
            file.set_modified(now - std::time::Duration::from_secs(age)).unwrap();
        }
        cache.trim("1.entry");
        assert!(!dir.join(".0.entry.1.1.tmp").exists(), "a stale temporary file is removed");
        assert!(dir.join(".0.entry.1.2.tmp").exists(), "one being written is left alone");
        let left: Vec<bool> = (0..3).map(|i| dir.join(format!("{i}{ENTRY_SUFFIX}")).exists()).collect();
        // 300 bytes of entries, 250 allowed: the oldest (0) goes.
        assert_eq!(left, [false, true, true]);
        assert!(dir.join("unrelated").exists(), "files that are not entries are left alone");
        cache.max_bytes = 50;
        cache.trim("1.entry");
        assert!(dir.join("1.entry").exists(), "the entry just written stays");
        assert!(!dir.join("2.entry").exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
