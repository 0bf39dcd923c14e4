//! `modules/cmdmod.py`: `run`, `run_all`, `retcode` (the common path of `_run` and
//! `utils/timed_subprocess.py:TimedProc`).
//!
//! Mirrored: the signatures (so positional `cwd` etc. bind as in Salt); `python_shell` defaulting to
//! `True` inside a job (`__pub_jid` present) or with `cmd_safe: False`, else `False` (the command
//! is then split with `shlex` and run without a shell); `shell` (default `$SHELL` or `/bin/sh`,
//! must be an executable file); `cwd` (default: the home directory, `/` if unreadable; must be an
//! existing absolute path); `env` (mapping or list of one-key mappings, values `str()`-ed, `None`
//! → `""`), `clean_env`, `prepend_path`, `reset_system_locale` (the `LC_*`/`LANGUAGE` = `C`
//! defaults), `NOTIFY_SOCKET` removal; `stdin` (with `\n` escapes turned into newlines unless
//! `stdin_raw_newlines`); `redirect_stderr` (default `True` for `run`: stderr goes into the same
//! pipe as stdout, `False` for `run_all`; `retcode` always merges); `rstrip` (strips **all** trailing
//! whitespace: `str.rstrip()`); `timeout` (kill, then stdout `"<cmd> : Timed out after N seconds"`,
//! retcode 1); `success_retcodes`/`success_stdout`/`success_stderr`; `ignore_retcode`;
//! `hide_output`; `raise_err`; a process killed by a signal has retcode `-signal` as in Python.
//! The job's retcode is the command's (Salt's `__context__["retcode"]`).
//!
//! Not supported: `runas`/`group`/`password` (ignored with a warning: the command runs as the
//! minion's user), `umask`, `template`, `use_vt`, `bg`, `cmd_blacklist_glob`/`cmd_whitelist_glob`.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use salt_core::args::{shlex_split, split_input};

use super::{py_int, Bound, Ctx, Def, FnError, FnSpec, Output, Signature};
use salt_core::value::{as_str, map, py_repr, py_str, string, truthy, Value};

const RUN_PARAMS: &[(&str, Def)] = &[
    ("cmd", Def::Required),
    ("cwd", Def::None),
    ("stdin", Def::None),
    ("runas", Def::None),
    ("group", Def::None),
    ("shell", Def::None),
    ("python_shell", Def::None),
    ("env", Def::None),
    ("clean_env", Def::Bool(false)),
    ("template", Def::None),
    ("rstrip", Def::Bool(true)),
    ("umask", Def::None),
    ("output_encoding", Def::None),
    ("output_loglevel", Def::Str("debug")),
    ("log_callback", Def::None),
    ("hide_output", Def::Bool(false)),
    ("timeout", Def::None),
    ("reset_system_locale", Def::Bool(true)),
    ("ignore_retcode", Def::Bool(false)),
    ("saltenv", Def::None),
    ("use_vt", Def::Bool(false)),
    ("redirect_stderr", Def::Bool(true)),
    ("bg", Def::Bool(false)),
    ("password", Def::None),
    ("encoded_cmd", Def::Bool(false)),
    ("raise_err", Def::Bool(false)),
    ("prepend_path", Def::None),
    ("success_retcodes", Def::None),
    ("success_stdout", Def::None),
    ("success_stderr", Def::None),
];

const RUN_ALL_PARAMS: &[(&str, Def)] = &[
    ("cmd", Def::Required),
    ("cwd", Def::None),
    ("stdin", Def::None),
    ("runas", Def::None),
    ("group", Def::None),
    ("shell", Def::None),
    ("python_shell", Def::None),
    ("env", Def::None),
    ("clean_env", Def::Bool(false)),
    ("template", Def::None),
    ("rstrip", Def::Bool(true)),
    ("umask", Def::None),
    ("output_encoding", Def::None),
    ("output_loglevel", Def::Str("debug")),
    ("log_callback", Def::None),
    ("hide_output", Def::Bool(false)),
    ("timeout", Def::None),
    ("reset_system_locale", Def::Bool(true)),
    ("ignore_retcode", Def::Bool(false)),
    ("saltenv", Def::None),
    ("use_vt", Def::Bool(false)),
    ("redirect_stderr", Def::Bool(false)),
    ("password", Def::None),
    ("encoded_cmd", Def::Bool(false)),
    ("prepend_path", Def::None),
    ("success_retcodes", Def::None),
    ("success_stdout", Def::None),
    ("success_stderr", Def::None),
];

