//! YAML loading with Salt's semantics.
//!
//! Salt reads its config files and YAML-looking CLI arguments with
//! `salt.utils.yaml.safe_load` (`utils/yamlloader.py`, class `SaltYamlSafeLoader`), which is
//! PyYAML's `SafeLoader`, i.e. **YAML 1.1** scalar resolution, with Salt's changes:
//!
//! - plain `yes`/`no`/`on`/`off` (any of the three casings) are booleans, `~`/`null`/empty are null;
//! - integers: `0x…`, `0b…`, `1_000`, sexagesimal `1:30`; a leading-zero integer such as `0755` is
//!   read **as decimal** (Salt strips the zeros; PyYAML alone would read octal);
//! - floats need a dot (`1e3` is a string), `.inf`, `.nan`, sexagesimal `1:30.5`;
//! - timestamps (`2024-01-02`) stay strings (Salt maps the timestamp tag to `construct_scalar`);
//! - `!!binary` is base64-decoded (padding tolerated); `<<` merge keys are supported;
//! - a key repeated in one mapping is an error (`found conflicting ID`), as is an unhashable key.
//!
//! Parsing is done by `yaml-rust2`'s event parser (pure Rust); resolution and construction are
//! here, because YAML 1.2 libraries resolve plain scalars differently.

use std::collections::HashMap;
use std::rc::Rc;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use crate::value::{string, Value};

/// A YAML document that Salt's loader would reject.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{msg}{}", .line.map(|l| format!(" (line {l})")).unwrap_or_default())]
pub struct YamlError {
    /// What went wrong.
    pub msg: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
}

impl YamlError {
    fn new(msg: impl Into<String>, line: Option<usize>) -> Self {
        Self { msg: msg.into(), line }
    }
}

/// A mapping entry: key node, value node.
type Pair = (Rc<Node>, Rc<Node>);

#[derive(Debug, Clone)]
enum Node {
    Scalar { value: String, style: TScalarStyle, tag: Option<Tag>, line: usize },
    Seq { items: Vec<Rc<Node>>, tag: Option<Tag>, line: usize },
    Map { pairs: Vec<Pair>, tag: Option<Tag>, line: usize },
}

impl Node {
    fn line(&self) -> usize {
        match self {
            Node::Scalar { line, .. } | Node::Seq { line, .. } | Node::Map { line, .. } => *line,
        }
    }
}

enum Frame {
    Seq { anchor: usize, tag: Option<Tag>, items: Vec<Rc<Node>>, line: usize },
    Map { anchor: usize, tag: Option<Tag>, items: Vec<Rc<Node>>, line: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Rc<Node>>,
    docs: Vec<Rc<Node>>,
    error: Option<YamlError>,
}

impl Builder {
    fn push_node(&mut self, node: Rc<Node>, anchor: usize) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            Some(Frame::Seq { items, .. }) | Some(Frame::Map { items, .. }) => items.push(node),
            None => self.docs.push(node),
        }
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        match ev {
            Event::Scalar(value, style, anchor, tag) => {
                let node = Rc::new(Node::Scalar { value, style, tag, line });
                self.push_node(node, anchor);
            }
            Event::SequenceStart(anchor, tag) => self.stack.push(Frame::Seq { anchor, tag, items: Vec::new(), line }),
            Event::MappingStart(anchor, tag) => self.stack.push(Frame::Map { anchor, tag, items: Vec::new(), line }),
            Event::SequenceEnd => {
                if let Some(Frame::Seq { anchor, tag, items, line }) = self.stack.pop() {
                    self.push_node(Rc::new(Node::Seq { items, tag, line }), anchor);
                }
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { anchor, tag, items, line }) = self.stack.pop() {
                    let mut pairs = Vec::with_capacity(items.len() / 2);
                    let mut it = items.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        pairs.push((k, v));
                    }
                    self.push_node(Rc::new(Node::Map { pairs, tag, line }), anchor);
                }
            }
            Event::Alias(id) => match self.anchors.get(&id) {
                Some(node) => {
                    let node = node.clone();
                    self.push_node(node, 0);
                }
                None => {
                    self.error = Some(YamlError::new("found undefined alias", Some(line)));
                }
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentStart | Event::DocumentEnd => {}
        }
    }
}

