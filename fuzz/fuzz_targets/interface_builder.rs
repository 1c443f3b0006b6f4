#![no_main]
//! The interface parser, through `InterfaceBuilder`. Each line of the input
//! is a type declaration when it starts with `struct`, `enum` or `pub`, and
//! a method signature otherwise; a method line may start with `?` (optional)
//! and `#` (raw), flags that are not part of the signature text. What builds
//! is hashed, printed, decoded from zero bytes (which walks every type) and
//! must survive the interface file round trip.

use fidius_host::interface::{canonical_signature, json, InterfaceBuilder, MethodFlags};
use libfuzzer_sys::{fuzz_target, Corpus};

fuzz_target!(init: fidius_fuzz::init(), |data: &[u8]| -> Corpus {
    let Ok(text) = std::str::from_utf8(data) else { return Corpus::Reject };
    let mut builder = InterfaceBuilder::new("Fuzz", 1).expect("a valid interface name");
    for line in text.lines() {
        if matches!(line.split_whitespace().next(), Some("struct" | "enum" | "pub")) {
            let _ = builder.declare(line);
            continue;
        }
        let (flags, signature) = method_flags(line);
        // Interface files store the canonical spelling, so it must be a fixed point.
        if let Ok(canonical) = canonical_signature(signature) {
            let again = canonical_signature(&canonical).map_err(|e| e.message().to_string());
            assert_eq!(again.as_deref(), Ok(canonical.as_str()), "canonical spelling of {signature:?}");
        }
        let _ = builder.method(signature, flags);
    }
    let Ok(interface) = builder.build() else { return Corpus::Keep };
    let _ = format!("{:#018x} {interface:?}", interface.hash());
    for method in interface.methods() {
        for param in &method.params {
            let _ = param.to_string();
        }
        let _ = json::decode_args(&interface, method, &[0; 64]);
        let _ = json::decode_output(&interface, method, &[0; 64]);
    }
    fidius_fuzz::assert_round_trip(&interface);
    Corpus::Keep
});

fn method_flags(mut line: &str) -> (MethodFlags, &str) {
    let mut flags = MethodFlags::default();
    loop {
        if let Some(rest) = line.strip_prefix('?') {
            flags.optional = true;
            line = rest;
        } else if let Some(rest) = line.strip_prefix('#') {
            flags.raw = true;
            line = rest;
        } else {
            return (flags, line);
        }
    }
}