const RETCODE_PARAMS: &[(&str, Def)] = &[
    ("cmd", Def::Required),
    ("cwd", Def::None),
    ("stdin", Def::None),
    ("runas", Def::None),
    ("group", Def::None),
    ("shell", Def::None),
    ("python_shell", Def::None),
    ("env", Def::None),
    ("clean_env", Def::Bool(false)),
    ("template", Def::None),
    ("umask", Def::None),
    ("output_encoding", Def::None),
    ("output_loglevel", Def::Str("debug")),
    ("log_callback", Def::None),
    ("timeout", Def::None),
    ("reset_system_locale", Def::Bool(true)),
    ("ignore_retcode", Def::Bool(false)),
    ("saltenv", Def::None),
    ("use_vt", Def::Bool(false)),
    ("password", Def::None),
    ("success_retcodes", Def::None),
    ("success_stdout", Def::None),
    ("success_stderr", Def::None),
];

/// The functions of this module.
pub static FUNCTIONS: &[FnSpec] = &[
    FnSpec {
        name: "cmd.retcode",
        sig: Signature { name: "retcode", params: RETCODE_PARAMS, varargs: false, varkw: true },
        doc: "Execute a shell command and return the command's return code.\n\nCLI Example:\n\n    salt '*' cmd.retcode \"file /bin/bash\"",
    },
    FnSpec {
        name: "cmd.run",
        sig: Signature { name: "run", params: RUN_PARAMS, varargs: false, varkw: true },
        doc: "Execute the passed command and return the output as a string\n\nCLI Example:\n\n    salt '*' cmd.run \"ls -l | awk '/foo/{print \\\\$2}'\"",
    },
    FnSpec {
        name: "cmd.run_all",
        sig: Signature { name: "run_all", params: RUN_ALL_PARAMS, varargs: false, varkw: true },
        doc: "Execute the passed command and return a dict of return data\n\nCLI Example:\n\n    salt '*' cmd.run_all \"ls -l | awk '/foo/{print \\\\$2}'\"",
    },
];

/// The result of `_run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunResult {
    /// Child pid.
    pub pid: u32,
    /// Exit code (`-signal` when killed), after the `success_*` rules.
    pub retcode: i64,
    /// Standard output (with stderr when merged).
    pub stdout: String,
    /// Standard error (empty when merged).
    pub stderr: String,
}

/// `DEFAULT_SHELL` (`grains/extra.py:shell`).
pub fn default_shell() -> String {
    std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())
}

fn home_dir() -> Option<String> {
    std::env::var("HOME").ok().filter(|h| !h.is_empty())
}

