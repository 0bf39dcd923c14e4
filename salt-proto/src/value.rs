//! Salt's values and the Python semantics Salt's code relies on, over [`rmpv::Value`].
//!
//! This is the one value vocabulary of the project: the envelopes of this crate, `salt-core`
//! (which re-exports it as `salt_core::value`), the minion and the master all read and build
//! Salt's dynamically typed payloads through these functions.
//!
//! - Building: [`string`], [`bytes`], [`map`], [`str_list`].
//! - Reading: [`as_str`], [`as_bytes`], [`get`], [`get_str`], [`get_bytes`], [`get_py`] — a map
//!   key may be a msgpack str or bin (Salt's `decode_embedded_strs` makes no difference), and like
//!   a Python dict built from a msgpack map, the **last** duplicate key wins.
//! - Changing: [`insert`] (`d[key] = v`), [`remove`] (`d.pop(key, None)`).
//! - Python semantics: [`py_eq`] (`==`), [`py_str`] (`str()`), [`py_repr`] (`repr()`),
//!   [`truthy`] (`bool()`), [`is_true`] (`salt.utils.data.is_true`), as Salt's matchers and
//!   execution modules apply them (`utils/data.py:subdict_match`, `modules/cmdmod.py`).
//! - JSON: [`to_json`] / [`from_json`], for printing and for comparing with `salt-call --out json`.

use std::fmt::Write as _;

/// The dynamic value type (msgpack-shaped, like Salt's payloads).
pub type Value = rmpv::Value;

/// A text value.
pub fn string(s: impl Into<String>) -> Value {
    Value::String(s.into().into())
}

/// A bytes value (ciphertext, signature); [`crate::msgpack::encode`] packs it as a raw
/// string, like Python `bytes` under `use_bin_type=False`.
pub fn bytes(b: impl Into<Vec<u8>>) -> Value {
    Value::Binary(b.into())
}

/// Build a map from `(key, value)` pairs with string keys, keeping their order.
pub fn map<K: Into<String>>(pairs: impl IntoIterator<Item = (K, Value)>) -> Value {
    Value::Map(pairs.into_iter().map(|(k, v)| (string(k), v)).collect())
}

/// Build a list of strings.
pub fn str_list<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Value {
    Value::Array(items.into_iter().map(|i| string(i.as_ref())).collect())
}

/// The bytes of a string or binary value (whatever its UTF-8 validity).
pub fn as_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::String(s) => Some(s.as_bytes()),
        Value::Binary(b) => Some(b),
        _ => None,
    }
}

/// The text of a string value, or of a binary value that is valid UTF-8
/// (Salt's `decode_embedded_strs` makes no difference between the two).
pub fn as_str(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => s.as_str(),
        Value::Binary(b) => std::str::from_utf8(b).ok(),
        _ => None,
    }
}

/// Does `k` (a string or binary map key) equal `key`?
fn key_is(k: &Value, key: &str) -> bool {
    as_bytes(k) == Some(key.as_bytes())
}

/// Look up `key` in a map (keys may be str or bin). `None` if `map` is not
/// a map or has no such key. Like a Python dict, the *last* duplicate wins.
pub fn get<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    match map {
        Value::Map(pairs) => pairs.iter().rev().find(|(k, _)| key_is(k, key)).map(|(_, v)| v),
        _ => None,
    }
}

/// Look up `key` and read it as text.
pub fn get_str<'a>(map: &'a Value, key: &str) -> Option<&'a str> {
    get(map, key).and_then(as_str)
}

/// Look up `key` and read it as bytes.
pub fn get_bytes<'a>(map: &'a Value, key: &str) -> Option<&'a [u8]> {
    get(map, key).and_then(as_bytes)
}

/// Look a key up in a map value using Python dict equality (`1 == 1.0 == True`); the last
/// duplicate wins, as in [`get`].
pub fn get_py<'a>(v: &'a Value, key: &Value) -> Option<&'a Value> {
    match v {
        Value::Map(entries) => entries.iter().rev().find(|(k, _)| py_eq(k, key)).map(|(_, v)| v),
        _ => None,
    }
}

