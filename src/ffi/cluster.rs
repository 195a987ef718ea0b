//! Cluster replication's part of the C ABI ([`crate::engine::cluster`]):
//! the host carries message bodies over its DMQ and says whether each one
//! came from a cluster node. Same rules as [`crate::ffi`]. Not on the
//! per-packet path: these calls allocate (the bodies).

use crate::engine::cluster::Refused;
use crate::engine::Engine;
use crate::ffi::{boundary, bytes, handle, out, Status};
use crate::fraud::Fraud;
use crate::sip::addr::address_bits;
use std::ffi::c_void;
use std::os::raw::{c_char, c_int};
use std::sync::atomic::Ordering::Relaxed;

/// Receives one message body (not NUL-terminated; at most 60 000 bytes);
/// its return value is ignored.
pub type BodyFn = Option<extern "C" fn(ctx: *mut c_void, body: *const c_char, len: usize) -> c_int>;

fn each_body(bodies: &[String], f: BodyFn, ctx: *mut c_void) -> Result<(), Status> {
    let f = f.ok_or(Status::Null)?;
    for b in bodies {
        f(ctx, b.as_ptr().cast(), b.len());
    }
    Ok(())
}

/// The bodies `make` returns, handed to `f` one by one; `*count`: how many.
///
/// # Safety
/// `region` live; `count` writable.
unsafe fn hand_out(
    region: *const Engine,
    f: BodyFn,
    ctx: *mut c_void,
    count: *mut u32,
    make: impl FnOnce(&Engine) -> Result<Vec<String>, Status>,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, count) = unsafe { (handle(region)?, out(count)?) };
        f.ok_or(Status::Null)?;
        let bodies = make(region)?;
        *count = bodies.len() as u32;
        each_body(&bodies, f, ctx)
    })
}

/// Take the changes queued since the last call off the queue and hand them
/// to `f` as message bodies, to send to every peer. Call from one process
/// (the host's timer), at most every ~100 ms. `*count`: bodies handed out.
///
/// # Safety
/// `region` live; `count` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_cluster_outgoing(
    region: *const Engine,
    f: BodyFn,
    ctx: *mut c_void,
    count: *mut u32,
) -> Status {
    // SAFETY: forwarded contract.
    unsafe { hand_out(region, f, ctx, count, |e| Ok(e.cluster_outgoing())) }
}

/// What a received body was.
#[repr(C)]
pub struct CClusterReceived {
    /// 1 changes, 2 a sync request (answer it with sipguard_cluster_snapshot()
    /// to the sender), 3 a snapshot chunk.
    pub message: u32,
    /// 1: the last chunk of a snapshot (a sync completed).
    pub last: u32,
    /// Changes in the body, and those applied (newer than what was known).
    pub changes: u32,
    pub applied: u32,
}

/// A body from `addr` (4 or 16 bytes). `trusted`: 1 when the host found
/// `addr` among its cluster nodes; otherwise the body is counted as
/// refused and changes nothing (SIPGUARD_ERR_INVALID), as does a body that
/// is not ours. SIPGUARD_ERR_NOT_FOUND when clustering is off. `fraud` (may
/// be NULL: suspensions are then not applied) is the toll-fraud handle made
/// on `region` (sipguard_region_fraud()).
///
/// # Safety
/// `region` live; `fraud` NULL or live; `addr`, `body` valid for their
/// lengths; `res` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_cluster_receive(
    region: *const Engine,
    fraud: *const Fraud,
    addr: *const u8,
    addr_len: usize,
    trusted: u32,
    body: *const c_char,
    body_len: usize,
    now_ns: u64,
    res: *mut CClusterReceived,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, addr, body, res) = unsafe {
            (
                handle(region)?,
                bytes(addr, addr_len)?,
                bytes(body.cast(), body_len)?,
                out(res)?,
            )
        };
        // SAFETY: NULL or live, per the function contract.
        let fraud = unsafe { fraud.as_ref() };
        let src = address_bits(addr).ok_or(Status::Invalid)?;
        let r = region
            .cluster_receive(src, trusted == 1, body, now_ns, fraud)
            .map_err(|e| match e {
                Refused::Off => Status::NotFound,
                Refused::Untrusted => Status::Invalid,
                Refused::Bad(why) => {
                    crate::util::log::log(
                        crate::util::log::Level::Warn,
                        format_args!("sipguard: cluster message refused: {why}"),
                    );
                    Status::Invalid
                }
            })?;
        use crate::cluster::wire::Message;
        let (message, last) = match r.message {
            Message::Changes => (1, 0),
            Message::Sync => (2, 0),
            Message::Snapshot { last, .. } => (3, last as u32),
        };
        *res = CClusterReceived {
            message,
            last,
            changes: r.changes as u32,
            applied: r.applied as u32,
        };
        Ok(())
    })
}

