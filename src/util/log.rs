//! Log lines go to the host through one callback (Kamailio's logger in the
//! shim). Lines are formatted into a stack buffer: no allocation.

use crate::util::fixed_buf::FixedBuf;
use std::fmt::{self, Write};
use std::os::raw::{c_char, c_int};
use std::sync::atomic::{AtomicUsize, Ordering};

pub type LogFn = extern "C" fn(level: c_int, msg: *const c_char, len: usize);

/// Levels are the ABI's `sipguard_log_level`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum Level {
    Err = 1,
    Warn = 2,
    Notice = 3,
    Info = 4,
    Debug = 5,
}

static LOGGER: AtomicUsize = AtomicUsize::new(0);

/// Install (or with None, remove) the host's logger, and route panic
/// messages to it so a caught panic is visible in the host's log.
pub fn set_logger(f: Option<LogFn>) {
    LOGGER.store(f.map_or(0, |f| f as usize), Ordering::Release);
    std::panic::set_hook(Box::new(|info| {
        log(
            Level::Err,
            format_args!("sipguard: internal error (caught at the C boundary): {info}"),
        );
    }));
}

pub fn log(level: Level, args: fmt::Arguments<'_>) {
    let raw = LOGGER.load(Ordering::Acquire);
    if raw == 0 {
        return;
    }
    // SAFETY: only ever stored from a valid `LogFn` in set_logger.
    let f: LogFn = unsafe { std::mem::transmute::<usize, LogFn>(raw) };
    let mut line = FixedBuf::<512>::new();
    let _ = line.write_fmt(args);
    let bytes = line.as_bytes();
    f(level as c_int, bytes.as_ptr().cast(), bytes.len());
}

/// Run `f` with a logger that records the lines `f`'s thread logs, and
/// return them (tests only). Serialised: the logger is process-wide, and
/// lines that other tests log meanwhile, from their threads, are left out.
#[cfg(test)]
pub fn capture(f: impl FnOnce()) -> Vec<String> {
    use std::sync::Mutex;
    use std::thread::{self, ThreadId};
    static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());
    static CAPTURING: Mutex<Option<ThreadId>> = Mutex::new(None);
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    extern "C" fn record(_level: c_int, msg: *const c_char, len: usize) {
        if *CAPTURING.lock().unwrap_or_else(|e| e.into_inner()) != Some(thread::current().id()) {
            return;
        }
        // SAFETY: `log` passes a valid buffer of `len` bytes.
        let bytes = unsafe { std::slice::from_raw_parts(msg.cast::<u8>(), len) };
        LINES
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(String::from_utf8_lossy(bytes).into_owned());
    }
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    LINES.lock().unwrap_or_else(|e| e.into_inner()).clear();
    *CAPTURING.lock().unwrap_or_else(|e| e.into_inner()) = Some(thread::current().id());
    set_logger(Some(record));
    f();
    set_logger(None);
    *CAPTURING.lock().unwrap_or_else(|e| e.into_inner()) = None;
    std::mem::take(&mut *LINES.lock().unwrap_or_else(|e| e.into_inner()))
}
