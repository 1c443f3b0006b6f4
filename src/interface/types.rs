//! The wire types of an interface: what a spelling such as
//! `Option<Vec<u8>>` means for encoding, with user structs and enums.

use super::syntax::{self, Delim, Token, TypeExpr};
use std::fmt;

/// A type whose values cross the plugin boundary, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum WireType {
    /// `()`.
    Unit,
    /// `bool`.
    Bool,
    /// An integer of this kind.
    Int(IntKind),
    /// `f32`.
    F32,
    /// `f64`.
    F64,
    /// `char`.
    Char,
    /// `String`.
    String,
    /// `Vec<u8>`.
    Bytes,
    /// `Vec<T>` and sets.
    Seq(Box<WireType>),
    /// `Option<T>`.
    Option(Box<WireType>),
    /// `(A, B, …)` with at least one element.
    Tuple(Vec<WireType>),
    /// `[T; N]`.
    Array(Box<WireType>, usize),
    /// `HashMap<K, V>` or `BTreeMap<K, V>`.
    Map(Box<WireType>, Box<WireType>),
    /// A struct or enum declared in the interface: its index and name.
    Named(usize, String),
}

/// Integer widths and signedness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntKind {
    I8,
    I16,
    I32,
    I64,
    I128,
    U8,
    U16,
    U32,
    U64,
    U128,
}

impl IntKind {
    /// Encoded size in bytes.
    pub fn size(self) -> usize {
        match self {
            IntKind::I8 | IntKind::U8 => 1,
            IntKind::I16 | IntKind::U16 => 2,
            IntKind::I32 | IntKind::U32 => 4,
            IntKind::I64 | IntKind::U64 => 8,
            IntKind::I128 | IntKind::U128 => 16,
        }
    }

    /// Whether the kind is signed.
    pub fn signed(self) -> bool {
        matches!(self, IntKind::I8 | IntKind::I16 | IntKind::I32 | IntKind::I64 | IntKind::I128)
    }

    /// Smallest value.
    pub fn min(self) -> i128 {
        if self.signed() {
            i128::MIN >> (128 - self.size() * 8)
        } else {
            0
        }
    }

    /// Largest value.
    pub fn max(self) -> u128 {
        match self {
            IntKind::U128 => u128::MAX,
            IntKind::I128 => i128::MAX as u128,
            kind if kind.signed() => (1u128 << (kind.size() * 8 - 1)) - 1,
            kind => (1u128 << (kind.size() * 8)) - 1,
        }
    }

    fn name(self) -> &'static str {
        match self {
            IntKind::I8 => "i8",
            IntKind::I16 => "i16",
            IntKind::I32 => "i32",
            IntKind::I64 => "i64",
            IntKind::I128 => "i128",
            IntKind::U8 => "u8",
            IntKind::U16 => "u16",
            IntKind::U32 => "u32",
            IntKind::U64 => "u64",
            IntKind::U128 => "u128",
        }
    }
}

impl fmt::Display for IntKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for WireType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireType::Unit => f.write_str("()"),
            WireType::Bool => f.write_str("bool"),
            WireType::Int(kind) => kind.fmt(f),
            WireType::F32 => f.write_str("f32"),
            WireType::F64 => f.write_str("f64"),
            WireType::Char => f.write_str("char"),
            WireType::String => f.write_str("String"),
            WireType::Bytes => f.write_str("Vec<u8>"),
            WireType::Seq(item) => write!(f, "Vec<{item}>"),
            WireType::Option(item) => write!(f, "Option<{item}>"),
            WireType::Tuple(items) => {
                let mut text = String::new();
                syntax::join(&mut text, items, ", ");
                if items.len() == 1 {
                    text.push(',');
                }
                write!(f, "({text})")
            }
            WireType::Array(item, n) => write!(f, "[{item}; {n}]"),
            WireType::Map(key, value) => write!(f, "Map<{key}, {value}>"),
            WireType::Named(_, name) => f.write_str(name),
        }
    }
}

/// A struct or enum declared in an interface.
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    /// The type's name.
    pub name: String,
    /// Its shape.
    pub shape: Shape,
    /// The declaration in canonical spelling, e.g. `struct Point { x: f64, y: f64 }`.
    pub declaration: String,
}

