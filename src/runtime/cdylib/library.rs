//! Reading a fidius registry out of a mapped library without trusting it.
//!
//! Every pointer the plugin hands over is checked before it is followed:
//! NULL, alignment, and — for descriptors, names, tables and functions —
//! that it points into the plugin's own library. Counts are bounded, strings
//! must be NUL-terminated UTF-8 within a bounded length.

use crate::abi::{self, HostImportDescriptor, HostImportRegistry, MetaKv, MethodMetaEntry, PluginDescriptor, PluginRegistry};
use crate::artifact::MappedLibrary;
use crate::error::{Error, Result, Status};
use crate::plugin::{BufferStrategy, HostImport, MetaEntry, PluginDescription, PluginInfo, RuntimeKind};
use std::ffi::{c_char, c_void};
use super::host_table::ImageBindings;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// At most this many plugins in one library.
pub const MAX_PLUGINS: u32 = 1024;
/// At most this many methods in one interface.
pub const MAX_METHODS: u32 = 4096;
/// At most this many imported host interfaces in one library.
pub const MAX_HOST_IMPORTS: u32 = 1024;
/// At most this many metadata pairs per method or trait.
pub const MAX_METADATA: u32 = 1024;
/// Longest accepted name or metadata string, in bytes.
pub const MAX_STRING: usize = 64 * 1024;

/// What the host does with a library that has some invalid descriptors.
#[repr(u32)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadPolicy {
    /// One invalid descriptor rejects the whole library (the default).
    #[default]
    Strict = 0,
    /// Invalid descriptors are skipped one by one; the library's valid
    /// plugins stay loadable. Never relaxes signature, header, registry,
    /// interface-hash or buffer-strategy checks.
    Lenient = 1,
}

impl TryFrom<u32> for LoadPolicy {
    type Error = Error;

    /// A policy from its number (0 Strict, 1 Lenient).
    fn try_from(value: u32) -> Result<LoadPolicy> {
        match value {
            0 => Ok(LoadPolicy::Strict),
            1 => Ok(LoadPolicy::Lenient),
            other => Err(Error::new(
                Status::InvalidArgument,
                format!("load policy {other} is unknown (expected 0 = STRICT or 1 = LENIENT)"),
            )),
        }
    }
}

/// A validated descriptor: facts copied out, pointers checked.
pub struct ValidDescriptor {
    pub description: PluginDescription,
    /// One entry per method; NULL where the plugin left an optional slot empty.
    pub slots: Box<[*const c_void]>,
    pub free_buffer: Option<abi::FreeBufferFn>,
    pub construct: abi::ConstructFn,
    pub destroy: abi::DestroyFn,
}

/// A validated host-import descriptor: what it declares, and its `bind`.
pub struct ValidHostImport {
    pub import: HostImport,
    pub bind: abi::HostBindFn,
}

/// A mapped fidius library and its validated plugins.
pub struct Library {
    path: PathBuf,
    plugins: Vec<ValidDescriptor>,
    /// The host interfaces the library's plugins call, shared by all of them.
    host_imports: Vec<ValidHostImport>,
    /// Descriptors skipped under [`LoadPolicy::Lenient`].
    rejected: Vec<Error>,
    // The code behind every pointer above stays mapped until the end.
    _mapped: MappedLibrary,
    /// The host functions bound into the image: dropped after it is
    /// unmapped, as the plugin may call through them until then.
    image_bindings: Option<Arc<ImageBindings>>,
    /// Where the library lies in memory.
    bounds: Bounds,
}

// SAFETY: the raw pointers refer to immutable statics of the mapped library,
// which lives as long as `self`.
unsafe impl Send for Library {}
unsafe impl Sync for Library {}

