//! Salt's command-line argument rules (`utils/args.py`): `parse_kwarg` (`KWARG_REGEX`),
//! `yamlify_arg`, `shlex_split`, `split_input`.
//!
//! The minion applies them to a publish's `arg` (`minion.py:load_args_and_kwargs`), the `salt`
//! CLI to its command line, and targeting to numeric keys (`traverse_dict_and_list`).

use crate::value::{py_str, string, Value};

/// `salt.utils.args.parse_kwarg`: `^([^\d\W][\w.-]*)=(?!=)(.*)$` (DOTALL not set: no newlines).
pub fn parse_kwarg(text: &str) -> Option<(String, String)> {
    let (name, value) = text.split_once('=')?;
    if value.starts_with('=') || value.contains('\n') {
        return None;
    }
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_alphabetic() || first == '_') {
        return None;
    }
    if !chars.all(|c| c.is_alphanumeric() || c == '_' || c == '.' || c == '-') {
        return None;
    }
    Some((name.to_string(), value.to_string()))
}

/// `salt.utils.args.yamlify_arg`.
pub fn yamlify_arg(arg: &str) -> Value {
    let original = || string(arg);
    let stripped = arg.trim();
    if stripped.is_empty() || stripped == "---" || stripped == "..." {
        return original();
    }
    if arg.contains('_') && stripped.chars().all(|c| c.is_ascii_digit() || c == '_') {
        return original();
    }
    if arg.contains(['\t', '\r', '\n']) {
        return original();
    }
    if arg.contains('#') {
        return match crate::yaml::safe_load(arg) {
            Ok(Value::String(_)) | Ok(Value::Nil) | Err(_) => original(),
            Ok(v) => v,
        };
    }
    if arg == "None" {
        return Value::Nil;
    }
    match crate::yaml::safe_load(arg) {
        Err(_) => original(),
        Ok(v @ Value::Map(_)) => {
            if arg.starts_with('{') {
                v
            } else {
                original()
            }
        }
        Ok(v @ Value::Array(_)) => {
            if arg.starts_with('[') {
                v
            } else {
                original()
            }
        }
        Ok(Value::String(st)) if st.as_str() == Some("") && (arg == "|" || arg == "!") => original(),
        Ok(Value::Nil) if stripped.starts_with('#') || arg == "!" => original(),
        Ok(v @ (Value::Nil | Value::Boolean(_) | Value::Integer(_) | Value::F64(_) | Value::String(_))) => v,
        Ok(_) => original(),
    }
}

/// Python `shlex.split(s)` (POSIX mode, no comments).
pub fn shlex_split(text: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() && " \t\r\n".contains(c) => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n) => cur.push(n),
                    None => return Err("No escaped character".into()),
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => return Err("No closing quotation".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.peek() {
                            Some(&n) if n == '"' || n == '\\' => {
                                cur.push(n);
                                chars.next();
                            }
                            Some(_) => cur.push('\\'),
                            None => return Err("No closing quotation".into()),
                        },
                        Some(n) => cur.push(n),
                        None => return Err("No closing quotation".into()),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    Ok(out)
}

/// `salt.utils.args.split_input`: a list as is, a string split on commas (items stripped).
pub fn split_input(v: &Value) -> Vec<Value> {
    match v {
        Value::Array(items) => items.clone(),
        Value::Nil => Vec::new(),
        other => py_str(other).split(',').map(|x| string(x.trim())).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kwarg_regex() {
        assert_eq!(parse_kwarg("a=b"), Some(("a".into(), "b".into())));
        assert_eq!(parse_kwarg("a.b-c=d=e"), Some(("a.b-c".into(), "d=e".into())));
        assert_eq!(parse_kwarg("1a=b"), None);
        assert_eq!(parse_kwarg("a==b"), None);
        assert_eq!(parse_kwarg("echo hi=there"), None);
        assert_eq!(parse_kwarg("=x"), None);
    }

    #[test]
    fn yamlify() {
        assert_eq!(yamlify_arg("42"), Value::from(42));
        assert_eq!(yamlify_arg("true"), Value::Boolean(true));
        assert_eq!(yamlify_arg("None"), Value::Nil);
        assert_eq!(yamlify_arg("1_000"), string("1_000"));
        assert_eq!(yamlify_arg("a: b"), string("a: b"));
        assert_eq!(py_str(&yamlify_arg("{a: b}")), "{'a': 'b'}");
        assert_eq!(yamlify_arg("- x"), string("- x"));
        assert_eq!(yamlify_arg("foo # bar"), string("foo # bar"));
        assert_eq!(yamlify_arg("#"), string("#"));
        assert_eq!(yamlify_arg("|"), string("|"));
        assert_eq!(yamlify_arg("2024-01-02"), string("2024-01-02"));
        assert_eq!(yamlify_arg(""), string(""));
        assert_eq!(yamlify_arg("[unclosed"), string("[unclosed"));
    }

    #[test]
    fn shlex() {
        assert_eq!(
            shlex_split("a 'b c' \"d \\\" e\" f\\ g"),
            Ok(vec!["a".into(), "b c".into(), "d \" e".into(), "f g".into()])
        );
        assert_eq!(shlex_split("\"a\\nb\""), Ok(vec!["a\\nb".into()]));
        assert_eq!(shlex_split("''"), Ok(vec![String::new()]));
        assert!(shlex_split("'open").is_err());
        assert!(shlex_split("x\\").is_err());
    }
}
