//! The Salt operator's tools in Rust — `salt-rs`, `salt-key-rs`, `salt-run-rs` — with the flags,
//! output and exit codes of Salt 3008's `salt`, `salt-key` and `salt-run jobs.*` / `manage.*`. They work against
//! a real `salt-master` and against ours, and read the same configuration (`-c CONFDIR`).
//!
//! | module | mirrors |
//! |---|---|
//! | [`args`] | `utils/args.py:parse_input`, `condition_input` |
//! | [`opts`] | `config/__init__.py:client_config` (the master file as the CLI reads it) |
//! | [`client`] | `client/__init__.py:LocalClient` (`pub`, `get_iter_returns`, `get_cli_event_returns`) |
//! | [`gather`] | the sets of `get_iter_returns` (expected, found, per-minion timeouts), kept incrementally |
//! | [`events`] | `utils/event.py:MasterEvent` over the master's Unix event sockets |
//! | [`output`] | `output/{nested,no_return,json_out,yaml_out,txt,raw,key}.py` and `output/__init__.py` |
//! | [`runner`] | `runners/jobs.py`, `runners/manage.py` (status, up, down), `client/mixins.py:SyncClientMixin.low` (events, store_job) |
//! | [`py`] | the Python rules the outputters need (`str.splitlines`, `sorted()` of dict keys) on `salt_core::value` |

pub mod args;
pub mod client;
pub mod events;
pub mod gather;
pub mod opts;
pub mod output;
pub mod py;
pub mod runner;

/// `salt.defaults.exitcodes.EX_USAGE`: what Salt's option parser exits with on a bad option.
pub const EX_USAGE: i32 = 64;

/// Salt's console log line: `[LEVEL   ] message` (`log_fmt_console` `[%(levelname)-8s] %(message)s`).
#[derive(Debug)]
struct SaltConsoleFormat;

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for SaltConsoleFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let level = match *event.metadata().level() {
            tracing::Level::ERROR => "ERROR",
            tracing::Level::WARN => "WARNING",
            tracing::Level::INFO => "INFO",
            tracing::Level::DEBUG => "DEBUG",
            tracing::Level::TRACE => "TRACE",
        };
        write!(writer, "[{level:<8}] ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Start logging to stderr at `level` (`-l/--log-level`; Salt's CLI default is `warning`), in
/// Salt's console format.
pub fn init_logging(level: &str) {
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::prelude::*;
    let filter = match level {
        "all" | "garbage" | "trace" => LevelFilter::TRACE,
        "debug" | "profile" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warning" | "warn" => LevelFilter::WARN,
        "error" | "critical" => LevelFilter::ERROR,
        "quiet" => LevelFilter::OFF,
        _ => LevelFilter::WARN,
    };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .event_format(SaltConsoleFormat)
        .with_filter(filter);
    let _ = tracing_subscriber::registry().with(layer).try_init();
}
