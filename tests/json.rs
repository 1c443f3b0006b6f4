//! Interfaces and JSON calls against the real fidius fixture plugins.
//!
//! Every supported type goes through `TypeEchoes` (which returns its
//! arguments), and the bytes the host encodes are compared with what fidius's
//! own serialization produces for the same Rust values.

mod common;

use calc_interface::{Everything, Marker, Meters, Pair, Point, Shape};
use common::*;
use fidius_host::interface::{file, json};
use fidius_host::{Interface, InterfaceBuilder, Isolation, LoadOptions, MethodFlags, Plugin, Status};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

fn interface_file(name: &str) -> Arc<Interface> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples-c/interfaces").join(name);
    Arc::new(file::read(&path).unwrap())
}

fn with(interface: &Arc<Interface>) -> LoadOptions {
    LoadOptions::with_interface(interface.clone())
}

fn type_echo() -> (Plugin, Arc<Interface>) {
    type_echo_in(Isolation::InProcess)
}

fn type_echo_in(isolation: Isolation) -> (Plugin, Arc<Interface>) {
    let interface = interface_file("type_echo.toml");
    let plugin = host_in(isolation, &fixture("types")).load_with("TypeEchoes", &with(&interface)).unwrap();
    assert_runs(&plugin, isolation);
    (plugin, interface)
}

fn everything() -> Everything {
    let leaf = Everything {
        shapes: vec![],
        origin: None,
        sizes: [Meters(0), Meters(u32::MAX)],
        pair: Pair(-128, String::new()),
        marker: Marker,
        lookup: BTreeMap::new(),
        nested: None,
    };
    Everything {
        shapes: vec![Shape::Empty, Shape::Circle(1.5), Shape::Rect { w: 2.0, h: -3.25 }, Shape::Tagged("t".into(), 9)],
        origin: Some(Point { x: 0.1, y: -2e300, label: "o\"rigin\n".into() }),
        sizes: [Meters(1), Meters(2)],
        pair: Pair(7, "seven".into()),
        marker: Marker,
        lookup: BTreeMap::from([(1, vec!["a".into()]), (65535, vec![])]),
        nested: Some(Box::new(leaf)),
    }
}

/// serde_json's form of `everything()`, except that maps whose keys are not
/// strings are arrays of `[key, value]` pairs.
fn everything_json() -> Value {
    let mut value = serde_json::to_value(everything()).unwrap();
    value["lookup"] = json!([[1, ["a"]], [65535, []]]);
    value["nested"]["lookup"] = json!([]);
    value
}

/// Each case: method, JSON arguments, and fidius's bytes for the argument tuple.
fn cases() -> Vec<(&'static str, Value, Vec<u8>)> {
    let wire = |v: &dyn erased::Wire| v.bytes();
    let map: HashMap<String, u32> = HashMap::from([("one".into(), 1)]);
    vec![
        ("echo_bool", json!([true]), wire(&(true,))),
        (
            "echo_signed",
            json!([-128, -32768, -2147483648i64, i64::MIN, "-170141183460469231731687303715884105728"]),
            wire(&(i8::MIN, i16::MIN, i32::MIN, i64::MIN, i128::MIN)),
        ),
        (
            "echo_unsigned",
            json!([255, 65535, 4294967295u64, u64::MAX, "340282366920938463463374607431768211455"]),
            wire(&(u8::MAX, u16::MAX, u32::MAX, u64::MAX, u128::MAX)),
        ),
        ("echo_floats", json!([1.5, -0.1]), wire(&(1.5f32, -0.1f64))),
        ("echo_char", json!(["é"]), wire(&('é',))),
        ("echo_string", json!(["héllo \"\\\u{1}"]), wire(&("héllo \"\\\u{1}".to_string(),))),
        ("echo_bytes", json!([[0, 1, 255]]), wire(&(vec![0u8, 1, 255],))),
        ("echo_list", json!([[[1, -2], [], [3]]]), wire(&(vec![vec![1i32, -2], vec![], vec![3]],))),
        ("echo_option", json!(["hi"]), wire(&(Some("hi".to_string()),))),
        ("echo_option", json!([null]), wire(&(None::<String>,))),
        ("echo_tuple", json!([[7, "x", false]]), wire(&((7u8, "x".to_string(), false),))),
        ("echo_hash_map", json!([{"one": 1}]), wire(&(map,))),
        ("echo_btree_map", json!([[[1, "a"], [2, "b"]]]), wire(&(BTreeMap::from([(1u16, "a".to_string()), (2, "b".into())]),))),
        ("echo_unit", json!([null]), wire(&((),))),
        ("nothing", json!([]), wire(&())),
        (
            "echo_point",
            json!([{"label": "p", "x": 1.0, "y": 2.5}]),
            wire(&(Point { x: 1.0, y: 2.5, label: "p".into() },)),
        ),
        ("echo_shape", json!(["Empty"]), wire(&(Shape::Empty,))),
        ("echo_shape", json!([{"Circle": 2.0}]), wire(&(Shape::Circle(2.0),))),
        ("echo_shape", json!([{"Rect": {"w": 1.0, "h": 2.0}}]), wire(&(Shape::Rect { w: 1.0, h: 2.0 },))),
        ("echo_shape", json!([{"Tagged": ["t", 3]}]), wire(&(Shape::Tagged("t".into(), 3),))),
        ("echo_structs", json!([5, [-1, "p"], null]), wire(&(Meters(5), Pair(-1, "p".into()), Marker))),
        ("echo_everything", json!([everything_json()]), wire(&(everything(),))),
        ("checked", json!([5]), wire(&(5i32,))),
    ]
}

