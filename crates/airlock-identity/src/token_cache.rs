//! Verified tokens, remembered until they expire, so that the steady-state
//! cost of identity is one hash and one table lookup.

use std::hash::{BuildHasher, RandomState};
use std::sync::{PoisonError, RwLock};
use std::time::SystemTime;

use airlock_core::Principal;
use hashbrown::HashTable;

/// One verified token.
struct Entry {
    /// The whole token: lookups compare it, so no hash collision can return
    /// another token's principal.
    token: Box<str>,
    hash: u64,
    principal: Principal,
    /// The token's `exp` plus leeway, or earlier (the group cache's TTL).
    valid_until: SystemTime,
}

/// A bounded map from token to its verified [`Principal`].
///
/// Only the last 64 bytes of a token are hashed: they are signature bytes,
/// unique per token, and hashing a 2 KB token whole would cost more than the
/// lookup itself. The hasher is randomly keyed per process.
pub(crate) struct TokenCache {
    table: RwLock<HashTable<Entry>>,
    hasher: RandomState,
    capacity: usize,
}

impl TokenCache {
    /// A cache holding at most `capacity` tokens (0 disables caching).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            table: RwLock::new(HashTable::with_capacity(capacity.min(1024))),
            hasher: RandomState::new(),
            capacity,
        }
    }

    fn hash(&self, token: &str) -> u64 {
        let bytes = token.as_bytes();
        self.hasher
            .hash_one(&bytes[bytes.len().saturating_sub(64)..])
    }

    /// The principal of a verified, unexpired `token`.
    pub(crate) fn get(&self, token: &str, now: SystemTime) -> Option<Principal> {
        if self.capacity == 0 {
            return None;
        }
        let hash = self.hash(token);
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        table
            .find(hash, |e| *e.token == *token)
            .filter(|e| now < e.valid_until)
            .map(|e| e.principal.clone())
    }

    /// Remembers a verified token until `valid_until`. When full, expired
    /// entries go first, then arbitrary ones (a full cache only costs
    /// re-verification, never correctness).
    pub(crate) fn insert(
        &self,
        token: &str,
        principal: Principal,
        valid_until: SystemTime,
        now: SystemTime,
    ) {
        if self.capacity == 0 {
            return;
        }
        let hash = self.hash(token);
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        if table.len() >= self.capacity {
            table.retain(|e| now < e.valid_until);
        }
        if table.len() >= self.capacity {
            let mut excess = table.len() + 1 - self.capacity;
            table.retain(|_| {
                let drop = excess > 0;
                excess = excess.saturating_sub(1);
                !drop
            });
        }
        match table.find_mut(hash, |e| *e.token == *token) {
            Some(entry) => {
                entry.principal = principal;
                entry.valid_until = valid_until;
            }
            None => {
                table.insert_unique(
                    hash,
                    Entry {
                        token: token.into(),
                        hash,
                        principal,
                        valid_until,
                    },
                    |e| e.hash,
                );
            }
        }
    }

    /// How many tokens are cached.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.table
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock_core::PrincipalKind;
    use std::time::Duration;

    fn principal(id: &str) -> Principal {
        Principal::builder(id, PrincipalKind::Application).build()
    }

    #[test]
    fn finds_only_the_exact_unexpired_token() {
        let cache = TokenCache::new(8);
        let now = SystemTime::now();
        let token = format!("header.payload.{}", "s".repeat(80));
        cache.insert(&token, principal("a"), now + Duration::from_secs(60), now);
        assert_eq!(cache.get(&token, now).unwrap().id(), "a");
        // Same last 64 bytes (same hash), different token: not a hit.
        let forged = format!("HEADER.PAYLOAD.{}", "s".repeat(80));
        assert!(cache.get(&forged, now).is_none());
        assert!(
            cache.get(&token, now + Duration::from_secs(61)).is_none(),
            "expired"
        );
    }

    #[test]
    fn stays_within_capacity() {
        let cache = TokenCache::new(3);
        let now = SystemTime::now();
        for i in 0..10 {
            cache.insert(
                &format!("t{i}"),
                principal("p"),
                now + Duration::from_secs(60),
                now,
            );
            assert!(cache.len() <= 3);
        }
        assert!(cache.get("t9", now).is_some(), "the newest entry is kept");
        let disabled = TokenCache::new(0);
        disabled.insert("t", principal("p"), now + Duration::from_secs(60), now);
        assert!(disabled.get("t", now).is_none());
    }
}
