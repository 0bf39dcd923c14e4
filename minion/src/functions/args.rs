//! Argument handling as a Salt minion does it.
//!
//! - `utils/args.py`: `parse_kwarg` (`KWARG_REGEX`), `yamlify_arg`, `shlex_split`, `split_input`;
//! - `minion.py:load_args_and_kwargs`: a `{"__kwarg__": True, …}` map in `arg` carries keyword
//!   arguments, a `"key=value"` string is a keyword argument too (value YAML-loaded), keywords the
//!   function does not take are "not valid", and functions with `**kwargs` also get the publish
//!   data as `__pub_<key>`;
//! - then Python's own call binding (the `TypeError` texts of CPython 3.11).

use crate::value::{as_str, py_str, s, Value};

/// A parameter default.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Def {
    /// No default: required.
    Required,
    /// `None`.
    None,
    /// A string.
    Str(&'static str),
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
}

impl Def {
    fn value(self) -> Option<Value> {
        match self {
            Def::Required => None,
            Def::None => Some(Value::Nil),
            Def::Str(t) => Some(s(t)),
            Def::Bool(b) => Some(Value::Boolean(b)),
            Def::Int(i) => Some(Value::from(i)),
        }
    }
}

/// A Python function signature: `def name(p1, p2=…, *args, **kwargs)`.
#[derive(Debug, Clone, Copy)]
pub struct Signature {
    /// The Python function name (for `TypeError` texts).
    pub name: &'static str,
    /// Named parameters in order.
    pub params: &'static [(&'static str, Def)],
    /// `*args`.
    pub varargs: bool,
    /// `**kwargs`.
    pub varkw: bool,
}

/// Arguments bound to a [`Signature`].
#[derive(Debug, Clone, Default)]
pub struct Bound {
    named: Vec<(&'static str, Value)>,
    /// Extra positional arguments (`*args`).
    pub varargs: Vec<Value>,
    /// Extra keyword arguments (`**kwargs`), including `__pub_*`.
    pub kwargs: Vec<(String, Value)>,
}

impl Bound {
    /// A named parameter (its default when not passed).
    pub fn get(&self, name: &str) -> &Value {
        static NIL: Value = Value::Nil;
        self.named.iter().find(|(n, _)| *n == name).map_or(&NIL, |(_, v)| v)
    }

    /// A `**kwargs` entry.
    pub fn kwarg(&self, name: &str) -> Option<&Value> {
        self.kwargs.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

/// Why a call could not be bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindError {
    /// `SaltInvocationError` from `invalid_kwargs`.
    InvalidKwargs(String),
    /// A Python `TypeError` text.
    Type(String),
}

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
    let original = || s(arg);
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
        other => py_str(other).split(',').map(|x| s(x.trim())).collect(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("{n} {one}")
    } else {
        format!("{n} {many}")
    }
}

fn quote_list(names: &[&str]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("'{n}'")).collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        2 => format!("{} and {}", q[0], q[1]),
        _ => format!("{}, and {}", q[..q.len() - 1].join(", "), q[q.len() - 1]),
    }
}

