//! JSON values (in the shapes `interface::json` defines) ↔ Python objects,
//! guided by the interface's types.
//!
//! Into Python, as the fidius value bridge does, minus its gaps: `()` and
//! `None` are `None`; integers `int`; floats `float`; `char` and `String`
//! `str`; `Vec<u8>` `bytes`; sequences, tuples and arrays `list`; structs
//! `dict`s by field name (a newtype struct is its inner value, a tuple struct
//! a `list`); maps with `str`, `char`, integer or `bool` keys `dict`s with
//! keys of that type, other maps lists of `[key, value]` pairs; enum
//! variants `{"Name": payload}` (`None` for a unit variant).
//!
//! Back from Python the same shapes are accepted, and also: `bytes`,
//! `bytearray` or a list of ints for `Vec<u8>`; tuples wherever lists are;
//! `"Name"` for a unit variant; a struct as an object with attributes; map
//! keys given as strings (`{"1": …}` for an integer map), and any map as a
//! list of pairs.

use crate::interface::json::MAX_DEPTH;
use crate::interface::types::{Fields, IntKind, Shape, TypeDef, Variant, WireType};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Number, Value};

/// A conversion failure: where, and what.
pub struct Mismatch(pub String);

type Result<T> = std::result::Result<T, Mismatch>;

fn python_error(e: PyErr) -> Mismatch {
    Mismatch(format!("Python error: {e}"))
}

/// Builds Python arguments from JSON values already checked against the
/// types (by `json::encode_arg_values`).
pub fn to_python<'py>(py: Python<'py>, types: &[TypeDef], ty: &WireType, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match (ty, value) {
        (_, Value::Null) => py.None().into_bound(py),
        (WireType::Bool, Value::Bool(b)) => PyBool::new(py, *b).to_owned().into_any(),
        (WireType::Int(_), Value::Number(n)) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        },
        // 128-bit integers beyond 64 bits travel as decimal strings.
        (WireType::Int(kind), Value::String(s)) if kind.signed() => s.parse::<i128>().unwrap_or_default().into_pyobject(py)?.into_any(),
        (WireType::Int(_), Value::String(s)) => s.parse::<u128>().unwrap_or_default().into_pyobject(py)?.into_any(),
        (WireType::F32 | WireType::F64, Value::Number(n)) => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        (WireType::Bytes, Value::Array(items)) => {
            let bytes: Vec<u8> = items.iter().map(|v| v.as_u64().unwrap_or(0) as u8).collect();
            PyBytes::new(py, &bytes).into_any()
        }
        (WireType::Seq(item) | WireType::Array(item, _), Value::Array(items)) => list(py, types, items.iter().map(|v| (&**item, v)))?,
        (WireType::Option(inner), v) => to_python(py, types, inner, v)?,
        (WireType::Tuple(items), Value::Array(values)) => list(py, types, items.iter().zip(values))?,
        (WireType::Map(key, val), Value::Object(entries)) => {
            let dict = PyDict::new(py);
            for (k, v) in entries {
                dict.set_item(map_key(py, types, key, &Value::String(k.clone()))?, to_python(py, types, val, v)?)?;
            }
            dict.into_any()
        }
        (WireType::Map(key, val), Value::Array(pairs)) if dict_keys(key) => {
            let dict = PyDict::new(py);
            for pair in pairs {
                if let Value::Array(kv) = pair {
                    if let [k, v] = kv.as_slice() {
                        dict.set_item(map_key(py, types, key, k)?, to_python(py, types, val, v)?)?;
                    }
                }
            }
            dict.into_any()
        }
        // Keys Python cannot hash as they arrive (structs, enums, lists):
        // a list of [key, value] pairs.
        (WireType::Map(key, val), Value::Array(pairs)) => {
            let items = pairs
                .iter()
                .map(|pair| match pair {
                    Value::Array(kv) if kv.len() == 2 => {
                        Ok(PyList::new(py, [to_python(py, types, key, &kv[0])?, to_python(py, types, val, &kv[1])?])?.into_any())
                    }
                    _ => Ok(py.None().into_bound(py)),
                })
                .collect::<PyResult<Vec<_>>>()?;
            PyList::new(py, items)?.into_any()
        }
        (WireType::Named(index, _), v) => match &types[*index].shape {
            Shape::Struct(fields) => fields_to_python(py, types, fields, v)?,
            Shape::Enum(variants) => {
                let (name, payload) = match v {
                    Value::String(name) => (name.as_str(), None),
                    Value::Object(tagged) => match tagged.iter().next() {
                        Some((name, payload)) => (name.as_str(), Some(payload)),
                        None => return Ok(py.None().into_bound(py)),
                    },
                    _ => return Ok(py.None().into_bound(py)),
                };
                let fields = variants.iter().find(|variant| variant.name == name).map(|variant| &variant.fields);
                let payload = match (fields, payload) {
                    (Some(fields), Some(payload)) => fields_to_python(py, types, fields, payload)?,
                    _ => py.None().into_bound(py),
                };
                let dict = PyDict::new(py);
                dict.set_item(name, payload)?;
                dict.into_any()
            }
        },
        (_, Value::Bool(b)) => PyBool::new(py, *b).to_owned().into_any(),
        (_, Value::String(s)) => PyString::new(py, s).into_any(),
        (_, other) => PyString::new(py, &other.to_string()).into_any(),
    })
}

