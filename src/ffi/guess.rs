//! C ABI of the guessing defences (`include/sipguard.h`, "guessing"
//! section). Same rules as [`crate::ffi`]: every entry point inside
//! `boundary`, every pointer checked.

use crate::engine::Engine;
use crate::ffi::{boundary, byte_test, bytes, handle, out, CCheckResult, Status};
use crate::guess::reply::{Outcome, Reply, Span};
use crate::guess::{PolicyMark, Request, MAX_USER_AGENTS, REQ_IN_DIALOG, REQ_STALE_NONCE};
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};

/// User-Agent values a sipguard_request holds.
pub const SIPGUARD_MAX_USER_AGENTS: usize = 8;
const _: () = assert!(SIPGUARD_MAX_USER_AGENTS == MAX_USER_AGENTS);

/// sipguard_request.flags: it has a To tag (in dialog): its replies are
/// left alone.
pub const SIPGUARD_REQ_IN_DIALOG: u32 = 1;
/// sipguard_request.flags: the auth module calls its nonce stale before
/// looking at the password.
pub const SIPGUARD_REQ_STALE_NONCE: u32 = 2;
const _: () = assert!(SIPGUARD_REQ_IN_DIALOG == REQ_IN_DIALOG && SIPGUARD_REQ_STALE_NONCE == REQ_STALE_NONCE);

/// Borrowed bytes: NULL with length 0 when absent.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CStr {
    /// The bytes (not NUL-terminated).
    pub s: *const c_char,
    /// Their length.
    pub len: usize,
}

impl CStr {
    /// # Safety
    /// `s` null with `len` 0, or valid for `len` bytes for `'a`.
    unsafe fn get<'a>(&self) -> Result<&'a [u8], Status> {
        // SAFETY: per the function contract.
        unsafe { bytes(self.s.cast(), self.len) }
    }

    /// A length without bytes: the one form [`CStr::read`] refuses.
    fn dangling(&self) -> bool {
        self.s.is_null() && self.len != 0
    }

    /// The bytes of a value already tested with [`CStr::dangling`].
    ///
    /// # Safety
    /// Not dangling; `s` valid for `len` bytes for `'a`.
    unsafe fn read<'a>(&self) -> &'a [u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: non-null (not dangling) and valid, per the contract.
        unsafe { std::slice::from_raw_parts(self.s.cast(), self.len) }
    }
}

/// One request, each value as the host's parser gives it to the script (the
/// core parses none of them again). Borrowed for the call.
#[repr(C)]
pub struct CRequest {
    /// The request method.
    pub method: CStr,
    /// $rU
    pub ruri_user: CStr,
    /// $tU; read only when sipguard_request_reads_to_user() says so, so the
    /// host may leave it empty otherwise (and spare parsing the To URI).
    pub to_user: CStr,
    /// From header value (fingerprints only).
    pub from: CStr,
    /// To header value (fingerprints only).
    pub to: CStr,
    /// $ci
    pub call_id: CStr,
    /// CSeq number.
    pub cseq_num: CStr,
    /// CSeq method.
    pub cseq_method: CStr,
    /// Digest user name the auth module will check; empty: no well-formed
    /// digest credentials.
    pub auth_user: CStr,
    /// Their whole header value (hashed only).
    pub credentials: CStr,
    /// Every User-Agent header value, up to SIPGUARD_MAX_USER_AGENTS; slots
    /// past user_agent_count are never read (a host need not clear them).
    pub user_agents: [CStr; SIPGUARD_MAX_USER_AGENTS],
    /// User-Agent headers in the request (may be more than the array holds:
    /// a scanner).
    pub user_agent_count: u32,
    /// SIPGUARD_REQ_* flags.
    pub flags: u32,
}

/// # Safety
/// `req` null or valid, its pointers valid for their lengths.
#[inline(always)] // on every request: no copy of the whole request on return
unsafe fn request<'a>(req: *const CRequest) -> Result<Request<'a>, Status> {
    // SAFETY: per the function contract.
    let r = unsafe { handle(req)? };
    let uas = &r.user_agents[..(r.user_agent_count as usize).min(MAX_USER_AGENTS)];
    // Every request of every check comes through here: one test of all the
    // pointers, then each value is read without one.
    let values = [
        &r.method,
        &r.ruri_user,
        &r.to_user,
        &r.from,
        &r.to,
        &r.call_id,
        &r.cseq_num,
        &r.cseq_method,
        &r.auth_user,
        &r.credentials,
    ];
    let dangling = |any: bool, c: &&CStr| any | c.dangling();
    if values.iter().fold(false, dangling) | uas.iter().fold(false, |any, c| any | c.dangling()) {
        return Err(Status::Null);
    }
    let mut user_agents: [&[u8]; MAX_USER_AGENTS] = [&[]; MAX_USER_AGENTS];
    for (ua, c) in user_agents.iter_mut().zip(uas) {
        // SAFETY: tested above; valid for its length, per the contract.
        *ua = unsafe { c.read() };
    }
    // SAFETY: each tested above; valid for its length, per the contract.
    unsafe {
        Ok(Request {
            method: r.method.read(),
            ruri_user: r.ruri_user.read(),
            to_user: r.to_user.read(),
            from: r.from.read(),
            to: r.to.read(),
            call_id: r.call_id.read(),
            cseq_num: r.cseq_num.read(),
            cseq_method: r.cseq_method.read(),
            user_agents,
            user_agent_count: r.user_agent_count as usize,
            auth_user: r.auth_user.read(),
            credentials: r.credentials.read(),
            flags: r.flags,
        })
    }
}