fn is_executable_file(p: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `_parse_env` + `_ensure_env_str`.
fn parse_env(env: &Value) -> Vec<(String, String)> {
    let pairs: Vec<(Value, Value)> = match env {
        Value::Map(m) => m.clone(),
        // repack_dictlist: a list of one-key mappings.
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::Map(m) if m.len() == 1 => Some(m[0].clone()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    pairs
        .into_iter()
        .map(|(k, v)| {
            let key = as_str(&k).map_or_else(|| py_str(&k), str::to_string);
            let val = match v {
                Value::Nil => {
                    tracing::error!(
                        "Environment variable '{key}' passed without a value. Setting value to an empty string"
                    );
                    String::new()
                }
                other => as_str(&other).map_or_else(|| py_str(&other), str::to_string),
            };
            (key, val)
        })
        .collect()
}

/// Options of one command run (the parts of `_run`'s arguments this crate honours).
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The command: a string, or a list of arguments.
    pub cmd: Value,
    /// `cwd`.
    pub cwd: Option<String>,
    /// `stdin`.
    pub stdin: Option<String>,
    /// `stdin_raw_newlines`.
    pub stdin_raw_newlines: bool,
    /// `shell`.
    pub shell: Option<String>,
    /// `python_shell` after defaulting.
    pub python_shell: bool,
    /// `env`.
    pub env: Vec<(String, String)>,
    /// `clean_env`.
    pub clean_env: bool,
    /// `prepend_path`.
    pub prepend_path: Option<String>,
    /// `reset_system_locale`.
    pub reset_system_locale: bool,
    /// `rstrip`.
    pub rstrip: bool,
    /// `timeout` in seconds (`None`/0: none).
    pub timeout: Option<f64>,
    /// Merge stderr into stdout.
    pub redirect_stderr: bool,
    /// `success_retcodes`.
    pub success_retcodes: Vec<i64>,
    /// `success_stdout`.
    pub success_stdout: Vec<String>,
    /// `success_stderr`.
    pub success_stderr: Vec<String>,
}

fn opt_string(v: &Value) -> Option<String> {
    match v {
        Value::Nil => None,
        other => Some(py_str(other)),
    }
}

impl RunOptions {
    /// Build from bound arguments, applying `_python_shell_default` and the `runas` warning.
    pub fn from_bound(b: &Bound, ctx: &Ctx, redirect_stderr: bool) -> Result<Self, FnError> {
        for unsupported in ["runas", "group", "password", "umask", "template"] {
            if truthy(b.get(unsupported)) {
                tracing::warn!(
                    "cmd: '{unsupported}' is not supported by this minion and is ignored (running as the minion's user)"
                );
            }
        }
        if truthy(b.get("use_vt")) || truthy(b.get("bg")) {
            tracing::warn!("cmd: 'use_vt'/'bg' are not supported by this minion; running in the foreground");
        }
        let from_job = b.kwarg("__pub_jid").is_some_and(truthy) || ctx.jid().is_some();
        let python_shell = match b.get("python_shell") {
            Value::Nil => from_job || !ctx.config.cmd_safe,
            other => truthy(other),
        };
        let timeout = match b.get("timeout") {
            Value::Nil => None,
            Value::Integer(i) => i.as_f64(),
            Value::F64(f) => Some(*f),
            Value::F32(f) => Some(f64::from(*f)),
            other => {
                return Err(FnError::Exception(format!(
                    "TimedProcTimeoutError: Error: timeout {} must be a number",
                    py_str(other)
                )))
            }
        }
        .filter(|t| *t != 0.0);
        let success_retcodes = match b.get("success_retcodes") {
            Value::Nil => vec![0],
            v => split_input(v)
                .iter()
                .map(|x| {
                    py_int(x).map_err(|_| FnError::Invocation("success_retcodes must be a list of integers".into()))
                })
                .collect::<Result<_, _>>()?,
        };
        let strs = |v: &Value| split_input(v).iter().map(py_str).collect::<Vec<_>>();
        Ok(Self {
            cmd: b.get("cmd").clone(),
            cwd: opt_string(b.get("cwd")).filter(|c| !c.is_empty()),
            stdin: opt_string(b.get("stdin")),
            stdin_raw_newlines: b.kwarg("stdin_raw_newlines").is_some_and(truthy),
            shell: Some(opt_string(b.get("shell")).unwrap_or_else(default_shell)),
            python_shell,
            env: parse_env(b.get("env")),
            clean_env: truthy(b.get("clean_env")),
            prepend_path: opt_string(b.get("prepend_path")),
            reset_system_locale: truthy(b.get("reset_system_locale")),
            rstrip: truthy(b.get("rstrip")),
            timeout,
            redirect_stderr,
            success_retcodes,
            success_stdout: strs(b.get("success_stdout")),
            success_stderr: strs(b.get("success_stderr")),
        })
    }
}

async fn read_all<R: tokio::io::AsyncRead + Unpin>(r: Option<R>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(mut r) = r {
        let _ = r.read_to_end(&mut buf).await;
    }
    buf
}

/// `cmdmod._run` without runas/VT: spawn, feed stdin, collect output, apply timeout and rules.
pub async fn run(opts: &RunOptions) -> Result<RunResult, FnError> {
    let cwd = match &opts.cwd {
        Some(c) => c.clone(),
        None => home_dir().filter(|h| std::fs::read_dir(h).is_ok()).unwrap_or_else(|| "/".into()),
    };
    if let Some(shell) = &opts.shell {
        if !is_executable_file(shell) {
            return Err(FnError::Execution(format!("The shell {shell} is not available")));
        }
    }
    let mut env: Vec<(String, String)> = opts.env.clone();
    if opts.reset_system_locale {
        for k in [
            "LC_CTYPE",
            "LC_NUMERIC",
            "LC_TIME",
            "LC_COLLATE",
            "LC_MONETARY",
            "LC_MESSAGES",
            "LC_PAPER",
            "LC_NAME",
            "LC_ADDRESS",
            "LC_TELEPHONE",
            "LC_MEASUREMENT",
            "LC_IDENTIFICATION",
            "LANGUAGE",
        ] {
            if !env.iter().any(|(e, _)| e == k) {
                env.push((k.into(), "C".into()));
            }
        }
    }
    let mut run_env: Vec<(String, String)> = if opts.clean_env {
        env.clone()
    } else {
        let mut base: Vec<(String, String)> = std::env::vars_os()
            .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
            .collect();
        for (k, v) in &env {
            if let Some(slot) = base.iter_mut().find(|(b, _)| b == k) {
                slot.1 = v.clone();
            } else {
                base.push((k.clone(), v.clone()));
            }
        }
        base
    };
    if let Some(pp) = &opts.prepend_path {
        let cur = run_env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.clone()).unwrap_or_default();
        run_env.retain(|(k, _)| k != "PATH");
        run_env.push(("PATH".into(), format!("{pp}:{cur}")));
    }
    if !env.iter().any(|(k, _)| k == "NOTIFY_SOCKET") {
        run_env.retain(|(k, _)| k != "NOTIFY_SOCKET");
    }
    if !cwd.starts_with('/') || !std::path::Path::new(&cwd).is_dir() {
        return Err(FnError::Execution(format!("Specified cwd '{cwd}' either not absolute or does not exist")));
    }

    // What Python would hand to Popen, and how TimedProc prints it.
    let (argv, shown): (Vec<String>, String) = match (&opts.cmd, opts.python_shell) {
        (Value::Array(items), _) => {
            let v: Vec<String> = items.iter().map(py_str).collect();
            let shown = py_str(&Value::Array(v.iter().map(string).collect()));
            (v, shown)
        }
        (cmd, true) => (vec![py_str(cmd)], py_str(cmd)),
        (cmd, false) => {
            let text = py_str(cmd);
            let v = shlex_split(&text).map_err(|e| FnError::Exception(format!("ValueError: {e}")))?;
            let shown = py_str(&Value::Array(v.iter().map(string).collect()));
            (v, shown)
        }
    };
    let shell_mode = opts.python_shell && !matches!(opts.cmd, Value::Array(_));
    let mut command = if shell_mode {
        let shell = opts.shell.clone().unwrap_or_else(|| "/bin/sh".into());
        let mut c = tokio::process::Command::new(shell);
        std::os::unix::process::CommandExt::arg0(c.as_std_mut(), "/bin/sh");
        c.arg("-c").arg(&argv[0]);
        c
    } else {
        let Some(prog) = argv.first() else {
            return Err(FnError::Execution("Unable to run command '[]': empty command".into()));
        };
        let mut c = tokio::process::Command::new(prog);
        c.args(&argv[1..]);
        c
    };
    command.current_dir(&cwd).env_clear().envs(run_env.iter().map(|(k, v)| (k, v)));
    command.kill_on_drop(true);
    command.stdin(if opts.stdin.is_some() { Stdio::piped() } else { Stdio::null() });

    // stderr into the stdout pipe (subprocess.STDOUT) needs one pipe shared by both.
    let mut merged_reader: Option<tokio::fs::File> = None;
    if opts.redirect_stderr {
        let (r, w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| FnError::Execution(format!("Unable to create a pipe: {e}")))?;
        let w2 = w.try_clone().map_err(|e| FnError::Execution(format!("Unable to create a pipe: {e}")))?;
        command.stdout(Stdio::from(w)).stderr(Stdio::from(w2));
        merged_reader = Some(tokio::fs::File::from_std(std::fs::File::from(r)));
    } else {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    tracing::info!("Executing command {shown} in directory '{cwd}'");
    let mut child = command.spawn().map_err(|e| {
        // TimedProc's Popen kwargs minus env/stdin, as Salt prints them.
        let mut context = format!(
            "{{'cwd': {}, 'shell': {}, 'stdout': -1, 'stderr': {}, 'with_communicate': True, 'timeout': {}, 'bg': False",
            py_repr(&string(&cwd)),
            if shell_mode { "True" } else { "False" },
            if opts.redirect_stderr { -2 } else { -1 },
            opts.timeout.map_or_else(|| "None".to_string(), |t| if t.fract() == 0.0 { format!("{}", t as i64) } else { salt_core::value::py_float_repr(t) }),
        );
        if shell_mode {
            context.push_str(&format!(", 'executable': {}", py_repr(&string(opts.shell.as_deref().unwrap_or("/bin/sh")))));
        }
        context.push_str(", 'close_fds': True}");
        FnError::Execution(format!(
            "Unable to run command '{shown}' with the context '{context}', reason: {}",
            python_os_error(&e, argv.first().map(String::as_str).unwrap_or(""))
        ))
    })?;
    // Close our copies of the merged pipe's write end (held by `command`).
    drop(command);
    let pid = child.id().unwrap_or(0);

    if let (Some(input), Some(mut w)) = (&opts.stdin, child.stdin.take()) {
        let data = if opts.stdin_raw_newlines { input.clone() } else { input.replace("\\n", "\n") };
        tokio::spawn(async move {
            let _ = w.write_all(data.as_bytes()).await;
        });
    }
    let out_pipe = child.stdout.take();
    let err_pipe = child.stderr.take();
    let collect = async {
        let (out, err) = if let Some(r) = merged_reader {
            (read_all(Some(r)).await, Vec::new())
        } else {
            tokio::join!(read_all(out_pipe), read_all(err_pipe))
        };
        let status = child.wait().await;
        (out, err, status)
    };
    let (out, err, status) = match opts.timeout {
        Some(t) if t > 0.0 && t.is_finite() => {
            match tokio::time::timeout(Duration::from_secs_f64(t), collect).await {
                Ok(r) => r,
                Err(_) => {
                    // The `collect` future, and the child in it, is dropped here: kill_on_drop
                    // kills the process (TimedProc: process.kill()) and tokio reaps it.
                    let secs =
                        if t.fract() == 0.0 { format!("{}", t as i64) } else { salt_core::value::py_float_repr(t) };
                    return Ok(RunResult {
                        pid,
                        retcode: 1,
                        stdout: format!("{shown} : Timed out after {secs} seconds"),
                        stderr: String::new(),
                    });
                }
            }
        }
        _ => collect.await,
    };
    let status = status.map_err(|e| FnError::Execution(format!("Unable to wait for command: {e}")))?;
    let retcode: i64 = match status.code() {
        Some(c) => i64::from(c),
        None => {
            use std::os::unix::process::ExitStatusExt;
            -i64::from(status.signal().unwrap_or(0))
        }
    };
    let mut stdout = String::from_utf8_lossy(&out).into_owned();
    let mut stderr = String::from_utf8_lossy(&err).into_owned();
    if opts.rstrip {
        stdout = stdout.trim_end().to_string();
        stderr = stderr.trim_end().to_string();
    }
    let mut res = RunResult { pid, retcode, stdout, stderr };
    if opts.success_retcodes.contains(&res.retcode)
        || opts.success_stdout.iter().any(|x| res.stdout.contains(x.as_str()))
        || opts.success_stderr.iter().any(|x| res.stderr.contains(x.as_str()))
    {
        res.retcode = 0;
    }
    Ok(res)
}

fn python_os_error(e: &std::io::Error, prog: &str) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let text = e.to_string();
            let msg = text.split(" (os error").next().unwrap_or(&text).to_string();
            format!("[Errno {code}] {msg}: {}", py_repr(&string(prog)))
        }
        None => e.to_string(),
    }
}

