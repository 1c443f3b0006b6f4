//! `fidius_host_load_options_t`: options of one load.

use crate::error::Status;
use super::binding::fidius_host_binding_t;
use super::error::fidius_host_error_t;
use super::interface::fidius_host_interface_t;
use super::{arg_bytes, arg_handle, arg_str, entry_value, new_handle, take_handle, Handle};
use crate::host::LoadOptions;
use crate::plugin_config::{check_config_size, ConfigSource};
use std::ffi::c_char;

/// Options of a load (`fidius_host_load`, `fidius_host_load_path`). Made by
/// `fidius_host_load_options_new`, owned by the caller, freed with
/// `fidius_host_load_options_free`; loading only reads it, so one options
/// object may serve many loads. Movable: use from one thread at a time.
pub struct fidius_host_load_options_t {
    _private: [u8; 0],
}

pub(crate) struct LoadOptionsData {
    pub(crate) options: LoadOptions,
}

impl Handle for fidius_host_load_options_t {
    type Inner = LoadOptionsData;
    const MAGIC: u64 = 0x4644_4c4f_4144_4f31;
    const NAME: &'static str = "fidius_host_load_options_t";
}

fn with_options(
    options: *mut fidius_host_load_options_t,
    err: *mut *mut fidius_host_error_t,
    f: impl FnOnce(&mut LoadOptions) -> crate::Result<()>,
) -> Status {
    super::update(options, "options", err, |o| f(&mut o.options))
}

/// New load options with defaults (no interface). Owned by the caller.
/// Returns NULL only if the library failed internally.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_new() -> *mut fidius_host_load_options_t {
    entry_value(std::ptr::null_mut(), || {
        new_handle::<fidius_host_load_options_t>(LoadOptionsData { options: LoadOptions::default() })
    })
}

/// Sets the interface the plugin must match (required for WASM plugins,
/// whose export name, functions and hash it names): its hash, version and
/// method count are checked at load (INTERFACE_HASH_MISMATCH,
/// INTERFACE_VERSION_MISMATCH, METHOD_COUNT_MISMATCH), and it enables JSON
/// calls and method lookup by name. The options keep their own reference to
/// `interface`; NULL removes a previously set interface.
///
/// Errors: NULL_ARGUMENT (options), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_set_interface(
    options: *mut fidius_host_load_options_t,
    interface: *const fidius_host_interface_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        o.interface(if interface.is_null() { None } else { Some(arg_handle(interface, "interface")?.interface.clone()) });
        Ok(())
    })
}

/// Sets the configuration the plugin is constructed with
/// (`#[plugin_impl(Trait, config = C)]`): `config` is bincode of the
/// config type, `config_len` bytes, copied; it may be NULL when
/// `config_len` is 0. When the interface set in these options declares a
/// config type
/// (`fidius_host_interface_builder_set_config_type`), the load checks the
/// bytes against it — every byte must belong to the value — before the
/// plugin sees them (CONFIG_INVALID). cdylib plugins get the bytes in
/// `construct`, WASM plugins in `fidius-configure` (every instance the
/// handle makes); Python plugins, whose `__fidius_configure__` takes a
/// value, need the declared type to read them. A plugin that takes no
/// configuration ignores it (cdylib, WASM) or refuses it (a Python module
/// without `__fidius_configure__`: CONFIG_REJECTED). Replaces a
/// configuration set before.
///
/// Errors: NULL_ARGUMENT, MISUSE, INPUT_TOO_LARGE (over 64 MiB).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_set_config(
    options: *mut fidius_host_load_options_t,
    config: *const u8,
    config_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        let bytes = arg_bytes(config, config_len, "config")?;
        check_config_size(bytes.len())?;
        o.config(Some(ConfigSource::Bincode(bytes.to_vec())));
        Ok(())
    })
}

/// Sets the configuration as JSON text (`json_len` bytes, or
/// NUL-terminated with `FIDIUS_HOST_NUL_TERMINATED`), copied; e.g.
/// `{"scale": 3}`. It is parsed at load and, when the interface declares a
/// config type, checked against it and encoded for cdylib and WASM plugins
/// (INVALID_JSON, CONFIG_INVALID); without a declared type only Python
/// plugins can take it. Replaces a configuration set before.
///
/// Errors: NULL_ARGUMENT, INVALID_UTF8, MISUSE, INPUT_TOO_LARGE (over
/// 64 MiB).
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_set_config_json(
    options: *mut fidius_host_load_options_t,
    json: *const c_char,
    json_len: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        let text = arg_str(json, json_len, "json")?;
        check_config_size(text.len())?;
        o.config(Some(ConfigSource::Json(text.to_string())));
        Ok(())
    })
}

