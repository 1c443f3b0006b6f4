//! JSON ↔ bincode transcoding from an interface's types.
//!
//! Arguments arrive as a JSON array (one element per argument) and become
//! the bincode of the argument tuple that fidius plugins decode; a result's
//! bincode becomes JSON text. JSON shapes follow serde's defaults: structs
//! are objects, tuple structs arrays, a newtype struct its inner value, unit
//! and `()` `null`; enums are externally tagged (`"Unit"`, `{"Newtype": v}`,
//! `{"Tuple": [..]}`, `{"Struct": {..}}`); maps with string keys are objects,
//! other maps arrays of `[key, value]` pairs; `Vec<u8>` is an array of
//! numbers. 128-bit integers are numbers when they fit in 64 bits and
//! decimal strings otherwise (both are accepted on input); non-finite floats
//! become `null`, and `null` reads back as NaN.

use super::types::{Fields, IntKind, Shape, TypeDef, Variant, WireType};
use super::{Interface, Method, Returns};
use crate::error::{Error, Result, Status};
use serde_json::Value;
use std::fmt::Write;

/// Deepest nesting a value may have, on input and on output.
pub const MAX_DEPTH: usize = 128;

/// Elements of zero-sized types a decoded value may claim, over all its
/// sequences and arrays.
const MAX_ZERO_SIZED_ELEMENTS: u64 = 1 << 16;

/// Longest JSON text of a call's arguments: parsed JSON takes several times
/// its text in memory, so the text is bounded before it is parsed.
pub const MAX_ARGS_TEXT: usize = 64 << 20;

/// Encodes `args_json` (a JSON array of the method's arguments) into the
/// call's input bytes. Nothing is encoded unless every argument fits.
pub fn encode_args(interface: &Interface, method: &Method, args_json: &str) -> Result<Vec<u8>> {
    encode_arg_values(interface, method, &parse_args(method, args_json)?)
}

/// Parses `args_json` as the JSON array of the method's arguments (right
/// count, not yet checked against their types).
pub fn parse_args(method: &Method, args_json: &str) -> Result<Vec<Value>> {
    let value: Value = serde_json::from_str(args_json).map_err(|e| {
        Error::new(Status::InvalidJson, format!("arguments of '{}' are not valid JSON: {e}", method.name))
    })?;
    let expected = method.tuple_params().count();
    let Value::Array(args) = value else {
        return Err(mismatch(method, format!("arguments must be a JSON array of {expected} value(s), found {}", kind(&value))));
    };
    if args.len() != expected {
        return Err(mismatch(method, format!("expected {expected} argument(s) ({}), found {}", param_list(method), args.len())));
    }
    Ok(args)
}

/// Encodes parsed arguments (from [`parse_args`]) into the call's input
/// bytes, checking each against its type.
pub fn encode_arg_values(interface: &Interface, method: &Method, args: &[Value]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    if method.flags.raw {
        // Raw methods receive the bytes themselves, without a length prefix.
        let items = byte_array(&args[0]).map_err(|e| argument_error(method, 0, e))?;
        Encoder { types: &interface.types, out: &mut out }.byte_items(items).map_err(|e| argument_error(method, 0, e))?;
        return Ok(out);
    }
    let mut encoder = Encoder { types: &interface.types, out: &mut out };
    for ((i, ty), arg) in method.tuple_params().zip(args) {
        encoder.value(ty, arg, 0).map_err(|e| argument_error(method, i, e))?;
    }
    Ok(out)
}

/// Decodes a method's output bytes into JSON text.
pub fn decode_output(interface: &Interface, method: &Method, output: &[u8]) -> Result<String> {
    let ty = match &method.returns {
        Returns::Nothing => return Ok("null".to_string()),
        Returns::Value(ty) | Returns::Result(ty) => ty,
    };
    let mut decoder = Decoder::new(&interface.types, output, JsonText::with_capacity(output.len() + 16));
    let result = if method.flags.raw { decoder.raw_bytes() } else { decoder.value(ty, 0) };
    // Trailing bytes are ignored, as bincode (and so the upstream host) does.
    result.map(|()| decoder.sink.text).map_err(|e| {
        Error::new(
            Status::PluginProtocol,
            format!("the result of '{}' is not a valid {ty}: {e} (at byte {} of {})", method.name, decoder.position, output.len()),
        )
    })
}

/// Decodes a typed method's input (bincode of the argument tuple) into the
/// JSON array of its arguments: how runtimes that do not speak bincode
/// serve raw calls. Bytes that do not decode are PLUGIN_SERIALIZATION, as a
/// cdylib plugin reports them.
pub fn decode_args(interface: &Interface, method: &Method, input: &[u8]) -> Result<String> {
    let sink = JsonText::with_capacity(input.len() + 16);
    decode_arg_tuple(interface, method, input, sink).map(|sink| sink.text)
}

