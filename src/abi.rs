//! The fidius 0.5 cdylib ABI, mirrored.
//!
//! These `repr(C)` types and constants match fidius-guest 0.5.9
//! (`src/descriptor.rs`, `src/status.rs`) byte for byte; the layout tests at
//! the bottom pin every offset. Nothing here validates anything: that is the
//! job of [`crate::runtime::cdylib`], which reads these structures from a
//! plugin it does not trust.

use std::ffi::{c_char, c_void};

/// `"FIDIUS\0\0"`, the first eight bytes of every registry.
pub const FIDIUS_MAGIC: [u8; 8] = *b"FIDIUS\0\0";
/// The only registry layout version fidius 0.5 produces.
pub const REGISTRY_VERSION: u32 = 1;
/// `ABI_VERSION` of every fidius 0.5.x plugin.
pub const ABI_VERSION: u32 = 500;
/// `size_of::<PluginDescriptor>()` in fidius 0.5.x; smaller descriptors lack
/// `construct`/`destroy`.
pub const DESCRIPTOR_SIZE: u32 = 120;

/// The symbol every fidius plugin library exports.
pub const REGISTRY_SYMBOL: &[u8] = b"fidius_get_registry\0";

/// Plugin status codes returned by vtable methods.
pub mod status {
    /// Success; the output is the result payload.
    pub const OK: i32 = 0;
    /// Arena too small; `*out_len` holds the size needed.
    pub const BUFFER_TOO_SMALL: i32 = -1;
    /// The plugin failed to decode its input or encode its output.
    pub const SERIALIZATION_ERROR: i32 = -2;
    /// The method returned `Err(e)`; the output is bincode of `e`.
    pub const PLUGIN_ERROR: i32 = -3;
    /// The method panicked; PluginAllocated carries a bincode `String`.
    /// From a host function: the host could not answer, and says why.
    pub const PANIC: i32 = -4;
    /// Stream `next` only: the stream has ended (no item).
    pub const STREAM_END: i32 = -5;
    /// A host function index beyond the host interface's methods.
    pub const INVALID_INDEX: i32 = -6;
}

/// Statuses of the WASM `fidius:host-call` import beyond a call's own.
pub mod host_call_status {
    /// No host interface of that name is bound.
    pub const NOT_BOUND: i32 = -7;
    /// The bound interface has another version; payload `(plugin's, host's)` as bincode `(u32, u32)`.
    pub const VERSION_MISMATCH: i32 = -8;
    /// The bound interface has another hash; payload `(plugin's, host's)` as bincode `(u64, u64)`.
    pub const HASH_MISMATCH: i32 = -9;
    /// The index of fidius's probe: the checks alone, no call.
    pub const PROBE_INDEX: u32 = 0xFFFF_FFFF;
}

/// `BufferStrategyKind` value for plugin-allocated outputs.
pub const STRATEGY_PLUGIN_ALLOCATED: u8 = 1;
/// `BufferStrategyKind` value for host-lent arenas.
pub const STRATEGY_ARENA: u8 = 2;

/// What `fidius_get_registry` returns.
#[repr(C)]
pub struct PluginRegistry {
    pub magic: [u8; 8],
    pub registry_version: u32,
    pub plugin_count: u32,
    pub descriptors: *const *const PluginDescriptor,
}

/// `void free_buffer(uint8_t *ptr, size_t len)`.
pub type FreeBufferFn = unsafe extern "C" fn(*mut u8, usize);
/// `void *construct(const uint8_t *cfg, uint32_t cfg_len)`.
pub type ConstructFn = unsafe extern "C" fn(*const u8, u32) -> *mut c_void;
/// `void destroy(void *instance)`.
pub type DestroyFn = unsafe extern "C" fn(*mut c_void);
/// A vtable slot of a PluginAllocated interface.
pub type PluginAllocatedMethod =
    unsafe extern "C" fn(*mut c_void, *const u8, u32, *mut *mut u8, *mut u32) -> i32;
