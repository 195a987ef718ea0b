//! The C ABI (`include/sipguard.h`). Every entry point runs inside
//! [`boundary`], which turns a panic into `SIPGUARD_ERR_PANIC`; every
//! pointer is checked before use.
//!
//! The header is generated from this file and the capability modules it
//! declares (`flood.rs`, `media.rs`, `guess.rs`, `fraud.rs`) by cbindgen
//! (`cbindgen.toml`); `tests/header.rs` fails when it differs. The `///` comments here are the header's comments, so
//! they are written for a C reader. Values the header publishes come from
//! the C-facing enums and consts below, tied to the core's own enums by
//! `mirror!`, so neither side can drift from the other.

use crate::config::parse::ConfigError;
use crate::engine::config::Config;
use crate::engine::Engine;
use crate::flood::ban::Reason;
use crate::flood::region::Flood;
use crate::flood::slot::SLOTS_PER_BUCKET;
use crate::flood::table::{TableError, Verdict};
use crate::media::sdp::SdpVerdict;
use crate::util::clock::{clock_ns, NS_PER_SEC};
use crate::util::log::Level;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Result of every call (`sipguard_status` in C, published as [`CStatus`]);
/// values are never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum Status {
    Ok = 0,
    Null = 1,
    Invalid = 2,
    UnknownParam = 3,
    System = 4,
    Panic = 5,
    NotFound = 6,
    Io = 7,
    Corrupt = 8,
    Full = 9,
    Busy = 10,
}

/// Ties a C-facing enum of the header to the core enum whose values it
/// publishes: the same variants both ways (two exhaustive matches) with the
/// same values (compile-time asserts), so a core variant added, removed or
/// renumbered without the header's enum fails the build, and
/// `tests/header.rs` fails when the header itself is stale. `$values` names
/// a const slice of the values, for the collision checks of the shim's codes.
macro_rules! mirror {
    ($c:ident <=> $core:ty, $values:ident { $($cv:ident = $corev:path),+ $(,)? }) => {
        const _: () = { $( assert!($c::$cv as i64 == $corev as i64); )+ };
        const _: fn($core) -> $c = |v| match v { $( $corev => $c::$cv, )+ };
        const _: fn($c) -> $core = |v| match v { $( $c::$cv => $corev, )+ };
        #[allow(dead_code)]
        pub(crate) const $values: &[i64] = &[$( $c::$cv as i64 ),+];
    };
}
// The capability modules of the ABI are declared at the end of this file,
// after the macro, so `mirror!` is in scope in them.

/// Whether `v` is one of `values` (for compile-time checks).
pub(crate) const fn contains(values: &[i64], v: i64) -> bool {
    let mut i = 0;
    while i < values.len() {
        if values[i] == v {
            return true;
        }
        i += 1;
    }
    false
}

/// Result of every call. Status values are never renumbered.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum CStatus {
    /// Success.
    SIPGUARD_OK = 0,
    /// A required pointer was NULL (or NULL with a non-zero length).
    SIPGUARD_ERR_NULL = 1,
    /// An argument or parameter value is invalid.
    SIPGUARD_ERR_INVALID = 2,
    /// sipguard_config_set(): no such parameter.
    SIPGUARD_ERR_UNKNOWN_PARAM = 3,
    /// The OS refused (e.g. mmap failed).
    SIPGUARD_ERR_SYSTEM = 4,
    /// The core panicked; the call had no effect.
    SIPGUARD_ERR_PANIC = 5,
    /// No such ban, throttle or suspension.
    SIPGUARD_ERR_NOT_FOUND = 6,
    /// A state file could not be read or written.
    SIPGUARD_ERR_IO = 7,
    /// The state file is corrupt; it was ignored.
    SIPGUARD_ERR_CORRUPT = 8,
    /// Output buffer too small (or a table bucket full).
    SIPGUARD_ERR_FULL = 9,
    /// Entry lock not obtained in time; nothing changed.
    SIPGUARD_ERR_BUSY = 10,
}

