//! Interfaces: what a host expects a plugin to implement.
//!
//! An [`Interface`] is a name, a version, an optional WASM export name, the
//! methods in declaration order (each from its fidius signature string, e.g.
//! `add:i64,i64->i64`) and the structs and enums their types use. It yields
//! the interface hash exactly as `#[plugin_interface]` computes it, method
//! lookup by name, and the wire types that JSON calls are transcoded with.
//! Interfaces come from an [`InterfaceBuilder`] or an interface file
//! ([`file`]).

pub mod file;
pub mod json;
pub(crate) mod syntax;
pub mod types;

use crate::error::{Error, Quoted, Result, Status};
use std::collections::BTreeMap;
use syntax::{Token, TypeExpr};
use types::{Declaration, Resolver, TypeDef, WireType};

/// Most optional methods an interface may have: the capability bits.
pub const MAX_OPTIONAL_METHODS: usize = 64;

/// Longest interface or export name, in bytes.
pub const MAX_NAME: usize = 1024;

/// Flags of a method besides its signature.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MethodFlags {
    /// `#[optional]`: excluded from the hash; a plugin may lack it.
    pub optional: bool,
    /// `#[wire(raw)]`: bytes travel as they are.
    pub raw: bool,
    /// Returns `Stream<T>` (server streaming).
    pub streaming: bool,
}

/// What a method returns.
#[derive(Debug, Clone, PartialEq)]
pub enum Returns {
    /// No return type written (`ping:->`): zero bytes, JSON `null`.
    Nothing,
    /// `-> T`.
    Value(WireType),
    /// `-> Result<T, PluginError>`: `Ok` travels as the bare `T`, `Err` as a
    /// plugin error.
    Result(WireType),
}

/// One method of an interface.
#[derive(Debug, Clone, PartialEq)]
pub struct Method {
    /// The method's name.
    pub name: String,
    /// The signature string the hash uses, markers included.
    pub signature: String,
    /// Flags; `streaming` also covers a `Stream<T>` return type.
    pub flags: MethodFlags,
    /// An argument is `Stream<T>` (client streaming).
    pub client_streaming: bool,
    /// Which argument is the `Stream<T>`, when the signature says so
    /// (written `Stream<T>`, or the only argument of a `<stream` method).
    /// The hashed signature does not: it writes the argument as `T`.
    pub stream_param: Option<usize>,
    /// The signature as written for interface files: the canonical one,
    /// with the stream argument spelled `Stream<T>` when its position is
    /// known (the same hash).
    pub written: String,
    /// Argument types, in order (the item type for the stream argument).
    pub params: Vec<WireType>,
    /// The return type.
    pub returns: Returns,
    /// For optional methods, the capability bit (k-th optional method).
    pub capability_bit: Option<u32>,
}

/// How a method exchanges values with its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallShape {
    /// Arguments in, one result out.
    Unary,
    /// Arguments in, a stream of items out (`-> Stream<T>`).
    ServerStream,
    /// Arguments and a stream of items in (`Stream<T>` argument), one
    /// result out.
    ClientStream,
    /// A stream in and a stream out.
    Bidirectional,
}

impl CallShape {
    /// How the shape is called, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            CallShape::Unary => "a unary method (one result)",
            CallShape::ServerStream => "a server-streaming method (-> Stream<T>)",
            CallShape::ClientStream => "a client-streaming method (a Stream<T> argument, one result)",
            CallShape::Bidirectional => "a bidirectional method (a Stream<T> argument and -> Stream<T>)",
        }
    }
}

impl Method {
    /// Whether the method streams, and which way.
    pub fn shape(&self) -> CallShape {
        match (self.flags.streaming, self.client_streaming) {
            (false, false) => CallShape::Unary,
            (true, false) => CallShape::ServerStream,
            (false, true) => CallShape::ClientStream,
            (true, true) => CallShape::Bidirectional,
        }
    }

    /// The arguments a call passes in its argument tuple, with their
    /// positions: all but the `Stream<T>` one.
    pub fn tuple_params(&self) -> impl Iterator<Item = (usize, &WireType)> {
        self.params.iter().enumerate().filter(move |(i, _)| !(self.client_streaming && self.stream_param == Some(*i)))
    }