/// A vtable slot of an Arena interface.
pub type ArenaMethod =
    unsafe extern "C" fn(*mut c_void, *const u8, u32, *mut u8, u32, *mut u32, *mut u32) -> i32;
/// A vtable slot of a method with a `Stream<T>` argument (client-streaming
/// or bidirectional): the instance, the input handle (ownership moves to
/// the plugin), the bincode of the other arguments, the output.
pub type StreamArgumentMethod =
    unsafe extern "C" fn(*mut c_void, *mut FidiusStreamHandle, *const u8, u32, *mut *mut u8, *mut u32) -> i32;

/// `int32_t next(FidiusStreamHandle *h, uint8_t *buf, uint32_t cap, uint32_t *out_len)`.
pub type StreamNextFn = unsafe extern "C" fn(*mut FidiusStreamHandle, *mut u8, u32, *mut u32) -> i32;
/// `void drop_fn(FidiusStreamHandle *h)`: frees the handle; called once.
pub type StreamDropFn = unsafe extern "C" fn(*mut FidiusStreamHandle);

/// fidius-guest 0.5.9's `FidiusStreamHandle` (24 bytes): a stream of
/// bincode items pulled with `next`, released with `drop_fn`. A
/// server-streaming method returns one in its `out_ptr`; a `Stream<T>`
/// argument is one the host builds.
#[repr(C)]
pub struct FidiusStreamHandle {
    pub next: Option<StreamNextFn>,
    pub drop_fn: Option<StreamDropFn>,
    pub state: *mut c_void,
}

/// `const PluginRegistry *fidius_get_registry(void)`.
pub type GetRegistryFn = unsafe extern "C" fn() -> *const PluginRegistry;

/// The symbol of a library's host-import registry (fidius 0.5.7+; absent
/// in older plugins, which import nothing).
pub const HOST_IMPORTS_SYMBOL: &[u8] = b"fidius_get_host_imports\0";
/// The only host-import registry version.
pub const HOST_IMPORTS_VERSION: u32 = 1;
/// Size of a [`HostImportDescriptor`].
pub const HOST_IMPORT_DESCRIPTOR_SIZE: u32 = 40;

/// What `fidius_get_host_imports` returns: the host interfaces the
/// library's plugins call (`#[host_interface]`).
#[repr(C)]
pub struct HostImportRegistry {
    pub magic: [u8; 8],
    pub registry_version: u32,
    pub import_count: u32,
    pub imports: *const *const HostImportDescriptor,
}

/// One imported host interface.
#[repr(C)]
pub struct HostImportDescriptor {
    pub descriptor_size: u32,
    pub abi_version: u32,
    pub interface_name: *const c_char,
    pub interface_hash: u64,
    pub interface_version: u32,
    pub bind: Option<HostBindFn>,
}

/// The table a host binds into a library for one host interface.
#[repr(C)]
pub struct HostFunctionTable {
    pub table_size: u32,
    pub abi_version: u32,
    pub interface_name: *const c_char,
    pub interface_hash: u64,
    pub interface_version: u32,
    pub fn_count: u32,
    pub ctx: *mut c_void,
    pub dispatch: HostDispatchFn,
    pub free_buffer: FreeBufferFn,
}

/// `int32_t bind(const HostFunctionTable *table)`.
pub type HostBindFn = unsafe extern "C" fn(*const HostFunctionTable) -> i32;
/// `int32_t dispatch(void *ctx, uint32_t index, const uint8_t *in,
/// uint32_t in_len, uint8_t **out, uint32_t *out_len)`.
pub type HostDispatchFn = unsafe extern "C" fn(*mut c_void, u32, *const u8, u32, *mut *mut u8, *mut u32) -> i32;
/// `const HostImportRegistry *fidius_get_host_imports(void)`.
pub type GetHostImportsFn = unsafe extern "C" fn() -> *const HostImportRegistry;

