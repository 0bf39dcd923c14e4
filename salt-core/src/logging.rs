//! Daemon logging as Salt configures it (`log/setup.py`): Salt's level names, a console log on
//! stderr (`-l` / `log_level`) and a file log at `log_file` (`log_level_logfile`) when that is a
//! path, not a `udp://` / `tcp://` / `file://` URI.

use std::sync::Mutex;

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::prelude::*;

/// Salt log level names to tracing levels (`None`: quiet, or a name Salt does not know).
pub fn level(name: &str) -> Option<tracing::Level> {
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

/// Where and how much a daemon logs.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSetup<'a> {
    /// Console level name (stderr); `None` or quiet: no console log.
    pub console: Option<&'a str>,
    /// `log_file` and its level name; an empty path or a URI gives no file log.
    pub file: Option<(&'a str, &'a str)>,
    /// Prefix lines with the thread name (a daemon with named unit threads).
    pub thread_names: bool,
}

/// Install the global subscriber (once; later calls do nothing). A log file that cannot be
/// opened is reported on the console log, not fatal.
pub fn init(setup: LogSetup<'_>) {
    let console = setup.console.and_then(level).map(|l| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_thread_names(setup.thread_names)
            .with_filter(LevelFilter::from_level(l))
    });
    let mut file_problem = None;
    let file = setup.file.and_then(|(log_file, file_level)| {
        let l = level(file_level)?;
        if log_file.is_empty() || log_file.contains("://") {
            if !log_file.is_empty() {
                file_problem = Some(format!("log_file {log_file} is not a path; logging to stderr only"));
            }
            return None;
        }
        let path = std::path::Path::new(log_file);
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::OpenOptions::new().create(true).append(true).open(path) {
            Ok(f) => Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(false)
                    .with_thread_names(setup.thread_names)
                    .with_writer(Mutex::new(f))
                    .with_filter(LevelFilter::from_level(l)),
            ),
            Err(e) => {
                file_problem = Some(format!("cannot open log_file {}: {e}", path.display()));
                None
            }
        }
    });
    let _ = tracing_subscriber::registry().with(console).with(file).try_init();
    if let Some(p) = file_problem {
        tracing::warn!("{p}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salt_level_names() {
        assert_eq!(level("garbage"), Some(tracing::Level::TRACE));
        assert_eq!(level("PROFILE"), Some(tracing::Level::DEBUG));
        assert_eq!(level("warning"), Some(tracing::Level::WARN));
        assert_eq!(level("critical"), Some(tracing::Level::ERROR));
        assert_eq!(level("quiet"), None);
    }
}
