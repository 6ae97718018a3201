//! Keeping a remote issuer's keys current (SPEC §2): a background refresh that follows
//! `Cache-Control: max-age` within the issuer's `refresh` bounds, an immediate refetch
//! when a token names an unknown `kid` (at most once per 10 s per issuer), and on
//! failure: keep the last good keys and retry with backoff.
//!
//! Fetches of one issuer are serialized, so a key set is only ever replaced by the
//! newest fetch and a burst of unknown kids shares one fetch.

use std::time::Duration;

use http::Uri;
use jsonwebtoken::Algorithm;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::jwk_set::{self, JwkSetError};
use super::jwks::{HttpFetcher, JwksError};
use super::keys::KeyStore;

/// `scopegate_jwks_refreshes_total{issuer,result}`: fetches of an issuer's keys,
/// `result` = `success` or `failure`.
pub const REFRESHES: &str = "scopegate_jwks_refreshes_total";

/// The least time between two unknown-`kid` refetches of one issuer, so a flood of
/// tokens with made-up kids cannot turn the gateway into a load generator for the IdP.
pub(crate) const UNKNOWN_KID_INTERVAL: Duration = Duration::from_secs(10);
/// First retry after a failed fetch; doubles per failure up to `MAX_RETRY`.
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(60);

/// Why a fetch brought no new keys (the old ones stay in force).
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    #[error(transparent)]
    Fetch(#[from] JwksError),
    #[error("{url}: {error}")]
    Keys { url: String, error: JwkSetError },
}

/// Where an issuer's keys come from.
pub(crate) enum Source {
    /// An OpenID discovery document naming the `jwks_uri`.
    Discovery(Uri),
    /// The JWKS URL itself.
    Jwks(Uri),
}

/// Bounds on the time between two background refreshes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub min: Duration,
    pub max: Duration,
}

impl Bounds {
    /// When to refresh after a success: the server's max-age clamped into the bounds;
    /// without one, `min` (keys removed at the IdP then stop verifying soonest).
    pub fn next_refresh(&self, max_age: Option<Duration>) -> Duration {
        max_age.unwrap_or(self.min).clamp(self.min, self.max)
    }

    /// When to retry after `failures` failures in a row (1 = the first).
    pub fn retry_after(&self, failures: u32) -> Duration {
        let exp = FIRST_RETRY.saturating_mul(1 << failures.saturating_sub(1).min(16));
        exp.min(MAX_RETRY).min(self.min.max(FIRST_RETRY))
    }
}

/// Admits one unknown-kid refetch per [`UNKNOWN_KID_INTERVAL`].
#[derive(Debug, Default)]
pub(crate) struct RefetchGate {
    last: Option<Instant>,
}

impl RefetchGate {
    /// True (and the interval restarts) when a refetch may start at `now`.
    pub fn admit(&mut self, now: Instant) -> bool {
        match self.last {
            Some(last) if now.saturating_duration_since(last) < UNKNOWN_KID_INTERVAL => false,
            _ => {
                self.last = Some(now);
                true
            }
        }
    }
}

/// The fetching side of one issuer whose keys live at its IdP.
pub(crate) struct RemoteKeys {
    source: Source,
    fetcher: HttpFetcher,
    pub bounds: Bounds,
    /// The `jwks_uri` last found by discovery (dropped after a failure, so the next
    /// attempt discovers again). Holding it serializes this issuer's fetches.
    jwks_uri: Mutex<Option<Uri>>,
    gate: Mutex<RefetchGate>,
}

/// The result of one successful fetch.
pub(crate) struct Refreshed {
    /// When the next background refresh is due.
    pub next: Duration,
}

impl RemoteKeys {
    pub fn new(source: Source, fetcher: HttpFetcher, bounds: Bounds) -> Self {
        RemoteKeys {
            source,
            fetcher,
            bounds,
            jwks_uri: Mutex::new(None),
            gate: Mutex::new(RefetchGate::default()),
        }
    }

