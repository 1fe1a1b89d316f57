//! Atomic file replacement: write a temporary file beside the target, fsync it,
//! rename it over the target, fsync the folder. Readers see the old file or the new
//! one, never half of one; a failed or interrupted write leaves the old file intact
//! and removes the temporary.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Test hook: the next atomic write to this path fails after so many bytes.
static FAIL_NEXT: Mutex<Option<(PathBuf, usize)>> = Mutex::new(None);

/// Test hook: the next atomic write to `target` fails with an I/O error after writing
/// `after_bytes` bytes (once). Lets tests prove that an interrupted save leaves the
/// previous file as it was.
pub fn fail_next_write(target: &Path, after_bytes: usize) {
    *FAIL_NEXT.lock().unwrap_or_else(|p| p.into_inner()) = Some((target.to_path_buf(), after_bytes.max(1)));
}

fn take_failure(target: &Path) -> usize {
    let mut hook = FAIL_NEXT.lock().unwrap_or_else(|p| p.into_inner());
    match hook.as_ref() {
        Some((p, n)) if p == target => {
            let n = *n;
            *hook = None;
            n
        }
        _ => 0,
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Bytes per write call: small enough that the failure hook can land mid-file.
const CHUNK: usize = 1 << 20;

fn temp_path(target: &Path) -> PathBuf {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".{name}.{}-{n}.tmp", std::process::id()))
}

/// Replaces `target` with `bytes` atomically. The error text says what failed.
pub fn write_atomic(target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let temp = temp_path(target);
    let result = write_then_rename(&temp, target, bytes);
    if result.is_err() {
        let _ = fs::remove_file(&temp);
    } else {
        remove_stale_temps(target);
    }
    result
}

/// A process killed mid-save (SIGKILL, power loss) cannot remove its temporary file:
/// the next successful save of the same target removes the temporaries of processes
/// that no longer run (`.<name>.<pid>-<n>.tmp`). Liveness is read from /proc where
/// there is one; elsewhere a temporary older than a day counts as stale.
fn remove_stale_temps(target: &Path) {
    let (Some(name), Some(dir)) = (target.file_name().map(|n| n.to_string_lossy().into_owned()), target.parent()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let prefix = format!(".{name}.");
    let Ok(entries) = fs::read_dir(dir) else { return };
    let proc_fs = Path::new("/proc/self").exists();
    for e in entries.flatten() {
        let file = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = file.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".tmp")) else { continue };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() {
            continue;
        }
        let stale = if proc_fs {
            !Path::new(&format!("/proc/{pid}")).exists()
        } else {
            e.metadata().and_then(|m| m.modified()).ok().and_then(|t| t.elapsed().ok()).is_some_and(|age| age.as_secs() > 86_400)
        };
        if stale {
            let _ = fs::remove_file(e.path());
        }
    }
}

fn write_then_rename(temp: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if target.is_dir() {
        return Err(std::io::Error::new(std::io::ErrorKind::IsADirectory, "the path is a directory"));
    }
    let mut file: File = OpenOptions::new().write(true).create_new(true).open(temp)?;
    let fail_after = take_failure(target);
    let mut written = 0;
    for chunk in bytes.chunks(CHUNK.min(fail_after.max(1)).max(1)) {
        if fail_after > 0 && written >= fail_after {
            return Err(std::io::Error::other(format!("simulated write failure after {written} bytes")));
        }
        file.write_all(chunk)?;
        written += chunk.len();
    }
    file.sync_all()?;
    drop(file);
    fs::rename(temp, target)?;
    // The rename itself is durable only once the folder's entry is on disk.
    if let Some(dir) = target.parent() {
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("ferronet-atomic-{}-{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
        fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let d = dir();
        let p = d.join("m.bin");
        write_atomic(&p, b"old").unwrap();
        write_atomic(&p, b"new contents").unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"new contents");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
    }

    #[test]
    fn a_write_failing_midway_leaves_the_old_file_intact() {
        let d = dir();
        let p = d.join("m.bin");
        write_atomic(&p, b"the previous model").unwrap();
        fail_next_write(&p, 5);
        let big = vec![7u8; 100];
        let err = write_atomic(&p, &big).unwrap_err();
        assert!(err.to_string().contains("simulated"), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"the previous model");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1, "the temporary file is removed");
        // The hook fires once.
        write_atomic(&p, &big).unwrap();
        assert_eq!(fs::read(&p).unwrap(), big);
    }

    #[test]
    fn a_save_removes_the_temporaries_of_killed_processes_only() {
        let d = dir();
        let p = d.join("m.bin");
        // pid 4194304 is past Linux's pid_max (2^22): no such process runs.
        let dead = d.join(".m.bin.4194304-0.tmp");
        let mine_live = d.join(format!(".m.bin.{}-999.tmp", std::process::id()));
        let other = d.join(".other.bin.4194304-0.tmp");
        for f in [&dead, &mine_live, &other] {
            fs::write(f, b"half a model").unwrap();
        }
        write_atomic(&p, b"new").unwrap();
        if Path::new("/proc/self").exists() {
            assert!(!dead.exists(), "a dead process's temporary is removed");
        }
        assert!(mine_live.exists(), "a running process's temporary is left alone");
        assert!(other.exists(), "another target's temporary is left alone");
    }

    #[test]
    fn a_directory_target_or_a_missing_folder_is_an_error() {
        let d = dir();
        assert!(write_atomic(&d, b"x").is_err());
        assert!(write_atomic(&d.join("no/such/folder/m.bin"), b"x").is_err());
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
    }
}
