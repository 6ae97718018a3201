//! Tools around the gateway: the echo upstream used by the demo and the tests.
pub mod echo;
