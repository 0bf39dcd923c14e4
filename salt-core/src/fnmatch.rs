//! Python's `fnmatch.fnmatchcase` (what `fnmatch.fnmatch` is on POSIX), as Salt's glob targeting
//! (`matchers/glob_match.py`), grain matching and `include` globbing use it.
//!
//! Case-sensitive; `*`, `?`, `[seq]`, `[!seq]` with ranges, and `]` first in a class is literal.

/// Python `fnmatch.fnmatchcase(name, pat)` (what `fnmatch.fnmatch` is on POSIX).
pub fn fnmatch(name: &str, pat: &str) -> bool {
    let tokens = translate(pat);
    let name: Vec<char> = name.chars().collect();
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match tokens.get(p) {
            Some(Tok::Star) => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(t) if t.matches(name[n]) => {
                p += 1;
                n += 1;
                continue;
            }
            _ => {}
        }
        match star {
            Some((sp, sn)) => {
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            None => return false,
        }
    }
    while matches!(tokens.get(p), Some(Tok::Star)) {
        p += 1;
    }
    p == tokens.len()
}

#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    Any,
    Star,
    /// `negated`, single chars, ranges
    Class(bool, Vec<char>, Vec<(char, char)>),
    Never,
}

impl Tok {
    fn matches(&self, c: char) -> bool {
        match self {
            Tok::Lit(l) => *l == c,
            Tok::Any => true,
            Tok::Star | Tok::Never => false,
            Tok::Class(neg, chars, ranges) => {
                let hit = chars.contains(&c) || ranges.iter().any(|(a, b)| *a <= c && c <= *b);
                hit != *neg
            }
        }
    }
}

/// `fnmatch.translate`, as tokens (Python 3.11 rules for `[...]`, ranges and `!`).
fn translate(pat: &str) -> Vec<Tok> {
    let p: Vec<char> = pat.chars().collect();
    let n = p.len();
    let mut out = Vec::new();
    let mut i = 0;
    while i < n {
        let c = p[i];
        i += 1;
        match c {
            '*' => {
                if !matches!(out.last(), Some(Tok::Star)) {
                    out.push(Tok::Star);
                }
            }
            '?' => out.push(Tok::Any),
            '[' => {
                let mut j = i;
                if j < n && p[j] == '!' {
                    j += 1;
                }
                if j < n && p[j] == ']' {
                    j += 1;
                }
                while j < n && p[j] != ']' {
                    j += 1;
                }
                if j >= n {
                    out.push(Tok::Lit('['));
                    continue;
                }
                out.push(class(&p[i..j]));
                i = j + 1;
            }
            c => out.push(Tok::Lit(c)),
        }
    }
    out
}

/// The body of a `[...]` (without brackets), split into chunks at range hyphens like Python does.
fn class(body: &[char]) -> Tok {
    let negated_src = body.first() == Some(&'!');
    let mut chunks: Vec<Vec<char>> = Vec::new();
    let mut start = 0usize;
    let mut k = if negated_src { 2 } else { 1 };
    loop {
        let found = (k..body.len()).find(|&x| body[x] == '-');
        let Some(h) = found else { break };
        chunks.push(body[start..h].to_vec());
        start = h + 1;
        k = h + 3;
    }
    let last: Vec<char> = body[start.min(body.len())..].to_vec();
    if !last.is_empty() {
        chunks.push(last);
    } else if let Some(l) = chunks.last_mut() {
        l.push('-');
    } else {
        chunks.push(vec!['-']);
    }
    // Remove empty ranges (a > b): merge chunk k-1 (minus its last char) with chunk k (minus first).
    let mut idx = chunks.len();
    while idx > 1 {
        idx -= 1;
        let prev_last = chunks[idx - 1].last().copied();
        let cur_first = chunks[idx].first().copied();
        if let (Some(a), Some(b)) = (prev_last, cur_first) {
            if a > b {
                let cur = chunks.remove(idx);
                let prev = &mut chunks[idx - 1];
                prev.pop();
                prev.extend_from_slice(&cur[1..]);
            }
        }
    }
    // Now the class is chunk0 '-' chunk1 '-' ...; a leading '!' (source negation) stays in chunk0.
    let mut negated = false;
    if let Some(first) = chunks.first_mut() {
        if first.first() == Some(&'!') {
            negated = true;
            first.remove(0);
        }
    }
    let total: usize = chunks.iter().map(Vec::len).sum::<usize>() + chunks.len().saturating_sub(1);
    if total == 0 {
        // "[!]" style: Python turns an empty negated class into "." and an empty class into "(?!)".
        return if negated { Tok::Any } else { Tok::Never };
    }
    let mut chars = Vec::new();
    let mut ranges = Vec::new();
    for (ci, chunk) in chunks.iter().enumerate() {
        let mut body: &[char] = chunk;
        // The first char of chunk ci (ci > 0) is the end of a range started by chunk ci-1.
        if ci > 0 {
            match (chunks[ci - 1].last(), chunk.first()) {
                (Some(_), Some(_)) => body = &chunk[1..],
                _ => chars.push('-'),
            }
        }
        if ci + 1 < chunks.len() && !body.is_empty() {
            if let (Some(a), Some(b)) = (chunk.last(), chunks[ci + 1].first()) {
                ranges.push((*a, *b));
                body = &body[..body.len() - 1];
            }
        }
        chars.extend_from_slice(body);
    }
    Tok::Class(negated, chars, ranges)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnmatch_basics() {
        assert!(fnmatch("web1", "web*"));
        assert!(fnmatch("web1", "*"));
        assert!(fnmatch("", "*"));
        assert!(!fnmatch("Web1", "web*"));
        assert!(fnmatch("web1", "web?"));
        assert!(!fnmatch("web12", "web?"));
        assert!(fnmatch("a/b", "a*b"));
        assert!(fnmatch("a\nb", "a*b"));
        assert!(fnmatch("x.y", "x.y"));
        assert!(!fnmatch("xzy", "x.y"));
        assert!(fnmatch("a+b", "a+b"));
        assert!(fnmatch("abcabc", "*abc"));
        assert!(fnmatch("mississippi", "*sip*"));
        assert!(!fnmatch("mississippi", "*sip"));
    }

    #[test]
    fn fnmatch_classes() {
        assert!(fnmatch("web1", "web[0-9]"));
        assert!(!fnmatch("weba", "web[0-9]"));
        assert!(fnmatch("weba", "web[!0-9]"));
        assert!(fnmatch("web-", "web[a-]"));
        assert!(fnmatch("web-", "web[-a]"));
        assert!(fnmatch("web]", "web[]]"));
        assert!(fnmatch("web[!]", "web[!]"), "'[!]' has no closing bracket: literal");
        assert!(!fnmatch("web!", "web[!]"));
        assert!(fnmatch("web[", "web["));
        assert!(fnmatch("web[1", "web[1"));
        assert!(fnmatch("b", "[a-c]"));
        assert!(!fnmatch("b", "[c-a]"), "empty range never matches");
        assert!(fnmatch("x", "[!c-a]"), "negated empty range matches anything");
        assert!(fnmatch("\\", "[\\]"));
        assert!(fnmatch("^", "[^]"));
        assert!(fnmatch("-", "[!a]"));
        assert!(!fnmatch("a", "[!a]"));
        assert!(fnmatch("é", "?"));
    }
}