/// Decodes a typed method's input into its arguments as values, the very
/// values [`parse_args`] makes of the JSON text [`decode_args`] returns,
/// without the text in between.
pub fn decode_arg_values(interface: &Interface, method: &Method, input: &[u8]) -> Result<Vec<Value>> {
    let values = decode_arg_tuple(interface, method, input, Values::default())?;
    match values.root {
        Some(Value::Array(args)) => Ok(args),
        _ => unreachable!("an argument tuple decodes to an array"),
    }
}

fn decode_arg_tuple<S: Sink>(interface: &Interface, method: &Method, input: &[u8], sink: S) -> Result<S> {
    let mut decoder = Decoder::new(&interface.types, input, sink);
    // The argument tuple, decoded as `value` decodes a tuple type.
    decoder.sequence(method.tuple_params().map(|(_, ty)| ty), 0).map(|()| decoder.sink).map_err(|e| {
        Error::new(
            Status::PluginSerialization,
            format!("the input of '{}' is not a valid ({}): {e}", method.name, param_list(method)),
        )
    })
}

/// Encodes a typed method's JSON result into the bincode a cdylib plugin of
/// the same interface returns.
pub fn encode_result(interface: &Interface, method: &Method, result_json: &str) -> Result<Vec<u8>> {
    let value: Value = serde_json::from_str(result_json)
        .map_err(|e| Error::new(Status::PluginProtocol, format!("the result of '{}' is not JSON: {e}", method.name)))?;
    encode_result_value(interface, method, &value)
}

/// Like [`encode_result`], from a parsed value.
pub fn encode_result_value(interface: &Interface, method: &Method, value: &Value) -> Result<Vec<u8>> {
    let ty = match &method.returns {
        Returns::Nothing => return Ok(Vec::new()),
        Returns::Value(ty) | Returns::Result(ty) => ty,
    };
    let mut out = Vec::new();
    Encoder { types: &interface.types, out: &mut out }.value(ty, value, 0).map_err(|e| {
        Error::new(Status::PluginProtocol, format!("the result of '{}' is not a valid {ty}: {}", method.name, e.message))
    })?;
    Ok(out)
}

/// A float from JSON: a number, or `null` for NaN (non-finite floats are
/// printed as `null`, so that they read back).
fn float_of(value: &Value) -> Option<f64> {
    match value {
        Value::Null => Some(f64::NAN),
        other => other.as_f64(),
    }
}

fn param_list(method: &Method) -> String {
    method.tuple_params().map(|(_, ty)| ty.to_string()).collect::<Vec<_>>().join(", ")
}

fn mismatch(method: &Method, message: String) -> Error {
    Error::new(Status::ArgumentMismatch, format!("method '{}': {message}", method.name))
}

fn argument_error(method: &Method, index: usize, error: Mismatch) -> Error {
    mismatch(method, format!("argument {} ({}){}", index + 1, method.params[index], error.located()))
}

/// Encodes one value of type `ty` (a type of `interface`) as bincode.
/// The error says where in the value, and why, it does not fit.
pub fn encode_value(interface: &Interface, ty: &WireType, value: &Value) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    Encoder { types: &interface.types, out: &mut out }.value(ty, value, 0).map_err(|e| {
        let located = e.located();
        located.strip_prefix(": ").map_or_else(|| located.trim_start().to_string(), str::to_string)
    })?;
    Ok(out)
}

/// Decodes the bincode of one value of type `ty`, which must take every
/// byte (unlike bincode, which ignores what follows a value).
pub fn decode_value(interface: &Interface, ty: &WireType, bytes: &[u8]) -> std::result::Result<Value, String> {
    Ok(decode_whole(interface, ty, bytes, Values::default())?.root.unwrap_or(Value::Null))
}

/// Checks that `bytes` are the bincode of one value of type `ty`, every
/// byte of them, without building the value.
pub fn check_value(interface: &Interface, ty: &WireType, bytes: &[u8]) -> std::result::Result<(), String> {
    decode_whole(interface, ty, bytes, Discard).map(drop)
}

fn decode_whole<S: Sink>(interface: &Interface, ty: &WireType, bytes: &[u8], sink: S) -> std::result::Result<S, String> {
    let mut decoder = Decoder::new(&interface.types, bytes, sink);
    decoder.value(ty, 0).map_err(|e| format!("{e} (at byte {} of {})", decoder.position, bytes.len()))?;
    if decoder.position != bytes.len() {
        return Err(format!("{} byte(s) follow the value, which ends at byte {}", bytes.len() - decoder.position, decoder.position));
    }
    Ok(decoder.sink)
}

/// The JSON kind of a value, for messages.
fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "a string".to_string(),
        Value::Array(items) => format!("an array of {}", items.len()),
        Value::Object(_) => "an object".to_string(),
    }
}

