//! `fidius_host_interface_builder_t` and `fidius_host_interface_t`: the
//! interface a host expects, built from C or read from an interface file.

use super::error::fidius_host_error_t;
use super::{
    arg_handle, arg_out, arg_out_cleared, arg_path, arg_str, c_string, entry, entry_value, new_handle, take_handle,
    Handle,
};
use crate::error::{Error, Status};
use crate::interface::{file, Interface, InterfaceBuilder, MethodFlags};
use std::ffi::{c_char, CString};
use std::sync::Arc;

/// Collects an interface's name, version, methods and types. Made by
/// `fidius_host_interface_builder_new`, owned by the caller, freed with
/// `fidius_host_interface_builder_free` (building does not consume it).
/// Movable: use from one thread at a time.
pub struct fidius_host_interface_builder_t {
    _private: [u8; 0],
}

pub(crate) struct InterfaceBuilderData {
    builder: InterfaceBuilder,
}

impl Handle for fidius_host_interface_builder_t {
    type Inner = InterfaceBuilderData;
    const MAGIC: u64 = 0x4644_4946_4255_4931;
    const NAME: &'static str = "fidius_host_interface_builder_t";
}

/// A validated, immutable interface. Made by
/// `fidius_host_interface_builder_build` or read from an interface file;
/// owned by the caller and freed with `fidius_host_interface_free`. Plugins
/// loaded with it keep their own reference, so it may be freed right after
/// loading. Shareable: any thread, concurrently.
pub struct fidius_host_interface_t {
    _private: [u8; 0],
}

pub(crate) struct InterfaceData {
    pub(crate) interface: Arc<Interface>,
    name: CString,
    wasm_export: Option<CString>,
    config_type: Option<CString>,
    signatures: Vec<CString>,
}

impl Handle for fidius_host_interface_t {
    type Inner = InterfaceData;
    const MAGIC: u64 = 0x4644_4946_4143_4531;
    const NAME: &'static str = "fidius_host_interface_t";
}

/// Method flags for `fidius_host_interface_builder_add_method`; combine
/// with `|`.
#[repr(u32)]
pub enum fidius_host_method_flag {
    /// `#[optional]`: not part of the hash; a plugin may lack it.
    Optional = 1,
    /// `#[wire(raw)]`: bytes travel unencoded.
    Raw = 2,
    /// Returns `Stream<T>` (the signature's return type is `T`).
    Streaming = 4,
}

const ALL_FLAGS: u32 = 7;

/// A new handle on a shared interface, with the C strings it lends out.
pub(crate) fn new(interface: Arc<Interface>) -> *mut fidius_host_interface_t {
    new_handle::<fidius_host_interface_t>(InterfaceData {
        name: c_string(interface.name()),
        wasm_export: interface.wasm_export().map(c_string),
        config_type: interface.config_type().map(|c| c_string(&c.text)),
        signatures: interface.methods().iter().map(|m| c_string(&m.signature)).collect(),
        interface,
    })
}

fn new_interface(interface: Interface) -> *mut fidius_host_interface_t {
    new(Arc::new(interface))
}

fn with_builder(
    builder: *mut fidius_host_interface_builder_t,
    err: *mut *mut fidius_host_error_t,
    f: impl FnOnce(&mut InterfaceBuilder) -> crate::Result<()>,
) -> Status {
    super::update(builder, "builder", err, |b| f(&mut b.builder))
}

/// Starts an interface called `name` (the Rust trait name; UTF-8 of
/// `name_len` bytes or NUL-terminated with `FIDIUS_HOST_NUL_TERMINATED`) at
/// `version` (the `#[plugin_interface(version = …)]`). On success
/// `*builder_out` is a new builder owned by the caller; on failure NULL.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_INTERFACE (not an identifier).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_builder_new(
    name: *const c_char,
    name_len: usize,
    version: u32,
    builder_out: *mut *mut fidius_host_interface_builder_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let builder_out = arg_out_cleared(builder_out, "builder_out")?;
        let builder = InterfaceBuilder::new(arg_str(name, name_len, "name")?, version)?;
        *builder_out = new_handle::<fidius_host_interface_builder_t>(InterfaceBuilderData { builder });
        Ok(())
    })
}

/// Sets the WASM component export name (e.g.
/// `fidius:calculator/calculator@0.1.0`). Strings as for
/// `fidius_host_interface_builder_new`.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, MISUSE, INVALID_INTERFACE (empty or
/// containing spaces).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_builder_set_wasm_export(
    builder: *mut fidius_host_interface_builder_t,
    export_name: *const c_char,
    export_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| b.wasm_export(arg_str(export_name, export_len, "export_name")?).map(drop))
}