/// Hand `f` the body that asks the peers for their current state (send it
/// to every peer when this node joins).
///
/// # Safety
/// `region` live.
#[no_mangle]
pub unsafe extern "C" fn sipguard_cluster_sync_request(
    region: *const Engine,
    f: BodyFn,
    ctx: *mut c_void,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        region.cluster.as_ref().ok_or(Status::NotFound)?;
        each_body(&[region.cluster_sync_request()], f, ctx)
    })
}

/// Hand `f` the current state (bans, throttles, and the suspensions of
/// `fraud`, which may be NULL) as snapshot chunks (each under 60 000 bytes,
/// the last one marked), to send to the peer that asked. `*count`: chunks.
///
/// # Safety
/// `region` live; `fraud` NULL or live; `count` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_cluster_snapshot(
    region: *const Engine,
    fraud: *const Fraud,
    now_ns: u64,
    f: BodyFn,
    ctx: *mut c_void,
    count: *mut u32,
) -> Status {
    // SAFETY: forwarded contract.
    unsafe {
        hand_out(region, f, ctx, count, |e| {
            e.cluster.as_ref().ok_or(Status::NotFound)?;
            // SAFETY: NULL or live, per the function contract.
            Ok(e.cluster_snapshot(now_ns, fraud.as_ref()))
        })
    }
}

/// The replication's figures (RPC sipguard.cluster, statistics).
#[repr(C)]
pub struct CClusterInfo {
    /// Changes waiting in the outgoing queue, and its capacity.
    pub queue_depth: u64,
    pub queue_capacity: u64,
    /// Changes queued so far, and dropped because the queue was full.
    pub queued: u64,
    pub dropped: u64,
    /// Messages and changes sent and received.
    pub msgs_out: u64,
    pub changes_out: u64,
    pub msgs_in: u64,
    pub changes_in: u64,
    /// Received changes applied (newer than what was known).
    pub applied: u64,
    /// Messages refused (not from a cluster node, or not ours).
    pub refused: u64,
    /// Wall ms of the last message sent / received, 0 never.
    pub last_out_ms: u64,
    pub last_in_ms: u64,
    /// Age of the last received change on arrival, and the largest (µs).
    pub lag_last_us: u64,
    pub lag_max_us: u64,
    /// Sync requests answered, snapshots received; 1 once a sync completed.
    pub syncs_served: u64,
    pub syncs_received: u64,
    pub synced: u32,
    /// Peers that sent trusted messages (see sipguard_cluster_peer()).
    pub peers: u32,
}

/// The replication's figures; SIPGUARD_ERR_NOT_FOUND when clustering is off.
///
/// # Safety
/// `region` live; `info` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_cluster_info(region: *const Engine, info: *mut CClusterInfo) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, info) = unsafe { (handle(region)?, out(info)?) };
        let c = region.cluster.as_ref().ok_or(Status::NotFound)?;
        let h = c.head();
        *info = CClusterInfo {
            queue_depth: c.depth(),
            queue_capacity: crate::cluster::QUEUE_CAPACITY as u64,
            queued: h.queued.load(Relaxed),
            dropped: h.dropped.load(Relaxed),
            msgs_out: h.msgs_out.load(Relaxed),
            changes_out: h.changes_out.load(Relaxed),
            msgs_in: h.msgs_in.load(Relaxed),
            changes_in: h.changes_in.load(Relaxed),
            applied: h.applied.load(Relaxed),
            refused: h.refused.load(Relaxed),
            last_out_ms: h.last_out_ms.load(Relaxed),
            last_in_ms: h.last_in_ms.load(Relaxed),
            lag_last_us: h.lag_last_us.load(Relaxed),
            lag_max_us: h.lag_max_us.load(Relaxed),
            syncs_served: h.syncs_served.load(Relaxed),
            syncs_received: h.syncs_received.load(Relaxed),
            synced: h.synced.load(Relaxed) as u32,
            peers: c.peers().len() as u32,
        };
        Ok(())
    })
}

/// One peer that sent trusted messages.
#[repr(C)]
pub struct CClusterPeer {
    /// NUL-terminated address.
    pub addr: [c_char; 48],
    /// Wall ms of its last message, and its messages so far.
    pub last_in_ms: u64,
    pub msgs_in: u64,
}

/// Peer number `index` (0-based); SIPGUARD_ERR_NOT_FOUND past the last.
///
/// # Safety
/// `region` live; `peer` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_cluster_peer(
    region: *const Engine,
    index: u32,
    peer: *mut CClusterPeer,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, peer) = unsafe { (handle(region)?, out(peer)?) };
        let c = region.cluster.as_ref().ok_or(Status::NotFound)?;
        let p = *c.peers().get(index as usize).ok_or(Status::NotFound)?;
        let text = crate::sip::addr::display_address(&p.addr.to_be_bytes());
        let mut addr = [0 as c_char; 48];
        for (d, s) in addr.iter_mut().zip(text.as_str().bytes().take(47)) {
            *d = s as c_char;
        }
        *peer = CClusterPeer {
            addr,
            last_in_ms: p.last_in_ms,
            msgs_in: p.msgs_in,
        };
        Ok(())
    })
}
