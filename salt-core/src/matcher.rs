//! Targeting: does a publish's `tgt`/`tgt_type` select a minion, given its id, grains and pillar?
//!
//! The minion runs it over its own grains (`Minion._target_load`); the master can run it over the
//! grains and pillar it caches per minion (`CkMinions`). Mirrors Salt's `matchers/` modules:
//!
//! | `tgt_type` | Salt file | semantics |
//! |---|---|---|
//! | `glob` | `glob_match.py` | `fnmatch.fnmatch(id, tgt)`: case-sensitive, `*` `?` `[seq]` `[!seq]` |
//! | `pcre` | `pcre_match.py` | `re.match(tgt, id)`: anchored at the start only |
//! | `list` | `list_match.py` | comma string (substring rules of the Python code) or list membership |
//! | `grain` | `grain_match.py` | `utils/data.py:subdict_match`: `key:sub:value`, glob on `str(value).lower()`, lists match if any element does |
//! | `grain_pcre` | `grain_pcre_match.py` | same with `re.match` |
//! | `pillar` | `pillar_match.py` | `subdict_match` over the pillar, like `grain` |
//! | `pillar_pcre` | `pillar_pcre_match.py` | same with `re.match` |
//! | `ipcidr` | `ipcidr_match.py` | address or network against the `ipv4`/`ipv6` grains |
//! | `compound` | `compound_match.py` | `and`/`or`/`not`/parentheses over `G@ P@ I@ J@ L@ E@ S@` words, others glob |
//!
//! Pillar targets need a pillar in the [`MatchContext`]; without one they are
//! [`MatchError::Unsupported`], as are `pillar_exact`, `nodegroup` (`N@`), `range`, `data` and the
//! resource engines.
//! Salt's `regex` module and Rust's `regex` crate differ on backreferences and lookaround (not
//! supported here: an invalid pattern does not match, as Salt's pcre matcher would raise).

use crate::fnmatch::fnmatch;
use crate::value::{as_str, py_str, Value};

/// A target that cannot be evaluated here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// The target type needs data not at hand (pillar, nodegroups…) or is not implemented.
    #[error("target type '{0}' is not supported by this minion")]
    Unsupported(String),
}

/// What the matchers look at.
#[derive(Debug, Clone, Copy)]
pub struct MatchContext<'a> {
    /// The minion id.
    pub id: &'a str,
    /// The minion's grains (a map).
    pub grains: &'a Value,
    /// The minion's pillar (a map), when known; pillar targets are unsupported without it.
    pub pillar: Option<&'a Value>,
}

/// Compile a Python `re` pattern with the `regex` crate (`None` if unsupported/invalid).
fn compile(pat: &str) -> Option<regex::Regex> {
    match regex::Regex::new(&format!("^(?:{pat})")) {
        Ok(r) => Some(r),
        Err(e) => {
            tracing::error!("Invalid regex '{pat}' in match: {e}");
            None
        }
    }
}

/// `glob_match.match`.
pub fn glob_match(tgt: &Value, id: &str) -> bool {
    as_str(tgt).is_some_and(|t| fnmatch(id, t))
}

/// `pcre_match.match`: `re.match(tgt, id)`.
pub fn pcre_match(tgt: &Value, id: &str) -> bool {
    as_str(tgt).and_then(compile).is_some_and(|r| r.is_match(id))
}

/// `list_match.match`.
pub fn list_match(tgt: &Value, id: &str) -> bool {
    match tgt {
        Value::String(_) => {
            let t = py_str(tgt);
            t.contains(&format!(",{id},"))
                || t.starts_with(&format!("{id},"))
                || t.ends_with(&format!(",{id}"))
                || t == id
        }
        Value::Array(items) => items.iter().any(|i| as_str(i) == Some(id)),
        _ => false,
    }
}