/// Declares the type plugins of the interface are constructed with
/// (`#[plugin_impl(Trait, config = C)]`), e.g. `CalcConfig` (declared
/// with `fidius_host_interface_builder_add_type`) or `Vec<String>`; it is
/// resolved by the build. It does not change the hash. With it,
/// configurations are checked against the type before a plugin sees them,
/// JSON configurations can be given, and a load without a configuration
/// is CONFIG_REQUIRED. Replaces a type set before. Strings as for
/// `fidius_host_interface_builder_new`.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, MISUSE, INVALID_INTERFACE (not a
/// type).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_builder_set_config_type(
    builder: *mut fidius_host_interface_builder_t,
    type_name: *const c_char,
    type_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| b.config_type(arg_str(type_name, type_len, "type_name")?).map(drop))
}

/// Adds the next method, in declaration order (which is the order of the
/// plugin's vtable), from its fidius signature string: `name:T1,T2->R`,
/// e.g. `add:i64,i64->i64`, `ping:->` (no return type), `get:->()`. Any
/// spacing is accepted (`Vec<u8>` or `Vec < u8 >`); it is canonicalized as
/// the `#[plugin_interface]` macro prints it before hashing. `flags`
/// combines `fidius_host_method_flag` values; the markers `!raw`, `!stream`
/// and `<stream`, and `Stream<T>` types, are also understood.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, MISUSE, INVALID_ARGUMENT (unknown
/// flag bits), INVALID_INTERFACE (malformed signature, duplicate name, more
/// than 64 optional methods). Types are checked by the build.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_builder_add_method(
    builder: *mut fidius_host_interface_builder_t,
    signature: *const c_char,
    signature_len: usize,
    flags: u32,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| {
        let signature = arg_str(signature, signature_len, "signature")?;
        if flags & !ALL_FLAGS != 0 {
            return Err(Error::new(Status::InvalidArgument, format!("unknown method flag bits {:#x}", flags & !ALL_FLAGS)));
        }
        let flags = MethodFlags {
            optional: flags & fidius_host_method_flag::Optional as u32 != 0,
            raw: flags & fidius_host_method_flag::Raw as u32 != 0,
            streaming: flags & fidius_host_method_flag::Streaming as u32 != 0,
        };
        b.method(signature, flags).map(drop)
    })
}

/// Declares a struct or enum that method types use, in Rust syntax:
/// `struct Point { x: f64, y: f64 }`, `struct Id(u64);`, `struct Unit;`,
/// `enum Shape { Empty, Circle(f64), Rect { w: f64, h: f64 } }`. JSON
/// values of these types follow serde's default representation. Types may
/// be declared in any order.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, MISUSE, INVALID_INTERFACE (syntax,
/// generics, a builtin or duplicate name).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_builder_add_type(
    builder: *mut fidius_host_interface_builder_t,
    declaration: *const c_char,
    declaration_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_builder(builder, err, |b| b.declare(arg_str(declaration, declaration_len, "declaration")?).map(drop))
}

/// Checks the whole interface (every type must be builtin or declared) and
/// computes its hash. On success `*interface_out` is a new interface owned
/// by the caller; on failure NULL. The builder stays usable.
///
/// Errors: NULL_ARGUMENT, MISUSE, INVALID_INTERFACE (names the method or
/// type and the unknown or unsupported type).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_builder_build(
    builder: *const fidius_host_interface_builder_t,
    interface_out: *mut *mut fidius_host_interface_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let interface_out = arg_out_cleared(interface_out, "interface_out")?;
        *interface_out = new_interface(arg_handle(builder, "builder")?.builder.build()?);
        Ok(())
    })
}

/// Frees a builder. NULL is a no-op.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_builder_free(builder: *mut fidius_host_interface_builder_t) {
    entry_value((), || drop(take_handle(builder)))
}

/// Reads an interface file (TOML; see docs/interfaces.md) at `path`. On success
/// `*interface_out` is a new interface owned by the caller; on failure NULL.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_ARGUMENT, FILE_NOT_FOUND,
/// IO, INVALID_INTERFACE (the message names the file and the problem),
/// INTERFACE_HASH_MISMATCH (the file's `hash` differs from its methods').
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_new_from_file(
    path: *const c_char,
    path_len: usize,
    interface_out: *mut *mut fidius_host_interface_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let interface_out = arg_out_cleared(interface_out, "interface_out")?;
        *interface_out = new_interface(file::read(&arg_path(path, path_len, "path")?)?);
        Ok(())
    })
}