const CORE: &str = "tag:yaml.org,2002:";

/// Load one YAML document the way `salt.utils.yaml.safe_load` does. An empty stream gives `Nil`.
pub fn safe_load(text: &str) -> Result<Value, YamlError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut builder, true).map_err(|e| {
        // ScanError's Display has "... at byte B line L column C"; keep it as the message.
        YamlError::new(e.to_string(), None)
    })?;
    if let Some(err) = builder.error {
        return Err(err);
    }
    match builder.docs.len() {
        0 => Ok(Value::Nil),
        1 => construct(&builder.docs[0]),
        _ => Err(YamlError::new(
            "expected a single document in the stream, but found another document",
            Some(builder.docs[1].line()),
        )),
    }
}

/// What a plain (unquoted, untagged) scalar resolves to under PyYAML's YAML 1.1 resolver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Implicit {
    Bool,
    Float,
    Int,
    Merge,
    Null,
    Timestamp,
    Str,
}

fn resolve_plain(v: &str) -> Implicit {
    use std::sync::OnceLock;
    static RES: OnceLock<Option<[regex::Regex; 3]>> = OnceLock::new();
    let res = RES.get_or_init(|| {
        let float = regex::Regex::new(
            r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        );
        let int = regex::Regex::new(
            r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+|[-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+)$",
        );
        let ts = regex::Regex::new(
            r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$",
        );
        match (float, int, ts) {
            (Ok(f), Ok(i), Ok(t)) => Some([f, i, t]),
            _ => None,
        }
    });
    match v {
        "yes" | "Yes" | "YES" | "no" | "No" | "NO" | "true" | "True" | "TRUE" | "false" | "False" | "FALSE" | "on"
        | "On" | "ON" | "off" | "Off" | "OFF" => return Implicit::Bool,
        "<<" => return Implicit::Merge,
        "~" | "null" | "Null" | "NULL" | "" => return Implicit::Null,
        _ => {}
    }
    let Some([float, int, ts]) = res else {
        return Implicit::Str;
    };
    let first = v.chars().next().unwrap_or(' ');
    if "-+0123456789.".contains(first) && float.is_match(v) {
        return Implicit::Float;
    }
    if "-+0123456789".contains(first) && int.is_match(v) {
        return Implicit::Int;
    }
    if first.is_ascii_digit() && ts.is_match(v) {
        return Implicit::Timestamp;
    }
    Implicit::Str
}

fn construct_int(raw: &str, line: usize) -> Result<Value, YamlError> {
    let bad = || YamlError::new(format!("invalid literal for int(): '{raw}'"), Some(line));
    // Salt (`SaltYamlSafeLoader.construct_scalar`): a leading "0" that is not "0b"/"0x" is stripped.
    let mut text = raw.to_string();
    if text != "0" && text.starts_with('0') && !text.starts_with("0b") && !text.starts_with("0x") {
        text = text.trim_start_matches('0').to_string();
        if text.is_empty() {
            text = "0".into();
        }
    }
    let mut value: String = text.chars().filter(|c| *c != '_').collect();
    let mut sign: i128 = 1;
    if let Some(rest) = value.strip_prefix('-') {
        sign = -1;
        value = rest.to_string();
    } else if let Some(rest) = value.strip_prefix('+') {
        value = rest.to_string();
    }
    let magnitude: i128 = if value == "0" {
        0
    } else if let Some(b) = value.strip_prefix("0b") {
        i128::from_str_radix(b, 2).map_err(|_| bad())?
    } else if let Some(h) = value.strip_prefix("0x") {
        i128::from_str_radix(h, 16).map_err(|_| bad())?
    } else if value.starts_with('0') {
        i128::from_str_radix(&value, 8).map_err(|_| bad())?
    } else if value.contains(':') {
        let mut acc: i128 = 0;
        for part in value.split(':') {
            acc = acc.checked_mul(60).and_then(|a| a.checked_add(part.parse::<i128>().ok()?)).ok_or_else(bad)?;
        }
        acc
    } else {
        value.parse::<i128>().map_err(|_| bad())?
    };
    let n = sign * magnitude;
    if let Ok(i) = i64::try_from(n) {
        Ok(Value::from(i))
    } else if let Ok(u) = u64::try_from(n) {
        Ok(Value::from(u))
    } else {
        // Python ints are unbounded; msgpack's are not. Keep the digits.
        Ok(string(n.to_string()))
    }
}