/// Object-safe access to fidius's serializer for the heterogeneous cases.
mod erased {
    pub trait Wire {
        fn bytes(&self) -> Vec<u8>;
    }

    impl<T: serde::Serialize> Wire for T {
        fn bytes(&self) -> Vec<u8> {
            fidius::wire::serialize(self).unwrap()
        }
    }
}

/// The JSON a method's result should read back as: what was sent.
fn normalize(method: &str, args: &Value) -> Value {
    match method {
        "nothing" => Value::Null,
        _ if args.as_array().unwrap().len() > 1 => args.clone(),
        _ => args[0].clone(),
    }
}

#[test]
fn encoded_bytes_equal_fidius_serialization() {
    let (_, interface) = type_echo();
    for (method, args, expected) in cases() {
        let index = interface.method_index(method).unwrap();
        let signature = interface.method(index).unwrap();
        let bytes = json::encode_args(&interface, signature, &args.to_string()).unwrap();
        assert_eq!(bytes, expected, "{method} {args}");
    }
}

#[test]
fn arguments_decode_to_the_same_values_with_or_without_text() {
    let (_, interface) = type_echo();
    let mut cases = cases();
    cases.push(("echo_floats", json!([0.1, f64::MAX]), erased::Wire::bytes(&(0.1f32, f64::MAX))));
    cases.push(("echo_floats", json!([null, null]), erased::Wire::bytes(&(f32::NAN, f64::NEG_INFINITY))));
    cases.push(("echo_signed", json!([-1, 2, -3, 4, -5]), erased::Wire::bytes(&(-1i8, 2i16, -3i32, 4i64, -5i128))));
    for (method, args, bytes) in cases {
        let signature = interface.method(interface.method_index(method).unwrap()).unwrap();
        let text = json::decode_args(&interface, signature, &bytes).unwrap();
        let from_text = json::parse_args(signature, &text).unwrap();
        let direct = json::decode_arg_values(&interface, signature, &bytes).unwrap();
        assert_eq!(direct, from_text, "{method}: {text}");
        assert_eq!(Value::Array(direct), args, "{method}");
    }
    // Bad input fails the same way on both paths.
    let signature = interface.method(interface.method_index("echo_string").unwrap()).unwrap();
    let truncated = erased::Wire::bytes(&("hello".to_string(),));
    let truncated = &truncated[..truncated.len() - 1];
    let text_error = json::decode_args(&interface, signature, truncated).unwrap_err();
    let value_error = json::decode_arg_values(&interface, signature, truncated).unwrap_err();
    assert_eq!((text_error.status(), text_error.message()), (value_error.status(), value_error.message()));
}

#[test]
fn decoded_results_equal_serde_json_of_the_rust_value() {
    let (_, interface) = type_echo();
    let check = |method: &str, value: &dyn erased::Wire, expected: Value| {
        let signature = interface.method(interface.method_index(method).unwrap()).unwrap();
        let text = json::decode_output(&interface, signature, &value.bytes()).unwrap();
        assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), expected, "{method}: {text}");
    };
    check("echo_everything", &everything(), everything_json());
    check("echo_point", &Point { x: 0.1, y: 1e-300, label: "\u{7}".into() }, json!({"x": 0.1, "y": 1e-300, "label": "\u{7}"}));
    check("echo_floats", &(f32::NAN, f64::INFINITY), json!([null, null]));
    check("echo_floats", &(0.1f32, 3.0f64), json!([0.1, 3.0]));
    check("echo_signed", &(-1i8, 2i16, -3i32, 4i64, -5i128), json!([-1, 2, -3, 4, -5]));
    check("echo_unsigned", &(1u8, 2u16, 3u32, 4u64, u128::MAX), json!([1, 2, 3, 4, "340282366920938463463374607431768211455"]));
    check("echo_char", &'💡', json!("💡"));
}

