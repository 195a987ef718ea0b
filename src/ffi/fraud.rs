//! The toll-fraud part of the C ABI (`include/sipguard.h`, section "toll
//! fraud"). Same rules as [`crate::ffi`]: every entry point in `boundary`,
//! every pointer checked.

use crate::engine::config::Config;
use crate::engine::Engine;
use crate::ffi::{boundary, byte_test, bytes, contains, handle, out, write_err, CShimReturn, Status};
use crate::fraud::accounts::{CallTicket, Reason};
use crate::fraud::dial::{DialUri, Scheme};
use crate::fraud::money::Money;
use crate::fraud::rules::Class;
use crate::fraud::{DialVerdict, Fraud, StartVerdict};
use crate::media::sdp::ReasonBuf;
use crate::shm::keyed::KeyedError;
use crate::util::clock::wall_ms;
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// sipguard_fraud_dial_check() verdicts; the shim returns them as is.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum CDialVerdict {
    /// The account may call the number.
    SIPGUARD_DIAL_ALLOWED = 1,
    /// The account may not dial this class (or has no rule, and there is no
    /// default).
    SIPGUARD_DIAL_CLASS_DENIED = -1,
    /// The account is suspended.
    SIPGUARD_DIAL_SUSPENDED = -2,
    /// This attempt crossed a critical threshold: suspended now.
    SIPGUARD_DIAL_VELOCITY = -3,
    /// Bad number, or no prefix rule matches it.
    SIPGUARD_DIAL_NO_RULE = -4,
    /// The account's table bucket holds only live accounts.
    SIPGUARD_DIAL_TABLE_FULL = -5,
    /// Bad account name, busy, rules mid-reload, internal error.
    SIPGUARD_DIAL_UNAVAILABLE = -6,
    /// A first call to a new destination, refused (anomaly_action=refuse).
    SIPGUARD_DIAL_ANOMALY = -7,
}

mirror!(CDialVerdict <=> DialVerdict, DIAL_VERDICT_VALUES {
    SIPGUARD_DIAL_ALLOWED = DialVerdict::Allowed,
    SIPGUARD_DIAL_CLASS_DENIED = DialVerdict::ClassDenied,
    SIPGUARD_DIAL_SUSPENDED = DialVerdict::Suspended,
    SIPGUARD_DIAL_VELOCITY = DialVerdict::Velocity,
    SIPGUARD_DIAL_NO_RULE = DialVerdict::NoRule,
    SIPGUARD_DIAL_TABLE_FULL = DialVerdict::TableFull,
    SIPGUARD_DIAL_UNAVAILABLE = DialVerdict::Unavailable,
    SIPGUARD_DIAL_ANOMALY = DialVerdict::Anomaly,
});

/// sipguard_fraud_call_start() verdicts; the shim returns them as is.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum CCallVerdict {
    /// The call is admitted and counted.
    SIPGUARD_CALL_ADMITTED = 1,
    /// The account has `limit` calls up.
    SIPGUARD_CALL_LIMIT = -1,
    /// The account is suspended.
    SIPGUARD_CALL_SUSPENDED = -2,
    /// The account's table bucket holds only live accounts.
    SIPGUARD_CALL_TABLE_FULL = -5,
    /// Bad account name, busy, rules mid-reload, internal error.
    SIPGUARD_CALL_UNAVAILABLE = -6,
}

mirror!(CCallVerdict <=> StartVerdict, CALL_VERDICT_VALUES {
    SIPGUARD_CALL_ADMITTED = StartVerdict::Admitted,
    SIPGUARD_CALL_LIMIT = StartVerdict::LimitReached,
    SIPGUARD_CALL_SUSPENDED = StartVerdict::Suspended,
    SIPGUARD_CALL_TABLE_FULL = StartVerdict::TableFull,
    SIPGUARD_CALL_UNAVAILABLE = StartVerdict::Unavailable,
});

// The shim's own code for sipguard_call_start() is no call verdict.
const _: () = assert!(!contains(
    CALL_VERDICT_VALUES,
    CShimReturn::SIPGUARD_RET_CALL_NO_DIALOG as i64
));