mirror!(CStatus <=> Status, STATUS_VALUES {
    SIPGUARD_OK = Status::Ok,
    SIPGUARD_ERR_NULL = Status::Null,
    SIPGUARD_ERR_INVALID = Status::Invalid,
    SIPGUARD_ERR_UNKNOWN_PARAM = Status::UnknownParam,
    SIPGUARD_ERR_SYSTEM = Status::System,
    SIPGUARD_ERR_PANIC = Status::Panic,
    SIPGUARD_ERR_NOT_FOUND = Status::NotFound,
    SIPGUARD_ERR_IO = Status::Io,
    SIPGUARD_ERR_CORRUPT = Status::Corrupt,
    SIPGUARD_ERR_FULL = Status::Full,
    SIPGUARD_ERR_BUSY = Status::Busy,
});

/// Verdict of sipguard_check() and sipguard_check_request(); the Kamailio
/// shim returns it to the script as is.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum CVerdict {
    /// Counted, under the rate.
    SIPGUARD_PASS = 1,
    /// The source matches an `allow` CIDR; never limited.
    SIPGUARD_ALLOWLISTED = 2,
    /// Passed without counting: its bucket was busy (fail open).
    SIPGUARD_UNTRACKED = 3,
    /// This request exceeded the rate: the source is banned now.
    SIPGUARD_LIMITED = -1,
    /// The source was already banned.
    SIPGUARD_BANNED = -2,
    /// A scanner fingerprint: the source is banned now.
    SIPGUARD_SCANNER = -3,
    /// Too many distinct user names: the source is banned now.
    SIPGUARD_ENUMERATION = -4,
    /// The source is on the shared blocklist (blocklist_file).
    SIPGUARD_BLOCKLISTED = -5,
}

mirror!(CVerdict <=> Verdict, VERDICT_VALUES {
    SIPGUARD_PASS = Verdict::Pass,
    SIPGUARD_ALLOWLISTED = Verdict::Allowlisted,
    SIPGUARD_UNTRACKED = Verdict::Untracked,
    SIPGUARD_LIMITED = Verdict::Limited,
    SIPGUARD_BANNED = Verdict::Banned,
    SIPGUARD_SCANNER = Verdict::Scanner,
    SIPGUARD_ENUMERATION = Verdict::Enumeration,
    SIPGUARD_BLOCKLISTED = Verdict::Blocklisted,
});

/// Values the Kamailio shim itself returns to the script, beside the core's
/// verdicts of the same function. Each differs from every verdict that
/// function can return (checked when the core is compiled), so `$rc` tells
/// them apart.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum CShimReturn {
    /// sipguard_check_ip(): the value is not an IPv4 or IPv6 address.
    SIPGUARD_RET_INVALID_ADDRESS = -10,
    /// sipguard_sdp_check(): internal error (logged); fail closed.
    SIPGUARD_RET_SDP_ERROR = -5,
    /// sipguard_call_start(): not an initial INVITE with a dialog.
    SIPGUARD_RET_CALL_NO_DIALOG = -7,
}

const _: () = {
    assert!(!contains(
        VERDICT_VALUES,
        CShimReturn::SIPGUARD_RET_INVALID_ADDRESS as i64
    ));
    assert!(!contains(
        SDP_VERDICT_VALUES,
        CShimReturn::SIPGUARD_RET_SDP_ERROR as i64
    ));
};

/// Log levels passed to the logger callback (map to L_ERR .. L_DBG).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum CLogLevel {
    /// An error.
    SIPGUARD_LOG_ERR = 1,
    /// A warning.
    SIPGUARD_LOG_WARN = 2,
    /// A notice (ban and unban lines).
    SIPGUARD_LOG_NOTICE = 3,
    /// Information.
    SIPGUARD_LOG_INFO = 4,
    /// Debugging.
    SIPGUARD_LOG_DEBUG = 5,
}