/// `utils/data.py:traverse_dict_and_list` (with the YAML re-try for numeric keys).
pub fn traverse<'a>(data: &'a Value, key: &str, delimiter: &str) -> Option<&'a Value> {
    let mut ptr = data;
    for each in key.split(delimiter) {
        ptr = match ptr {
            Value::Array(items) => {
                let embedded = items.iter().filter(|x| matches!(x, Value::Map(_)));
                match each.parse::<i64>() {
                    Err(_) => {
                        let mut hit = None;
                        for e in embedded {
                            if let Some(v) = crate::value::get(e, each) {
                                hit = Some(v);
                                break;
                            }
                        }
                        hit?
                    }
                    Ok(idx) => {
                        let mut hit = None;
                        for e in embedded {
                            if let Some(v) = crate::value::get_py(e, &Value::from(idx)) {
                                hit = Some(v);
                                break;
                            }
                        }
                        match hit {
                            Some(v) => v,
                            None => {
                                let len = items.len() as i64;
                                let i = if idx < 0 { idx + len } else { idx };
                                if i < 0 || i >= len {
                                    return None;
                                }
                                &items[i as usize]
                            }
                        }
                    }
                }
            }
            Value::Map(_) => match crate::value::get(ptr, each) {
                Some(v) => v,
                None => {
                    let loaded = crate::args::yamlify_arg(each);
                    if loaded == crate::value::string(each) {
                        return None;
                    }
                    crate::value::get_py(ptr, &loaded)?
                }
            },
            _ => return None,
        };
    }
    Some(ptr)
}

fn match_one(target: &Value, pattern: &str, regex: bool) -> bool {
    let t = py_str(target).to_lowercase();
    let p = pattern.to_lowercase();
    if regex {
        compile(&p).is_some_and(|r| r.is_match(&t))
    } else {
        fnmatch(&t, &p)
    }
}

fn dict_match(target: &Value, pattern: &str, regex: bool) -> bool {
    let Value::Map(entries) = target else {
        return false;
    };
    let wildcard = pattern.starts_with("*:");
    let pattern = if wildcard { &pattern[2..] } else { pattern };
    if pattern == "*" || crate::value::get(target, pattern).is_some() {
        return true;
    }
    if entries.iter().any(|(k, _)| match_one(k, pattern, regex)) {
        return true;
    }
    if subdict_match(target, pattern, ":", regex) {
        return true;
    }
    if wildcard {
        for (_, v) in entries {
            let hit = match v {
                Value::Map(_) => dict_match(v, pattern, regex),
                Value::Array(items) => items.iter().any(|i| match_one(i, pattern, regex)),
                other => match_one(other, pattern, regex),
            };
            if hit {
                return true;
            }
        }
    }
    false
}

/// `utils/data.py:subdict_match` (deepest key split tried first).
pub fn subdict_match(data: &Value, expr: &str, delimiter: &str, regex: bool) -> bool {
    let splits: Vec<&str> = expr.split(delimiter).collect();
    if splits.len() == 1 {
        return false;
    }
    for idx in (1..splits.len()).rev() {
        let key = splits[..idx].join(delimiter);
        let (matchstr, found) = if key == "*" {
            (expr.to_string(), Some(data))
        } else {
            (splits[idx..].join(delimiter), traverse(data, &key, delimiter))
        };
        let Some(found) = found else { continue };
        if matches!(found, Value::Map(m) if m.is_empty()) {
            continue;
        }
        match found {
            Value::Map(_) => {
                if dict_match(found, &matchstr, regex) {
                    return true;
                }
            }
            Value::Array(items) => {
                for member in items {
                    if matches!(member, Value::Map(_)) && dict_match(member, &matchstr, regex) {
                        return true;
                    }
                    if match_one(member, &matchstr, regex) {
                        return true;
                    }
                }
            }
            other => {
                if match_one(other, &matchstr, regex) {
                    return true;
                }
            }
        }
    }
    false
}

