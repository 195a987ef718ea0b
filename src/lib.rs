//! sipguard core: per-source rate limiting and bans, defences against
//! guessing, encrypted-media policy and toll-fraud controls for a forking
//! SIP proxy. See `ARCHITECTURE.md` for the layers.
//!
//! The state every Kamailio process shares lives in one anonymous
//! `MAP_SHARED` mapping made before the fork and owned by the [`engine`]
//! (the toll-fraud handle has one of its own), carved into areas at offsets
//! from a header that is checked when the mapping is made
//! ([`shm::store`]). Every table in it is the one generic 8-way table
//! ([`shm::keyed::KeyedTable`]). The mapping holds only `#[repr(C)]`
//! structs of atomics at fixed offsets ([`shm::Shared`]): atomics are
//! address-free, so they work across processes, whereas a `std` or
//! `parking_lot` lock (process-private futex) or any heap type would not.
//! Mutual exclusion is a per-bucket lock word that survives a killed holder
//! ([`shm::lock`]). The request path allocates nothing and makes no syscall
//! beyond a vDSO clock read.
//!
//! Layers, each using only those listed before it:
//!
//! - substrate: [`util`], [`shm`], [`sip`], [`config`] (value parsers),
//!   [`cluster`] (replication's queue, wire format and who-wins table);
//! - capabilities: [`flood`], [`guess`], [`media`], [`fraud`], [`blocklist`];
//! - [`engine`]: the composition root that owns the capabilities;
//! - [`ffi`]: the C ABI (`include/sipguard.h`).

pub mod config;
pub mod shm;
pub mod sip;
pub mod util;

pub mod cluster;

pub mod blocklist;
pub mod flood;
pub mod fraud;
pub mod guess;
pub mod media;

pub mod engine;

pub mod ffi;