/// A struct's fields, or an enum's variants.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// `struct Name { … }`, `struct Name(…);` or `struct Name;`.
    Struct(Fields),
    /// `enum Name { … }`.
    Enum(Vec<Variant>),
}

/// The fields of a struct or of an enum variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Fields {
    /// `{ a: A, b: B }`: a JSON object.
    Named(Vec<(String, WireType)>),
    /// `(A, B)`: a JSON array, or the bare value for one field (newtype).
    Unnamed(Vec<WireType>),
    /// No fields: `null` for a struct, the name for a variant.
    Unit,
}

/// One enum variant.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// The variant's name, which is also its JSON tag.
    pub name: String,
    /// Its payload.
    pub fields: Fields,
}

/// A declaration parsed but not yet resolved (names may refer to types
/// declared later).
#[derive(Debug, Clone)]
pub(crate) struct Declaration {
    pub name: String,
    pub text: String,
    pub shape: DeclShape,
}

#[derive(Debug, Clone)]
pub(crate) enum DeclShape {
    Struct(DeclFields),
    Enum(Vec<(String, DeclFields)>),
}

#[derive(Debug, Clone)]
pub(crate) enum DeclFields {
    Named(Vec<(String, TypeExpr)>),
    Unnamed(Vec<TypeExpr>),
    Unit,
}

/// Parses `struct Name { a: A }`, `struct Name(A, B);`, `struct Name;` or
/// `enum Name { A, B(T), C { x: T } }` (a leading `pub` is allowed).
pub(crate) fn parse_declaration(text: &str) -> Result<Declaration, String> {
    let tokens = syntax::tokenize(text)?;
    let mut rest = tokens.as_slice();
    if let [Token::Word(word), tail @ ..] = rest {
        if word == "pub" {
            rest = tail;
        }
    }
    if let [head @ .., Token::Punct(";")] = rest {
        rest = head;
    }
    let [Token::Word(keyword), Token::Word(name), body @ ..] = rest else {
        return Err("expected `struct Name …` or `enum Name { … }`".to_string());
    };
    if !syntax::is_identifier(name) {
        return Err(format!("`{name}` is not a type name"));
    }
    let shape = match keyword.as_str() {
        "struct" => DeclShape::Struct(parse_fields(body).map_err(|e| format!("struct {name}: {e}"))?),
        "enum" => {
            let [Token::Group(Delim::Brace, inner)] = body else {
                return Err(format!("enum {name}: expected `{{ variants }}`"));
            };
            let (items, _) = syntax::split_list(inner, ",");
            let mut variants = Vec::new();
            for item in items {
                let [Token::Word(variant), fields @ ..] = item else {
                    return Err(format!("enum {name}: `{}` is not a variant", syntax::canonical(item)));
                };
                if !syntax::is_identifier(variant) {
                    return Err(format!("enum {name}: `{variant}` is not a variant name"));
                }
                if variants.iter().any(|(existing, _)| existing == variant) {
                    return Err(format!("enum {name}: variant `{variant}` is declared twice"));
                }
                let fields = parse_fields(fields).map_err(|e| format!("enum {name}, variant {variant}: {e}"))?;
                variants.push((variant.clone(), fields));
            }
            if variants.is_empty() {
                return Err(format!("enum {name} has no variants; values of it cannot exist"));
            }
            DeclShape::Enum(variants)
        }
        other => return Err(format!("expected `struct` or `enum`, found `{other}`")),
    };
    Ok(Declaration { name: name.clone(), text: syntax::pretty(&without_visibility(rest)), shape })
}

/// The tokens without `pub` and `pub(…)`, so declarations print the same
/// whatever visibility the source had.
fn without_visibility(tokens: &[Token]) -> Vec<Token> {
    let mut out = Vec::new();
    let mut iter = tokens.iter().peekable();
    while let Some(token) = iter.next() {
        match token {
            Token::Word(word) if word == "pub" => {
                if matches!(iter.peek(), Some(Token::Group(Delim::Paren, _))) {
                    iter.next();
                }
            }
            Token::Group(delim, inner) => out.push(Token::Group(*delim, without_visibility(inner))),
            other => out.push(other.clone()),
        }
    }
    out
}

