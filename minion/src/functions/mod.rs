//! Execution modules and the job-execution rules of `minion.py:Minion._thread_return`.
//!
//! | functions | Salt file |
//! |---|---|
//! | `test.ping`, `test.echo`, `test.version`, `test.sleep` | `modules/test.py` |
//! | `cmd.run`, `cmd.run_all`, `cmd.retcode` | `modules/cmdmod.py` |
//! | `grains.items`, `grains.get`, `grains.item` | `modules/grains.py` |
//! | `saltutil.find_job`, `saltutil.running` | `modules/saltutil.py`, `utils/minion.py:running` |
//! | `sys.list_functions`, `sys.list_modules`, `sys.doc` | `modules/sysmod.py` |
//!
//! [`run_job`] is what the job loop calls for a publish: it registers the job (for
//! `saltutil.find_job`/`running`), binds `arg` like `load_args_and_kwargs`, calls the function and
//! turns the outcome into the fields of the `_return` load (`return`, `retcode`, `success`, `out`)
//! exactly as `_thread_return` does:
//!
//! - retcode is the function's `__context__["retcode"]` (set by `cmd.*`), else 0, else 1 when the
//!   return is a dict whose `result` or `success` is false;
//! - an unknown function returns `"'<fun>' is not available."` with **retcode 1**
//!   (`EX_GENERIC`) and `out: nested`; when other functions start with the same text Salt returns
//!   `sys.doc("<fun>*")` with that string added under `<fun>`, and so do we;
//! - `SaltInvocationError` → `"ERROR executing '<fun>': <msg>"`, `CommandExecutionError` →
//!   `"ERROR: <msg>"`, a `TypeError` from binding → `"Passed invalid arguments to <fun>: <msg>\n<doc>"`,
//!   any other failure → `"The minion function caused an exception: <msg>"`; all retcode 1.

pub mod args;
pub mod cmd;
pub mod grains;
pub mod saltutil;
pub mod sys;
pub mod test;

use std::sync::{Arc, Mutex};

pub use args::{Bound, Def, Signature};

use salt_proto::envelope::PublishLoad;

use crate::config::Config;
use salt_core::value::{get, py_str, string, Value};

/// One callable function: its name, Python signature and documentation.
#[derive(Debug, Clone, Copy)]
pub struct FnSpec {
    /// `module.function`.
    pub name: &'static str,
    /// The Python signature used to bind `arg`.
    pub sig: Signature,
    /// Documentation (`sys.doc`, and appended to argument errors like Salt does).
    pub doc: &'static str,
}

/// Every function this minion provides, sorted by name.
pub fn all_functions() -> Vec<&'static FnSpec> {
    let mut v: Vec<&'static FnSpec> = test::FUNCTIONS
        .iter()
        .chain(cmd::FUNCTIONS)
        .chain(grains::FUNCTIONS)
        .chain(saltutil::FUNCTIONS)
        .chain(sys::FUNCTIONS)
        .collect();
    v.sort_by_key(|f| f.name);
    v
}

/// Look a function up by `module.function`.
pub fn find(name: &str) -> Option<&'static FnSpec> {
    all_functions().into_iter().find(|f| f.name == name)
}

/// Why a function call failed (each maps to one of Salt's error returns).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FnError {
    /// `SaltInvocationError`.
    #[error("{0}")]
    Invocation(String),
    /// `CommandExecutionError`.
    #[error("{0}")]
    Execution(String),
    /// A Python `TypeError` while binding arguments.
    #[error("{0}")]
    BadArgs(String),
    /// Any other exception.
    #[error("{0}")]
    Exception(String),
    /// The function does not exist.
    #[error("'{0}' is not available.")]
    NotAvailable(String),
}

/// A successful call: the return value and the retcode the function put in `__context__`.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// The function's return value.
    pub ret: Value,
    /// `__context__["retcode"]` if the function set it.
    pub retcode: Option<i32>,
}

impl Output {
    /// A return value without a retcode.
    pub fn value(ret: Value) -> Self {
        Self { ret, retcode: None }
    }
}

/// The fields `_thread_return` puts in the `_return` load.
#[derive(Debug, Clone, PartialEq)]
pub struct JobReturn {
    /// `return`.
    pub ret: Value,
    /// `retcode`.
    pub retcode: i32,
    /// `success`.
    pub success: bool,
    /// `out` (`"nested"` on errors).
    pub out: Option<&'static str>,
}

