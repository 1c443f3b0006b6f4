//! Gives the shared library a versioned soname, so programs linked against
//! one release keep loading a compatible one: libfidius_host.so.MAJOR.MINOR
//! before 1.0 (where a minor release may change the ABI), .so.MAJOR after.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_default();
    let minor = std::env::var("CARGO_PKG_VERSION_MINOR").unwrap_or_default();
    let soversion = if major == "0" { format!("{major}.{minor}") } else { major };
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libfidius_host.so.{soversion}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