fn parse_fields(body: &[Token]) -> Result<DeclFields, String> {
    match body {
        [] => Ok(DeclFields::Unit),
        [Token::Punct("<"), ..] => Err("generic types are not supported".to_string()),
        [Token::Group(Delim::Paren, inner)] => {
            let (items, _) = syntax::split_list(inner, ",");
            let types = items.into_iter().map(|item| syntax::parse_type(strip_pub(item))).collect::<Result<_, _>>()?;
            Ok(DeclFields::Unnamed(types))
        }
        [Token::Group(Delim::Brace, inner)] => {
            let (items, _) = syntax::split_list(inner, ",");
            let mut fields = Vec::new();
            for item in items {
                let [Token::Word(field), Token::Punct(":"), ty @ ..] = strip_pub(item) else {
                    return Err(format!("`{}` is not a field (`name: Type`)", syntax::canonical(item)));
                };
                if fields.iter().any(|(name, _)| name == field) {
                    return Err(format!("field `{field}` is declared twice"));
                }
                fields.push((field.clone(), syntax::parse_type(ty).map_err(|e| format!("field `{field}`: {e}"))?));
            }
            Ok(DeclFields::Named(fields))
        }
        _ => Err(format!("unexpected `{}`", syntax::canonical(body))),
    }
}

fn strip_pub(tokens: &[Token]) -> &[Token] {
    match tokens {
        [Token::Word(word), Token::Group(Delim::Paren, _), rest @ ..] if word == "pub" => rest,
        [Token::Word(word), rest @ ..] if word == "pub" => rest,
        _ => tokens,
    }
}

/// Resolves parsed types against the builtin names and the declared types.
pub(crate) struct Resolver<'a> {
    /// Names of the declared types, by index.
    pub names: &'a [String],
}

impl Resolver<'_> {
    /// The wire type of `ty`.
    pub(crate) fn resolve(&self, ty: &TypeExpr) -> Result<WireType, String> {
        match ty {
            TypeExpr::Tuple(items) if items.is_empty() => Ok(WireType::Unit),
            TypeExpr::Tuple(items) => Ok(WireType::Tuple(self.resolve_all(items)?)),
            TypeExpr::Array(item, n) => Ok(WireType::Array(Box::new(self.resolve(item)?), *n)),
            TypeExpr::Path { segments, args } => {
                let name = segments.last().expect("paths have a segment").as_str();
                let arity = |n: usize| {
                    if args.len() == n {
                        Ok(())
                    } else {
                        Err(format!("`{name}` takes {n} type argument(s), found {}", args.len()))
                    }
                };
                let scalar = match name {
                    "bool" => Some(WireType::Bool),
                    "i8" => Some(WireType::Int(IntKind::I8)),
                    "i16" => Some(WireType::Int(IntKind::I16)),
                    "i32" => Some(WireType::Int(IntKind::I32)),
                    "i64" | "isize" => Some(WireType::Int(IntKind::I64)),
                    "i128" => Some(WireType::Int(IntKind::I128)),
                    "u8" => Some(WireType::Int(IntKind::U8)),
                    "u16" => Some(WireType::Int(IntKind::U16)),
                    "u32" => Some(WireType::Int(IntKind::U32)),
                    "u64" | "usize" => Some(WireType::Int(IntKind::U64)),
                    "u128" => Some(WireType::Int(IntKind::U128)),
                    "f32" => Some(WireType::F32),
                    "f64" => Some(WireType::F64),
                    "char" => Some(WireType::Char),
                    "String" => Some(WireType::String),
                    _ => None,
                };
                if let Some(scalar) = scalar {
                    arity(0)?;
                    return Ok(scalar);
                }
                match name {
                    "Vec" | "VecDeque" | "HashSet" | "BTreeSet" => {
                        arity(1)?;
                        Ok(match self.resolve(&args[0])? {
                            WireType::Int(IntKind::U8) if name == "Vec" => WireType::Bytes,
                            item => WireType::Seq(Box::new(item)),
                        })
                    }
                    "Option" => {
                        arity(1)?;
                        Ok(WireType::Option(Box::new(self.resolve(&args[0])?)))
                    }
                    "Box" => {
                        arity(1)?;
                        self.resolve(&args[0])
                    }
                    "HashMap" | "BTreeMap" => {
                        arity(2)?;
                        Ok(WireType::Map(Box::new(self.resolve(&args[0])?), Box::new(self.resolve(&args[1])?)))
                    }
                    "Result" => Err("`Result` is only supported as a return type, as Result<T, PluginError>".to_string()),
                    "Stream" => Err("`Stream<T>` is only supported as a whole argument or return type".to_string()),
                    _ => {
                        let index = self.names.iter().position(|n| n == name).ok_or_else(|| {
                            format!("unknown type `{name}`: declare it in the interface as a struct or enum")
                        })?;
                        arity(0).map_err(|_| format!("`{name}` is declared without generic parameters"))?;
                        Ok(WireType::Named(index, name.to_string()))
                    }
                }
            }
        }
    }

    fn resolve_all(&self, types: &[TypeExpr]) -> Result<Vec<WireType>, String> {
        types.iter().map(|t| self.resolve(t)).collect()
    }

    pub(crate) fn resolve_declaration(&self, declaration: &Declaration) -> Result<TypeDef, String> {
        let shape = match &declaration.shape {
            DeclShape::Struct(fields) => Shape::Struct(self.resolve_fields(fields)?),
            DeclShape::Enum(variants) => Shape::Enum(
                variants
                    .iter()
                    .map(|(name, fields)| {
                        Ok(Variant { name: name.clone(), fields: self.resolve_fields(fields).map_err(|e| format!("variant {name}: {e}"))? })
                    })
                    .collect::<Result<_, String>>()?,
            ),
        };
        Ok(TypeDef { name: declaration.name.clone(), shape, declaration: declaration.text.clone() })
    }

    fn resolve_fields(&self, fields: &DeclFields) -> Result<Fields, String> {
        Ok(match fields {
            DeclFields::Named(named) => Fields::Named(
                named
                    .iter()
                    .map(|(name, ty)| Ok((name.clone(), self.resolve(ty).map_err(|e| format!("field `{name}`: {e}"))?)))
                    .collect::<Result<_, String>>()?,
            ),
            DeclFields::Unnamed(types) => Fields::Unnamed(self.resolve_all(types)?),
            DeclFields::Unit => Fields::Unit,
        })
    }
}

