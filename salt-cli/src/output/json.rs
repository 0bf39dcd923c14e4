//! Salt's `json` outputter: Python's `json.dumps(data, default=repr, indent=4, ensure_ascii=False)`
//! (`salt/output/json_out.py`, `salt/utils/json.py`).

use std::fmt::Write as _;

use crate::py::{as_str, py_float_repr, py_repr, py_str, Value};

fn string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        (if f > 0.0 { "Infinity" } else { "-Infinity" }).into()
    } else {
        py_float_repr(f)
    }
}

/// A dict key as `json.dumps` converts it (`str` kept, numbers/bools/None spelled as JSON).
fn key(k: &Value) -> String {
    match k {
        Value::Nil => "null".into(),
        Value::Boolean(b) => (if *b { "true" } else { "false" }).into(),
        Value::F32(f) => float(f64::from(*f)),
        Value::F64(f) => float(*f),
        other => as_str(other).map_or_else(|| py_str(other), str::to_owned),
    }
}

fn write(out: &mut String, v: &Value, indent: Option<usize>, level: usize) {
    let nl = |out: &mut String, level: usize| {
        if let Some(n) = indent {
            out.push('\n');
            out.push_str(&" ".repeat(n * level));
        }
    };
    let item_sep = if indent.is_some() { "," } else { ", " };
    match v {
        Value::Nil => out.push_str("null"),
        Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Integer(i) => out.push_str(&i.to_string()),
        Value::F32(f) => out.push_str(&float(f64::from(*f))),
        Value::F64(f) => out.push_str(&float(*f)),
        Value::String(_) | Value::Binary(_) => match as_str(v) {
            Some(t) => string(out, t),
            // bytes are not JSON: `default=repr` writes their repr as a string.
            None => string(out, &py_repr(v)),
        },
        Value::Array(items) if items.is_empty() => out.push_str("[]"),
        Value::Array(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(item_sep);
                }
                nl(out, level + 1);
                write(out, item, indent, level + 1);
            }
            nl(out, level);
            out.push(']');
        }
        Value::Map(entries) if entries.is_empty() => out.push_str("{}"),
        Value::Map(entries) => {
            out.push('{');
            for (n, (k, val)) in entries.iter().enumerate() {
                if n > 0 {
                    out.push_str(item_sep);
                }
                nl(out, level + 1);
                string(out, &key(k));
                out.push_str(": ");
                write(out, val, indent, level + 1);
            }
            nl(out, level);
            out.push('}');
        }
        Value::Ext(..) => string(out, &py_repr(v)),
    }
}

/// `json.dumps(data, indent=indent, ensure_ascii=False, default=repr)`; mapping order is kept.
pub fn dumps(v: &Value, indent: Option<usize>) -> String {
    let mut out = String::new();
    write(&mut out, v, indent, 0);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py::string;

    #[test]
    fn like_python() {
        let v = Value::Map(vec![
            (
                string("m1"),
                Value::Map(vec![
                    (string("os"), string("Debian")),
                    (string("n"), Value::from(2)),
                    (string("f"), Value::F64(1e16)),
                ]),
            ),
            (string("e"), Value::Array(vec![])),
            (string("u"), string("é\"\u{1}")),
        ]);
        assert_eq!(
            dumps(&v, Some(4)),
            "{\n    \"m1\": {\n        \"os\": \"Debian\",\n        \"n\": 2,\n        \"f\": 1e+16\n    },\n    \"e\": [],\n    \"u\": \"é\\\"\\u0001\"\n}"
        );
        assert_eq!(dumps(&Value::Array(vec![Value::from(1), Value::Nil]), None), "[1, null]");
    }
}
