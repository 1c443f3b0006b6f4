//! Gives the shared library a versioned soname, so programs linked against
//! one release keep loading a compatible one: libfidius_host.so.MAJOR.MINOR
//! before 1.0 (where a minor release may change the ABI), .so.MAJOR after.
//!
//! With the `python` feature, also compiles the Python host module with the
//! interpreter the library links (see `compile_python_host`).

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let soversion = if major == "0" { format!("{major}.{minor}") } else { major };
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfidius_host.so.{soversion}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    compile_python_host();
}

/// Writes `$OUT_DIR/host.pyc` and `$OUT_DIR/sdk.pyc`: the bytecode magic
/// number of the interpreter pyo3 links, then the marshalled code of
/// `src/runtime/python/host.py` (and `sdk.py`). At run time the code is
/// unmarshalled when the magic number matches the running interpreter's and
/// compiled from its source otherwise; an empty file (no interpreter here)
/// means "always compile".
fn compile_python_host() {
    let out_dir = std::env::var("OUT_DIR").expect("cargo sets OUT_DIR");
    let python = python_interpreter();
    for (source, filename, out) in [
        ("src/runtime/python/host.py", "<libfidius_host>", "host.pyc"),
        ("src/runtime/python/sdk.py", "<fidius sdk>", "sdk.pyc"),
    ] {
        println!("cargo:rerun-if-changed={source}");
        let compiled = python.as_deref().and_then(|python| {
            let script = "import importlib.util, marshal, sys\n\
                          code = compile(open(sys.argv[1], encoding='utf-8').read(), sys.argv[2], 'exec')\n\
                          sys.stdout.buffer.write(importlib.util.MAGIC_NUMBER + marshal.dumps(code))\n";
            let output = std::process::Command::new(python).args(["-I", "-c", script, source, filename]).output().ok()?;
            if !output.status.success() {
                println!("cargo:warning=cannot compile {source} with {python}; it is compiled at run time");
                return None;
            }
            Some(output.stdout)
        });
        let out = std::path::Path::new(&out_dir).join(out);
        std::fs::write(out, compiled.unwrap_or_default()).expect("OUT_DIR is writable");
    }
}

#[cfg(feature = "python")]
fn python_interpreter() -> Option<String> {
    pyo3_build_config::get().executable().map(str::to_owned)
}

#[cfg(not(feature = "python"))]
fn python_interpreter() -> Option<String> {
    None
}