/// `grain_match.match` / `grain_pcre_match.match`.
pub fn grain_match(tgt: &str, grains: &Value, delimiter: &str, regex: bool) -> bool {
    if !tgt.contains(delimiter) {
        tracing::error!("Got insufficient arguments for grains match statement from master");
        return false;
    }
    subdict_match(grains, tgt, delimiter, regex)
}

/// `pillar_match.match` / `pillar_pcre_match.match`: [`subdict_match`] over the pillar.
pub fn pillar_match(tgt: &str, pillar: &Value, delimiter: &str, regex: bool) -> bool {
    if !tgt.contains(delimiter) {
        tracing::error!("Got insufficient arguments for pillar match statement from master");
        return false;
    }
    subdict_match(pillar, tgt, delimiter, regex)
}

fn need_pillar<'a>(ctx: &MatchContext<'a>) -> Result<&'a Value, MatchError> {
    ctx.pillar.ok_or_else(|| MatchError::Unsupported("pillar".into()))
}

/// `ipcidr_match.match`: an address must be in the `ipv4`/`ipv6` grain, a network must contain one.
pub fn ipcidr_match(tgt: &str, grains: &Value) -> bool {
    use std::net::IpAddr;
    let (addr, prefix): (IpAddr, Option<u8>) = match tgt.split_once('/') {
        None => match tgt.parse() {
            Ok(a) => (a, None),
            Err(_) => {
                tracing::error!("Invalid IP/CIDR target: {tgt}");
                return false;
            }
        },
        Some((a, p)) => match (a.parse::<IpAddr>(), p.parse::<u8>()) {
            (Ok(a), Ok(p)) if p <= if a.is_ipv4() { 32 } else { 128 } => (a, Some(p)),
            _ => {
                tracing::error!("Invalid IP/CIDR target: {tgt}");
                return false;
            }
        },
    };
    let proto = if addr.is_ipv4() { "ipv4" } else { "ipv6" };
    let Some(Value::Array(list)) = crate::value::get(grains, proto) else {
        return false;
    };
    let mine: Vec<IpAddr> = list.iter().filter_map(|v| as_str(v)?.parse().ok()).collect();
    match prefix {
        None => mine.contains(&addr),
        Some(p) => mine.iter().any(|m| in_network(*m, addr, p)),
    }
}

