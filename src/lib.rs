//! sipguard core: per-source rate limiting and bans for a forking SIP proxy.
//!
//! The state every Kamailio process shares lives in one anonymous
//! `MAP_SHARED` mapping made before the fork ([`region`]). It holds only
//! `#[repr(C)]` structs of atomics at fixed offsets: atomics are
//! address-free, so they work across processes, whereas a `std` or
//! `parking_lot` lock (process-private futex) or any heap type would not.
//! Mutual exclusion is a per-bucket lock word that survives a killed holder
//! ([`lock`]). The request path allocates nothing and makes no syscall
//! beyond a vDSO clock read.
//!
//! The C ABI is in [`ffi`] and `include/sipguard.h`.

pub mod addr;
pub mod atomic_file;
pub mod ban;
pub mod clock;
pub mod config;
pub mod contact;
pub mod counters;
pub mod ffi;
pub mod fingerprint;
pub mod fraud;
pub mod gcra;
pub mod guess;
pub mod guess_config;
pub mod guess_ffi;
pub mod keyed;
pub mod lock;
pub mod log;
pub mod region;
pub mod reply;
pub mod sdp;
pub mod shm;

pub mod state;
pub mod table;