impl Library {
    /// Reads and validates the registry of an already-mapped library.
    pub fn new(path: &Path, mapped: MappedLibrary, policy: LoadPolicy) -> Result<Library> {
        let (get_registry, bounds) = Bounds::of_registry(path, &mapped)?;
        let (mut plugins, rejected) = read_registry(path, get_registry, &bounds, policy)?;
        let (host_imports, image_key) =
            read_host_imports(&mapped, &bounds).map_err(|e| prefix_path(path, e.context("host imports")))?;
        for plugin in &mut plugins {
            plugin.description.host_imports = host_imports.iter().map(|i| i.import.clone()).collect();
        }
        let image_bindings = (!host_imports.is_empty()).then(|| ImageBindings::of_image(image_key));
        Ok(Library { path: path.to_path_buf(), plugins, host_imports, rejected, _mapped: mapped, image_bindings, bounds })
    }

    /// The record of host functions bound into this library's image (for a
    /// library that imports host interfaces).
    pub fn image_bindings(&self) -> Option<&ImageBindings> {
        self.image_bindings.as_deref()
    }

    /// Whether `code` lies in this library (a function pointer the plugin
    /// handed over, such as a stream's `next`).
    pub fn contains(&self, code: *const c_void) -> bool {
        self.bounds.contains(code)
    }

    /// The host interfaces the library's plugins call.
    pub fn host_imports(&self) -> &[ValidHostImport] {
        &self.host_imports
    }

    /// The file this library was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The valid plugins, in registry order.
    pub fn plugins(&self) -> &[ValidDescriptor] {
        &self.plugins
    }

    /// Why descriptors were skipped (Lenient policy only).
    pub fn rejected(&self) -> &[Error] {
        &self.rejected
    }
}

/// Knows the address range of one library, through `dladdr`.
struct Bounds {
    base: *mut c_void,
}

impl Bounds {
    /// The library's `fidius_get_registry`, and the bounds of the library
    /// that exports it.
    fn of_registry(path: &Path, mapped: &MappedLibrary) -> Result<(abi::GetRegistryFn, Bounds)> {
        // SAFETY: the symbol is looked up, not called, here.
        let get_registry: abi::GetRegistryFn = *unsafe { mapped.library().get::<abi::GetRegistryFn>(abi::REGISTRY_SYMBOL) }
            .map_err(|_| Error::at(Status::RegistryMissing, path, "does not export fidius_get_registry (not a fidius plugin)"))?;
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        // SAFETY: as in `Bounds::contains`.
        if unsafe { libc::dladdr(get_registry as *const c_void, &mut info) } == 0 {
            return Err(Error::at(Status::InvalidRegistry, path, "cannot locate the library in memory"));
        }
        Ok((get_registry, Bounds { base: info.dli_fbase }))
    }

    /// Whether `ptr` points into the same loaded object as the registry function.
    fn contains(&self, ptr: *const c_void) -> bool {
        // SAFETY: dladdr only inspects the loader's tables.
        let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
        unsafe { libc::dladdr(ptr, &mut info) != 0 && info.dli_fbase == self.base }
    }
}

type Rejected = Vec<Error>;