/// Data of one running job as `saltutil.running` reports it: `{"pid": …}` plus the publish load.
#[derive(Debug, Clone)]
struct RunningJob {
    id: u64,
    jid: String,
    data: Value,
}

/// The running-jobs registry (Salt keeps it as files in `cachedir/proc`); cheap to clone, shared.
#[derive(Debug, Clone, Default)]
pub struct JobRegistry {
    inner: Arc<Mutex<(u64, Vec<RunningJob>)>>,
}

/// Removes its job from the registry when dropped.
#[derive(Debug)]
pub struct JobGuard {
    registry: JobRegistry,
    id: u64,
    jid: String,
}

impl JobGuard {
    /// The registered job's jid.
    pub fn jid(&self) -> &str {
        &self.jid
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let mut g = self.registry.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.1.retain(|j| j.id != self.id);
    }
}

impl JobRegistry {
    /// A new, empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register job `jid` from its publish load (`{"pid": <our pid>}` + the load, like the proc
    /// file).
    pub fn start(&self, jid: &str, load: &Value) -> JobGuard {
        let jid = jid.to_string();
        let mut data = vec![(string("pid"), Value::from(std::process::id()))];
        if let Value::Map(entries) = load {
            data.extend(entries.iter().filter(|(k, _)| py_str(k) != "pid").cloned());
        }
        let mut g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.0 += 1;
        let id = g.0;
        g.1.push(RunningJob { id, jid: jid.clone(), data: Value::Map(data) });
        JobGuard { registry: self.clone(), id, jid }
    }

    /// `saltutil.running`: the running jobs except `exclude_jid` (the caller's own job).
    pub fn running(&self, exclude_jid: Option<&str>) -> Vec<Value> {
        let g = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        g.1.iter().filter(|j| Some(j.jid.as_str()) != exclude_jid).map(|j| j.data.clone()).collect()
    }

    /// `saltutil.find_job`: the data of a running job, if any.
    pub fn find(&self, jid: &str, exclude_jid: Option<&str>) -> Option<Value> {
        self.running(exclude_jid).into_iter().find(|d| get(d, "jid").map(py_str).as_deref() == Some(jid))
    }
}

/// What functions can see: config, grains, the jobs registry and the current publish load.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// The minion configuration.
    pub config: Arc<Config>,
    /// The grains (a map).
    pub grains: Arc<Value>,
    /// Running jobs.
    pub jobs: JobRegistry,
    /// The publish load of the current job (`Nil` outside a job); its keys become `__pub_*`.
    pub load: Value,
}

impl Ctx {
    /// The current job's jid, if running inside a job.
    pub fn jid(&self) -> Option<String> {
        get(&self.load, "jid").map(py_str).filter(|j| !j.is_empty())
    }

    /// The same context for another publish load.
    pub fn with_load(&self, load: Value) -> Self {
        Self { load, ..self.clone() }
    }
}

/// Call `fun` with Salt-style `arg` (positional values and `__kwarg__` maps).
pub async fn dispatch(fun: &str, args: &[Value], ctx: &Ctx) -> Result<Output, FnError> {
    let spec = find(fun).ok_or_else(|| FnError::NotAvailable(fun.to_string()))?;
    let pub_data = (!matches!(ctx.load, Value::Nil)).then_some(&ctx.load);
    let bound = match args::bind(&spec.sig, args, pub_data) {
        Ok(b) => b,
        Err(args::BindError::InvalidKwargs(m)) => return Err(FnError::Invocation(m)),
        Err(args::BindError::Type(m)) => return Err(FnError::BadArgs(m)),
    };
    let module = fun.split('.').next().unwrap_or("");
    match module {
        "test" => test::dispatch(fun, &bound, ctx).await,
        "cmd" => cmd::dispatch(fun, &bound, ctx).await,
        "grains" => grains::dispatch(fun, &bound, ctx),
        "saltutil" => saltutil::dispatch(fun, &bound, ctx),
        "sys" => sys::dispatch(fun, &bound, ctx),
        _ => Err(FnError::NotAvailable(fun.to_string())),
    }
}