/// Why a value does not fit its type, and where (innermost segment first).
struct Mismatch {
    path: Vec<String>,
    message: String,
}

impl Mismatch {
    fn new(message: String) -> Mismatch {
        Mismatch { path: Vec::new(), message }
    }

    fn expected(ty: impl std::fmt::Display, found: &Value) -> Mismatch {
        Mismatch::new(format!("expected {ty}, found {}", kind(found)))
    }

    fn at(mut self, segment: String) -> Mismatch {
        self.path.push(segment);
        self
    }

    /// ` at .field[2]: message`, or `: message` at the top.
    fn located(&self) -> String {
        let location: String = self.path.iter().rev().map(String::as_str).collect();
        let at = if location.is_empty() { String::new() } else { format!(" at {location}") };
        format!("{at}: {}", self.message)
    }
}

type Encoded = std::result::Result<(), Mismatch>;

struct Encoder<'a> {
    types: &'a [TypeDef],
    out: &'a mut Vec<u8>,
}

impl Encoder<'_> {
    fn value(&mut self, ty: &WireType, value: &Value, depth: usize) -> Encoded {
        if depth > MAX_DEPTH {
            return Err(Mismatch::new(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        match ty {
            WireType::Unit => expect_null(ty, value),
            WireType::Bool => {
                let b = value.as_bool().ok_or_else(|| Mismatch::expected(ty, value))?;
                self.out.push(u8::from(b));
                Ok(())
            }
            WireType::Int(kind) => self.int(*kind, value),
            WireType::F32 => {
                let f = float_of(value).ok_or_else(|| Mismatch::expected(ty, value))?;
                if f.is_finite() && (f as f32).is_infinite() {
                    return Err(Mismatch::new(format!("{f} is out of range for f32")));
                }
                self.out.extend_from_slice(&(f as f32).to_le_bytes());
                Ok(())
            }
            WireType::F64 => {
                let f = float_of(value).ok_or_else(|| Mismatch::expected(ty, value))?;
                self.out.extend_from_slice(&f.to_le_bytes());
                Ok(())
            }
            WireType::Char => {
                let text = value.as_str().ok_or_else(|| Mismatch::expected(ty, value))?;
                let mut chars = text.chars();
                match (chars.next(), chars.next()) {
                    (Some(_), None) => {
                        self.out.extend_from_slice(text.as_bytes());
                        Ok(())
                    }
                    _ => Err(Mismatch::new(format!("expected char (a string of one character), found \"{}\"", crate::error::Quoted(text)))),
                }
            }
            WireType::String => {
                let text = value.as_str().ok_or_else(|| Mismatch::expected(ty, value))?;
                self.length(text.len());
                self.out.extend_from_slice(text.as_bytes());
                Ok(())
            }
            WireType::Bytes => self.bytes(value),
            WireType::Seq(item) => {
                let items = value.as_array().ok_or_else(|| Mismatch::expected(ty, value))?;
                self.length(items.len());
                self.elements(item, items, depth)
            }
            WireType::Option(item) => {
                if value.is_null() {
                    self.out.push(0);
                    Ok(())
                } else {
                    self.out.push(1);
                    self.value(item, value, depth + 1)
                }
            }
            WireType::Tuple(items) => self.fixed(ty, items.iter(), value, depth),
            WireType::Array(item, n) => self.fixed(ty, std::iter::repeat_n(&**item, *n), value, depth),
            WireType::Map(key, val) => self.map(ty, key, val, value, depth),
            WireType::Named(index, _) => self.named(&self.types[*index], value, depth),
        }
    }

    fn length(&mut self, len: usize) {
        self.out.extend_from_slice(&(len as u64).to_le_bytes());
    }

    fn elements(&mut self, ty: &WireType, items: &[Value], depth: usize) -> Encoded {
        for (i, item) in items.iter().enumerate() {
            self.value(ty, item, depth + 1).map_err(|e| e.at(format!("[{i}]")))?;
        }
        Ok(())
    }

    /// Tuples and arrays: a JSON array of exactly the right length, no count.
    fn fixed<'t>(&mut self, ty: &WireType, types: impl ExactSizeIterator<Item = &'t WireType>, value: &Value, depth: usize) -> Encoded {
        let items = value.as_array().ok_or_else(|| Mismatch::expected(ty, value))?;
        if items.len() != types.len() {
            return Err(Mismatch::new(format!("expected {ty} (an array of {}), found {}", types.len(), kind(value))));
        }
        for (i, (item_ty, item)) in types.zip(items).enumerate() {
            self.value(item_ty, item, depth + 1).map_err(|e| e.at(format!("[{i}]")))?;
        }
        Ok(())
    }

    fn bytes(&mut self, value: &Value) -> Encoded {
        let items = byte_array(value)?;
        self.length(items.len());
        self.byte_items(items)
    }

    fn byte_items(&mut self, items: &[Value]) -> Encoded {
        self.out.reserve(items.len());
        for (i, item) in items.iter().enumerate() {
            let byte = item.as_u64().and_then(|b| u8::try_from(b).ok());
            let byte = byte.ok_or_else(|| Mismatch::expected("u8 (0..=255)", item).at(format!("[{i}]")))?;
            self.out.push(byte);
        }
        Ok(())
    }

    fn int(&mut self, kind: IntKind, value: &Value) -> Encoded {
        let range = || format!("{kind} ({}..={})", kind.min(), kind.max());
        let number: i128 = match value {
            Value::Number(n) => {
                if let Some(v) = n.as_i64() {
                    i128::from(v)
                } else if let Some(v) = n.as_u64() {
                    i128::from(v)
                } else {
                    let hint = if kind.size() == 16 { "; write 128-bit values beyond 64 bits as decimal strings" } else { "" };
                    return Err(Mismatch::new(format!("expected {kind} (an integer), found number {n}{hint}")));
                }
            }
            // 128-bit integers may be written as decimal strings.
            Value::String(text) if matches!(kind, IntKind::I128 | IntKind::U128) => {
                let bad = || Mismatch::new(format!("expected {}, found \"{}\"", range(), crate::error::Quoted(text)));
                if kind == IntKind::U128 {
                    // Above i128::MAX, so written directly.
                    let v: u128 = text.parse().map_err(|_| bad())?;
                    self.out.extend_from_slice(&v.to_le_bytes());
                    return Ok(());
                }
                text.parse().map_err(|_| bad())?
            }
            _ => return Err(Mismatch::expected(kind, value)),
        };
        if number < kind.min() || (number >= 0 && number as u128 > kind.max()) {
            return Err(Mismatch::new(format!("{number} is out of range for {}", range())));
        }
        let bytes = number.to_le_bytes();
        self.out.extend_from_slice(&bytes[..kind.size()]);
        Ok(())
    }

    fn map(&mut self, ty: &WireType, key: &WireType, val: &WireType, value: &Value, depth: usize) -> Encoded {
        if *key == WireType::String {
            let object = value.as_object().ok_or_else(|| Mismatch::expected(format!("{ty} (an object)"), value))?;
            self.length(object.len());
            for (k, v) in object {
                self.length(k.len());
                self.out.extend_from_slice(k.as_bytes());
                self.value(val, v, depth + 1).map_err(|e| e.at(format!("[{k:?}]")))?;
            }
            return Ok(());
        }
        let pairs = value.as_array().ok_or_else(|| Mismatch::expected(format!("{ty} (an array of [key, value] pairs)"), value))?;
        self.length(pairs.len());
        for (i, pair) in pairs.iter().enumerate() {
            let at = |e: Mismatch| e.at(format!("[{i}]"));
            let [k, v] = pair.as_array().map(Vec::as_slice).unwrap_or_default() else {
                return Err(at(Mismatch::expected("a [key, value] pair", pair)));
            };
            self.value(key, k, depth + 1).map_err(|e| at(e.at("[0]".to_string())))?;
            self.value(val, v, depth + 1).map_err(|e| at(e.at("[1]".to_string())))?;
        }
        Ok(())
    }

    fn named(&mut self, def: &TypeDef, value: &Value, depth: usize) -> Encoded {
        match &def.shape {
            Shape::Struct(fields) => self.fields(&def.name, fields, value, depth),
            Shape::Enum(variants) => {
                let (index, variant, payload) = match value {
                    Value::String(tag) => {
                        let (index, variant) = find_variant(def, variants, tag)?;
                        (index, variant, &Value::Null)
                    }
                    Value::Object(object) if object.len() == 1 => {
                        let (tag, payload) = object.iter().next().expect("one entry");
                        let (index, variant) = find_variant(def, variants, tag)?;
                        (index, variant, payload)
                    }
                    _ => {
                        return Err(Mismatch::new(format!(
                            "expected {} (a variant name, or an object with one variant key), found {}",
                            def.name,
                            kind(value)
                        )))
                    }
                };
                self.out.extend_from_slice(&(index as u32).to_le_bytes());
                let name = format!("{}::{}", def.name, variant.name);
                self.fields(&name, &variant.fields, payload, depth).map_err(|e| e.at(format!(".{}", variant.name)))
            }
        }
    }

    /// Struct or variant fields: an object, an array, the bare value of a
    /// newtype, or null.
    fn fields(&mut self, name: &str, fields: &Fields, value: &Value, depth: usize) -> Encoded {
        match fields {
            Fields::Unit => expect_null(name, value),
            Fields::Unnamed(types) if types.len() == 1 => self.value(&types[0], value, depth + 1),
            Fields::Unnamed(types) => {
                let items = value.as_array().ok_or_else(|| Mismatch::expected(format!("{name} (an array of {})", types.len()), value))?;
                if items.len() != types.len() {
                    return Err(Mismatch::new(format!("expected {name} (an array of {}), found {}", types.len(), kind(value))));
                }
                for (i, (ty, item)) in types.iter().zip(items).enumerate() {
                    self.value(ty, item, depth + 1).map_err(|e| e.at(format!("[{i}]")))?;
                }
                Ok(())
            }
            Fields::Named(named) => {
                let object = value.as_object().ok_or_else(|| Mismatch::expected(format!("{name} (an object)"), value))?;
                for (field, ty) in named {
                    let item = object.get(field).ok_or_else(|| Mismatch::new(format!("{name} is missing field `{field}`")))?;
                    self.value(ty, item, depth + 1).map_err(|e| e.at(format!(".{field}")))?;
                }
                if object.len() != named.len() {
                    let unknown = object.keys().find(|k| !named.iter().any(|(f, _)| f == *k)).expect("an extra key");
                    return Err(Mismatch::new(format!("{name} has no field `{unknown}`")));
                }
                Ok(())
            }
        }
    }
}

fn byte_array(value: &Value) -> std::result::Result<&[Value], Mismatch> {
    value.as_array().map(Vec::as_slice).ok_or_else(|| Mismatch::expected("Vec<u8> (an array of numbers 0..=255)", value))
}

fn expect_null(ty: impl std::fmt::Display, value: &Value) -> Encoded {
    if value.is_null() {
        Ok(())
    } else {
        Err(Mismatch::expected(format!("{ty} (null)"), value))
    }
}

fn find_variant<'a>(def: &TypeDef, variants: &'a [Variant], tag: &str) -> std::result::Result<(usize, &'a Variant), Mismatch> {
    variants.iter().enumerate().find(|(_, v)| v.name == tag).ok_or_else(|| {
        let names: Vec<&str> = variants.iter().map(|v| v.name.as_str()).collect();
        Mismatch::new(format!("{} has no variant `{tag}` (it has: {})", def.name, names.join(", ")))
    })
}