/// Python `d[key] = value`: replace the value in place if `key` exists
/// (keeping its position, as a Python dict does), else append. Returns
/// `false` (and does nothing) if `map` is not a map.
pub fn insert(map: &mut Value, key: &str, value: Value) -> bool {
    match map {
        Value::Map(pairs) => {
            if let Some(slot) = pairs.iter_mut().rev().find(|(k, _)| key_is(k, key)) {
                slot.1 = value;
            } else {
                pairs.push((string(key), value));
            }
            true
        }
        _ => false,
    }
}

/// Python `d.pop(key, None)`: remove `key` and return its value.
pub fn remove(map: &mut Value, key: &str) -> Option<Value> {
    match map {
        Value::Map(pairs) => {
            let idx = pairs.iter().rposition(|(k, _)| key_is(k, key))?;
            let (_, v) = pairs.remove(idx);
            // Python dicts cannot hold duplicates; drop any earlier ones too.
            pairs.retain(|(k, _)| !key_is(k, key));
            Some(v)
        }
        _ => None,
    }
}

fn as_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Boolean(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Integer(i) => i.as_f64(),
        Value::F32(f) => Some(f64::from(*f)),
        Value::F64(f) => Some(*f),
        _ => None,
    }
}

fn as_i128(v: &Value) -> Option<i128> {
    match v {
        Value::Boolean(b) => Some(i128::from(*b)),
        Value::Integer(i) => i.as_i64().map(i128::from).or_else(|| i.as_u64().map(i128::from)),
        _ => None,
    }
}

/// Python `==` between two values (numbers compare across bool/int/float, containers deeply).
pub fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::String(x), Value::String(y)) => x.as_bytes() == y.as_bytes(),
        (Value::Binary(x), Value::Binary(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(p, q)| py_eq(p, q)),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| get_py(b, k).is_some_and(|w| py_eq(v, w)))
        }
        _ => match (as_i128(a), as_i128(b)) {
            (Some(x), Some(y)) => x == y,
            _ => match (as_f64(a), as_f64(b)) {
                (Some(x), Some(y)) => x == y,
                _ => false,
            },
        },
    }
}

