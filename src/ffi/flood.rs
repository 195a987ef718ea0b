//! The flood defence's part of the C ABI: per-request checks, bans,
//! listings, statistics, the sweep and the state file. Same rules as
//! [`crate::ffi`].

use crate::engine::Engine;
use crate::ffi::{boundary, bytes, handle, out, text, write_err, Status};
use crate::flood::ban::Reason;
use crate::flood::state::{self, StateError};
use crate::flood::table::{CheckResult, EntryInfo, TableError, PERMANENT};
use crate::shm::counters::Counter;
use crate::util::clock::{NS_PER_MS, NS_PER_SEC};
use crate::util::log::{log, Level};
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};

/// Ten years: an RPC ban longer than this is permanent.
const MAX_BAN_SECS: u64 = 10 * 365 * 86_400;

fn ns_to_ms(ns: u64) -> u64 {
    if ns == PERMANENT {
        u64::MAX
    } else {
        ns.div_ceil(NS_PER_MS)
    }
}

// ---- per request ------------------------------------------------------------

/// What sipguard_check() and sipguard_check_request() decided.
#[repr(C)]
pub struct CCheckResult {
    /// A sipguard_verdict.
    pub verdict: i32,
    /// Bans of this source so far (incl. a new one).
    pub offences: u32,
    /// Remaining ban in ms; UINT64_MAX = permanent; 0 = none.
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

/// Count one request from addr (4 bytes IPv4 or 16 bytes IPv6, network
/// order) at monotonic time now_ns. Allocates nothing; takes one bucket
/// lock for a few loads and stores; no syscall.
///
/// # Safety
/// `region` live; `addr` valid for `addr_len`; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_check(
    region: *const Engine,
    addr: *const u8,
    addr_len: usize,
    now_ns: u64,
    out: *mut CCheckResult,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, out) = unsafe { (handle(region)?, bytes(addr, addr_len)?, crate::ffi::out(out)?) };
        *out = region.check(addr, now_ns)?.into();
        Ok(())
    })
}

/// Same as sipguard_check(), with the address as text (`"192.0.2.1"`,
/// `"2001:db8::1"`, `"[::1]"`); SIPGUARD_ERR_INVALID when it is not one.
///
/// # Safety
/// As for `sipguard_check`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_check_text(
    region: *const Engine,
    addr: *const c_char,
    addr_len: usize,
    now_ns: u64,
    out: *mut CCheckResult,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, out) = unsafe { (handle(region)?, text(addr, addr_len)?, crate::ffi::out(out)?) };
        let raw = crate::sip::addr::parse_address(addr).ok_or(Status::Invalid)?;
        *out = region.check(&raw, now_ns)?.into();
        Ok(())
    })
}

/// Early-drop test for the network hook: *drop_out = 1 when addr is on the
/// blocklist (and not allowlisted) or banned (the drop is counted in
/// statistics, and in the ban's hits), else 0.
/// Does not count a request against the rate.
///
/// # Safety
/// `region` live; `addr` valid for `addr_len`; `drop_out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_drop_check(
    region: *const Engine,
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

/// Ban addr (text: an address) now. seconds == 0: the escalated ban_time
/// for this source; seconds == UINT64_MAX (or over ten years): permanent.
/// Logs the ban line.
///
/// # Safety
/// `region` live; `addr` valid for `addr_len`; `err` writable for `err_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_ban(
    region: *const Engine,
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
            .flood
            .ban(addr, duration, now_ns)
            .map(|_| ())
            .map_err(|e| table_err(err, err_len, e))
    })
}

/// Lift a ban on addr (text: an address, or a prefix ban as a CIDR).
/// SIPGUARD_ERR_NOT_FOUND when not banned. Logs.
///
/// # Safety
/// As for `sipguard_ban`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_unban(
    region: *const Engine,
    addr: *const c_char,
    addr_len: usize,
    now_ns: u64,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr) = unsafe { (handle(region)?, text(addr, addr_len)?) };
        region
            .flood
            .unban(addr, now_ns)
            .map_err(|e| table_err(err, err_len, e))
    })
}

