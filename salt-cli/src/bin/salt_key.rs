//! `salt-key-rs`: Salt 3008's `salt-key` (`salt/key.py` `KeyCLI` and `Key`,
//! `SaltKeyOptionParser`) over the master's key store (`master::keys`): list, accept, reject,
//! delete, print and fingerprint minion keys under `pki_dir`, firing `salt/key` events on the
//! master's bus and asking for an AES key rotation (`.dfn`) after a reject or delete, as Salt does.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use master::keys::{dropfile, key_finger, KeyError, KeyState, KeyStore};
use salt_cli::opts::{MasterOpts, DEFAULT_CONFIG_DIR};
use salt_cli::output::{self, print_line, OutputArgs, OutputOptions};
use salt_cli::py::{string, Value};
use salt_core::fnmatch::fnmatch;

#[derive(Debug, Parser)]
#[command(name = "salt-key", override_usage = "salt-key [options]", disable_version_flag = true)]
struct Cli {
    /// Pass in an alternative configuration directory.
    #[arg(short = 'c', long = "config-dir", env = "SALT_CONFIG_DIR", default_value = DEFAULT_CONFIG_DIR)]
    config_dir: PathBuf,
    /// List the public keys: 'pre'/'un'/'unaccepted', 'acc'/'accepted', 'rej'/'rejected',
    /// 'den'/'denied', or 'all'.
    #[arg(short = 'l', long = "list")]
    list: Option<String>,
    /// List all public keys.
    #[arg(short = 'L', long = "list-all")]
    list_all: bool,
    /// Accept the specified public key (glob; comma-separated list).
    #[arg(short = 'a', long = "accept")]
    accept: Option<String>,
    /// Accept all pending keys.
    #[arg(short = 'A', long = "accept-all")]
    accept_all: bool,
    /// Reject the specified public key.
    #[arg(short = 'r', long = "reject")]
    reject: Option<String>,
    /// Reject all pending keys.
    #[arg(short = 'R', long = "reject-all")]
    reject_all: bool,
    /// Include rejected, accepted and denied keys when accepting or rejecting.
    #[arg(long = "include-all")]
    include_all: bool,
    /// Include accepted keys when rejecting.
    #[arg(long = "include-accepted")]
    include_accepted: bool,
    /// Include rejected keys when accepting.
    #[arg(long = "include-rejected")]
    include_rejected: bool,
    /// Include denied keys when accepting or rejecting.
    #[arg(long = "include-denied")]
    include_denied: bool,
    /// Print the specified public key.
    #[arg(short = 'p', long = "print")]
    print: Option<String>,
    /// Print all public keys.
    #[arg(short = 'P', long = "print-all")]
    print_all: bool,
    /// Delete the specified key.
    #[arg(short = 'd', long = "delete")]
    delete: Option<String>,
    /// Delete all keys.
    #[arg(short = 'D', long = "delete-all")]
    delete_all: bool,
    /// Print the specified key's fingerprint.
    #[arg(short = 'f', long = "finger")]
    finger: Option<String>,
    /// Print all keys' fingerprints.
    #[arg(short = 'F', long = "finger-all")]
    finger_all: bool,
    /// Suppress output.
    #[arg(short = 'q', long = "quiet")]
    quiet: bool,
    /// Answer 'Yes' to all questions presented.
    #[arg(short = 'y', long = "yes")]
    yes: bool,
    /// Rotate the master's AES key after deleting or rejecting keys (default: the config's
    /// `rotate_aes_key`, True).
    #[arg(long = "rotate-aes-key")]
    rotate_aes_key: Option<String>,
    /// Generate a key pair NAME.pem / NAME.pub (e.g. to preseed a minion).
    #[arg(long = "gen-keys")]
    gen_keys: Option<String>,
    /// Where --gen-keys writes.
    #[arg(long = "gen-keys-dir", default_value = ".")]
    gen_keys_dir: PathBuf,
    /// Key size in bits for --gen-keys (2048-32768).
    #[arg(long = "keysize", default_value_t = 2048)]
    keysize: usize,
    #[command(flatten)]
    output: OutputArgs,
    /// Console logging log level.
    #[arg(long = "log-level", default_value = "warning")]
    log_level: String,
}