/// One whole header of a reply (line end included): bytes off..off+len.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct CSpan {
    /// Offset of its first byte in the reply.
    pub off: u32,
    /// Its length in bytes.
    pub len: u32,
}

// The core reads the host's spans in place, as its own `Span`s.
const _: () = assert!(
    std::mem::size_of::<CSpan>() == std::mem::size_of::<Span>()
        && std::mem::align_of::<CSpan>() == std::mem::align_of::<Span>()
        && std::mem::offset_of!(CSpan, off) == std::mem::offset_of!(Span, off)
        && std::mem::offset_of!(CSpan, len) == std::mem::offset_of!(Span, len)
);

impl From<CSpan> for Span {
    fn from(c: CSpan) -> Span {
        Span {
            off: c.off,
            len: c.len,
        }
    }
}

/// sipguard_reply.flags: it carries a stale=true challenge.
pub const SIPGUARD_REPLY_STALE: u32 = 1;
/// sipguard_reply.flags: nonce_id and nonce_pool_flags are set.
pub const SIPGUARD_REPLY_NONCE_ID: u32 = 2;

/// A reply about to leave, as the host's parser read it.
#[repr(C)]
pub struct CReply {
    /// The whole reply.
    pub buf: *const c_char,
    /// Its length.
    pub len: usize,
    /// Its status code.
    pub status: u32,
    /// SIPGUARD_REPLY_* flags.
    pub flags: u32,
    /// Parsed as for sipguard_request.
    pub call_id: CStr,
    /// CSeq number.
    pub cseq_num: CStr,
    /// CSeq method.
    pub cseq_method: CStr,
    /// Host of the To URI ($td).
    pub to_host: CStr,
    /// Host of the From URI ($fd).
    pub from_host: CStr,
    /// The reply's line end: "\r\n" or "\n".
    pub eol: CStr,
    /// Via, From, To, Call-ID, CSeq in order.
    pub keep: *const CSpan,
    /// Spans at keep.
    pub keep_count: usize,
    /// The Server header; len 0: none.
    pub server: CSpan,
    /// Next id of the auth module's nonce counter.
    pub nonce_id: u32,
    /// Its pool number | nonce-count/one-time flags.
    pub nonce_pool_flags: u32,
}

/// sipguard_reply_wanted(): the reply may be an authentication failure to
/// count.
pub const SIPGUARD_REPLY_COUNTED: c_int = 1;
/// sipguard_reply_wanted(): the reply may be rewritten (if it cannot be, it
/// must not leave).
pub const SIPGUARD_REPLY_REWRITABLE: c_int = 2;

/// sipguard_check() plus the request-time defences: a scanner fingerprint
/// (SIPGUARD_SCANNER) or too many distinct user names without credentials
/// (SIPGUARD_ENUMERATION) bans the source now; a request with credentials
/// is noted so that a 401/407/403 reply to it counts as a failure.
///
/// # Safety
/// `region` live; `addr` valid for `addr_len`; `req` as for `request`; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_check_request(
    region: *const Engine,
    addr: *const u8,
    addr_len: usize,
    req: *const CRequest,
    now_ns: u64,
    out: *mut CCheckResult,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, out) = unsafe { (handle(region)?, bytes(addr, addr_len)?, self::out(out)?) };
        // SAFETY: per the function contract.
        let req = unsafe { request(req)? };
        *out = region.check_request(addr, &req, now_ns)?.into();
        Ok(())
    })
}

/// The script authenticated this request: its replies are left alone and
/// the source is trusted for its user name (auth_trust_time).
///
/// # Safety
/// As for `sipguard_check_request`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_authenticated(
    region: *const Engine,
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

/// sipguard_policy_reply() flag: the refusal of one of the module's own
/// policy functions (sipguard_require_tls(), a dial check), not the
/// script's: only its 403 is a policy reply.
pub const SIPGUARD_POLICY_403_ONLY: u32 = 1;