#[test]
fn every_type_round_trips_through_the_plugin() {
    for isolation in MODES {
        let (plugin, _) = type_echo_in(isolation);
        for (method, args, _) in cases() {
            let result = plugin.call_json(method, &args.to_string()).unwrap_or_else(|e| panic!("{method}: {e}"));
            let result: Value = serde_json::from_str(&result).unwrap();
            assert_eq!(result, normalize(method, &args), "{method} {args}");
        }
        // By index too, and raw methods take and give arrays of bytes.
        let raw = plugin.interface().unwrap().method_index("echo_raw").unwrap();
        assert_eq!(plugin.call_json_index(raw, "[[104, 105]]").unwrap(), "[104,105]");
        assert_eq!(plugin.call_raw(raw, b"hi").unwrap().as_slice(), b"hi");
    }
}

#[test]
fn plugin_errors_keep_code_and_message() {
    for isolation in MODES {
        let (plugin, _) = type_echo_in(isolation);
        let e = plugin.call_json("checked", "[-4]").unwrap_err();
        assert_eq!(e.status(), Status::PluginError);
        let pe = e.plugin_error().unwrap();
        assert_eq!((pe.code(), pe.message()), ("NEGATIVE", "-4 is negative"));

        let calc = interface_file("calculator.toml");
        let plugin = host_in(isolation, &fixture("plugins")).load_with("BasicCalculator", &with(&calc)).unwrap();
        assert_eq!(plugin.call_json("add", "[3, 7]").unwrap(), "10");
        assert_eq!(plugin.call_json("greet", r#"["C"]"#).unwrap(), r#""Hello, C!""#);
        assert_eq!(plugin.call_json("describe", r#"[true, 0.5, ["a"], null]"#).unwrap(), r#""flag=true ratio=0.5 tags=a note=none""#);
        assert_eq!(plugin.call_json("ping", "[]").unwrap(), "null");
        let e = plugin.call_json("divide", "[1, 0]").unwrap_err();
        assert_eq!(e.plugin_error().unwrap().code(), "DIV_ZERO");
        assert_eq!(e.plugin_error().unwrap().details(), Some(r#"{"dividend":1}"#));
        assert_eq!(plugin.call_json("boom", "[]").unwrap_err().status(), Status::PluginPanic);
        assert_eq!(plugin.call_json("divide", "[9, 3]").unwrap(), "3");

        let partial = host_in(isolation, &fixture("plugins")).load_with("PartialCalculator", &with(&calc)).unwrap();
        assert_eq!(partial.call_json("multiply", "[2, 3]").unwrap_err().status(), Status::NotImplemented);
    }
}

#[test]
fn bad_arguments_name_position_and_type_and_send_nothing() {
    for isolation in MODES {
        let (plugin, _) = type_echo_in(isolation);
        let cases: &[(&str, &str, Status, &str)] = &[
            ("echo_bool", "[tru", Status::InvalidJson, "not valid JSON"),
            ("echo_bool", "{}", Status::ArgumentMismatch, "JSON array of 1"),
            ("echo_bool", "[]", Status::ArgumentMismatch, "expected 1 argument(s) (bool), found 0"),
            ("echo_bool", "[1]", Status::ArgumentMismatch, "argument 1 (bool): expected bool, found number 1"),
            ("echo_signed", "[128, 0, 0, 0, 0]", Status::ArgumentMismatch, "128 is out of range for i8 (-128..=127)"),
            ("echo_signed", "[0, 0, 0, 1.5, 0]", Status::ArgumentMismatch, "argument 4 (i64): expected i64 (an integer)"),
            ("echo_unsigned", "[-1, 0, 0, 0, 0]", Status::ArgumentMismatch, "-1 is out of range for u8"),
            ("echo_unsigned", r#"[0, 0, 0, 0, "x"]"#, Status::ArgumentMismatch, "argument 5 (u128)"),
            ("echo_floats", "[1e300, 0]", Status::ArgumentMismatch, "out of range for f32"),
            ("echo_char", r#"["ab"]"#, Status::ArgumentMismatch, "one character"),
            ("echo_bytes", "[[1, 256]]", Status::ArgumentMismatch, "at [1]: expected u8 (0..=255), found number 256"),
            ("echo_tuple", r#"[[1, "x"]]"#, Status::ArgumentMismatch, "an array of 3"),
            ("echo_hash_map", r#"[{"a": "b"}]"#, Status::ArgumentMismatch, r#"at ["a"]: expected u32"#),
            ("echo_btree_map", r#"[[[1]]]"#, Status::ArgumentMismatch, "[key, value] pair"),
            ("echo_point", r#"[{"x": 1, "y": 2}]"#, Status::ArgumentMismatch, "Point is missing field `label`"),
            ("echo_point", r#"[{"x": 1, "y": 2, "label": "", "z": 0}]"#, Status::ArgumentMismatch, "Point has no field `z`"),
            ("echo_point", r#"[{"x": 1, "y": "2", "label": ""}]"#, Status::ArgumentMismatch, "at .y: expected f64"),
            ("echo_shape", r#"["Hexagon"]"#, Status::ArgumentMismatch, "Shape has no variant `Hexagon`"),
            ("echo_shape", r#"[{"Rect": {"w": 1}}]"#, Status::ArgumentMismatch, "at .Rect: Shape::Rect is missing field `h`"),
            ("echo_structs", r#"[1, [1, "p"], 0]"#, Status::ArgumentMismatch, "argument 3 (Marker): expected Marker (null)"),
            ("nowhere", "[]", Status::UnknownMethod, "no method 'nowhere'"),
        ];
        for (method, args, status, text) in cases {
            let e = plugin.call_json(method, args).unwrap_err();
            assert_eq!(e.status(), *status, "{method} {args}: {}", e.message());
            assert!(e.message().contains(text), "{method} {args}: {}", e.message());
        }
        assert_eq!(plugin.call_json_index(99, "[]").unwrap_err().status(), Status::MethodOutOfRange);
        // Nesting deeper than the limit is refused before anything is sent.
        let deep = format!("[{}1{}]", "[".repeat(200), "]".repeat(200));
        assert_eq!(plugin.call_json("echo_list", &deep).unwrap_err().status(), Status::InvalidJson);
    }
}

#[test]
fn loading_with_an_interface_checks_hash_version_and_count() {
    let host = host_for(&fixture("plugins"));
    let calc = interface_file("calculator.toml");
    let base = file::to_toml(&calc);
    let load = |text: String| {
        let interface = Arc::new(file::parse(&text, "edited").unwrap());
        host.load_with("BasicCalculator", &with(&interface)).map(drop).unwrap_err()
    };
    let without_hash = |text: &str| text.lines().filter(|l| !l.starts_with("hash")).collect::<Vec<_>>().join("\n");
    let e = load(without_hash(&base).replace("version = 2", "version = 3"));
    assert_eq!(e.status(), Status::InterfaceVersionMismatch);
    assert!(e.message().contains("expected 3, found 2"), "{}", e.message());
    let e = load(without_hash(&base).replace("add:i64,i64->i64", "add:i32,i64->i64"));
    assert_eq!(e.status(), Status::InterfaceHashMismatch);
    assert!(e.message().contains("found 0x0271e9b7d21d10f1"), "{}", e.message());
    let e = load(without_hash(&base) + "\n[[methods]]\nsignature = \"extra:->()\"\noptional = true\n");
    assert_eq!(e.status(), Status::MethodCountMismatch);
    assert!(e.message().contains("expected 9, found 8"), "{}", e.message());

    // Without an interface, JSON calls are refused.
    let plain = host.load("BasicCalculator").unwrap();
    assert_eq!(plain.call_json("add", "[1, 2]").unwrap_err().status(), Status::NoInterface);
}

#[test]
fn interfaces_built_in_code_equal_the_generated_files() {
    let mut builder = InterfaceBuilder::new("Echo", 1).unwrap();
    builder.method("repeat : String , u32 -> String", MethodFlags::default()).unwrap();
    builder.method("upper:Vec<u8>->Vec<u8>", MethodFlags { raw: true, ..Default::default() }).unwrap();
    builder.method("fail:String->Result<String,PluginError>", MethodFlags::default()).unwrap();
    builder.method("boom:->String", MethodFlags::default()).unwrap();
    let built = builder.build().unwrap();
    let from_file = interface_file("echo.toml");
    assert_eq!(built.hash(), from_file.hash());
    let plugin = host_for(&fixture("arena")).load_with("ArenaEcho", &with(&Arc::new(built))).unwrap();
    assert_eq!(plugin.call_json("repeat", r#"["ab", 3]"#).unwrap(), r#""ababab""#);
    let e = plugin.call_json("fail", r#"["nope"]"#).unwrap_err();
    assert_eq!(e.status(), Status::PluginError);
}

#[test]
fn hostile_outputs_are_protocol_errors() {
    let (_, interface) = type_echo();
    let decode = |method: &str, bytes: &[u8]| {
        let signature = interface.method(interface.method_index(method).unwrap()).unwrap();
        json::decode_output(&interface, signature, bytes).unwrap_err()
    };
    for (method, bytes) in [
        ("echo_bool", &[2u8][..]),
        ("echo_string", &[5, 0, 0, 0, 0, 0, 0, 0, b'a']),
        ("echo_string", &[2, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xfe]),
        ("echo_list", &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]),
        ("echo_shape", &[9, 0, 0, 0]),
        ("echo_option", &[7]),
        ("echo_char", &[0xc3]),
        ("echo_signed", &[1, 2, 3]),
    ] {
        let e = decode(method, bytes);
        assert_eq!(e.status(), Status::PluginProtocol, "{method}");
        assert!(e.message().contains(&format!("the result of '{method}'")), "{}", e.message());
    }
    // A value nested deeper than the limit is refused without exhausting the stack.
    let mut bytes = Vec::new();
    for _ in 0..1000 {
        bytes.extend_from_slice(&0u64.to_le_bytes()); // shapes: []
        bytes.push(0); // origin: None
        bytes.extend_from_slice(&[0; 8]); // sizes
        bytes.push(0); // pair.0
        bytes.extend_from_slice(&0u64.to_le_bytes()); // pair.1: ""
        bytes.extend_from_slice(&0u64.to_le_bytes()); // lookup: {}
        bytes.push(1); // nested: Some(..)
    }
    let e = decode("echo_everything", &bytes);
    assert!(e.message().contains("deeper than"), "{}", e.message());
}

/// What fuzzing found: inputs that once hung, overflowed, or printed an
/// interface that did not read back.
#[test]
fn hostile_types_and_results_are_bounded() {
    let build = |types: &[&str], signature: &str| {
        let mut builder = InterfaceBuilder::new("I", 1).unwrap();
        for ty in types {
            builder.declare(ty).unwrap();
        }
        builder.method(signature, MethodFlags::default()).unwrap();
        builder.build().unwrap()
    };
    let decode = |iface: &Interface, output: &[u8]| {
        let started = std::time::Instant::now();
        let result = json::decode_output(iface, &iface.methods()[0], output);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "took {:?}", started.elapsed());
        result
    };
    // A type that contains itself twice: sized once, not 2^128 times.
    let recursive = build(&["struct T(Box<T>, Box<T>)"], "f:->Vec<T>");
    assert_eq!(decode(&recursive, &5u64.to_le_bytes()).unwrap_err().status(), Status::PluginProtocol);
    // Zero-sized elements are bounded over the whole value, arrays included.
    let empty = build(&[], "f:->[(); 1000000000000]");
    assert!(decode(&empty, &[]).unwrap_err().message().contains("empty elements"));
    let nested = build(&[], "f:->[[(); 65536]; 65536]");
    assert!(decode(&nested, &[]).unwrap_err().message().contains("empty elements"));
    // Sizes that overflow saturate.
    let huge = build(&["struct A([u64; 2305843009213693952], [u64; 2305843009213693952])"], "f:->Vec<A>");
    assert_eq!(decode(&huge, &1u64.to_le_bytes()).unwrap_err().status(), Status::PluginProtocol);
    // Spellings that printed as something unreadable are refused or normalised.
    let refused = |signature: &str| InterfaceBuilder::new("I", 1).unwrap().method(signature, MethodFlags::default()).is_err();
    assert!(refused("f: ::u8 -> ()"));
    assert!(InterfaceBuilder::new("I", 1).unwrap().declare("struct pub").is_err());
    assert!(InterfaceBuilder::new("I", 1).unwrap().declare("struct S { a: ::u8 }").is_err());
    let stream = build(&[], "tick:->Stream<String,>");
    assert_eq!(stream.methods()[0].signature, "tick:->String!stream");
    assert_eq!(file::parse(&file::to_toml(&stream), "round trip").unwrap(), stream);
    // f64 values survive a JSON round trip exactly.
    let floats = build(&[], "f:f64->f64");
    let bytes = json::encode_args(&floats, &floats.methods()[0], "[0.09780885255895555]").unwrap();
    assert_eq!(f64::from_le_bytes(bytes.try_into().unwrap()), 0.09780885255895555);
}