/// Call one `cmd.*` function.
pub async fn dispatch(fun: &str, b: &Bound, ctx: &Ctx) -> Result<Output, FnError> {
    let redirect = match fun {
        "cmd.retcode" => true,
        _ => truthy(b.get("redirect_stderr")),
    };
    let opts = RunOptions::from_bound(b, ctx, redirect)?;
    let res = run(&opts).await?;
    let ignore = truthy(b.get("ignore_retcode"));
    let ctx_retcode = if ignore { 0 } else { i32::try_from(res.retcode).unwrap_or(1) };
    if res.retcode != 0 && !ignore {
        tracing::error!("Command '{}' failed with return code: {}", py_str(&opts.cmd), res.retcode);
    }
    let hide = truthy(b.get("hide_output"));
    let ret = match fun {
        "cmd.run" => {
            if res.retcode != 0 && !ignore && truthy(b.get("raise_err")) {
                return Err(FnError::Execution(if hide { String::new() } else { res.stdout }));
            }
            string(if hide { String::new() } else { res.stdout })
        }
        "cmd.run_all" => map([
            ("pid", Value::from(res.pid)),
            ("retcode", Value::from(res.retcode)),
            ("stdout", string(if hide { String::new() } else { res.stdout })),
            ("stderr", string(if hide { String::new() } else { res.stderr })),
        ]),
        "cmd.retcode" => Value::from(res.retcode),
        _ => return Err(FnError::NotAvailable(fun.to_string())),
    };
    Ok(Output { ret, retcode: Some(ctx_retcode) })
}

