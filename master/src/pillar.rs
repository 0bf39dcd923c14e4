//! Pillar compilation for `_pillar` (Salt's `salt.pillar.Pillar` with no
//! ext_pillar): the top file (`state_top`, `top.sls`) of each saltenv of
//! `pillar_roots`, its targets matched against the minion's id and grains
//! (`match:` any of Salt's matchers, default compound; nodegroups
//! expanded), the matched sls files rendered and merged in order with
//! `pillar_source_merging_strategy` (`smart` = recursive dict merge, lists
//! replaced unless `pillar_merge_lists`), `include:` in top files and in sls
//! files (globs, relative `.name`, `defaults`/`key`), errors under
//! `_errors` as Salt words them, `pillar_override` merged last.
//!
//! Renderers: plain YAML only. An sls whose renderer pipe (the configured
//! `renderer`, default `jinja|yaml`, or a `#!` line) holds anything but
//! `jinja` and `yaml`, or that contains Jinja syntax (`{{`, `{%`, `{#`),
//! is a render error in `_errors`: Jinja is not implemented here.
//! Files are found with the `roots` backend over `pillar_roots`, so the
//! same path rules hold as for the file server.

use std::collections::HashMap;

use salt_core::matcher::{matches, MatchContext};
use salt_proto::value::{self, as_str, get, string};
use salt_proto::Value;

use crate::roots::{Roots, RootsOpts};
use crate::state::Master;

/// The merged top data: saltenv → [(target, [match dicts and sls names])].
type Top = Vec<(String, Vec<(Value, Vec<Value>)>)>;

/// A target of a top file before sorting: (target, its data, `order`).
type OrderedTarget = (Value, Vec<Value>, i64);

/// What a pillar compilation reads.
struct Ctx<'a> {
    roots: &'a Roots,
    opts: &'a RootsOpts,
    id: &'a str,
    grains: &'a Value,
    nodegroups: &'a Value,
    renderer: String,
    state_top: String,
    pillarenv: Option<String>,
    saltenv: Option<String>,
    env_order: Vec<String>,
    strategy: String,
    merge_lists: bool,
    includes_override: bool,
    safe_errors: bool,
    /// `avail`: sls names per saltenv.
    avail: HashMap<String, Vec<String>>,
    /// sls ignored when missing (`ignore_missing`), per saltenv.
    ignored: HashMap<String, Vec<String>>,
}

/// The pillar of minion `id` with `grains` in `saltenv` / `pillarenv`,
/// `pillar_override` merged last.
pub fn compile(
    master: &Master,
    id: &str,
    grains: &Value,
    saltenv: Option<&str>,
    pillarenv: Option<&str>,
    pillar_override: Option<&Value>,
) -> Value {
    let c = &master.config;
    let pillarenv = effective_pillarenv(c, saltenv, pillarenv);
    let text = |k: &str, d: &str| c.state_opt(k).and_then(as_str).unwrap_or(d).to_owned();
    let state_top = text("state_top", "top.sls");
    let state_top = state_top.strip_prefix("salt://").unwrap_or(&state_top).trim_start_matches('/').to_owned();
    let mut ctx = Ctx {
        roots: &master.pillar_roots,
        opts: &master.roots_opts,
        id,
        grains,
        nodegroups: &c.nodegroups,
        renderer: text("renderer", "jinja|yaml"),
        state_top,
        pillarenv,
        saltenv: saltenv.map(str::to_owned),
        env_order: match c.state_opt("env_order") {
            Some(Value::Array(a)) => a.iter().map(key_text).collect(),
            _ => Vec::new(),
        },
        strategy: c.pillar_source_merging_strategy.clone(),
        merge_lists: c.pillar_merge_lists,
        includes_override: c.pillar_includes_override_sls,
        safe_errors: c.pillar_safe_render_error,
        avail: HashMap::new(),
        ignored: HashMap::new(),
    };
    for env in ctx.envs() {
        let states = ctx.roots.list_states(&env, ctx.opts);
        ctx.avail.insert(env, states);
    }
    let over = match pillar_override {
        None | Some(Value::Nil) => Value::Map(Vec::new()),
        Some(v @ Value::Map(_)) => v.clone(),
        Some(_) => {
            tracing::error!("Pillar data must be a dictionary");
            Value::Map(Vec::new())
        }
    };
    let (top, mut top_errors) = ctx.get_top();
    let matched = ctx.top_matches(&top);
    let (mut pillar, mut errors) = ctx.render_pillar(&matched, over.clone());
    errors.append(&mut top_errors);
    if !errors.is_empty() {
        for e in &errors {
            tracing::error!("Pillar render error: {e}");
        }
        value::insert(&mut pillar, "_errors", value::str_list(&errors));
    }
    if matches!(&over, Value::Map(m) if !m.is_empty()) {
        pillar = ctx.merge(pillar, over);
    }
    pillar
}