mirror!(CLogLevel <=> Level, LOG_LEVEL_VALUES {
    SIPGUARD_LOG_ERR = Level::Err,
    SIPGUARD_LOG_WARN = Level::Warn,
    SIPGUARD_LOG_NOTICE = Level::Notice,
    SIPGUARD_LOG_INFO = Level::Info,
    SIPGUARD_LOG_DEBUG = Level::Debug,
});

/// Why a source was banned (sipguard_entry_info.reason).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum CBanReason {
    /// Exceeded `rate`.
    SIPGUARD_REASON_FLOOD = 1,
    /// The sipguard.ban RPC.
    SIPGUARD_REASON_MANUAL = 2,
    /// Loaded from state_file (the original reason is kept when known).
    SIPGUARD_REASON_RESTORED = 3,
    /// A known scanner's User-Agent or From/To.
    SIPGUARD_REASON_SCANNER = 4,
    /// More distinct user names than enum_threshold.
    SIPGUARD_REASON_ENUMERATION = 5,
    /// auth_maxretry authentication failures.
    SIPGUARD_REASON_AUTH = 6,
}

mirror!(CBanReason <=> Reason, BAN_REASON_VALUES {
    SIPGUARD_REASON_FLOOD = Reason::Flood,
    SIPGUARD_REASON_MANUAL = Reason::Manual,
    SIPGUARD_REASON_RESTORED = Reason::Restored,
    SIPGUARD_REASON_SCANNER = Reason::Scanner,
    SIPGUARD_REASON_ENUMERATION = Reason::Enumeration,
    SIPGUARD_REASON_AUTH = Reason::Auth,
});

/// Verdict of sipguard_sdp_check(); the shim returns it to the script as is.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum CSdpVerdict {
    /// Every active stream is SRTP (or allowed DTLS-SRTP).
    SIPGUARD_SDP_OK = 1,
    /// No SDP body (plain or inside multipart): reply 400.
    SIPGUARD_SDP_NO_SDP = -1,
    /// An active stream is not encrypted: reply 488.
    SIPGUARD_SDP_CLEARTEXT = -2,
    /// Weak, unknown or malformed crypto: reply 488.
    SIPGUARD_SDP_BAD_CRYPTO = -3,
    /// Over the limits, or ambiguous / malformed: reply 488.
    SIPGUARD_SDP_TOO_COMPLEX = -4,
}

mirror!(CSdpVerdict <=> SdpVerdict, SDP_VERDICT_VALUES {
    SIPGUARD_SDP_OK = SdpVerdict::Ok,
    SIPGUARD_SDP_NO_SDP = SdpVerdict::NoSdp,
    SIPGUARD_SDP_CLEARTEXT = SdpVerdict::Cleartext,
    SIPGUARD_SDP_BAD_CRYPTO = SdpVerdict::BadCrypto,
    SIPGUARD_SDP_TOO_COMPLEX = SdpVerdict::TooComplex,
});

impl From<TableError> for Status {
    fn from(e: TableError) -> Status {
        match e {
            TableError::BadAddress | TableError::Allowlisted => Status::Invalid,
            TableError::NotFound => Status::NotFound,
            TableError::Full => Status::Full,
            TableError::Busy => Status::Busy,
        }
    }
}

pub(crate) fn boundary(f: impl FnOnce() -> Result<(), Status>) -> Status {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(())) => Status::Ok,
        Ok(Err(s)) => s,
        Err(_) => Status::Panic,
    }
}

/// A borrowed buffer: NULL is allowed only with length 0.
///
/// # Safety
/// `p` must point to `len` readable bytes when non-null.
pub(crate) unsafe fn bytes<'a>(p: *const u8, len: usize) -> Result<&'a [u8], Status> {
    match (p.is_null(), len) {
        (_, 0) => Ok(&[]),
        (true, _) => Err(Status::Null),
        // SAFETY: non-null with `len` readable bytes, per the contract.
        (false, _) => Ok(unsafe { std::slice::from_raw_parts(p, len) }),
    }
}