/// `load_args_and_kwargs` + Python's argument binding.
pub fn bind(sig: &Signature, args: &[Value], pub_data: Option<&Value>) -> Result<Bound, BindError> {
    let accepts = |k: &str| sig.varkw || sig.params.iter().any(|(n, _)| *n == k);
    let mut positional: Vec<Value> = Vec::new();
    let mut kwargs: Vec<(String, Value)> = Vec::new();
    let mut invalid: Vec<String> = Vec::new();
    let put = |kwargs: &mut Vec<(String, Value)>, k: String, v: Value| {
        if let Some(slot) = kwargs.iter_mut().find(|(x, _)| *x == k) {
            slot.1 = v;
        } else {
            kwargs.push((k, v));
        }
    };
    for arg in args {
        if let Value::Map(entries) = arg {
            if crate::value::get(arg, "__kwarg__") == Some(&Value::Boolean(true)) {
                for (k, v) in entries {
                    let key = as_str(k).map_or_else(|| py_str(k), str::to_string);
                    if key == "__kwarg__" {
                        continue;
                    }
                    if accepts(&key) {
                        put(&mut kwargs, key, v.clone());
                    } else {
                        invalid.push(format!("{key}={}", py_str(v)));
                    }
                }
                continue;
            }
        }
        if let Some((k, v)) = as_str(arg).and_then(parse_kwarg) {
            let val = yamlify_arg(&v);
            if accepts(&k) {
                put(&mut kwargs, k, val);
            } else {
                invalid.push(format!("{k}={}", py_str(&val)));
            }
            continue;
        }
        positional.push(arg.clone());
    }
    if !invalid.is_empty() {
        return Err(BindError::InvalidKwargs(format!(
            "The following keyword arguments are not valid: {}",
            invalid.join(", ")
        )));
    }
    if sig.varkw {
        if let Some(Value::Map(entries)) = pub_data {
            for (k, v) in entries {
                kwargs.push((format!("__pub_{}", py_str(k)), v.clone()));
            }
        }
    }

    let nparams = sig.params.len();
    if positional.len() > nparams && !sig.varargs {
        let required = sig.params.iter().filter(|(_, d)| *d == Def::Required).count();
        let takes = if required == nparams {
            plural(nparams, "positional argument", "positional arguments")
        } else {
            format!("from {required} to {nparams} positional arguments")
        };
        let given = positional.len();
        return Err(BindError::Type(format!(
            "{}() takes {takes} but {given} {} given",
            sig.name,
            if given == 1 { "was" } else { "were" }
        )));
    }
    let mut named: Vec<(&'static str, Option<Value>)> = sig.params.iter().map(|(n, _)| (*n, None)).collect();
    let mut pos = positional.into_iter();
    for slot in named.iter_mut() {
        match pos.next() {
            Some(v) => slot.1 = Some(v),
            None => break,
        }
    }
    let varargs: Vec<Value> = pos.collect();
    let mut extra: Vec<(String, Value)> = Vec::new();
    for (k, v) in kwargs {
        match named.iter_mut().find(|(n, _)| *n == k) {
            Some((_, Some(_))) => {
                return Err(BindError::Type(format!("{}() got multiple values for argument '{k}'", sig.name)))
            }
            Some((_, slot)) => *slot = Some(v),
            None => extra.push((k, v)),
        }
    }
    let missing: Vec<&str> = named
        .iter()
        .zip(sig.params)
        .filter(|((_, v), (_, d))| v.is_none() && *d == Def::Required)
        .map(|((n, _), _)| *n)
        .collect();
    if !missing.is_empty() {
        return Err(BindError::Type(format!(
            "{}() missing {} required positional {}: {}",
            sig.name,
            missing.len(),
            if missing.len() == 1 { "argument" } else { "arguments" },
            quote_list(&missing)
        )));
    }
    Ok(Bound {
        named: named
            .into_iter()
            .zip(sig.params)
            .map(|((n, v), (_, d))| (n, v.or_else(|| d.value()).unwrap_or(Value::Nil)))
            .collect(),
        varargs,
        kwargs: extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::map;

    const ECHO: Signature =
        Signature { name: "echo", params: &[("text", Def::Required)], varargs: false, varkw: false };
    const GET: Signature = Signature {
        name: "get",
        params: &[
            ("key", Def::Required),
            ("default", Def::Str("")),
            ("delimiter", Def::Str(":")),
            ("ordered", Def::Bool(true)),
        ],
        varargs: false,
        varkw: false,
    };
    const KW: Signature =
        Signature { name: "run", params: &[("cmd", Def::Required), ("cwd", Def::None)], varargs: false, varkw: true };

    fn kwarg(pairs: &[(&str, Value)]) -> Value {
        let mut m = vec![("__kwarg__", Value::Boolean(true))];
        m.extend(pairs.iter().cloned());
        map(m)
    }

    #[test]
    fn binding() {
        let b = bind(&ECHO, &[s("hi")], None);
        assert_eq!(b.map(|b| b.get("text").clone()), Ok(s("hi")));
        let b = bind(&GET, &[s("os"), kwarg(&[("default", s("x"))])], None);
        assert_eq!(b.map(|b| b.get("default").clone()), Ok(s("x")));
        let b = bind(&GET, &[s("os"), s("delimiter=|")], None);
        assert_eq!(b.map(|b| b.get("delimiter").clone()), Ok(s("|")));
        let b = bind(&GET, &[s("os")], None);
        assert_eq!(b.map(|b| b.get("ordered").clone()), Ok(Value::Boolean(true)));
    }

    #[test]
    fn python_type_errors() {
        let e = bind(&ECHO, &[], None).err();
        assert_eq!(e, Some(BindError::Type("echo() missing 1 required positional argument: 'text'".into())));
        let e = bind(&ECHO, &[s("a"), s("b")], None).err();
        assert_eq!(e, Some(BindError::Type("echo() takes 1 positional argument but 2 were given".into())));
        let e = bind(&GET, &[s("a"), s("b"), s("c"), s("d"), s("e")], None).err();
        assert_eq!(e, Some(BindError::Type("get() takes from 1 to 4 positional arguments but 5 were given".into())));
        let e = bind(&ECHO, &[s("a"), kwarg(&[("text", s("b"))])], None).err();
        assert_eq!(e, Some(BindError::Type("echo() got multiple values for argument 'text'".into())));
    }

    #[test]
    fn invalid_kwargs() {
        let e = bind(&ECHO, &[s("a"), s("foo=bar")], None).err();
        assert_eq!(e, Some(BindError::InvalidKwargs("The following keyword arguments are not valid: foo=bar".into())));
    }

    #[test]
    fn pub_data_for_varkw() {
        let pub_data = map([("jid", s("1")), ("fun", s("cmd.run"))]);
        let b = bind(&KW, &[s("ls"), s("env={'A': 1}")], Some(&pub_data));
        let Ok(b) = b else { panic!("{b:?}") };
        assert_eq!(b.kwarg("__pub_jid"), Some(&s("1")));
        assert_eq!(b.kwarg("env").map(py_str).as_deref(), Some("{'A': 1}"));
    }

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
        assert_eq!(yamlify_arg("1_000"), s("1_000"));
        assert_eq!(yamlify_arg("a: b"), s("a: b"));
        assert_eq!(py_str(&yamlify_arg("{a: b}")), "{'a': 'b'}");
        assert_eq!(yamlify_arg("- x"), s("- x"));
        assert_eq!(yamlify_arg("foo # bar"), s("foo # bar"));
        assert_eq!(yamlify_arg("#"), s("#"));
        assert_eq!(yamlify_arg("|"), s("|"));
        assert_eq!(yamlify_arg("2024-01-02"), s("2024-01-02"));
        assert_eq!(yamlify_arg(""), s(""));
        assert_eq!(yamlify_arg("[unclosed"), s("[unclosed"));
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
