//! The toll-fraud part of the C ABI (`include/sipguard.h`, section "toll
//! fraud"). Same rules as [`crate::ffi`]: every entry point in `boundary`,
//! every pointer checked.

use super::accounts::{CallTicket, Reason};
use super::money::Money;
use super::rules::Class;
use super::Fraud;
use crate::clock::wall_ms;
use crate::config::Config;
use crate::ffi::{boundary, bytes, handle, out, write_err, Status};
use crate::keyed::KeyedError;
use crate::sdp::ReasonBuf;
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `sipguard_call`: the host allocates it (zeroed) in shared memory.
const _: () = assert!(std::mem::size_of::<CallTicket>() == 40);

fn status(e: KeyedError) -> Status {
    match e {
        KeyedError::NotFound => Status::NotFound,
        KeyedError::Full => Status::Full,
        KeyedError::Busy => Status::Busy,
    }
}

/// A caller's reason buffer (may be null), NUL-terminated after `f`.
fn with_reason<R>(reason: *mut c_char, reason_len: usize, f: impl FnOnce(&mut ReasonBuf<'_>) -> R) -> R {
    let mut scratch = [0u8; 1];
    let buf: &mut [u8] = if reason.is_null() || reason_len == 0 {
        &mut scratch[..0]
    } else {
        // SAFETY: writable for reason_len bytes, per the callers' contract.
        unsafe { std::slice::from_raw_parts_mut(reason.cast::<u8>(), reason_len - 1) }
    };
    let mut why = ReasonBuf::new(buf);
    let r = f(&mut why);
    let n = why.len();
    if !reason.is_null() && reason_len > 0 {
        // SAFETY: n <= reason_len - 1.
        unsafe { *reason.add(n) = 0 };
    }
    r
}

/// # Safety
/// `cfg` live; `out` writable; `err` writable for `err_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_create(
    cfg: *const Config,
    now_ns: u64,
    out: *mut *mut Fraud,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (cfg, out) = unsafe { (handle(cfg)?, self::out(out)?) };
        let f = Fraud::create(&cfg.fraud, now_ns).map_err(|e| {
            write_err(err, err_len, &e);
            Status::Invalid
        })?;
        *out = Box::into_raw(Box::new(f));
        Ok(())
    })
}

/// # Safety
/// `f` null or from `sipguard_fraud_create`, not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_destroy(f: *mut Fraud) {
    if !f.is_null() {
        // SAFETY: made by Box::into_raw in sipguard_fraud_create.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(f) })));
    }
}

#[repr(C)]
pub struct FraudSettings {
    pub has_rules: u32,
    pub has_state_file: u32,
    pub account_table_size: u64,
    pub bytes: u64,
}

/// # Safety
/// `f` live, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_settings_get(f: *const Fraud, out: *mut FraudSettings) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, out) = unsafe { (handle(f)?, self::out(out)?) };
        *out = FraudSettings {
            has_rules: f.cfg.rules_file.is_some() as u32,
            has_state_file: f.cfg.state_file.is_some() as u32,
            account_table_size: f.account_capacity(),
            bytes: f.bytes() as u64,
        };
        Ok(())
    })
}

#[repr(C)]
pub struct CDialResult {
    pub verdict: i32,
    pub class: i32,
    pub rate: u64,
}

/// # Safety
/// `f` live; buffers valid for their lengths; `out` writable; `reason`
/// null or writable for `reason_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_dial_check(
    f: *const Fraud,
    account: *const c_char,
    account_len: usize,
    number: *const c_char,
    number_len: usize,
    now_ns: u64,
    out: *mut CDialResult,
    reason: *mut c_char,
    reason_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, account, number, out) = unsafe {
            (
                handle(f)?,
                bytes(account.cast(), account_len)?,
                bytes(number.cast(), number_len)?,
                self::out(out)?,
            )
        };
        let d = with_reason(reason, reason_len, |why| {
            f.dial_check(account, number, now_ns, wall_ms(), why)
        });
        *out = CDialResult {
            verdict: d.verdict as i32,
            class: d.class.map_or(0, |c| c as i32),
            rate: d.rate.0,
        };
        Ok(())
    })
}

