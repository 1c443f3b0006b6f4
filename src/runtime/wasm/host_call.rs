//! fidius's host imports: `fidius:host-call/host@0.1.0`, how a WASM
//! component calls its host's functions, and `fidius:stream-pull/pull@0.1.0`,
//! how it reads the items of a `Stream<T>` argument.
//!
//! A component cannot be asked which host interfaces it calls, so fidius
//! sends the interface's name, version and hash with every call, and the
//! host checks them each time: an unbound name, another version or another
//! hash is answered with fidius's status for it (the plugin's client turns
//! it into a typed error), never dispatched. Index `u32::MAX` is fidius's
//! probe: the check alone.

use super::store::GuestState;
use crate::abi::host_call_status::{HASH_MISMATCH, NOT_BOUND, PROBE_INDEX, VERSION_MISMATCH};
use crate::host_functions::HostBindings;
use wasmtime::component::Linker;
use wasmtime::StoreContextMut;


/// Adds the import to `linker`; every component may import it.
pub fn add_to_linker(linker: &mut Linker<GuestState>) -> wasmtime::Result<()> {
    linker.instance("fidius:host-call/host@0.1.0")?.func_wrap(
        "call",
        |store: StoreContextMut<'_, GuestState>, (name, version, hash, index, args): (String, u32, u64, u32, Vec<u8>)| {
            Ok((call(&store.data().host_bindings, &name, version, hash, index, &args),))
        },
    )?;
    // fidius's other host import: the items of a `Stream<T>` argument,
    // bincode, pulled one at a time; `none` at the end.
    linker.instance("fidius:stream-pull/pull@0.1.0")?.func_wrap("next", |store: StoreContextMut<'_, GuestState>, (): ()| {
        Ok((store.data().stream_input.as_ref().and_then(crate::stream::Feed::next_bincode),))
    })
}

/// One call from the guest: checked against the binding of `name`, then
/// served by it.
fn call(bindings: &HostBindings, name: &str, version: u32, hash: u64, index: u32, args: &[u8]) -> (i32, Vec<u8>) {
    let Some(binding) = bindings.find(name) else {
        return (NOT_BOUND, Vec::new());
    };
    let host = binding.interface();
    if host.version() != version {
        return (VERSION_MISMATCH, bincode::serialize(&(version, host.version())).unwrap_or_default());
    }
    if host.hash() != hash {
        return (HASH_MISMATCH, bincode::serialize(&(hash, host.hash())).unwrap_or_default());
    }
    if index == PROBE_INDEX {
        return (crate::abi::status::OK, Vec::new());
    }
    binding.dispatch(index, args)
}
