//! Command-line arguments as Salt's CLIs hand them to a job or a runner
//! (`salt/utils/args.py:parse_input`, `condition_input`), on `salt_core::args`.

use salt_core::args::{parse_kwarg, yamlify_arg};

use crate::py::{string, Value};

/// `salt.utils.args.parse_input` + `condition_input`: `key=value` arguments become one trailing
/// `{"__kwarg__": True, ...}` dict, the others are YAML-typed.
pub fn parse_input(args: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut kwargs: Vec<(Value, Value)> = Vec::new();
    for arg in args {
        match parse_kwarg(arg) {
            Some((name, value)) => {
                let v = yamlify_arg(&value);
                match kwargs.iter_mut().find(|(k, _)| k.as_str() == Some(name.as_str())) {
                    Some(slot) => slot.1 = v,
                    None => kwargs.push((string(name), v)),
                }
            }
            None => {
                let v = yamlify_arg(arg);
                // condition_input: an int that looks like a jid is sent as a string.
                let v = match &v {
                    Value::Integer(i) if i.to_string().len() == 20 && arg.chars().all(|c| c.is_ascii_digit()) => {
                        string(arg.as_str())
                    }
                    _ => v,
                };
                out.push(v);
            }
        }
    }
    if !kwargs.is_empty() {
        let mut m = vec![(string("__kwarg__"), Value::Boolean(true))];
        m.extend(kwargs);
        out.push(Value::Map(m));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn like_salt_parse_input() {
        // salt '*' test.arg 1 two '[3]' 20261205050305756518 a=b c=True
        let v = parse_input(&words(&["1", "two", "[3]", "20261205050305756518", "a=b", "c=True"]));
        assert_eq!(v.len(), 5);
        assert_eq!(v[0], Value::from(1));
        assert_eq!(v[1], string("two"));
        assert_eq!(v[2], Value::Array(vec![Value::from(3)]));
        // A jid stays text (condition_input).
        assert_eq!(v[3], string("20261205050305756518"));
        assert_eq!(
            v[4],
            Value::Map(vec![
                (string("__kwarg__"), Value::Boolean(true)),
                (string("a"), string("b")),
                (string("c"), Value::Boolean(true)),
            ])
        );
        assert!(parse_input(&[]).is_empty());
    }
}