/// Removes a configuration set before: plugins load without one.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_clear_config(
    options: *mut fidius_host_load_options_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        o.config(None);
        Ok(())
    })
}

/// Overrides the host's WASM call deadline for plugins loaded with these
/// options, in milliseconds; 0 means no deadline.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_set_wasm_deadline_ms(
    options: *mut fidius_host_load_options_t,
    milliseconds: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        o.wasm_deadline(super::deadline_of(milliseconds));
        Ok(())
    })
}

/// Overrides the host's Python deadline (calls, and the import at load)
/// for plugins loaded with these options, in milliseconds; 0 means no
/// deadline.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_set_python_deadline_ms(
    options: *mut fidius_host_load_options_t,
    milliseconds: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        o.python_deadline(super::deadline_of(milliseconds));
        Ok(())
    })
}

/// Overrides the host's isolation (`fidius_host_builder_set_isolation`)
/// for plugins loaded with these options: a `fidius_host_isolation` value.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (unknown value), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_set_isolation(
    options: *mut fidius_host_load_options_t,
    isolation: u32,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        o.isolation(crate::runtime::worker::Isolation::try_from(isolation)?);
        Ok(())
    })
}

/// Overrides the host's restart policy
/// (`fidius_host_builder_set_restart_policy`) for isolated plugins loaded
/// with these options.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (`window_ms` 0 with restarts
/// allowed), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_set_restart_policy(
    options: *mut fidius_host_load_options_t,
    max_restarts: u32,
    window_ms: u64,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        o.restart_policy(super::restart_policy(max_restarts, window_ms)?);
        Ok(())
    })
}

/// Overrides the host's WASM memory cap (bytes) for plugins loaded with
/// these options.
///
/// Errors: NULL_ARGUMENT, INVALID_ARGUMENT (0), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_set_wasm_memory_limit(
    options: *mut fidius_host_load_options_t,
    bytes: usize,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        o.wasm_memory_limit(bytes)?;
        Ok(())
    })
}

/// Overrides the host's choice of a fresh WASM instance per call
/// (`fidius_host_builder_set_wasm_fresh_instance_per_call`) for plugins
/// loaded with these options.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_set_wasm_fresh_instance_per_call(
    options: *mut fidius_host_load_options_t,
    fresh: bool,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        o.wasm_fresh_instance_per_call(fresh);
        Ok(())
    })
}

/// Adds host functions the plugin may call (`#[host_interface]`): one
/// binding per host interface name, a later one replacing an earlier one of
/// the same name. The options keep their own reference.
///
/// At load: a native library that imports the binding's interface gets it
/// bound before any of its code runs — its version and hash must equal
/// those the plugin was built against (INTERFACE_VERSION_MISMATCH,
/// INTERFACE_HASH_MISMATCH, naming both sides). fidius binds once per
/// mapped library: until every plugin handle of the library is freed (in
/// every host of the process), a load of it with another binding for that
/// interface fails with HOST_ALREADY_BOUND, and a load without one leaves
/// the bound one in place. A WASM component's calls are checked against the
/// binding each time (an unbound name, version or hash is a typed error in
/// the plugin, as fidius defines it). Python plugins cannot call host
/// functions in fidius 0.5.9: loading one with a binding is UNSUPPORTED.
/// Bindings a plugin does not import are ignored; a plugin that imports an
/// interface nobody bound gets fidius's "not bound" error when it calls it.
///
/// Errors: NULL_ARGUMENT, MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_add_binding(
    options: *mut fidius_host_load_options_t,
    binding: *const fidius_host_binding_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        o.bind_host_functions(arg_handle(binding, "binding")?.binding.clone());
        Ok(())
    })
}

/// Sets the egress policy of plugins loaded with these options, instead of
/// the host's. The options keep their own reference; NULL removes it (the
/// host's policy applies again).
///
/// Errors: NULL_ARGUMENT (options), MISUSE.
#[must_use]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_set_egress_policy(
    options: *mut fidius_host_load_options_t,
    policy: *const super::egress::fidius_host_egress_policy_t,
    err: *mut *mut fidius_host_error_t,
) -> Status {
    with_options(options, err, |o| {
        o.egress_policy(super::egress::arg_policy(policy)?);
        Ok(())
    })
}

/// Frees load options. NULL is a no-op. Plugins loaded with them are not
/// affected.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn fidius_host_load_options_free(options: *mut fidius_host_load_options_t) {
    entry_value((), || drop(take_handle(options)))
}
