//! The engine's tests: every kernel against a plain-Rust reference, in one process on one device.
//! Each module is one kernel family.

mod common;
mod elementwise;
mod runtime;