fn in_network(ip: std::net::IpAddr, net: std::net::IpAddr, prefix: u8) -> bool {
    use std::net::IpAddr::{V4, V6};
    match (ip, net) {
        (V4(a), V4(n)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (V6(a), V6(n)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// `utils/minions.py:parse_target`: `(engine, delimiter, pattern)`.
fn parse_target(word: &str) -> (Option<char>, Option<char>, &str) {
    let mut chars = word.char_indices();
    if let Some((_, e)) = chars.next() {
        if "GPIJLNSERTM".contains(e) {
            let rest = &word[e.len_utf8()..];
            if let Some(pat) = rest.strip_prefix('@') {
                if !pat.is_empty() {
                    return (Some(e), None, pat);
                }
            }
            if "GPIJ".contains(e) {
                let mut rc = rest.chars();
                if let (Some(d), Some('@')) = (rc.next(), rc.next()) {
                    let pat = &rest[d.len_utf8() + 1..];
                    if !pat.is_empty() {
                        return (Some(e), Some(d), pat);
                    }
                }
            }
        }
    }
    (None, None, word)
}

/// Python `eval` of a token list made of `True`/`False`/`and`/`or`/`not`/`(`/`)`.
fn eval_bool(tokens: &[&str]) -> Option<bool> {
    fn or_expr(t: &[&str], i: &mut usize) -> Option<bool> {
        let mut v = and_expr(t, i)?;
        while t.get(*i) == Some(&"or") {
            *i += 1;
            let r = and_expr(t, i)?;
            v = v || r;
        }
        Some(v)
    }
    fn and_expr(t: &[&str], i: &mut usize) -> Option<bool> {
        let mut v = not_expr(t, i)?;
        while t.get(*i) == Some(&"and") {
            *i += 1;
            let r = not_expr(t, i)?;
            v = v && r;
        }
        Some(v)
    }
    fn not_expr(t: &[&str], i: &mut usize) -> Option<bool> {
        if t.get(*i) == Some(&"not") {
            *i += 1;
            return Some(!not_expr(t, i)?);
        }
        atom(t, i)
    }
    fn atom(t: &[&str], i: &mut usize) -> Option<bool> {
        let tok = *t.get(*i)?;
        *i += 1;
        match tok {
            "True" => Some(true),
            "False" => Some(false),
            "(" => {
                let v = or_expr(t, i)?;
                if t.get(*i) != Some(&")") {
                    return None;
                }
                *i += 1;
                Some(v)
            }
            _ => None,
        }
    }
    let mut i = 0;
    let v = or_expr(tokens, &mut i)?;
    (i == tokens.len()).then_some(v)
}

/// `compound_match.match`. Invalid expressions do not match (Salt logs and returns False).
pub fn compound_match(tgt: &Value, ctx: &MatchContext<'_>) -> Result<bool, MatchError> {
    let words: Vec<String> = match tgt {
        Value::String(_) => py_str(tgt).split_whitespace().map(str::to_string).collect(),
        Value::Array(items) => items.iter().map(py_str).collect(),
        _ => {
            tracing::error!("Compound target received that is neither string, list nor tuple");
            return Ok(false);
        }
    };
    let mut results: Vec<&'static str> = Vec::new();
    const OPERS: [&str; 5] = ["and", "or", "not", "(", ")"];
    for word in &words {
        if let Some(op) = OPERS.iter().find(|o| **o == word.as_str()) {
            if let Some(last) = results.last() {
                if *last == "(" && (*op == "and" || *op == "or") {
                    tracing::error!("Invalid beginning operator after \"(\": {op}");
                    return Ok(false);
                }
                if *op == "not" && !["and", "or", "("].contains(last) {
                    results.push("and");
                }
                results.push(op);
            } else {
                if *op != "(" && *op != "not" {
                    tracing::error!("Invalid beginning operator: {op}");
                    return Ok(false);
                }
                results.push(op);
            }
            continue;
        }
        let (engine, delim, pattern) = parse_target(word);
        let delimiter = delim.map_or(":".to_string(), |d| d.to_string());
        let r = match engine {
            None => fnmatch(ctx.id, word),
            Some('G') => grain_match(pattern, ctx.grains, &delimiter, false),
            Some('P') => grain_match(pattern, ctx.grains, &delimiter, true),
            Some('L') => list_match(&crate::value::string(pattern), ctx.id),
            Some('E') => pcre_match(&crate::value::string(pattern), ctx.id),
            Some('S') => ipcidr_match(pattern, ctx.grains),
            Some('I') => pillar_match(pattern, need_pillar(ctx)?, &delimiter, false),
            Some('J') => pillar_match(pattern, need_pillar(ctx)?, &delimiter, true),
            Some('N') => return Err(MatchError::Unsupported("nodegroup".into())),
            Some(e) => {
                tracing::error!("Unrecognized target engine \"{e}\" for target expression \"{word}\"");
                return Ok(false);
            }
        };
        results.push(if r { "True" } else { "False" });
    }
    match eval_bool(&results) {
        Some(v) => Ok(v),
        None => {
            tracing::error!("Invalid compound target: {words:?} for results: {}", results.join(" "));
            Ok(false)
        }
    }
}

/// Dispatch on `tgt_type` like `Minion._target_load` does with `{tgt_type}_match`.
pub fn matches(
    tgt: &Value,
    tgt_type: &str,
    delimiter: Option<&str>,
    ctx: &MatchContext<'_>,
) -> Result<bool, MatchError> {
    let delimiter = delimiter.unwrap_or(":");
    match tgt_type {
        "glob" => Ok(glob_match(tgt, ctx.id)),
        "pcre" => Ok(pcre_match(tgt, ctx.id)),
        "list" => Ok(list_match(tgt, ctx.id)),
        "grain" => Ok(as_str(tgt).is_some_and(|t| grain_match(t, ctx.grains, delimiter, false))),
        "grain_pcre" => Ok(as_str(tgt).is_some_and(|t| grain_match(t, ctx.grains, delimiter, true))),
        "pillar" | "pillar_pcre" => {
            let pillar = need_pillar(ctx)?;
            Ok(as_str(tgt).is_some_and(|t| pillar_match(t, pillar, delimiter, tgt_type == "pillar_pcre")))
        }
        "ipcidr" => Ok(as_str(tgt).is_some_and(|t| ipcidr_match(t, ctx.grains))),
        "compound" => compound_match(tgt, ctx),
        other => Err(MatchError::Unsupported(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::{map, str_list, string};

    fn grains() -> Value {
        map([
            ("os", string("Debian")),
            ("os_family", string("Debian")),
            ("num_cpus", Value::from(2)),
            ("roles", str_list(["web", "db"])),
            ("virtual", string("kvm")),
            ("ipv4", str_list(["127.0.0.1", "192.0.2.10"])),
            ("ipv6", str_list(["::1", "fd00::2"])),
            ("selinux", map([("enabled", Value::Boolean(false)), ("mode", string("permissive"))])),
            ("url", string("http://x:80")),
            ("nested", map([("list", Value::Array(vec![map([("k", string("v"))])]))])),
            ("ssd", Value::Boolean(true)),
        ])
    }

    #[test]
    fn glob_pcre_list() {
        assert!(glob_match(&string("web*"), "web1"));
        assert!(!glob_match(&Value::from(1), "1"));
        assert!(pcre_match(&string("web\\d"), "web1x"), "re.match anchors at the start only");
        assert!(!pcre_match(&string("eb1"), "web1"));
        assert!(!pcre_match(&string("(unclosed"), "web1"));
        assert!(list_match(&string("a,web1,b"), "web1"));
        assert!(list_match(&string("web1,b"), "web1"));
        assert!(list_match(&string("a,web1"), "web1"));
        assert!(list_match(&string("web1"), "web1"));
        assert!(!list_match(&string("web10,b"), "web1"));
        assert!(list_match(&str_list(["a", "web1"]), "web1"));
        assert!(!list_match(&str_list(["a", "web"]), "web1"));
    }

    #[test]
    fn grain_matching() {
        let g = grains();
        assert!(grain_match("os:Debian", &g, ":", false));
        assert!(grain_match("os:debian", &g, ":", false), "values are compared lowercased");
        assert!(grain_match("os:Deb*", &g, ":", false));
        assert!(!grain_match("os:Ubuntu", &g, ":", false));
        assert!(grain_match("roles:db", &g, ":", false));
        assert!(grain_match("roles:w*", &g, ":", false));
        assert!(!grain_match("roles:mail", &g, ":", false));
        assert!(grain_match("num_cpus:2", &g, ":", false));
        assert!(grain_match("selinux:enabled:False", &g, ":", false));
        assert!(grain_match("selinux:mode:perm*", &g, ":", false));
        assert!(grain_match("selinux:enabled", &g, ":", false), "key existence");
        assert!(grain_match("url:http://x:80", &g, ":", false), "value containing the delimiter");
        assert!(grain_match("nested:list:k:v", &g, ":", false));
        assert!(grain_match("ssd:true", &g, ":", false));
        assert!(!grain_match("os", &g, ":", false), "no delimiter");
        assert!(!grain_match("missing:x", &g, ":", false));
        assert!(grain_match("os|Debian", &g, "|", false));
        assert!(grain_match("os:Deb.*", &g, ":", true));
        assert!(grain_match("roles:d.", &g, ":", true));
        assert!(!grain_match("os:ebian", &g, ":", true));
    }

    #[test]
    fn ipcidr() {
        let g = grains();
        assert!(ipcidr_match("192.0.2.10", &g));
        assert!(ipcidr_match("192.0.2.0/24", &g));
        assert!(!ipcidr_match("198.51.100.0/24", &g));
        assert!(ipcidr_match("fd00::/8", &g));
        assert!(!ipcidr_match("garbage", &g));
    }

    fn ctx(g: &Value) -> MatchContext<'_> {
        MatchContext { id: "web1", grains: g, pillar: None }
    }

    fn c(expr: &str, g: &Value) -> bool {
        compound_match(&string(expr), &ctx(g)).unwrap_or(false)
    }

    #[test]
    fn compound() {
        let g = grains();
        assert!(c("web*", &g));
        assert!(c("G@os:Debian and web*", &g));
        assert!(!c("G@os:Debian and db*", &g));
        assert!(c("G@os:Ubuntu or web1", &g));
        assert!(c("web1 and not G@os:Ubuntu", &g));
        assert!(c("web1 not G@os:Ubuntu", &g), "implicit 'and' before 'not'");
        assert!(!c("not web1", &g));
        assert!(c("( G@os:Ubuntu or L@a,web1 ) and E@web\\d+", &g));
        assert!(!c("( G@os:Ubuntu or L@a,b ) and E@web\\d+", &g));
        assert!(c("P@os:(Debian|Ubuntu)", &g));
        assert!(c("G|@roles|web", &g), "custom delimiter");
        assert!(c("S@192.0.2.0/24", &g));
        assert!(!c("and web1", &g), "leading binary operator");
        assert!(!c("( and web1 )", &g));
        assert!(!c("web1 web2", &g), "two targets without operator");
        assert!(!c("( web1", &g), "unbalanced");
        assert!(!c("", &g));
        assert!(!c("X@foo", &g), "unknown engine word is a glob on the id");
        assert!(c("Z@x or web1", &g));
        assert!(matches!(compound_match(&string("I@role:web"), &ctx(&g)), Err(MatchError::Unsupported(_))));
        assert!(compound_match(&str_list(["web1", "and", "G@os:Debian"]), &ctx(&g)).unwrap_or(false));
    }

    #[test]
    fn dispatch() {
        let g = grains();
        let cx = ctx(&g);
        assert_eq!(matches(&string("web*"), "glob", None, &cx), Ok(true));
        assert_eq!(matches(&string("os:Debian"), "grain", None, &cx), Ok(true));
        assert_eq!(matches(&string("os:Deb.*"), "grain_pcre", None, &cx), Ok(true));
        assert_eq!(matches(&string("192.0.2.10"), "ipcidr", None, &cx), Ok(true));
        assert!(matches(&string("x"), "pillar", None, &cx).is_err());
        assert!(matches(&string("x"), "nodegroup", None, &cx).is_err());
        assert!(compound_match(&string("I@role:db"), &cx).is_err());
    }

    #[test]
    fn pillar_targets() {
        let g = grains();
        let p = map([("role", string("db")), ("apps", str_list(["nginx", "redis"]))]);
        let cx = MatchContext { id: "web1", grains: &g, pillar: Some(&p) };
        assert_eq!(matches(&string("role:db"), "pillar", None, &cx), Ok(true));
        assert_eq!(matches(&string("role:web"), "pillar", None, &cx), Ok(false));
        assert_eq!(matches(&string("apps:red*"), "pillar", None, &cx), Ok(true));
        assert_eq!(matches(&string("role:d.$"), "pillar_pcre", None, &cx), Ok(true));
        assert_eq!(matches(&string("role"), "pillar", None, &cx), Ok(false), "no delimiter");
        assert_eq!(compound_match(&string("I@role:db and web*"), &cx), Ok(true));
        assert_eq!(compound_match(&string("J@role:^w and web*"), &cx), Ok(false));
    }
}