fn read_registry(
    path: &Path,
    get_registry: abi::GetRegistryFn,
    bounds: &Bounds,
    policy: LoadPolicy,
) -> Result<(Vec<ValidDescriptor>, Rejected)> {
    // SAFETY: calling the plugin's exported registry function is the protocol.
    let registry_ptr = unsafe { get_registry() };
    check_aligned_ptr(path, registry_ptr, "fidius_get_registry() result", Status::InvalidRegistry)?;
    // SAFETY: non-NULL and aligned; a plugin that returns a wild pointer cannot be defended against.
    let registry: PluginRegistry = unsafe { std::ptr::read(registry_ptr) };
    if registry.magic != abi::FIDIUS_MAGIC {
        return Err(Error::at(
            Status::InvalidMagic,
            path,
            format!("registry magic is {:02x?}, expected {:02x?} (\"FIDIUS\\0\\0\")", registry.magic, abi::FIDIUS_MAGIC),
        ));
    }
    if registry.registry_version != abi::REGISTRY_VERSION {
        return Err(Error::at(
            Status::IncompatibleRegistryVersion,
            path,
            format!("registry version is {}, expected {}", registry.registry_version, abi::REGISTRY_VERSION),
        ));
    }
    if registry.plugin_count > MAX_PLUGINS {
        return Err(Error::at(
            Status::InvalidPluginCount,
            path,
            format!("plugin_count is {}, at most {MAX_PLUGINS} are accepted", registry.plugin_count),
        ));
    }
    let descriptor_ptrs: &[*const PluginDescriptor] = if registry.plugin_count == 0 {
        &[]
    } else {
        check_aligned_ptr(path, registry.descriptors, "registry descriptor array", Status::InvalidPluginPointer)?;
        // SAFETY: non-NULL, aligned, and the count is bounded.
        unsafe { std::slice::from_raw_parts(registry.descriptors, registry.plugin_count as usize) }
    };

    let mut plugins = Vec::new();
    let mut rejected = Vec::new();
    for (index, &descriptor) in descriptor_ptrs.iter().enumerate() {
        match read_descriptor(path, bounds, descriptor) {
            Ok(valid) => {
                if plugins.iter().any(|p: &ValidDescriptor| p.description.info.name == valid.description.info.name) {
                    return Err(Error::at(
                        Status::DuplicatePlugin,
                        path,
                        format!("two plugins are named '{}'", valid.description.info.name),
                    ));
                }
                plugins.push(valid)
            }
            Err(e) => {
                let e = e.context(format_args!("descriptor #{index}"));
                match policy {
                    LoadPolicy::Strict => return Err(prefix_path(path, e)),
                    LoadPolicy::Lenient => rejected.push(prefix_path(path, e)),
                }
            }
        }
    }
    Ok((plugins, rejected))
}

/// The host-import registry, when the library has one (plugins of fidius
/// before 0.5.7 do not, and import nothing). Checked as strictly as the
/// plugin registry: a library whose registry is broken is not loaded.
/// Also returns the address of the registry function, which identifies
/// the mapped image.
fn read_host_imports(mapped: &MappedLibrary, bounds: &Bounds) -> Result<(Vec<ValidHostImport>, usize)> {
    // SAFETY: the symbol is looked up, not called, here.
    let Ok(get_imports) = (unsafe { mapped.library().get::<abi::GetHostImportsFn>(abi::HOST_IMPORTS_SYMBOL) }) else {
        return Ok((Vec::new(), 0));
    };
    let get_imports: abi::GetHostImportsFn = *get_imports;
    check_function(bounds, get_imports as *const c_void, "fidius_get_host_imports")?;
    // SAFETY: calling the plugin's exported registry function is the protocol.
    let registry_ptr = unsafe { get_imports() };
    check_table(bounds, registry_ptr, 1, "the registry")?;
    // SAFETY: in-library and aligned.
    let registry: &HostImportRegistry = unsafe { &*registry_ptr };
    if registry.magic != abi::FIDIUS_MAGIC {
        return Err(Error::new(Status::InvalidMagic, format!("registry magic is {:02x?}, expected {:02x?}", registry.magic, abi::FIDIUS_MAGIC)));
    }
    if registry.registry_version != abi::HOST_IMPORTS_VERSION {
        return Err(Error::new(
            Status::IncompatibleRegistryVersion,
            format!("registry version is {}, expected {}", registry.registry_version, abi::HOST_IMPORTS_VERSION),
        ));
    }
    if registry.import_count > MAX_HOST_IMPORTS {
        return Err(Error::new(
            Status::InvalidPluginCount,
            format!("import_count is {}, at most {MAX_HOST_IMPORTS} are accepted", registry.import_count),
        ));
    }
    let count = registry.import_count as usize;
    let image_key = get_imports as usize;
    if count == 0 {
        return Ok((Vec::new(), image_key));
    }
    // The array is built at run time (on the heap), as the plugin
    // registry's is: only its pointer can be checked; each descriptor it
    // points to must be in the library.
    if registry.imports.is_null() || (registry.imports as usize) % std::mem::align_of::<*const HostImportDescriptor>() != 0 {
        return Err(Error::new(Status::InvalidPluginPointer, format!("the import array {:p} is NULL or misaligned", registry.imports)));
    }
    // SAFETY: non-NULL, aligned, and the count is bounded.
    let descriptors = unsafe { std::slice::from_raw_parts(registry.imports, count) };
    let mut imports: Vec<ValidHostImport> = Vec::with_capacity(count);
    for (index, &descriptor) in descriptors.iter().enumerate() {
        let import = read_host_import(bounds, descriptor).map_err(|e| e.context(format_args!("import #{index}")))?;
        if imports.iter().any(|i| i.import.interface_name == import.import.interface_name) {
            return Err(Error::new(
                Status::DuplicatePlugin,
                format!("host interface '{}' is imported twice", import.import.interface_name),
            ));
        }
        imports.push(import);
    }
    Ok((imports, image_key))
}

