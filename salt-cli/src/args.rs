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
