//! scopegate: an authorization gateway in front of an HTTP API.
//!
//! # Layout: a request's path through the modules
//!
//! ```text
//! config ──► policy (raw → compile → Policy) ──────────────┐
//!                                                           ▼
//! request ─► normalize ─► Policy::lookup ─► auth ─► decide ─► proxy::forward ─► upstream
//!               (400)        (403/405)      (401)   (403)        (502/504)
//!                                 every refusal is rendered by `respond`
//! ```
//!
//! - [`config`]: the gateway config file (listen address, upstream, auth, limits).
//! - [`policy`]: the policy file, parsed (`raw`), validated and compiled (`compile`)
//!   into the immutable [`policy::Policy`] that requests are decided on.
//! - [`normalize`]: request path → canonical path, or a reason to refuse. Pure.
//! - [`auth`]: credentials (JWT bearer tokens, API keys) → [`auth::Principal`]; issuer
//!   keys static or fetched from identity providers (JWKS, OpenID discovery) and kept
//!   fresh in the background; verified tokens cached.
//! - [`decide`]: `Policy` + looked-up route + principal → [`decide::Decision`]. Pure, no I/O.
//! - [`proxy`]: the hyper service running the steps above and streaming to the upstream.
//! - [`respond`]: every refusal and upstream failure → status, JSON body, headers.
//! - [`tls`]: rustls configs for the listener (certificate reload, mTLS claims) and HTTPS upstreams.
//! - [`reload`]: hot reload of the policy and API-key files (directory watch, SIGHUP, poll).
//! - [`admin`]: the admin listener (`/metrics`, `/healthz`, `/readyz`, `/v1/*`).
//! - [`telemetry`]: metric names, the Prometheus recorder, the access-log target.
//! - [`app`]: config → live policy + authenticator + gateway; runs both listeners and
//!   drains on shutdown.
//! - [`hex`]: lower-case hex of digests and ids.
//! - [`tooling`]: the demo, `explain`, policy tests, OpenAPI import, `check`'s lint,
//!   `token` and the echo upstream.
#![forbid(unsafe_code)]

pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod decide;
pub mod hex;
pub mod normalize;
pub mod policy;
pub mod proxy;
pub mod reload;
pub mod respond;
pub mod telemetry;
pub mod tls;
pub mod tooling;
pub mod yaml;
