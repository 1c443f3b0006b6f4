//! JSON ↔ component values, lowered and lifted with the export's own types.
//!
//! The JSON shapes are those of JSON calls on every runtime (serde's
//! defaults, see docs/interfaces.md). Names follow fidius's WIT mapping: record
//! fields are kebab-case in WIT and snake_case in JSON (`y-pos` ↔ `y_pos`),
//! variant cases kebab-case in WIT and PascalCase in JSON (`rect` ↔
//! `Rect`). Maps travel as `list<tuple<K, V>>`; the interface's type says
//! whether a list of pairs is a map (a JSON object for string keys).

use crate::interface::json::MAX_DEPTH;
use crate::interface::kebab_case as kebab;
use crate::interface::types::{Fields, Shape, TypeDef, WireType};
use serde_json::{Map, Number, Value};
use wasmtime::component::{Type, Val};

type Lowered = std::result::Result<Val, String>;

/// Lowers a JSON value to a component value of type `ty`.
pub fn lower(ty: &Type, json: &Value, depth: usize) -> Lowered {
    if depth > MAX_DEPTH {
        return Err(format!("nested deeper than {MAX_DEPTH} levels"));
    }
    let expected = |what: &str| format!("expected {what}, found {}", describe(json));
    let int = |min: i128, max: i128, what: &str| -> std::result::Result<i128, String> {
        let n = json
            .as_i64()
            .map(i128::from)
            .or_else(|| json.as_u64().map(i128::from))
            .ok_or_else(|| expected(&format!("{what} (an integer)")))?;
        if n < min || n > max {
            return Err(format!("{n} is out of range for {what} ({min}..={max})"));
        }
        Ok(n)
    };
    Ok(match ty {
        Type::Bool => Val::Bool(json.as_bool().ok_or_else(|| expected("bool"))?),
        Type::S8 => Val::S8(int(i8::MIN.into(), i8::MAX.into(), "i8")? as i8),
        Type::U8 => Val::U8(int(0, u8::MAX.into(), "u8")? as u8),
        Type::S16 => Val::S16(int(i16::MIN.into(), i16::MAX.into(), "i16")? as i16),
        Type::U16 => Val::U16(int(0, u16::MAX.into(), "u16")? as u16),
        Type::S32 => Val::S32(int(i32::MIN.into(), i32::MAX.into(), "i32")? as i32),
        Type::U32 => Val::U32(int(0, u32::MAX.into(), "u32")? as u32),
        Type::S64 => Val::S64(int(i64::MIN.into(), i64::MAX.into(), "i64")? as i64),
        Type::U64 => Val::U64(int(0, u64::MAX.into(), "u64")? as u64),
        Type::Float32 => {
            let f = json.as_f64().ok_or_else(|| expected("f32"))?;
            if f.is_finite() && (f as f32).is_infinite() {
                return Err(format!("{f} is out of range for f32"));
            }
            Val::Float32(f as f32)
        }
        Type::Float64 => Val::Float64(json.as_f64().ok_or_else(|| expected("f64"))?),
        Type::Char => {
            let text = json.as_str().ok_or_else(|| expected("char"))?;
            let mut chars = text.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(format!("expected char (a string of one character), found \"{}\"", crate::error::Quoted(text))),
            }
        }
        Type::String => Val::String(json.as_str().ok_or_else(|| expected("String"))?.to_string()),
        Type::List(list) => {
            let item = list.ty();
            match json {
                Value::Array(items) => Val::List(lower_all(&item, items, depth)?),
                // A string-keyed map: list<tuple<string, V>>.
                Value::Object(object) => Val::List(lower_pairs(&item, object, depth)?),
                _ => return Err(expected("an array")),
            }
        }
        Type::Map(map) => {
            let (key, value) = (map.key(), map.value());
            let pairs: Vec<(Val, Val)> = match json {
                Value::Object(object) => object
                    .iter()
                    .map(|(k, v)| Ok((lower(&key, &Value::String(k.clone()), depth + 1)?, lower(&value, v, depth + 1)?)))
                    .collect::<std::result::Result<_, String>>()?,
                Value::Array(items) => items
                    .iter()
                    .map(|pair| match pair.as_array().map(Vec::as_slice) {
                        Some([k, v]) => Ok((lower(&key, k, depth + 1)?, lower(&value, v, depth + 1)?)),
                        _ => Err(format!("expected a [key, value] pair, found {}", describe(pair))),
                    })
                    .collect::<std::result::Result<_, String>>()?,
                _ => return Err(expected("an object or an array of [key, value] pairs")),
            };
            Val::Map(pairs)
        }
        Type::Record(record) => {
            let object = json.as_object().ok_or_else(|| expected("an object"))?;
            let mut fields = Vec::new();
            for field in record.fields() {
                let key = field.name.replace('-', "_");
                let value = object.get(&key).ok_or_else(|| format!("missing field `{key}`"))?;
                fields.push((field.name.to_string(), lower(&field.ty, value, depth + 1).map_err(|e| format!(".{key}: {e}"))?));
            }
            if object.len() != fields.len() {
                let unknown = object.keys().find(|k| !fields.iter().any(|(f, _)| f.replace('-', "_") == **k));
                return Err(format!("no field `{}`", unknown.map_or("?", String::as_str)));
            }
            Val::Record(fields)
        }
        Type::Tuple(tuple) => {
            let types: Vec<Type> = tuple.types().collect();
            if types.is_empty() && json.is_null() {
                return Ok(Val::Tuple(Vec::new()));
            }
            let items = json.as_array().ok_or_else(|| expected(&format!("an array of {}", types.len())))?;
            if items.len() != types.len() {
                return Err(expected(&format!("an array of {}", types.len())));
            }
            Val::Tuple(
                types
                    .iter()
                    .zip(items)
                    .enumerate()
                    .map(|(i, (t, v))| lower(t, v, depth + 1).map_err(|e| format!("[{i}]: {e}")))
                    .collect::<std::result::Result<_, _>>()?,
            )
        }
        Type::Variant(variant) => {
            let (tag, payload) = tagged(json)?;
            let case = variant
                .cases()
                .find(|c| c.name == kebab(tag))
                .ok_or_else(|| format!("no variant `{tag}`"))?;
            let payload = match (&case.ty, payload) {
                (None, None | Some(Value::Null)) => None,
                (None, Some(other)) => return Err(format!("variant `{tag}` has no payload, found {}", describe(other))),
                (Some(ty), Some(value)) => Some(Box::new(lower(ty, value, depth + 1).map_err(|e| format!(".{tag}: {e}"))?)),
                (Some(_), None) => return Err(format!("variant `{tag}` needs a payload")),
            };
            Val::Variant(case.name.to_string(), payload)
        }
        Type::Enum(enumeration) => {
            let tag = json.as_str().ok_or_else(|| expected("a variant name"))?;
            let name = enumeration.names().find(|n| *n == kebab(tag)).ok_or_else(|| format!("no variant `{tag}`"))?;
            Val::Enum(name.to_string())
        }
        Type::Option(option) => match json {
            Value::Null => Val::Option(None),
            value => Val::Option(Some(Box::new(lower(&option.ty(), value, depth + 1)?))),
        },
        other => return Err(format!("the component uses a type JSON calls cannot produce ({other:?})")),
    })
}

