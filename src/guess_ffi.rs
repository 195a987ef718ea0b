//! C ABI of the guessing defences (`include/sipguard.h`, "guessing"
//! section). Same rules as [`crate::ffi`]: every entry point inside
//! `boundary`, every pointer checked.

use crate::ffi::{boundary, bytes, handle, out, CCheckResult, Status};
use crate::guess::{Finding, Request, MAX_USER_AGENTS};
use crate::region::Region;
use crate::reply::{Outcome, Reply, Span};
use crate::table::Verdict;
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};

/// `sipguard_str`: borrowed bytes (NULL with length 0 when absent).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CStr {
    pub s: *const c_char,
    pub len: usize,
}

impl CStr {
    /// # Safety
    /// `s` null with `len` 0, or valid for `len` bytes for `'a`.
    unsafe fn get<'a>(&self) -> Result<&'a [u8], Status> {
        // SAFETY: per the function contract.
        unsafe { bytes(self.s.cast(), self.len) }
    }
}

/// `sipguard_request`: values of one request as the host parsed them.
#[repr(C)]
pub struct CRequest {
    pub method: CStr,
    pub ruri_user: CStr,
    pub to_user: CStr,
    pub from: CStr,
    pub to: CStr,
    pub call_id: CStr,
    pub cseq_num: CStr,
    pub cseq_method: CStr,
    pub from_tag: CStr,
    pub auth_user: CStr,
    pub credentials: CStr,
    pub user_agents: [CStr; MAX_USER_AGENTS],
    pub user_agent_count: u32,
    pub flags: u32,
}

/// # Safety
/// `req` null or valid, its pointers valid for their lengths.
unsafe fn request<'a>(req: *const CRequest) -> Result<Request<'a>, Status> {
    // SAFETY: per the function contract.
    let r = unsafe { handle(req)? };
    let mut user_agents: [&[u8]; MAX_USER_AGENTS] = [&[]; MAX_USER_AGENTS];
    for (ua, c) in user_agents
        .iter_mut()
        .zip(&r.user_agents)
        .take(r.user_agent_count as usize)
    {
        // SAFETY: each pointer is valid for its length, per the contract.
        *ua = unsafe { c.get()? };
    }
    // SAFETY: each pointer is valid for its length, per the contract.
    unsafe {
        Ok(Request {
            method: r.method.get()?,
            ruri_user: r.ruri_user.get()?,
            to_user: r.to_user.get()?,
            from: r.from.get()?,
            to: r.to.get()?,
            call_id: r.call_id.get()?,
            cseq_num: r.cseq_num.get()?,
            cseq_method: r.cseq_method.get()?,
            from_tag: r.from_tag.get()?,
            user_agents,
            user_agent_count: r.user_agent_count as usize,
            auth_user: r.auth_user.get()?,
            credentials: r.credentials.get()?,
            flags: r.flags,
        })
    }
}

/// `sipguard_reply`: a reply about to leave, as the host parsed it.
#[repr(C)]
pub struct CReply {
    pub buf: *const c_char,
    pub len: usize,
    pub status: u32,
    pub flags: u32,
    pub call_id: CStr,
    pub cseq_num: CStr,
    pub cseq_method: CStr,
    pub from_tag: CStr,
    pub to_host: CStr,
    pub from_host: CStr,
    pub eol: CStr,
    pub keep: *const Span,
    pub keep_count: usize,
    pub server: Span,
    pub nonce_id: u32,
    pub nonce_pool_flags: u32,
}

/// `SIPGUARD_REPLY_STALE`
pub const REPLY_STALE: u32 = 1;
/// `SIPGUARD_REPLY_NONCE_ID`: `nonce_id` and `nonce_pool_flags` are set.
pub const REPLY_NONCE_ID: u32 = 2;

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
/// `region` live; `wanted` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_reply_wanted(
    region: *const Region,
    status: u32,
    wanted: *mut c_int,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, wanted) = unsafe { (handle(region)?, out(wanted)?) };
        *wanted = c_int::from(region.reply_wanted(status.min(999) as u16));
        Ok(())
    })
}

/// # Safety
/// `region` live; `reply` valid with every pointer valid for its length and
/// every span inside its buffer; `dst` valid for `dst_len`; `buf` writable
/// for `cap`; `out_len` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_reply_out(
    region: *const Region,
    reply: *const CReply,
    dst: *const u8,
    dst_len: usize,
    now_ns: u64,
    buf: *mut c_char,
    cap: usize,
    out_len: *mut usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, r, dst, out_len) = unsafe {
            (
                handle(region)?,
                handle(reply)?,
                bytes(dst, dst_len)?,
                out(out_len)?,
            )
        };
        *out_len = 0;
        if buf.is_null() && cap > 0 {
            return Err(Status::Null);
        }
        // SAFETY: per the function contract.
        let text = unsafe { bytes(r.buf.cast(), r.len)? };
        let keep: &[Span] = if r.keep_count == 0 {
            &[]
        } else {
            // SAFETY: `keep` valid for `keep_count` spans, per the contract.
            unsafe { std::slice::from_raw_parts(handle(r.keep)?, r.keep_count) }
        };
        if !keep.iter().chain([&r.server]).all(|s| s.inside(text.len())) {
            return Err(Status::Invalid);
        }
        // SAFETY: per the function contract.
        let reply = unsafe {
            Reply {
                buf: text,
                status: r.status.min(999) as u16,
                stale: r.flags & REPLY_STALE != 0,
                call_id: r.call_id.get()?,
                cseq_num: r.cseq_num.get()?,
                cseq_method: r.cseq_method.get()?,
                from_tag: r.from_tag.get()?,
                to_host: r.to_host.get()?,
                from_host: r.from_host.get()?,
                eol: r.eol.get()?,
                keep,
                server: (r.server.len > 0).then_some(r.server),
                nonce_id: (r.flags & REPLY_NONCE_ID != 0).then_some((r.nonce_id, r.nonce_pool_flags as u8)),
            }
        };
        let buf: &mut [u8] = if cap == 0 {
            &mut []
        } else {
            // SAFETY: non-null and writable for `cap` bytes, per the contract.
            unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), cap) }
        };
        match region.reply_out(&reply, dst, now_ns, buf) {
            Outcome::Unchanged => Ok(()),
            Outcome::Rewritten(n) => {
                *out_len = n;
                Ok(())
            }
            Outcome::TooSmall(n) => {
                *out_len = n;
                Err(Status::Full)
            }
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
