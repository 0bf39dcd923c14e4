//! Salt's `yaml` outputter: PyYAML's `safe_dump(data, default_flow_style=False, allow_unicode=True)`
//! as `salt/output/yaml_out.py` calls it — block style, keys sorted, empty collections as `[]`/`{}`,
//! scalars plain when PyYAML would leave them plain, else single- or double-quoted, long lines folded
//! at 80 columns (PyYAML `emitter.py`: `analyze_scalar`, `choose_scalar_style`, `write_plain`,
//! `write_single_quoted`, `write_double_quoted`).

use crate::py::{as_str, py_float_repr, sorted_items, Value};

const BEST_WIDTH: usize = 80;
const BEST_INDENT: usize = 2;

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

fn is_ws(c: Option<char>) -> bool {
    c.map_or(true, |c| matches!(c, '\0' | ' ' | '\t' | '\r') || is_break(c))
}

fn is_printable_unicode(c: char) -> bool {
    (c == '\u{85}'
        || ('\u{a0}'..='\u{d7ff}').contains(&c)
        || ('\u{e000}'..='\u{fffd}').contains(&c)
        || c >= '\u{10000}')
        && c != '\u{feff}'
}

/// What `analyze_scalar` allows for a text.
struct Analysis {
    multiline: bool,
    allow_block_plain: bool,
    allow_single_quoted: bool,
}

fn analyze(text: &str) -> Analysis {
    if text.is_empty() {
        return Analysis { multiline: false, allow_block_plain: true, allow_single_quoted: true };
    }
    let chars: Vec<char> = text.chars().collect();
    let (mut block_ind, mut line_breaks, mut special) = (false, false, false);
    let (mut lead_space, mut lead_break, mut trail_space, mut trail_break) = (false, false, false, false);
    let (mut break_space, mut space_break, mut prev_space, mut prev_break) = (false, false, false, false);
    if text.starts_with("---") || text.starts_with("...") {
        block_ind = true;
    }
    let mut preceded_ws = true;
    let mut followed_ws = chars.len() == 1 || is_ws(chars.get(1).copied());
    let last = chars.len() - 1;
    for (i, &ch) in chars.iter().enumerate() {
        if i == 0 {
            if "#,[]{}&*!|>'\"%@`".contains(ch) {
                block_ind = true;
            }
            if (ch == '?' || ch == ':' || ch == '-') && followed_ws {
                block_ind = true;
            }
        } else if (ch == ':' && followed_ws) || (ch == '#' && preceded_ws) {
            block_ind = true;
        }
        if is_break(ch) {
            line_breaks = true;
        }
        if !(ch == '\n' || (' '..='~').contains(&ch) || is_printable_unicode(ch)) {
            special = true;
        }
        if ch == ' ' {
            lead_space |= i == 0;
            trail_space |= i == last;
            break_space |= prev_break;
            prev_space = true;
            prev_break = false;
        } else if is_break(ch) {
            lead_break |= i == 0;
            trail_break |= i == last;
            space_break |= prev_space;
            prev_space = false;
            prev_break = true;
        } else {
            prev_space = false;
            prev_break = false;
        }
        preceded_ws = is_ws(Some(ch));
        followed_ws = i + 2 > last || is_ws(chars.get(i + 2).copied());
    }
    let mut plain = !(lead_space || lead_break || trail_space || trail_break);
    let mut single = true;
    if break_space {
        plain = false;
        single = false;
    }
    if space_break || special {
        plain = false;
        single = false;
    }
    if line_breaks || block_ind {
        plain = false;
    }
    Analysis { multiline: line_breaks, allow_block_plain: plain, allow_single_quoted: single }
}

/// Would the text, written plain, load back as this same string (PyYAML's implicit resolvers;
/// `=` is the `value` resolver PyYAML also quotes)?
fn resolves_to_str(text: &str) -> bool {
    text != "=" && salt_core::yaml::plain_is_str(text)
}

#[derive(Clone, Copy, PartialEq)]
enum Style {
    Plain,
    Single,
    Double,
}