/// The pillarenv a compilation uses: the request's, else its saltenv with
/// `pillarenv_from_saltenv`, else the `pillarenv` option.
pub fn effective_pillarenv(
    c: &crate::config::MasterConfig,
    saltenv: Option<&str>,
    pillarenv: Option<&str>,
) -> Option<String> {
    pillarenv
        .map(str::to_owned)
        .or_else(|| if c.pillarenv_from_saltenv { saltenv.map(str::to_owned) } else { None })
        .or_else(|| c.pillarenv.clone())
        .filter(|p| !p.is_empty())
}

/// The data cache key of a pillar (`PillarCache.pillar_key`): the id, or
/// `id:pillarenv`; `-I` targets read the plain id's.
pub fn cache_key(id: &str, pillarenv: Option<&str>) -> String {
    match pillarenv {
        Some(pe) => format!("{id}:{pe}"),
        None => id.to_owned(),
    }
}

/// A rendered file: `Ok(data)` or the render error's text.
fn render(text: &str, default_pipe: &str) -> Result<Value, String> {
    let (pipe, body) = match text.strip_prefix("#!") {
        Some(rest) => {
            let (line, body) = rest.split_once('\n').unwrap_or((rest, ""));
            (line.trim().to_owned(), body)
        }
        None => (default_pipe.to_owned(), text),
    };
    let stages: Vec<&str> = pipe.split('|').map(str::trim).filter(|s| !s.is_empty()).collect();
    if let Some(bad) = stages.iter().find(|s| !matches!(**s, "jinja" | "yaml")) {
        return Err(format!("The renderer \"{bad}\" is not available (salt-master-rs renders plain YAML only)"));
    }
    if stages.contains(&"jinja") && ["{{", "{%", "{#"].iter().any(|m| body.contains(m)) {
        return Err("Jinja templating is not supported by salt-master-rs; the sls must be plain YAML".to_owned());
    }
    if !stages.contains(&"yaml") {
        return Ok(string(body));
    }
    match salt_core::yaml::safe_load(body) {
        Ok(Value::Nil) => Ok(Value::Map(Vec::new())),
        Ok(v) => Ok(v),
        Err(e) => Err(e.to_string()),
    }
}

fn key_text(k: &Value) -> String {
    as_str(k).map(str::to_owned).unwrap_or_else(|| value::py_str(k))
}