#[cfg(test)]
mod tests {
    use super::super::tests::{ctx, run};
    use super::super::Ctx;
    use salt_core::value::{get, map, string, Value};

    fn job(ctx: &Ctx, fun: &str, arg: Vec<Value>) -> impl std::future::Future<Output = super::super::JobReturn> {
        run(
            ctx.clone(),
            map([
                ("fun", string(fun)),
                ("arg", Value::Array(arg)),
                ("jid", string("20240101000000000001")),
                ("tgt", string("*")),
            ]),
        )
    }

    fn kw(pairs: Vec<(&str, Value)>) -> Value {
        let mut m = vec![("__kwarg__", Value::Boolean(true))];
        m.extend(pairs);
        map(m)
    }

    #[tokio::test]
    async fn run_uses_a_shell_in_jobs_and_merges_stderr() {
        let c = ctx();
        let r = job(&c, "cmd.run", vec![string("echo out; echo err 1>&2; echo   ")]).await;
        assert_eq!(r.ret, string("out\nerr"), "stderr merged, trailing whitespace stripped");
        assert_eq!((r.retcode, r.success), (0, true));
        let r = job(&c, "cmd.run", vec![string("exit 3")]).await;
        assert_eq!((r.ret, r.retcode, r.success), (string(""), 3, false));
    }

