//! Argument handling as a Salt minion does it.
//!
//! - `utils/args.py`: `parse_kwarg` (`KWARG_REGEX`), `yamlify_arg` (both in [`salt_core::args`]);
//! - `minion.py:load_args_and_kwargs`: a `{"__kwarg__": True, …}` map in `arg` carries keyword
//!   arguments, a `"key=value"` string is a keyword argument too (value YAML-loaded), keywords the
//!   function does not take are "not valid", and functions with `**kwargs` also get the publish
//!   data as `__pub_<key>`;
//! - then Python's own call binding (the `TypeError` texts of CPython 3.11).

use salt_core::args::{parse_kwarg, yamlify_arg};
use salt_core::value::{as_str, py_str, string, Value};

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
            Def::Str(t) => Some(string(t)),
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
            if salt_core::value::get(arg, "__kwarg__") == Some(&Value::Boolean(true)) {
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
    use salt_core::value::map;

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
        let b = bind(&ECHO, &[string("hi")], None);
        assert_eq!(b.map(|b| b.get("text").clone()), Ok(string("hi")));
        let b = bind(&GET, &[string("os"), kwarg(&[("default", string("x"))])], None);
        assert_eq!(b.map(|b| b.get("default").clone()), Ok(string("x")));
        let b = bind(&GET, &[string("os"), string("delimiter=|")], None);
        assert_eq!(b.map(|b| b.get("delimiter").clone()), Ok(string("|")));
        let b = bind(&GET, &[string("os")], None);
        assert_eq!(b.map(|b| b.get("ordered").clone()), Ok(Value::Boolean(true)));
    }

    #[test]
    fn python_type_errors() {
        let e = bind(&ECHO, &[], None).err();
        assert_eq!(e, Some(BindError::Type("echo() missing 1 required positional argument: 'text'".into())));
        let e = bind(&ECHO, &[string("a"), string("b")], None).err();
        assert_eq!(e, Some(BindError::Type("echo() takes 1 positional argument but 2 were given".into())));
        let e = bind(&GET, &[string("a"), string("b"), string("c"), string("d"), string("e")], None).err();
        assert_eq!(e, Some(BindError::Type("get() takes from 1 to 4 positional arguments but 5 were given".into())));
        let e = bind(&ECHO, &[string("a"), kwarg(&[("text", string("b"))])], None).err();
        assert_eq!(e, Some(BindError::Type("echo() got multiple values for argument 'text'".into())));
    }

    #[test]
    fn invalid_kwargs() {
        let e = bind(&ECHO, &[string("a"), string("foo=bar")], None).err();
        assert_eq!(e, Some(BindError::InvalidKwargs("The following keyword arguments are not valid: foo=bar".into())));
    }

    #[test]
    fn pub_data_for_varkw() {
        let pub_data = map([("jid", string("1")), ("fun", string("cmd.run"))]);
        let b = bind(&KW, &[string("ls"), string("env={'A': 1}")], Some(&pub_data));
        let Ok(b) = b else { panic!("{b:?}") };
        assert_eq!(b.kwarg("__pub_jid"), Some(&string("1")));
        assert_eq!(b.kwarg("env").map(py_str).as_deref(), Some("{'A': 1}"));
    }
}