fn lower_all(item: &Type, items: &[Value], depth: usize) -> std::result::Result<Vec<Val>, String> {
    items.iter().enumerate().map(|(i, v)| lower(item, v, depth + 1).map_err(|e| format!("[{i}]: {e}"))).collect()
}

fn lower_pairs(item: &Type, object: &Map<String, Value>, depth: usize) -> std::result::Result<Vec<Val>, String> {
    object
        .iter()
        .map(|(k, v)| lower(item, &Value::Array(vec![Value::String(k.clone()), v.clone()]), depth + 1))
        .collect()
}

/// `"Tag"` or `{"Tag": payload}`.
fn tagged(json: &Value) -> std::result::Result<(&str, Option<&Value>), String> {
    match json {
        Value::String(tag) => Ok((tag, None)),
        Value::Object(object) if object.len() == 1 => {
            let (tag, payload) = object.iter().next().expect("one entry");
            Ok((tag, Some(payload)))
        }
        other => Err(format!("expected a variant name or an object with one variant key, found {}", describe(other))),
    }
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(_) => "a string".into(),
        Value::Array(items) => format!("an array of {}", items.len()),
        Value::Object(_) => "an object".into(),
    }
}

fn pascal(kebab: &str) -> String {
    kebab
        .split('-')
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase().to_string() + chars.as_str()).unwrap_or_default()
        })
        .collect()
}