/// Parses interface-file text (`toml`, `toml_len` bytes of UTF-8 or
/// NUL-terminated), as `fidius_host_interface_new_from_file` does.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, INVALID_INTERFACE,
/// INTERFACE_HASH_MISMATCH.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_new_from_toml(
    toml: *const c_char,
    toml_len: usize,
    interface_out: *mut *mut fidius_host_interface_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let interface_out = arg_out_cleared(interface_out, "interface_out")?;
        *interface_out = new_interface(file::parse(arg_str(toml, toml_len, "toml")?, "interface text")?);
        Ok(())
    })
}

/// Writes the interface as interface-file text. On success `*toml_out` is a
/// NUL-terminated string owned by the caller (free with
/// `fidius_host_string_free`); on failure NULL.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_to_toml(
    interface: *const fidius_host_interface_t,
    toml_out: *mut *mut c_char,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let toml_out = arg_out_cleared(toml_out, "toml_out")?;
        *toml_out = c_string(&file::to_toml(&arg_handle(interface, "interface")?.interface)).into_raw();
        Ok(())
    })
}

/// The interface name. Borrowed: valid until `interface` is freed. NULL
/// for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_name(interface: *const fidius_host_interface_t) -> *const c_char {
    super::get(interface, std::ptr::null(), |i| i.name.as_ptr())
}

/// The interface version, or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_version(interface: *const fidius_host_interface_t) -> u32 {
    super::get(interface, 0, |i| i.interface.version())
}

/// The interface hash of the required methods, as `#[plugin_interface]`
/// computes it; 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_hash(interface: *const fidius_host_interface_t) -> u64 {
    super::get(interface, 0, |i| i.interface.hash())
}

/// The WASM export name, or NULL when none was given (or for NULL).
/// Borrowed: valid until `interface` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_wasm_export(interface: *const fidius_host_interface_t) -> *const c_char {
    super::get(interface, std::ptr::null(), |i| i.wasm_export.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()))
}

/// The config type (canonical, e.g. `CalcConfig`), or NULL when the
/// interface declares none (or for NULL). Borrowed: valid until
/// `interface` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_config_type(interface: *const fidius_host_interface_t) -> *const c_char {
    super::get(interface, std::ptr::null(), |i| i.config_type.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()))
}

/// Number of methods, or 0 for NULL.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_method_count(interface: *const fidius_host_interface_t) -> u32 {
    super::get(interface, 0, |i| i.signatures.len() as u32)
}

/// The canonical signature string of method `index` (markers included,
/// exactly what the hash sees), or NULL when out of range. Borrowed: valid
/// until `interface` is freed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_method_signature(
    interface: *const fidius_host_interface_t,
    index: u32,
) -> *const c_char {
    super::get(interface, std::ptr::null(), |i| i.signatures.get(index as usize).map_or(std::ptr::null(), |s| s.as_ptr()))
}

/// The `fidius_host_method_flag` bits of method `index`; 0 when out of range.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_method_flags(interface: *const fidius_host_interface_t, index: u32) -> u32 {
    super::get(interface, 0, |i| {
        i.interface.methods().get(index as usize).map_or(0, |m| {
            let bit = |set: bool, flag: fidius_host_method_flag| if set { flag as u32 } else { 0 };
            bit(m.flags.optional, fidius_host_method_flag::Optional)
                | bit(m.flags.raw, fidius_host_method_flag::Raw)
                | bit(m.flags.streaming, fidius_host_method_flag::Streaming)
        })
    })
}

/// The index of the method called `name` into `*index_out`.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, MISUSE, UNKNOWN_METHOD.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_method_index(
    interface: *const fidius_host_interface_t,
    name: *const c_char,
    name_len: usize,
    index_out: *mut u32,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    entry(err, || {
        let index_out = arg_out(index_out, "index_out")?;
        *index_out = 0;
        let interface = &arg_handle(interface, "interface")?.interface;
        *index_out = interface.method_index(arg_str(name, name_len, "name")?)?;
        Ok(())
    })
}

/// Frees an interface handle. NULL is a no-op. Plugins loaded with it keep
/// working.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_interface_free(interface: *mut fidius_host_interface_t) {
    entry_value((), || drop(take_handle(interface)))
}
