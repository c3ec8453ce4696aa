//! A policy file that can change under a running gateway: reloaded on
//! change or on demand (SIGHUP), swapped atomically only once it has been
//! parsed and validated in full.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use airlock_core::{Decision, Operation, Principal};
use arc_swap::ArcSwap;

use crate::{Policy, PolicyEngine, PolicyError};

/// The current policy from a file; cheap to clone, lock-free to read.
///
/// ```no_run
/// # async fn run() -> Result<(), airlock_policy::PolicyError> {
/// use std::time::Duration;
/// let policy = airlock_policy::PolicyFile::load("policy.toml")?;
/// policy.watch(Duration::from_secs(2)); // reload when the file changes
/// // on SIGHUP: policy.reload()
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PolicyFile {
    path: Arc<PathBuf>,
    current: Arc<ArcSwap<Policy>>,
    check: Arc<Check>,
    /// Every version of the file in observe mode.
    observe_all: bool,
}

/// A check of the embedder's, run on every version of the file before it is used.
type Check = dyn Fn(&Policy) -> Result<(), PolicyError> + Send + Sync;

impl std::fmt::Debug for PolicyFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PolicyFile")
            .field("path", &self.path)
            .field("rules", &self.current().len())
            .finish_non_exhaustive()
    }
}

impl PolicyFile {
    /// Loads and validates `path`.
    ///
    /// # Errors
    ///
    /// When the file cannot be read or is not a valid policy.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, PolicyError> {
        Self::load_checked(path, |_| Ok(()))
    }

    /// Loads `path`, and refuses this and every later version of the file
    /// that `check` refuses (the gateway checks that each `elevate_to`
    /// names one of its upstream identities).
    ///
    /// # Errors
    ///
    /// When the file cannot be read, is not a valid policy, or `check` refuses it.
    pub fn load_checked(
        path: impl AsRef<Path>,
        check: impl Fn(&Policy) -> Result<(), PolicyError> + Send + Sync + 'static,
    ) -> Result<Self, PolicyError> {
        let path = path.as_ref().to_owned();
        let policy = Policy::load(&path)?;
        check(&policy)?;
        log_warnings(&policy);
        Ok(Self {
            path: Arc::new(path),
            current: Arc::new(ArcSwap::from_pointee(policy)),
            check: Arc::new(check),
            observe_all: false,
        })
    }

    /// Puts this and every later version of the file in observe mode
    /// ([`Policy::observing_all`]; `[policy] mode = "observe"`).
    #[must_use]
    pub fn observing_all(mut self) -> Self {
        self.observe_all = true;
        let policy = Policy::clone(&self.current.load()).observing_all();
        if let Some(warning) = policy.warnings().last() {
            tracing::warn!("{warning}");
        }
        self.current.store(Arc::new(policy));
        self
    }

    /// The policy in force.
    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Reads the file again; on success the new policy replaces the old one
    /// for every request from now on, on failure the old one stays.
    ///
    /// # Errors
    ///
    /// The new file's error (also logged); the running policy is unchanged.
    pub fn reload(&self) -> Result<(), PolicyError> {
        let loaded = Policy::load(&self.path).map(|policy| {
            if self.observe_all {
                policy.observing_all()
            } else {
                policy
            }
        });
        match loaded.and_then(|policy| (self.check)(&policy).map(|()| policy)) {
            Ok(policy) => {
                log_warnings(&policy);
                tracing::info!(file = %self.path.display(), rules = policy.len(), "policy reloaded");
                self.current.store(Arc::new(policy));
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "the changed policy file is invalid; the running policy stays in force");
                Err(error)
            }
        }
    }

    /// Checks the file's modification time and size every `interval` and
    /// reloads when they change, until every clone of this handle is dropped.
    pub fn watch(&self, interval: Duration) {
        let path = self.path.clone();
        let check = self.check.clone();
        let observe_all = self.observe_all;
        let weak = Arc::downgrade(&self.current);
        let mut seen = fingerprint(&path);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(interval).await;
                let Some(current) = weak.upgrade() else {
                    return;
                };
                let now = fingerprint(&path);
                if now != seen {
                    seen = now;
                    let file = PolicyFile {
                        path: path.clone(),
                        current,
                        check: check.clone(),
                        observe_all,
                    };
                    let _ = file.reload();
                }
            }
        });
    }
}

fn fingerprint(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn log_warnings(policy: &Policy) {
    for warning in policy.warnings() {
        tracing::warn!("{warning}");
    }
}

impl PolicyEngine for PolicyFile {
    fn decide(&self, principal: &Principal, operation: &Operation) -> Decision {
        self.current.load().decide(principal, operation)
    }

    fn observed(
        &self,
        principal: &Principal,
        operation: &Operation,
        decided: &Decision,
    ) -> Option<Decision> {
        self.current.load().observed(principal, operation, decided)
    }
}