impl Ctx<'_> {
    /// `_get_envs`: `base`, then the saltenvs of `pillar_roots` in order.
    fn envs(&self) -> Vec<String> {
        let mut envs = vec!["base".to_owned()];
        for e in self.roots.env_names() {
            if !envs.iter().any(|x| x == e) {
                envs.push(e.to_owned());
            }
        }
        envs
    }

    /// `merge(a, b)` with the configured strategy.
    fn merge(&self, a: Value, b: Value) -> Value {
        let (Value::Map(mut a), Value::Map(b)) = (a, b) else { return Value::Map(Vec::new()) };
        if self.strategy == "overwrite" {
            // merge_overwrite: top-level keys of b replace a's, then recurse.
            for (k, v) in &b {
                if let Some(slot) = a.iter_mut().find(|(x, _)| value::py_eq(x, k)) {
                    slot.1 = v.clone();
                }
            }
        }
        salt_core::config::dict_update_with(&mut a, b, self.merge_lists);
        Value::Map(a)
    }

    /// Render one file of `saltenv` (top or sls).
    fn render_file(&self, path: &std::path::Path) -> Result<Value, String> {
        let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        render(&String::from_utf8_lossy(&text), &self.renderer)
    }

    /// `get_tops` + `merge_tops` + `sort_top_targets`.
    fn get_top(&mut self) -> (Top, Vec<String>) {
        let mut errors = Vec::new();
        let mut saltenvs: Vec<String> = Vec::new();
        if let Some(pe) = &self.pillarenv {
            if self.roots.has_env(pe) {
                saltenvs.push(pe.clone());
            }
        } else {
            saltenvs = self.envs();
            if self.strategy == "none" {
                let only = self.saltenv.clone().unwrap_or_else(|| "base".to_owned());
                saltenvs.retain(|e| *e == only);
            }
        }
        let mut tops: Vec<(String, Vec<Value>)> = Vec::new();
        for env in &saltenvs {
            let Some(found) = self.roots.find_file(&self.state_top, env, self.opts) else { continue };
            match self.render_file(&found.real) {
                Ok(t) => tops.push((env.clone(), vec![t])),
                Err(e) => {
                    // One failure ends the primary top files (Salt's try block).
                    errors.push(format!("Rendering Primary Top file failed, render error:\n{e}"));
                    break;
                }
            }
        }
        // Includes of the top files, each once per saltenv.
        let mut done: HashMap<String, Vec<String>> = HashMap::new();
        let mut pending: Vec<(String, Vec<String>)> = Vec::new();
        for (env, ctops) in &mut tops {
            for t in ctops.iter_mut() {
                if let Some(Value::Array(inc)) = value::remove(t, "include") {
                    pending.push((env.clone(), inc.iter().map(key_text).collect()));
                }
            }
        }
        while let Some((env, sls_list)) = pending.pop() {
            for sls in sls_list {
                let d = done.entry(env.clone()).or_default();
                if d.contains(&sls) {
                    continue;
                }
                d.push(sls.clone());
                let rendered = match self.roots.find_sls(&sls, &env, self.opts) {
                    Some((f, _)) => self.render_file(&f.real),
                    None => Err(format!("sls {sls} not found")),
                };
                match rendered {
                    Ok(t) => {
                        if let Some(slot) = tops.iter_mut().find(|(e, _)| *e == env) {
                            slot.1.push(t);
                        } else {
                            tops.push((env.clone(), vec![t]));
                        }
                    }
                    Err(e) => errors.push(format!("Rendering Top file {sls} failed, render error:\n{e}")),
                }
            }
        }
        // merge_tops: later tops replace a saltenv's target.
        let mut merged: Vec<(String, Vec<OrderedTarget>)> = Vec::new();
        for (_, ctops) in &tops {
            for ctop in ctops {
                let Value::Map(envs) = ctop else {
                    errors.push("Error encountered while rendering pillar top file.".to_owned());
                    continue;
                };
                for (senv, targets) in envs {
                    let senv = key_text(senv);
                    if senv == "include" {
                        continue;
                    }
                    let Value::Map(targets) = targets else {
                        errors.push("Error encountered while rendering pillar top file.".to_owned());
                        continue;
                    };
                    for (tgt, comps) in targets {
                        let mut matchers = Vec::new();
                        let mut states: Vec<Value> = Vec::new();
                        let mut order = 0;
                        let mut ignore_missing = false;
                        let comps = match comps {
                            Value::Array(a) => a.clone(),
                            other => vec![other.clone()],
                        };
                        for comp in comps {
                            match &comp {
                                Value::Map(_) => {
                                    if let Some(o) = get(&comp, "order") {
                                        order = o
                                            .as_i64()
                                            .or_else(|| as_str(o).and_then(|s| s.trim().parse().ok()))
                                            .unwrap_or(0);
                                    }
                                    if get(&comp, "ignore_missing").is_some_and(value::truthy) {
                                        ignore_missing = true;
                                    }
                                    if get(&comp, "match").is_some() {
                                        matchers.push(comp.clone());
                                    }
                                }
                                Value::String(_) if !states.iter().any(|s| value::py_eq(s, &comp)) => {
                                    states.push(comp.clone())
                                }
                                _ => {}
                            }
                        }
                        if ignore_missing {
                            self.ignored.entry(senv.clone()).or_default().extend(states.iter().map(key_text));
                        }
                        matchers.extend(states);
                        let slot = match merged.iter_mut().position(|(e, _)| *e == senv) {
                            Some(i) => &mut merged[i].1,
                            None => {
                                merged.push((senv.clone(), Vec::new()));
                                let last = merged.len() - 1;
                                &mut merged[last].1
                            }
                        };
                        match slot.iter_mut().find(|(t, _, _)| value::py_eq(t, tgt)) {
                            Some(s) => {
                                s.1 = matchers;
                                s.2 = order;
                            }
                            None => slot.push((tgt.clone(), matchers, order)),
                        }
                    }
                }
            }
        }
        let sorted = merged
            .into_iter()
            .map(|(e, mut targets)| {
                targets.sort_by_key(|(_, _, o)| *o);
                (e, targets.into_iter().map(|(t, d, _)| (t, d)).collect())
            })
            .collect();
        (sorted, errors)
    }

    /// `confirm_top`: does target `tgt` with its `data` select this minion?
    fn confirm(&self, tgt: &Value, data: &[Value]) -> bool {
        let mut matcher = "compound".to_owned();
        for item in data {
            if let Some(m) = get(item, "match").and_then(as_str) {
                matcher = m.to_owned();
            }
        }
        let empty = Value::Map(Vec::new());
        let ctx = MatchContext { id: self.id, grains: self.grains, pillar: Some(&empty) };
        let (tgt, matcher) = match matcher.as_str() {
            "nodegroup" => {
                let name = key_text(tgt);
                let words = crate::targeting::nodegroup_words(&name, self.nodegroups, &mut Vec::new());
                (Value::from(words.join(" ")), "compound")
            }
            "compound" => (crate::targeting::expand_compound(tgt, self.nodegroups), "compound"),
            _ => (tgt.clone(), matcher.as_str()),
        };
        match matches(&tgt, matcher, None, &ctx) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!("Attempting to match with unknown matcher: {matcher} ({e})");
                false
            }
        }
    }

    /// `top_matches`: saltenv → sls patterns, in order.
    fn top_matches(&self, top: &Top) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for (env, body) in top {
            if self.pillarenv.as_ref().is_some_and(|pe| pe != env) {
                continue;
            }
            for (tgt, data) in body {
                if !self.confirm(tgt, data) {
                    continue;
                }
                let i = match out.iter().position(|(e, _)| e == env) {
                    Some(i) => i,
                    None => {
                        out.push((env.clone(), Vec::new()));
                        out.len() - 1
                    }
                };
                for item in data.iter().filter_map(as_str) {
                    if !out[i].1.iter().any(|x| x == item) {
                        out[i].1.push(item.to_owned());
                    }
                }
            }
        }
        out
    }

    /// `fnmatch.filter(avail[saltenv], pattern)`.
    fn avail_matching(&self, env: &str, pattern: &str) -> Option<Vec<String>> {
        self.avail.get(env).map(|a| a.iter().filter(|s| salt_core::fnmatch::fnmatch(s, pattern)).cloned().collect())
    }

    /// `render_pillar`.
    fn render_pillar(&self, matched: &[(String, Vec<String>)], start: Value) -> (Value, Vec<String>) {
        let mut pillar = start;
        let mut errors = Vec::new();
        // env_order first, then the other saltenvs as matched.
        let order: Vec<&(String, Vec<String>)> = {
            let mut o: Vec<&(String, Vec<String>)> =
                self.env_order.iter().filter_map(|e| matched.iter().find(|(m, _)| m == e)).collect();
            for m in matched {
                if !o.iter().any(|x| x.0 == m.0) {
                    o.push(m);
                }
            }
            o
        };
        for (env, patterns) in order {
            let mut files = Vec::new();
            for p in patterns {
                match self.avail_matching(env, p) {
                    Some(m) if !m.is_empty() => files.extend(m),
                    Some(_) => files.push(p.clone()),
                    None => {
                        errors.push(format!("No matching pillar environment for environment '{env}' found"));
                        files.push(p.clone());
                    }
                }
            }
            let mut mods: HashMap<String, Option<Value>> = HashMap::new();
            for sls in files {
                let (state, mut err) = self.render_pstate(&sls, env, &mut mods, 0);
                errors.append(&mut err);
                match state {
                    Some(s @ Value::Map(_)) => pillar = self.merge(pillar, s),
                    Some(_) => tracing::error!("The rendered pillar sls file, '{sls}' is not a dictionary"),
                    None => {}
                }
            }
        }
        (pillar, errors)
    }

    /// `render_pstate`: one sls and its includes.
    fn render_pstate(
        &self,
        sls: &str,
        env: &str,
        mods: &mut HashMap<String, Option<Value>>,
        depth: usize,
    ) -> (Option<Value>, Vec<String>) {
        let mut errors = Vec::new();
        let Some((found, is_init)) = self.roots.find_sls(sls, env, self.opts) else {
            if self.ignored.get(env).is_some_and(|i| i.iter().any(|x| x == sls)) {
                tracing::debug!("Skipping ignored and missing SLS '{sls}' in environment '{env}'");
            } else if self.roots.has_dirs(env) {
                errors
                    .push(format!("Specified SLS '{sls}' in environment '{env}' is not available on the salt master"));
            } else {
                tracing::debug!("Specified SLS '{sls}' in environment '{env}' was not found.");
            }
            return (None, errors);
        };
        let state = match self.render_file(&found.real) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::error!("Rendering SLS '{sls}' failed, render error:\n{e}");
                errors.push(if self.safe_errors {
                    format!("Rendering SLS '{sls}' failed. Please see master log for details.")
                } else {
                    format!("Rendering SLS '{sls}' failed, render error:\n{e}")
                });
                None
            }
        };
        mods.insert(sls.to_owned(), state.clone());
        let Some(mut state) = state else { return (None, errors) };
        if !value::truthy(&state) {
            return (Some(state), errors);
        }
        if !matches!(state, Value::Map(_)) {
            errors.push(format!("SLS '{sls}' does not render to a dictionary"));
            return (Some(state), errors);
        }
        let Some(include) = value::get(&state, "include").cloned() else { return (Some(state), errors) };
        let Value::Array(include) = include else {
            errors.push(format!("Include Declaration in SLS '{sls}' is not formed as a list"));
            return (Some(state), errors);
        };
        value::remove(&mut state, "include");
        if depth > 64 {
            errors.push(format!("Include nesting too deep in SLS '{sls}'"));
            return (Some(state), errors);
        }
        let mut include_states = Vec::new();
        for item in include {
            let (mut sub, key) = match &item {
                Value::Map(m) => match m.first() {
                    Some((k, v)) => (key_text(k), get(v, "key").and_then(as_str).map(str::to_owned)),
                    None => continue,
                },
                other => (key_text(other), None),
            };
            let mut matched =
                self.avail_matching(env, &sub.trim_start_matches('.').replace('/', ".")).unwrap_or_default();
            if let Some(rel) = sub.strip_prefix('.') {
                let mut parts: Vec<&str> = sls.split('.').collect();
                if !is_init {
                    parts.pop();
                }
                parts.push(rel);
                sub = parts.join(".");
            }
            matched.extend(self.avail_matching(env, &sub).unwrap_or_default());
            if matched.is_empty() {
                matched.push(sub.clone());
            }
            for m in matched {
                let nstate = if let Some(done) = mods.get(&m) {
                    done.clone()
                } else {
                    let (s, mut e) = self.render_pstate(&m, env, mods, depth + 1);
                    errors.append(&mut e);
                    s
                };
                let Some(mut nstate) = nstate.filter(value::truthy) else { continue };
                if let Some(key) = &key {
                    for frag in key.split(':').rev() {
                        nstate = value::map([(frag, nstate)]);
                    }
                }
                if self.includes_override {
                    state = self.merge(state, nstate);
                } else {
                    include_states.push(nstate);
                }
            }
        }
        if !self.includes_override {
            include_states.push(state);
            let mut acc: Option<Value> = None;
            for s in include_states {
                acc = Some(match acc {
                    None => s,
                    Some(a) => self.merge(a, s),
                });
            }
            state = acc.unwrap_or_else(|| Value::Map(Vec::new()));
        }
        (Some(state), errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_plain_yaml_and_refuses_jinja() {
        assert_eq!(render("a: 1\n", "jinja|yaml"), Ok(value::map([("a", Value::from(1))])));
        assert_eq!(render("", "jinja|yaml"), Ok(Value::Map(Vec::new())));
        assert!(render("a: {{ grains.id }}\n", "jinja|yaml").is_err());
        assert!(render("#!py\ndef run(): pass\n", "jinja|yaml").is_err());
        assert_eq!(
            render("#!yaml\nb: [1]\n", "jinja|yaml"),
            Ok(value::map([("b", Value::Array(vec![Value::from(1)]))]))
        );
    }
}