/// Python's `repr()` of a float (shortest round-trip digits, `1.0`, `1e+16`, `inf`, `nan`).
pub fn py_float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0".into() } else { "0.0".into() };
    }
    // `{:e}` gives the shortest round-trip digits: "-1.2345e-7".
    let sci = format!("{f:e}");
    let (mant, exp) = match sci.split_once('e') {
        Some(p) => p,
        None => return sci,
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    let (neg, mant) = match mant.strip_prefix('-') {
        Some(m) => (true, m),
        None => (false, mant),
    };
    let digits: String = mant.chars().filter(|c| *c != '.').collect();
    let decpt = exp + 1;
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    if -4 < decpt && decpt <= 16 {
        let n = digits.len() as i32;
        if decpt <= 0 {
            out.push_str("0.");
            for _ in 0..(-decpt) {
                out.push('0');
            }
            out.push_str(&digits);
        } else if decpt >= n {
            out.push_str(&digits);
            for _ in 0..(decpt - n) {
                out.push('0');
            }
            out.push_str(".0");
        } else {
            let (a, b) = digits.split_at(decpt as usize);
            out.push_str(a);
            out.push('.');
            out.push_str(b);
        }
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    out
}

/// Python's `repr()` of a string (single quotes unless the text holds `'` and no `"`).
pub fn py_str_repr(st: &str) -> String {
    let quote = if st.contains('\'') && !st.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(st.len() + 2);
    out.push(quote);
    for c in st.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

fn py_bytes_repr(b: &[u8]) -> String {
    let mut out = String::from("b'");
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\'' => out.push_str("\\'"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x20..=0x7e => out.push(c as char),
            _ => {
                let _ = write!(out, "\\x{c:02x}");
            }
        }
    }
    out.push('\'');
    out
}

/// Python's `repr()` of a value.
pub fn py_repr(v: &Value) -> String {
    match v {
        Value::String(st) => match st.as_str() {
            Some(t) => py_str_repr(t),
            None => py_bytes_repr(st.as_bytes()),
        },
        Value::Binary(b) => py_bytes_repr(b),
        other => py_str(other),
    }
}

/// Python's `str()` of a value, as Salt applies it before matching or to build env values.
pub fn py_str(v: &Value) -> String {
    match v {
        Value::Nil => "None".into(),
        Value::Boolean(true) => "True".into(),
        Value::Boolean(false) => "False".into(),
        Value::Integer(i) => i.to_string(),
        Value::F32(f) => py_float_repr(f64::from(*f)),
        Value::F64(f) => py_float_repr(*f),
        Value::String(st) => match st.as_str() {
            Some(t) => t.to_owned(),
            None => py_bytes_repr(st.as_bytes()),
        },
        Value::Binary(b) => py_bytes_repr(b),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Map(entries) => {
            let inner: Vec<String> = entries.iter().map(|(k, v)| format!("{}: {}", py_repr(k), py_repr(v))).collect();
            format!("{{{}}}", inner.join(", "))
        }
        Value::Ext(tag, data) => format!("ExtType(code={tag}, data={})", py_bytes_repr(data)),
    }
}

/// Python truthiness (`bool(obj)`).
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Nil => false,
        Value::Boolean(b) => *b,
        Value::Integer(i) => as_i128(&Value::Integer(*i)).is_some_and(|x| x != 0),
        Value::F32(f) => *f != 0.0,
        Value::F64(f) => *f != 0.0,
        Value::String(st) => !st.as_bytes().is_empty(),
        Value::Binary(b) => !b.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Map(m) => !m.is_empty(),
        Value::Ext(..) => true,
    }
}

/// `salt.utils.data.is_true`: numbers `> 0`, the strings `"true"`/`"True"` (any case), else truthiness.
pub fn is_true(v: &Value) -> bool {
    match v {
        Value::Boolean(b) => *b,
        Value::Integer(_) | Value::F32(_) | Value::F64(_) => as_f64(v).is_some_and(|f| f > 0.0),
        Value::String(st) => {
            let t = st.as_str().unwrap_or("").trim();
            if let Ok(i) = t.parse::<i64>() {
                return i > 0;
            }
            if let Ok(f) = t.parse::<f64>() {
                return f > 0.0;
            }
            st.as_str().unwrap_or("").to_lowercase() == "true"
        }
        other => truthy(other),
    }
}

/// Convert to JSON the way Python's `json.dumps` would (non-string keys become strings).
pub fn to_json(v: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        Value::Nil => J::Null,
        Value::Boolean(b) => J::Bool(*b),
        Value::Integer(i) => {
            if let Some(x) = i.as_i64() {
                J::from(x)
            } else if let Some(x) = i.as_u64() {
                J::from(x)
            } else {
                J::Null
            }
        }
        Value::F32(f) => serde_json::Number::from_f64(f64::from(*f)).map_or(J::Null, J::Number),
        Value::F64(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::String(st) => J::String(String::from_utf8_lossy(st.as_bytes()).into_owned()),
        Value::Binary(b) => J::String(String::from_utf8_lossy(b).into_owned()),
        Value::Array(items) => J::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => {
            let mut out = serde_json::Map::new();
            for (k, v) in entries {
                let key = match k {
                    Value::String(st) => String::from_utf8_lossy(st.as_bytes()).into_owned(),
                    Value::Nil => "null".into(),
                    Value::Boolean(b) => b.to_string(),
                    other => py_str(other),
                };
                out.insert(key, to_json(v));
            }
            J::Object(out)
        }
        Value::Ext(_, data) => J::String(String::from_utf8_lossy(data).into_owned()),
    }
}

