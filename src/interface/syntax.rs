//! Rust type spellings: tokens, the macro's canonical printing, and parsing
//! into a small type tree.
//!
//! `#[plugin_interface]` hashes each type as rustc prints its tokens:
//! tokens separated by one space, except that `,` and `;` follow a
//! non-punctuation token directly, and groups have no inner padding
//! (`Vec < u8 >`, `(i64, i64)`, `[u8; 4]`, `Vec < u8 > , u32`). Users may
//! write any spacing; [`canonical`] reproduces the macro's.

use std::fmt::Write;

/// One token of a type spelling; brackets form nested groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Token {
    /// An identifier, number or lifetime (`u8`, `4`, `'static`).
    Word(String),
    /// Punctuation: `::`, `->`, or one character such as `<`, `,`, `&`.
    Punct(&'static str),
    /// `( … )`, `[ … ]` or `{ … }`.
    Group(Delim, Vec<Token>),
}

/// The bracket of a [`Token::Group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delim {
    Paren,
    Bracket,
    Brace,
}

impl Delim {
    fn open(self) -> char {
        match self {
            Delim::Paren => '(',
            Delim::Bracket => '[',
            Delim::Brace => '{',
        }
    }

    fn close(self) -> char {
        match self {
            Delim::Paren => ')',
            Delim::Bracket => ']',
            Delim::Brace => '}',
        }
    }
}

/// Deepest nesting of brackets and `< >` a type spelling may have. Types
/// are parsed, printed, compared and dropped by recursion, so depth is what
/// bounds the stack they take; real interfaces nest a handful of levels.
pub const MAX_NESTING: usize = 100;

/// Longest spelling (signature string or type declaration), in bytes.
pub const MAX_SPELLING: usize = 64 << 10;

const PUNCTS: &[&str] = &["::", "->", "<", ">", ",", ";", ":", "&", "!", "=", "#", "*", "+", "-", ".", "?", "/"];

/// Splits `text` into tokens; refuses text longer than [`MAX_SPELLING`] or
/// nested deeper than [`MAX_NESTING`].
pub(crate) fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    if text.len() > MAX_SPELLING {
        return Err(format!("{} bytes is longer than the limit of {MAX_SPELLING} bytes", text.len()));
    }
    let mut chars = text.char_indices().peekable();
    let mut stack: Vec<(Delim, Vec<Token>)> = vec![(Delim::Paren, Vec::new())];
    // Open `<` not yet closed, over all levels: `Vec<Vec<…>>` nests like groups.
    let mut angles = 0usize;
    while let Some(&(at, c)) = chars.peek() {
        if stack.len() - 1 + angles > MAX_NESTING {
            return Err(format!("nested deeper than the limit of {MAX_NESTING} levels (at byte {at})"));
        }
        let rest = &text[at..];
        let current = &mut stack.last_mut().expect("the outermost level stays").1;
        if c.is_whitespace() {
            chars.next();
        } else if c.is_ascii_alphanumeric() || c == '_' || c == '\'' {
            let start = at;
            chars.next();
            let mut end = at + c.len_utf8();
            while let Some(&(i, c)) = chars.peek() {
                if !(c.is_ascii_alphanumeric() || c == '_') {
                    break;
                }
                end = i + c.len_utf8();
                chars.next();
            }
            if c == '\'' && end == start + 1 {
                return Err(format!("a lone `'` at byte {at}"));
            }
            current.push(Token::Word(text[start..end].to_string()));
        } else if let Some(delim) = [Delim::Paren, Delim::Bracket, Delim::Brace].into_iter().find(|d| d.open() == c) {
            chars.next();
            stack.push((delim, Vec::new()));
        } else if let Some(delim) = [Delim::Paren, Delim::Bracket, Delim::Brace].into_iter().find(|d| d.close() == c) {
            chars.next();
            if stack.len() == 1 {
                return Err(format!("unmatched `{c}` at byte {at}"));
            }
            let (open, inner) = stack.pop().expect("checked above");
            if open != delim {
                return Err(format!("`{}` closed by `{c}` at byte {at}", open.open()));
            }
            stack.last_mut().expect("the outermost level stays").1.push(Token::Group(delim, inner));
        } else if let Some(punct) = PUNCTS.iter().find(|p| rest.starts_with(**p)) {
            for _ in 0..punct.len() {
                chars.next();
            }
            match *punct {
                "<" => angles += 1,
                ">" => angles = angles.saturating_sub(1),
                _ => {}
            }
            current.push(Token::Punct(punct));
        } else {
            return Err(format!("unexpected character {c:?} at byte {at}"));
        }
    }
    if stack.len() > 1 {
        return Err(format!("unclosed `{}`", stack.last().expect("len > 1").0.open()));
    }
    Ok(stack.pop().expect("the outermost level stays").1)
}

