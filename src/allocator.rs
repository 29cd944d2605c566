//! The allocator's one setting: how soon freed memory goes back to the OS.
//!
//! mimalloc 3 keeps freed pages for a second before returning them. The
//! collapse frees batches at hundreds of MB a second on other threads than
//! those that allocate the next ones, so a second's worth stayed resident:
//! 5M build-users peaked at 1.20 GB with the default, 0.99 GB at 50 ms
//! (1.23 GB / 0.98 GB at 250 / 10 ms), for ~2 s more system time in `run`.
//! `MIMALLOC_PURGE_DELAY` in the environment still decides, as mimalloc's
//! own options do.

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// mimalloc's `mi_option_purge_delay`, the 16th of its `mi_option_e`
/// (libmimalloc-sys has no constant for it; a test pins the index).
const PURGE_DELAY: mi_option_t = 15;
const PURGE_DELAY_MS: i64 = 50;

/// Call first in `main`, before any other thread exists: mimalloc's
/// options are not synchronised.
#[allow(unsafe_code)]
pub fn return_freed_memory_sooner() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: sets one integer in mimalloc's option table, in range, with
    // no other thread running; no memory is handed over.
    unsafe { mi_option_set(PURGE_DELAY, PURGE_DELAY_MS as _) }
}

/// The delay in force, in milliseconds.
#[allow(unsafe_code)]
pub fn purge_delay_ms() -> i64 {
    // SAFETY: reads one integer of mimalloc's option table, in range.
    unsafe { mi_option_get(PURGE_DELAY) as i64 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// mimalloc 3's default purge delay is 1000 ms, a value no option
    /// near it has: the index is the purge delay's.
    #[test]
    fn the_option_index_is_the_purge_delay() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(purge_delay_ms(), 1000);
        }
    }
}
