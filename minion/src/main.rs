//! `salt-minion-rs`: placeholder CLI. Loads the configuration like `salt-minion -c CONFDIR` and
//! prints it (and, with `--grains`, the grains) as JSON. The job loop comes later.

use std::path::PathBuf;

use clap::Parser;
use minion::config::{Config, LoadOptions};

/// A Salt-compatible minion (work in progress).
#[derive(Debug, Parser)]
#[command(name = "salt-minion-rs", version = minion::SALT_VERSION)]
struct Cli {
    /// Configuration directory (holds `minion` and `minion.d/`).
    #[arg(short = 'c', long = "config-dir", default_value = "/etc/salt")]
    config_dir: PathBuf,
    /// Console log level: all, garbage, trace, debug, profile, info, warning, error, critical, quiet.
    #[arg(short = 'l', long = "log-level")]
    log_level: Option<String>,
    /// Override the minion id.
    #[arg(long = "id")]
    id: Option<String>,
    /// Also print the grains.
    #[arg(long)]
    grains: bool,
}

/// Salt log level names to tracing levels (`None`: quiet).
fn level(name: &str) -> Option<tracing::Level> {
    use tracing::Level;
    match name.to_ascii_lowercase().as_str() {
        "all" | "garbage" | "trace" => Some(Level::TRACE),
        "debug" | "profile" => Some(Level::DEBUG),
        "info" => Some(Level::INFO),
        "warning" | "warn" | "error" | "critical" => {
            Some(if name.starts_with('w') { Level::WARN } else { Level::ERROR })
        }
        _ => None,
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let init_logging = |name: &str| {
        if let Some(l) = level(name) {
            let _ = tracing_subscriber::fmt().with_max_level(l).with_writer(std::io::stderr).try_init();
        }
    };
    if let Some(l) = &cli.log_level {
        init_logging(l);
    }
    let opts = LoadOptions { id_override: cli.id.clone(), cache_minion_id: false };
    let config = match Config::load(&cli.config_dir, &opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("salt-minion-rs: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    if cli.log_level.is_none() {
        init_logging(&config.log_level);
    }
    let mut out = serde_json::Map::new();
    out.insert("config".into(), minion::value::to_json(&config.to_value()));
    if cli.grains {
        out.insert("grains".into(), minion::value::to_json(&minion::grains::collect(&config)));
    }
    match serde_json::to_string_pretty(&serde_json::Value::Object(out)) {
        Ok(text) => {
            println!("{text}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("salt-minion-rs: {e}");
            std::process::ExitCode::from(1)
        }
    }
}
