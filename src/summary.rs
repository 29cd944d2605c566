//! The run summary (SPEC §7), printed as the last line on stdout.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub run_id: String,
    pub files_seen: u64,
    pub files_loaded: u64,
    pub files_skipped: u64,
    pub files_failed: Vec<FailedFile>,
    pub bytes_read: u64,
    pub lines: u64,
    pub blank_lines: u64,
    pub identifies_loaded: u64,
    pub non_identify: u64,
    pub duplicates: u64,
    pub rejected: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    pub discarded_values: u64,
    pub new_columns: IndexMap<String, String>,
    pub partitions: Vec<String>,
    pub users: Option<u64>,
    pub elapsed_s: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedFile {
    pub source: String,
    pub error: String,
}

impl Summary {
    /// SPEC §7: every line is counted exactly once.
    pub fn balances(&self) -> bool {
        self.lines
            == self.blank_lines + self.identifies_loaded + self.non_identify + self.duplicates + self.rejected
    }

    /// Did the reject ratio go over `max` (SPEC §1 exit code 3)?
    pub fn reject_ratio_exceeded(&self, max: f64) -> bool {
        self.lines > 0 && (self.rejected as f64 / self.lines as f64) > max
    }
}
