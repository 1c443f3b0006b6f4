//! Package directories (Python and WASM plugins): `package.toml`, the
//! package digest and `package.sig`.
//!
//! [`Package::open`] reads what a load needs into memory once. When
//! signatures are required it reads *every* file of the package, computes
//! fidius's package digest over those bytes and verifies `package.sig`
//! before anything is used; the runtime then gets its files from that
//! verified copy, so swapping a file after verification changes nothing.

use super::signature::{self, TrustedKey};
use crate::disk::{self, Limit, Links, RegularFile, MANIFEST_LIMIT};
use crate::error::{Error, Result, Status};
use crate::plugin::RuntimeKind;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// The manifest's file name.
pub const MANIFEST: &str = "package.toml";
/// The package signature's file name.
pub const SIGNATURE: &str = "package.sig";
/// Most files a package may hold.
pub const MAX_FILES: usize = 10_000;
/// Most bytes a package may hold in all, unless the host sets another limit.
pub const MAX_BYTES: u64 = crate::disk::DEFAULT_PACKAGE_LIMIT;

/// `package.toml`, as fidius 0.5.9 defines it. Unknown keys are ignored, as
/// upstream does.
#[derive(Debug, Clone, Deserialize)]
pub struct Manifest {
    /// `[package]`.
    pub package: PackageSection,
    /// `[python]`, for Python packages.
    pub python: Option<PythonSection>,
    /// `[wasm]`, for WASM packages.
    pub wasm: Option<WasmSection>,
    /// `[metadata]`: required, free-form.
    pub metadata: toml::Value,
}

/// `[package]`.
#[derive(Debug, Clone, Deserialize)]
pub struct PackageSection {
    /// The plugin's name.
    pub name: String,
    /// Free-form version text.
    pub version: String,
    /// The interface (trait or crate) name.
    pub interface: String,
    /// The interface version.
    pub interface_version: u32,
    /// `rust` (default), `python` or `wasm`.
    #[serde(default)]
    pub runtime: Option<String>,
}

/// `[python]`.
#[derive(Debug, Clone, Deserialize)]
pub struct PythonSection {
    /// Dotted module name to import.
    pub entry_module: String,
    /// The requirements file `fidius package pack` vendors into `vendor/`
    /// (a path; unused at load, but typed as fidius types it).
    #[serde(default)]
    pub requirements: Option<String>,
}

/// `[wasm]`.
#[derive(Debug, Clone, Deserialize)]
pub struct WasmSection {
    /// The component file, relative to the package directory.
    pub component: String,
    /// An AOT-compiled component (`.cwasm`), relative to the package directory.
    #[serde(default)]
    pub precompiled: Option<String>,
    /// Capabilities granted to the guest; empty means none.
    #[serde(default)]
    pub capabilities: Vec<String>,
}

impl Manifest {
    /// Parses and checks a manifest; `dir` names the package in messages.
    pub fn parse(dir: &Path, text: &str) -> Result<Manifest> {
        let invalid = |message: String| Error::at(Status::InvalidManifest, &dir.join(MANIFEST), message);
        let manifest: Manifest = toml::from_str(text).map_err(|e| invalid(format!("not a valid manifest: {e}")))?;
        let runtime = manifest.runtime().map_err(invalid)?;
        match (runtime, manifest.python.is_some(), manifest.wasm.is_some()) {
            (RuntimeKind::Python, true, false) | (RuntimeKind::Wasm, false, true) | (RuntimeKind::Cdylib, false, false) => {}
            (RuntimeKind::Python, false, _) => return Err(invalid("runtime \"python\" needs a [python] table".into())),
            (RuntimeKind::Wasm, _, false) => return Err(invalid("runtime \"wasm\" needs a [wasm] table".into())),
            _ => return Err(invalid("a [python] or [wasm] table does not match the package's runtime".into())),
        }
        if let Some(wasm) = &manifest.wasm {
            check_relative(&wasm.component).map_err(|e| invalid(format!("[wasm] component: {e}")))?;
            if let Some(precompiled) = &wasm.precompiled {
                check_relative(precompiled).map_err(|e| invalid(format!("[wasm] precompiled: {e}")))?;
            }
        }
        Ok(manifest)
    }

    /// The runtime the manifest names.
    pub fn runtime(&self) -> std::result::Result<RuntimeKind, String> {
        match self.package.runtime.as_deref() {
            None | Some("rust") => Ok(RuntimeKind::Cdylib),
            Some("python") => Ok(RuntimeKind::Python),
            Some("wasm") => Ok(RuntimeKind::Wasm),
            Some(other) => Err(format!("unknown runtime \"{other}\" (expected rust, python or wasm)")),
        }
    }
}