/// Builtin type names a declaration may not reuse.
pub(crate) const RESERVED_NAMES: &[&str] = &[
    "bool", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32", "u64", "u128", "usize", "f32", "f64",
    "char", "String", "Vec", "VecDeque", "HashSet", "BTreeSet", "Option", "Box", "HashMap", "BTreeMap", "Result",
    "Stream", "PluginError",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_ranges() {
        assert_eq!(IntKind::I8.min(), -128);
        assert_eq!(IntKind::I8.max(), 127);
        assert_eq!(IntKind::U16.max(), 65535);
        assert_eq!(IntKind::I128.min(), i128::MIN);
        assert_eq!(IntKind::U128.max(), u128::MAX);
        assert_eq!(IntKind::U64.max(), u64::MAX as u128);
    }

    #[test]
    fn declarations() {
        let point = parse_declaration("pub struct Point{ pub x:f64, y : Vec<u8> }").unwrap();
        assert_eq!(point.text, "struct Point { x: f64, y: Vec<u8> }");
        assert!(matches!(point.shape, DeclShape::Struct(DeclFields::Named(ref f)) if f.len() == 2));
        let wrapper = parse_declaration("struct Wrapper(pub u32);").unwrap();
        assert!(matches!(wrapper.shape, DeclShape::Struct(DeclFields::Unnamed(ref f)) if f.len() == 1));
        assert!(matches!(parse_declaration("struct Marker;").unwrap().shape, DeclShape::Struct(DeclFields::Unit)));
        let shape = parse_declaration("enum Shape { Empty, Circle(f64), Rect { w: f64, h: f64 }, }").unwrap();
        assert!(matches!(shape.shape, DeclShape::Enum(ref v) if v.len() == 3));
        assert!(parse_declaration("struct G<T> { x: T }").unwrap_err().contains("generic"));
        assert!(parse_declaration("enum E {}").unwrap_err().contains("no variants"));
        assert!(parse_declaration("union U { a: u8 }").is_err());
        assert!(parse_declaration("struct P { x: f64, x: f64 }").unwrap_err().contains("twice"));
    }
}