/// Destination classes (sipguard_dial_result.class_id); 0 = none matched.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum CDialClass {
    /// "domestic"
    SIPGUARD_CLASS_DOMESTIC = 1,
    /// "mobile"
    SIPGUARD_CLASS_MOBILE = 2,
    /// "international"
    SIPGUARD_CLASS_INTERNATIONAL = 3,
    /// "premium"
    SIPGUARD_CLASS_PREMIUM = 4,
    /// "high-risk"
    SIPGUARD_CLASS_HIGH_RISK = 5,
    /// "toll-free" (numbering-plan type, as the next ones)
    SIPGUARD_CLASS_TOLL_FREE = 6,
    /// "shared-cost"
    SIPGUARD_CLASS_SHARED_COST = 7,
    /// "uan"
    SIPGUARD_CLASS_UAN = 8,
    /// "voip"
    SIPGUARD_CLASS_VOIP = 9,
    /// "personal"
    SIPGUARD_CLASS_PERSONAL = 10,
    /// "satellite" (+881, +882, +883)
    SIPGUARD_CLASS_SATELLITE = 11,
    /// "fixed"
    SIPGUARD_CLASS_FIXED = 12,
}

mirror!(CDialClass <=> Class, DIAL_CLASS_VALUES {
    SIPGUARD_CLASS_DOMESTIC = Class::Domestic,
    SIPGUARD_CLASS_MOBILE = Class::Mobile,
    SIPGUARD_CLASS_INTERNATIONAL = Class::International,
    SIPGUARD_CLASS_PREMIUM = Class::Premium,
    SIPGUARD_CLASS_HIGH_RISK = Class::HighRisk,
    SIPGUARD_CLASS_TOLL_FREE = Class::TollFree,
    SIPGUARD_CLASS_SHARED_COST = Class::SharedCost,
    SIPGUARD_CLASS_UAN = Class::Uan,
    SIPGUARD_CLASS_VOIP = Class::Voip,
    SIPGUARD_CLASS_PERSONAL = Class::Personal,
    SIPGUARD_CLASS_SATELLITE = Class::Satellite,
    SIPGUARD_CLASS_FIXED = Class::Fixed,
});

/// One call. The host allocates it in memory shared by all its processes
/// (Kamailio shm), zeroed, and passes it to start, answered and end; the
/// contents are the core's. The end counts the call down exactly once,
/// whichever process and however many times it is called.
#[repr(C)]
pub struct CCall {
    /// The core's state of the call; zero before start.
    pub opaque: [u64; 5],
}

// The core uses the host's memory in place as its own `CallTicket`.
const _: () = assert!(
    std::mem::size_of::<CallTicket>() == 40
        && std::mem::size_of::<CCall>() == std::mem::size_of::<CallTicket>()
        && std::mem::align_of::<CCall>() == std::mem::align_of::<CallTicket>()
);

/// # Safety
/// `call` null, or valid for a `CCall` for `'a`.
unsafe fn ticket<'a>(call: *mut CCall) -> Result<&'a CallTicket, Status> {
    // SAFETY: a `CCall` has the size and alignment of a `CallTicket`, whose
    // every bit pattern the core accepts (atomics; zero = never armed).
    unsafe { handle(call.cast_const().cast::<CallTicket>()) }
}

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

/// Map the fraud state shared by every process, load fraud_rules (errors:
/// "file:line: message") and fraud_state_file, from the same parameter set
/// as the region (the fraud_* parameters in README.md). Before the fork;
/// children inherit the opaque, process-local handle.
///
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

/// The fraud handle on the region's own mapping (its rules, accounts and
/// counters are areas of it: one mapping for every table), loading
/// fraud_rules and fraud_state_file as sipguard_fraud_create() does. Once
/// per region, before the fork; destroy it with sipguard_fraud_destroy()
/// (the mapping lives until the region and it are both destroyed).
///
/// # Safety
/// `region` live; `out` writable; `err` writable for `err_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_region_fraud(
    region: *const Engine,
    now_ns: u64,
    out: *mut *mut Fraud,
    err: *mut c_char,
    err_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (engine, out) = unsafe { (handle(region)?, self::out(out)?) };
        let f = engine.fraud(now_ns).map_err(|e| {
            write_err(err, err_len, &e);
            Status::Invalid
        })?;
        *out = Box::into_raw(Box::new(f));
        Ok(())
    })
}