/// A host's yes/no (or small number) question about a borrowed buffer:
/// `f`'s answer, or 0 for a null buffer with a length, or if `f` panics.
///
/// # Safety
/// As for [`bytes`].
#[inline]
pub(crate) unsafe fn byte_test(p: *const c_char, len: usize, f: impl FnOnce(&[u8]) -> c_int) -> c_int {
    // SAFETY: forwarded contract.
    match unsafe { bytes(p.cast(), len) } {
        Ok(b) => catch_unwind(AssertUnwindSafe(|| f(b))).unwrap_or(0),
        Err(_) => 0,
    }
}

/// # Safety
/// As for [`bytes`].
pub(crate) unsafe fn text<'a>(p: *const c_char, len: usize) -> Result<&'a str, Status> {
    // SAFETY: forwarded contract.
    let b = unsafe { bytes(p.cast(), len)? };
    std::str::from_utf8(b).map_err(|_| Status::Invalid)
}

/// # Safety
/// `p` is null or valid for writes of T.
pub(crate) unsafe fn out<'a, T>(p: *mut T) -> Result<&'a mut T, Status> {
    // SAFETY: null-checked; validity per the contract.
    unsafe { p.as_mut() }.ok_or(Status::Null)
}

/// # Safety
/// `p` is null or points to a live object made by this module.
pub(crate) unsafe fn handle<'a, T>(p: *const T) -> Result<&'a T, Status> {
    // SAFETY: null-checked; liveness per the contract.
    unsafe { p.as_ref() }.ok_or(Status::Null)
}

/// Copy `msg` into a caller's buffer, truncated, NUL-terminated.
pub(crate) fn write_err(err: *mut c_char, err_len: usize, msg: &str) {
    if err.is_null() || err_len == 0 {
        return;
    }
    let n = msg.len().min(err_len - 1);
    // SAFETY: err has err_len writable bytes; we write n + 1 <= err_len.
    unsafe {
        std::ptr::copy_nonoverlapping(msg.as_ptr(), err.cast::<u8>(), n);
        *err.add(n) = 0;
    }
}

/// sipguard_sdp_check() flag: the message came over TLS or WSS.
pub const SIPGUARD_SDP_SIGNALLING_TLS: u32 = 1;

/// Logger: the core sends every log line here (ban/unban lines, state file
/// reports, panic messages). `level` is a sipguard_log_level; `msg` is not
/// NUL-terminated. Called from any process.
pub type CLogFn = Option<extern "C" fn(level: c_int, msg: *const c_char, msg_len: usize)>;

/// Install the logger. Set once, before anything else; NULL disables
/// logging.
#[no_mangle]
pub extern "C" fn sipguard_set_logger(logger: CLogFn) {
    let _ = catch_unwind(|| crate::util::log::set_logger(logger));
}

/// Monotonic clock in nanoseconds (CLOCK_MONOTONIC, a vDSO read).
#[no_mangle]
pub extern "C" fn sipguard_clock_ns() -> u64 {
    clock_ns()
}

/// Static, NUL-terminated description of a status code.
#[no_mangle]
pub extern "C" fn sipguard_status_message(status: c_int) -> *const c_char {
    let msg: &'static [u8] = match status {
        0 => b"ok\0",
        1 => b"null pointer\0",
        2 => b"invalid argument\0",
        3 => b"unknown parameter\0",
        4 => b"system error\0",
        5 => b"internal error (panic caught)\0",
        6 => b"not found\0",
        7 => b"i/o error\0",
        8 => b"corrupt state file\0",
        9 => b"table bucket full of bans\0",
        10 => b"entry busy\0",
        _ => b"unknown status\0",
    };
    msg.as_ptr().cast()
}

