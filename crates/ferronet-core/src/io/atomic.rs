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
    }
    result
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
    fn a_directory_target_or_a_missing_folder_is_an_error() {
        let d = dir();
        assert!(write_atomic(&d, b"x").is_err());
        assert!(write_atomic(&d.join("no/such/folder/m.bin"), b"x").is_err());
        assert_eq!(fs::read_dir(&d).unwrap().count(), 0);
    }
}
