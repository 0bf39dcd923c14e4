//! Salt's `nested` outputter (`salt/output/nested.py`), the default for the `salt` CLI, and the
//! `no_return` outputter used for minions that did not return (`salt/output/no_return.py`).

use super::colors::Colors;
use crate::py::{as_str, py_float_repr, py_str, sorted_items, splitlines, Value};

/// `NestDisplay` of `nested.py`.
struct Nest {
    c: Colors,
    /// A non-zero retcode paints lists and mappings red.
    failed: bool,
}

impl Nest {
    fn line(&self, indent: usize, color: &str, msg: &str, prefix: &str, suffix: &str, out: &mut Vec<String>) {
        out.push(format!("{}{color}{prefix}{msg}{}{suffix}", " ".repeat(indent), self.c.endc));
    }

    fn display(&self, ret: &Value, indent: usize, prefix: &str, out: &mut Vec<String>) {
        match ret {
            Value::Nil | Value::Boolean(_) => self.line(indent, self.c.light_yellow, &py_str(ret), prefix, "", out),
            Value::Integer(i) => self.line(indent, self.c.light_yellow, &i.to_string(), prefix, "", out),
            Value::F32(f) => self.line(indent, self.c.light_yellow, &py_float_repr(f64::from(*f)), prefix, "", out),
            Value::F64(f) => self.line(indent, self.c.light_yellow, &py_float_repr(*f), prefix, "", out),
            Value::String(_) | Value::Binary(_) => {
                // Undecodable bytes are neither str nor a container: Salt prints nothing for them.
                let Some(text) = as_str(ret) else { return };
                let pad = " ".repeat(prefix.chars().count());
                for (n, line) in splitlines(text).into_iter().enumerate() {
                    let p = if n == 0 { prefix } else { pad.as_str() };
                    // strip_colors: an ESC in the data becomes "?" so it cannot drive the terminal.
                    let line = line.replace('\x1b', "?");
                    self.line(indent, self.c.green, &line, p, "", out);
                }
            }
            Value::Array(items) => {
                let color = if self.failed { self.c.red } else { self.c.green };
                for item in items {
                    match item {
                        Value::Array(_) | Value::Map(_) => {
                            self.line(indent, color, "|_", "", "", out);
                            let p = if matches!(item, Value::Map(_)) { "" } else { "- " };
                            self.display(item, indent + 2, p, out);
                        }
                        _ => self.display(item, indent, "- ", out),
                    }
                }
            }
            Value::Map(entries) => {
                let color = if self.failed { self.c.red } else { self.c.cyan };
                if indent > 0 {
                    self.line(indent, color, "----------", "", "", out);
                }
                for (key, _, val) in sorted_items(entries) {
                    self.line(indent, color, &key, prefix, ":", out);
                    self.display(val, indent + 4, "", out);
                }
            }
            Value::Ext(..) => {}
        }
    }
}

/// `nested.output(ret, _retcode=retcode)`: the lines joined by newlines.
pub fn nested(ret: &Value, retcode: i64, color: bool) -> String {
    let nest = Nest { c: Colors::new(color), failed: retcode != 0 };
    let mut out = Vec::new();
    nest.display(ret, 0, "", &mut out);
    out.join("\n")
}

/// `no_return.output(ret)`: strings split on `\n` only (empty lines kept), all red.
pub fn no_return(ret: &Value, color: bool) -> String {
    fn walk(c: &Colors, ret: &Value, indent: usize, out: &mut String) {
        if let Some(text) = as_str(ret) {
            for line in text.split('\n') {
                out.push_str(&format!("{}{}{line}{}\n", c.red, " ".repeat(indent), c.endc));
            }
        } else if let Value::Map(entries) = ret {
            for (key, _, val) in sorted_items(entries) {
                out.push_str(&format!("{}{}{key}{}:\n", c.cyan, " ".repeat(indent), c.endc));
                walk(c, val, indent + 4, out);
            }
        }
    }
    let c = Colors::new(color);
    let mut out = String::new();
    walk(&c, ret, 0, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py::string;

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (string(k), v)).collect())
    }

    #[test]
    fn grains_item_like_salt() {
        let ret = map(vec![(
            "m1",
            map(vec![
                ("os", string("Debian")),
                ("id", string("m1")),
                ("osrelease", string("12")),
                ("num_cpus", Value::from(2)),
            ]),
        )]);
        assert_eq!(
            nested(&ret, 0, false),
            "m1:\n    ----------\n    id:\n        m1\n    num_cpus:\n        2\n    os:\n        Debian\n    osrelease:\n        12"
        );
    }

    #[test]
    fn scalars_lists_and_multiline() {
        let ret = map(vec![("m1", Value::Boolean(true))]);
        assert_eq!(nested(&ret, 0, false), "m1:\n    True");
        let ret = map(vec![("m1", string("hi\nthere"))]);
        assert_eq!(nested(&ret, 0, false), "m1:\n    hi\n    there");
        let ret = map(vec![("m1", string(""))]);
        assert_eq!(nested(&ret, 0, false), "m1:");
        let ret = map(vec![(
            "m1",
            Value::Array(vec![string("a"), Value::Array(vec![string("b")]), map(vec![("k", Value::F64(1.5))])]),
        )]);
        assert_eq!(
            nested(&ret, 0, false),
            "m1:\n    - a\n    |_\n      - b\n    |_\n      ----------\n      k:\n          1.5"
        );
    }

    #[test]
    fn colours_wrap_each_piece() {
        let ret = map(vec![("m1", Value::Boolean(true))]);
        assert_eq!(nested(&ret, 0, true), "\x1b[0;36mm1\x1b[0;0m:\n    \x1b[0;1;33mTrue\x1b[0;0m");
    }

    #[test]
    fn no_return_keeps_empty_lines() {
        let ret = map(vec![("ghost", string("a\n\nb"))]);
        assert_eq!(no_return(&ret, false), "ghost:\n    a\n    \n    b\n");
    }
}