/// Prints tokens the way rustc prints them inside `#[plugin_interface]`.
pub(crate) fn canonical(tokens: &[Token]) -> String {
    let mut out = String::new();
    write_canonical(&mut out, tokens);
    out
}

fn write_canonical(out: &mut String, tokens: &[Token]) {
    for (i, token) in tokens.iter().enumerate() {
        let tight = matches!(token, Token::Punct("," | ";" | "."))
            && i > 0
            && !matches!(tokens[i - 1], Token::Punct(_));
        if i > 0 && !tight {
            out.push(' ');
        }
        match token {
            Token::Word(word) => out.push_str(word),
            Token::Punct(punct) => out.push_str(punct),
            Token::Group(delim, inner) => {
                out.push(delim.open());
                write_canonical(out, inner);
                out.push(delim.close());
            }
        }
    }
}

/// Prints tokens the way people write Rust (`Vec<u8>`, `{ x: f64 }`), for
/// declarations shown to readers; hashes never see this form.
pub(crate) fn pretty(tokens: &[Token]) -> String {
    let mut out = String::new();
    write_pretty(&mut out, tokens);
    out
}

fn write_pretty(out: &mut String, tokens: &[Token]) {
    for (i, token) in tokens.iter().enumerate() {
        if i > 0 && pretty_space(&tokens[i - 1], token) {
            out.push(' ');
        }
        match token {
            Token::Word(word) => out.push_str(word),
            Token::Punct(punct) => out.push_str(punct),
            Token::Group(Delim::Brace, inner) if !inner.is_empty() => {
                out.push_str("{ ");
                write_pretty(out, inner);
                out.push_str(" }");
            }
            Token::Group(delim, inner) => {
                out.push(delim.open());
                write_pretty(out, inner);
                out.push(delim.close());
            }
        }
    }
}

fn pretty_space(previous: &Token, current: &Token) -> bool {
    match (previous, current) {
        (_, Token::Punct("," | ";" | ":" | "<" | ">" | "::")) => false,
        (Token::Punct("<" | "::" | "&"), _) => false,
        (Token::Word(_), Token::Group(Delim::Paren | Delim::Bracket, _)) => false,
        _ => true,
    }
}

/// Splits tokens at the `separator` punctuation found outside `< >`.
pub(crate) fn split_top_level<'a>(tokens: &'a [Token], separator: &str) -> Vec<&'a [Token]> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, token) in tokens.iter().enumerate() {
        match token {
            Token::Punct("<") => depth += 1,
            Token::Punct(">") => depth = depth.saturating_sub(1),
            Token::Punct(p) if *p == separator && depth == 0 => {
                parts.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&tokens[start..]);
    parts
}

/// Like [`split_top_level`], but a trailing separator ends the list instead
/// of starting an empty item; also says whether there was one.
pub(crate) fn split_list<'a>(tokens: &'a [Token], separator: &str) -> (Vec<&'a [Token]>, bool) {
    if tokens.is_empty() {
        return (Vec::new(), false);
    }
    let mut parts = split_top_level(tokens, separator);
    let trailing = parts.last().is_some_and(|last| last.is_empty());
    if trailing {
        parts.pop();
    }
    (parts, trailing)
}

