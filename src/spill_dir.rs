//! A run's own folder for local spill files (the load's row spill and
//! DataFusion's), under `--spill-dir` or the system temp folder.
//!
//! A run killed with SIGKILL cannot remove its folder, and a nightly job
//! killed by a scheduler's timeout would leave gigabytes behind each time.
//! So each folder holds a `lock` file locked while its run lives (the kernel
//! drops the lock when the process dies, however it dies), and every run
//! first removes the folders whose lock it can take.

use std::fs::{File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};

use crate::error::Error;

const PREFIX: &str = "identify-loader-";
const LOCK: &str = "lock";

#[derive(Debug)]
pub struct SpillDir {
    path: PathBuf,
    /// Held, not read: the lock lives as long as this open file.
    _lock: Option<File>,
}

impl SpillDir {
    /// Removes dead runs' folders under `root` (default: the system temp
    /// folder), then makes and locks this run's.
    pub fn create(root: Option<&Path>) -> io::Result<Self> {
        let root = root.map_or_else(std::env::temp_dir, Path::to_path_buf);
        std::fs::create_dir_all(&root)?;
        sweep(&root);
        let path = tempfile::Builder::new().prefix(PREFIX).tempdir_in(&root)?.keep();
        // From here on a failure removes the folder (on drop).
        let mut dir = SpillDir { path, _lock: None };
        // Locked under another name, then renamed: a sweep never finds a
        // `lock` that is not yet locked.
        let pending = dir.path.join(".lock");
        let lock = File::create(&pending)?;
        // On a file system without locks the folder gets no `lock`, so it
        // is never swept, rather than swept while in use.
        if lock.try_lock().is_ok() {
            std::fs::rename(&pending, dir.path.join(LOCK))?;
            dir._lock = Some(lock);
        }
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpillDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A failure of the spill folder under `root` (`--spill-dir`, or the
/// system temp folder when `None`).
pub fn spill_error(root: Option<&Path>, source: io::Error) -> Error {
    let dir = root.map_or_else(std::env::temp_dir, Path::to_path_buf);
    Error::Spill { dir: dir.display().to_string(), source }
}

/// Removes the folders under `root` of runs that are gone. Best effort: a
/// folder that cannot be examined or removed is left for a later run.
fn sweep(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for entry in entries.flatten() {
        let is_ours = entry.file_name().to_str().is_some_and(|name| name.starts_with(PREFIX));
        if is_ours && entry.file_type().is_ok_and(|t| t.is_dir()) && is_dead(&entry.path()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// A folder is dead when its `lock` can be taken: no run holds it, and no
/// run takes a folder over. A folder without one is kept, whatever its age:
/// it is being made, or its run could not lock (or predates the lock), and
/// only a folder made by a run killed in that instant stays behind, empty.
fn is_dead(dir: &Path) -> bool {
    File::open(dir.join(LOCK)).is_ok_and(|lock| match lock.try_lock() {
        Ok(()) => true,
        Err(TryLockError::WouldBlock) | Err(TryLockError::Error(_)) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(root: &Path) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(PREFIX))
            .collect();
        dirs.sort();
        dirs
    }

    #[test]
    fn a_live_runs_folder_is_kept_and_its_own_goes_with_it() {
        let root = tempfile::tempdir().unwrap();
        let live = SpillDir::create(Some(root.path())).unwrap();
        std::fs::write(live.path().join("events"), b"x").unwrap();
        let other = SpillDir::create(Some(root.path())).unwrap();
        assert!(live.path().join("events").exists());
        assert_eq!(ours(root.path()).len(), 2);
        drop(other);
        drop(live);
        assert!(ours(root.path()).is_empty());
    }

    #[test]
    fn a_dead_runs_folder_is_removed_by_the_next_run() {
        let root = tempfile::tempdir().unwrap();
        // What a killed run leaves: its folder, with a lock no one holds.
        let dead = root.path().join(format!("{PREFIX}dead"));
        std::fs::create_dir(&dead).unwrap();
        std::fs::write(dead.join(LOCK), b"").unwrap();
        std::fs::write(dead.join("events-2024-01-01"), b"spilled rows").unwrap();
        // A folder without a lock (being made, or its run could not lock):
        // kept.
        let young = root.path().join(format!("{PREFIX}young"));
        std::fs::create_dir(&young).unwrap();
        std::fs::write(young.join("events-2024-01-01"), b"spilled rows").unwrap();
        // Not ours.
        let foreign = root.path().join("another-tool-1");
        std::fs::create_dir(&foreign).unwrap();
        let run = SpillDir::create(Some(root.path())).unwrap();
        assert!(!dead.exists());
        assert!(young.exists() && foreign.exists());
        assert_eq!(ours(root.path()), {
            let mut want = vec![young, run.path().to_path_buf()];
            want.sort();
            want
        });
    }
}
