//! The minion's socket options, built from its configuration in one place.
//!
//! - [`req_options`]: the REQ socket of `transport/zeromq.py` `RequestClient._init_socket`
//!   (`LINGER 0`, `RECONNECT_IVL 100` ms, `RECONNECT_IVL_MAX 5000` ms, TCP keepalive).
//! - [`sub_options`]: the SUB socket of `PublishClient._legacy_setup`: routing id = minion id,
//!   `LINGER 1`, TCP keepalive, and with `recon_randomize` a reconnect interval drawn once from
//!   `[recon_default, recon_default + recon_max]` ms with `RECONNECT_IVL_MAX = recon_max`. No ZMTP
//!   heartbeats of our own: the 3008 master PINGs and zmtp answers.
//! - [`tcp_keepalive`]: Salt's `_set_tcp_keepalive` (`-1` leaves the OS default).
//! - [`secs`]: a duration option (`f64` seconds) as a [`Duration`].

use std::time::Duration;

use zmtp::Options;

use crate::config::Config;

/// `f64` seconds from the configuration as a [`Duration`] (negative or NaN → zero).
pub fn secs(v: f64) -> Duration {
    if v.is_finite() && v > 0.0 {
        Duration::from_secs_f64(v.min(1e9))
    } else {
        Duration::ZERO
    }
}

/// TCP keepalive as Salt's `_set_tcp_keepalive` applies it (`-1` leaves the OS default).
pub fn tcp_keepalive(config: &Config) -> Option<zmtp::socket::TcpKeepalive> {
    if !config.tcp_keepalive {
        return None;
    }
    let secs = |v: f64| (v >= 0.0 && v.is_finite()).then(|| Duration::from_secs_f64(v.max(1.0)));
    Some(zmtp::socket::TcpKeepalive {
        idle: secs(config.tcp_keepalive_idle),
        interval: secs(config.tcp_keepalive_intvl),
        retries: (config.tcp_keepalive_cnt >= 0.0 && config.tcp_keepalive_cnt.is_finite())
            .then_some(config.tcp_keepalive_cnt as u32),
    })
}

/// The REQ socket options of Salt's `RequestClient._init_socket`.
pub fn req_options(config: &Config) -> Options {
    Options::default()
        .linger(Some(Duration::ZERO))
        .reconnect(Duration::from_millis(100), Duration::from_millis(5000))
        .tcp_keepalive(tcp_keepalive(config))
}

/// The SUB socket options of `PublishClient._legacy_setup`.
pub fn sub_options(config: &Config) -> Options {
    let ms = |v: f64| if v.is_finite() && v > 0.0 { v.min(1e12) as u64 } else { 0 };
    let recon_default = ms(config.recon_default);
    let recon_max = ms(config.recon_max);
    let mut opts = Options::default()
        .routing_id(config.id.clone().into_bytes())
        .linger(Some(Duration::from_millis(1)))
        .tcp_keepalive(tcp_keepalive(config));
    if config.recon_randomize {
        let ivl = salt_proto::util::randint(recon_default, recon_default + recon_max);
        tracing::debug!("Setting zmq_reconnect_ivl to '{ivl}ms'");
        tracing::debug!("Setting zmq_reconnect_ivl_max to '{recon_max}ms'");
        opts = opts.reconnect(Duration::from_millis(ivl), Duration::from_millis(recon_max));
    }
    opts
}