/// Unmap the fraud state and free the handle (NULL is ignored).
///
/// # Safety
/// `f` null or from `sipguard_fraud_create` or `sipguard_region_fraud`,
/// not yet destroyed.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_destroy(f: *mut Fraud) {
    if !f.is_null() {
        // SAFETY: made by Box::into_raw in sipguard_fraud_create.
        let _ = catch_unwind(AssertUnwindSafe(|| drop(unsafe { Box::from_raw(f) })));
    }
}

/// Settings of the fraud handle that the shim acts on.
#[repr(C)]
pub struct FraudSettings {
    /// 1: fraud_rules is set.
    pub has_rules: u32,
    /// 1: fraud_state_file is set.
    pub has_state_file: u32,
    /// Accounts, after rounding.
    pub account_table_size: u64,
    /// Shared bytes mapped.
    pub bytes: u64,
}

/// Read the settings of the fraud handle.
///
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

/// What sipguard_fraud_dial_check() decided. Money is in ten-thousandths
/// of the currency unit (1.5 = 15000).
#[repr(C)]
pub struct CDialResult {
    /// A sipguard_dial_verdict.
    pub verdict: i32,
    /// sipguard_dial_class of the matched prefix, 0 none.
    pub class_id: i32,
    /// Rate per minute of the matched prefix (money).
    pub rate: u64,
}

/// May `account` call `number` (a dialled number: the R-URI user) now?
/// Counts a call attempt of the account (velocity). reason (may be NULL)
/// receives a NUL-terminated text: the class when allowed, else why not.
/// Allocates nothing; one account bucket lock; no file read.
///
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
            class_id: d.class.map_or(0, |c| c as i32),
            rate: d.rate.0,
        };
        Ok(())
    })
}

/// URI schemes (sipguard_dial_uri.scheme), as the host parsed them.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub enum CUriScheme {
    /// sip:
    SIPGUARD_URI_SIP = 1,
    /// sips:
    SIPGUARD_URI_SIPS = 2,
    /// tel: (tels: too: the number is read the same way)
    SIPGUARD_URI_TEL = 3,
}

/// A request URI as the host parsed it, for sipguard_fraud_dial_check_uri().
#[repr(C)]
pub struct CDialUri {
    /// A sipguard_uri_scheme.
    pub scheme: i32,
    /// 1: a sip/sips URI with the parameter user=phone.
    pub user_phone: u32,
    /// The user part (tel: the number), as in the message (still escaped).
    pub user: *const c_char,
    pub user_len: usize,
    /// The telephone-subscriber parameters the host split off the number
    /// ("phone-context=+44;ext=1"; a tel: URI's parameters, a user=phone
    /// URI's when the host moved them out of the user part); may be NULL
    /// with length 0.
    pub tel_params: *const c_char,
    pub tel_params_len: usize,
}

/// Longest canonical number sipguard_fraud_dial_check_uri() writes, with
/// its NUL: 15 digits of E.164 + 1.
pub const SIPGUARD_E164_BUF: usize = 16;
const _: () = assert!(SIPGUARD_E164_BUF == crate::fraud::dial::E164_MAX + 1);

