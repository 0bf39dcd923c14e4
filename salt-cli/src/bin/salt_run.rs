//! `salt-run-rs`: Salt 3008's `salt-run` (`salt/cli/run.py`, `SaltRunOptionParser`) for the `jobs`
//! runner: `jobs.list_jobs`, `jobs.lookup_jid JID`, `jobs.list_job JID`, `jobs.active`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use salt_cli::opts::{current_user, MasterOpts, DEFAULT_CONFIG_DIR};
use salt_cli::output::{self, OutputArgs};
use salt_cli::runner::{self, CallArgs};

#[derive(Debug, Parser)]
#[command(
    name = "salt-run",
    override_usage = "salt-run [options] <function> [arguments]",
    about = "salt-run is the frontend command for executing Salt Runners.",
    disable_version_flag = true
)]
struct Cli {
    /// Pass in an alternative configuration directory.
    #[arg(short = 'c', long = "config-dir", env = "SALT_CONFIG_DIR", default_value = DEFAULT_CONFIG_DIR)]
    config_dir: PathBuf,
    /// Change the timeout, if applicable, for the running command (in seconds).
    #[arg(short = 't', long = "timeout")]
    timeout: Option<u64>,
    /// Suppress output.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    #[command(flatten)]
    output: OutputArgs,
    /// Console logging log level.
    #[arg(short = 'l', long = "log-level", default_value = "warning")]
    log_level: String,
    /// The runner function and its arguments.
    args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { salt_cli::EX_USAGE } else { 0 };
            let _ = e.print();
            return ExitCode::from(code as u8);
        }
    };
    salt_cli::init_logging(&cli.log_level);
    if cli.args.is_empty() {
        eprintln!("Usage: salt-run [options] <function> [arguments]\n\nsalt-run: error: Requires function");
        return ExitCode::from(salt_cli::EX_USAGE as u8);
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    ExitCode::from(rt.block_on(run(cli)) as u8)
}

async fn run(cli: Cli) -> i32 {
    let mut opts = match MasterOpts::load(&cli.config_dir) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    if let Some(t) = cli.timeout.filter(|t| *t > 0) {
        opts.timeout = t;
    }
    let out = cli.output.options(opts.raw.opt_string("output").ok().flatten(), false);
    let fun = cli.args[0].as_str();
    let args = CallArgs::parse(&cli.args[1..]);
    let user = current_user();
    let (_jid, ret) = runner::run(&opts, &user, fun, &args).await;
    if !cli.quiet {
        output::display(&ret.data, ret.outputter.as_deref().unwrap_or("nested"), &out, 0);
    }
    // `salt-run` exits with the `retcode` a runner returns; an unknown function or bad
    // arguments is an error here (Salt prints the message and exits 0).
    if !ret.success {
        return 1;
    }
    match salt_cli::py::get(&ret.data, "retcode").and_then(rmpv::Value::as_i64) {
        Some(rc) => i32::try_from(rc).unwrap_or(1),
        None => 0,
    }
}