/// This request was refused by policy, a verdict the same for every user
/// (e.g. "403 TLS required"): a reply to it other than a 401/407 challenge
/// (with SIPGUARD_POLICY_403_ONLY in flags: its 403 only) leaves unrewritten
/// and is no authentication failure, when this process sends it (a reply
/// another process sends is judged as usual). Only this request: the next one with
/// its Call-ID and CSeq clears the mark, and so do sipguard_auth_allowed()
/// and sipguard_auth_failed() on it (its password is checked after all).
///
/// # Safety
/// As for `sipguard_check_request`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_policy_reply(
    region: *const Engine,
    req: *const CRequest,
    flags: u32,
    now_ns: u64,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, req) = unsafe { (handle(region)?, request(req)?) };
        let mark = if flags & SIPGUARD_POLICY_403_ONLY != 0 {
            PolicyMark::Refusal403
        } else {
            PolicyMark::Script
        };
        region.guess_policy_reply(&req, mark, now_ns);
        Ok(())
    })
}

/// Count a failed authentication (once per transaction); *banned = 1 if it
/// banned the source.
///
/// # Safety
/// As for `sipguard_check_request`; `banned` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_auth_failed(
    region: *const Engine,
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

/// *allowed = 0 when the request's user name is throttled and this source
/// has not authenticated as it recently: its credentials must not be
/// checked.
///
/// # Safety
/// As for `sipguard_check_request`; `allowed` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_auth_allowed(
    region: *const Engine,
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

/// 1 when the core reads `to_user` of a request with this method and
/// R-URI user (a REGISTER, or no R-URI user), 0 when the host may leave it
/// empty; 0 too for a null method with a non-zero length.
///
/// # Safety
/// `method` valid for `method_len` bytes (or null with 0).
#[no_mangle]
pub unsafe extern "C" fn sipguard_request_reads_to_user(
    method: *const c_char,
    method_len: usize,
    ruri_user_len: usize,
) -> c_int {
    // Only the R-URI user's emptiness matters.
    let ruri_user: &[u8] = if ruri_user_len == 0 { b"" } else { b"u" };
    // SAFETY: per the function contract.
    unsafe {
        byte_test(method, method_len, |m| {
            c_int::from(crate::guess::reads_to_user(m, ruri_user))
        })
    }
}

/// 1 when the host's URI parser finds no user part in this URI (a `sip:` or
/// `sips:` URI without an `@`), so the host may leave `$rU`/`$tU` empty
/// without parsing it; 0 when it must parse (any other form), and for a
/// null URI with a non-zero length.
///
/// # Safety
/// `uri` valid for `uri_len` bytes (or null with 0).
#[no_mangle]
pub unsafe extern "C" fn sipguard_uri_lacks_user(uri: *const c_char, uri_len: usize) -> c_int {
    // SAFETY: per the function contract.
    unsafe { byte_test(uri, uri_len, |u| c_int::from(crate::sip::uri::lacks_user(u))) }
}

/// The user name the guessing defences judge for this request (the digest
/// user name, else `$tU` or `$rU`, see `Request::target_user`): *user_out
/// points into the request's own strings, *len_out its length (0: none).
///
/// # Safety
/// `req` null or valid, its pointers valid for their lengths; the outputs
/// writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_request_target_user(
    req: *const CRequest,
    user_out: *mut *const c_char,
    len_out: *mut usize,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (req, user_out, len_out) = unsafe { (request(req)?, out(user_out)?, out(len_out)?) };
        let user = req.target_user();
        *user_out = user.as_ptr().cast();
        *len_out = user.len();
        Ok(())
    })
}

/// *wanted: whether replies with this status need sipguard_reply_out(): 0
/// no (no parsing needed), SIPGUARD_REPLY_COUNTED (it may be a failure to
/// count), SIPGUARD_REPLY_REWRITABLE (it may be rewritten: if it cannot be,
/// it must not leave).
///
/// # Safety
/// `region` live; `wanted` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_reply_wanted(
    region: *const Engine,
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

