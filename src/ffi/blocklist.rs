//! The shared blocklist's part of the C ABI: the reload and what RPC and
//! statistics show. Same rules as [`crate::ffi`]; early drop consults the
//! list through sipguard_drop_check(), and the verdict of sipguard_check()
//! for a listed source is SIPGUARD_BLOCKLISTED.

use crate::engine::Engine;
use crate::ffi::{boundary, handle, out, write_err, Status};
use crate::shm::counters::Counter;
use std::os::raw::c_char;

/// The blocklist as RPC and statistics show it.
#[repr(C)]
pub struct CBlocklistInfo {
    /// Entries of the list in force (duplicates counted once).
    pub entries: u64,
    /// Lists published since start (0: none loaded).
    pub generation: u64,
    /// Requests and packets refused because of the list.
    pub hits: u64,
    /// blocklist_max; 0 when no blocklist_file is set.
    pub max: u64,
}

/// Fill *out with the blocklist's counts.
///
/// # Safety
/// `region` live; `out` writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_blocklist_info_get(
    region: *const Engine,
    out: *mut CBlocklistInfo,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let (region, o) = unsafe { (handle(region)?, self::out(out)?) };
        let b = &region.blocklist;
        *o = CBlocklistInfo {
            entries: b.entries(),
            generation: b.generation(),
            hits: region.counters().get(Counter::Blocklisted),
            max: b.capacity() as u64,
        };
        Ok(())
    })
}

/// Re-read blocklist_file and publish it to every process at once. On
/// error (message in err: "<file>:<line>: ..." for a bad line, "more than
/// blocklist_max" for a long file, "another blocklist reload is in
/// progress") the list in force stays. The outputs (may be NULL) receive
/// the entries loaded and the new generation.
///
/// # Safety
/// `region` live; `err` writable for `err_len`; outputs null or writable.
#[no_mangle]
pub unsafe extern "C" fn sipguard_blocklist_reload(
    region: *const Engine,
    err: *mut c_char,
    err_len: usize,
    entries_out: *mut u64,
    generation_out: *mut u64,
) -> Status {
    boundary(|| {
        // SAFETY: per the function contract.
        let region = unsafe { handle(region)? };
        let (n, generation) = region.blocklist.reload().map_err(|e| {
            write_err(err, err_len, &e);
            Status::Invalid
        })?;
        // SAFETY: null or writable, per the contract.
        unsafe {
            if let Some(o) = entries_out.as_mut() {
                *o = n as u64;
            }
            if let Some(o) = generation_out.as_mut() {
                *o = generation;
            }
        }
        Ok(())
    })
}
