//! A Salt-compatible minion: configuration, grains, targeting and execution modules, and the
//! daemon that signs in to a Salt 3008 master over ZeroMQ ([`zmtp`]) with Salt's crypto
//! ([`salt_proto`]) and runs the jobs it publishes.
//!
//! Each module mirrors a piece of Salt 3008.5 (file names are relative to the `salt/` package):
//!
//! | module | mirrors |
//! |---|---|
//! | [`daemon`] | `minion.py`: `Minion.connect_master`, `tune_in` (start-up and the publish loop), `_fire_master_minion_start` |
//! | `session` | `channel/client.py` `AsyncReqChannel.send`/`_crypted_transfer` (one request loop, re-authentication), `AsyncRemotePillar.compile_pillar` |
//! | `jobs` | `minion.py`: `_handle_payload`, `_target_load`, `_handle_decoded_payload`, `_thread_return`, `_return_pub` |
//! | [`auth`] | `crypt.py`: `AsyncAuth.sign_in`, `handle_signin_response`, `_authenticate`; `MinionManager._connect_minion` retries |
//! | [`keys`] | `crypt.py`: `get_keys`/`gen_keys`, `verify_master` (`minion_master.pub`, trust on first use) |
//! | [`channel`] | `transport/zeromq.py` `PublishClient` (topics, `_decode_messages`) |
//! | [`reqclient`] | `transport/zeromq.py` `RequestClient` (queue, re-created socket on timeout) |
//! | [`sockopts`] | the REQ and SUB socket options of `transport/zeromq.py` (`_init_socket`, `_legacy_setup`, `_set_tcp_keepalive`) |
//! | [`observer`] | (none: hooks for hosts running many minions, such as the swarm) |
//! | [`config`] | `config/__init__.py`: `DEFAULT_MINION_OPTS`, `minion_config`, `apply_minion_config`, `get_id` |
//! | [`grains`] | `grains/core.py`, `grains/extra.py`, `grains/minion_process.py`, `utils/network.py` |
//! | [`functions`] | `modules/{test,cmdmod,grains,saltutil,sysmod}.py`, argument handling of `minion.py:load_args_and_kwargs` |
//!
//! What a master needs as well (values, YAML, the config-file machinery, targeting, argument
//! parsing, key files, the Salt version) is in [`salt_core`]; this crate never depends on the
//! master or the CLI, and they never depend on it.
//!
//! The binary `salt-minion-rs -c CONFDIR` runs [`daemon::run`].
//!
//! Values are [`rmpv::Value`] throughout (config extras, grains, function returns) so the job loop can
//! msgpack them for the master unchanged.

pub mod auth;
pub mod channel;
pub mod config;
pub mod daemon;
pub mod functions;
pub mod grains;
mod jobs;
pub mod keys;
pub mod observer;
pub mod reqclient;
mod session;
pub mod sockopts;