/// Lifts a component value to JSON. `hint` is the interface's type for it,
/// when known: it tells maps from lists of pairs.
pub fn lift(val: &Val, hint: Option<&WireType>, types: &[TypeDef]) -> std::result::Result<Value, String> {
    Ok(match val {
        Val::Bool(b) => Value::Bool(*b),
        Val::S8(n) => Value::from(*n),
        Val::U8(n) => Value::from(*n),
        Val::S16(n) => Value::from(*n),
        Val::U16(n) => Value::from(*n),
        Val::S32(n) => Value::from(*n),
        Val::U32(n) => Value::from(*n),
        Val::S64(n) => Value::from(*n),
        Val::U64(n) => Value::from(*n),
        Val::Float32(f) => Number::from_f64(f64::from(*f)).map_or(Value::Null, Value::Number),
        Val::Float64(f) => Number::from_f64(*f).map_or(Value::Null, Value::Number),
        Val::Char(c) => Value::String(c.to_string()),
        Val::String(s) => Value::String(s.clone()),
        Val::List(items) | Val::FixedLengthList(items) => match hint {
            Some(WireType::Map(key, value)) => lift_map(items.iter().map(pair_of), key, value, types)?,
            _ => Value::Array(
                items.iter().map(|v| lift(v, item_hint(hint), types)).collect::<std::result::Result<_, _>>()?,
            ),
        },
        Val::Map(pairs) => match hint {
            Some(WireType::Map(key, value)) => lift_map(pairs.iter().map(|(k, v)| Some((k, v))), key, value, types)?,
            _ => return Err("a map where the interface expects no map".into()),
        },
        Val::Record(fields) => {
            let mut object = Map::new();
            for (name, value) in fields {
                let key = name.replace('-', "_");
                object.insert(key.clone(), lift(value, field_hint(hint, types, &key).as_ref(), types)?);
            }
            Value::Object(object)
        }
        Val::Tuple(items) if items.is_empty() => Value::Null,
        Val::Tuple(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| lift(v, tuple_hint(hint, types, i).as_ref(), types))
                .collect::<std::result::Result<_, _>>()?,
        ),
        Val::Variant(case, payload) => {
            let tag = pascal(case);
            match payload {
                None => Value::String(tag),
                Some(payload) => {
                    let inner = variant_hint(hint, types, &tag);
                    let mut object = Map::new();
                    object.insert(tag, lift(payload, inner.as_ref(), types)?);
                    Value::Object(object)
                }
            }
        }
        Val::Enum(case) => Value::String(pascal(case)),
        Val::Option(None) => Value::Null,
        Val::Option(Some(v)) => lift(v, item_hint(hint), types)?,
        Val::Result(_) | Val::Flags(_) | Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            return Err(format!("the component returned a value JSON calls cannot express ({val:?})"))
        }
    })
}

fn pair_of(val: &Val) -> Option<(&Val, &Val)> {
    match val {
        Val::Tuple(items) if items.len() == 2 => Some((&items[0], &items[1])),
        _ => None,
    }
}

fn lift_map<'a>(
    pairs: impl Iterator<Item = Option<(&'a Val, &'a Val)>>,
    key: &WireType,
    value: &WireType,
    types: &[TypeDef],
) -> std::result::Result<Value, String> {
    let string_keys = *key == WireType::String;
    let mut object = Map::new();
    let mut list = Vec::new();
    for pair in pairs {
        let (k, v) = pair.ok_or("a map entry is not a (key, value) pair")?;
        let (k, v) = (lift(k, Some(key), types)?, lift(v, Some(value), types)?);
        match (string_keys, k) {
            (true, Value::String(k)) => {
                object.insert(k, v);
            }
            (_, k) => list.push(Value::Array(vec![k, v])),
        }
    }
    Ok(if string_keys { Value::Object(object) } else { Value::Array(list) })
}

fn item_hint(hint: Option<&WireType>) -> Option<&WireType> {
    match hint {
        Some(WireType::Seq(item) | WireType::Option(item) | WireType::Array(item, _)) => Some(item),
        _ => None,
    }
}

fn tuple_hint(hint: Option<&WireType>, types: &[TypeDef], index: usize) -> Option<WireType> {
    match hint {
        Some(WireType::Tuple(items)) => items.get(index).cloned(),
        Some(WireType::Named(i, _)) => match &types[*i].shape {
            Shape::Struct(Fields::Unnamed(items)) => items.get(index).cloned(),
            _ => None,
        },
        _ => None,
    }
}

fn field_hint(hint: Option<&WireType>, types: &[TypeDef], field: &str) -> Option<WireType> {
    match hint {
        Some(WireType::Named(i, _)) => match &types[*i].shape {
            Shape::Struct(Fields::Named(fields)) => fields.iter().find(|(n, _)| n == field).map(|(_, t)| t.clone()),
            _ => None,
        },
        _ => None,
    }
}

fn variant_hint(hint: Option<&WireType>, types: &[TypeDef], tag: &str) -> Option<WireType> {
    let Some(WireType::Named(i, _)) = hint else { return None };
    let Shape::Enum(variants) = &types[*i].shape else { return None };
    let variant = variants.iter().find(|v| v.name == tag)?;
    match &variant.fields {
        Fields::Unnamed(items) if items.len() == 1 => Some(items[0].clone()),
        Fields::Unnamed(items) => Some(WireType::Tuple(items.clone())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(pascal("rect"), "Rect");
        assert_eq!(pascal("big-rect"), "BigRect");
    }
}