type Decoded = std::result::Result<(), String>;

struct Decoder<'a, S> {
    types: &'a [TypeDef],
    input: &'a [u8],
    position: usize,
    sink: S,
    /// The fewest bytes of each declared type, as computed so far.
    named_min: Vec<Option<usize>>,
    /// Zero-sized elements (which take no input) the rest of the value may
    /// still claim, over all its sequences and arrays.
    zero_sized_left: u64,
}

impl<'a, S: Sink> Decoder<'a, S> {
    fn new(types: &'a [TypeDef], input: &'a [u8], sink: S) -> Decoder<'a, S> {
        Decoder {
            types,
            input,
            position: 0,
            sink,
            named_min: Vec::new(),
            zero_sized_left: MAX_ZERO_SIZED_ELEMENTS,
        }
    }
}

impl<'a, S: Sink> Decoder<'a, S> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let end = self.position.checked_add(n).filter(|end| *end <= self.input.len());
        let end = end.ok_or_else(|| format!("needs {n} more byte(s) but only {} remain", self.input.len() - self.position))?;
        let input: &'a [u8] = self.input;
        let bytes = &input[self.position..end];
        self.position = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> std::result::Result<[u8; N], String> {
        Ok(self.take(N)?.try_into().expect("took N bytes"))
    }

    fn length(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// A count of elements that each need at least `min_size` bytes.
    fn count(&mut self, min_size: usize) -> std::result::Result<u64, String> {
        let count = self.length()?;
        let remaining = (self.input.len() - self.position) as u64;
        let min_size = min_size as u64;
        if min_size == 0 {
            self.charge_zero_sized(count)?;
        }
        if count.saturating_mul(min_size) > remaining {
            return Err(format!("claims {count} elements but only {remaining} bytes remain"));
        }
        Ok(count)
    }

    /// Takes `count` zero-sized elements from what the value may claim: they
    /// take no input, so the input's length does not bound them.
    fn charge_zero_sized(&mut self, count: u64) -> Decoded {
        self.zero_sized_left = self.zero_sized_left.checked_sub(count).ok_or_else(|| {
            format!("claims more than {MAX_ZERO_SIZED_ELEMENTS} empty elements in all ({count} more here)")
        })?;
        Ok(())
    }

    /// The fewest bytes a value of `ty` can take (0 for zero-sized types).
    /// Declared types are computed once; one that contains itself counts the
    /// inner occurrence as 0, an underestimate that only loosens the bounds
    /// this is used for (and keeps `struct T(Box<T>, Box<T>)` from taking
    /// exponential time).
    fn min_size(&mut self, ty: &WireType, depth: usize) -> usize {
        if depth > MAX_DEPTH {
            return 0;
        }
        let types = self.types;
        let sum = |decoder: &mut Self, items: &mut dyn Iterator<Item = &WireType>| {
            items.fold(0usize, |total, t| total.saturating_add(decoder.min_size(t, depth + 1)))
        };
        match ty {
            WireType::Unit => 0,
            WireType::Bool | WireType::Char | WireType::Option(_) => 1,
            WireType::Int(kind) => kind.size(),
            WireType::F32 => 4,
            WireType::F64 | WireType::String | WireType::Bytes | WireType::Seq(_) | WireType::Map(..) => 8,
            WireType::Tuple(items) => sum(self, &mut items.iter()),
            WireType::Array(item, n) => self.min_size(item, depth + 1).saturating_mul(*n),
            WireType::Named(index, _) => {
                if self.named_min.len() != types.len() {
                    self.named_min = vec![None; types.len()];
                }
                if let Some(size) = self.named_min[*index] {
                    return size;
                }
                self.named_min[*index] = Some(0);
                let fields_size = |decoder: &mut Self, fields: &Fields| match fields {
                    Fields::Unit => 0,
                    Fields::Unnamed(items) => sum(decoder, &mut items.iter()),
                    Fields::Named(items) => sum(decoder, &mut items.iter().map(|(_, t)| t)),
                };
                let size = match &types[*index].shape {
                    Shape::Struct(fields) => fields_size(self, fields),
                    Shape::Enum(variants) => {
                        let smallest = variants.iter().map(|v| fields_size(self, &v.fields)).min().unwrap_or(0);
                        4usize.saturating_add(smallest)
                    }
                };
                self.named_min[*index] = Some(size);
                size
            }
        }
    }

    fn value(&mut self, ty: &WireType, depth: usize) -> Decoded {
        if depth > MAX_DEPTH {
            return Err(format!("nested deeper than {MAX_DEPTH} levels"));
        }
        match ty {
            WireType::Unit => self.sink.null(),
            WireType::Bool => match self.take(1)?[0] {
                0 => self.sink.bool(false),
                1 => self.sink.bool(true),
                other => return Err(format!("{other} is not a bool")),
            },
            WireType::Int(kind) => self.int(*kind)?,
            WireType::F32 => {
                let f = f32::from_le_bytes(self.array()?);
                self.sink.f32(f);
            }
            WireType::F64 => {
                let f = f64::from_le_bytes(self.array()?);
                self.sink.f64(f);
            }
            WireType::Char => self.char()?,
            WireType::String => {
                let text = self.string()?;
                self.sink.str(text);
            }
            WireType::Bytes => self.raw_bytes_counted()?,
            WireType::Seq(item) => {
                let min_size = self.min_size(item, 0);
                let count = self.count(min_size)?;
                self.sink.begin_array();
                for _ in 0..count {
                    self.value(item, depth + 1)?;
                }
                self.sink.end_array();
            }
            WireType::Option(item) => match self.take(1)?[0] {
                0 => self.sink.null(),
                1 => self.value(item, depth + 1)?,
                other => return Err(format!("{other} is not an Option tag")),
            },
            WireType::Tuple(items) => self.sequence(items.iter(), depth)?,
            WireType::Array(item, n) => {
                if self.min_size(item, 0) == 0 {
                    self.charge_zero_sized(*n as u64)?;
                }
                self.sequence(std::iter::repeat_n(&**item, *n), depth)?
            }
            WireType::Map(key, value) => {
                let min_size = self.min_size(key, 0).saturating_add(self.min_size(value, 0));
                let count = self.count(min_size)?;
                if **key == WireType::String {
                    self.sink.begin_object();
                    for _ in 0..count {
                        let name = self.string()?;
                        self.sink.key(name);
                        self.value(value, depth + 1)?;
                    }
                    self.sink.end_object();
                } else {
                    self.sink.begin_array();
                    for _ in 0..count {
                        self.sequence([&**key, &**value].into_iter(), depth)?;
                    }
                    self.sink.end_array();
                }
            }
            WireType::Named(index, _) => {
                let def = &self.types[*index];
                match &def.shape {
                    Shape::Struct(fields) => self.fields(fields, depth)?,
                    Shape::Enum(variants) => {
                        let index = u32::from_le_bytes(self.array()?);
                        let variant = variants
                            .get(index as usize)
                            .ok_or_else(|| format!("{index} is not a variant index of {} ({} variants)", def.name, variants.len()))?;
                        if variant.fields == Fields::Unit {
                            self.sink.str(&variant.name);
                        } else {
                            self.sink.begin_object();
                            self.sink.key(&variant.name);
                            self.fields(&variant.fields, depth)?;
                            self.sink.end_object();
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A `String`: its length, then UTF-8.
    fn string(&mut self) -> std::result::Result<&'a str, String> {
        let len = self.length()?;
        let len = usize::try_from(len).map_err(|_| format!("string length {len} is too large"))?;
        let bytes = self.take(len)?;
        std::str::from_utf8(bytes).map_err(|e| format!("string is not UTF-8: {e}"))
    }

    fn sequence<'t>(&mut self, types: impl Iterator<Item = &'t WireType>, depth: usize) -> Decoded {
        self.sink.begin_array();
        for ty in types {
            self.value(ty, depth + 1)?;
        }
        self.sink.end_array();
        Ok(())
    }

    fn fields(&mut self, fields: &Fields, depth: usize) -> Decoded {
        match fields {
            Fields::Unit => self.sink.null(),
            Fields::Unnamed(types) if types.len() == 1 => self.value(&types[0], depth + 1)?,
            Fields::Unnamed(types) => self.sequence(types.iter(), depth)?,
            Fields::Named(named) => {
                self.sink.begin_object();
                for (name, ty) in named {
                    self.sink.key(name);
                    self.value(ty, depth + 1)?;
                }
                self.sink.end_object();
            }
        }
        Ok(())
    }

    fn int(&mut self, kind: IntKind) -> Decoded {
        let bytes = self.take(kind.size())?;
        let mut wide = [0u8; 16];
        wide[..bytes.len()].copy_from_slice(bytes);
        if kind.signed() && bytes[bytes.len() - 1] & 0x80 != 0 {
            wide[bytes.len()..].fill(0xff);
        }
        if kind.signed() {
            let v = i128::from_le_bytes(wide);
            match i64::try_from(v) {
                Ok(small) => self.sink.i64(small),
                Err(_) => self.sink.str(&v.to_string()),
            }
        } else {
            let v = u128::from_le_bytes(wide);
            match u64::try_from(v) {
                Ok(small) => self.sink.u64(small),
                Err(_) => self.sink.str(&v.to_string()),
            }
        }
        Ok(())
    }

    fn char(&mut self) -> Decoded {
        let first = *self.input.get(self.position).ok_or("needs a char but no bytes remain")?;
        let width = match first {
            0x00..=0x7f => 1,
            0xc0..=0xdf => 2,
            0xe0..=0xef => 3,
            0xf0..=0xf7 => 4,
            _ => return Err(format!("{first:#04x} does not start a UTF-8 char")),
        };
        let bytes = self.take(width)?;
        let text = std::str::from_utf8(bytes).map_err(|e| format!("char is not UTF-8: {e}"))?;
        self.sink.str(text);
        Ok(())
    }

    /// `Vec<u8>` with its length prefix, as an array of numbers.
    fn raw_bytes_counted(&mut self) -> Decoded {
        let len = self.length()?;
        let len = usize::try_from(len).map_err(|_| format!("byte length {len} is too large"))?;
        let bytes = self.take(len)?;
        self.sink.bytes(bytes);
        Ok(())
    }

    /// The whole output of a raw method, as an array of numbers.
    fn raw_bytes(&mut self) -> Decoded {
        self.sink.bytes(self.input);
        self.position = self.input.len();
        Ok(())
    }
}

/// Where the decoder puts a value, as it goes: JSON text ([`JsonText`]) or
/// values in memory ([`Values`]). Elements and object members arrive in
/// order; each member's key comes just before its value.
/// Keeps nothing: decoding only checks.
struct Discard;

impl Sink for Discard {
    fn null(&mut self) {}
    fn bool(&mut self, _: bool) {}
    fn i64(&mut self, _: i64) {}
    fn u64(&mut self, _: u64) {}
    fn f32(&mut self, _: f32) {}
    fn f64(&mut self, _: f64) {}
    fn str(&mut self, _: &str) {}
    fn bytes(&mut self, _: &[u8]) {}
    fn begin_array(&mut self) {}
    fn end_array(&mut self) {}
    fn begin_object(&mut self) {}
    fn key(&mut self, _: &str) {}
    fn end_object(&mut self) {}
}

trait Sink {
    fn null(&mut self);
    fn bool(&mut self, b: bool);
    fn i64(&mut self, v: i64);
    fn u64(&mut self, v: u64);
    /// A non-finite float is `null`.
    fn f32(&mut self, f: f32);
    fn f64(&mut self, f: f64);
    fn str(&mut self, text: &str);
    /// An array of numbers.
    fn bytes(&mut self, bytes: &[u8]);
    fn begin_array(&mut self);
    fn end_array(&mut self);
    fn begin_object(&mut self);
    fn key(&mut self, name: &str);
    fn end_object(&mut self);
}

/// JSON text.
struct JsonText {
    text: String,
    /// Whether the next element or member follows another (and so a comma).
    after_value: bool,
}

impl JsonText {
    fn with_capacity(capacity: usize) -> JsonText {
        JsonText { text: String::with_capacity(capacity), after_value: false }
    }

    /// Starts a value: a comma first when it follows another.
    fn start(&mut self) -> &mut String {
        if self.after_value {
            self.text.push(',');
        }
        self.after_value = true;
        &mut self.text
    }

    fn float(&mut self, finite: bool, text: std::fmt::Arguments<'_>) {
        let out = self.start();
        if finite {
            out.write_fmt(text).expect("writing to a String cannot fail");
        } else {
            out.push_str("null");
        }
    }

    fn open(&mut self, bracket: char) {
        self.start().push(bracket);
        self.after_value = false;
    }

    fn close(&mut self, bracket: char) {
        self.text.push(bracket);
        self.after_value = true;
    }
}

impl Sink for JsonText {
    fn null(&mut self) {
        self.start().push_str("null");
    }
    fn bool(&mut self, b: bool) {
        self.start().push_str(if b { "true" } else { "false" });
    }
    fn i64(&mut self, v: i64) {
        write!(self.start(), "{v}").expect("writing to a String cannot fail");
    }
    fn u64(&mut self, v: u64) {
        write!(self.start(), "{v}").expect("writing to a String cannot fail");
    }
    fn f32(&mut self, f: f32) {
        self.float(f.is_finite(), format_args!("{f:?}"));
    }
    fn f64(&mut self, f: f64) {
        self.float(f.is_finite(), format_args!("{f:?}"));
    }
    fn str(&mut self, text: &str) {
        write_string(self.start(), text);
    }
    fn bytes(&mut self, bytes: &[u8]) {
        write_byte_array(self.start(), bytes);
    }
    fn begin_array(&mut self) {
        self.open('[');
    }
    fn end_array(&mut self) {
        self.close(']');
    }
    fn begin_object(&mut self) {
        self.open('{');
    }
    fn key(&mut self, name: &str) {
        write_string(self.start(), name);
        self.text.push(':');
        self.after_value = false;
    }
    fn end_object(&mut self) {
        self.close('}');
    }
}

/// Values in memory: what parsing the [`JsonText`] of the same input
/// gives.
#[derive(Default)]
struct Values {
    /// The arrays and objects still open, innermost last; an object with
    /// the key of the member whose value comes next.
    open: Vec<Open>,
    root: Option<Value>,
}

enum Open {
    Array(Vec<Value>),
    Object(serde_json::Map<String, Value>, String),
}

impl Values {
    fn put(&mut self, value: Value) {
        match self.open.last_mut() {
            Some(Open::Array(items)) => items.push(value),
            Some(Open::Object(members, key)) => {
                members.insert(std::mem::take(key), value);
            }
            None => self.root = Some(value),
        }
    }

    fn close(&mut self) {
        let value = match self.open.pop() {
            Some(Open::Array(items)) => Value::Array(items),
            Some(Open::Object(members, _)) => Value::Object(members),
            None => unreachable!("the decoder closes only what it opened"),
        };
        self.put(value);
    }
}

impl Sink for Values {
    fn null(&mut self) {
        self.put(Value::Null);
    }
    fn bool(&mut self, b: bool) {
        self.put(Value::Bool(b));
    }
    fn i64(&mut self, v: i64) {
        self.put(Value::from(v));
    }
    fn u64(&mut self, v: u64) {
        self.put(Value::from(v));
    }
    fn f32(&mut self, f: f32) {
        // As its text reads back: the shortest decimal that is this f32,
        // as an f64 (0.1f32 is 0.1, not 0.10000000149011612).
        let read_back = f.is_finite().then(|| format!("{f:?}").parse::<f64>().ok()).flatten();
        self.put(read_back.and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number));
    }
    fn f64(&mut self, f: f64) {
        self.put(serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number));
    }
    fn str(&mut self, text: &str) {
        self.put(Value::String(text.to_string()));
    }
    fn bytes(&mut self, bytes: &[u8]) {
        self.put(Value::Array(bytes.iter().map(|&b| Value::from(b)).collect()));
    }
    fn begin_array(&mut self) {
        self.open.push(Open::Array(Vec::new()));
    }
    fn end_array(&mut self) {
        self.close();
    }
    fn begin_object(&mut self) {
        self.open.push(Open::Object(serde_json::Map::new(), String::new()));
    }
    fn key(&mut self, name: &str) {
        if let Some(Open::Object(_, key)) = self.open.last_mut() {
            name.clone_into(key);
        }
    }
    fn end_object(&mut self) {
        self.close();
    }
}

fn write_byte_array(out: &mut String, bytes: &[u8]) {
    out.reserve(bytes.len() * 4 + 2);
    out.push('[');
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write!(out, "{b}").expect("writing to a String cannot fail");
    }
    out.push(']');
}

/// Writes `text` as a JSON string literal.
fn write_string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    let mut start = 0;
    for (i, c) in text.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            write!(out, "\\u{:04x}", c as u32).expect("writing to a String cannot fail");
        } else {
            out.push_str(escape);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&text[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_strings_like_json() {
        let mut out = String::new();
        write_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        assert_eq!(serde_json::from_str::<String>(&out).unwrap(), "a\"b\\c\nd\u{1}é");
    }
}
