//! Library side of the `repurchase` command: the demo pipeline and the oracle comparison, kept
//! out of `main.rs` so the integration tests drive exactly the same code.

pub mod demo;
pub mod oracle;