fn read_host_import(bounds: &Bounds, ptr: *const HostImportDescriptor) -> Result<ValidHostImport> {
    let d: &HostImportDescriptor = checked_descriptor(bounds, ptr, "the descriptor pointer", abi::HOST_IMPORT_DESCRIPTOR_SIZE)?;
    let interface_name = read_string(bounds, d.interface_name, "interface_name")?;
    if interface_name.is_empty() {
        return Err(Error::new(Status::InvalidPluginString, "interface_name is empty"));
    }
    let bind = d.bind.ok_or_else(|| Error::new(Status::InvalidPluginPointer, format!("bind of '{interface_name}' is NULL")))?;
    check_function(bounds, bind as *const c_void, "bind")?;
    Ok(ValidHostImport {
        import: HostImport { interface_name, interface_version: d.interface_version, interface_hash: d.interface_hash },
        bind,
    })
}

fn prefix_path(path: &Path, e: Error) -> Error {
    e.context(path.display())
}

fn check_aligned_ptr<T>(path: &Path, ptr: *const T, what: &str, status: Status) -> Result<()> {
    if ptr.is_null() {
        return Err(Error::at(status, path, format!("{what} is NULL")));
    }
    if (ptr as usize) % std::mem::align_of::<T>() != 0 {
        return Err(Error::at(status, path, format!("{what} {ptr:p} is misaligned")));
    }
    Ok(())
}