/// A JSON value as `json.loads` would give it: how fidius hands a Python
/// plugin its configuration (`serde_json` of the config, so a unit variant
/// is `"Name"`), with no type to guide it.
pub fn json_to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.into_pyobject(py)?.into_any(),
            (None, Some(u)) => u.into_pyobject(py)?.into_any(),
            _ => PyFloat::new(py, n.as_f64().unwrap_or(f64::NAN)).into_any(),
        },
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => PyList::new(py, items.iter().map(|v| json_to_python(py, v)).collect::<PyResult<Vec<_>>>()?)?.into_any(),
        Value::Object(entries) => {
            let dict = PyDict::new(py);
            for (k, v) in entries {
                dict.set_item(k, json_to_python(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

fn list<'a, 'py>(py: Python<'py>, types: &[TypeDef], items: impl Iterator<Item = (&'a WireType, &'a Value)>) -> PyResult<Bound<'py, PyAny>> {
    let objects = items.map(|(ty, v)| to_python(py, types, ty, v)).collect::<PyResult<Vec<_>>>()?;
    Ok(PyList::new(py, objects)?.into_any())
}

/// Whether maps with keys of type `key` arrive as a `dict` (keys Python
/// can hash as they arrive) rather than a list of pairs.
fn dict_keys(key: &WireType) -> bool {
    matches!(key, WireType::String | WireType::Char | WireType::Int(_) | WireType::Bool)
}

/// A map key as Python: its own type (str, int or bool).
fn map_key<'py>(py: Python<'py>, types: &[TypeDef], ty: &WireType, key: &Value) -> PyResult<Bound<'py, PyAny>> {
    let key = match (ty, key) {
        // Object keys are strings; integer and bool keys are numbers again.
        (WireType::Int(_) | WireType::Bool | WireType::F32 | WireType::F64, Value::String(s)) => {
            serde_json::from_str(s).unwrap_or_else(|_| key.clone())
        }
        _ => key.clone(),
    };
    to_python(py, types, ty, &key)
}

fn fields_to_python<'py>(py: Python<'py>, types: &[TypeDef], fields: &Fields, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match (fields, value) {
        (Fields::Named(named), Value::Object(object)) => {
            let dict = PyDict::new(py);
            for (name, ty) in named {
                dict.set_item(name, to_python(py, types, ty, object.get(name).unwrap_or(&Value::Null))?)?;
            }
            dict.into_any()
        }
        (Fields::Unnamed(items), v) if items.len() == 1 => to_python(py, types, &items[0], v)?,
        (Fields::Unnamed(items), Value::Array(values)) => list(py, types, items.iter().zip(values))?,
        _ => py.None().into_bound(py),
    })
}

/// Reads a plugin's result as the JSON shape of `ty`.
pub fn from_python(types: &[TypeDef], ty: &WireType, object: &Bound<'_, PyAny>, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(Mismatch(format!("nested deeper than {MAX_DEPTH} levels")));
    }
    let expected = |what: &str| Mismatch(format!("expected {what}, found {}", type_name(object)));
    Ok(match ty {
        WireType::Unit => Value::Null,
        WireType::Bool => Value::Bool(object.cast::<PyBool>().map_err(|_| expected("bool"))?.is_true()),
        WireType::Int(kind) => integer(object, *kind).ok_or_else(|| expected(&format!("an int that fits {kind}")))?,
        WireType::F32 | WireType::F64 => {
            if object.is_instance_of::<PyBool>() || !(object.is_instance_of::<PyFloat>() || object.is_instance_of::<PyInt>()) {
                return Err(expected("a float"));
            }
            let f: f64 = object.extract().map_err(|_| expected("a float"))?;
            Number::from_f64(f).map_or(Value::Null, Value::Number)
        }
        WireType::Char => {
            let s = object.cast::<PyString>().map_err(|_| expected("a one-character str"))?.to_str().map_err(python_error)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Value::String(c.to_string()),
                _ => return Err(expected("a one-character str")),
            }
        }
        WireType::String => Value::String(
            object.cast::<PyString>().map_err(|_| expected("a str"))?.to_str().map_err(python_error)?.to_string(),
        ),
        WireType::Bytes => {
            let bytes: Vec<u8> = if let Ok(b) = object.cast::<PyBytes>() {
                b.as_bytes().to_vec()
            } else if let Ok(b) = object.cast::<PyByteArray>() {
                b.to_vec()
            } else {
                let items = sequence(object).ok_or_else(|| expected("bytes"))?;
                items.iter().map(|i| i.extract::<u8>()).collect::<PyResult<_>>().map_err(|_| expected("bytes or a list of ints 0..=255"))?
            };
            Value::Array(bytes.into_iter().map(Value::from).collect())
        }
        WireType::Seq(item) => {
            let items = sequence(object).ok_or_else(|| expected("a list"))?;
            Value::Array(items.iter().enumerate().map(|(i, o)| at(i, from_python(types, item, o, depth + 1))).collect::<Result<_>>()?)
        }
        WireType::Array(item, n) => {
            let items = sequence(object).filter(|items| items.len() == *n).ok_or_else(|| expected(&format!("a list of {n}")))?;
            Value::Array(items.iter().enumerate().map(|(i, o)| at(i, from_python(types, item, o, depth + 1))).collect::<Result<_>>()?)
        }
        WireType::Option(inner) => {
            if object.is_none() {
                Value::Null
            } else {
                from_python(types, inner, object, depth + 1)?
            }
        }
        WireType::Tuple(items) => {
            let values = sequence(object).filter(|v| v.len() == items.len()).ok_or_else(|| expected(&format!("a tuple of {}", items.len())))?;
            Value::Array(items.iter().zip(&values).enumerate().map(|(i, (t, o))| at(i, from_python(types, t, o, depth + 1))).collect::<Result<_>>()?)
        }
        WireType::Map(key, value) => {
            let entries: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = if let Ok(dict) = object.cast::<PyDict>() {
                dict.iter().collect()
            } else {
                let items = sequence(object).ok_or_else(|| expected("a dict or a list of (key, value) pairs"))?;
                items
                    .iter()
                    .map(|item| match sequence(item).as_deref() {
                        Some([k, v]) => Ok((k.clone(), v.clone())),
                        _ => Err(Mismatch(format!("expected (key, value) pairs, found {}", type_name(item)))),
                    })
                    .collect::<Result<_>>()?
            };
            let mut pairs = Vec::with_capacity(entries.len());
            for (k, v) in &entries {
                let k = map_key_from_python(types, key, k, depth)?;
                let v = from_python(types, value, v, depth + 1).map_err(|e| Mismatch(format!("[{k}]: {}", e.0)))?;
                pairs.push((k, v));
            }
            // As interface::json writes maps: objects for string keys only.
            if matches!(**key, WireType::String) {
                Value::Object(pairs.into_iter().map(|(k, v)| (k.as_str().unwrap_or_default().to_string(), v)).collect::<Map<_, _>>())
            } else {
                Value::Array(pairs.into_iter().map(|(k, v)| Value::Array(vec![k, v])).collect())
            }
        }
        WireType::Named(index, name) => match &types[*index].shape {
            Shape::Struct(fields) => fields_from_python(types, name, fields, object, depth)?,
            Shape::Enum(variants) => variant_from_python(types, name, variants, object, depth)?,
        },
    })
}

