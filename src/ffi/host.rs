//! `fidius_host_t`: a configured host; discovery and loading.

use crate::error::Status;
use super::discovery::fidius_host_discovery_t;
use super::error::fidius_host_error_t;
use super::load_options::fidius_host_load_options_t;
use super::plugin::fidius_host_plugin_t;
use super::{arg_handle, arg_opt_str, arg_out_cleared, arg_path, arg_str, entry, entry_value, new_handle, take_handle, Handle};

use crate::host::{Host, LoadOptions};
use std::ffi::c_char;

/// A plugin host. Made by `fidius_host_builder_build`, owned by the caller,
/// freed with `fidius_host_free`. Shareable: any thread, concurrently.
/// Plugin handles and discovery results keep working after the host is
/// freed.
pub struct fidius_host_t {
    _private: [u8; 0],
}

pub(crate) struct HostData {
    host: Host,
}

impl Handle for fidius_host_t {
    type Inner = HostData;
    const MAGIC: u64 = 0x4644_484f_5354_2031;
    const NAME: &'static str = "fidius_host_t";
}

pub(crate) fn new(host: Host) -> *mut fidius_host_t {
    new_handle::<fidius_host_t>(HostData { host })
}

/// Scans the search paths. On success `*discovery_out` is a new result
/// owned by the caller (free with `fidius_host_discovery_free`) listing
/// every valid plugin and every skipped file with the reason; on failure it
/// is NULL. Unusable files never fail the scan. When signatures are
/// required, files that do not verify are skipped without being mapped;
/// otherwise every library file is mapped (running its initialisers) to
/// read its registry, then unmapped unless a plugin handle holds it.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_discover(
    host: *const fidius_host_t,
    discovery_out: *mut *mut fidius_host_discovery_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let discovery_out = arg_out_cleared(discovery_out, "discovery_out")?;
        let host = &arg_handle(host, "host")?.host;
        *discovery_out = super::discovery::new(host.discover());
        Ok(())
    })
}

/// Loads the plugin named `name` (UTF-8 of `name_len` bytes, or
/// NUL-terminated with `FIDIUS_HOST_NUL_TERMINATED`) from the first library
/// in the search paths that has it. Files that fail to load are skipped;
/// when the name is found nowhere, the error message lists them and why.
/// `options` may be NULL for defaults; with an interface set, the plugin
/// must match it and JSON calls become available; with a configuration set,
/// the plugin's instance is constructed with it.
/// On success `*plugin_out` is a new plugin handle owned by the caller
/// (free with `fidius_host_plugin_free`); on failure it is NULL, and no
/// instance was left behind.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, MISUSE, PLUGIN_NOT_FOUND,
/// INTERFACE_HASH_MISMATCH, INTERFACE_VERSION_MISMATCH,
/// METHOD_COUNT_MISMATCH, BUFFER_STRATEGY_MISMATCH, CONSTRUCT_FAILED (a
/// cdylib's `construct` returned NULL for an empty configuration),
/// CONFIG_REQUIRED (the interface declares a config type, or a Python
/// module has `__fidius_configure__` and no module-level methods, and no
/// configuration was set), CONFIG_INVALID, INVALID_JSON, CONFIG_REJECTED
/// (see `fidius_host_plugin_new_instance`).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load(
    host: *const fidius_host_t,
    name: *const c_char,
    name_len: usize,
    options: *const fidius_host_load_options_t,
    plugin_out: *mut *mut fidius_host_plugin_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let plugin_out = arg_out_cleared(plugin_out, "plugin_out")?;
        let host = &arg_handle(host, "host")?.host;
        let name = arg_str(name, name_len, "name")?;
        let options = arg_options(options)?;
        *plugin_out = super::plugin::new(host.load_with(name, options)?);
        Ok(())
    })
}

/// Loads a plugin from the library file `path` (which need not be in a
/// search path). `name` selects the plugin; pass NULL to load the only
/// plugin of a single-plugin library. Strings and `options` as in
/// `fidius_host_load`.
/// On success `*plugin_out` is a new plugin handle owned by the caller;
/// on failure it is NULL. A library is mapped once per host and shared by
/// all its plugin handles; it is unmapped when the last one is freed.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT, MISUSE,
/// FILE_NOT_FOUND, IO, NOT_A_LIBRARY, ARCHITECTURE_MISMATCH,
/// SIGNATURE_REQUIRED, SIGNATURE_INVALID, LIBRARY_LOAD_FAILED,
/// REGISTRY_MISSING, INVALID_REGISTRY, INVALID_MAGIC,
/// INCOMPATIBLE_REGISTRY_VERSION, INCOMPATIBLE_ABI_VERSION,
/// INVALID_DESCRIPTOR_SIZE, INVALID_PLUGIN_POINTER, INVALID_PLUGIN_STRING,
/// INVALID_PLUGIN_COUNT, UNKNOWN_BUFFER_STRATEGY, DUPLICATE_PLUGIN,
/// PLUGIN_NOT_FOUND, AMBIGUOUS_PLUGIN, INTERFACE_HASH_MISMATCH,
/// INTERFACE_VERSION_MISMATCH, METHOD_COUNT_MISMATCH,
/// BUFFER_STRATEGY_MISMATCH, CONSTRUCT_FAILED, CONFIG_REQUIRED,
/// CONFIG_INVALID, INVALID_JSON, CONFIG_REJECTED.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_path(
    host: *const fidius_host_t,
    path: *const c_char,
    path_len: usize,
    name: *const c_char,
    name_len: usize,
    options: *const fidius_host_load_options_t,
    plugin_out: *mut *mut fidius_host_plugin_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let plugin_out = arg_out_cleared(plugin_out, "plugin_out")?;
        let host = &arg_handle(host, "host")?.host;
        let path = arg_path(path, path_len, "path")?;
        let name = arg_opt_str(name, name_len, "name")?;
        let options = arg_options(options)?;
        *plugin_out = super::plugin::new(host.load_path_with(&path, name, options)?);
        Ok(())
    })
}