/// A parsed type, before names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TypeExpr {
    /// `a::b::Name<Args…>`; only the last segment may have arguments.
    Path { segments: Vec<String>, args: Vec<TypeExpr> },
    /// `()` and `(A, B, …)`.
    Tuple(Vec<TypeExpr>),
    /// `[T; N]`.
    Array(Box<TypeExpr>, usize),
}

impl TypeExpr {
    /// The last path segment, for types that are paths.
    pub(crate) fn last_segment(&self) -> Option<&str> {
        match self {
            TypeExpr::Path { segments, .. } => segments.last().map(String::as_str),
            _ => None,
        }
    }

    /// `T` when this is `Name<T>` with the given last segment and one argument.
    pub(crate) fn single_arg_of(&self, name: &str) -> Option<&TypeExpr> {
        match self {
            TypeExpr::Path { segments, args } if segments.last().is_some_and(|s| s == name) && args.len() == 1 => {
                Some(&args[0])
            }
            _ => None,
        }
    }
}

/// Parses one type spelling.
pub(crate) fn parse_type(tokens: &[Token]) -> Result<TypeExpr, String> {
    match tokens {
        [] => Err("a type is missing".to_string()),
        [Token::Group(Delim::Paren, inner)] => {
            let (items, trailing) = split_list(inner, ",");
            let mut types = items.into_iter().map(parse_type).collect::<Result<Vec<_>, _>>()?;
            if types.len() == 1 && !trailing {
                Ok(types.pop().expect("one item"))
            } else {
                Ok(TypeExpr::Tuple(types))
            }
        }
        [Token::Group(Delim::Bracket, inner)] => {
            let parts = split_top_level(inner, ";");
            let [element, length] = parts.as_slice() else {
                return Err(format!("`[{}]` is a slice; use Vec<T> or an array [T; N]", canonical(inner)));
            };
            let length = match length {
                [Token::Word(word)] => parse_array_length(word),
                _ => None,
            }
            .ok_or_else(|| format!("array length `{}` is not an integer literal", canonical(length)))?;
            Ok(TypeExpr::Array(Box::new(parse_type(element)?), length))
        }
        [Token::Punct("&"), ..] => Err(format!(
            "`{}` is a reference; plugin arguments and results must be owned types",
            canonical(tokens)
        )),
        _ => parse_path(tokens),
    }
}

fn parse_array_length(word: &str) -> Option<usize> {
    let digits = word.strip_suffix("usize").unwrap_or(word).replace('_', "");
    digits.parse().ok()
}

fn parse_path(tokens: &[Token]) -> Result<TypeExpr, String> {
    let unexpected = || format!("`{}` is not a type this host understands", canonical(tokens));
    let mut segments = Vec::new();
    // A leading `::` is refused: after the `:` of a signature or a field it
    // would print as `:::`, which no parser reads back.
    let mut rest = tokens;
    loop {
        let [Token::Word(word), tail @ ..] = rest else { return Err(unexpected()) };
        // Path segments may be `crate`, `self` or `super`.
        if !is_identifier(word) && !matches!(word.as_str(), "crate" | "self" | "super" | "Self") {
            return Err(unexpected());
        }
        segments.push(word.clone());
        rest = tail;
        match rest {
            [] => return Ok(TypeExpr::Path { segments, args: Vec::new() }),
            [Token::Punct("::"), tail @ ..] => rest = tail,
            [Token::Punct("<"), inner @ .., Token::Punct(">")] => {
                let (items, _) = split_list(inner, ",");
                if items.is_empty() || items.iter().any(|item| item.is_empty()) {
                    return Err(unexpected());
                }
                let args = items.into_iter().map(parse_type).collect::<Result<Vec<_>, _>>()?;
                return Ok(TypeExpr::Path { segments, args });
            }
            _ => return Err(unexpected()),
        }
    }
}

/// Rust's strict keywords: not names of methods, types, fields or variants.
const KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static",
    "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while",
];

/// Whether `word` is a Rust identifier (ASCII, not a keyword).
pub(crate) fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && word != "_"
        && !KEYWORDS.contains(&word)
}