    /// The type of the items the method streams out.
    pub fn output_item(&self) -> Option<&WireType> {
        match (&self.returns, self.flags.streaming) {
            (Returns::Value(ty) | Returns::Result(ty), true) => Some(ty),
            _ => None,
        }
    }

    /// The type of the items its `Stream<T>` argument takes, when the
    /// signature says which argument that is.
    pub fn input_item(&self) -> Option<&WireType> {
        self.params.get(self.stream_param?)
    }
}

/// A validated interface. Immutable; share it with `Arc`.
#[derive(Debug, Clone, PartialEq)]
pub struct Interface {
    name: String,
    version: u32,
    wasm_export: Option<String>,
    methods: Vec<Method>,
    types: Vec<TypeDef>,
    by_name: BTreeMap<String, u32>,
    hash: u64,
    config: Option<ConfigType>,
}

/// The type of the configuration a plugin of the interface is constructed
/// with (`#[plugin_impl(Trait, config = C)]`). Not part of the hash: fidius
/// declares it on the implementation, not on the trait.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigType {
    /// As written, e.g. `CalcConfig` or `Vec<String>`.
    pub text: String,
    /// Resolved against the interface's types.
    pub ty: WireType,
}

impl Interface {
    /// The interface (trait) name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The interface version.
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The WASM component export name, when given.
    pub fn wasm_export(&self) -> Option<&str> {
        self.wasm_export.as_deref()
    }

    /// The methods in declaration order (the order of vtable slots).
    pub fn methods(&self) -> &[Method] {
        &self.methods
    }

    /// The declared structs and enums.
    pub fn types(&self) -> &[TypeDef] {
        &self.types
    }

    /// The interface hash of the required methods.
    pub fn hash(&self) -> u64 {
        self.hash
    }

    /// The configuration type its plugins are constructed with, when the
    /// interface declares one.
    pub fn config_type(&self) -> Option<&ConfigType> {
        self.config.as_ref()
    }

    /// The capability bits of a plugin of this interface: bit k is set when
    /// the k-th optional method is implemented (`implemented(index)`).
    pub fn capability_bits(&self, implemented: impl Fn(usize) -> bool) -> u64 {
        self.methods
            .iter()
            .enumerate()
            .filter_map(|(index, m)| m.capability_bit.filter(|_| implemented(index)))
            .fold(0, |bits, bit| bits | (1 << bit))
    }

    /// The index of the method called `name`.
    pub fn method_index(&self, name: &str) -> Result<u32> {
        self.by_name.get(name).copied().ok_or_else(|| {
            let names: Vec<&str> = self.methods.iter().map(|m| m.name.as_str()).collect();
            Error::new(
                Status::UnknownMethod,
                format!("interface {} has no method '{}' (it has: [{}])", self.name, Quoted(name), Quoted(&names.join(", "))),
            )
        })
    }

    /// Method `index`.
    pub fn method(&self, index: u32) -> Result<&Method> {
        self.methods.get(index as usize).ok_or_else(|| {
            Error::new(
                Status::MethodOutOfRange,
                format!("method {index} is out of range: interface {} has {} methods", self.name, self.methods.len()),
            )
            .method_out_of_range(index, self.methods.len())
        })
    }
}

/// A method as given, parsed but not yet resolved.
#[derive(Debug, Clone)]
struct MethodSpec {
    name: String,
    params: Vec<TypeExpr>,
    returns: Option<TypeExpr>,
    flags: MethodFlags,
    client_streaming: bool,
    stream_param: Option<usize>,
    signature: String,
    written: String,
}

/// Collects an interface's parts; [`InterfaceBuilder::build`] checks them
/// as a whole.
#[derive(Debug, Clone)]
pub struct InterfaceBuilder {
    name: String,
    version: u32,
    wasm_export: Option<String>,
    methods: Vec<MethodSpec>,
    declarations: Vec<Declaration>,
    config: Option<(String, TypeExpr)>,
}

