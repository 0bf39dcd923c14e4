//! `salt-master-rs`: a Salt 3008-compatible master.
//!
//! `salt-master-rs -c CONFDIR [-l LEVEL]` loads `CONFDIR/master` and
//! `master.d/` like `salt-master -c CONFDIR` and runs in the foreground
//! until SIGTERM or ctrl-c. Logs go to stderr (level `-l`, else
//! `log_level`) and to `log_file` (level `log_level_logfile`, else
//! `log_level`); every line names the unit (thread) that wrote it.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use master::config::MasterConfig;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// A Salt-compatible master.
#[derive(Debug, Parser)]
#[command(name = "salt-master-rs", version = salt_core::SALT_VERSION)]
struct Cli {
    /// Configuration directory (holds `master` and `master.d/`).
    #[arg(short = 'c', long = "config-dir", default_value = "/etc/salt")]
    config_dir: PathBuf,
    /// Console log level: all, garbage, trace, debug, profile, info, warning, error, critical, quiet.
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    /// Log file level (overrides `log_level_logfile`).
    #[arg(long = "log-file-level")]
    log_file_level: Option<String>,
}

/// Salt log level names to tracing levels (`None`: quiet).
fn level(name: &str) -> Option<tracing::Level> {
    use tracing::Level;
    match name.to_ascii_lowercase().as_str() {
        "all" | "garbage" | "trace" => Some(Level::TRACE),
        "debug" | "profile" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warning" | "warn" => Some(Level::WARN),
        "error" | "critical" => Some(Level::ERROR),
        _ => None,
    }
}

fn init_logging(console: &str, config: &MasterConfig, file_level: Option<&str>) {
    let console = level(console).map(|l| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_thread_names(true)
            .with_filter(LevelFilter::from_level(l))
    });
    let mut problem = None;
    let file = level(file_level.unwrap_or(config.logfile_level())).and_then(|l| {
        if config.log_file.is_empty() || config.log_file.contains("://") {
            return None;
        }
        let path = PathBuf::from(&config.log_file);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::OpenOptions::new().create(true).append(true).open(&path) {
            Ok(f) => Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_thread_names(true)
                    .with_writer(Mutex::new(f))
                    .with_filter(LevelFilter::from_level(l)),
            ),
            Err(e) => {
                problem = Some(format!("cannot open log_file {}: {e}", path.display()));
                None
            }
        }
    });
    let _ = tracing_subscriber::registry().with(console).with(file).try_init();
    if let Some(p) = problem {
        tracing::warn!("{p}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match MasterConfig::load(&cli.config_dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("salt-master-rs: {e}");
            return ExitCode::from(1);
        }
    };
    init_logging(cli.log_level.as_deref().unwrap_or(&config.log_level), &config, cli.log_file_level.as_deref());
    match master::daemon::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("salt-master-rs: {e}");
            ExitCode::from(1)
        }
    }
}
