//! Which minions a target names, on the master (Salt's
//! `CkMinions.check_minions`): ids come from the accepted keys, grains and
//! pillar from the minion data cache, and each minion is tested with the
//! same matchers a minion runs (`salt_core::matcher`).
//!
//! As in Salt 3008.5 (greedy, `minion_data_cache: True`): id-only targets
//! (glob, pcre, list) consider every accepted key; data targets (grain,
//! grain_pcre, pillar*, ipcidr) only minions with cached grains;
//! `list` also reports listed ids without an accepted key as `missing`.
//! Nodegroups are expanded into compound words (`nodegroup_comp`).

use salt_core::matcher::{matches, MatchContext};
use salt_proto::{value, Value};

use crate::datacache::{DataCache, GRAINS, PILLAR};
use crate::keys::KeyStore;
use crate::state::Master;

/// The result of a target lookup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    /// Matching minion ids, sorted.
    pub minions: Vec<String>,
    /// Listed ids with no accepted key (`list` targets).
    pub missing: Vec<String>,
}

fn words_of(tgt: &Value) -> Vec<String> {
    match tgt {
        Value::Array(a) => a.iter().map(|w| value::as_str(w).map(str::to_owned).unwrap_or_default()).collect(),
        other => value::as_str(other).map(|s| s.split_whitespace().map(str::to_owned).collect()).unwrap_or_default(),
    }
}

/// `nodegroup_comp`: the compound words of nodegroup `name`, nested
/// `N@` groups expanded, wrapped in parentheses; empty when unknown or
/// cyclic.
pub fn nodegroup_words(name: &str, nodegroups: &Value, seen: &mut Vec<String>) -> Vec<String> {
    if seen.iter().any(|s| s == name) {
        tracing::error!("Failed nodegroup expansion: illegal nested nodegroup \"{name}\"");
        return Vec::new();
    }
    let Some(def) = value::get(nodegroups, name) else {
        tracing::error!("Failed nodegroup expansion: unknown nodegroup \"{name}\"");
        return Vec::new();
    };
    let words = match def {
        // A list of ids is an id list.
        Value::Array(a) if a.iter().all(|w| value::as_str(w).is_some_and(|s| !s.contains('@'))) => {
            let ids: Vec<&str> = a.iter().filter_map(value::as_str).collect();
            vec![format!("L@{}", ids.join(","))]
        }
        other => words_of(other),
    };
    seen.push(name.to_owned());
    let mut out = Vec::new();
    for w in words {
        if let Some(inner) = w.strip_prefix("N@").filter(|n| !n.is_empty()) {
            out.extend(nodegroup_words(inner, nodegroups, seen));
        } else {
            out.push(w);
        }
    }
    seen.pop();
    if !out.is_empty() {
        out.insert(0, "(".to_owned());
        out.push(")".to_owned());
    }
    out
}

/// Expand `N@group` words of a compound target.
pub(crate) fn expand_compound(tgt: &Value, nodegroups: &Value) -> Value {
    let mut out = Vec::new();
    for w in words_of(tgt) {
        match w.strip_prefix("N@") {
            Some(name) => out.extend(nodegroup_words(name, nodegroups, &mut Vec::new())),
            None => out.push(w),
        }
    }
    Value::from(out.join(" "))
}

/// Resolve `tgt` of `tgt_type` (with `delimiter` for data targets).
pub fn check_minions(master: &Master, tgt: &Value, tgt_type: &str, delimiter: &str) -> Targets {
    check_minions_in(&master.keystore, &master.datacache, &master.config.nodegroups, tgt, tgt_type, delimiter)
}

/// [`check_minions`] over a key store, a data cache and the `nodegroups` option, without a
/// running master (what the `salt` CLI's `--preview-target` reads from disk).
pub fn check_minions_in(
    keystore: &KeyStore,
    datacache: &DataCache,
    nodegroups: &Value,
    tgt: &Value,
    tgt_type: &str,
    delimiter: &str,
) -> Targets {
    let accepted = keystore.accepted().unwrap_or_default();
    let (tgt, tgt_type) = match tgt_type {
        "nodegroup" => {
            let name = value::as_str(tgt).unwrap_or_default();
            let words = nodegroup_words(name, nodegroups, &mut Vec::new());
            (Value::from(words.join(" ")), "compound")
        }
        "compound" => (expand_compound(tgt, nodegroups), "compound"),
        other => (tgt.clone(), other),
    };
    let mut out = Targets::default();
    if tgt_type == "list" {
        let listed: Vec<String> = match &tgt {
            Value::Array(a) => a.iter().filter_map(value::as_str).map(str::to_owned).collect(),
            other => value::as_str(other)
                .map(|s| s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect())
                .unwrap_or_default(),
        };
        for id in listed {
            if accepted.contains(&id) {
                out.minions.push(id);
            } else {
                out.missing.push(id);
            }
        }
        out.minions.sort();
        out.minions.dedup();
        return out;
    }
    let needs_data = matches!(tgt_type, "grain" | "grain_pcre" | "pillar" | "pillar_pcre" | "pillar_exact" | "ipcidr");
    // A glob or a regular expression matches the id alone: reading every
    // minion's grains and pillar from the data cache for it was about 5% of
    // the master's CPU in a `test.ping` to 5,000 minions (perf).
    let id_only = matches!(tgt_type, "glob" | "pcre");
    let empty = Value::Map(Vec::new());
    for id in accepted {
        let grains = if id_only { None } else { datacache.fetch(GRAINS, &id) };
        if needs_data && grains.is_none() {
            continue;
        }
        let pillar = if id_only { None } else { datacache.fetch(PILLAR, &id) }.unwrap_or_else(|| empty.clone());
        let grains = grains.unwrap_or_else(|| empty.clone());
        let ctx = MatchContext { id: &id, grains: &grains, pillar: Some(&pillar) };
        match matches(&tgt, tgt_type, Some(delimiter), &ctx) {
            Ok(true) => out.minions.push(id),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!("cannot match {tgt_type} target: {e}");
                return out;
            }
        }
    }
    out
}
