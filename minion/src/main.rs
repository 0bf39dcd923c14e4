//! `salt-minion-rs`: a Salt-compatible minion for Salt 3008 masters.
//!
//! `salt-minion-rs -c CONFDIR [-l LEVEL]` loads the configuration like `salt-minion -c CONFDIR`
//! and runs the minion in the foreground ([`minion::daemon::run`]) until SIGTERM or ctrl-c.
//! Logs go to stderr (level `-l`, else `log_level`) and to `log_file` (level
//! `log_level_logfile`, else `log_level`). `--print-config` prints the configuration (and, with
//! `--grains`, the grains) as JSON instead of running.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use minion::config::{Config, LoadOptions};

/// A Salt-compatible minion.
#[derive(Debug, Parser)]
#[command(name = "salt-minion-rs", version = salt_core::SALT_VERSION)]
struct Cli {
    /// Configuration directory (holds `minion` and `minion.d/`).
    #[arg(short = 'c', long = "config-dir", default_value = "/etc/salt")]
    config_dir: PathBuf,
    /// Console log level: all, garbage, trace, debug, profile, info, warning, error, critical, quiet.
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    /// Log file level (overrides `log_level_logfile`).
    #[arg(long = "log-file-level")]
    log_file_level: Option<String>,
    /// Override the minion id.
    #[arg(long = "id")]
    id: Option<String>,
    /// Print the configuration as JSON and exit.
    #[arg(long = "print-config")]
    print_config: bool,
    /// With `--print-config`: also print the grains.
    #[arg(long)]
    grains: bool,
}

/// Console logging to stderr, and file logging to `log_file` when it is a path.
fn init_logging(console: Option<&str>, config: Option<&Config>, file_level: Option<&str>) {
    let file = config.map(|c| (c.log_file.as_str(), file_level.unwrap_or(c.logfile_level())));
    salt_core::logging::init(salt_core::logging::LogSetup { console, file, thread_names: false });
}

fn print_config(config: &Config, grains: bool) -> ExitCode {
    let mut out = serde_json::Map::new();
    out.insert("config".into(), salt_core::value::to_json(&config.to_value()));
    if grains {
        out.insert("grains".into(), salt_core::value::to_json(&minion::grains::collect(config)));
    }
    match serde_json::to_string_pretty(&serde_json::Value::Object(out)) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("salt-minion-rs: {e}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on SIGTERM or SIGINT with the signal's name.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(e) => {
            tracing::warn!("cannot watch SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let opts = LoadOptions { id_override: cli.id.clone(), cache_minion_id: !cli.print_config };
    let config = match Config::load(&cli.config_dir, &opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("salt-minion-rs: {e}");
            return ExitCode::from(1);
        }
    };
    if cli.print_config {
        init_logging(Some(cli.log_level.as_deref().unwrap_or(&config.log_level)), None, None);
        return print_config(&config, cli.grains);
    }
    init_logging(
        Some(cli.log_level.as_deref().unwrap_or(&config.log_level)),
        Some(&config),
        cli.log_file_level.as_deref(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("salt-minion-rs: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    tracing::info!("Setting up the Salt Minion \"{}\"", config.id);
    let code = runtime.block_on(async {
        tokio::select! {
            r = minion::daemon::run(config) => match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    if matches!(e, minion::daemon::DaemonError::Rejected) {
                        // Salt waits before exiting so a service manager does not restart it
                        // into a storm of sign-ins.
                        let wait = salt_proto::util::randint(10, 20);
                        tokio::select! {
                            _ = tokio::time::sleep(std::time::Duration::from_secs(wait)) => {}
                            _ = stop_signal() => {}
                        }
                    }
                    ExitCode::from(e.exit_code())
                }
            },
            sig = stop_signal() => {
                tracing::info!("Minion received a {sig}. Exiting.");
                ExitCode::SUCCESS
            }
        }
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    code
}
