//! Bad input corpus: every malformed export gets a documented outcome, never a panic.
