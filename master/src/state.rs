//! What every unit of the master shares (Salt's `SMaster.secrets` and the
//! objects each forked process builds for itself): the configuration, the
//! master key pair, the shared AES key with its publish serial, the
//! per-minion session keys, the CLI access keys, the key store, the job
//! store, the minion data cache, the event bus and the publish queue.
//!
//! One `Arc<Master>` is handed to every unit thread. The AES key is read on
//! every publish and every `_auth` and replaced only by a rotation, so it
//! sits behind an `RwLock` of an `Arc` (readers clone the `Arc` and let go).

use std::collections::{HashMap, VecDeque};
use std::fs;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use salt_proto::{Crypticle, SigAlgo, Value};

use crate::config::MasterConfig;
use crate::datacache::DataCache;
use crate::events::EventBus;
use crate::jobcache::{JobStore, LocalCache};
use crate::keys::{self, KeyStore, MasterKeys};

/// A start-up failure.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Keys could not be read or made.
    #[error(transparent)]
    Keys(#[from] keys::KeyError),
    /// A directory could not be made.
    #[error("cannot create {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A crypto primitive failed (no randomness).
    #[error("crypto: {0}")]
    Crypto(#[from] salt_proto::Error),
    /// A bad option value.
    #[error("{0}")]
    Config(String),
}

/// The shared AES key (`SMaster.secrets["aes"]`).
#[derive(Debug)]
pub struct AesKey {
    /// The Crypticle over the key.
    pub crypticle: Crypticle,
    /// The `_auth` reply's `sig` over this key, made on first use
    /// (`envelope::aes_key_sig`): the same for every minion.
    sig: std::sync::OnceLock<Vec<u8>>,
}

impl AesKey {
    /// A new random key.
    pub fn generate() -> Result<Self, salt_proto::Error> {
        Ok(AesKey { crypticle: Crypticle::generate()?, sig: std::sync::OnceLock::new() })
    }

    /// The `_auth` reply's `sig` over this key by `master_key` (computed
    /// once; concurrent first callers may each compute it, all equal).
    pub fn sig(&self, master_key: &salt_proto::PrivateKey) -> Result<&[u8], salt_proto::Error> {
        if let Some(s) = self.sig.get() {
            return Ok(s);
        }
        let s = salt_proto::envelope::aes_key_sig(master_key, self.crypticle.key_string())?;
        Ok(self.sig.get_or_init(|| s))
    }
}

/// A publish handed to the Publisher: the load (`_prep_pub`'s output) and,
/// for zmq_filtering, the minion ids to address (`None` = broadcast).
#[derive(Debug, Clone)]
pub struct PublishJob {
    /// The clear publish load.
    pub load: Value,
    /// Topic minion ids (glob/pcre/list targets), if known.
    pub topics: Option<Vec<String>>,
}

/// A bounded queue between units (threads with runtimes of their own):
/// pushed without waiting, popped asynchronously.
#[derive(Debug)]
pub struct BoundedQueue<T> {
    queue: Mutex<VecDeque<T>>,
    notify: tokio::sync::Notify,
    limit: usize,
}

impl<T> BoundedQueue<T> {
    /// A queue of at most `limit` items.
    pub fn new(limit: usize) -> Self {
        BoundedQueue { queue: Mutex::new(VecDeque::new()), notify: tokio::sync::Notify::new(), limit }
    }

    /// Queue an item; false if the queue is full.
    pub fn push(&self, item: T) -> bool {
        let Ok(mut q) = self.queue.lock() else { return false };
        if q.len() >= self.limit {
            return false;
        }
        q.push_back(item);
        drop(q);
        self.notify.notify_one();
        true
    }

    /// Take the next item, waiting for one.
    ///
    /// # Cancel safety
    /// Cancel safe: an item is only taken when this returns.
    pub async fn pop(&self) -> T {
        loop {
            let notified = self.notify.notified();
            if let Some(item) = self.queue.lock().ok().and_then(|mut q| q.pop_front()) {
                return item;
            }
            notified.await;
        }
    }
}

/// The in-process queue from the MWorkers to the Publisher unit (Salt's
/// PUSH to `publish_pull.ipc`, which the Publisher unit does for them).
/// Bounded: a full queue refuses the publish, which the worker reports.
pub type PublishQueue = BoundedQueue<PublishJob>;

/// Publishes that may wait for the Publisher at once.
pub const PUBLISH_QUEUE_LIMIT: usize = 10_000;

/// Everything the units share.
#[derive(Debug)]
pub struct Master {
    /// The options.
    pub config: MasterConfig,
    /// The master key pair.
    pub master_keys: MasterKeys,
    /// The minion key store.
    pub keystore: KeyStore,
    /// The job cache.
    pub jobs: Arc<dyn JobStore>,
    /// Writes the minions' returns to `jobs` off the workers' path.
    pub returns: crate::retwriter::ReturnWriter,
    /// The minion data cache (grains, pillar).
    pub datacache: DataCache,
    /// The master event bus.
    pub events: EventBus,
    /// MWorkers → Publisher.
    pub publish: PublishQueue,
    /// MWorkerQueue → MWorkers: the requests received on `ret_port`.
    pub requests: crate::reqqueue::RequestQueue,
    /// MWorkers → MWorkerQueue: the replies, with their routing frames.
    pub replies: BoundedQueue<zmtp::Message>,
    /// `publish_signing_algorithm`.
    pub publish_sig_algo: SigAlgo,
    /// `file_roots`, for the file server.
    pub file_roots: crate::roots::Roots,
    /// `pillar_roots`, for pillar.
    pub pillar_roots: crate::roots::Roots,
    /// The file server's symlink and ignore options.
    pub roots_opts: crate::roots::RootsOpts,
    /// The file server's list cache.
    pub list_cache: crate::fileserver::ListCache,
    /// The minion tokens verified against the unchanged accepted keys.
    pub tokens: crate::tokens::Tokens,
    aes: RwLock<Arc<AesKey>>,
    serial: AtomicU64,
    sessions: Mutex<HashMap<String, (SystemTime, Crypticle)>>,
    access_keys: HashMap<String, String>,
}

impl Master {
    /// Prepare the master's directories and secrets (`verify_environment`,
    /// `MasterKeys`, `populate_secrets`, `access_keys`).
    pub fn new(config: MasterConfig) -> Result<Self, StartError> {
        let dir = |p: PathBuf, mode: u32| -> Result<(), StartError> {
            crate::fsutil::ensure_dir(&p, mode).map_err(|source| StartError::Dir { path: p.clone(), source })
        };
        dir(config.cachedir.clone(), 0o755)?;
        for sub in ["jobs", "proc", "sessions"] {
            dir(config.cachedir.join(sub), 0o755)?;
        }
        dir(config.sock_dir.clone(), 0o750)?;
        let keystore = KeyStore::open(&config.pki_dir)?;
        let master_keys = MasterKeys::load_or_create(&config.pki_dir, config.master_key_name(), config.keysize)?;
        let publish_sig_algo: SigAlgo = config.publish_signing_algorithm.parse().map_err(|_| {
            StartError::Config(format!("bad publish_signing_algorithm {}", config.publish_signing_algorithm))
        })?;
        let mut access_keys = HashMap::new();
        for user in [config.user.clone(), crate::config::current_user()] {
            if let std::collections::hash_map::Entry::Vacant(slot) = access_keys.entry(user) {
                let key = keys::access_key(&config.cachedir, slot.key())?;
                slot.insert(key);
            }
        }
        let aes = AesKey::generate()?;
        let jobs: Arc<dyn JobStore> = Arc::new(LocalCache::new(&config.cachedir));
        let datacache = DataCache::new(&config.cachedir);
        let events = EventBus::new(crate::events::SUBSCRIBER_QUEUE);
        Ok(Master {
            master_keys,
            keystore,
            returns: crate::retwriter::ReturnWriter::new(jobs.clone()),
            jobs,
            datacache,
            events,
            publish: PublishQueue::new(PUBLISH_QUEUE_LIMIT),
            requests: crate::reqqueue::RequestQueue::new(crate::reqqueue::Schedule::new(
                std::time::Duration::from_secs(config.auth_backoff_after),
                std::time::Duration::from_secs(config.auth_stale_after),
                crate::reqqueue::QUEUE_LIMIT,
            )),
            // Every queued request may be answered at once (shed), plus one per worker.
            replies: BoundedQueue::new(crate::reqqueue::QUEUE_LIMIT + config.worker_threads + 1),
            publish_sig_algo,
            file_roots: crate::roots::Roots::from_value(&config.file_roots),
            pillar_roots: crate::roots::Roots::from_value(&config.pillar_roots),
            roots_opts: crate::roots::RootsOpts::of(&config),
            list_cache: crate::fileserver::ListCache::new(std::time::Duration::from_secs(
                config.fileserver_list_cache_time,
            )),
            aes: RwLock::new(Arc::new(aes)),
            serial: AtomicU64::new(0),
            sessions: Mutex::new(HashMap::new()),
            tokens: crate::tokens::Tokens::default(),
            access_keys,
            config,
        })
    }

    /// The current shared AES key.
    pub fn aes(&self) -> Arc<AesKey> {
        match self.aes.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The next publish serial (`SMaster.get_serial`).
    pub fn next_serial(&self) -> u64 {
        self.serial.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Replace the shared AES key and reset the serial
    /// (`SMaster.rotate_secrets`). Minions holding the old key fail the
    /// next publish's HMAC and re-authenticate.
    pub fn rotate_aes(&self) -> Result<(), StartError> {
        let new = Arc::new(AesKey::generate()?);
        match self.aes.write() {
            Ok(mut g) => *g = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
        self.serial.store(0, Ordering::SeqCst);
        Ok(())
    }

    /// The session key of `minion` (`ReqServerChannel.session_key`):
    /// `cachedir/sessions/<id>`, rewritten once older than
    /// `publish_session`, cached in memory while its file is unchanged.
    /// `minion` must already be a [`keys::valid_id`].
    pub fn session_key(&self, minion: &str) -> Result<Crypticle, StartError> {
        if !keys::valid_id(minion) {
            return Err(StartError::Config(format!("invalid minion id {minion:?}")));
        }
        let path = self.config.cachedir.join("sessions").join(minion);
        let now = SystemTime::now();
        let max_age = std::time::Duration::from_secs(self.config.publish_session);
        let mtime = fs::metadata(&path).and_then(|m| m.modified()).ok();
        if let (Some(mtime), Ok(sessions)) = (mtime, self.sessions.lock()) {
            if let Some((cached_mtime, key)) = sessions.get(minion) {
                let fresh = now.duration_since(*cached_mtime).map(|a| a < max_age).unwrap_or(true);
                if fresh && mtime <= *cached_mtime {
                    return Ok(key.clone());
                }
            }
        }
        let stale = mtime.map(|m| now.duration_since(m).map(|a| a > max_age).unwrap_or(false)).unwrap_or(true);
        let key = if stale {
            // The key just written is not read back (an open and a read per sign-in).
            let text = Crypticle::generate_key_string()?;
            crate::fsutil::write_replace(&path, text.as_bytes(), 0o600)
                .map_err(|source| StartError::Dir { path: path.clone(), source })?;
            Crypticle::new(&text)?
        } else {
            let text = fs::read_to_string(&path).map_err(|source| StartError::Dir { path: path.clone(), source })?;
            Crypticle::new(text.trim())?
        };
        let mtime = fs::metadata(&path).and_then(|m| m.modified()).unwrap_or(now);
        if let Ok(mut sessions) = self.sessions.lock() {
            // Bounded by the number of accepted minions that authenticated.
            sessions.insert(minion.to_owned(), (mtime, key.clone()));
        }
        Ok(key)
    }

    /// The access key of the master's own `user` (what its internal
    /// publishes, such as `ping_on_rotate`, authenticate with).
    pub fn own_access_key(&self) -> Option<&str> {
        self.access_keys.get(&self.config.user).map(String::as_str)
    }

    /// Whether `key` is the access key of some local user
    /// (`LoadAuth.authenticate_key` for `user`/`root`).
    pub fn access_key_matches(&self, key: &str) -> bool {
        use subtle::ConstantTimeEq as _;
        self.access_keys.values().any(|k| bool::from(k.as_bytes().ct_eq(key.as_bytes())))
    }
}
