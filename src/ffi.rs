//! The C ABI (`include/sipguard.h`). Every entry point runs inside
//! [`boundary`], which turns a panic into `SIPGUARD_ERR_PANIC`; every
//! pointer is checked before use.

use crate::clock::{clock_ns, NS_PER_MS, NS_PER_SEC};
use crate::config::{Config, ConfigError};
use crate::counters::Counter;
use crate::log::{log, Level, LogFn};
use crate::region::Region;
use crate::sdp::{self, ReasonBuf, SdpPolicy};
use crate::state::{self, StateError};
use crate::table::{CheckResult, EntryInfo, TableError, PERMANENT};
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `sipguard_status`; values are never renumbered.
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

/// `sipguard_sdp_check` flag: the message came over TLS or WSS.
const SDP_SIGNALLING_TLS: u32 = 1;

/// Ten years: an RPC ban longer than this is permanent.
const MAX_BAN_SECS: u64 = 10 * 365 * 86_400;

fn ns_to_ms(ns: u64) -> u64 {
    if ns == PERMANENT {
        u64::MAX
    } else {
        ns.div_ceil(NS_PER_MS)
    }
}

#[no_mangle]
pub extern "C" fn sipguard_set_logger(logger: Option<LogFn>) {
    let _ = catch_unwind(|| crate::log::set_logger(logger));
}

#[no_mangle]
pub extern "C" fn sipguard_clock_ns() -> u64 {
    clock_ns()
}

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

/// # Safety
/// `cfg` is null or from `sipguard_config_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn sipguard_config_free(cfg: *mut Config) {
    if !cfg.is_null() {
        // SAFETY: made by Box::into_raw in sipguard_config_new.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(cfg) })));
    }
}

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

#[repr(C)]
pub struct Settings {
    pub early_drop: u32,
    pub save_interval_s: u32,
    pub has_state_file: u32,
    pub ipv6_prefix: u32,
    pub table_size: u64,
    pub region_bytes: u64,
}

/// # Safety
/// `cfg` live, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_config_settings(cfg: *const Config, out: *mut Settings) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (cfg, out) = unsafe { (handle(cfg)?, self::out(out)?) };
        let layout = crate::region::Layout::for_entries(cfg.table_size);
        *out = Settings {
            early_drop: cfg.early_drop as u32,
            save_interval_s: (cfg.save_interval_ns / NS_PER_SEC).min(u32::MAX as u64) as u32,
            has_state_file: cfg.state_file.is_some() as u32,
            ipv6_prefix: cfg.ipv6_prefix as u32,
            table_size: layout.entries(),
            region_bytes: layout.bytes as u64,
        };
        Ok(())
    })
}

// ---- region ---------------------------------------------------------------

/// # Safety
/// `cfg` live, `out` writable, `err` writable for `err_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_region_create(
    cfg: *const Config,
    out: *mut *mut Region,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (cfg, out) = unsafe { (handle(cfg)?, self::out(out)?) };
        let region = Region::create(cfg).map_err(|e| {
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

/// # Safety
/// `region` null or from `sipguard_region_create`, not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn sipguard_region_destroy(region: *mut Region) {
    if !region.is_null() {
        // SAFETY: made by Box::into_raw in sipguard_region_create.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(region) })));
    }
}

// ---- per request ------------------------------------------------------------

#[repr(C)]
pub struct CCheckResult {
    pub verdict: i32,
    pub offences: u32,
    pub ban_ms: u64,
}

impl From<CheckResult> for CCheckResult {
    fn from(r: CheckResult) -> Self {
        CCheckResult {
            verdict: r.verdict as i32,
            offences: r.offences,
            ban_ms: ns_to_ms(r.ban_ns),
        }
    }
}

/// # Safety
/// `region` live; `addr` valid for `addr_len`; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_check(
    region: *const Region,
    addr: *const u8,
    addr_len: usize,
    now_ns: u64,
    out: *mut CCheckResult,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, out) = unsafe { (handle(region)?, bytes(addr, addr_len)?, self::out(out)?) };
        *out = region.check(addr, now_ns)?.into();
        Ok(())
    })
}

