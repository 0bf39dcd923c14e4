//! The Salt layer shared by the master, the minion and the CLI: Salt's rules that are not wire
//! format and not transport, written once.
//!
//! | module | what | mirrors (Salt 3008.5, `salt/` package) |
//! |---|---|---|
//! | [`value`] | values with Python semantics (`str()`, `==`, truthiness, dict lookup) — re-exported from [`salt_proto::value`] | Python itself, `utils/data.py:is_true` |
//! | [`yaml`] | YAML 1.1 as Salt's loader reads it | `utils/yamlloader.py` (`SaltYamlSafeLoader`) |
//! | [`config`] | config files: read, include, merge, re-root, typed getters | `config/__init__.py` (`load_config`, `include_config`, `prepend_root_dir`), `utils/dictupdate.py` |
//! | [`fnmatch`] | shell-style patterns | Python's `fnmatch.fnmatchcase` |
//! | [`matcher`] | targeting over `(id, grains, pillar)` | `matchers/*.py`, `utils/data.py:subdict_match` |
//! | [`args`] | command-line argument rules | `utils/args.py` |
//! | [`logging`] | Salt's log level names, console and `log_file` logs | `log/setup.py` |
//! | [`pki`] | key files: `pki_dir` mode, atomic writes, PEM reading | `utils/verify.py:verify_env`, `cache/localfs.py` |
//!
//! This crate has no tokio and no zmtp (checked by `scripts/check-layers.sh`): everything here is
//! synchronous and deterministic apart from the file system, so a daemon, a CLI or a test can use
//! it as is. Wire formats and crypto live one floor below, in [`salt_proto`].

pub mod args;
pub mod config;
pub mod fnmatch;
pub mod logging;
pub mod matcher;
pub mod pki;
pub mod yaml;

pub use salt_proto::value;
pub use salt_proto::value::Value;

/// The Salt version this project speaks and reports (`test.version`, `saltversion` grain,
/// `salt --version`).
pub const SALT_VERSION: &str = "3008.5";

/// `salt.version.__version_info__` of [`SALT_VERSION`] (the `saltversioninfo` grain).
pub const SALT_VERSION_INFO: [i64; 2] = [3008, 5];