/// One entry as reported by the list calls.
#[repr(C)]
pub struct CEntryInfo {
    /// NUL-terminated: "192.0.2.1", "2001:db8::/64", or a prefix ban "198.51.100.0/24".
    pub key: [c_char; 64],
    /// 1 while banned.
    pub banned: i32,
    /// sipguard_ban_reason of the current or last ban, 0 none.
    pub reason: i32,
    /// Remaining ban in ms; UINT64_MAX = permanent.
    pub ban_ms: u64,
    /// Bans so far.
    pub offences: u32,
    /// Share of the burst allowance in use now, 0..100+.
    pub load_pct: u32,
    /// Requests and dropped packets seen from this key.
    pub hits: u64,
    /// Milliseconds since the last request.
    pub idle_ms: u64,
}

impl From<&EntryInfo> for CEntryInfo {
    fn from(e: &EntryInfo) -> Self {
        let mut text = crate::util::fixed_buf::FixedBuf::<63>::new();
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

/// Called once per entry; return 0 to continue, non-zero to stop.
pub type EntryFn = Option<extern "C" fn(ctx: *mut c_void, entry: *const CEntryInfo) -> c_int>;

/// Every active ban, in table order.
///
/// # Safety
/// `region` live; `f` callable with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_list_bans(
    region: *const Engine,
    now_ns: u64,
    f: EntryFn,
    ctx: *mut c_void,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        let f = f.ok_or(Status::Null)?;
        region
            .flood
            .for_each_entry(now_ns, |e| !e.banned || f(ctx, &CEntryInfo::from(e)) == 0);
        Ok(())
    })
}

/// Up to max unbanned sources with the highest load, highest first.
/// max <= 100.
///
/// # Safety
/// As for `sipguard_list_bans`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_list_top(
    region: *const Engine,
    now_ns: u64,
    max: u32,
    f: EntryFn,
    ctx: *mut c_void,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        let f = f.ok_or(Status::Null)?;
        if max > 100 {
            return Err(Status::Invalid);
        }
        for e in region.flood.top(now_ns, max as usize) {
            if f(ctx, &CEntryInfo::from(&e)) != 0 {
                break;
            }
        }
        Ok(())
    })
}

/// Statistics of the shared region, summed over every process.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// sipguard_check() calls.
    pub checked: u64,
    /// Verdict PASS or UNTRACKED.
    pub passed: u64,
    /// Verdict ALLOWLISTED.
    pub allowlisted: u64,
    /// Verdict LIMITED (new bans by rate).
    pub limited: u64,
    /// Verdict BANNED.
    pub rejected: u64,
    /// Bans created, all reasons.
    pub bans: u64,
    /// Bans lifted (expired or RPC).
    pub unbans: u64,
    /// Packets dropped early.
    pub dropped: u64,
    /// Verdict UNTRACKED.
    pub untracked: u64,
    /// Entries recycled for new sources.
    pub evictions: u64,
    /// Bans in force now (counted by the sweep).
    pub active_bans: u64,
    /// Occupied entries.
    pub entries_used: u64,
    /// Capacity in entries.
    pub table_size: u64,
    /// Mapped bytes, fixed (all shared tables).
    pub region_bytes: u64,
    /// Requests with a scanner fingerprint.
    pub scanners: u64,
    /// Sources caught enumerating user names.
    pub enumerations: u64,
    /// Authentication failures counted.
    pub auth_failures: u64,
    /// Sources over auth_maxretry.
    pub auth_bans: u64,
    /// User names throttled (distributed guess).
    pub throttles: u64,
    /// Credentials not checked: user name throttled.
    pub throttled_auth: u64,
    /// User names throttled now (counted by the sweep).
    pub throttled_users: u64,
    /// Replies rewritten into a challenge.
    pub normalized: u64,
}

impl Stats {
    /// The statistics of `region` now.
    pub fn of(region: &Engine) -> Stats {
        let c = region.flood.counters();
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
            table_size: region.flood.entries(),
            region_bytes: region.bytes() as u64,
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

/// Read the statistics.
///
/// # Safety
/// `region` live, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_stats_get(region: *const Engine, out: *mut Stats) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, out) = unsafe { (handle(region)?, crate::ffi::out(out)?) };
        *out = Stats::of(region);
        Ok(())
    })
}