/// PyYAML's emitter state needed for indentation and folding.
struct Emitter {
    out: String,
    column: usize,
    whitespace: bool,
    indention: bool,
    open_ended: bool,
}

impl Emitter {
    fn write(&mut self, data: &str) {
        self.column += data.chars().count();
        self.out.push_str(data);
    }

    fn line_break(&mut self) {
        self.out.push('\n');
        self.whitespace = true;
        self.indention = true;
        self.column = 0;
    }

    fn write_indent(&mut self, indent: usize) {
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.line_break();
        }
        if self.column < indent {
            self.whitespace = true;
            let pad = " ".repeat(indent - self.column);
            self.write(&pad);
        }
    }

    fn indicator(&mut self, ind: &str, need_ws: bool, whitespace: bool, indention: bool) {
        if self.whitespace || !need_ws {
            self.write(ind);
        } else {
            self.write(&format!(" {ind}"));
        }
        self.whitespace = whitespace;
        self.indention = self.indention && indention;
    }

    fn write_plain(&mut self, text: &str, indent: usize, split: bool) {
        if text.is_empty() {
            return;
        }
        if !self.whitespace {
            self.write(" ");
        }
        self.whitespace = false;
        self.indention = false;
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let mut start = 0;
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split {
                        self.write_indent(indent);
                        self.whitespace = false;
                        self.indention = false;
                    } else {
                        let data: String = chars[start..end].iter().collect();
                        self.write(&data);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    if chars[start] == '\n' {
                        self.line_break();
                    }
                    for &br in &chars[start..end] {
                        if br == '\n' {
                            self.line_break();
                        } else {
                            self.out.push(br);
                            self.column = 0;
                        }
                    }
                    self.write_indent(indent);
                    self.whitespace = false;
                    self.indention = false;
                    start = end;
                }
            } else if ch.map_or(true, |c| c == ' ' || is_break(c)) {
                let data: String = chars[start..end].iter().collect();
                self.write(&data);
                start = end;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
        }
    }

    fn write_single(&mut self, text: &str, indent: usize, split: bool) {
        self.indicator("'", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let (mut spaces, mut breaks) = (false, false);
        let mut start = 0;
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            if spaces {
                if ch != Some(' ') {
                    if start + 1 == end && self.column > BEST_WIDTH && split && start != 0 && end != chars.len() {
                        self.write_indent(indent);
                    } else {
                        let data: String = chars[start..end].iter().collect();
                        self.write(&data);
                    }
                    start = end;
                }
            } else if breaks {
                if !ch.is_some_and(is_break) {
                    if chars[start] == '\n' {
                        self.line_break();
                    }
                    for &br in &chars[start..end] {
                        if br == '\n' {
                            self.line_break();
                        } else {
                            self.out.push(br);
                            self.column = 0;
                        }
                    }
                    self.write_indent(indent);
                    start = end;
                }
            } else if ch.map_or(true, |c| c == ' ' || c == '\'' || is_break(c)) && start < end {
                let data: String = chars[start..end].iter().collect();
                self.write(&data);
                start = end;
            }
            if ch == Some('\'') {
                self.write("''");
                start = end + 1;
            }
            if let Some(c) = ch {
                spaces = c == ' ';
                breaks = is_break(c);
            }
        }
        self.indicator("'", false, false, false);
    }

    fn write_double(&mut self, text: &str, indent: usize, split: bool) {
        self.indicator("\"", true, false, false);
        let chars: Vec<char> = text.chars().collect();
        let mut start = 0;
        for end in 0..=chars.len() {
            let ch = chars.get(end).copied();
            let escape = match ch {
                None => true,
                Some(c) => {
                    "\"\\\u{85}\u{2028}\u{2029}\u{feff}".contains(c)
                        || !((' '..='~').contains(&c)
                            || ('\u{a0}'..='\u{d7ff}').contains(&c)
                            || ('\u{e000}'..='\u{fffd}').contains(&c))
                }
            };
            if escape {
                if start < end {
                    let data: String = chars[start..end].iter().collect();
                    self.write(&data);
                    start = end;
                }
                if let Some(c) = ch {
                    let data = match c {
                        '\0' => "\\0".to_string(),
                        '\x07' => "\\a".into(),
                        '\x08' => "\\b".into(),
                        '\t' => "\\t".into(),
                        '\n' => "\\n".into(),
                        '\x0b' => "\\v".into(),
                        '\x0c' => "\\f".into(),
                        '\r' => "\\r".into(),
                        '\x1b' => "\\e".into(),
                        '"' => "\\\"".into(),
                        '\\' => "\\\\".into(),
                        '\u{85}' => "\\N".into(),
                        '\u{a0}' => "\\_".into(),
                        '\u{2028}' => "\\L".into(),
                        '\u{2029}' => "\\P".into(),
                        c if (c as u32) <= 0xff => format!("\\x{:02X}", c as u32),
                        c if (c as u32) <= 0xffff => format!("\\u{:04X}", c as u32),
                        c => format!("\\U{:08X}", c as u32),
                    };
                    self.write(&data);
                    start = end + 1;
                }
            }
            if end > 0
                && end + 1 < chars.len()
                && (ch == Some(' ') || start >= end)
                && self.column + end.saturating_sub(start) > BEST_WIDTH
                && split
            {
                let mut data: String = chars[start.min(end)..end].iter().collect();
                data.push('\\');
                if start < end {
                    start = end;
                }
                self.write(&data);
                self.write_indent(indent);
                self.whitespace = false;
                self.indention = false;
                if chars.get(start) == Some(&' ') {
                    self.write("\\");
                }
            }
        }
        self.indicator("\"", false, false, false);
    }

    /// A scalar: `indent` is the indentation of continuation lines.
    fn scalar(&mut self, v: &Value, indent: usize, simple_key: bool, root: bool) {
        let (text, implicit_str) = match v {
            Value::Nil => ("null".to_string(), false),
            Value::Boolean(b) => ((if *b { "true" } else { "false" }).to_string(), false),
            Value::Integer(i) => (i.to_string(), false),
            Value::F32(_) | Value::F64(_) => {
                let f = match v {
                    Value::F32(f) => f64::from(*f),
                    Value::F64(f) => *f,
                    _ => 0.0,
                };
                let t = if f.is_nan() {
                    ".nan".to_string()
                } else if f.is_infinite() {
                    (if f > 0.0 { ".inf" } else { "-.inf" }).to_string()
                } else {
                    let r = py_float_repr(f).to_lowercase();
                    if !r.contains('.') && r.contains('e') {
                        r.replacen('e', ".0e", 1)
                    } else {
                        r
                    }
                };
                (t, false)
            }
            other => {
                let t = as_str(other).map_or_else(|| crate::py::py_str(other), str::to_owned);
                let implicit = resolves_to_str(&t);
                (t, implicit)
            }
        };
        let non_str = !matches!(v, Value::String(_) | Value::Binary(_));
        let a = analyze(&text);
        let style =
            if non_str || (implicit_str && !(simple_key && (text.is_empty() || a.multiline)) && a.allow_block_plain) {
                Style::Plain
            } else if a.allow_single_quoted && !(simple_key && a.multiline) {
                Style::Single
            } else {
                Style::Double
            };
        let split = !simple_key;
        match style {
            Style::Plain => {
                if root {
                    self.open_ended = true;
                }
                self.write_plain(&text, indent, split);
            }
            Style::Single => self.write_single(&text, indent, split),
            Style::Double => self.write_double(&text, indent, split),
        }
    }

    /// A node as the value of a mapping key or a sequence item, or the root. `indent` is the current
    /// block indentation (`None` at the root); `mapping_ctx` says it is a mapping value.
    fn node(&mut self, v: &Value, indent: Option<usize>, mapping_ctx: bool, root: bool) {
        match v {
            Value::Map(m) if !m.is_empty() => {
                let ind = indent.map_or(0, |i| i + BEST_INDENT);
                for (_, key, val) in sorted_items(m) {
                    self.write_indent(ind);
                    self.scalar(key, ind + BEST_INDENT, true, false);
                    self.indicator(":", false, false, false);
                    self.node(val, Some(ind), true, false);
                }
            }
            Value::Array(items) if !items.is_empty() => {
                let indentless = mapping_ctx && !self.indention;
                let ind = match indent {
                    None => 0,
                    Some(i) if indentless => i,
                    Some(i) => i + BEST_INDENT,
                };
                for item in items {
                    self.write_indent(ind);
                    self.indicator("-", true, false, true);
                    self.node(item, Some(ind), false, false);
                }
            }
            Value::Map(_) => {
                self.indicator("{", true, true, false);
                self.indicator("}", false, false, false);
            }
            Value::Array(_) => {
                self.indicator("[", true, true, false);
                self.indicator("]", false, false, false);
            }
            scalar => {
                let ind = indent.map_or(0, |i| i + BEST_INDENT);
                self.scalar(scalar, ind, false, root);
            }
        }
    }
}