#[no_mangle]
pub extern "C" fn sipguard_fraud_class_name(class: c_int) -> *const c_char {
    let s: &'static [u8] = match u32::try_from(class).ok().and_then(Class::from_u32) {
        Some(Class::Domestic) => b"domestic\0",
        Some(Class::Mobile) => b"mobile\0",
        Some(Class::International) => b"international\0",
        Some(Class::Premium) => b"premium\0",
        Some(Class::HighRisk) => b"high-risk\0",
        None => b"\0",
    };
    s.as_ptr().cast()
}

/// # Safety
/// `f` live; `number` valid for `number_len`; `rate_out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_rate(
    f: *const Fraud,
    number: *const c_char,
    number_len: usize,
    rate_out: *mut u64,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, number, rate_out) =
            unsafe { (handle(f)?, bytes(number.cast(), number_len)?, out(rate_out)?) };
        *rate_out = f.rate_of(number).0;
        Ok(())
    })
}

/// # Safety
/// `f` live; `account` valid for `account_len`; `call` writable shared
/// memory; `verdict_out` writable; `reason` null or writable for `reason_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_call_start(
    f: *const Fraud,
    account: *const c_char,
    account_len: usize,
    limit: u32,
    rate: u64,
    now_ns: u64,
    call: *mut CallTicket,
    verdict_out: *mut i32,
    reason: *mut c_char,
    reason_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, account, call, verdict_out) = unsafe {
            (
                handle(f)?,
                bytes(account.cast(), account_len)?,
                handle(call)?,
                out(verdict_out)?,
            )
        };
        let v = with_reason(reason, reason_len, |why| {
            f.call_start(account, limit, Money(rate), now_ns, call, why)
        });
        *verdict_out = v as i32;
        Ok(())
    })
}

/// # Safety
/// `f` live; `call` armed by `sipguard_fraud_call_start`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_call_answered(
    f: *const Fraud,
    call: *mut CallTicket,
    now_ns: u64,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, call) = unsafe { (handle(f)?, handle(call)?) };
        f.call_answered(call, now_ns).map_err(status)
    })
}

/// # Safety
/// `f` live; `call` as for answered; `ended_out` null or writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_call_end(
    f: *const Fraud,
    call: *mut CallTicket,
    now_ns: u64,
    ended_out: *mut i32,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, call) = unsafe { (handle(f)?, handle(call)?) };
        let ended = f.call_end(call, now_ns).map_err(status)?;
        // SAFETY: null or writable, per the contract.
        if let Some(o) = unsafe { ended_out.as_mut() } {
            *o = ended as i32;
        }
        Ok(())
    })
}

/// # Safety
/// `f` live; `account` valid for `account_len`; `changed_out` null or writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_suspend(
    f: *const Fraud,
    account: *const c_char,
    account_len: usize,
    now_ns: u64,
    changed_out: *mut i32,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, account) = unsafe { (handle(f)?, bytes(account.cast(), account_len)?) };
        if account.is_empty() || account.len() > super::accounts::NAME_BYTES {
            return Err(Status::Invalid);
        }
        let changed = f.suspend(account, now_ns, wall_ms()).map_err(status)?;
        // SAFETY: null or writable, per the contract.
        if let Some(o) = unsafe { changed_out.as_mut() } {
            *o = changed as i32;
        }
        Ok(())
    })
}

/// # Safety
/// `f` live; `account` valid for `account_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_unsuspend(
    f: *const Fraud,
    account: *const c_char,
    account_len: usize,
    now_ns: u64,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, account) = unsafe { (handle(f)?, bytes(account.cast(), account_len)?) };
        f.unsuspend(account, now_ns).map_err(status)
    })
}

/// # Safety
/// `f` live; `err` writable for `err_len`; counts null or writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_reload(
    f: *const Fraud,
    err: *mut c_char,
    err_len: usize,
    prefixes_out: *mut u32,
    accounts_out: *mut u32,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let f = unsafe { handle(f)? };
        let (p, a) = f.reload().map_err(|e| {
            write_err(err, err_len, &e);
            Status::Invalid
        })?;
        // SAFETY: null or writable, per the contract.
        unsafe {
            if let Some(o) = prefixes_out.as_mut() {
                *o = p as u32;
            }
            if let Some(o) = accounts_out.as_mut() {
                *o = a as u32;
            }
        }
        Ok(())
    })
}