/// A reply is about to be sent to dst (4 or 16 address bytes). Counts it as
/// an authentication failure when it is one, and when it would tell an
/// existing user from a missing one, writes its replacement (a digest
/// challenge) into buf and sets *out_len; *out_len = 0: send it unchanged.
/// SIPGUARD_ERR_FULL: buf too small, *out_len is the size needed (call
/// again with a buffer that large; the failure is not counted twice).
///
/// # Safety
/// `region` live; `reply` valid with every pointer valid for its length and
/// every span inside its buffer; `dst` valid for `dst_len`; `buf` writable
/// for `cap`; `out_len` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_reply_out(
    region: *const Engine,
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
            // SAFETY: `keep` valid for `keep_count` spans, per the contract;
            // a `CSpan` has the layout of a `Span` (asserted above).
            unsafe { std::slice::from_raw_parts(handle(r.keep.cast::<Span>())?, r.keep_count) }
        };
        let server = Span::from(r.server);
        if !keep.iter().chain([&server]).all(|s| s.inside(text.len())) {
            return Err(Status::Invalid);
        }
        // SAFETY: per the function contract.
        let reply = unsafe {
            Reply {
                buf: text,
                status: r.status.min(999) as u16,
                stale: r.flags & SIPGUARD_REPLY_STALE != 0,
                call_id: r.call_id.get()?,
                cseq_num: r.cseq_num.get()?,
                cseq_method: r.cseq_method.get()?,
                to_host: r.to_host.get()?,
                from_host: r.from_host.get()?,
                eol: r.eol.get()?,
                keep,
                server: (server.len > 0).then_some(server),
                nonce_id: (r.flags & SIPGUARD_REPLY_NONCE_ID != 0)
                    .then_some((r.nonce_id, r.nonce_pool_flags as u8)),
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

/// One user name with state, as RPC shows it.
#[repr(C)]
pub struct CUserInfo {
    /// The user name; valid during the callback only, not NUL-terminated.
    pub name: *const c_char,
    /// Its length.
    pub name_len: usize,
    /// Failures within user_findtime.
    pub failures: u32,
    /// Remaining throttle in seconds; 0 = not throttled.
    pub throttled_s: u32,
    /// Times throttled.
    pub throttles: u32,
    /// Sources that authenticated as it recently.
    pub trusted_sources: u32,
}

/// Called once per user name; return 0 to continue, non-zero to stop.
pub type UserFn = Option<extern "C" fn(ctx: *mut c_void, user: *const CUserInfo) -> c_int>;

/// Up to max user names with state; return non-zero from fn to stop.
///
/// # Safety
/// `region` live; `f` callable with `ctx`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_list_users(
    region: *const Engine,
    now_ns: u64,
    max: u32,
    f: UserFn,
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

/// Lift a user name's throttle; SIPGUARD_ERR_NOT_FOUND if it had none.
///
/// # Safety
/// `region` live; `name` valid for `len`.
#[no_mangle]
pub unsafe extern "C" fn sipguard_unthrottle(
    region: *const Engine,
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

/// 1 when a WWW-Authenticate / Proxy-Authenticate header value (the part
/// after the name) has a stale=true parameter outside quotes, else 0 (also
/// for a null value with a non-zero length).
///
/// # Safety
/// `value` valid for `len` bytes (or null with 0).
#[no_mangle]
pub unsafe extern "C" fn sipguard_challenge_stale(value: *const c_char, len: usize) -> c_int {
    // SAFETY: per the function contract.
    unsafe {
        byte_test(value, len, |v| {
            c_int::from(crate::guess::reply::challenge_is_stale(v))
        })
    }
}

/// What an outgoing message is, from its first bytes: 0 a request (it
/// does not start with "SIP/", case aside), 100..699 the status of a reply
/// in the form a host writes ("SIP/2.0 ddd "), -1 a reply in another form
/// (the host's parser reads its status). Reads at most 12 bytes; 0 for
/// fewer than 12 or a null buffer.
///
/// # Safety
/// `buf` valid for `len` bytes (or null with 0).
#[no_mangle]
pub unsafe extern "C" fn sipguard_outgoing_status(buf: *const c_char, len: usize) -> c_int {
    // SAFETY: per the function contract.
    unsafe { byte_test(buf, len, crate::guess::reply::outgoing_status) }
}

/// A host could not send a reply that must leave rewritten or not at all
/// (`why`: "it does not parse", "no memory for its rewrite"): logs it at
/// WARNING, at most once a minute in a process, so a prober cannot flood
/// the log. A null or non-UTF-8 `why` is logged as "unknown".
///
/// # Safety
/// `why` is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn sipguard_reply_withheld(why: *const c_char) {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    // Wall seconds of the last line (+1, so 0 means never); process-local.
    static LAST: AtomicU64 = AtomicU64::new(0);
    let _ = std::panic::catch_unwind(|| {
        let now = crate::util::clock::wall_ms() / 1000 + 1;
        let last = LAST.load(Relaxed);
        if last != 0 && now < last + 60 {
            return;
        }
        LAST.store(now, Relaxed);
        // SAFETY: null-checked; NUL-terminated per the contract.
        let why = (!why.is_null())
            .then(|| unsafe { std::ffi::CStr::from_ptr(why) }.to_str().ok())
            .flatten()
            .unwrap_or("unknown");
        crate::util::log::log(
            crate::util::log::Level::Warn,
            format_args!(
                "a reply that would tell an existing user from a missing one was not sent: \
                 {why} (logged at most once a minute)"
            ),
        );
    });
}