/// sipguard_fraud_dial_check() of what a request URI dials: the URI is
/// read as one canonical E.164 number (README: "What is judged is what is
/// dialled"), and that number is judged. `e164` (at least
/// SIPGUARD_E164_BUF bytes) receives its digits without "+",
/// NUL-terminated, or "" when the URI dials no one number (verdict
/// SIPGUARD_DIAL_NO_RULE, reason "bad number: ..."). Counts a call attempt
/// like sipguard_fraud_dial_check(). A number no prefix rule matches is
/// classed by the numbering-plan data (class toll-free ... fixed, rate 0):
/// that lookup allocates, in the calling process, once per call.
///
/// # Safety
/// `f` live; `account` valid for `account_len`; `uri` null or readable,
/// its buffers valid for their lengths; `out` writable; `e164` writable for
/// `e164_len`; `reason` null or writable for `reason_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_dial_check_uri(
    f: *const Fraud,
    account: *const c_char,
    account_len: usize,
    uri: *const CDialUri,
    now_ns: u64,
    out: *mut CDialResult,
    e164: *mut c_char,
    e164_len: usize,
    reason: *mut c_char,
    reason_len: usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, account, uri, out) = unsafe {
            (
                handle(f)?,
                bytes(account.cast(), account_len)?,
                handle(uri)?,
                self::out(out)?,
            )
        };
        if e164.is_null() {
            return Err(Status::Null);
        }
        if e164_len < SIPGUARD_E164_BUF {
            return Err(Status::Invalid);
        }
        let scheme = match uri.scheme {
            1 => Scheme::Sip,
            2 => Scheme::Sips,
            3 => Scheme::Tel,
            _ => return Err(Status::Invalid),
        };
        // SAFETY: per the function contract.
        let (user, tel_params) = unsafe {
            (
                bytes(uri.user.cast(), uri.user_len)?,
                bytes(uri.tel_params.cast(), uri.tel_params_len)?,
            )
        };
        let uri = DialUri {
            scheme,
            user,
            user_phone: uri.user_phone != 0,
            tel_params,
        };
        let (d, number) = with_reason(reason, reason_len, |why| {
            f.dial_check_uri(account, &uri, now_ns, wall_ms(), why)
        });
        let digits = number.as_ref().map_or(&[][..], |n| n.digits());
        // SAFETY: e164 writable for e164_len >= 16 > digits.len().
        unsafe {
            std::ptr::copy_nonoverlapping(digits.as_ptr(), e164.cast::<u8>(), digits.len());
            *e164.add(digits.len()) = 0;
        }
        *out = CDialResult {
            verdict: d.verdict as i32,
            class_id: d.class.map_or(0, |c| c as i32),
            rate: d.rate.0,
        };
        Ok(())
    })
}

/// Static name of a class ("premium"), "" for 0 or unknown.
#[no_mangle]
pub extern "C" fn sipguard_fraud_class_name(class_id: c_int) -> *const c_char {
    let s: &'static [u8] = match u32::try_from(class_id).ok().and_then(Class::from_u32) {
        Some(Class::Domestic) => b"domestic\0",
        Some(Class::Mobile) => b"mobile\0",
        Some(Class::International) => b"international\0",
        Some(Class::Premium) => b"premium\0",
        Some(Class::HighRisk) => b"high-risk\0",
        Some(Class::TollFree) => b"toll-free\0",
        Some(Class::SharedCost) => b"shared-cost\0",
        Some(Class::Uan) => b"uan\0",
        Some(Class::Voip) => b"voip\0",
        Some(Class::Personal) => b"personal\0",
        Some(Class::Satellite) => b"satellite\0",
        Some(Class::Fixed) => b"fixed\0",
        None => b"\0",
    };
    s.as_ptr().cast()
}

/// Rate per minute of the prefix `number` matches (0 when none).
///
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

/// Admit a call of `account` while it has fewer than `limit` calls up
/// (limit 0: the account's rule, else call_limit; 0 there = no limit).
/// *verdict_out receives a sipguard_call_verdict; on SIPGUARD_CALL_ADMITTED
/// `call` is armed. rate is the call's rate per minute for spend (money).
/// Allocates nothing.
///
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
    call: *mut CCall,
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
                ticket(call)?,
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

/// The call was answered: its spend runs from now. Idempotent.
///
/// # Safety
/// `f` live; `call` armed by `sipguard_fraud_call_start`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_call_answered(
    f: *const Fraud,
    call: *mut CCall,
    now_ns: u64,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, call) = unsafe { (handle(f)?, ticket(call)?) };
        f.call_answered(call, now_ns).map_err(status)
    })
}

