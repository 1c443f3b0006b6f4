//! Host functions for native plugins: the `HostFunctionTable` fidius binds
//! into a library.
//!
//! fidius keeps one table per host interface in a static cell of the plugin
//! library, set once and never cleared. So the binding belongs to the
//! mapped image, not to a plugin handle: every load that maps the same file
//! (in this host or another one of the process) shares it, a second load
//! may bind only the same functions again, and the table stays valid until
//! the image is unmapped. [`ImageBindings`] is that record, one per image,
//! shared by every [`super::library::Library`] of the image, and dropped
//! after the last of them has unmapped it.

use super::library::Library;
use crate::abi::{self, HostFunctionTable};
use crate::error::{Error, Result, Status};
use crate::host_functions::{mismatch_error, HostBinding, HostBindings};
use std::ffi::{c_void, CString};
use std::sync::{Arc, Mutex, Weak};

/// The images with host imports mapped by libraries of this process, by
/// the address of their `fidius_get_host_imports` (unique among the images
/// mapped at a time).
static IMAGES: Mutex<Vec<(usize, Weak<ImageBindings>)>> = Mutex::new(Vec::new());

/// The tables of images that outlived their last library: the loader kept
/// them mapped (a thread-local destructor the plugin registered on a thread
/// still running pins a library until that thread exits; the program may
/// hold it too). Reused if the image is mapped again, freed once it is gone.
static LINGERING: Mutex<Vec<Lingering>> = Mutex::new(Vec::new());

struct Lingering {
    key: usize,
    base: usize,
    tables: Tables,
}

type Tables = Arc<Mutex<Vec<BoundTable>>>;

/// The host functions bound into one mapped library image.
pub struct ImageBindings {
    key: usize,
    /// Where the loader mapped the image, to tell after unmapping whether
    /// it is still there.
    base: usize,
    tables: Tables,
}

/// One table handed to the plugin, and what it points to.
struct BoundTable {
    binding: Arc<HostBinding>,
    // What the plugin holds a pointer to.
    _table: Box<HostFunctionTable>,
    _name: CString,
}

// SAFETY: the table's pointers refer to the binding and the name, which
// live with it; both are immutable.
unsafe impl Send for BoundTable {}

impl ImageBindings {
    /// The record of the image whose host-import registry function is at
    /// `key`: the existing one when the image is mapped already.
    pub fn of_image(key: usize) -> Arc<ImageBindings> {
        let mut images = IMAGES.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(existing) = images.iter().find(|(k, _)| *k == key).and_then(|(_, weak)| weak.upgrade()) {
            return existing;
        }
        let base = image_base(key).unwrap_or(0);
        let bindings = Arc::new(ImageBindings { key, base, tables: Lingering::take(key, base) });
        images.retain(|(k, _)| *k != key);
        images.push((key, Arc::downgrade(&bindings)));
        bindings
    }

    /// Binds `binding` for `import` unless it is bound already; the same
    /// binding again is no change, another one is HOST_ALREADY_BOUND.
    fn bind(&self, library: &Library, import: &super::library::ValidHostImport, binding: &Arc<HostBinding>) -> Result<()> {
        let name = &import.import.interface_name;
        let mut tables = self.tables.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(bound) = tables.iter().find(|t| t.binding.interface().name() == name) {
            if Arc::ptr_eq(&bound.binding, binding) {
                return Ok(());
            }
            return Err(Error::at(
                Status::HostAlreadyBound,
                library.path(),
                format!(
                    "host interface '{name}' is already bound to other host functions in this mapped library (by an \
                     earlier load); fidius binds a host interface once per mapped library, so every load of it must \
                     pass the same binding until all its plugins are freed"
                ),
            ));
        }
        let interface = binding.interface();
        let c_name = CString::new(interface.name()).expect("interface names have no NUL");
        let table = Box::new(HostFunctionTable {
            table_size: std::mem::size_of::<HostFunctionTable>() as u32,
            abi_version: abi::ABI_VERSION,
            interface_name: c_name.as_ptr(),
            interface_hash: interface.hash(),
            interface_version: interface.version(),
            fn_count: interface.methods().len() as u32,
            ctx: Arc::as_ptr(binding) as *mut c_void,
            dispatch,
            free_buffer,
        });
        // SAFETY: `bind` was checked to lie in the library; the table and all
        // it points to stay valid until the image is unmapped (see `Drop`).
        let code = unsafe { (import.bind)(&*table) };
        if code != 0 {
            return Err(Error::at(
                Status::HostBindFailed,
                library.path(),
                format!("binding host interface '{name}' failed: {} (status {code})", bind_status_message(code)),
            ));
        }
        tables.push(BoundTable { binding: binding.clone(), _table: table, _name: c_name });
        Ok(())
    }
}