/// A manifest path must stay inside the package: relative, no `..`.
fn check_relative(path: &str) -> std::result::Result<(), String> {
    let parsed = Path::new(path);
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    for component in parsed.components() {
        match component {
            Component::Normal(_) | Component::CurDir => {}
            Component::ParentDir => return Err(format!("'{path}' leaves the package directory (`..`)")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!("'{path}' is absolute; paths are relative to the package directory"))
            }
        }
    }
    Ok(())
}

/// A package directory (or the package of a `.fid` archive), with the
/// files a load needs already in memory.
#[derive(Debug)]
pub struct Package {
    /// The directory; for an archive, `archive.fid/{name}-{version}`, a
    /// name for messages that is never read from.
    dir: PathBuf,
    manifest: Manifest,
    /// Relative path (`/`-separated) → contents of every file, when they
    /// were read at once (a verified package, an archive); `None`: each is
    /// read from the directory when asked for.
    files: Option<BTreeMap<String, Vec<u8>>>,
    /// Whether a trusted signature covers `files`.
    verified: bool,
    /// Most bytes the package may hold in all.
    max_bytes: u64,
}

impl Package {
    /// Whether `dir` looks like a package (holds a `package.toml`).
    pub fn is_package(dir: &Path) -> bool {
        dir.join(MANIFEST).is_file()
    }

    /// Reads the manifest only: enough for discovery.
    pub fn read_manifest(dir: &Path) -> Result<Manifest> {
        let path = dir.join(MANIFEST);
        let limit = Limit::new(MANIFEST_LIMIT, "package manifest");
        let bytes = disk::read(&path, Links::Follow, limit)?;
        let text = std::str::from_utf8(&bytes).map_err(|e| Error::at(Status::InvalidManifest, &path, e))?;
        Manifest::parse(dir, text)
    }

    /// Opens a package of at most `max_bytes` in all. With `trusted` keys,
    /// reads every file, verifies `package.sig` over fidius's package
    /// digest, and serves every later read from those verified bytes.
    pub fn open(dir: &Path, trusted: Option<&[TrustedKey]>, max_bytes: u64) -> Result<Package> {
        let dir = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, &e))?;
        match trusted {
            None => Ok(Package { manifest: Package::read_manifest(&dir)?, dir, files: None, verified: false, max_bytes }),
            Some(keys) => {
                let files = read_tree(&dir, max_bytes)?;
                let digest = digest_of(&files);
                signature::verify_file(&dir.join(SIGNATURE), &dir, &digest, keys)?;
                Package::in_memory(dir, files, true, max_bytes)
            }
        }
    }

    /// The package of the `.fid` archive at `path`, read whole and checked
    /// (see [`super::archive::read`]); with `trusted` keys, its
    /// `package.sig` must verify over the files read.
    pub fn from_archive(path: &Path, trusted: Option<&[TrustedKey]>, max_bytes: u64) -> Result<Package> {
        let archive = super::archive::read(path, max_bytes)?;
        if let Some(keys) = trusted {
            archive.verify(path, keys)?;
        }
        let dir = std::fs::canonicalize(path).map_err(|e| Error::io(path, &e))?.join(&archive.top);
        Package::in_memory(dir, archive.into_digested_files(), trusted.is_some(), max_bytes)
    }

    /// A package whose files were all read: its manifest comes from them.
    fn in_memory(dir: PathBuf, files: BTreeMap<String, Vec<u8>>, verified: bool, max_bytes: u64) -> Result<Package> {
        let text = files.get(MANIFEST).ok_or_else(|| Error::at(Status::FileNotFound, &dir.join(MANIFEST), "no such file"))?;
        if text.len() as u64 > MANIFEST_LIMIT {
            return Err(Error::at(
                Status::FileTooLarge,
                &dir.join(MANIFEST),
                format!("the package manifest is {} bytes, more than the limit of {MANIFEST_LIMIT} bytes", text.len()),
            ));
        }
        let text = std::str::from_utf8(text).map_err(|e| Error::at(Status::InvalidManifest, &dir.join(MANIFEST), e))?;
        Ok(Package { manifest: Manifest::parse(&dir, text)?, dir, files: Some(files), verified, max_bytes })
    }

    /// The package directory (canonical).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Whether a trusted signature covers the files.
    pub fn is_verified(&self) -> bool {
        self.verified
    }

    /// Whether every file is in memory (read at once, never again from disk).
    pub fn is_in_memory(&self) -> bool {
        self.files.is_some()
    }

    /// Whether `relative` exists in the package.
    pub fn has_file(&self, relative: &str) -> bool {
        match &self.files {
            Some(files) => files.contains_key(&normalize(relative)),
            None => self.dir.join(relative).is_file(),
        }
    }

    /// The contents of `relative` (a manifest path): from memory, or read
    /// now from a location that must not leave the package.
    pub fn file(&self, relative: &str) -> Result<Vec<u8>> {
        let shown = self.dir.join(relative);
        check_relative(relative).map_err(|e| Error::at(Status::InvalidManifest, &shown, e))?;
        if let Some(files) = &self.files {
            return files.get(&normalize(relative)).cloned().ok_or_else(|| Error::at(Status::FileNotFound, &shown, "no such file in the package"));
        }
        let real = std::fs::canonicalize(&shown).map_err(|e| Error::io(&shown, &e))?;
        if !real.starts_with(&self.dir) {
            return Err(Error::at(
                Status::InvalidManifest,
                &shown,
                format!("resolves to {}, outside the package directory", real.display()),
            ));
        }
        disk::read(&real, Links::Refuse, Limit::new(self.max_bytes, "package file"))
    }

    /// Every file of the package by relative path (`/`-separated), as the
    /// digest covers them: the verified copy, or read now.
    pub fn files(&self) -> Result<std::borrow::Cow<'_, BTreeMap<String, Vec<u8>>>> {
        match &self.files {
            Some(files) => Ok(std::borrow::Cow::Borrowed(files)),
            None => read_tree(&self.dir, self.max_bytes).map(std::borrow::Cow::Owned),
        }
    }
}