/// The call ended (any way). *ended_out (may be NULL) = 1 when this call
/// counted it down, 0 when it already was (or never admitted).
/// SIPGUARD_ERR_BUSY: nothing changed; call again later.
///
/// # Safety
/// `f` live; `call` as for answered; `ended_out` null or writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_call_end(
    f: *const Fraud,
    call: *mut CCall,
    now_ns: u64,
    ended_out: *mut i32,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (f, call) = unsafe { (handle(f)?, ticket(call)?) };
        let ended = f.call_end(call, now_ns).map_err(status)?;
        // SAFETY: null or writable, per the contract.
        if let Some(o) = unsafe { ended_out.as_mut() } {
            *o = ended as i32;
        }
        Ok(())
    })
}

/// Suspend an account now (reason rpc); logs the SUSPEND line; the event
/// is handed over by the next tick. *changed_out (may be NULL) = 0: it
/// already was.
///
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
        if account.is_empty() || account.len() > crate::fraud::accounts::NAME_BYTES {
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

/// Lift a suspension and forgive what was counted so far. Logs.
/// SIPGUARD_ERR_NOT_FOUND: not suspended.
///
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

/// Re-read fraud_rules and publish it to every process. On error (message
/// in err, "file:line: ...") the rules in force stay. The counts (may be
/// NULL) receive the prefix and account rules loaded.
///
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

/// One tracked account, as RPC shows it.
#[repr(C)]
pub struct CAccountInfo {
    /// NUL-terminated, cut at 64 bytes.
    pub name: [c_char; 72],
    /// Calls up.
    pub active: u32,
    /// 1 while suspended.
    pub suspended: i32,
    /// Why suspended: "cpm", "spend", "rpc", "anomaly" or "".
    pub reason: [c_char; 8],
    /// Call attempts in the last minute (sliding).
    pub cpm: u64,
    /// Spend in the last hour incl. calls up (money).
    pub spend: u64,
    /// When suspended (Unix time in ms).
    pub since_unix_ms: u64,
}

fn fill(dst: &mut [c_char], src: &[u8]) {
    let n = src.len().min(dst.len() - 1);
    for (d, s) in dst.iter_mut().zip(&src[..n]) {
        *d = *s as c_char;
    }
    dst[n] = 0;
}

/// Called once per account; return 0 to continue, non-zero to stop.
pub type AccountFn = Option<extern "C" fn(ctx: *mut c_void, a: *const CAccountInfo) -> c_int>;

/// Every tracked account; fn returns non-zero to stop. fn runs with no lock
/// of the account table held (on copies taken a bucket at a time), so it may
/// allocate: workers are not held up while it builds a reply.
///
/// # Safety
/// `f` live; `cb` callable with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_list(
    f: *const Fraud,
    now_ns: u64,
    cb: AccountFn,
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

/// Called once per new suspension; account is not NUL-terminated, reason
/// ("cpm", "spend", "rpc", "anomaly") is. end_calls is 1 when suspend_ends_calls names
/// the reason: the host ends the account's calls up.
pub type SuspendEventFn = Option<
    extern "C" fn(
        ctx: *mut c_void,
        account: *const c_char,
        len: usize,
        reason: *const c_char,
        end_calls: c_int,
    ),
>;

/// Timer work, once a second from one process: suspends accounts whose
/// spend with calls up crossed spend_critical, calls fn for every suspension
/// made since the last tick (from any process), saves fraud_state_file when
/// suspensions changed. fn NULL (shutdown): the same, but the suspensions'
/// events stay pending for a later tick with fn.
///
/// # Safety
/// `f` live; `cb` null (pending events stay pending) or callable with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_tick(
    f: *const Fraud,
    now_ns: u64,
    cb: SuspendEventFn,
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
                Reason::Anomaly => b"anomaly\0",
            };
            let end = f.cfg.ends_calls(reason) as c_int;
            cb(ctx, name.as_ptr().cast(), name.len(), r.as_ptr().cast(), end);
        });
        Ok(())
    })
}

