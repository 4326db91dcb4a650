//! Test-only crate: integration tests that start the real `berth` binary on
//! 127.0.0.1 (port 0) and drive it with the AWS SDK for Rust over plain
//! HTTP. Everything lives in `tests/`; see `tests/common/mod.rs` for the
//! harness.
