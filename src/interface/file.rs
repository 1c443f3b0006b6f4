//! Interface files: an interface written as TOML.
//!
//! ```toml
//! name = "Calculator"            # the trait name
//! version = 2                    # the interface version
//! wasm_export = "fidius:calculator/calculator@0.1.0"   # optional
//! hash = "0x0271e9b7d21d10f1"    # optional; checked when present
//! config = "CalcConfig"          # optional: what plugins are configured with
//! types = [                      # structs and enums, in Rust syntax
//!     "struct Point { x: f64, y: f64 }",
//!     "struct CalcConfig { scale: i64 }",
//! ]
//!
//! [[methods]]                    # in declaration order
//! signature = "add:i64,i64->i64"
//!
//! [[methods]]
//! signature = "reverse:Vec<u8>->Vec<u8>"
//! raw = true                     # also: optional = true, streaming = true
//! ```

use super::{Interface, InterfaceBuilder, MethodFlags};
use crate::error::{Error, Result, Status};
use serde::Deserialize;
use std::fmt::Write;
use std::path::Path;

/// Largest interface file read: 1 MiB.
pub const MAX_FILE_SIZE: u64 = crate::disk::INTERFACE_LIMIT;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceFile {
    name: String,
    version: u32,
    #[serde(default)]
    wasm_export: Option<String>,
    #[serde(default)]
    hash: Option<String>,
    #[serde(default)]
    config: Option<String>,
    #[serde(default)]
    types: Vec<String>,
    #[serde(default)]
    methods: Vec<MethodEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MethodEntry {
    signature: String,
    #[serde(default)]
    optional: bool,
    #[serde(default)]
    raw: bool,
    #[serde(default)]
    streaming: bool,
}

/// Parses an interface file's text. `origin` names it in messages.
pub fn parse(text: &str, origin: &str) -> Result<Interface> {
    let context = |e: Error| e.context(origin);
    if text.len() as u64 > MAX_FILE_SIZE {
        return Err(Error::new(
            Status::InvalidInterface,
            format!("{origin}: an interface file is at most {MAX_FILE_SIZE} bytes, this one is {}", text.len()),
        ));
    }
    let file: InterfaceFile = toml::from_str(text)
        .map_err(|e| Error::new(Status::InvalidInterface, format!("{origin}: not a valid interface file: {e}")))?;
    let mut builder = InterfaceBuilder::new(&file.name, file.version).map_err(context)?;
    if let Some(export) = &file.wasm_export {
        builder.wasm_export(export).map_err(context)?;
    }
    for declaration in &file.types {
        builder.declare(declaration).map_err(context)?;
    }
    if let Some(config) = &file.config {
        builder.config_type(config).map_err(context)?;
    }
    for method in &file.methods {
        let flags = MethodFlags { optional: method.optional, raw: method.raw, streaming: method.streaming };
        builder.method(&method.signature, flags).map_err(context)?;
    }
    let interface = builder.build().map_err(context)?;
    if let Some(expected) = &file.hash {
        let digits = expected.strip_prefix("0x").unwrap_or(expected);
        let expected = u64::from_str_radix(digits, 16).map_err(|_| {
            Error::new(Status::InvalidInterface, format!("{origin}: hash '{expected}' is not a hexadecimal u64"))
        })?;
        if expected != interface.hash() {
            return Err(Error::new(
                Status::InterfaceHashMismatch,
                format!(
                    "{origin}: the methods hash to {:#018x}, but the file says {expected:#018x}",
                    interface.hash()
                ),
            )
            .mismatch(expected, interface.hash()));
        }
    }
    Ok(interface)
}

/// Reads and parses an interface file.
pub fn read(path: &Path) -> Result<Interface> {
    let limit = crate::disk::Limit::new(MAX_FILE_SIZE, "interface file");
    let bytes = crate::disk::read(path, crate::disk::Links::Follow, limit)?;
    let text = String::from_utf8(bytes).map_err(|e| Error::at(Status::InvalidUtf8, path, e))?;
    parse(&text, &path.display().to_string())
}

/// Writes `interface` as an interface file (which [`parse`] reads back to
/// an equal interface).
pub fn to_toml(interface: &Interface) -> String {
    let quote = |s: &str| toml::Value::String(s.to_string()).to_string();
    let mut out = String::new();
    let _ = writeln!(out, "name = {}", quote(interface.name()));
    let _ = writeln!(out, "version = {}", interface.version());
    if let Some(export) = interface.wasm_export() {
        let _ = writeln!(out, "wasm_export = {}", quote(export));
    }
    let _ = writeln!(out, "hash = \"{:#018x}\"", interface.hash());
    if let Some(config) = interface.config_type() {
        let _ = writeln!(out, "config = {}", quote(&config.text));
    }
    if !interface.types().is_empty() {
        out.push_str("types = [\n");
        for ty in interface.types() {
            let _ = writeln!(out, "    {},", quote(&ty.declaration));
        }
        out.push_str("]\n");
    }
    for method in interface.methods() {
        let _ = write!(out, "\n[[methods]]\nsignature = {}\n", quote(&method.written));
        // Raw and streaming are markers of the signature itself.
        if method.flags.optional {
            out.push_str("optional = true\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CALCULATOR: &str = r#"
name = "Greeter"
version = 1
types = ["struct Point { x: f64, y: f64 }"]

[[methods]]
signature = "greet:String->String"
[[methods]]
signature = "maybe:Option<String>->Result<Vec<u8>, PluginError>"
[[methods]]
signature = "pair:(i64, i64)->()"
[[methods]]
signature = "blob:Vec<u8>->Vec<u8>"
raw = true
[[methods]]
signature = "extra:->u32"
optional = true
[[methods]]
signature = "at:Point->Point"
optional = true
"#;

    #[test]
    fn parses_and_round_trips() {
        let iface = parse(CALCULATOR, "test").unwrap();
        assert_eq!(iface.hash(), 0xe12b_1649_403a_317b);
        let text = to_toml(&iface);
        assert!(text.contains("hash = \"0xe12b1649403a317b\""), "{text}");
        assert_eq!(parse(&text, "again").unwrap(), iface);
    }

    #[test]
    fn a_config_type_round_trips_and_leaves_the_hash_alone() {
        let with = CALCULATOR.replace("version = 1\n", "version = 1\nconfig = \"Option< Point >\"\n");
        let iface = parse(&with, "test").unwrap();
        let config = iface.config_type().expect("declared");
        assert_eq!(config.text, "Option<Point>");
        assert_eq!(iface.hash(), parse(CALCULATOR, "test").unwrap().hash());
        assert_eq!(parse(&to_toml(&iface), "again").unwrap(), iface);
        let e = parse(&CALCULATOR.replace("version = 1\n", "version = 1\nconfig = \"Nope\"\n"), "f.toml").unwrap_err();
        assert_eq!(e.status(), Status::InvalidInterface);
        assert!(e.message().contains("config type") && e.message().contains("Nope"), "{}", e.message());
    }

    #[test]
    fn rejects_bad_files() {
        let e = parse("name = \"X\"\nversion = 1\nbogus = 2\n", "f.toml").unwrap_err();
        assert_eq!(e.status(), Status::InvalidInterface);
        assert!(e.message().contains("bogus"), "{}", e.message());
        let e = parse("name = \"X\"\nversion = 1\nhash = \"0x1\"\n", "f.toml").unwrap_err();
        assert_eq!(e.status(), Status::InterfaceHashMismatch);
        let e = parse("name = \"X\"\nversion = 1\n[[methods]]\nsignature = \"f:Nope->()\"\n", "f.toml").unwrap_err();
        assert!(e.message().starts_with("f.toml: ") && e.message().contains("Nope"), "{}", e.message());
    }
}
