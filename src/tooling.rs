//! Tools around the gateway: the demo, policy tests (`scopegate test`), the OpenAPI
//! import, `scopegate check`'s lint, development tokens, and the echo upstream the demo
//! and the integration tests put behind the gateway.
pub mod demo;
pub mod echo;
pub mod explain;
pub mod lint;
pub mod openapi;
pub mod policy_test;
pub mod token;