/// `yaml.safe_dump(data, default_flow_style=False, allow_unicode=True)`.
pub fn dump(data: &Value) -> String {
    let mut e = Emitter { out: String::new(), column: 0, whitespace: true, indention: true, open_ended: false };
    e.node(data, None, false, true);
    e.line_break();
    if e.open_ended {
        e.out.push_str("...\n");
    }
    e.out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py::string;

    fn map(pairs: Vec<(&str, Value)>) -> Value {
        Value::Map(pairs.into_iter().map(|(k, v)| (string(k), v)).collect())
    }

    #[test]
    fn like_pyyaml() {
        // Expected text produced by PyYAML 6 (salt.utils.yaml.safe_dump, default_flow_style=False).
        let inner = map(vec![
            ("a", string("hi\nthere")),
            ("b", string("")),
            ("c", string("yes")),
            ("d", string("12")),
            ("e", string("x: y")),
            ("f", Value::Nil),
            (
                "g",
                Value::Array(vec![
                    Value::from(1),
                    string("a"),
                    Value::Array(vec![Value::from(2), Value::from(3)]),
                    map(vec![("k", string("v")), ("j", Value::Array(vec![]))]),
                ]),
            ),
            ("h", Value::Map(vec![])),
            ("i", string("é")),
            ("j", string(format!("{} {} c", "a".repeat(50), "b".repeat(40)))),
            ("k", string("- x")),
            ("l", string(" lead")),
            ("m", string("tr ")),
            ("n", Value::F64(1.5)),
            ("o", Value::Boolean(true)),
            ("p", string("~")),
            ("q", string("#c")),
            ("r", string("a#b")),
            ("s", string("a #b")),
            ("t", string("@x")),
            ("u", string("1e3")),
            ("v", string("0x1f")),
            ("w", string("null")),
            ("x", string("2026-01-01")),
            ("y", string("1:2")),
            ("z", string("tab\there")),
            ("za", string("ctl\x01")),
        ]);
        let want = "m1:\n  a: 'hi\n\n    there'\n  b: ''\n  c: 'yes'\n  d: '12'\n  e: 'x: y'\n  f: null\n  g:\n  - 1\n  - a\n  - - 2\n    - 3\n  - j: []\n    k: v\n  h: {}\n  i: é\n  j: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n    c\n  k: '- x'\n  l: ' lead'\n  m: 'tr '\n  n: 1.5\n  o: true\n  p: '~'\n  q: '#c'\n  r: a#b\n  s: 'a #b'\n  t: '@x'\n  u: 1e3\n  v: '0x1f'\n  w: 'null'\n  x: '2026-01-01'\n  y: '1:2'\n  z: \"tab\\there\"\n  za: \"ctl\\x01\"\n";
        assert_eq!(dump(&map(vec![("m1", inner)])), want);
    }

    #[test]
    fn roots() {
        assert_eq!(dump(&string("abc")), "abc\n...\n");
        assert_eq!(dump(&Value::Array(vec![string("a"), map(vec![("b", Value::from(1))])])), "- a\n- b: 1\n");
        assert_eq!(dump(&Value::Map(vec![])), "{}\n");
    }
}
