//! The Python semantics the outputters need (`str()`, `repr()`), taken from the shared Salt layer.
//!
//! One import point, so the tools follow the shared crate rather than a copy of its rules.

pub use salt_core::value::{as_str, get, py_float_repr, py_repr, py_str, string, truthy, Value};

/// Python `str.splitlines()`: splits on every Unicode line boundary, drops the breaks, and gives
/// no trailing empty line (`"".splitlines() == []`).
pub fn splitlines(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let is_break = matches!(
            c,
            '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{1c}' | '\u{1d}' | '\u{1e}' | '\u{85}' | '\u{2028}' | '\u{2029}'
        );
        if is_break {
            out.push(&text[start..i]);
            let mut next = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = chars.peek() {
                    chars.next();
                    next = j + 1;
                }
            }
            start = next;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// The keys of a mapping in the order Python's `sorted()` gives them; keys of mixed types are
/// compared as their `str()` (the `TypeError` fallback of Salt's nested outputter). Each item is
/// `(str(key), key, value)`.
pub fn sorted_items(entries: &[(Value, Value)]) -> Vec<(String, &Value, &Value)> {
    let all_text = entries.iter().all(|(k, _)| as_str(k).is_some());
    let all_num =
        entries.iter().all(|(k, _)| matches!(k, Value::Integer(_) | Value::F32(_) | Value::F64(_) | Value::Boolean(_)));
    let mut items: Vec<(String, &Value, &Value, f64)> = entries
        .iter()
        .map(|(k, v)| {
            let num = match k {
                Value::Integer(i) => i.as_f64().unwrap_or(0.0),
                Value::F32(f) => f64::from(*f),
                Value::F64(f) => *f,
                Value::Boolean(b) => f64::from(u8::from(*b)),
                _ => 0.0,
            };
            let key = as_str(k).map_or_else(|| py_str(k), str::to_owned);
            (key, k, v, num)
        })
        .collect();
    if all_num && !all_text {
        items.sort_by(|a, b| a.3.total_cmp(&b.3));
    } else {
        items.sort_by(|a, b| a.0.cmp(&b.0));
    }
    items.into_iter().map(|(s, k, v, _)| (s, k, v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_like_python() {
        assert_eq!(splitlines(""), Vec::<&str>::new());
        assert_eq!(splitlines("a\nb"), vec!["a", "b"]);
        assert_eq!(splitlines("a\n"), vec!["a"]);
        assert_eq!(splitlines("a\r\nb\rc\n\nd"), vec!["a", "b", "c", "", "d"]);
        assert_eq!(splitlines("x\u{2028}y"), vec!["x", "y"]);
    }
}