impl Drop for ImageBindings {
    fn drop(&mut self) {
        // Held throughout, so that a mapping of the same image meanwhile
        // finds the tables lingering (lock order: IMAGES, then LINGERING).
        let mut images = IMAGES.lock().unwrap_or_else(|p| p.into_inner());
        images.retain(|(_, weak)| !std::ptr::eq(weak.as_ptr(), self));
        // Every library of this record has been closed by now. If the image
        // is still mapped, the plugin may still call through the tables:
        // they linger with it rather than dangle.
        if self.base != 0 && image_base(self.key) == Some(self.base) {
            let lingering = Lingering { key: self.key, base: self.base, tables: self.tables.clone() };
            LINGERING.lock().unwrap_or_else(|p| p.into_inner()).push(lingering);
        }
    }
}

impl Lingering {
    /// The tables still bound into the image at `key` mapped at `base`, if
    /// it lingered; frees those of images that are gone meanwhile.
    fn take(key: usize, base: usize) -> Tables {
        let mut lingering = LINGERING.lock().unwrap_or_else(|p| p.into_inner());
        let found = lingering.iter().position(|l| l.key == key && l.base == base);
        let tables = found.map(|i| lingering.swap_remove(i).tables);
        lingering.retain(|l| image_base(l.key) == Some(l.base));
        tables.unwrap_or_default()
    }
}

/// Binds the host functions in `bindings` that the library imports, before
/// any of its plugin code runs for this load. Imports without a binding are
/// left as they are (unbound, or bound by an earlier load); bindings the
/// library does not import are ignored.
pub fn bind(library: &Library, bindings: &HostBindings) -> Result<()> {
    if bindings.is_empty() {
        return Ok(());
    }
    let Some(image) = library.image_bindings() else {
        return Ok(());
    };
    for import in library.host_imports() {
        let Some(binding) = bindings.find(&import.import.interface_name) else {
            continue;
        };
        if let Some(error) = mismatch_error(binding, import.import.interface_version, import.import.interface_hash) {
            return Err(error.context(library.path().display()));
        }
        image.bind(library, import, binding)?;
    }
    Ok(())
}

/// Where the object holding `address` is mapped, if one is.
fn image_base(address: usize) -> Option<usize> {
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr only reads the loader's tables.
    let found = unsafe { libc::dladdr(address as *const c_void, &mut info) };
    (found != 0).then_some(info.dli_fbase as usize)
}

/// fidius's reason for a `bind` status (`fidius_guest::host_ffi`).
fn bind_status_message(code: i32) -> &'static str {
    match code {
        -1 => "null table pointer",
        -2 => "a host table is already bound for this interface",
        -3 => "interface hash mismatch between plugin and host table",
        -4 => "interface version mismatch between plugin and host table",
        -5 => "fidius ABI version mismatch",
        -6 => "host table fn_count does not match the interface",
        -7 => "plugin bind shim panicked",
        _ => "unknown bind status",
    }
}

/// The table's `dispatch`: one host-function call from the plugin.
unsafe extern "C" fn dispatch(
    ctx: *mut c_void,
    index: u32,
    in_ptr: *const u8,
    in_len: u32,
    out_ptr: *mut *mut u8,
    out_len: *mut u32,
) -> i32 {
    std::panic::catch_unwind(|| {
        // SAFETY: `ctx` is the binding this table was made for, which lives
        // as long as the table.
        let binding = unsafe { &*(ctx as *const HostBinding) };
        let args = if in_ptr.is_null() || in_len == 0 {
            &[][..]
        } else {
            // SAFETY: fidius passes `in_len` readable bytes.
            unsafe { std::slice::from_raw_parts(in_ptr, in_len as usize) }
        };
        let (status, payload) = binding.dispatch(index, args);
        if out_ptr.is_null() || out_len.is_null() {
            return status;
        }
        let (ptr, len) = if payload.is_empty() {
            (std::ptr::null_mut(), 0)
        } else {
            let boxed = payload.into_boxed_slice();
            let len = boxed.len() as u32;
            (Box::into_raw(boxed) as *mut u8, len)
        };
        // SAFETY: fidius passes writable out-parameters.
        unsafe {
            *out_ptr = ptr;
            *out_len = len;
        }
        status
    })
    .unwrap_or(abi::status::PANIC)
}

/// The table's `free_buffer`: releases what `dispatch` returned.
unsafe extern "C" fn free_buffer(ptr: *mut u8, len: usize) {
    if !ptr.is_null() && len != 0 {
        // SAFETY: `dispatch` made it from a boxed slice of `len` bytes.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr, len)) });
    }
}