fn construct_float(raw: &str, line: usize) -> Result<Value, YamlError> {
    let mut value: String = raw.chars().filter(|c| *c != '_').collect::<String>();
    value = value.to_lowercase();
    let mut sign = 1.0;
    if let Some(rest) = value.strip_prefix('-') {
        sign = -1.0;
        value = rest.to_string();
    } else if let Some(rest) = value.strip_prefix('+') {
        value = rest.to_string();
    }
    let f = if value == ".inf" {
        f64::INFINITY
    } else if value == ".nan" {
        f64::NAN
    } else if value.contains(':') {
        let mut acc = 0.0;
        for part in value.split(':') {
            let p: f64 = part.parse().map_err(|_| YamlError::new(format!("invalid float '{raw}'"), Some(line)))?;
            acc = acc * 60.0 + p;
        }
        acc
    } else {
        let v = if value.ends_with('.') { format!("{value}0") } else { value.clone() };
        v.parse::<f64>().map_err(|_| YamlError::new(format!("invalid float '{raw}'"), Some(line)))?
    };
    Ok(Value::F64(sign * f))
}

fn construct_bool(raw: &str, line: usize) -> Result<Value, YamlError> {
    match raw.to_lowercase().as_str() {
        "yes" | "true" | "on" => Ok(Value::Boolean(true)),
        "no" | "false" | "off" => Ok(Value::Boolean(false)),
        _ => Err(YamlError::new(format!("invalid boolean '{raw}'"), Some(line))),
    }
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn tag_name(tag: &Tag) -> String {
    format!("{}{}", tag.handle, tag.suffix)
}

fn construct_scalar(value: &str, style: TScalarStyle, tag: Option<&Tag>, line: usize) -> Result<Value, YamlError> {
    let kind = match tag {
        None if style == TScalarStyle::Plain => resolve_plain(value),
        None => Implicit::Str,
        Some(t) if t.handle == "!" && t.suffix.is_empty() => Implicit::Str,
        Some(t) if t.handle == CORE => match t.suffix.as_str() {
            "str" => Implicit::Str,
            "int" => Implicit::Int,
            "float" => Implicit::Float,
            "bool" => Implicit::Bool,
            "null" => Implicit::Null,
            "timestamp" => Implicit::Timestamp,
            "binary" => {
                let decoded =
                    base64_decode(value).ok_or_else(|| YamlError::new("failed to decode base64 data", Some(line)))?;
                return Ok(Value::Binary(decoded));
            }
            _ => {
                return Err(YamlError::new(
                    format!("could not determine a constructor for the tag '{}'", tag_name(t)),
                    Some(line),
                ))
            }
        },
        Some(t) => {
            return Err(YamlError::new(
                format!("could not determine a constructor for the tag '{}'", tag_name(t)),
                Some(line),
            ))
        }
    };
    match kind {
        Implicit::Bool => construct_bool(value, line),
        Implicit::Int => construct_int(value, line),
        Implicit::Float => construct_float(value, line),
        Implicit::Null => Ok(Value::Nil),
        Implicit::Merge | Implicit::Timestamp | Implicit::Str => Ok(string(value)),
    }
}

fn is_merge_key(node: &Node) -> bool {
    match node {
        Node::Scalar { value, style, tag, .. } => match tag {
            None => *style == TScalarStyle::Plain && value == "<<",
            Some(t) => t.handle == CORE && t.suffix == "merge",
        },
        _ => false,
    }
}

/// PyYAML `flatten_mapping` with Salt's variant: merged pairs come first, minus the keys the
/// mapping sets itself (compared on the key's source text).
fn flatten(pairs: &[Pair]) -> Result<Vec<Pair>, YamlError> {
    let mut merge: Vec<Pair> = Vec::new();
    let mut own: Vec<Pair> = Vec::new();
    for (k, v) in pairs {
        if is_merge_key(k) {
            match &**v {
                Node::Map { pairs: sub, .. } => merge.extend(flatten(sub)?),
                Node::Seq { items, line, .. } => {
                    let mut submerge = Vec::new();
                    for item in items {
                        match &**item {
                            Node::Map { pairs: sub, .. } => submerge.push(flatten(sub)?),
                            other => {
                                return Err(YamlError::new(
                                    "expected a mapping for merging, but found a non-mapping",
                                    Some(other.line().max(*line)),
                                ))
                            }
                        }
                    }
                    submerge.reverse();
                    for m in submerge {
                        merge.extend(m);
                    }
                }
                other => {
                    return Err(YamlError::new(
                        "expected a mapping or list of mappings for merging",
                        Some(other.line()),
                    ))
                }
            }
        } else {
            own.push((k.clone(), v.clone()));
        }
    }
    if merge.is_empty() {
        return Ok(own);
    }
    let existing: Vec<Option<&str>> = own.iter().map(|(k, _)| scalar_text(k)).collect();
    let mut out: Vec<Pair> = merge
        .into_iter()
        .filter(|(k, _)| {
            let t = scalar_text(k);
            !(t.is_some() && existing.contains(&t))
        })
        .collect();
    out.extend(own);
    Ok(out)
}

fn scalar_text(n: &Node) -> Option<&str> {
    match n {
        Node::Scalar { value, .. } => Some(value.as_str()),
        _ => None,
    }
}

fn construct(node: &Node) -> Result<Value, YamlError> {
    match node {
        Node::Scalar { value, style, tag, line } => construct_scalar(value, *style, tag.as_ref(), *line),
        Node::Seq { items, tag, line } => {
            check_collection_tag(tag.as_ref(), "seq", *line)?;
            Ok(Value::Array(items.iter().map(|i| construct(i)).collect::<Result<_, _>>()?))
        }
        Node::Map { pairs, tag, line } => {
            check_collection_tag(tag.as_ref(), "map", *line)?;
            let flat = flatten(pairs)?;
            let mut out: Vec<(Value, Value)> = Vec::with_capacity(flat.len());
            for (k, v) in flat {
                let key = construct(&k)?;
                if matches!(key, Value::Array(_) | Value::Map(_)) {
                    return Err(YamlError::new("while constructing a mapping: found unacceptable key", Some(k.line())));
                }
                if out.iter().any(|(existing, _)| crate::value::py_eq(existing, &key)) {
                    return Err(YamlError::new(
                        format!("while constructing a mapping: found conflicting ID '{}'", crate::value::py_str(&key)),
                        Some(k.line()),
                    ));
                }
                let val = construct(&v)?;
                out.push((key, val));
            }
            Ok(Value::Map(out))
        }
    }
}

fn check_collection_tag(tag: Option<&Tag>, want: &str, line: usize) -> Result<(), YamlError> {
    match tag {
        None => Ok(()),
        Some(t) if t.handle == "!" && t.suffix.is_empty() => Ok(()),
        Some(t) if t.handle == CORE && t.suffix == want => Ok(()),
        Some(t) => {
            Err(YamlError::new(format!("could not determine a constructor for the tag '{}'", tag_name(t)), Some(line)))
        }
    }
}

/// Whether a plain (unquoted, untagged) scalar with this text loads as a string under PyYAML's
/// YAML 1.1 implicit resolvers (not a bool, int, float, null, timestamp or merge key) — what a
/// dumper checks before writing a string without quotes.
pub fn plain_is_str(text: &str) -> bool {
    resolve_plain(text) == Implicit::Str
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{get, py_str};

    fn load(t: &str) -> Value {
        match safe_load(t) {
            Ok(v) => v,
            Err(e) => panic!("{t:?}: {e}"),
        }
    }

    #[test]
    fn yaml11_scalars() {
        let v = load(
            "a: yes\nb: Off\nc: 0755\nd: 0x1F\ne: 1_000\nf: 1:30\ng: 1e3\nh: 1.5\ni: ~\nj:\nk: 2024-01-02\nl: '0755'\nm: .inf\nn: -0b101\no: 00\np: 12:30.5\n",
        );
        assert_eq!(get(&v, "a"), Some(&Value::Boolean(true)));
        assert_eq!(get(&v, "b"), Some(&Value::Boolean(false)));
        assert_eq!(get(&v, "c"), Some(&Value::from(755)));
        assert_eq!(get(&v, "d"), Some(&Value::from(31)));
        assert_eq!(get(&v, "e"), Some(&Value::from(1000)));
        assert_eq!(get(&v, "f"), Some(&Value::from(90)));
        assert_eq!(get(&v, "g"), Some(&string("1e3")));
        assert_eq!(get(&v, "h"), Some(&Value::F64(1.5)));
        assert_eq!(get(&v, "i"), Some(&Value::Nil));
        assert_eq!(get(&v, "j"), Some(&Value::Nil));
        assert_eq!(get(&v, "k"), Some(&string("2024-01-02")));
        assert_eq!(get(&v, "l"), Some(&string("0755")));
        assert_eq!(get(&v, "m"), Some(&Value::F64(f64::INFINITY)));
        assert_eq!(get(&v, "n"), Some(&Value::from(-5)));
        assert_eq!(get(&v, "o"), Some(&Value::from(0)));
        assert_eq!(get(&v, "p"), Some(&Value::F64(750.5)));
    }

    #[test]
    fn negative_octal_is_octal() {
        // Salt only strips zeros when the text starts with "0"; "-0755" goes to PyYAML's octal.
        assert_eq!(load("-0755"), Value::from(-493));
    }

    #[test]
    fn tags_and_binary() {
        let v = load("a: !!str 123\nb: !!binary aGVsbG8\nc: !!int '42'\n");
        assert_eq!(get(&v, "a"), Some(&string("123")));
        assert_eq!(get(&v, "b"), Some(&Value::Binary(b"hello".to_vec())));
        assert_eq!(get(&v, "c"), Some(&Value::from(42)));
        assert!(safe_load("a: !custom x").is_err());
    }

    #[test]
    fn merge_keys_and_aliases() {
        let v = load("base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\n");
        let d = get(&v, "derived").cloned().unwrap_or(Value::Nil);
        assert_eq!(py_str(&d), "{'x': 1, 'y': 3}");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let e = safe_load("a: 1\na: 2\n").err().map(|e| e.msg).unwrap_or_default();
        assert!(e.contains("found conflicting ID 'a'"), "{e}");
    }

    #[test]
    fn empty_and_multi_documents() {
        assert_eq!(load(""), Value::Nil);
        assert_eq!(load("# only a comment\n"), Value::Nil);
        assert!(safe_load("a: 1\n---\nb: 2\n").is_err());
    }

    #[test]
    fn syntax_errors_are_errors() {
        assert!(safe_load("a: [1, 2\n").is_err());
        assert!(safe_load("a: b: c\n").is_err());
    }
}