// ---- configuration ------------------------------------------------------

/// A new parameter set with every default: opaque, process-local, built
/// before mod_init. Free it with sipguard_config_free().
///
/// # Safety
/// `out` is null or writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_config_new(out: *mut *mut Config) -> Status {
    boundary(|| {
        // SAFETY: checked by `out`.
        let out = unsafe { self::out(out)? };
        *out = Box::into_raw(Box::default());
        Ok(())
    })
}

/// Free a parameter set (NULL is ignored).
///
/// # Safety
/// `cfg` is null or from `sipguard_config_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn sipguard_config_free(cfg: *mut Config) {
    if !cfg.is_null() {
        // SAFETY: made by Box::into_raw in sipguard_config_new.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(cfg) })));
    }
}

/// Set one parameter from its text form (the parameters and their forms
/// are in README.md, "Parameters"). On SIPGUARD_ERR_INVALID or
/// SIPGUARD_ERR_UNKNOWN_PARAM a NUL-terminated message naming the parameter
/// and the bad token is written to err (truncated to err_len).
///
/// # Safety
/// Pointers valid for their lengths; `cfg` live; `err` writable for `err_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_config_set(
    cfg: *mut Config,
    name: *const c_char,
    name_len: usize,
    value: *const c_char,
    value_len: usize,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (cfg, name, value) = unsafe { (out(cfg)?, text(name, name_len)?, text(value, value_len)?) };
        cfg.set(name, value).map_err(|e| {
            write_err(err, err_len, &e.to_string());
            match e {
                ConfigError::UnknownParam(_) => Status::UnknownParam,
                ConfigError::Invalid { .. } => Status::Invalid,
            }
        })
    })
}

/// Settings the shim itself acts on.
#[repr(C)]
pub struct Settings {
    /// 1: register the network-data hook.
    pub early_drop: u32,
    /// Seconds between sipguard_state_save() calls.
    pub save_interval_s: u32,
    /// 1: state_file is set.
    pub has_state_file: u32,
    /// IPv6 sources are keyed per this prefix length.
    pub ipv6_prefix: u32,
    /// Entries, after rounding.
    pub table_size: u64,
    /// Bytes the shared region will map.
    pub region_bytes: u64,
    /// 1: cluster replication is on (the host needs its DMQ).
    pub cluster: u32,
}

/// The settings of a parameter set that the shim acts on.
///
/// # Safety
/// `cfg` live, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_config_settings(cfg: *const Config, out: *mut Settings) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (cfg, out) = unsafe { (handle(cfg)?, self::out(out)?) };
        *out = Settings {
            early_drop: cfg.early_drop as u32,
            save_interval_s: (cfg.save_interval_ns / NS_PER_SEC).min(u32::MAX as u64) as u32,
            has_state_file: cfg.flood.state_file.is_some() as u32,
            ipv6_prefix: cfg.flood.ipv6_prefix as u32,
            table_size: (Flood::buckets_for(cfg.flood.table_size) * SLOTS_PER_BUCKET) as u64,
            region_bytes: Engine::mapped_bytes(cfg) as u64,
            cluster: cfg.cluster as u32,
        };
        Ok(())
    })
}

// ---- region ---------------------------------------------------------------

/// Map the shared region (MAP_SHARED|MAP_ANONYMOUS) sized from cfg, and copy
/// cfg into the handle. Call in the parent before forking workers; children
/// inherit both. cfg may be freed afterwards. On error, a message is written
/// to err.
///
/// # Safety
/// `cfg` live, `out` writable, `err` writable for `err_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_region_create(
    cfg: *const Config,
    out: *mut *mut Engine,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (cfg, out) = unsafe { (handle(cfg)?, self::out(out)?) };
        let region = Engine::create(cfg).map_err(|e| {
            write_err(err, err_len, &e);
            if e.starts_with("parameter") {
                Status::Invalid
            } else {
                Status::System
            }
        })?;
        *out = Box::into_raw(Box::new(region));
        Ok(())
    })
}