/// The key states in the order of `Key.list_keys` (and of `--out json`), with `local` last.
const ORDER: [(&str, Option<KeyState>); 4] = [
    ("minions_pre", Some(KeyState::Pending)),
    ("minions_rejected", Some(KeyState::Rejected)),
    ("minions", Some(KeyState::Accepted)),
    ("minions_denied", Some(KeyState::Denied)),
];

/// `{status: [ids]}`, in insertion order.
type Matches = Vec<(String, Vec<String>)>;

fn state_of(status: &str) -> Option<KeyState> {
    ORDER.iter().find(|(s, _)| *s == status).and_then(|(_, st)| *st)
}

fn sorted_ignorecase(mut v: Vec<String>) -> Vec<String> {
    v.sort_by_cached_key(|s| s.to_lowercase());
    v
}

struct Keys {
    store: KeyStore,
    opts: MasterOpts,
}

impl Keys {
    /// `Key.list_keys` (`full`: plus `local`, as `all_keys`).
    fn list_keys(&self, full: bool) -> Result<Matches, KeyError> {
        let l = self.store.list()?;
        let mut out: Matches =
            ORDER.iter().filter_map(|(name, st)| st.map(|st| (name.to_string(), l.get(st).to_vec()))).collect();
        if full {
            out.push(("local".into(), self.store.local_keys()?));
        }
        Ok(out)
    }

    /// `Key.glob_match`.
    fn glob_match(&self, pattern: &str, full: bool) -> Result<Matches, KeyError> {
        let pats: Vec<&str> = if pattern.contains(',') { pattern.split(',').collect() } else { vec![pattern] };
        let mut out: Matches = Vec::new();
        for (status, keys) in self.list_keys(full)? {
            if pats == ["*"] {
                if !keys.is_empty() {
                    out.push((status, keys));
                }
                continue;
            }
            let hits: Vec<String> =
                sorted_ignorecase(keys).into_iter().filter(|k| pats.iter().any(|p| fnmatch(k, p))).collect();
            if !hits.is_empty() {
                out.push((status, hits));
            }
        }
        Ok(out)
    }