/// Timer work, once a second from one process: logs expired bans (once),
/// forgets stale offences, recounts active bans and used entries.
///
/// # Safety
/// `region` live.
#[no_mangle]
pub unsafe extern "C" fn sipguard_sweep(region: *const Engine, now_ns: u64) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        region.flood.sweep(now_ns);
        region.guess_sweep(now_ns);
        Ok(())
    })
}

/// Write active bans and offence history to state_file (atomic rename);
/// SIPGUARD_OK without a state_file.
///
/// # Safety
/// `region` live.
#[no_mangle]
pub unsafe extern "C" fn sipguard_state_save(region: *const Engine, now_ns: u64) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        let Some(path) = region.cfg.flood.state_file.as_deref() else {
            return Ok(());
        };
        match state::save(&region.flood, path, now_ns) {
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

/// Restore from state_file. A missing file returns SIPGUARD_OK (nothing
/// loaded); a corrupt one is logged and ignored (SIPGUARD_ERR_CORRUPT).
/// *loaded_out (may be NULL) receives the number of bans restored.
///
/// # Safety
/// `region` live; `loaded_out` null or writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_state_load(
    region: *const Engine,
    now_ns: u64,
    loaded_out: *mut u32,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        let Some(path) = region.cfg.flood.state_file.as_deref() else {
            return Ok(());
        };
        let n = match state::load(&region.flood, path, now_ns) {
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

// ---- what every host's management commands share ------------------------------

/// Static, NUL-terminated name of a sipguard_ban_reason ("flood", ...),
/// "none" for 0 or an unknown value.
#[no_mangle]
pub extern "C" fn sipguard_ban_reason_name(reason: c_int) -> *const c_char {
    let s: &'static [u8] = match u32::try_from(reason).ok().and_then(Reason::from_code) {
        Some(Reason::Flood) => b"flood\0",
        Some(Reason::Manual) => b"manual\0",
        Some(Reason::Restored) => b"restored\0",
        Some(Reason::Scanner) => b"scanner\0",
        Some(Reason::Enumeration) => b"enumeration\0",
        Some(Reason::Auth) => b"auth\0",
        None => b"none\0",
    };
    s.as_ptr().cast()
}

/// A ban duration as an operator types it in a management command, for
/// sipguard_ban(): "" or "0" (the escalated ban_time) -> 0, "permanent" ->
/// UINT64_MAX, N, Ns, Nm, Nh, Nd -> seconds. SIPGUARD_ERR_INVALID otherwise.
///
/// # Safety
/// `text` valid for `len` (may be NULL when len is 0); `seconds_out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_ban_duration_parse(
    text: *const c_char,
    len: usize,
    seconds_out: *mut u64,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (t, o) = unsafe { (bytes(text.cast(), len)?, out(seconds_out)?) };
        *o = ban_duration_seconds(t).ok_or(Status::Invalid)?;
        Ok(())
    })
}

fn ban_duration_seconds(t: &[u8]) -> Option<u64> {
    if t.eq_ignore_ascii_case(b"permanent") {
        return Some(u64::MAX);
    }
    let (digits, mul) = match t.split_last() {
        None => return Some(0),
        Some((b's', d)) => (d, 1),
        Some((b'm', d)) => (d, 60),
        Some((b'h', d)) => (d, 3600),
        Some((b'd', d)) => (d, 86_400),
        Some(_) => (t, 1),
    };
    if digits.is_empty() || digits.len() > 12 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = digits.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    Some(n * mul)
}

#[cfg(test)]
mod duration_tests {
    use super::ban_duration_seconds as d;

    #[test]
    fn forms_of_a_ban_duration() {
        assert_eq!(d(b""), Some(0));
        assert_eq!(d(b"0"), Some(0));
        assert_eq!(d(b"90"), Some(90));
        assert_eq!(d(b"30s"), Some(30));
        assert_eq!(d(b"5m"), Some(300));
        assert_eq!(d(b"2h"), Some(7200));
        assert_eq!(d(b"1d"), Some(86_400));
        assert_eq!(d(b"PERMANENT"), Some(u64::MAX));
        for bad in [&b"m"[..], b"5x", b"-5", b"1 m", b"1234567890123"] {
            assert_eq!(d(bad), None, "{bad:?}");
        }
    }
}
