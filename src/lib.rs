//! identify-loader: loads identify event logs into Parquet tables.
//! See SPEC.md; `pipeline` holds the stages in the order they run.

pub mod allocator;
mod arena;
pub mod cli;
pub mod config;
pub mod error;
pub mod inspect;
pub mod latest;
pub mod latest_fields;
pub mod memory;
pub mod one_phase;
pub mod pipeline;
pub mod progress;
pub mod query;
pub mod session;
pub mod slice;
pub mod sorted_distinct;
pub mod spill_dir;
pub mod storage;
pub mod summary;

pub use error::{Error, Result};
