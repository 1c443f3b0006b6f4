//! Which entries of the search paths are plugins (library files and package
//! directories), and what a scan found.

use crate::error::{Error, Status};
use crate::plugin::PluginInfo;
use std::path::{Path, PathBuf};

/// The file extension of shared libraries on this platform.
pub const LIBRARY_EXTENSION: &str = if cfg!(target_os = "macos") {
    "dylib"
} else if cfg!(windows) {
    "dll"
} else {
    "so"
};

/// A file or directory that was passed over, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    /// The file, or the search path itself.
    pub path: PathBuf,
    /// Why it was skipped; the message names the path.
    pub error: Error,
}

/// The result of a scan: plugins found, and everything passed over.
#[derive(Debug, Clone, Default)]
pub struct Discovery {
    /// Every valid plugin that meets the host's expectations, in scan order.
    pub plugins: Vec<PluginInfo>,
    /// Search paths, files and descriptors that were passed over.
    pub skipped: Vec<Skipped>,
}

/// Something in a search path that may hold plugins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// A shared library file.
    Library(PathBuf),
    /// A directory with a `package.toml` (Python and WASM plugins).
    Package(PathBuf),
    /// A `.fid` package archive.
    Archive(PathBuf),
}

/// The candidates of every search path, in order: search paths as given,
/// entries sorted by name within each. Unreadable search paths and entries
/// that look like libraries but are not files come out as `Err`.
pub fn candidates(search_paths: &[PathBuf]) -> Vec<Result<Candidate, Skipped>> {
    search_paths.iter().flat_map(|dir| entries_of(dir)).collect()
}

fn entries_of(dir: &Path) -> Vec<Result<Candidate, Skipped>> {
    let skip = |error: Error| vec![Err(Skipped { path: dir.to_path_buf(), error })];
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return skip(Error::at(Status::FileNotFound, dir, "search path does not exist"))
        }
        Err(e) => return skip(Error::at(Status::Io, dir, format!("cannot read search path: {e}"))),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| {
            path.extension().is_some_and(|ext| ext == LIBRARY_EXTENSION)
                || crate::artifact::archive::is_archive(path)
                || crate::artifact::package::Package::is_package(path)
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            if crate::artifact::package::Package::is_package(&path) {
                return Ok(Candidate::Package(path));
            }
            let checked = std::fs::metadata(&path)
                .map_err(|e| Error::io(&path, &e))
                .and_then(|meta| crate::disk::check_regular(&path, &meta));
            match checked {
                Ok(()) if crate::artifact::archive::is_archive(&path) => Ok(Candidate::Archive(path)),
                Ok(()) => Ok(Candidate::Library(path)),
                Err(error) => Err(Skipped { path, error }),
            }
        })
        .collect()
}