/// Convert a JSON value into a [`Value`] (object key order kept as serde_json gives it).
pub fn from_json(j: &serde_json::Value) -> Value {
    use serde_json::Value as J;
    match j {
        J::Null => Value::Nil,
        J::Bool(b) => Value::Boolean(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                Value::F64(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(st) => string(st.as_str()),
        J::Array(a) => Value::Array(a.iter().map(from_json).collect()),
        J::Object(o) => Value::Map(o.iter().map(|(k, v)| (string(k.as_str()), from_json(v))).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        assert_eq!(py_float_repr(1.0), "1.0");
        assert_eq!(py_float_repr(0.5), "0.5");
        assert_eq!(py_float_repr(1e16), "1e+16");
        assert_eq!(py_float_repr(1e15), "1000000000000000.0");
        assert_eq!(py_float_repr(0.0001), "0.0001");
        assert_eq!(py_float_repr(0.00001), "1e-05");
        assert_eq!(py_float_repr(-2.5e-10), "-2.5e-10");
        assert_eq!(py_float_repr(123.456), "123.456");
        assert_eq!(py_float_repr(f64::INFINITY), "inf");
    }

    #[test]
    fn str_matches_python() {
        let v = Value::Array(vec![string("a"), Value::from(1), Value::Boolean(true), Value::Nil]);
        assert_eq!(py_str(&v), "['a', 1, True, None]");
        let m = map([("k", string("it's"))]);
        assert_eq!(py_str(&m), "{'k': \"it's\"}");
        assert_eq!(py_str(&Value::F64(2.0)), "2.0");
    }

    #[test]
    fn python_equality() {
        assert!(py_eq(&Value::from(1), &Value::F64(1.0)));
        assert!(py_eq(&Value::Boolean(true), &Value::from(1)));
        assert!(!py_eq(&string("1"), &Value::from(1)));
    }

    #[test]
    fn salt_is_true() {
        assert!(is_true(&string("True")));
        assert!(is_true(&string("1")));
        assert!(!is_true(&string("0")));
        assert!(!is_true(&string("yes")));
        assert!(is_true(&Value::from(2)));
        assert!(!is_true(&Value::Nil));
    }

    #[test]
    fn insert_keeps_position() {
        let mut m = map([("a", Value::from(1)), ("b", Value::from(2))]);
        assert!(insert(&mut m, "a", Value::from(3)));
        assert!(insert(&mut m, "c", Value::from(4)));
        assert_eq!(m, map([("a", Value::from(3)), ("b", Value::from(2)), ("c", Value::from(4))]));
        assert_eq!(remove(&mut m, "b"), Some(Value::from(2)));
        assert_eq!(get(&m, "b"), None);
    }

    #[test]
    fn last_duplicate_key_wins_like_python() {
        // msgpack maps may repeat a key; `dict(msgpack.loads(...))` keeps the last value.
        let m = Value::Map(vec![
            (string("k"), Value::from(1)),
            (bytes(b"k".to_vec()), Value::from(2)),
            (Value::from(1), string("int")),
            (Value::F64(1.0), string("float")),
        ]);
        assert_eq!(get(&m, "k"), Some(&Value::from(2)));
        assert_eq!(get_py(&m, &Value::Boolean(true)), Some(&string("float")));
        let mut m2 = m.clone();
        assert!(insert(&mut m2, "k", Value::from(3)));
        assert_eq!(get(&m2, "k"), Some(&Value::from(3)));
        assert_eq!(remove(&mut m2, "k"), Some(Value::from(3)));
        assert_eq!(get(&m2, "k"), None);
    }

    #[test]
    fn binary_utf8_reads_as_text() {
        assert_eq!(as_str(&bytes(b"abc".to_vec())), Some("abc"));
        assert_eq!(as_str(&bytes(vec![0xff])), None);
        assert_eq!(as_bytes(&bytes(vec![0xff])), Some(&[0xff][..]));
    }
}