/// One plugin in a registry (120 bytes in fidius 0.5.x).
#[repr(C)]
pub struct PluginDescriptor {
    pub descriptor_size: u32,
    pub abi_version: u32,
    pub interface_name: *const c_char,
    pub interface_hash: u64,
    pub interface_version: u32,
    pub capabilities: u64,
    pub buffer_strategy: u8,
    pub plugin_name: *const c_char,
    pub vtable: *const c_void,
    pub free_buffer: Option<FreeBufferFn>,
    pub method_count: u32,
    pub method_metadata: *const MethodMetaEntry,
    pub trait_metadata: *const MetaKv,
    pub trait_metadata_count: u32,
    pub construct: Option<ConstructFn>,
    pub destroy: Option<DestroyFn>,
}

/// A metadata key/value pair.
#[repr(C)]
pub struct MetaKv {
    pub key: *const c_char,
    pub value: *const c_char,
}

/// The metadata of one method.
#[repr(C)]
pub struct MethodMetaEntry {
    pub kvs: *const MetaKv,
    pub kv_count: u32,
}

#[cfg(test)]
mod layout_tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn registry_layout() {
        assert_eq!(size_of::<PluginRegistry>(), 24);
        assert_eq!(align_of::<PluginRegistry>(), 8);
        assert_eq!(offset_of!(PluginRegistry, registry_version), 8);
        assert_eq!(offset_of!(PluginRegistry, plugin_count), 12);
        assert_eq!(offset_of!(PluginRegistry, descriptors), 16);
    }

    #[test]
    fn host_import_layouts() {
        assert_eq!(size_of::<HostImportRegistry>(), 24);
        assert_eq!(offset_of!(HostImportRegistry, import_count), 12);
        assert_eq!(offset_of!(HostImportRegistry, imports), 16);
        assert_eq!(size_of::<HostImportDescriptor>(), HOST_IMPORT_DESCRIPTOR_SIZE as usize);
        assert_eq!(offset_of!(HostImportDescriptor, interface_name), 8);
        assert_eq!(offset_of!(HostImportDescriptor, interface_hash), 16);
        assert_eq!(offset_of!(HostImportDescriptor, interface_version), 24);
        assert_eq!(offset_of!(HostImportDescriptor, bind), 32);
        assert_eq!(size_of::<HostFunctionTable>(), 56);
        assert_eq!(offset_of!(HostFunctionTable, fn_count), 28);
        assert_eq!(offset_of!(HostFunctionTable, ctx), 32);
        assert_eq!(offset_of!(HostFunctionTable, dispatch), 40);
        assert_eq!(offset_of!(HostFunctionTable, free_buffer), 48);
    }

    #[test]
    fn descriptor_layout() {
        assert_eq!(size_of::<PluginDescriptor>(), DESCRIPTOR_SIZE as usize);
        assert_eq!(offset_of!(PluginDescriptor, abi_version), 4);
        assert_eq!(offset_of!(PluginDescriptor, interface_name), 8);
        assert_eq!(offset_of!(PluginDescriptor, interface_hash), 16);
        assert_eq!(offset_of!(PluginDescriptor, interface_version), 24);
        assert_eq!(offset_of!(PluginDescriptor, capabilities), 32);
        assert_eq!(offset_of!(PluginDescriptor, buffer_strategy), 40);
        assert_eq!(offset_of!(PluginDescriptor, plugin_name), 48);
        assert_eq!(offset_of!(PluginDescriptor, vtable), 56);
        assert_eq!(offset_of!(PluginDescriptor, free_buffer), 64);
        assert_eq!(offset_of!(PluginDescriptor, method_count), 72);
        assert_eq!(offset_of!(PluginDescriptor, method_metadata), 80);
        assert_eq!(offset_of!(PluginDescriptor, trait_metadata), 88);
        assert_eq!(offset_of!(PluginDescriptor, trait_metadata_count), 96);
        assert_eq!(offset_of!(PluginDescriptor, construct), 104);
        assert_eq!(offset_of!(PluginDescriptor, destroy), 112);
    }

    #[test]
    fn metadata_layout() {
        assert_eq!(size_of::<MetaKv>(), 16);
        assert_eq!(size_of::<MethodMetaEntry>(), 16);
        assert_eq!(offset_of!(MethodMetaEntry, kv_count), 8);
    }
}