/// The outputter a module declares for a function (its `__outputter__`), sent as `out` in the
/// `_return` when the job did not set one: `grains.items`, `grains.item` and `grains.setval` use
/// `nested` (`modules/grains.py`); the other modules here declare none.
pub fn outputter(fun: &str) -> Option<&'static str> {
    match fun {
        "grains.items" | "grains.item" | "grains.setval" => Some("nested"),
        _ => None,
    }
}

/// Turn a call's outcome into the `_return` fields, as `_thread_return` does.
pub fn job_return(fun: &str, outcome: Result<Output, FnError>) -> JobReturn {
    let nested = |ret: Value| JobReturn { ret, retcode: 1, success: false, out: Some("nested") };
    match outcome {
        Ok(out) => {
            let mut retcode = out.retcode.unwrap_or(0);
            if retcode == 0 {
                if let Value::Map(_) = &out.ret {
                    let failed = ["result", "success"]
                        .iter()
                        .any(|k| get(&out.ret, k).is_some_and(|v| !salt_core::value::truthy(v)));
                    if failed {
                        retcode = 1;
                    }
                }
            }
            JobReturn { ret: out.ret, retcode, success: retcode == 0, out: None }
        }
        Err(FnError::NotAvailable(_)) => {
            let missing = string(format!("'{fun}' is not available."));
            let pattern = format!("{fun}*");
            let docs: Vec<(Value, Value)> = all_functions()
                .into_iter()
                .filter(|f| salt_core::fnmatch::fnmatch(f.name, &pattern))
                .map(|f| (string(f.name), string(f.doc)))
                .collect();
            if docs.is_empty() {
                nested(missing)
            } else {
                let mut docs = docs;
                docs.push((string(fun), missing));
                nested(Value::Map(docs))
            }
        }
        Err(FnError::Invocation(m)) => nested(string(format!("ERROR executing '{fun}': {m}"))),
        Err(FnError::Execution(m)) => nested(string(format!("ERROR: {m}"))),
        Err(FnError::BadArgs(m)) => {
            let doc = find(fun).map_or("", |f| f.doc);
            nested(string(format!("Passed invalid arguments to {fun}: {m}\n{doc}")))
        }
        Err(FnError::Exception(m)) => nested(string(format!("The minion function caused an exception: {m}"))),
    }
}

/// Run one published job: register it, call `load.fun` with `load.arg`, build the return.
///
/// `raw` is the decrypted publish load as it arrived, which the job's functions see (`__pub_*`)
/// and `saltutil.running` shows. The job stays visible to `saltutil.find_job`/`running` until
/// this future completes (or is dropped).
pub async fn run_job(ctx: Ctx, load: &PublishLoad, raw: Value) -> JobReturn {
    let fun = py_str(&load.fun);
    let _guard = ctx.jobs.start(&load.jid, &raw);
    let ctx = ctx.with_load(raw);
    tracing::info!("Starting a new job {} ({fun})", ctx.jid().unwrap_or_default());
    let outcome = dispatch(&fun, &load.arg, &ctx).await;
    job_return(&fun, outcome)
}