/// Prefixes an element's error with its index.
fn at<T>(index: usize, result: Result<T>) -> Result<T> {
    result.map_err(|e| Mismatch(format!("[{index}]: {}", e.0)))
}

fn type_name(object: &Bound<'_, PyAny>) -> String {
    object.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// The items of a list or tuple (not of a str, bytes or dict).
fn sequence<'py>(object: &Bound<'py, PyAny>) -> Option<Vec<Bound<'py, PyAny>>> {
    if let Ok(list) = object.cast::<PyList>() {
        return Some(list.iter().collect());
    }
    object.cast::<PyTuple>().ok().map(|t| t.iter().collect())
}

fn integer(object: &Bound<'_, PyAny>, kind: IntKind) -> Option<Value> {
    if object.is_instance_of::<PyBool>() || !object.is_instance_of::<PyInt>() {
        return None;
    }
    let fits = |value: i128| value >= kind.min() && (value < 0 || value as u128 <= kind.max());
    // Most integers fit 64 bits: one C call, not a byte-array conversion.
    if let Ok(small) = object.extract::<i64>() {
        return fits(small.into()).then(|| Value::from(small));
    }
    let value: i128 = match object.extract::<i128>() {
        Ok(v) => v,
        Err(_) => {
            let v: u128 = object.extract().ok()?;
            return (kind == IntKind::U128).then(|| Value::String(v.to_string()));
        }
    };
    if !fits(value) {
        return None;
    }
    Some(match (i64::try_from(value), u64::try_from(value)) {
        (Ok(v), _) => Value::from(v),
        (_, Ok(v)) => Value::from(v),
        _ => Value::String(value.to_string()),
    })
}