    #[tokio::test]
    async fn run_all_shape() {
        let c = ctx();
        let r = job(&c, "cmd.run_all", vec![string("echo out; echo err >&2; exit 2")]).await;
        assert_eq!(get(&r.ret, "stdout"), Some(&string("out")));
        assert_eq!(get(&r.ret, "stderr"), Some(&string("err")));
        assert_eq!(get(&r.ret, "retcode"), Some(&Value::from(2)));
        assert!(matches!(get(&r.ret, "pid"), Some(Value::Integer(_))));
        assert_eq!(r.retcode, 2);
        let Value::Map(m) = &r.ret else { panic!() };
        let keys: Vec<String> = m.iter().map(|(k, _)| salt_core::value::py_str(k)).collect();
        assert_eq!(keys, ["pid", "retcode", "stdout", "stderr"]);
    }

    #[tokio::test]
    async fn retcode_and_kwargs() {
        let c = ctx();
        let r = job(&c, "cmd.retcode", vec![string("false")]).await;
        assert_eq!((r.ret.clone(), r.retcode), (Value::from(1), 1));
        let r = job(&c, "cmd.run", vec![string("pwd"), kw(vec![("cwd", string("/tmp"))])]).await;
        assert_eq!(r.ret, string("/tmp"));
        let r = job(&c, "cmd.run", vec![string("pwd"), string("/")]).await;
        assert_eq!(r.ret, string("/"), "second positional argument is cwd");
        let r = job(&c, "cmd.run", vec![string("echo $FOO-$LC_CTYPE"), string("env={FOO: bar}")]).await;
        assert_eq!(r.ret, string("bar-C"));
        let r = job(&c, "cmd.run", vec![string("cat"), kw(vec![("stdin", string("a\\nb"))])]).await;
        assert_eq!(r.ret, string("a\nb"));
        let r = job(
            &c,
            "cmd.run",
            vec![string("echo 'a  b' | tr -s ' '"), kw(vec![("python_shell", Value::Boolean(false))])],
        )
        .await;
        assert_eq!(r.ret, string("a  b | tr -s"), "no shell: shlex split, echo prints its args");
        let r = job(
            &c,
            "cmd.run",
            vec![string("exit 4"), kw(vec![("success_retcodes", Value::Array(vec![Value::from(4)]))])],
        )
        .await;
        assert_eq!(r.retcode, 0);
        let r = job(&c, "cmd.run", vec![string("exit 4"), kw(vec![("ignore_retcode", Value::Boolean(true))])]).await;
        assert_eq!(r.retcode, 0);
        let r = job(&c, "cmd.run", vec![string("id -un"), kw(vec![("runas", string("nobody"))])]).await;
        assert_eq!(r.retcode, 0, "runas is ignored with a warning");
    }

