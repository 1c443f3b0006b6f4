#![no_main]
//! JSON calls through a fixed interface with every kind of type
//! (examples-c/interfaces/type_echo.toml). Byte 0 of the input picks the
//! method (modulo their count), the low bit of byte 1 the direction, and the
//! rest is the payload:
//! - 0: JSON arguments, encoded to bincode; what encodes must decode, and
//!   encode again to the same bytes;
//! - 1: bincode, decoded as the method's result and as its arguments; what
//!   decodes must encode, and decode again to the same JSON (the same JSON
//!   value where there are string-keyed maps: JSON objects come back with
//!   their keys sorted and deduplicated, whatever order the bincode had).
//!
//! Raw methods are transcoded but not round-tripped: their bytes travel
//! without the length prefix that the typed path adds.

use fidius_host::interface::types::{Fields, Shape, WireType};
use fidius_host::interface::{file, json, Interface, Returns};
use libfuzzer_sys::{fuzz_target, Corpus};
use std::sync::LazyLock;

static TYPE_ECHO: LazyLock<Interface> = LazyLock::new(|| {
    file::parse(include_str!("../../examples-c/interfaces/type_echo.toml"), "type_echo.toml").expect("type_echo.toml parses")
});

fuzz_target!(init: fidius_fuzz::init(), |data: &[u8]| -> Corpus {
    let [selector, direction, payload @ ..] = data else { return Corpus::Reject };
    let interface = &*TYPE_ECHO;
    let method = &interface.methods()[usize::from(*selector) % interface.methods().len()];
    let round_trip = !method.flags.raw;
    if direction & 1 == 0 {
        let Ok(args) = std::str::from_utf8(payload) else { return Corpus::Reject };
        let Ok(bytes) = json::encode_args(interface, method, args) else { return Corpus::Keep };
        if round_trip {
            let decoded = json::decode_args(interface, method, &bytes)
                .unwrap_or_else(|e| panic!("{}: encoded arguments do not decode: {}", method.name, e.message()));
            let again = json::encode_args(interface, method, &decoded)
                .unwrap_or_else(|e| panic!("{}: decoded arguments {decoded} do not encode: {}", method.name, e.message()));
            assert_eq!(again, bytes, "{}: arguments changed through JSON {decoded}", method.name);
        }
    } else {
        if let Ok(result) = json::decode_output(interface, method, payload) {
            if round_trip {
                let bytes = json::encode_result(interface, method, &result)
                    .unwrap_or_else(|e| panic!("{}: decoded result {result} does not encode: {}", method.name, e.message()));
                let again = json::decode_output(interface, method, &bytes)
                    .unwrap_or_else(|e| panic!("{}: re-encoded result does not decode: {}", method.name, e.message()));
                let returns = match &method.returns {
                    Returns::Nothing => vec![],
                    Returns::Value(ty) | Returns::Result(ty) => vec![ty],
                };
                assert_same_json(interface, returns, &result, &again, &method.name);
            }
        }
        if let Ok(args) = json::decode_args(interface, method, payload) {
            if round_trip {
                let bytes = json::encode_args(interface, method, &args)
                    .unwrap_or_else(|e| panic!("{}: decoded arguments {args} do not encode: {}", method.name, e.message()));
                let again = json::decode_args(interface, method, &bytes)
                    .unwrap_or_else(|e| panic!("{}: re-encoded arguments do not decode: {}", method.name, e.message()));
                assert_same_json(interface, method.params.iter().collect(), &args, &again, &method.name);
            }
        }
    }
    Corpus::Keep
});

/// The same text, or the same JSON value when `types` hold string-keyed maps.
fn assert_same_json(interface: &Interface, types: Vec<&WireType>, first: &str, again: &str, method: &str) {
    if first == again {
        return;
    }
    let mut seen = Vec::new();
    assert!(types.into_iter().any(|ty| has_object(interface, ty, &mut seen)), "{method}: {first} came back as {again}");
    let value = |text: &str| serde_json::from_str::<serde_json::Value>(text).expect("the host prints JSON");
    assert_eq!(value(first), value(again), "{method}: {first} came back as {again}");
}

/// Whether values of `ty` may hold a map with string keys (a JSON object).
fn has_object(interface: &Interface, ty: &WireType, seen: &mut Vec<usize>) -> bool {
    let fields = |fields: &Fields, seen: &mut Vec<usize>| match fields {
        Fields::Named(named) => named.iter().any(|(_, ty)| has_object(interface, ty, seen)),
        Fields::Unnamed(types) => types.iter().any(|ty| has_object(interface, ty, seen)),
        Fields::Unit => false,
    };
    match ty {
        WireType::Map(key, value) => **key == WireType::String || has_object(interface, key, seen) || has_object(interface, value, seen),
        WireType::Seq(item) | WireType::Option(item) | WireType::Array(item, _) => has_object(interface, item, seen),
        WireType::Tuple(items) => items.iter().any(|ty| has_object(interface, ty, seen)),
        // Each declared type once: they may be recursive.
        WireType::Named(index, _) if !seen.contains(index) => {
            seen.push(*index);
            match &interface.types()[*index].shape {
                Shape::Struct(f) => fields(f, seen),
                Shape::Enum(variants) => variants.iter().any(|v| fields(&v.fields, seen)),
            }
        }
        _ => false,
    }
}
