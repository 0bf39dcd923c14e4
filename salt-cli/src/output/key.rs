//! Salt's `key` outputter (`salt/output/key.py`), what `salt-key` prints: one header per key state
//! (states sorted by their directory name), then each key id, or `id:  value` for fingerprints
//! and printed keys.

use super::colors::Colors;
use crate::py::{as_str, py_str, Value};

/// The header and colour of a state (`minions`, `minions_pre`, ..., `local`).
fn style(c: &Colors, status: &str) -> (String, &'static str) {
    let (title, head, body) = match status {
        "minions_pre" => ("Unaccepted Keys:", c.light_red, c.red),
        "minions" => ("Accepted Keys:", c.light_green, c.green),
        "minions_denied" => ("Denied Keys:", c.light_magenta, c.magenta),
        "minions_rejected" => ("Rejected Keys:", c.light_blue, c.blue),
        _ => ("Local Keys:", c.light_magenta, c.magenta),
    };
    (format!("{head}{title}{}", c.endc), body)
}

fn text(v: &Value) -> String {
    as_str(v).map_or_else(|| py_str(v), str::to_owned)
}

/// `key.output(data)`.
pub fn key(data: &Value, color: bool) -> String {
    let c = Colors::new(color);
    let mut lines = Vec::new();
    let Value::Map(states) = data else { return py_str(data) };
    let mut states: Vec<(String, &Value)> = states.iter().map(|(k, v)| (text(k), v)).collect();
    states.sort_by(|a, b| a.0.cmp(&b.0));
    for (status, keys) in states {
        let (header, body) = style(&c, &status);
        lines.push(header);
        match keys {
            Value::Array(ids) => {
                let mut ids: Vec<String> = ids.iter().map(text).collect();
                ids.sort();
                for id in ids {
                    lines.push(format!("{body}{}{}", id.replace('\x1b', "?"), c.endc));
                }
            }
            Value::Map(entries) => {
                let mut entries: Vec<(String, String)> = entries.iter().map(|(k, v)| (text(k), text(v))).collect();
                entries.sort();
                for (id, val) in entries {
                    lines.push(format!("{body}{}:  {val}{}", id.replace('\x1b', "?"), c.endc));
                }
            }
            _ => {}
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py::string;

    #[test]
    fn like_salt_key() {
        let ids = |v: &[&str]| Value::Array(v.iter().map(|s| string(*s)).collect());
        let data = Value::Map(vec![
            (string("minions_pre"), ids(&["b", "a"])),
            (string("minions_rejected"), ids(&[])),
            (string("minions"), ids(&["m1"])),
            (string("minions_denied"), ids(&[])),
        ]);
        assert_eq!(key(&data, false), "Accepted Keys:\nm1\nDenied Keys:\nUnaccepted Keys:\na\nb\nRejected Keys:");
        let fingers = Value::Map(vec![(string("local"), Value::Map(vec![(string("master.pub"), string("aa:bb"))]))]);
        assert_eq!(key(&fingers, false), "Local Keys:\nmaster.pub:  aa:bb");
        assert_eq!(key(&data, true).lines().next(), Some("\x1b[0;1;32mAccepted Keys:\x1b[0;0m"));
    }
}
