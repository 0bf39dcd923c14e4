//! `_return`: the load a minion sends back over 4506 for each job ([`ReturnLoad`]).

use rmpv::Value;

use super::{need_str, opt_str};
use crate::error::{Error, Result};
use crate::value::{as_str, get, string};

/// A job return load (`cmd: "_return"`, minion.py `_thread_return` +
/// `_prepare_return_pub`), sent as an aes request.
#[derive(Debug, Clone, PartialEq)]
pub struct ReturnLoad {
    /// Minion id.
    pub id: String,
    /// The job id.
    pub jid: String,
    /// The function that ran.
    pub fun: Value,
    /// Its arguments (the publish `arg`).
    pub fun_args: Vec<Value>,
    /// The function's return value (key `"return"`).
    pub ret: Value,
    /// Exit code (usually an int).
    pub retcode: Value,
    /// Whether the function succeeded.
    pub success: bool,
    /// The outputter name, if any.
    pub out: Option<String>,
    /// Other keys (`user`, `master_id`, `metadata`, ...), written between
    /// `fun_args` and `out`.
    pub extra: Vec<(String, Value)>,
}

impl ReturnLoad {
    /// The load map in the order a Python minion writes it: `cmd`, `id`,
    /// `success`, `return`, `retcode`, `jid`, `fun`, `fun_args`, extras,
    /// `out`. ([`seal_aes_request`](super::seal_aes_request) then adds `nonce`, `ts`, `tok`.)
    pub fn to_value(&self) -> Value {
        let mut m: Vec<(Value, Value)> = vec![
            (string("cmd"), string("_return")),
            (string("id"), string(self.id.clone())),
            (string("success"), Value::Boolean(self.success)),
            (string("return"), self.ret.clone()),
            (string("retcode"), self.retcode.clone()),
            (string("jid"), string(self.jid.clone())),
            (string("fun"), self.fun.clone()),
            (string("fun_args"), Value::Array(self.fun_args.clone())),
        ];
        for (k, v) in &self.extra {
            m.push((string(k.clone()), v.clone()));
        }
        if let Some(o) = &self.out {
            m.push((string("out"), string(o.clone())));
        }
        Value::Map(m)
    }

    /// Parse a `_return` load (after [`open_aes_request`](super::open_aes_request)). `ts` is
    /// dropped; unknown keys go to `extra`.
    pub fn from_value(v: &Value) -> Result<Self> {
        let Value::Map(pairs) = v else {
            return Err(Error::bad("return load is not a map"));
        };
        if let Some(cmd) = get(v, "cmd").and_then(as_str) {
            if cmd != "_return" {
                return Err(Error::bad("not a _return load"));
            }
        }
        let fun_args = match get(v, "fun_args") {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        };
        let mut extra = Vec::new();
        for (k, val) in pairs {
            let Some(k) = as_str(k) else { continue };
            match k {
                "cmd" | "id" | "success" | "return" | "retcode" | "jid" | "fun" | "fun_args" | "out" | "ts"
                | "nonce" | "tok" => {}
                _ => extra.push((k.to_owned(), val.clone())),
            }
        }
        Ok(ReturnLoad {
            id: need_str(v, "id")?.to_owned(),
            jid: need_str(v, "jid")?.to_owned(),
            fun: get(v, "fun").cloned().unwrap_or(Value::Nil),
            fun_args,
            ret: get(v, "return").cloned().unwrap_or(Value::Nil),
            retcode: get(v, "retcode").cloned().unwrap_or(Value::from(0)),
            success: matches!(get(v, "success"), Some(Value::Boolean(true))),
            out: opt_str(v, "out"),
            extra,
        })
    }
}
