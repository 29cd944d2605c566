//! One integration-test binary: the real CLI on `fixtures/` and on inputs
//! made by the tests, with the Parquet read back.

mod chunking;
mod cloud;
mod failures;
mod fixtures;
mod harness;
mod memory;
mod ops;
mod paths;
mod properties;
mod readers;
mod reruns;
mod rules;
mod users;
