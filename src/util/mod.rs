//! Process-local helpers every layer may use: clocks, the log callback,
//! atomic file replacement.

pub mod atomic_file;
pub mod clock;
pub mod log;