#[repr(C)]
pub struct CAccountInfo {
    pub name: [c_char; 72],
    pub active: u32,
    pub suspended: i32,
    pub reason: [c_char; 8],
    pub cpm: u64,
    pub spend: u64,
    pub since_unix_ms: u64,
}

fn fill(dst: &mut [c_char], src: &[u8]) {
    let n = src.len().min(dst.len() - 1);
    for (d, s) in dst.iter_mut().zip(&src[..n]) {
        *d = *s as c_char;
    }
    dst[n] = 0;
}

pub type AccountFn = extern "C" fn(ctx: *mut c_void, a: *const CAccountInfo) -> c_int;

/// # Safety
/// `f` live; `cb` callable with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_list(
    f: *const Fraud,
    now_ns: u64,
    cb: Option<AccountFn>,
    ctx: *mut c_void,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let f = unsafe { handle(f)? };
        let cb = cb.ok_or(Status::Null)?;
        f.list(now_ns, |a| {
            let mut c = CAccountInfo {
                name: [0; 72],
                active: a.active,
                suspended: a.suspended.is_some() as i32,
                reason: [0; 8],
                cpm: a.usage.cpm,
                spend: a.usage.spend.0,
                since_unix_ms: a.since_wall_ms,
            };
            fill(&mut c.name, &a.name);
            fill(&mut c.reason, a.suspended.map_or("", Reason::name).as_bytes());
            cb(ctx, &c) == 0
        });
        Ok(())
    })
}

pub type SuspendEventFn =
    extern "C" fn(ctx: *mut c_void, account: *const c_char, len: usize, reason: *const c_char);

/// # Safety
/// `f` live; `cb` null (pending events stay pending) or callable with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_tick(
    f: *const Fraud,
    now_ns: u64,
    cb: Option<SuspendEventFn>,
    ctx: *mut c_void,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let f = unsafe { handle(f)? };
        let Some(cb) = cb else {
            // No event route to run (shutdown): the events stay pending.
            f.tick_keeping_events(now_ns, wall_ms());
            return Ok(());
        };
        f.tick(now_ns, wall_ms(), |name, reason| {
            let r: &'static [u8] = match reason {
                Reason::Cpm => b"cpm\0",
                Reason::Spend => b"spend\0",
                Reason::Rpc => b"rpc\0",
            };
            cb(ctx, name.as_ptr().cast(), name.len(), r.as_ptr().cast());
        });
        Ok(())
    })
}

#[repr(C)]
pub struct CFraudStats {
    pub denied: u64,
    pub suspensions: u64,
    pub active_calls: u64,
}

/// # Safety
/// `f` live, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_stats_get(f: *const Fraud, out: *mut CFraudStats) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, out) = unsafe { (handle(f)?, self::out(out)?) };
        let s = f.stats();
        *out = CFraudStats {
            denied: s.denied,
            suspensions: s.suspensions,
            active_calls: s.active_calls,
        };
        Ok(())
    })
}

/// Text of a money amount in ten-thousandths ("1.5000"), for RPC replies.
///
/// # Safety
/// `buf` writable for `len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_money_text(amount: u64, buf: *mut c_char, len: usize) -> Status {
    boundary(|| {
        if buf.is_null() {
            return Err(Status::Null);
        }
        let mut t = crate::addr::FixedBuf::<32>::new();
        let _ = std::fmt::Write::write_fmt(&mut t, format_args!("{}", Money(amount)));
        write_err(buf, len, t.as_str());
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_handles_are_refused() {
        let mut r = CDialResult {
            verdict: 0,
            class: 0,
            rate: 0,
        };
        // SAFETY: deliberately null arguments.
        unsafe {
            assert_eq!(
                sipguard_fraud_dial_check(
                    std::ptr::null(),
                    std::ptr::null(),
                    0,
                    std::ptr::null(),
                    0,
                    1,
                    &mut r,
                    std::ptr::null_mut(),
                    0
                ),
                Status::Null
            );
            assert_eq!(
                sipguard_fraud_call_end(std::ptr::null(), std::ptr::null_mut(), 1, std::ptr::null_mut()),
                Status::Null
            );
        }
        // SAFETY: a static NUL-terminated string.
        let name = unsafe { std::ffi::CStr::from_ptr(sipguard_fraud_class_name(4)) };
        assert_eq!(name.to_str().unwrap(), "premium");
    }
}