impl InterfaceBuilder {
    /// An interface called `name` (the trait name) at `version`.
    pub fn new(name: &str, version: u32) -> Result<InterfaceBuilder> {
        if !syntax::is_identifier(name) || name.len() > MAX_NAME {
            return Err(invalid(format!("interface name '{}' is not an identifier of at most {MAX_NAME} bytes", Quoted(name))));
        }
        Ok(InterfaceBuilder {
            name: name.to_string(),
            version,
            wasm_export: None,
            methods: Vec::new(),
            declarations: Vec::new(),
            config: None,
        })
    }

    /// Sets the WASM component export, e.g. `fidius:calculator/calculator@0.1.0`.
    pub fn wasm_export(&mut self, export: &str) -> Result<&mut Self> {
        if export.trim().is_empty() || export.chars().any(char::is_whitespace) || export.len() > MAX_NAME {
            return Err(invalid(format!("WASM export name '{}' must be non-empty, without spaces and at most {MAX_NAME} bytes", Quoted(export))));
        }
        self.wasm_export = Some(export.to_string());
        Ok(self)
    }

    /// Adds the next method from its signature string, e.g.
    /// `add:i64,i64->i64` or `reverse:Vec<u8>->Vec<u8>` with `raw`. Any
    /// spacing is accepted; the markers `!raw`, `!stream` and `<stream` may
    /// be written instead of the flags.
    pub fn method(&mut self, signature: &str, flags: MethodFlags) -> Result<&mut Self> {
        let spec = parse_signature(signature, flags).map_err(|e| invalid(format!("method signature '{}': {e}", Quoted(signature))))?;
        if self.methods.iter().any(|m| m.name == spec.name) {
            return Err(invalid(format!("method '{}' is declared twice", spec.name)));
        }
        if spec.flags.optional && self.methods.iter().filter(|m| m.flags.optional).count() == MAX_OPTIONAL_METHODS {
            return Err(invalid(format!("more than {MAX_OPTIONAL_METHODS} optional methods")));
        }
        self.methods.push(spec);
        Ok(self)
    }

    /// Declares the type plugins of the interface are configured with: any
    /// type a method argument may have, e.g. `CalcConfig` (declared with
    /// [`InterfaceBuilder::declare`]) or `Vec<String>`. It does not change
    /// the hash.
    pub fn config_type(&mut self, ty: &str) -> Result<&mut Self> {
        let config = |e: String| invalid(format!("config type '{}': {e}", Quoted(ty)));
        let tokens = syntax::tokenize(ty).map_err(config)?;
        if tokens.is_empty() || ty.len() > MAX_NAME {
            return Err(config(format!("expected a type of at most {MAX_NAME} bytes")));
        }
        let parsed = syntax::parse_type(&tokens).map_err(config)?;
        self.config = Some((syntax::pretty(&tokens), parsed));
        Ok(self)
    }

    /// Declares a struct or enum the method types use, in Rust syntax:
    /// `struct Point { x: f64, y: f64 }`, `struct Id(u64);`, `struct Unit;`,
    /// `enum Shape { Empty, Circle(f64), Rect { w: f64, h: f64 } }`.
    pub fn declare(&mut self, declaration: &str) -> Result<&mut Self> {
        let parsed = types::parse_declaration(declaration)
            .map_err(|e| invalid(format!("type declaration '{}': {e}", Quoted(declaration))))?;
        if types::RESERVED_NAMES.contains(&parsed.name.as_str()) {
            return Err(invalid(format!("type '{}' is builtin and cannot be declared", parsed.name)));
        }
        if self.declarations.iter().any(|d| d.name == parsed.name) {
            return Err(invalid(format!("type '{}' is declared twice", parsed.name)));
        }
        self.declarations.push(parsed);
        Ok(self)
    }