    /// Fetches the keys and installs them in `store` if they differ from its current
    /// ones; `on_change` runs (under the fetch lock) right after a replacement.
    /// A failure leaves `store` untouched.
    pub async fn refresh(
        &self,
        issuer: &str,
        allowed: &[Algorithm],
        store: &KeyStore,
        on_change: impl FnOnce(),
    ) -> Result<Refreshed, RefreshError> {
        let mut cached_uri = self.jwks_uri.lock().await;
        let result = self
            .fetch_and_install(&mut cached_uri, issuer, allowed, store, on_change)
            .await;
        let label = if result.is_ok() { "success" } else { "failure" };
        metrics::counter!(REFRESHES, "issuer" => issuer.to_string(), "result" => label)
            .increment(1);
        match &result {
            Ok(_) => {}
            Err(e) if store.snapshot().loaded => {
                *cached_uri = None;
                tracing::warn!(issuer, error = %e, "fetching identity provider keys failed; keeping the last good keys");
            }
            Err(e) => {
                *cached_uri = None;
                tracing::warn!(issuer, error = %e, "fetching identity provider keys failed; its tokens are refused until a fetch succeeds");
            }
        }
        result
    }

    async fn fetch_and_install(
        &self,
        cached_uri: &mut Option<Uri>,
        issuer: &str,
        allowed: &[Algorithm],
        store: &KeyStore,
        on_change: impl FnOnce(),
    ) -> Result<Refreshed, RefreshError> {
        let url = match (&self.source, cached_uri.as_ref()) {
            (Source::Jwks(url), _) => url.clone(),
            (Source::Discovery(_), Some(url)) => url.clone(),
            (Source::Discovery(doc), None) => {
                let url = self.fetcher.discover(doc, issuer).await?;
                *cached_uri = Some(url.clone());
                url
            }
        };
        let fetched = self.fetcher.get(&url).await?;
        let parsed =
            jwk_set::parse(&fetched.body, allowed).map_err(|error| RefreshError::Keys {
                url: url.to_string(),
                error,
            })?;
        if parsed.ignored > 0 {
            tracing::debug!(
                issuer,
                ignored = parsed.ignored,
                "JWKS keys not usable here were ignored"
            );
        }
        let current = store.snapshot();
        let changed = current.fingerprint != Some(parsed.fingerprint);
        if changed {
            let count = parsed.keys.len();
            let first = !current.loaded;
            drop(current);
            store.replace(parsed.keys, Some(parsed.fingerprint));
            on_change();
            if first {
                tracing::info!(issuer, keys = count, "identity provider keys loaded");
            } else {
                tracing::info!(issuer, keys = count, "identity provider keys changed");
            }
        } else {
            tracing::debug!(issuer, "identity provider keys unchanged");
        }
        Ok(Refreshed {
            next: self.bounds.next_refresh(fetched.max_age),
        })
    }

    /// For a token whose `kid` no current key has: refetches now unless this issuer did
    /// so within [`UNKNOWN_KID_INTERVAL`]. Callers arriving while a refetch runs wait
    /// for it and then verify against its result rather than fetching again.
    pub async fn refetch_for_unknown_kid(
        &self,
        issuer: &str,
        allowed: &[Algorithm],
        store: &KeyStore,
        on_change: impl FnOnce(),
    ) {
        let mut gate = self.gate.lock().await;
        if gate.admit(Instant::now()) {
            tracing::debug!(issuer, "unknown kid: refetching the issuer's keys");
            // A failure is logged and counted inside; the caller just sees no new key.
            let _ = self.refresh(issuer, allowed, store, on_change).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn max_age_is_clamped_into_the_bounds() {
        let b = Bounds {
            min: S(300),
            max: S(86_400),
        };
        assert_eq!(b.next_refresh(None), S(300));
        assert_eq!(b.next_refresh(Some(S(0))), S(300));
        assert_eq!(b.next_refresh(Some(S(3600))), S(3600));
        assert_eq!(b.next_refresh(Some(S(10_000_000))), S(86_400));
    }

    #[test]
    fn retries_back_off_up_to_a_cap() {
        let b = Bounds {
            min: S(300),
            max: S(86_400),
        };
        let waits: Vec<u64> = (1..=9).map(|n| b.retry_after(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(b.retry_after(u32::MAX), S(60));
        let short = Bounds {
            min: S(5),
            max: S(10),
        };
        assert_eq!(short.retry_after(10), S(5), "never slower than `min`");
    }

    #[test]
    fn unknown_kid_refetch_at_most_every_ten_seconds() {
        let mut gate = RefetchGate::default();
        let t0 = Instant::now();
        assert!(gate.admit(t0));
        assert!(!gate.admit(t0));
        assert!(!gate.admit(t0 + Duration::from_millis(9_999)));
        assert!(gate.admit(t0 + S(10)));
        assert!(!gate.admit(t0 + S(15)));
        assert!(gate.admit(t0 + S(20)));
    }
}