/// Errors from here are prefixed with the path and descriptor index by the caller.
fn read_descriptor(path: &Path, bounds: &Bounds, ptr: *const PluginDescriptor) -> Result<ValidDescriptor> {
    let bad_ptr = |what: &str, why: &str| Error::new(Status::InvalidPluginPointer, format!("{what} {why}"));
    let d: &PluginDescriptor = checked_descriptor(bounds, ptr, "descriptor pointer", abi::DESCRIPTOR_SIZE)?;

    let name = read_string(bounds, d.plugin_name, "plugin_name")?;
    if name.is_empty() {
        return Err(Error::new(Status::InvalidPluginString, "plugin_name is empty"));
    }
    let interface_name = read_string(bounds, d.interface_name, "interface_name")?;
    let in_plugin = |e: Error| e.context(format_args!("plugin '{name}'"));

    let buffer_strategy = BufferStrategy::from_abi(u32::from(d.buffer_strategy)).ok_or_else(|| {
        in_plugin(Error::new(
            Status::UnknownBufferStrategy,
            format!("buffer_strategy is {}, expected 1 (PluginAllocated) or 2 (Arena)", d.buffer_strategy),
        ))
    })?;
    if d.method_count > MAX_METHODS {
        return Err(in_plugin(Error::new(
            Status::InvalidPluginCount,
            format!("method_count is {}, at most {MAX_METHODS} are accepted", d.method_count),
        )));
    }
    let slots = read_slots(bounds, d).map_err(in_plugin)?;
    let free_buffer = match buffer_strategy {
        BufferStrategy::PluginAllocated => {
            let free = d.free_buffer.ok_or_else(|| {
                in_plugin(bad_ptr("free_buffer", "is NULL but the plugin is PluginAllocated"))
            })?;
            check_function(bounds, free as *const c_void, "free_buffer").map_err(in_plugin)?;
            Some(free)
        }
        // Arena plugins never hand out buffers; whatever is there is unused.
        BufferStrategy::Arena => None,
    };
    let construct = d.construct.ok_or_else(|| in_plugin(bad_ptr("construct", "is NULL")))?;
    check_function(bounds, construct as *const c_void, "construct").map_err(in_plugin)?;
    let destroy = d.destroy.ok_or_else(|| in_plugin(bad_ptr("destroy", "is NULL")))?;
    check_function(bounds, destroy as *const c_void, "destroy").map_err(in_plugin)?;
    let method_metadata = read_method_metadata(bounds, d).map_err(in_plugin)?;
    let trait_metadata = read_trait_metadata(bounds, d).map_err(in_plugin)?;

    Ok(ValidDescriptor {
        description: PluginDescription {
            info: PluginInfo {
                name,
                interface_name,
                interface_hash: d.interface_hash,
                interface_version: d.interface_version,
                capabilities: d.capabilities,
                buffer_strategy,
                runtime: RuntimeKind::Cdylib,
                path: path.to_path_buf(),
            },
            method_count: d.method_count,
            method_metadata,
            trait_metadata,
            // The library's, set once the whole library is read.
            host_imports: Vec::new(),
            diagnostics: Vec::new(),
        },
        slots,
        free_buffer,
        construct,
        destroy,
    })
}

/// A descriptor that lies in the library, of fidius's ABI version, and
/// declares at least `min_size` bytes: every descriptor fidius emits
/// starts with `descriptor_size` and `abi_version` (two u32).
fn checked_descriptor<'a, T>(bounds: &Bounds, ptr: *const T, what: &str, min_size: u32) -> Result<&'a T> {
    check_table(bounds, ptr, 1, what)?;
    // SAFETY: in-library and aligned; every version has these 8 bytes.
    let (size, abi_version) = unsafe {
        let head = ptr.cast::<u32>();
        (std::ptr::read(head), std::ptr::read(head.add(1)))
    };
    if abi_version != abi::ABI_VERSION {
        return Err(Error::new(
            Status::IncompatibleAbiVersion,
            format!("abi_version is {abi_version}, expected {} (fidius 0.5.x)", abi::ABI_VERSION),
        ));
    }
    if size < min_size {
        return Err(Error::new(Status::InvalidDescriptorSize, format!("descriptor_size is {size}, expected at least {min_size}")));
    }
    // SAFETY: the plugin declares at least `min_size` bytes, the size of `T`.
    Ok(unsafe { &*ptr })
}

fn check_function(bounds: &Bounds, ptr: *const c_void, what: &str) -> Result<()> {
    if bounds.contains(ptr) {
        Ok(())
    } else {
        Err(Error::new(Status::InvalidPluginPointer, format!("{what} {ptr:p} points outside the library")))
    }
}

/// Checks a pointer to a table of `count` `T`s inside the library.
fn check_table<T>(bounds: &Bounds, ptr: *const T, count: usize, what: &str) -> Result<()> {
    let bad = |why: &str| Error::new(Status::InvalidPluginPointer, format!("{what} {why}"));
    if ptr.is_null() {
        return Err(bad("is NULL"));
    }
    if (ptr as usize) % std::mem::align_of::<T>() != 0 {
        return Err(bad("is misaligned"));
    }
    // The last element must be in the library too, so the whole table is.
    let last = ptr.wrapping_add(count.saturating_sub(1));
    if !bounds.contains(ptr.cast()) || !bounds.contains(last.cast()) {
        return Err(bad("points outside the library"));
    }
    Ok(())
}