fn normalize(relative: &str) -> String {
    Path::new(relative)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// fidius's package digest (fidius-core 0.5.9 `package_digest`) of a
/// directory on disk.
pub fn package_digest(dir: &Path) -> Result<[u8; 32]> {
    let root = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, &e))?;
    Ok(digest_of(&read_tree(&root, MAX_BYTES)?))
}

/// SHA-256 over each file in path order: u64 LE path length, path, u64 LE
/// content length, content.
pub(crate) fn digest_of<'a>(files: impl IntoIterator<Item = (&'a String, &'a Vec<u8>)>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for (path, contents) in files {
        hasher.update((path.len() as u64).to_le_bytes());
        hasher.update(path.as_bytes());
        hasher.update((contents.len() as u64).to_le_bytes());
        hasher.update(contents);
    }
    hasher.finalize().into()
}

/// Every file the digest covers: all files under `root`, skipping `target`
/// and `.git` directories and `*.sig` files at any depth. Symlinks are
/// followed as fidius does, but one that leads outside the package is an
/// error rather than a way to sign (or load) foreign files. `root` is
/// canonical.
fn read_tree(root: &Path, max_bytes: u64) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    let mut seen = 0usize;
    let mut pending = vec![(root.to_path_buf(), String::new())];
    while let Some((current, prefix)) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| Error::io(&current, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&current, &e))?;
            // Directories count too: a tree of empty folders is no cheaper to walk.
            seen += 1;
            if seen > 2 * MAX_FILES {
                return Err(Error::at(Status::InvalidManifest, root, format!("the package holds more than {} entries", 2 * MAX_FILES)));
            }
            let name = entry.file_name().to_string_lossy().replace('\\', "/");
            let path = entry.path();
            let kind = entry.file_type().map_err(|e| Error::io(&path, &e))?;
            // `current` is canonical (the root, or a directory resolved
            // below), so only a symbolic link needs resolving.
            let (real, is_dir) = if kind.is_symlink() {
                let real = std::fs::canonicalize(&path).map_err(|e| Error::io(&path, &e))?;
                let is_dir = real.is_dir();
                (real, is_dir)
            } else {
                (path.clone(), kind.is_dir())
            };
            if !real.starts_with(root) {
                return Err(Error::at(
                    Status::InvalidManifest,
                    &path,
                    format!("links to {}, outside the package directory", real.display()),
                ));
            }
            let relative = if prefix.is_empty() { name.clone() } else { format!("{prefix}/{name}") };
            if is_dir {
                if name != "target" && name != ".git" {
                    pending.push((real, relative));
                }
            } else if !name.ends_with(".sig") {
                if files.len() >= MAX_FILES {
                    return Err(Error::at(Status::InvalidManifest, root, format!("the package holds more than {MAX_FILES} files")));
                }
                // Each file may take what the files before it left of the budget.
                let limit = Limit::new(max_bytes - total, "package file");
                // A listed regular file needs no `stat` before it is opened;
                // anything else (a resolved link, a FIFO) gets one.
                let file = if kind.is_file() { RegularFile::open_listed(&real) } else { RegularFile::open(&real, Links::Refuse) };
                let contents = file.and_then(|file| file.read_rest(&real, Vec::new(), limit)).map_err(|e| match e.status() {
                    Status::FileTooLarge => Error::at(
                        Status::FileTooLarge,
                        root,
                        format!("the package holds more than the limit of {max_bytes} bytes (at {relative})"),
                    ),
                    _ => e.context(format_args!("{}", path.display())),
                })?;
                total += contents.len() as u64;
                files.insert(relative, contents);
            }
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &str = "[package]\nname = \"p\"\nversion = \"1\"\ninterface = \"I\"\ninterface_version = 1\nruntime = \"wasm\"\n\n[wasm]\ncomponent = \"c.wasm\"\n\n[metadata]\n";

    const PYTHON: &str = "[package]\nname = \"p\"\nversion = \"1\"\ninterface = \"I\"\ninterface_version = 1\nruntime = \"python\"\n\n[python]\nentry_module = \"m\"\nrequirements = \"reqs.txt\"\n\n[metadata]\n";

    #[test]
    fn manifests() {
        let dir = Path::new("/pkg");
        let m = Manifest::parse(dir, WASM).unwrap();
        assert_eq!(m.runtime().unwrap(), RuntimeKind::Wasm);
        assert_eq!(m.wasm.unwrap().component, "c.wasm");
        assert_eq!(Manifest::parse(dir, PYTHON).unwrap().python.unwrap().requirements.as_deref(), Some("reqs.txt"));
        for (bad, says) in [
            (WASM.replace("[metadata]\n", ""), "metadata"),
            (WASM.replace("\"wasm\"", "\"java\""), "unknown runtime"),
            (WASM.replace("c.wasm", "../c.wasm"), "leaves the package"),
            (WASM.replace("c.wasm", "/etc/c.wasm"), "absolute"),
            (WASM.replace("runtime = \"wasm\"", "runtime = \"python\""), "[python]"),
            (WASM.replace("interface_version = 1", "interface_version = -1"), "interface_version"),
            // fidius types `requirements` as a path, and its tools refuse a list.
            (PYTHON.replace("\"reqs.txt\"", "[]"), "requirements"),
        ] {
            let e = Manifest::parse(dir, &bad).unwrap_err();
            assert_eq!(e.status(), Status::InvalidManifest);
            assert!(e.message().contains(says), "{says}: {}", e.message());
        }
    }

    #[test]
    fn digest_matches_the_fidius_definition() {
        let mut files = BTreeMap::new();
        files.insert("a.txt".to_string(), b"A".to_vec());
        files.insert("sub/z.txt".to_string(), Vec::new());
        let mut expected = Sha256::new();
        for (path, contents) in [("a.txt", &b"A"[..]), ("sub/z.txt", &b""[..])] {
            expected.update((path.len() as u64).to_le_bytes());
            expected.update(path.as_bytes());
            expected.update((contents.len() as u64).to_le_bytes());
            expected.update(contents);
        }
        assert_eq!(digest_of(&files), <[u8; 32]>::from(expected.finalize()));
    }

    /// Links are followed inside the package, as fidius does, and refused
    /// when they lead out of it, at any depth.
    #[cfg(unix)]
    #[test]
    fn the_tree_follows_links_inside_the_package_only() {
        let base = std::env::temp_dir().join(format!("fidius-tree-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (package, outside) = (base.join("package"), base.join("outside"));
        std::fs::create_dir_all(package.join("lib/deep")).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(package.join("lib/deep/m.py"), b"M").unwrap();
        std::fs::write(package.join("top.py"), b"T").unwrap();
        std::fs::write(outside.join("secret.py"), b"S").unwrap();
        std::os::unix::fs::symlink(package.join("lib"), package.join("alias")).unwrap();
        let package = std::fs::canonicalize(&package).unwrap();
        let files = read_tree(&package, MAX_BYTES).unwrap();
        let names: Vec<&str> = files.keys().map(String::as_str).collect();
        assert_eq!(names, ["alias/deep/m.py", "lib/deep/m.py", "top.py"]);
        assert_eq!(files["alias/deep/m.py"], b"M");

        for (link, target) in [("lib/deep/leak.py", outside.join("secret.py")), ("lib/out", outside.clone())] {
            std::os::unix::fs::symlink(&target, package.join(link)).unwrap();
            let e = read_tree(&package, MAX_BYTES).unwrap_err();
            assert_eq!(e.status(), Status::InvalidManifest, "{link}: {}", e.message());
            assert!(e.message().contains("outside the package directory"), "{link}: {}", e.message());
            std::fs::remove_file(package.join(link)).unwrap();
        }
        let _ = std::fs::remove_dir_all(&base);
    }
}