/// Writes `items` separated by `separator`.
pub(crate) fn join<T: std::fmt::Display>(out: &mut String, items: &[T], separator: &str) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(separator);
        }
        let _ = write!(out, "{item}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(text: &str) -> String {
        canonical(&tokenize(text).unwrap())
    }

    #[test]
    fn prints_like_rustc() {
        // The table of fidius-compat §3.2.
        for (source, expected) in [
            ("Vec<u8>", "Vec < u8 >"),
            ("Option<String>", "Option < String >"),
            ("(i64,i64)", "(i64, i64)"),
            ("&str", "& str"),
            ("&'static str", "& 'static str"),
            ("&[u8]", "& [u8]"),
            ("Result<Vec<u8>, PluginError>", "Result < Vec < u8 > , PluginError >"),
            ("Result<(),PluginError>", "Result < (), PluginError >"),
            ("Result<u64, fidius::PluginError>", "Result < u64, fidius :: PluginError >"),
            ("Option<Vec<u8>>", "Option < Vec < u8 > >"),
            ("std::collections::HashMap<String,u32>", "std :: collections :: HashMap < String, u32 >"),
            ("[u8;4]", "[u8; 4]"),
            ("( String , )", "(String,)"),
            ("Vec<(String, u32)>", "Vec < (String, u32) >"),
            ("Vec < u8 >", "Vec < u8 >"),
        ] {
            assert_eq!(canon(source), expected, "{source}");
        }
    }

    #[test]
    fn prints_for_people() {
        let pretty = |text: &str| pretty(&tokenize(text).unwrap());
        assert_eq!(pretty("enum Shape{A,B(f64),C{w:std::vec::Vec<u8>,h:[u8;2]}}"), "enum Shape { A, B(f64), C { w: std::vec::Vec<u8>, h: [u8; 2] } }");
        assert_eq!(pretty("struct W ( Option < Vec < u8 > > , (u8,) )"), "struct W(Option<Vec<u8>>, (u8,))");
        assert_eq!(pretty("struct M;"), "struct M;");
    }

    #[test]
    fn parses_types() {
        let parse = |text: &str| parse_type(&tokenize(text).unwrap());
        assert_eq!(parse("()").unwrap(), TypeExpr::Tuple(vec![]));
        assert_eq!(parse("(u8)").unwrap(), parse("u8").unwrap());
        assert!(matches!(parse("(u8,)").unwrap(), TypeExpr::Tuple(items) if items.len() == 1));
        assert!(matches!(parse("[u16; 3]").unwrap(), TypeExpr::Array(_, 3)));
        assert_eq!(parse("std::vec::Vec<u8>").unwrap().last_segment(), Some("Vec"));
        assert!(parse("&str").unwrap_err().contains("reference"));
        assert!(parse("[u8]").unwrap_err().contains("slice"));
        assert!(parse("Vec<>").is_err());
        assert!(parse("Vec<u8").is_err());
        assert!(parse("::u8").is_err(), "prints as `:::u8` after a `:`");
        assert!(!is_identifier("pub") && !is_identifier("struct") && !is_identifier("r#x"));
        assert_eq!(parse("crate::types::Point").unwrap().last_segment(), Some("Point"));
        assert!(tokenize("Vec<u8)").is_err());
        assert!(tokenize("(u8").is_err());
        assert!(tokenize("u8 @").is_err());
    }

    #[test]
    fn refuses_deep_or_long_spellings() {
        let deep = |open: &str, close: &str, n: usize| format!("{}u8{}", open.repeat(n), close.repeat(n));
        for (open, close) in [("Vec<", ">"), ("(", ",)"), ("[", "; 1]"), ("Option<(", ",)>")] {
            assert!(tokenize(&deep(open, close, 40)).is_ok(), "{open}");
            let err = tokenize(&deep(open, close, 5_000)).unwrap_err();
            assert!(err.contains("nested deeper than the limit of 100 levels"), "{err}");
        }
        assert!(tokenize(&"u8 ".repeat(MAX_SPELLING)).unwrap_err().contains("longer than the limit"));
    }
}