    /// Resolves every type and computes the hash. Fails on a type that is
    /// neither builtin nor declared.
    pub fn build(&self) -> Result<Interface> {
        let names: Vec<String> = self.declarations.iter().map(|d| d.name.clone()).collect();
        let resolver = Resolver { names: &names };
        let types = self
            .declarations
            .iter()
            .map(|d| resolver.resolve_declaration(d).map_err(|e| invalid(format!("type {}: {e}", d.name))))
            .collect::<Result<Vec<_>>>()?;
        let mut methods = Vec::with_capacity(self.methods.len());
        let mut optional_count = 0u32;
        for spec in &self.methods {
            let context = |e: String| invalid(format!("interface {}, method '{}': {e}", self.name, spec.name));
            let params = spec
                .params
                .iter()
                .enumerate()
                .map(|(i, p)| resolver.resolve(p).map_err(|e| format!("argument {}: {e}", i + 1)))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(context)?;
            let returns = resolve_returns(&resolver, spec.returns.as_ref()).map_err(|e| context(format!("return type: {e}")))?;
            if spec.flags.raw {
                check_raw(&params, &returns).map_err(context)?;
            }
            let capability_bit = spec.flags.optional.then(|| {
                optional_count += 1;
                optional_count - 1
            });
            methods.push(Method {
                name: spec.name.clone(),
                signature: spec.signature.clone(),
                flags: spec.flags,
                client_streaming: spec.client_streaming,
                stream_param: spec.stream_param,
                written: spec.written.clone(),
                params,
                returns,
                capability_bit,
            });
        }
        let config = match &self.config {
            None => None,
            Some((text, expr)) => Some(ConfigType {
                text: text.clone(),
                ty: resolver.resolve(expr).map_err(|e| invalid(format!("interface {}, config type: {e}", self.name)))?,
            }),
        };
        let required: Vec<&str> = methods.iter().filter(|m| !m.flags.optional).map(|m| m.signature.as_str()).collect();
        let by_name = methods.iter().enumerate().map(|(i, m)| (m.name.clone(), i as u32)).collect();
        Ok(Interface {
            name: self.name.clone(),
            version: self.version,
            wasm_export: self.wasm_export.clone(),
            hash: crate::hash::interface_hash(&required),
            methods,
            types,
            by_name,
            config,
        })
    }
}