    /// `Key.dict_match`: where the given ids are now.
    fn dict_match(&self, matches: &Matches) -> Result<Matches, KeyError> {
        let cur = self.list_keys(false)?;
        let mut out: Matches = Vec::new();
        for (_, keys) in matches {
            for key in sorted_ignorecase(keys.clone()) {
                for dir in ["minions", "minions_pre", "minions_rejected", "minions_denied"] {
                    let here =
                        cur.iter().find(|(s, _)| s == dir).is_some_and(|(_, ks)| ks.iter().any(|k| fnmatch(k, &key)));
                    if here {
                        match out.iter_mut().find(|(s, _)| s == dir) {
                            Some((_, v)) => v.push(key.clone()),
                            None => out.push((dir.to_string(), vec![key.clone()])),
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The text of a key: a minion key by state, or a local key.
    fn key_text(&self, status: &str, id: &str) -> Result<Option<String>, KeyError> {
        match state_of(status) {
            Some(st) => self.store.fetch_in(st, id),
            None => self.store.local_key(id),
        }
    }

    /// Fire `salt/key` on the master's bus if it is up (best effort, as Salt).
    async fn fire(&self, data: Value) {
        if !self.opts.sock_dir.join("master_event_pull.ipc").exists() && self.opts.ipc_mode != "tcp" {
            return;
        }
        if let Err(e) = salt_cli::events::fire(&self.opts, "salt/key", data).await {
            tracing::debug!("cannot fire salt/key: {e}");
        }
    }

    /// `Key.check_minion_cache`: drop the cached grains and pillar of minions that have no key any
    /// more (unless `preserve_minion_cache`).
    fn check_minion_cache(&self) -> Result<(), KeyError> {
        if self.opts.raw.boolean("preserve_minion_cache", false).unwrap_or(false) {
            return Ok(());
        }
        let l = self.store.list()?;
        let known: std::collections::BTreeSet<&String> =
            l.accepted.iter().chain(&l.pending).chain(&l.rejected).chain(&l.denied).collect();
        let cache = master::datacache::DataCache::new(&self.opts.cachedir);
        for bank in [master::datacache::GRAINS, master::datacache::PILLAR] {
            for id in cache.list(bank) {
                // pillar may be cached per pillarenv as "id:env".
                let base = id.split(':').next().unwrap_or(&id).to_string();
                let keep = known.contains(&id) || (id.contains(':') && known.contains(&base));
                if !keep {
                    cache.flush(bank, &id);
                }
            }
        }
        Ok(())
    }

    fn rotate(&self, flag: &Option<String>) {
        let on = match flag.as_deref().map(str::to_lowercase).as_deref() {
            Some("false") => false,
            Some(_) => true,
            None => self.opts.rotate_aes_key,
        };
        if on {
            if let Err(e) = dropfile(&self.opts.cachedir, &self.opts.id) {
                tracing::error!("{e}");
            }
        }
    }
}

fn to_value(m: &Matches) -> Value {
    Value::Map(
        m.iter()
            .map(|(s, ks)| (string(s.as_str()), Value::Array(ks.iter().map(|k| string(k.as_str())).collect())))
            .collect(),
    )
}

fn to_dict_value(m: &[(String, Vec<(String, String)>)]) -> Value {
    Value::Map(
        m.iter()
            .map(|(s, kv)| {
                (
                    string(s.as_str()),
                    Value::Map(kv.iter().map(|(k, v)| (string(k.as_str()), string(v.as_str()))).collect()),
                )
            })
            .collect(),
    )
}

/// What `salt-key` was asked to do (`KeyCLI._update_opts`).
enum Cmd {
    List(String),
    Print(String),
    Accept(String),
    Reject(String),
    Delete(String),
    Finger(String),
}

fn command(cli: &Cli) -> Cmd {
    if let Some(l) = &cli.list {
        return Cmd::List(l.clone());
    }
    if cli.list_all {
        return Cmd::List("all".into());
    }
    if let Some(p) = &cli.print {
        return Cmd::Print(p.clone());
    }
    if cli.print_all {
        return Cmd::Print("*".into());
    }
    if let Some(a) = &cli.accept {
        return Cmd::Accept(a.clone());
    }
    if cli.accept_all {
        return Cmd::Accept("*".into());
    }
    if let Some(r) = &cli.reject {
        return Cmd::Reject(r.clone());
    }
    if cli.reject_all {
        return Cmd::Reject("*".into());
    }
    if let Some(d) = &cli.delete {
        return Cmd::Delete(d.clone());
    }
    if cli.delete_all {
        return Cmd::Delete("*".into());
    }
    if let Some(f) = &cli.finger {
        return Cmd::Finger(f.clone());
    }
    if cli.finger_all {
        return Cmd::Finger("*".into());
    }
    Cmd::List("all".into())
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
    if let Some(l) = &cli.list {
        if !["acc", "pre", "un", "rej", "den", "all"].iter().any(|p| l.starts_with(p)) {
            eprintln!("Usage: salt-key [options]\n\nsalt-key: error: '{l}' is not a valid argument to '--list'");
            return ExitCode::from(salt_cli::EX_USAGE as u8);
        }
    }
    salt_cli::init_logging(&cli.log_level);
    if let Some(name) = &cli.gen_keys {
        return ExitCode::from(gen_keys(&cli, name) as u8);
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

/// `--gen-keys NAME` (`Key.gen_keys`, `salt.crypt.write_keys`): `DIR/NAME.pem` and `DIR/NAME.pub`,
/// both `0400`; an existing pair is kept. Prints the public key's fingerprint.
fn gen_keys(cli: &Cli, name: &str) -> i32 {
    if cli.keysize < 2048 {
        eprintln!("Usage: salt-key [options]\n\nsalt-key: error: The minimum value for keysize is 2048");
        return salt_cli::EX_USAGE;
    }
    if cli.keysize > 32768 {
        eprintln!("Usage: salt-key [options]\n\nsalt-key: error: The maximum value for keysize is 32768");
        return salt_cli::EX_USAGE;
    }
    if !master::keys::valid_id(name) {
        eprintln!("salt-key: error: {name:?} is not a valid key name");
        return salt_cli::EX_USAGE;
    }
    let dir = &cli.gen_keys_dir;
    let (priv_path, pub_path) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.pub")));
    let made = (|| -> Result<(), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if priv_path.is_file() {
            return Ok(());
        }
        let key = salt_proto::PrivateKey::generate(cli.keysize).map_err(|e| e.to_string())?;
        let pem = key.to_pem().map_err(|e| e.to_string())?;
        let pub_pem = key.public_key().to_pem().map_err(|e| e.to_string())?;
        salt_core::pki::write_atomic(&priv_path, pem.as_bytes(), 0o400).map_err(|e| e.to_string())?;
        salt_core::pki::write_atomic(&pub_path, pub_pem.as_bytes(), 0o400).map_err(|e| e.to_string())
    })();
    if let Err(e) = made {
        eprintln!("[ERROR   ] {e}");
        return 1;
    }
    let finger = std::fs::read_to_string(&pub_path).map(|p| key_finger(&p)).unwrap_or_default();
    let out = cli.output.options(None, false);
    if !cli.quiet {
        output::display(&salt_core::value::map([("return", string(finger))]), "nested", &out, 0);
    }
    0
}

async fn run(cli: Cli) -> i32 {
    let opts = match MasterOpts::load(&cli.config_dir) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let out = cli.output.options(opts.raw.opt_string("output").ok().flatten(), false);
    let keys = Keys { store: KeyStore::at(opts.pki_dir.clone()), opts };
    match execute(&cli, &keys, &out).await {
        Ok(()) => 0,
        Err(e) => {
            if !cli.quiet {
                output::display(&string(e.to_string()), "nested", &out, 0);
            }
            0
        }
    }
}

/// `input(prompt)`: the answer, `None` at end of input (Salt logs the `EOFError` and stops).
fn ask(prompt: &str) -> Option<String> {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = write!(stdout, "{prompt}");
    let _ = stdout.flush();
    let mut line = String::new();
    match std::io::stdin().lock().read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
    }
}

async fn execute(cli: &Cli, keys: &Keys, out: &OutputOptions) -> Result<(), KeyError> {
    let show = |data: &Value| {
        if !cli.quiet {
            output::display(data, "key", out, 0);
        }
    };
    let (verb, pattern) = match command(cli) {
        Cmd::List(which) => {
            let all = keys.list_keys(false)?;
            let pick = |name: &str| -> Matches { all.iter().filter(|(s, _)| s == name).cloned().collect() };
            let ret = if which.starts_with("acc") {
                pick("minions")
            } else if which.starts_with("pre") || which.starts_with("un") {
                pick("minions_pre")
            } else if which.starts_with("rej") {
                pick("minions_rejected")
            } else if which.starts_with("den") {
                pick("minions_denied")
            } else {
                all.clone()
            };
            show(&to_value(&ret));
            return Ok(());
        }
        Cmd::Print(pattern) => {
            let mut ret = Vec::new();
            for (status, ids) in keys.glob_match(&pattern, false)? {
                let mut kv = Vec::new();
                for id in sorted_ignorecase(ids) {
                    kv.push((id.clone(), keys.key_text(&status, &id)?.unwrap_or_default()));
                }
                ret.push((status, kv));
            }
            show(&to_dict_value(&ret));
            return Ok(());
        }
        Cmd::Finger(pattern) => {
            let mut ret = Vec::new();
            for (status, ids) in keys.glob_match(&pattern, true)? {
                let mut kv = Vec::new();
                for id in ids {
                    let text = keys.key_text(&status, &id)?.unwrap_or_default();
                    kv.push((id, key_finger(&text)));
                }
                ret.push((status, kv));
            }
            show(&to_dict_value(&ret));
            return Ok(());
        }
        Cmd::Accept(p) => ("accept", p),
        Cmd::Reject(p) => ("reject", p),
        Cmd::Delete(p) => ("delete", p),
    };

    // accept / reject / delete (`KeyCLI.run`).
    let include_rejected = verb == "accept" && (cli.include_all || cli.include_rejected);
    let include_accepted = verb == "reject" && (cli.include_all || cli.include_accepted);
    let include_denied = cli.include_denied;
    let matches = keys.glob_match(&pattern, false)?;
    let filtered: Matches = if verb == "delete" {
        matches
    } else {
        matches
            .into_iter()
            .filter(|(s, ids)| {
                s == "minions_pre"
                    || (!ids.is_empty()
                        && ((s == "minions" && include_accepted)
                            || (s == "minions_rejected" && include_rejected)
                            || (s == "minions_denied" && include_denied)))
            })
            .collect()
    };
    if filtered.is_empty() {
        let mut statuses = vec!["unaccepted"];
        if include_accepted {
            statuses.push("accepted");
        }
        if include_rejected {
            statuses.push("rejected");
        }
        if include_denied {
            statuses.push("denied");
        }
        let stat = match statuses.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => statuses.join(""),
        };
        print_line(&format!("The key glob '{pattern}' does not match any {stat} keys."));
        return Ok(());
    }
    let done = if verb == "delete" { "deleted" } else { &format!("{verb}ed") };
    print_line(&format!("The following keys are going to be {done}:"));
    show(&to_value(&filtered));
    if !cli.yes {
        let (prompt, default) = if verb == "delete" { ("Proceed? [N/y] ", "n") } else { ("Proceed? [n/Y] ", "y") };
        let Some(answer) = ask(prompt) else {
            eprintln!("[ERROR   ] EOF when reading a line");
            return Ok(());
        };
        let answer = if answer.is_empty() { default.to_string() } else { answer };
        if !answer.to_lowercase().starts_with('y') {
            return Ok(());
        }
    }
    let result = match verb {
        "delete" => {
            for (status, ids) in &filtered {
                for id in ids {
                    let removed =
                        if status == "minions_denied" { keys.store.flush_denied(id) } else { keys.store.flush(id) };
                    if removed.is_ok() {
                        keys.fire(salt_core::value::map([
                            ("result", Value::Boolean(true)),
                            ("act", string("delete")),
                            ("id", string(id.as_str())),
                        ]))
                        .await;
                    }
                }
            }
            keys.check_minion_cache()?;
            keys.rotate(&cli.rotate_aes_key);
            filtered.clone()
        }
        _ => {
            let to = if verb == "accept" { KeyState::Accepted } else { KeyState::Rejected };
            let mut dirs = vec!["minions_pre"];
            if include_rejected {
                dirs.push("minions_rejected");
            }
            if include_denied {
                dirs.push("minions_denied");
            }
            if include_accepted {
                dirs.push("minions");
            }
            let mut invalid = Vec::new();
            for dir in dirs {
                let Some(from) = state_of(dir) else { continue };
                for id in filtered.iter().filter(|(s, _)| s == dir).flat_map(|(_, ids)| ids) {
                    match keys.store.change_state(id, from, to) {
                        Ok(pub_pem) => {
                            keys.fire(salt_core::value::map([
                                ("result", Value::Boolean(true)),
                                ("act", string(to.act())),
                                ("id", string(id.as_str())),
                                ("pub", string(pub_pem)),
                            ]))
                            .await;
                        }
                        Err(KeyError::Invalid { .. }) => {
                            tracing::error!("Invalid RSA public key: {id}");
                            invalid.push(id.clone());
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
            for id in invalid {
                eprintln!("Unable to accept invalid key for {id}.");
            }
            if verb == "reject" {
                keys.check_minion_cache()?;
                keys.rotate(&cli.rotate_aes_key);
            }
            keys.dict_match(&filtered)?
        }
    };
    for (_, ids) in &result {
        for id in ids {
            print_line(&format!("Key for minion {id} {done}."));
        }
    }
    Ok(())
}