fn map_key_from_python(types: &[TypeDef], key: &WireType, object: &Bound<'_, PyAny>, depth: usize) -> Result<Value> {
    match from_python(types, key, object, depth + 1) {
        Ok(v) => Ok(v),
        // Keys that went in as strings ({"1": …} for an integer map) come back so.
        Err(e) => {
            let parsed = object
                .cast::<PyString>()
                .ok()
                .and_then(|s| s.to_str().ok().and_then(|s| serde_json::from_str::<Value>(s).ok()));
            parsed.ok_or_else(|| Mismatch(format!("key: {}", e.0)))
        }
    }
}

fn fields_from_python(types: &[TypeDef], name: &str, fields: &Fields, object: &Bound<'_, PyAny>, depth: usize) -> Result<Value> {
    let in_type = |e: Mismatch| Mismatch(format!("{name}: {}", e.0));
    match fields {
        Fields::Unit => Ok(Value::Null),
        Fields::Unnamed(items) if items.len() == 1 => from_python(types, &items[0], object, depth + 1).map_err(in_type),
        Fields::Unnamed(items) => from_python(types, &WireType::Tuple(items.clone()), object, depth + 1).map_err(in_type),
        Fields::Named(named) => {
            let dict = object.cast::<PyDict>().ok();
            let mut out = Map::new();
            for (field, ty) in named {
                let value = match dict {
                    Some(dict) => dict.get_item(field).map_err(python_error)?,
                    None => object.getattr(field.as_str()).ok(),
                };
                let value = value.ok_or_else(|| Mismatch(format!("{name}: missing field '{field}' (found {})", type_name(object))))?;
                out.insert(field.clone(), from_python(types, ty, &value, depth + 1).map_err(|e| Mismatch(format!("{name}.{field}: {}", e.0)))?);
            }
            Ok(Value::Object(out))
        }
    }
}

fn variant_from_python(types: &[TypeDef], name: &str, variants: &[Variant], object: &Bound<'_, PyAny>, depth: usize) -> Result<Value> {
    let (tag, payload) = if let Ok(s) = object.cast::<PyString>() {
        (s.to_str().map_err(python_error)?.to_string(), None)
    } else if let Ok(dict) = object.cast::<PyDict>().map_err(|_| ()).and_then(|d| if d.len() == 1 { Ok(d) } else { Err(()) }) {
        let (k, v) = dict.iter().next().expect("one entry");
        let k = k.cast::<PyString>().map_err(|_| Mismatch(format!("{name}: the variant name must be a str")))?;
        (k.to_str().map_err(python_error)?.to_string(), Some(v))
    } else {
        return Err(Mismatch(format!("{name}: expected \"Variant\" or {{\"Variant\": payload}}, found {}", type_name(object))));
    };
    let variant = variants
        .iter()
        .find(|v| v.name == tag)
        .ok_or_else(|| Mismatch(format!("{name}: no variant '{tag}'")))?;
    match (&variant.fields, payload) {
        (Fields::Unit, None) => Ok(Value::String(tag)),
        (Fields::Unit, Some(p)) if p.is_none() => Ok(Value::String(tag)),
        (Fields::Unit, Some(_)) => Err(Mismatch(format!("{name}::{tag} carries no data"))),
        (_, None) => Err(Mismatch(format!("{name}::{tag} needs its data: {{\"{tag}\": …}}"))),
        (fields, Some(p)) => {
            let inner = fields_from_python(types, &format!("{name}::{tag}"), fields, &p, depth)?;
            let mut out = Map::new();
            out.insert(tag, inner);
            Ok(Value::Object(out))
        }
    }
}
