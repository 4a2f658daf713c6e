//! Crash safety: workers killed with SIGKILL at random points never leave a visible partial partition.
