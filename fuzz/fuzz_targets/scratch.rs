//! Shared by the fuzz targets that read files: a private scratch directory
//! (on tmpfs when there is one: the savers fsync every file) and a logger
//! that keeps the core's log lines for the target to check.
#![allow(dead_code)] // each target uses a part

use std::os::raw::{c_char, c_int};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

/// `<tmpfs or $TMPDIR>/sipguard-fuzz-<pid>-<name>`, made for this run
/// (`clean` removes it at the end of the run).
pub fn dir(name: &str) -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let d = DIR.get_or_init(|| {
        let shm = std::path::Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        base.join(format!("sipguard-fuzz-{}-{name}", std::process::id()))
    });
    std::fs::create_dir_all(d).expect("scratch directory");
    d
}

/// Remove what the run left in `dir` (the files it wrote, a save's
/// temporary file, a `.corrupt` copy), then the directory.
pub fn clean(dir: &std::path::Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let _ = std::fs::remove_file(e.path());
        }
    }
    let _ = std::fs::remove_dir(dir);
}

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

extern "C" fn record(_level: c_int, msg: *const c_char, len: usize) {
    // SAFETY: the core's `log` passes a valid buffer of `len` bytes.
    let line = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
    let mut lines = LINES.lock().unwrap_or_else(|e| e.into_inner());
    lines.push(String::from_utf8_lossy(line).into_owned());
}

/// Install the recording logger once. `set_logger` also routes panics to
/// the logger (for Kamailio's log); put back a hook that prints and aborts,
/// so a failed assertion still reaches libFuzzer's output.
pub fn install_logger() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        sipguard::util::log::set_logger(Some(record));
        std::panic::set_hook(Box::new(|info| {
            eprintln!("{info}");
            std::process::abort();
        }));
    });
}

/// The lines logged since the last call.
pub fn take_log() -> Vec<String> {
    std::mem::take(&mut *LINES.lock().unwrap_or_else(|e| e.into_inner()))
}
