//! The verified-token cache: skips re-checking the signature of a token seen before.
//!
//! A fixed table of `cache_size` slots, each an `ArcSwapOption`, so a lookup is one hash
//! and one atomic load, with no lock and no allocation. A token's slot comes from its
//! SHA-256; the slot keeps the whole hash (never the token), the principal, the moment the
//! token expires, and the issuer's key-set generation it was verified under. An entry from
//! an older generation never answers, which empties an issuer's part of the cache the
//! instant its keys change, even for a verification that was in flight at the time.
//! A new token takes its slot's place: the table never grows.
//!
//! Only authentication is cached: the decision still runs on every request.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::Principal;

/// `scopegate_token_cache_hits_total`: requests whose token was found verified.
pub const HITS: &str = "scopegate_token_cache_hits_total";
/// `scopegate_token_cache_misses_total`: tokens that had to be verified.
pub const MISSES: &str = "scopegate_token_cache_misses_total";

/// The SHA-256 of a token: what the cache is keyed by.
pub(crate) type TokenHash = [u8; 32];

/// Hashes a token for [`TokenCache`].
pub(crate) fn hash(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// One verified token.
pub(crate) struct Entry {
    pub hash: TokenHash,
    /// Index of the issuer whose keys verified it.
    pub issuer: usize,
    /// That issuer's key-set generation at verification time.
    pub generation: u64,
    /// Seconds since the epoch from which the token is expired (`exp` + leeway).
    pub expires_at: f64,
    pub principal: Arc<Principal>,
}

/// A bounded, lock-free table of verified tokens.
pub(crate) struct TokenCache {
    slots: Box<[ArcSwapOption<Entry>]>,
}

impl TokenCache {
    /// A cache of `size` slots; 0 disables caching.
    pub fn new(size: usize) -> Self {
        TokenCache {
            slots: (0..size).map(|_| ArcSwapOption::empty()).collect(),
        }
    }

    fn slot(&self, hash: &TokenHash) -> Option<&ArcSwapOption<Entry>> {
        if self.slots.is_empty() {
            return None;
        }
        let mut head = [0u8; 8];
        head.copy_from_slice(&hash[..8]);
        // Modulo of a uniformly distributed u64: bias is negligible for any table size.
        let index = (u64::from_le_bytes(head) % self.slots.len() as u64) as usize;
        self.slots.get(index)
    }

    /// The principal of a token verified before, if it is still valid at `now` and its
    /// issuer's keys are still at the generation `current(issuer)` returns.
    pub fn get(
        &self,
        hash: &TokenHash,
        now: f64,
        current: impl Fn(usize) -> u64,
    ) -> Option<Arc<Principal>> {
        let guard = self.slot(hash)?.load();
        let entry = guard.as_ref()?;
        let same = bool::from(entry.hash.ct_eq(hash));
        if same && now < entry.expires_at && current(entry.issuer) == entry.generation {
            Some(entry.principal.clone())
        } else {
            None
        }
    }

    /// Remembers a verified token, replacing whatever held its slot.
    pub fn insert(&self, entry: Entry) {
        if let Some(slot) = self.slot(&entry.hash) {
            slot.store(Some(Arc::new(entry)));
        }
    }

    /// Frees the entries of `issuer` (its keys changed). Correctness does not depend on
    /// this (stale generations never answer); it returns the memory early.
    pub fn clear_issuer(&self, issuer: usize) {
        for slot in self.slots.iter() {
            let current = slot.load();
            if current.as_ref().is_some_and(|e| e.issuer == issuer) {
                slot.compare_and_swap(&*current, None);
            }
        }
    }

    /// Entries currently held (tests; walks the table).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.load().is_some()).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(token: &str, issuer: usize, generation: u64, expires_at: f64) -> Entry {
        Entry {
            hash: hash(token),
            issuer,
            generation,
            expires_at,
            principal: Arc::new(Principal {
                subject: Some(token.to_string()),
                ..Principal::default()
            }),
        }
    }

    fn subject(p: Option<Arc<Principal>>) -> Option<String> {
        p.and_then(|p| p.subject.clone())
    }

    #[test]
    fn hit_until_expiry() {
        let cache = TokenCache::new(64);
        cache.insert(entry("t1", 0, 0, 100.0));
        let gen0 = |_| 0;
        assert_eq!(
            subject(cache.get(&hash("t1"), 99.0, gen0)),
            Some("t1".into())
        );
        assert!(
            cache.get(&hash("t1"), 100.0, gen0).is_none(),
            "expired at exp"
        );
        assert!(cache.get(&hash("t2"), 1.0, gen0).is_none(), "never seen");
    }

    #[test]
    fn a_new_key_generation_misses() {
        let cache = TokenCache::new(64);
        cache.insert(entry("a", 0, 3, 100.0));
        cache.insert(entry("b", 1, 7, 100.0));
        let gens = |g0: u64| move |i: usize| if i == 0 { g0 } else { 7 };
        assert!(cache.get(&hash("a"), 1.0, gens(3)).is_some());
        assert!(cache.get(&hash("a"), 1.0, gens(4)).is_none());
        assert!(
            cache.get(&hash("b"), 1.0, gens(4)).is_some(),
            "other issuer kept"
        );
    }

    #[test]
    fn clear_issuer_frees_only_that_issuer() {
        let cache = TokenCache::new(1024);
        for i in 0..50 {
            cache.insert(entry(&format!("x{i}"), i % 2, 0, 100.0));
        }
        let issuers = |cache: &TokenCache| -> Vec<usize> {
            let mut v: Vec<usize> = cache
                .slots
                .iter()
                .filter_map(|s| s.load().as_ref().map(|e| e.issuer))
                .collect();
            v.dedup();
            v.sort();
            v.dedup();
            v
        };
        assert_eq!(issuers(&cache), [0, 1]);
        cache.clear_issuer(0);
        assert_eq!(issuers(&cache), [1]);
        assert!(cache.get(&hash("x0"), 1.0, |_| 0).is_none());
    }

    #[test]
    fn bounded_by_its_size() {
        let cache = TokenCache::new(8);
        for i in 0..1000 {
            cache.insert(entry(&format!("t{i}"), 0, 0, 100.0));
        }
        assert!(cache.len() <= 8);
        // The last token inserted is always there.
        assert!(cache.get(&hash("t999"), 1.0, |_| 0).is_some());
    }

    #[test]
    fn size_zero_caches_nothing() {
        let cache = TokenCache::new(0);
        cache.insert(entry("t", 0, 0, 100.0));
        assert!(cache.get(&hash("t"), 1.0, |_| 0).is_none());
        assert_eq!(cache.len(), 0);
    }
}
