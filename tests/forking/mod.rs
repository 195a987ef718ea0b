//! Fork helpers for the multi-process tests (`harness = false` programs:
//! the standard harness runs tests on threads, and forking a
//! multi-threaded process is unsafe).

use std::time::{Duration, Instant};

/// A child that has not finished by then is wedged: the test fails.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Fork a child running `f`; the child exits 0 unless `f` panics.
pub fn spawn(f: impl FnOnce()) -> libc::pid_t {
    // SAFETY: these programs are single-threaded when they fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_ok();
        // SAFETY: leave the child without running the parent's atexit work.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    pid
}

/// Wait for `pid` until the deadline; returns its exit status or None if it is stuck.
pub fn wait(pid: libc::pid_t, deadline: Instant) -> Option<i32> {
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(status);
        }
        if Instant::now() > deadline {
            // SAFETY: kill our own stuck child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub fn wait_all(pids: &[libc::pid_t]) -> Result<(), String> {
    let deadline = Instant::now() + DEADLINE;
    for &pid in pids {
        match wait(pid, deadline) {
            Some(0) => {}
            Some(s) => return Err(format!("child {pid} failed (status {s})")),
            None => return Err(format!("child {pid} did not finish: wedged")),
        }
    }
    Ok(())
}

/// `rounds` times: start `children` processes running `work(child)` (which
/// must stop by itself within 5 s), kill them all a few ms later, mid-update.
pub fn kill_rounds(rounds: u64, children: usize, work: impl Fn(usize)) {
    for round in 0..rounds {
        let pids: Vec<_> = (0..children).map(|c| spawn(|| work(c))).collect();
        std::thread::sleep(Duration::from_millis(3 + round % 7));
        for pid in &pids {
            // SAFETY: kill our own child.
            unsafe { libc::kill(*pid, libc::SIGKILL) };
        }
        for pid in pids {
            wait(pid, Instant::now() + DEADLINE);
        }
    }
}

pub fn check_eq(what: &str, got: u64, want: u64) -> Result<(), String> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: got {got}, want {want}"))
    }
}

pub type Test = fn() -> Result<(), String>;

/// Run the named tests, print one line each and a summary `<suite>: N
/// passed, M failed`; exit 1 if any failed.
pub fn run(suite: &str, tests: &[(&str, Test)]) {
    let (mut passed, mut failed) = (0, 0);
    for (name, test) in tests {
        match test() {
            Ok(()) => {
                passed += 1;
                println!("test {name} ... ok");
            }
            Err(e) => {
                failed += 1;
                println!("test {name} ... FAILED: {e}");
            }
        }
    }
    println!("{suite}: {passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