/// # Safety
/// As for `sipguard_check`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_check_text(
    region: *const Region,
    addr: *const c_char,
    addr_len: usize,
    now_ns: u64,
    out: *mut CCheckResult,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, out) = unsafe { (handle(region)?, text(addr, addr_len)?, self::out(out)?) };
        let raw = crate::addr::parse_address(addr).ok_or(Status::Invalid)?;
        *out = region.check(&raw, now_ns)?.into();
        Ok(())
    })
}

/// # Safety
/// `region` live; `addr` valid for `addr_len`; `drop_out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_drop_check(
    region: *const Region,
    addr: *const u8,
    addr_len: usize,
    now_ns: u64,
    drop_out: *mut i32,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, drop_out) = unsafe { (handle(region)?, bytes(addr, addr_len)?, out(drop_out)?) };
        *drop_out = region.drop_check(addr, now_ns)? as i32;
        Ok(())
    })
}

// ---- operations ---------------------------------------------------------------

fn table_err(err: *mut c_char, err_len: usize, e: TableError) -> Status {
    let msg = match e {
        TableError::BadAddress => "not an IPv4 or IPv6 address",
        TableError::Allowlisted => "address is allowlisted",
        TableError::NotFound => "not banned",
        TableError::Full => "table bucket is full of bans",
        TableError::Busy => "entry busy, try again",
    };
    write_err(err, err_len, msg);
    e.into()
}

/// # Safety
/// `region` live; `addr` valid for `addr_len`; `err` writable for `err_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_ban(
    region: *const Region,
    addr: *const c_char,
    addr_len: usize,
    seconds: u64,
    now_ns: u64,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr) = unsafe { (handle(region)?, text(addr, addr_len)?) };
        let duration = match seconds {
            0 => None,
            u64::MAX => Some(PERMANENT),
            // Longer than the config's ten-year limit means permanent.
            s if s > MAX_BAN_SECS => Some(PERMANENT),
            s => Some(s * NS_PER_SEC),
        };
        region
            .ban(addr, duration, now_ns)
            .map(|_| ())
            .map_err(|e| table_err(err, err_len, e))
    })
}

/// # Safety
/// As for `sipguard_ban`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_unban(
    region: *const Region,
    addr: *const c_char,
    addr_len: usize,
    now_ns: u64,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr) = unsafe { (handle(region)?, text(addr, addr_len)?) };
        region.unban(addr, now_ns).map_err(|e| table_err(err, err_len, e))
    })
}

#[repr(C)]
pub struct CEntryInfo {
    pub key: [c_char; 64],
    pub banned: i32,
    pub reason: i32,
    pub ban_ms: u64,
    pub offences: u32,
    pub load_pct: u32,
    pub hits: u64,
    pub idle_ms: u64,
}

impl From<&EntryInfo> for CEntryInfo {
    fn from(e: &EntryInfo) -> Self {
        let mut text = crate::addr::FixedBuf::<63>::new();
        let _ = std::fmt::Write::write_fmt(&mut text, format_args!("{}", e.key));
        let mut key = [0 as c_char; 64];
        for (d, s) in key.iter_mut().zip(text.as_bytes()) {
            *d = *s as c_char;
        }
        CEntryInfo {
            key,
            banned: e.banned as i32,
            reason: e.reason.map_or(0, |r| r as i32),
            ban_ms: ns_to_ms(e.ban_ns),
            offences: e.offences,
            load_pct: e.load_pct,
            hits: e.hits,
            idle_ms: e.idle_ns / NS_PER_MS,
        }
    }
}

pub type EntryFn = extern "C" fn(ctx: *mut c_void, entry: *const CEntryInfo) -> c_int;

