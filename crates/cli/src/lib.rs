//! Library side of the `repurchase` command: the demo pipeline, the backtests (one date, rolling
//! origins), the oracle comparison, the monitoring page and the business diagnostics, kept out of `main.rs` so the integration tests drive exactly the same code.

#![warn(missing_docs, unreachable_pub)]

pub mod backtest;
pub mod demo;
pub mod diagnose;
pub mod error;
pub mod monitor;
pub mod oracle;
pub mod rolling;