/// Python `int(x)` for the values Salt functions coerce (`test.sleep`, `timeout`).
pub(crate) fn py_int(v: &Value) -> Result<i64, FnError> {
    match v {
        Value::Boolean(b) => Ok(i64::from(*b)),
        Value::Integer(i) => i.as_i64().ok_or_else(|| FnError::Exception("OverflowError: int too large".into())),
        Value::F64(f) if f.is_finite() => Ok(f.trunc() as i64),
        Value::F32(f) if f.is_finite() => Ok(f.trunc() as i64),
        Value::String(_) => {
            let t = py_str(v);
            t.trim().replace('_', "").parse::<i64>().map_err(|_| {
                FnError::Exception(format!(
                    "ValueError: invalid literal for int() with base 10: {}",
                    salt_core::value::py_repr(v)
                ))
            })
        }
        other => Err(FnError::Exception(format!(
            "TypeError: int() argument must be a string, a bytes-like object or a real number, not '{}'",
            match other {
                Value::Nil => "NoneType",
                Value::Array(_) => "list",
                Value::Map(_) => "dict",
                _ => "object",
            }
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn ctx() -> Ctx {
        let config = Config::load(
            "/nonexistent-minion-test-dir",
            &crate::config::LoadOptions { id_override: Some("m1".into()), cache_minion_id: false },
        );
        let config = match config {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        Ctx {
            config: Arc::new(config),
            grains: Arc::new(salt_core::value::map([
                ("os", string("Debian")),
                ("pkg", salt_core::value::map([("apache", string("httpd"))])),
                ("roles", salt_core::value::str_list(["web", "db"])),
            ])),
            jobs: JobRegistry::new(),
            load: Value::Nil,
        }
    }

    /// Run a job from a raw publish load, as the job loop does.
    pub(crate) async fn run(ctx: Ctx, raw: Value) -> JobReturn {
        let load = match PublishLoad::from_value(&raw) {
            Ok(l) => l,
            Err(e) => panic!("{e}"),
        };
        run_job(ctx, &load, raw).await
    }

    fn load(fun: &str, arg: Vec<Value>) -> Value {
        salt_core::value::map([
            ("fun", string(fun)),
            ("arg", Value::Array(arg)),
            ("jid", string("20240101000000000000")),
            ("tgt", string("*")),
            ("tgt_type", string("glob")),
        ])
    }

    #[tokio::test]
    async fn ping_and_unknown() {
        let r = run(ctx(), load("test.ping", vec![])).await;
        assert_eq!((r.ret, r.retcode, r.success), (Value::Boolean(true), 0, true));
        let r = run(ctx(), load("foo.bar", vec![])).await;
        assert_eq!(r.ret, string("'foo.bar' is not available."));
        assert_eq!((r.retcode, r.success, r.out), (1, false, Some("nested")));
        let r = run(ctx(), load("test.pin", vec![])).await;
        let Value::Map(m) = &r.ret else { panic!("{:?}", r.ret) };
        assert_eq!(m.len(), 2, "sys.doc('test.pin*') plus the missing-function text");
        assert_eq!(get(&r.ret, "test.pin"), Some(&string("'test.pin' is not available.")));
    }

    #[tokio::test]
    async fn argument_errors() {
        let r = run(ctx(), load("test.ping", vec![string("foo=bar")])).await;
        assert_eq!(
            r.ret,
            string("ERROR executing 'test.ping': The following keyword arguments are not valid: foo=bar")
        );
        assert_eq!(r.retcode, 1);
        let r = run(ctx(), load("test.echo", vec![])).await;
        let text = py_str(&r.ret);
        assert!(
            text.starts_with(
                "Passed invalid arguments to test.echo: echo() missing 1 required positional argument: 'text'\n"
            ),
            "{text}"
        );
        let r = run(ctx(), load("test.sleep", vec![string("abc")])).await;
        assert_eq!(
            r.ret,
            string(
                "The minion function caused an exception: ValueError: invalid literal for int() with base 10: 'abc'"
            )
        );
    }

    #[tokio::test]
    async fn find_job_sees_running_jobs() {
        let c = ctx();
        let mut sleeper = load("test.sleep", vec![Value::from(2)]);
        salt_core::value::insert(&mut sleeper, "jid", string("111"));
        let bg = tokio::spawn(run(c.clone(), sleeper));
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let r = run(c.clone(), load("saltutil.find_job", vec![string("111")])).await;
        assert_eq!(get(&r.ret, "fun"), Some(&string("test.sleep")));
        assert_eq!(get(&r.ret, "pid"), Some(&Value::from(std::process::id())));
        let r = run(c.clone(), load("saltutil.running", vec![])).await;
        let Value::Array(list) = &r.ret else { panic!() };
        assert_eq!(list.len(), 1, "the caller itself is not listed");
        let r = run(c.clone(), load("saltutil.find_job", vec![string("999")])).await;
        assert_eq!(r.ret, Value::Map(Vec::new()));
        let done = bg.await.map(|r| r.ret).ok();
        assert_eq!(done, Some(Value::Boolean(true)));
        let r = run(c, load("saltutil.find_job", vec![string("111")])).await;
        assert_eq!(r.ret, Value::Map(Vec::new()), "finished jobs are gone");
    }

    #[tokio::test]
    async fn dict_result_false_sets_retcode() {
        let r = job_return("x.y", Ok(Output::value(salt_core::value::map([("result", Value::Boolean(false))]))));
        assert_eq!((r.retcode, r.success), (1, false));
    }
}
