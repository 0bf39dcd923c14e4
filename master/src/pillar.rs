//! Pillar compilation for `_pillar` (Salt's `salt.pillar.Pillar`).
//!
//! Not built yet: the master answers every minion with an empty pillar
//! `{}` (what Salt gives with no `pillar_roots` top file), signed and
//! encrypted like any pillar. A pillar module reading `pillar_roots`
//! (top file + YAML sls) replaces the body of [`compile`].

use salt_proto::Value;

use crate::state::Master;

/// The pillar of minion `id` with `grains` in `saltenv` / `pillarenv`.
pub fn compile(
    _master: &Master,
    _id: &str,
    _grains: &Value,
    _saltenv: Option<&str>,
    _pillarenv: Option<&str>,
) -> Value {
    Value::Map(Vec::new())
}