/// # Safety
/// `region` live; `f` callable with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_list_bans(
    region: *const Region,
    now_ns: u64,
    f: Option<EntryFn>,
    ctx: *mut c_void,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        let f = f.ok_or(Status::Null)?;
        region.for_each_entry(now_ns, |e| !e.banned || f(ctx, &CEntryInfo::from(e)) == 0);
        Ok(())
    })
}

/// # Safety
/// As for `sipguard_list_bans`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_list_top(
    region: *const Region,
    now_ns: u64,
    max: u32,
    f: Option<EntryFn>,
    ctx: *mut c_void,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        let f = f.ok_or(Status::Null)?;
        if max > 100 {
            return Err(Status::Invalid);
        }
        for e in region.top(now_ns, max as usize) {
            if f(ctx, &CEntryInfo::from(&e)) != 0 {
                break;
            }
        }
        Ok(())
    })
}

#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub checked: u64,
    pub passed: u64,
    pub allowlisted: u64,
    pub limited: u64,
    pub rejected: u64,
    pub bans: u64,
    pub unbans: u64,
    pub dropped: u64,
    pub untracked: u64,
    pub evictions: u64,
    pub active_bans: u64,
    pub entries_used: u64,
    pub table_size: u64,
    pub region_bytes: u64,
    pub scanners: u64,
    pub enumerations: u64,
    pub auth_failures: u64,
    pub auth_bans: u64,
    pub throttles: u64,
    pub throttled_auth: u64,
    pub throttled_users: u64,
    pub normalized: u64,
}

impl Stats {
    pub fn of(region: &Region) -> Stats {
        let c = region.counters();
        let passed = c.get(Counter::Passed);
        let allowlisted = c.get(Counter::Allowlisted);
        let limited = c.get(Counter::Limited);
        let rejected = c.get(Counter::Rejected);
        let untracked = c.get(Counter::Untracked);
        Stats {
            checked: passed + allowlisted + limited + rejected + untracked,
            passed: passed + untracked,
            allowlisted,
            limited,
            rejected,
            bans: c.get(Counter::Bans),
            unbans: c.get(Counter::Unbans),
            dropped: c.get(Counter::Dropped),
            untracked,
            evictions: c.get(Counter::Evictions),
            active_bans: c.get(Counter::ActiveBans),
            entries_used: c.get(Counter::EntriesUsed),
            table_size: region.layout().entries(),
            region_bytes: (region.layout().bytes + region.guess.bytes()) as u64,
            scanners: c.get(Counter::Scanners),
            enumerations: c.get(Counter::Enumerations),
            auth_failures: c.get(Counter::AuthFailures),
            auth_bans: c.get(Counter::AuthBans),
            throttles: c.get(Counter::Throttles),
            throttled_auth: c.get(Counter::ThrottledAuth),
            throttled_users: c.get(Counter::ThrottledUsers),
            normalized: c.get(Counter::Normalized),
        }
    }
}

/// # Safety
/// `region` live, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_stats_get(region: *const Region, out: *mut Stats) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, out) = unsafe { (handle(region)?, self::out(out)?) };
        *out = Stats::of(region);
        Ok(())
    })
}

/// # Safety
/// `region` live.
#[no_mangle]
pub unsafe extern "C" fn sipguard_sweep(region: *const Region, now_ns: u64) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        region.sweep(now_ns);
        region.guess_sweep(now_ns);
        Ok(())
    })
}

/// # Safety
/// `region` live.
#[no_mangle]
pub unsafe extern "C" fn sipguard_state_save(region: *const Region, now_ns: u64) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        let Some(path) = region.cfg.state_file.as_deref() else {
            return Ok(());
        };
        match state::save(region, path, now_ns) {
            Ok(n) => {
                log(
                    Level::Debug,
                    format_args!("sipguard: saved {n} entries to {}", path.display()),
                );
                Ok(())
            }
            Err(StateError::Io(m) | StateError::Corrupt(m)) => {
                log(Level::Err, format_args!("sipguard: cannot save state_file: {m}"));
                Err(Status::Io)
            }
        }
    })
}