/// Toll-fraud statistics.
#[repr(C)]
pub struct CFraudStats {
    /// Dial checks not allowed.
    pub denied: u64,
    /// Accounts suspended (all reasons).
    pub suspensions: u64,
    /// Calls up, all accounts.
    pub active_calls: u64,
    /// Accounts suspended now (recounted every second by the timer's tick).
    pub suspended_accounts: u64,
}

/// Read the toll-fraud statistics.
///
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
            suspended_accounts: s.suspended_accounts,
        };
        Ok(())
    })
}

/// Text of a money amount in ten-thousandths: "1.5000" for 15000;
/// NUL-terminated, truncated to len. For RPC replies.
///
/// # Safety
/// `buf` writable for `len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_fraud_money_text(amount: u64, buf: *mut c_char, len: usize) -> Status {
    boundary(|| {
        if buf.is_null() {
            return Err(Status::Null);
        }
        let mut t = crate::util::fixed_buf::FixedBuf::<32>::new();
        let _ = std::fmt::Write::write_fmt(&mut t, format_args!("{}", Money(amount)));
        write_err(buf, len, t.as_str());
        Ok(())
    })
}

// ---- what every host's toll-fraud shim shares --------------------------------

/// 1 when the number argument of a dial check is a URI ("sip:", "sips:",
/// "tel:": a ':' after at least 3 of its first 5 bytes; a dialled number
/// has no ':'), so the host hands over its parse of the URI; else 0 (also
/// for a null value with a non-zero length).
///
/// # Safety
/// `value` valid for `len` bytes (or null with 0).
#[no_mangle]
pub unsafe extern "C" fn sipguard_dial_is_uri(value: *const c_char, len: usize) -> c_int {
    // SAFETY: per the function contract.
    unsafe {
        byte_test(value, len, |v| {
            c_int::from(matches!(v.iter().take(5).position(|&b| b == b':'), Some(i) if i >= 3))
        })
    }
}

/// An account name for a host's log line into out (NUL-terminated): at
/// most 64 bytes of it, each byte outside printable ASCII as '?'. Returns
/// the length written (0 for a null name or out, or out_len 0).
///
/// # Safety
/// `name` valid for `len` bytes (or null with 0); `out` writable for `out_len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_account_printable(
    name: *const c_char,
    len: usize,
    out: *mut c_char,
    out_len: usize,
) -> usize {
    let copy = || {
        // SAFETY: per the function contract.
        let n = unsafe { bytes(name.cast(), len) }.ok()?;
        if out.is_null() || out_len == 0 {
            return None;
        }
        // SAFETY: non-null, writable for out_len per the contract.
        let o = unsafe { std::slice::from_raw_parts_mut(out.cast::<u8>(), out_len) };
        let k = n.len().min(64).min(out_len - 1);
        for (d, &b) in o.iter_mut().zip(&n[..k]) {
            *d = if b > 0x20 && b < 0x7f { b } else { b'?' };
        }
        o[k] = 0;
        Some(k)
    };
    std::panic::catch_unwind(copy).ok().flatten().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fraud::accounts::Reason;
    use crate::fraud::config::FraudConfig;
    use crate::util::clock::NS_PER_SEC as S;

    #[test]
    fn null_handles_are_refused() {
        let mut r = CDialResult {
            verdict: 0,
            class_id: 0,
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

    #[test]
    fn a_tick_without_an_event_route_leaves_events_pending() {
        let f = Fraud::create(&FraudConfig::default(), S).unwrap();
        f.suspend(b"alice", S, 0).unwrap();
        // The shim's shutdown tick: no event callback.
        // SAFETY: a live handle; a null callback and context.
        let st = unsafe { sipguard_fraud_tick(&f, 2 * S, None, std::ptr::null_mut()) };
        assert_eq!(st, Status::Ok);
        let mut events = Vec::new();
        f.tick(3 * S, 0, |n, r| events.push((n.to_vec(), r)));
        assert_eq!(events, vec![(b"alice".to_vec(), Reason::Rpc)]);
    }
}
