//! The allocator's settings: how soon freed memory goes back to the OS.
//!
//! mimalloc 3 keeps freed pages for a second before returning them. The
//! load's parsing frees and reallocates the same few hundred MB of buffers
//! all along: returning them after 50 ms made the 1M load ~10% slower
//! (twice the system time, in page faults and TLB shootdowns). But a
//! second's worth of the load's freed batches stayed resident, up to 200 MB
//! above what it holds: at 250 ms the 5M load peaked at 514–552 MB instead
//! of 678–750 MB, in the same wall time within noise (35.8–36.3 s against
//! 34.8–36.6 s; 1M: 7.5–7.6 s against 7.2–7.9 s). So the load reads with
//! a delay of 250 ms. The collapse frees batches at hundreds of MB a
//! second on other threads than those that allocate the next ones: 5M
//! build-users peaked at 1.20 GB with the default, 0.99 GB at 50 ms (1.10
//! GB / 0.98 GB at 250 / 10 ms). So pass two of the load and build-users
//! first return what is free and shorten the delay to 50 ms. A purge
//! delay set in the environment (`MIMALLOC_PURGE_DELAY`, or its old name
//! `MIMALLOC_RESET_DELAY`, in any case, as mimalloc reads them) is left to
//! decide.

use libmimalloc_sys::{mi_collect, mi_option_get, mi_option_set, mi_option_t};

/// mimalloc's `mi_option_purge_delay`, the 16th of its `mi_option_e`
/// (libmimalloc-sys has no constant for it; a test pins the index).
const PURGE_DELAY: mi_option_t = 15;
const SHORT_PURGE_DELAY_MS: i64 = 50;
const READING_PURGE_DELAY_MS: i64 = 250;

/// Called as a load starts reading: freed pages go back to the OS after
/// 250 ms rather than a second, unless the environment sets the delay.
pub fn return_freed_memory_while_reading() {
    set_purge_delay(READING_PURGE_DELAY_MS);
}

/// Called as pass two of a load and as build-users start: returns what
/// freed pages hold to the OS now, whichever thread freed them (in `run`,
/// the load's last buffers, freed on threads that then went idle or ended,
/// were still resident at build-users' peak: 5M `run` peaked at 1.3–1.5 GB
/// without this, 1.05–1.07 GB with it), then sets the purge delay to 50 ms
/// unless the environment sets it.
#[allow(unsafe_code)]
pub fn return_freed_memory_sooner() {
    // SAFETY: mimalloc's collection may run on any thread at any time; it
    // hands no memory to the caller.
    unsafe { mi_collect(true) }
    set_purge_delay(SHORT_PURGE_DELAY_MS);
}

/// Sets mimalloc's purge delay, unless the environment sets it.
#[allow(unsafe_code)]
fn set_purge_delay(ms: i64) {
    let set_outside = std::env::vars_os().any(|(name, _)| {
        name.to_str().is_some_and(|name| {
            name.eq_ignore_ascii_case("MIMALLOC_PURGE_DELAY")
                || name.eq_ignore_ascii_case("MIMALLOC_RESET_DELAY")
        })
    });
    if !set_outside {
        // SAFETY: one in-range integer of mimalloc's option table. Other
        // threads may read it meanwhile, unsynchronised, as mimalloc's own
        // lazy option initialisation writes it from whichever thread reads
        // an option first; an aligned `long` store is a single store on the
        // targets we build, so a reader sees the old delay or the new one.
        unsafe { mi_option_set(PURGE_DELAY, ms as _) }
    }
}

/// The purge delay in force, in milliseconds.
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
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none()
            && std::env::var_os("MIMALLOC_RESET_DELAY").is_none()
        {
            assert_eq!(purge_delay_ms(), 1000);
        }
    }
}