/// # Safety
/// `region` live; `loaded_out` null or writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_state_load(
    region: *const Region,
    now_ns: u64,
    loaded_out: *mut u32,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        let Some(path) = region.cfg.state_file.as_deref() else {
            return Ok(());
        };
        let n = match state::load(region, path, now_ns) {
            Ok(n) => n,
            Err(StateError::Corrupt(m)) => {
                log(
                    Level::Err,
                    format_args!("sipguard: state_file is corrupt, ignored: {m}"),
                );
                return Err(Status::Corrupt);
            }
            Err(StateError::Io(m)) => {
                log(
                    Level::Err,
                    format_args!("sipguard: cannot read state_file, ignored: {m}"),
                );
                return Err(Status::Io);
            }
        };
        log(
            Level::Notice,
            format_args!("sipguard: restored {n} bans from {}", path.display()),
        );
        // SAFETY: null or writable, per the contract.
        if let Some(o) = unsafe { loaded_out.as_mut() } {
            *o = n as u32;
        }
        Ok(())
    })
}

// ---- encrypted signalling and media -------------------------------------------

/// # Safety
/// `spec` valid for `spec_len`; `out` writable; `err` writable for `err_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_sdp_policy_new(
    spec: *const c_char,
    spec_len: usize,
    out: *mut *mut SdpPolicy,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (spec, out) = unsafe { (text(spec, spec_len)?, self::out(out)?) };
        let policy = SdpPolicy::parse(spec).map_err(|e| {
            write_err(err, err_len, &e);
            Status::Invalid
        })?;
        *out = Box::into_raw(Box::new(policy));
        Ok(())
    })
}

/// # Safety
/// `policy` null or from `sipguard_sdp_policy_new`, not yet freed.
#[no_mangle]
pub unsafe extern "C" fn sipguard_sdp_policy_free(policy: *mut SdpPolicy) {
    if !policy.is_null() {
        // SAFETY: made by Box::into_raw in sipguard_sdp_policy_new.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(policy) })));
    }
}

/// # Safety
/// `policy` live; buffers valid for their lengths; `verdict_out` writable;
/// `reason` null or writable for `reason_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_sdp_check(
    policy: *const SdpPolicy,
    content_type: *const c_char,
    content_type_len: usize,
    body: *const u8,
    body_len: usize,
    flags: u32,
    verdict_out: *mut i32,
    reason: *mut c_char,
    reason_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (policy, ctype, body, verdict_out) = unsafe {
            (
                handle(policy)?,
                bytes(content_type.cast(), content_type_len)?,
                bytes(body, body_len)?,
                out(verdict_out)?,
            )
        };
        // Room for the NUL the C side needs; a scratch buffer when it wants no text.
        let mut scratch = [0u8; 1];
        let text_buf: &mut [u8] = if reason.is_null() || reason_len == 0 {
            &mut scratch[..0]
        } else {
            // SAFETY: writable for reason_len bytes, per the contract.
            unsafe { std::slice::from_raw_parts_mut(reason.cast::<u8>(), reason_len - 1) }
        };
        let mut why = ReasonBuf::new(text_buf);
        let signalling_tls = flags & SDP_SIGNALLING_TLS != 0;
        *verdict_out = sdp::check_signalled(ctype, body, policy, signalling_tls, &mut why).code();
        let n = why.len();
        if !reason.is_null() && reason_len > 0 {
            // SAFETY: n <= reason_len - 1.
            unsafe { *reason.add(n) = 0 };
        }
        Ok(())
    })
}

/// # Safety
/// `contact` valid for `contact_len`; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_contact_wants_tls(
    contact: *const c_char,
    contact_len: usize,
    out: *mut i32,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (contact, out) = unsafe { (bytes(contact.cast(), contact_len)?, self::out(out)?) };
        *out = crate::contact::wants_tls(contact) as i32;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
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