    #[tokio::test]
    async fn errors_like_salt() {
        let c = ctx();
        let r = job(&c, "cmd.run", vec![string("pwd"), kw(vec![("cwd", string("relative/dir"))])]).await;
        assert_eq!(r.ret, string("ERROR: Specified cwd 'relative/dir' either not absolute or does not exist"));
        assert_eq!(r.retcode, 1);
        let r =
            job(&c, "cmd.run", vec![string("no-such-binary-xyz"), kw(vec![("python_shell", Value::Boolean(false))])])
                .await;
        let text = salt_core::value::py_str(&r.ret);
        assert!(text.starts_with("ERROR: Unable to run command '['no-such-binary-xyz']'"), "{text}");
        assert!(text.contains("[Errno 2] No such file or directory: 'no-such-binary-xyz'"), "{text}");
        assert!(
            text.contains("'shell': False, 'stdout': -1, 'stderr': -2, 'with_communicate': True, 'timeout': None, 'bg': False, 'close_fds': True}'"),
            "{text}"
        );
        let r = job(&c, "cmd.run", vec![string("true"), kw(vec![("shell", string("/nonexistent/sh"))])]).await;
        assert_eq!(r.ret, string("ERROR: The shell /nonexistent/sh is not available"));
        let r = job(&c, "cmd.run", vec![string("sleep 5"), kw(vec![("timeout", Value::from(1))])]).await;
        assert_eq!((r.ret, r.retcode), (string("sleep 5 : Timed out after 1 seconds"), 1));
        let r = job(
            &c,
            "cmd.run",
            vec![string("sleep 5"), kw(vec![("timeout", Value::from(1)), ("python_shell", Value::Boolean(false))])],
        )
        .await;
        assert_eq!(r.ret, string("['sleep', '5'] : Timed out after 1 seconds"));
        let r = job(&c, "cmd.run", vec![string("kill -9 $$")]).await;
        assert_eq!(r.retcode, -9);
    }
}
