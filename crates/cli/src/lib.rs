//! Library side of the `repurchase` command: the demo pipeline, the backtests (one date, rolling
//! origins) and the oracle comparison, kept out of `main.rs` so the integration tests drive exactly the same code.

#![warn(missing_docs, unreachable_pub)]

pub mod backtest;
pub mod demo;
pub mod error;
pub mod monitor;
pub mod oracle;
pub mod rolling;
