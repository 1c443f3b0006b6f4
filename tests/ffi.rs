//! The extern "C" functions called from Rust: argument checks, error
//! objects, ownership of outputs.

mod common;

use common::*;
use fidius_host::ffi::builder::*;
use fidius_host::ffi::bytes::*;
use fidius_host::ffi::error::*;
use fidius_host::ffi::host::*;
use fidius_host::ffi::plugin::*;
use fidius_host::ffi::FIDIUS_HOST_NUL_TERMINATED as NT;
use fidius_host::Status;
use std::ffi::{c_char, CStr, CString};
use std::ptr::{null, null_mut};

fn text(ptr: *const c_char) -> String {
    assert!(!ptr.is_null());
    unsafe { CStr::from_ptr(ptr) }.to_string_lossy().into_owned()
}

fn host_with(dir: &str) -> *mut fidius_host_t {
    unsafe {
        let builder = fidius_host_builder_new();
        let path = CString::new(fixture(dir).to_string_lossy().as_bytes()).unwrap();
        assert_eq!(fidius_host_builder_add_search_path(builder, path.as_ptr(), NT, null_mut()), Status::Ok);
        let mut host = null_mut();
        assert_eq!(fidius_host_builder_build(builder, &mut host, null_mut()), Status::Ok);
        host
    }
}

#[test]
fn load_call_and_free_through_the_c_functions() {
    unsafe {
        let host = host_with("plugins");
        let mut plugin = null_mut();
        assert_eq!(fidius_host_load(host, c"BasicCalculator".as_ptr(), NT, null(), &mut plugin, null_mut()), Status::Ok);
        fidius_host_free(host);
        let input = encode(&(2i64, 40i64));
        let mut out = fidius_host_bytes_t { data: null_mut(), len: 0, owner: null() };
        assert_eq!(fidius_host_plugin_call(plugin, calc::ADD, input.as_ptr(), input.len(), &mut out, null_mut()), Status::Ok);
        assert_eq!(decode::<i64>(std::slice::from_raw_parts(out.data, out.len)), 42);
        fidius_host_plugin_free(plugin);
        // The output outlives its plugin handle and is released afterwards.
        assert_eq!(decode::<i64>(std::slice::from_raw_parts(out.data, out.len)), 42);
        fidius_host_bytes_free(&mut out);
        assert!(out.data.is_null() && out.len == 0);
    }
}

#[test]
fn errors_are_objects_with_status_message_and_plugin_fields() {
    unsafe {
        let host = host_with("plugins");
        let mut plugin = null_mut();
        let mut err = null_mut();
        assert_eq!(fidius_host_load(host, c"Nope".as_ptr(), NT, null(), &mut plugin, &mut err), Status::PluginNotFound);
        assert!(plugin.is_null());
        assert_eq!(fidius_host_error_status(err), Status::PluginNotFound);
        assert!(text(fidius_host_error_message(err)).contains("no plugin named 'Nope'"));
        assert!(fidius_host_error_plugin_code(err).is_null());
        fidius_host_error_free(err);

        assert_eq!(fidius_host_load(host, c"BasicCalculator".as_ptr(), NT, null(), &mut plugin, &mut err), Status::Ok);
        assert!(err.is_null());
        let input = encode(&(5i64, 0i64));
        let mut out = fidius_host_bytes_t { data: null_mut(), len: 0, owner: null() };
        let status = fidius_host_plugin_call(plugin, calc::DIVIDE, input.as_ptr(), input.len(), &mut out, &mut err);
        assert_eq!(status, Status::PluginError);
        assert!(out.data.is_null());
        assert_eq!(text(fidius_host_error_plugin_code(err)), "DIV_ZERO");
        assert_eq!(text(fidius_host_error_plugin_message(err)), "cannot divide 5 by zero");
        assert_eq!(text(fidius_host_error_plugin_details(err)), r#"{"dividend":5}"#);
        fidius_host_error_free(err);
        fidius_host_plugin_free(plugin);
        fidius_host_free(host);
    }
}

#[test]
fn bad_arguments_are_statuses() {
    unsafe {
        let builder = fidius_host_builder_new();
        let mut err = null_mut();
        let bad = b"dir\xff";
        let status = fidius_host_builder_add_search_path(builder, bad.as_ptr().cast(), bad.len(), &mut err);
        assert_eq!(status, Status::InvalidUtf8);
        assert!(text(fidius_host_error_message(err)).contains("'path'"));
        fidius_host_error_free(err);
        assert_eq!(fidius_host_builder_add_search_path(builder, null(), 4, null_mut()), Status::NullArgument);
        assert_eq!(fidius_host_builder_set_load_policy(builder, 9, null_mut()), Status::InvalidArgument);
        assert_eq!(fidius_host_builder_add_trusted_key(builder, [0u8; 3].as_ptr(), 3, null_mut()), Status::InvalidKey);
        // A host handle passed where a builder is expected.
        let host = host_with("plugins");
        assert_eq!(fidius_host_builder_set_interface_hash(host.cast(), 1, null_mut()), Status::Misuse);
        let mut out = fidius_host_bytes_t { data: null_mut(), len: 0, owner: null() };
        assert_eq!(fidius_host_plugin_call(host.cast(), 0, null(), 0, &mut out, null_mut()), Status::Misuse);
        fidius_host_free(host);
        fidius_host_builder_free(builder);
        let mut built = null_mut();
        assert_eq!(fidius_host_builder_build(null_mut(), &mut built, null_mut()), Status::NullArgument);
        assert!(built.is_null());
    }
}
