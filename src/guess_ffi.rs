//! C ABI of the guessing defences (`include/sipguard.h`, "guessing"
//! section). Same rules as [`crate::ffi`]: every entry point inside
//! `boundary`, every pointer checked.

use crate::ffi::{boundary, bytes, handle, out, CCheckResult, Status};
use crate::guess::{Finding, Request};
use crate::region::Region;
use crate::reply::Outcome;
use crate::table::Verdict;
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};

/// `sipguard_request`: borrowed header values of one request.
#[repr(C)]
pub struct CRequest {
    pub method: *const c_char,
    pub method_len: usize,
    pub ruri_user: *const c_char,
    pub ruri_user_len: usize,
    pub from: *const c_char,
    pub from_len: usize,
    pub to: *const c_char,
    pub to_len: usize,
    pub call_id: *const c_char,
    pub call_id_len: usize,
    pub cseq: *const c_char,
    pub cseq_len: usize,
    pub user_agent: *const c_char,
    pub user_agent_len: usize,
    pub credentials: *const c_char,
    pub credentials_len: usize,
}

/// # Safety
/// `req` null or valid, its pointers valid for their lengths.
unsafe fn request<'a>(req: *const CRequest) -> Result<Request<'a>, Status> {
    // SAFETY: per the function contract.
    let r = unsafe { handle(req)? };
    // SAFETY: each pointer is valid for its length, per the contract.
    unsafe {
        Ok(Request {
            method: bytes(r.method.cast(), r.method_len)?,
            ruri_user: bytes(r.ruri_user.cast(), r.ruri_user_len)?,
            from: bytes(r.from.cast(), r.from_len)?,
            to: bytes(r.to.cast(), r.to_len)?,
            call_id: bytes(r.call_id.cast(), r.call_id_len)?,
            cseq: bytes(r.cseq.cast(), r.cseq_len)?,
            user_agent: bytes(r.user_agent.cast(), r.user_agent_len)?,
            credentials: bytes(r.credentials.cast(), r.credentials_len)?,
        })
    }
}

/// # Safety
/// `region` live; `addr` valid for `addr_len`; `req` as for `request`; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_check_request(
    region: *const Region,
    addr: *const u8,
    addr_len: usize,
    req: *const CRequest,
    now_ns: u64,
    out: *mut CCheckResult,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, req, out) = unsafe {
            (
                handle(region)?,
                bytes(addr, addr_len)?,
                request(req)?,
                self::out(out)?,
            )
        };
        let mut res = region.check(addr, now_ns)?;
        if matches!(res.verdict, Verdict::Pass | Verdict::Untracked) {
            res.verdict = match region.guess_request(addr, &req, now_ns) {
                Finding::Clean => res.verdict,
                Finding::Scanner => Verdict::Scanner,
                Finding::Enumeration => Verdict::Enumeration,
            };
        }
        *out = res.into();
        Ok(())
    })
}

/// # Safety
/// As for `sipguard_check_request`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_authenticated(
    region: *const Region,
    addr: *const u8,
    addr_len: usize,
    req: *const CRequest,
    now_ns: u64,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, req) = unsafe { (handle(region)?, bytes(addr, addr_len)?, request(req)?) };
        region.guess_authenticated(addr, &req, now_ns);
        Ok(())
    })
}

/// # Safety
/// As for `sipguard_check_request`; `banned` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_auth_failed(
    region: *const Region,
    addr: *const u8,
    addr_len: usize,
    req: *const CRequest,
    now_ns: u64,
    banned: *mut c_int,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, req, banned) = unsafe {
            (
                handle(region)?,
                bytes(addr, addr_len)?,
                request(req)?,
                out(banned)?,
            )
        };
        *banned = c_int::from(region.guess_auth_failed(addr, &req, now_ns));
        Ok(())
    })
}

/// # Safety
/// As for `sipguard_check_request`; `allowed` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_auth_allowed(
    region: *const Region,
    addr: *const u8,
    addr_len: usize,
    req: *const CRequest,
    now_ns: u64,
    allowed: *mut c_int,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, req, allowed) = unsafe {
            (
                handle(region)?,
                bytes(addr, addr_len)?,
                request(req)?,
                out(allowed)?,
            )
        };
        *allowed = c_int::from(region.guess_auth_allowed(addr, &req, now_ns));
        Ok(())
    })
}

/// # Safety
/// `region` live; `reply` valid for `len`; `dst` for `dst_len`; `buf`
/// writable for `cap`; `out_len` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_reply_out(
    region: *const Region,
    reply: *const c_char,
    len: usize,
    dst: *const u8,
    dst_len: usize,
    now_ns: u64,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, reply, dst, out_len) = unsafe {
            (
                handle(region)?,
                bytes(reply.cast(), len)?,
                bytes(dst, dst_len)?,
                out(out_len)?,
            )
        };
        *out_len = 0;
        if buf.is_null() {
            return Err(Status::Null);
        }
        // SAFETY: non-null and writable for `cap` bytes, per the contract.
        let buf = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), cap) };
        match region.reply_out(reply, dst, now_ns, buf) {
            Outcome::Unchanged => Ok(()),
            Outcome::Rewritten(n) => {
                *out_len = n;
                Ok(())
            }
            Outcome::TooSmall => Err(Status::Full),
        }
    })
}

/// `sipguard_user_info`: one user name as RPC shows it.
#[repr(C)]
pub struct CUserInfo {
    pub name: *const c_char,
    pub name_len: usize,
    pub failures: u32,
    pub throttled_s: u32,
    pub throttles: u32,
    pub trusted_sources: u32,
}

pub type UserFn = extern "C" fn(ctx: *mut c_void, user: *const CUserInfo) -> c_int;

/// # Safety
/// `region` live; `f` callable with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_list_users(
    region: *const Region,
    now_ns: u64,
    max: u32,
    f: Option<UserFn>,
    ctx: *mut c_void,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        let f = f.ok_or(Status::Null)?;
        for u in region.guess_users(now_ns, max as usize) {
            let info = CUserInfo {
                name: u.name.as_ptr().cast(),
                name_len: u.name.len(),
                failures: u.failures,
                throttled_s: u.throttled_s,
                throttles: u.throttles,
                trusted_sources: u.trusted_sources,
            };
            if f(ctx, &info) != 0 {
                break;
            }
        }
        Ok(())
    })
}

/// # Safety
/// `region` live; `name` valid for `len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_unthrottle(
    region: *const Region,
    name: *const c_char,
    len: usize,
    now_ns: u64,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, name) = unsafe { (handle(region)?, bytes(name.cast(), len)?) };
        if region.guess_unthrottle(name, now_ns) {
            Ok(())
        } else {
            Err(Status::NotFound)
        }
    })
}
