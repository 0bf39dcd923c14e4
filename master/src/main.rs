//! `salt-master-rs`: a Salt 3008-compatible master.
//!
//! `salt-master-rs -c CONFDIR [-l LEVEL]` loads `CONFDIR/master` and
//! `master.d/` like `salt-master -c CONFDIR` and runs in the foreground
//! until SIGTERM or ctrl-c. Logs go to stderr (level `-l`, else
//! `log_level`) and to `log_file` (level `log_level_logfile`, else
//! `log_level`); every line names the unit (thread) that wrote it.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use master::config::MasterConfig;

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
    /// Run one unit of the master as its own process (the master starts it so).
    #[arg(long = "unit", hide = true)]
    unit: Option<String>,
}

fn init_logging(console: &str, config: &MasterConfig, file_level: Option<&str>) {
    salt_core::logging::init(salt_core::logging::LogSetup {
        console: Some(console),
        file: Some((&config.log_file, file_level.unwrap_or(config.logfile_level()))),
        thread_names: true,
    });
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
    let result = match &cli.unit {
        Some(unit) => master::daemon::run_unit(unit, &config),
        None => master::daemon::run(config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("salt-master-rs: {e}");
            ExitCode::from(1)
        }
    }
}
