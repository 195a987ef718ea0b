//! The learnt baselines of toll fraud in the C ABI (`include/sipguard.h`,
//! after the toll-fraud section): anomaly events for the host's event
//! route, seeding from past calls, statistics. Same rules as
//! [`crate::ffi`]: every entry point in `boundary`, every pointer checked.

use crate::ffi::{boundary, bytes, handle, out, write_err, Status};
use crate::fraud::Fraud;
use crate::util::clock::wall_ms;
use std::ffi::c_void;
use std::os::raw::c_char;
use std::path::Path;

/// Called once per anomaly; account is not NUL-terminated; kind
/// ("destination" or "spend") and detail ("+882 high-risk", "12.0000 over
/// 1.0000") are.
pub type AnomalyEventFn = Option<
    extern "C" fn(
        ctx: *mut c_void,
        account: *const c_char,
        len: usize,
        kind: *const c_char,
        detail: *const c_char,
    ),
>;

/// Hand every anomaly raised since the last call (by any process) to fn:
/// the timer process, once a second, after sipguard_fraud_tick(). Nothing
/// when baselines are off.
///
/// # Safety
/// `f` live; `cb` callable with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_anomaly_events(
    f: *const Fraud,
    cb: AnomalyEventFn,
    ctx: *mut c_void,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let f = unsafe { handle(f)? };
        let cb = cb.ok_or(Status::Null)?;
        f.anomaly_events(|name, a| {
            let kind: &'static [u8] = match a.kind() {
                "destination" => b"destination\0",
                _ => b"spend\0",
            };
            let mut detail = a.detail().into_bytes();
            detail.retain(|b| *b != 0);
            detail.push(0);
            cb(
                ctx,
                name.as_ptr().cast(),
                name.len(),
                kind.as_ptr().cast(),
                detail.as_ptr().cast(),
            );
        });
        Ok(())
    })
}

/// What sipguard_fraud_seed_baseline() did.
#[repr(C)]
pub struct CSeedReport {
    /// Calls used.
    pub calls: u64,
    /// Accounts seeded.
    pub accounts: u64,
    /// Bad lines skipped (each logged as "<file>:<line>: <why>").
    pub skipped: u64,
    /// Calls older than baseline_days, left out.
    pub old: u64,
    /// Accounts the baseline table had no room for.
    pub unstored: u64,
}

/// Seed the baselines from a CSV of past calls
/// (account,start,duration,number,cost): the accounts in it get its
/// destinations added and their usual spend per hour of the week replaced.
/// Reads the file (bounded: README, "Seeding from past calls"); bad lines
/// are skipped and logged. On error (baselines off, file unreadable) err
/// receives why.
///
/// # Safety
/// `f` live; `path` valid for `path_len`; `out` writable; `err` writable
/// for `err_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_seed_baseline(
    f: *const Fraud,
    path: *const c_char,
    path_len: usize,
    now_ns: u64,
    out: *mut CSeedReport,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, path, out) = unsafe { (handle(f)?, bytes(path.cast(), path_len)?, self::out(out)?) };
        let path = std::str::from_utf8(path).map_err(|_| {
            write_err(err, err_len, "path is not UTF-8");
            Status::Invalid
        })?;
        if path.is_empty() {
            write_err(err, err_len, "no file given");
            return Err(Status::Invalid);
        }
        let r = f.seed_baseline(Path::new(path), now_ns, wall_ms()).map_err(|e| {
            write_err(err, err_len, &e);
            Status::Invalid
        })?;
        *out = CSeedReport {
            calls: r.calls as u64,
            accounts: r.accounts as u64,
            skipped: r.skipped as u64,
            old: r.old as u64,
            unstored: r.unstored as u64,
        };
        Ok(())
    })
}

/// Anomaly statistics.
#[repr(C)]
pub struct CAnomalyStats {
    /// First calls to a new destination of an anomaly_classes class.
    pub destination: u64,
    /// Hours of spend far above the account's usual.
    pub spend: u64,
    /// Accounts a baseline is kept for (0: baselines are off).
    pub capacity: u64,
}

/// Read the anomaly statistics.
///
/// # Safety
/// `f` live, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_anomaly_stats_get(
    f: *const Fraud,
    out: *mut CAnomalyStats,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, out) = unsafe { (handle(f)?, self::out(out)?) };
        let (destination, spend) = f.anomaly_counts();
        *out = CAnomalyStats {
            destination,
            spend,
            capacity: f.baseline_capacity(),
        };
        Ok(())
    })
}

/// One learnt destination of an account.
#[repr(C)]
pub struct CBaselineDest {
    /// Country calling code (44), 0 when the number started with none.
    pub country: u32,
    /// A sipguard_dial_class.
    pub class_id: i32,
    /// The day it was last called (Unix days).
    pub last_day: u32,
    pub _reserved: u32,
}

/// Most destinations a baseline keeps.
pub const SIPGUARD_BASELINE_DESTS: usize = 16;
const _: () = assert!(SIPGUARD_BASELINE_DESTS == crate::fraud::baseline::DEST_SLOTS);

/// An account's learnt baseline. Money in ten-thousandths.
#[repr(C)]
pub struct CBaselineInfo {
    /// The first n_dests are set, oldest call first.
    pub dests: [CBaselineDest; SIPGUARD_BASELINE_DESTS],
    pub n_dests: u32,
    pub _reserved: u32,
    /// Usual spend in this hour of the week (UTC).
    pub usual_hour: u64,
    /// Usual spend over a week (the 168 hours).
    pub usual_week: u64,
    /// When the baseline began (Unix ms, a whole hour).
    pub since_unix_ms: u64,
}

/// The learnt baseline of `account` (RPC sipguard.baseline).
/// SIPGUARD_ERR_NOT_FOUND: it has none, or baselines are off.
///
/// # Safety
/// `f` live; `account` valid for `account_len`; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_baseline_get(
    f: *const Fraud,
    account: *const c_char,
    account_len: usize,
    now_ns: u64,
    out: *mut CBaselineInfo,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, account, out) = unsafe { (handle(f)?, bytes(account.cast(), account_len)?, self::out(out)?) };
        let v = f
            .baseline_of(account, now_ns, wall_ms())
            .map_err(|_| Status::NotFound)?;
        let mut info = CBaselineInfo {
            dests: std::array::from_fn(|_| CBaselineDest {
                country: 0,
                class_id: 0,
                last_day: 0,
                _reserved: 0,
            }),
            n_dests: 0,
            _reserved: 0,
            usual_hour: v.usual_hour.0,
            usual_week: v.usual_week.0,
            since_unix_ms: v.since_unix_ms,
        };
        for (slot, (day, d)) in info.dests.iter_mut().zip(&v.dests) {
            *slot = CBaselineDest {
                country: d.cc as u32,
                class_id: d.class as i32,
                last_day: *day,
                _reserved: 0,
            };
            info.n_dests += 1;
        }
        *out = info;
        Ok(())
    })
}