/// fidius's kebab-case of a Rust name, as in WIT: a leading `r#` is
/// dropped, `_` becomes `-`, and every uppercase letter but the first gets a
/// `-` in front and is lowercased (`BytePipe` → `byte-pipe`).
pub fn kebab_case(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in name.strip_prefix("r#").unwrap_or(name).chars().enumerate() {
        if c == '_' {
            out.push('-');
        } else if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The component export fidius generates for a trait:
/// `fidius:<kebab>/<kebab>@0.1.0` (the version is always 0.1.0).
pub fn default_wasm_export(trait_name: &str) -> String {
    format!("fidius:{0}/{0}@0.1.0", kebab_case(trait_name))
}

fn invalid(message: String) -> Error {
    Error::new(Status::InvalidInterface, message)
}

/// The canonical form of a signature string, as the macro hashes it.
pub fn canonical_signature(signature: &str) -> Result<String> {
    parse_signature(signature, MethodFlags::default())
        .map(|spec| spec.signature)
        .map_err(|e| invalid(format!("method signature '{}': {e}", Quoted(signature))))
}

/// Parses `name:T1,T2->R` plus markers into a spec with the canonical
/// signature string.
fn parse_signature(text: &str, mut flags: MethodFlags) -> std::result::Result<MethodSpec, String> {
    let tokens = syntax::tokenize(text)?;
    let [Token::Word(name), Token::Punct(":"), rest @ ..] = tokens.as_slice() else {
        return Err("expected `name:arguments->return`".to_string());
    };
    if !syntax::is_identifier(name) {
        return Err(format!("`{name}` is not a method name"));
    }
    let mut rest = rest;
    let mut client_marker = false;
    // Markers come last, in the order `!raw`, `!stream`, `<stream`.
    if let [head @ .., Token::Punct("<"), Token::Word(word)] = rest {
        if word == "stream" {
            client_marker = true;
            rest = head;
        }
    }
    if let [head @ .., Token::Punct("!"), Token::Word(word)] = rest {
        if word == "stream" {
            flags.streaming = true;
            rest = head;
        }
    }
    if let [head @ .., Token::Punct("!"), Token::Word(word)] = rest {
        if word == "raw" {
            flags.raw = true;
            rest = head;
        }
    }
    let parts = syntax::split_top_level(rest, "->");
    let [args, ret] = parts.as_slice() else {
        return Err("expected exactly one `->` between the arguments and the return type".to_string());
    };
    let (arg_items, trailing) = syntax::split_list(args, ",");
    if trailing || arg_items.iter().any(|a| a.is_empty()) {
        return Err("an argument type is empty".to_string());
    }
    let mut params = Vec::new();
    let mut arg_texts = Vec::new();
    let mut client_streaming = client_marker;
    let mut stream_param = None;
    for (i, arg) in arg_items.iter().enumerate() {
        let ty = syntax::parse_type(arg).map_err(|e| format!("argument {}: {e}", i + 1))?;
        // A `Stream<T>` argument hashes as `T` with the `<stream` marker.
        match ty.single_arg_of("Stream") {
            Some(_) if stream_param.is_some() => return Err("more than one `Stream<T>` argument".to_string()),
            Some(item) => {
                client_streaming = true;
                stream_param = Some(i);
                arg_texts.push(stream_item_text(arg));
                params.push(item.clone());
            }
            None => {
                arg_texts.push(syntax::canonical(arg));
                params.push(ty);
            }
        }
    }
    let (returns, ret_text) = if ret.is_empty() {
        (None, String::new())
    } else {
        let ty = syntax::parse_type(ret).map_err(|e| format!("return type: {e}"))?;
        match ty.single_arg_of("Stream") {
            Some(item) => {
                flags.streaming = true;
                (Some(item.clone()), stream_item_text(ret))
            }
            None => (Some(ty), syntax::canonical(ret)),
        }
    };
    if flags.streaming && returns.is_none() {
        return Err("a streaming method needs a return (item) type".to_string());
    }
    if client_streaming && params.is_empty() {
        return Err("a client-streaming method (`<stream`) needs the `Stream<T>` argument".to_string());
    }
    // The marker alone names no argument, unless there is only one.
    if client_streaming && params.len() == 1 {
        stream_param = Some(0);
    }
    let markers = |client_marker: bool| {
        let mut markers = String::new();
        if flags.raw {
            markers.push_str("!raw");
        }
        if flags.streaming {
            markers.push_str("!stream");
        }
        if client_marker {
            markers.push_str("<stream");
        }
        markers
    };
    let signature = format!("{name}:{}->{ret_text}{}", arg_texts.join(","), markers(client_streaming));
    let written = match stream_param {
        Some(at) => {
            let mut texts = arg_texts.clone();
            texts[at] = format!("Stream<{}>", texts[at]);
            format!("{name}:{}->{ret_text}{}", texts.join(","), markers(false))
        }
        None => signature.clone(),
    };
    Ok(MethodSpec { name: name.clone(), params, returns, flags, client_streaming, stream_param, signature, written })
}

/// The canonical text of `T` inside a `…Stream<T>` spelling.
fn stream_item_text(tokens: &[Token]) -> String {
    let open = tokens.iter().position(|t| *t == Token::Punct("<")).expect("Stream<T> has `<`");
    let mut item = &tokens[open + 1..tokens.len() - 1];
    // `Stream<T,>` is `Stream<T>`.
    if let [head @ .., Token::Punct(",")] = item {
        item = head;
    }
    syntax::canonical(item)
}

fn resolve_returns(resolver: &Resolver<'_>, ret: Option<&TypeExpr>) -> std::result::Result<Returns, String> {
    let Some(ret) = ret else { return Ok(Returns::Nothing) };
    if ret.last_segment() == Some("Result") {
        let TypeExpr::Path { args, .. } = ret else { unreachable!("last_segment is only Some for paths") };
        let [ok, error] = args.as_slice() else {
            return Err("`Result` takes two type arguments".to_string());
        };
        if error.last_segment() != Some("PluginError") {
            return Err("the error type of a `Result` must be PluginError".to_string());
        }
        return Ok(Returns::Result(resolver.resolve(ok)?));
    }
    Ok(Returns::Value(resolver.resolve(ret)?))
}

/// `#[wire(raw)]` allows exactly one `Vec<u8>` argument and a `Vec<u8>`
/// (or `Result<Vec<u8>, PluginError>`) return.
fn check_raw(params: &[WireType], returns: &Returns) -> std::result::Result<(), String> {
    let bytes_return = matches!(returns, Returns::Value(WireType::Bytes) | Returns::Result(WireType::Bytes));
    if params != [WireType::Bytes] || !bytes_return {
        return Err("a raw method takes one Vec<u8> and returns Vec<u8> or Result<Vec<u8>, PluginError>".to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(optional: bool, raw: bool) -> MethodFlags {
        MethodFlags { optional, raw, streaming: false }
    }

    #[test]
    fn greeter_hash_from_loose_spellings() {
        // fidius-compat §3.3 example 3.
        let mut b = InterfaceBuilder::new("Greeter", 1).unwrap();
        b.method("greet: String -> String", MethodFlags::default()).unwrap();
        b.method("maybe:Option<String>->Result<Vec<u8>,PluginError>", MethodFlags::default()).unwrap();
        b.method("pair:(i64,i64)->()", MethodFlags::default()).unwrap();
        b.method("blob:Vec<u8>->Vec<u8>", flags(false, true)).unwrap();
        b.method("extra:->u32", flags(true, false)).unwrap();
        let iface = b.build().unwrap();
        assert_eq!(iface.hash(), 0xe12b_1649_403a_317b);
        assert_eq!(iface.methods()[3].signature, "blob:Vec < u8 >->Vec < u8 >!raw");
        assert_eq!(iface.methods()[4].capability_bit, Some(0));
        assert_eq!(iface.method_index("pair").unwrap(), 2);
        assert_eq!(iface.method_index("nope").unwrap_err().status(), Status::UnknownMethod);
    }

    #[test]
    fn fidius_names() {
        assert_eq!(kebab_case("BytePipe"), "byte-pipe");
        assert_eq!(kebab_case("WGreeter"), "w-greeter");
        assert_eq!(kebab_case("HTTPFoo"), "h-t-t-p-foo");
        assert_eq!(kebab_case("echo_bytes"), "echo-bytes");
        assert_eq!(default_wasm_export("Greeter"), "fidius:greeter/greeter@0.1.0");
    }

    #[test]
    fn markers_and_streams() {
        // fidius-compat §3.3: tick/sum/double hash to 0xae6aede38b6df4d7.
        let mut b = InterfaceBuilder::new("Streams", 1).unwrap();
        b.method("tick:u32->fidius::Stream<String>", MethodFlags::default()).unwrap();
        b.method("sum:Stream<u64>,u64->u64", MethodFlags::default()).unwrap();
        b.method("double:u64->u64!stream<stream", MethodFlags::default()).unwrap();
        let iface = b.build().unwrap();
        assert_eq!(iface.methods()[0].signature, "tick:u32->String!stream");
        assert_eq!(iface.methods()[1].signature, "sum:u64,u64->u64<stream");
        assert_eq!(iface.hash(), 0xae6a_ede3_8b6d_f4d7);
        let mut b = InterfaceBuilder::new("Arena", 1).unwrap();
        b.method("ping:->", MethodFlags::default()).unwrap();
        b.method("names:std::string::String,u32->Vec<String>", MethodFlags::default()).unwrap();
        assert_eq!(b.build().unwrap().hash(), 0x7b6d_fcf9_8885_3b77);
    }

    #[test]
    fn rejects_bad_interfaces() {
        let mut b = InterfaceBuilder::new("Bad", 1).unwrap();
        for bad in ["add", "add:i64", "1add:->", "add:i64,,i64->i64", "add:&str->()", "add:i64->i64->i64"] {
            let e = b.method(bad, MethodFlags::default()).unwrap_err();
            assert_eq!(e.status(), Status::InvalidInterface, "{bad}");
        }
        assert!(b.method("raw:String->Vec<u8>", flags(false, true)).is_ok());
        assert!(b.build().unwrap_err().message().contains("raw method"));
        let mut b = InterfaceBuilder::new("Bad", 1).unwrap();
        b.method("f:Point->()", MethodFlags::default()).unwrap();
        let e = b.build().unwrap_err();
        assert!(e.message().contains("unknown type `Point`"), "{}", e.message());
        b.declare("struct Point { x: f64 }").unwrap();
        assert!(b.build().is_ok());
        assert!(b.declare("struct Point;").unwrap_err().message().contains("twice"));
        assert!(b.declare("struct String;").is_err());
        assert!(b.method("f:->()", MethodFlags::default()).unwrap_err().message().contains("twice"));
        assert!(InterfaceBuilder::new("no spaces", 1).is_err());
    }
}
