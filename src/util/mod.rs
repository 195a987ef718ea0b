//! Process-local helpers every layer may use: clocks, the log callback,
//! the state files' writer and reader.

pub mod atomic_file;
pub mod clock;
pub mod fixed_buf;
pub mod log;
pub mod state_file;