/// Checks the signature of a library file (`<file>.sig`), a package
/// directory or a `.fid` archive (`package.sig`) against the host's trusted
/// keys, without
/// loading, mapping or running anything: what `fidius package verify`
/// does, for install-time checks. It uses the trusted keys whether or not
/// the host requires signatures. `path` is borrowed for the call. Any
/// thread, concurrently with other calls on `host`.
///
/// Returns OK when a trusted key verifies the file or package, and leaves
/// nothing behind either way.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT (no trusted key
/// was added), MISUSE, FILE_NOT_FOUND, IO, NOT_A_REGULAR_FILE,
/// FILE_TOO_LARGE, INVALID_MANIFEST, SIGNATURE_REQUIRED (no signature
/// file), SIGNATURE_INVALID (malformed, tampered with, or by an untrusted
/// key), INVALID_KEY.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_verify_path(
    host: *const fidius_host_t,
    path: *const c_char,
    path_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let host = &arg_handle(host, "host")?.host;
        host.verify(&arg_path(path, path_len, "path")?)
    })
}

/// Unpacks the `.fid` archive `archive` (a package packed by `fidius
/// package pack`: tar + bzip2, one top-level `{name}-{version}/`
/// directory) into the directory `dest`, created when missing. Both paths
/// are UTF-8 of their `_len` bytes (or NUL-terminated with
/// `FIDIUS_HOST_NUL_TERMINATED`), borrowed for the call. Any thread,
/// concurrently with other calls on `host`.
///
/// The archive is read whole and checked before anything is written: only
/// regular files and directories, every path relative and inside the
/// top-level directory, none twice, at most 10 000 files and the host's
/// package size limit (`fidius_host_builder_set_max_package_size`) both
/// compressed and decompressed. When the host requires signatures, the
/// archive's `package.sig` must verify, over the files read, with a trusted
/// key. The files are written into a staging directory inside `dest` that
/// is renamed to `dest/{name}-{version}` when complete.
///
/// On success `*package_dir_out` is that directory's path, NUL-terminated,
/// owned by the caller (free with `fidius_host_string_free`). On failure it
/// is NULL and nothing is left in `dest` (which may have been created).
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT (empty path;
/// `dest/{name}-{version}` already exists), MISUSE, FILE_NOT_FOUND, IO,
/// NOT_A_REGULAR_FILE, FILE_TOO_LARGE, INVALID_MANIFEST (not a valid
/// archive: corrupt, a link or device entry, a path leaving the package,
/// more than one top-level directory, no `package.toml`),
/// SIGNATURE_REQUIRED, SIGNATURE_INVALID.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_unpack_archive(
    host: *const fidius_host_t,
    archive: *const c_char,
    archive_len: usize,
    dest: *const c_char,
    dest_len: usize,
    package_dir_out: *mut *mut c_char,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let package_dir_out = arg_out_cleared(package_dir_out, "package_dir_out")?;
        let host = &arg_handle(host, "host")?.host;
        let archive = arg_path(archive, archive_len, "archive")?;
        let dest = arg_path(dest, dest_len, "dest")?;
        let unpacked = host.unpack_archive(&archive, &dest)?;
        *package_dir_out = super::c_string(&unpacked.to_string_lossy()).into_raw();
        Ok(())
    })
}

/// Load options, or the defaults for NULL.
fn arg_options<'a>(options: *const fidius_host_load_options_t) -> crate::Result<&'a LoadOptions> {
    static DEFAULTS: std::sync::OnceLock<LoadOptions> = std::sync::OnceLock::new();
    if options.is_null() {
        return Ok(DEFAULTS.get_or_init(LoadOptions::default));
    }
    Ok(&arg_handle(options, "options")?.options)
}

/// Frees a host. NULL is a no-op. Plugin handles and discovery results made
/// by it stay valid.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_free(host: *mut fidius_host_t) {
    entry_value((), || drop(take_handle(host)))
}
