//! Replace a file atomically: the one writer of both state files (bans,
//! [`crate::flood::state`]; suspensions, [`crate::fraud::persist`]).
//!
//! The new contents go to a temporary file in the target's own directory
//! (a rename is atomic only within one file system), which is fsynced,
//! renamed over the target, and then the directory is fsynced so the
//! rename itself survives a power loss. A crash at any point leaves either
//! the previous file or the new one, never a mix; a failed write removes
//! its temporary file and leaves the previous file as it was.

use std::ffi::OsString;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The temporary file a write of `path` goes through: `<path>.tmp.<pid>`
/// beside it (per process: the timer's periodic save may overlap the
/// shutdown save of another process).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(format!(".tmp.{}", std::process::id()));
    PathBuf::from(name)
}

/// Replace `path` with `bytes`. The error names the file it is about.
pub fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let tmp = temp_path(path);
    let res = write_temp(&tmp, bytes)
        .map_err(|e| format!("{}: {e}", tmp.display()))
        .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display())));
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    // The new file is in place; this makes its name durable.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| format!("{}: fsync of the directory: {e}", dir.display()))
}

fn write_temp(tmp: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = File::create(tmp)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("sipguard-atomic-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn listing(d: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_file_and_leaves_nothing_else() {
        let d = dir("ok");
        let path = d.join("x.state");
        write(&path, b"one\n").unwrap();
        write(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        assert_eq!(listing(&d), ["x.state"]);
        assert_eq!(temp_path(&path).parent(), path.parent(), "same directory");
    }

    #[test]
    fn a_failed_write_keeps_the_old_file_and_removes_its_temporary() {
        let d = dir("fail");
        // The target is a directory: the rename fails.
        let path = d.join("x.state");
        std::fs::create_dir(&path).unwrap();
        std::fs::write(path.join("kept"), b"old").unwrap();
        let e = write(&path, b"new\n").unwrap_err();
        assert!(e.starts_with(&path.display().to_string()), "{e}");
        assert_eq!(listing(&d), ["x.state"], "no temporary file left behind");
        assert_eq!(std::fs::read(path.join("kept")).unwrap(), b"old");
        // A directory that does not exist: the temporary cannot be made.
        let e = write(&d.join("no/such/x.state"), b"new").unwrap_err();
        assert!(e.contains(".tmp."), "{e}");
    }
}