fn read_slots(bounds: &Bounds, d: &PluginDescriptor) -> Result<Box<[*const c_void]>> {
    let count = d.method_count as usize;
    if count == 0 {
        return Ok(Box::new([]));
    }
    let table = d.vtable.cast::<*const c_void>();
    check_table(bounds, table, count, "vtable")?;
    // SAFETY: checked to lie in the library, aligned, `count` entries.
    let slots: Box<[*const c_void]> = unsafe { std::slice::from_raw_parts(table, count) }.into();
    for (index, &slot) in slots.iter().enumerate() {
        if !slot.is_null() {
            check_function(bounds, slot, &format!("vtable slot {index}"))?;
        }
    }
    Ok(slots)
}

fn read_method_metadata(bounds: &Bounds, d: &PluginDescriptor) -> Result<Vec<Vec<MetaEntry>>> {
    if d.method_metadata.is_null() {
        return Ok(Vec::new());
    }
    let count = d.method_count as usize;
    if count == 0 {
        return Ok(Vec::new());
    }
    check_table(bounds, d.method_metadata, count, "method_metadata")?;
    // SAFETY: checked table of `method_count` entries.
    let entries: &[MethodMetaEntry] = unsafe { std::slice::from_raw_parts(d.method_metadata, count) };
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| read_pairs(bounds, entry.kvs, entry.kv_count, &format!("metadata of method {i}")))
        .collect()
}

fn read_trait_metadata(bounds: &Bounds, d: &PluginDescriptor) -> Result<Vec<MetaEntry>> {
    if d.trait_metadata.is_null() {
        if d.trait_metadata_count != 0 {
            return Err(Error::new(
                Status::InvalidPluginPointer,
                format!("trait_metadata is NULL but trait_metadata_count is {}", d.trait_metadata_count),
            ));
        }
        return Ok(Vec::new());
    }
    read_pairs(bounds, d.trait_metadata, d.trait_metadata_count, "trait metadata")
}

fn read_pairs(bounds: &Bounds, kvs: *const MetaKv, count: u32, what: &str) -> Result<Vec<MetaEntry>> {
    if count == 0 {
        return Ok(Vec::new());
    }
    if count > MAX_METADATA {
        return Err(Error::new(
            Status::InvalidPluginCount,
            format!("{what} has {count} pairs, at most {MAX_METADATA} are accepted"),
        ));
    }
    check_table(bounds, kvs, count as usize, what)?;
    // SAFETY: checked table of `count` pairs.
    let pairs: &[MetaKv] = unsafe { std::slice::from_raw_parts(kvs, count as usize) };
    pairs
        .iter()
        .map(|kv| {
            Ok(MetaEntry {
                key: read_string(bounds, kv.key, &format!("{what} key"))?,
                value: read_string(bounds, kv.value, &format!("{what} value"))?,
            })
        })
        .collect()
}

/// A NUL-terminated UTF-8 string inside the library, at most [`MAX_STRING`] bytes.
fn read_string(bounds: &Bounds, ptr: *const c_char, what: &str) -> Result<String> {
    if ptr.is_null() {
        return Err(Error::new(Status::InvalidPluginPointer, format!("{what} is NULL")));
    }
    if !bounds.contains(ptr.cast()) {
        return Err(Error::new(Status::InvalidPluginPointer, format!("{what} {ptr:p} points outside the library")));
    }
    let mut len = 0;
    // SAFETY: reads byte by byte from an in-library address, stopping at NUL or the bound.
    while len < MAX_STRING && unsafe { *ptr.add(len) } != 0 {
        len += 1;
    }
    if len == MAX_STRING {
        return Err(Error::new(
            Status::InvalidPluginString,
            format!("{what} is not NUL-terminated within {MAX_STRING} bytes"),
        ));
    }
    // SAFETY: `len` bytes were just read.
    let bytes = unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map(str::to_owned).map_err(|e| {
        Error::new(
            Status::InvalidPluginString,
            format!("{what} is not valid UTF-8 ({e}): {}", String::from_utf8_lossy(bytes)),
        )
    })
}