/// Unmap the shared region and free the handle (NULL is ignored).
///
/// # Safety
/// `region` null or from `sipguard_region_create`, not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn sipguard_region_destroy(region: *mut Engine) {
    if !region.is_null() {
        // SAFETY: made by Box::into_raw in sipguard_region_create.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(region) })));
    }
}

#[cfg(test)]
mod tests {
    use super::flood::sipguard_check;
    use super::*;

    #[test]
    fn null_pointers_are_refused_not_dereferenced() {
        let mut r = CCheckResult {
            verdict: 0,
            offences: 0,
            ban_ms: 0,
        };
        // SAFETY: deliberately invalid arguments; the function must refuse them.
        unsafe {
            assert_eq!(
                sipguard_check(std::ptr::null(), std::ptr::null(), 0, 0, &mut r),
                Status::Null
            );
            assert_eq!(sipguard_config_new(std::ptr::null_mut()), Status::Null);
            let mut cfg = std::ptr::null_mut();
            assert_eq!(sipguard_config_new(&mut cfg), Status::Ok);
            let mut region = std::ptr::null_mut();
            let mut err = [0 as c_char; 128];
            let name = b"table_size";
            assert_eq!(
                sipguard_config_set(
                    cfg,
                    name.as_ptr().cast(),
                    name.len(),
                    b"64".as_ptr().cast(),
                    2,
                    err.as_mut_ptr(),
                    128
                ),
                Status::Ok
            );
            assert_eq!(
                sipguard_region_create(cfg, &mut region, err.as_mut_ptr(), 128),
                Status::Ok
            );
            // A null address with a length is an error, not a read.
            assert_eq!(
                sipguard_check(region, std::ptr::null(), 4, 1, &mut r),
                Status::Null
            );
            assert_eq!(
                sipguard_check(region, [1u8, 2, 3].as_ptr(), 3, 1, &mut r),
                Status::Invalid
            );
            assert_eq!(
                sipguard_check(region, [127u8, 0, 0, 9].as_ptr(), 4, 1, &mut r),
                Status::Ok
            );
            assert_eq!(r.verdict, 1);
            sipguard_region_destroy(region);
            sipguard_config_free(cfg);
        }
    }

    #[test]
    fn config_errors_are_written_for_the_host() {
        // SAFETY: valid pointers and lengths throughout.
        unsafe {
            let mut cfg = std::ptr::null_mut();
            sipguard_config_new(&mut cfg);
            let mut err = [0 as c_char; 128];
            let (n, v) = (b"rate", b"10/x");
            let s = sipguard_config_set(
                cfg,
                n.as_ptr().cast(),
                4,
                v.as_ptr().cast(),
                4,
                err.as_mut_ptr(),
                128,
            );
            assert_eq!(s, Status::Invalid);
            let msg = std::ffi::CStr::from_ptr(err.as_ptr()).to_str().unwrap();
            assert!(msg.contains("rate") && msg.contains("10/x"), "{msg}");
            // A tiny buffer still gets a NUL-terminated prefix.
            let mut small = [1 as c_char; 4];
            sipguard_config_set(
                cfg,
                n.as_ptr().cast(),
                4,
                v.as_ptr().cast(),
                4,
                small.as_mut_ptr(),
                4,
            );
            assert_eq!(small[3], 0);
            sipguard_config_free(cfg);
        }
    }

    #[test]
    fn panics_stop_at_the_boundary() {
        assert_eq!(boundary(|| panic!("test panic")), Status::Panic);
    }
}

// The capabilities' entry points, in the header's order.
pub mod flood;

pub mod media;

pub mod guess;

pub mod fraud;

pub mod baseline;
pub mod cluster;

pub use flood::{CCheckResult, CEntryInfo, EntryFn, Stats};

pub mod blocklist;
