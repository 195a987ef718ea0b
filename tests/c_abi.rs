//! The C side of the boundary: tests/c/abi_check.c and
//! tests/c/fraud_abi_check.c (and cluster_abi_check.c) are compiled against include/sipguard.h (which
//! tests/header.rs keeps equal to what the Rust declarations generate),
//! linked with the staticlib, and run (under valgrind when installed, which
//! then fails the test on any memory error or leak of the C program's own).
//! Between them they call every exported function and check a real result
//! of each.

use sipguard::ffi::fraud::{CAccountInfo, CDialResult, CDialUri, CFraudStats, FraudSettings};
use sipguard::ffi::guess::{CReply, CRequest, CUserInfo};
use sipguard::ffi::{CCheckResult, CEntryInfo, Settings, Stats};
use sipguard::fraud::accounts::CallTicket;
use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

fn run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn c_program_uses_the_header_and_the_staticlib() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // Its own target dir: the outer cargo may still hold the default one.
    let target = root.join("target/c-abi");
    run(Command::new(env!("CARGO"))
        .current_dir(&root)
        .args(["build", "--release", "--lib", "--target-dir"])
        .arg(&target));
    let exe = target.join("abi_check");
    let defines = [
        ("RUST_CHECK_RESULT_SIZE", size_of::<CCheckResult>()),
        ("RUST_ENTRY_INFO_SIZE", size_of::<CEntryInfo>()),
        ("RUST_ENTRY_INFO_BAN_MS", offset_of!(CEntryInfo, ban_ms)),
        ("RUST_ENTRY_INFO_IDLE_MS", offset_of!(CEntryInfo, idle_ms)),
        ("RUST_STATS_SIZE", size_of::<Stats>()),
        ("RUST_STATS_REGION_BYTES", offset_of!(Stats, region_bytes)),
        ("RUST_SETTINGS_SIZE", size_of::<Settings>()),
        ("RUST_SETTINGS_REGION_BYTES", offset_of!(Settings, region_bytes)),
        ("RUST_REQUEST_SIZE", size_of::<CRequest>()),
        ("RUST_REPLY_SIZE", size_of::<CReply>()),
        ("RUST_USER_INFO_SIZE", size_of::<CUserInfo>()),
        ("RUST_CALL_SIZE", size_of::<CallTicket>()),
        ("RUST_DIAL_RESULT_SIZE", size_of::<CDialResult>()),
        ("RUST_DIAL_RESULT_RATE", offset_of!(CDialResult, rate)),
        ("RUST_ACCOUNT_INFO_SIZE", size_of::<CAccountInfo>()),
        ("RUST_ACCOUNT_INFO_CPM", offset_of!(CAccountInfo, cpm)),
        ("RUST_ACCOUNT_INFO_SINCE", offset_of!(CAccountInfo, since_unix_ms)),
        ("RUST_FRAUD_SETTINGS_SIZE", size_of::<FraudSettings>()),
        ("RUST_FRAUD_STATS_SIZE", size_of::<CFraudStats>()),
        (
            "RUST_SEED_REPORT_SIZE",
            size_of::<sipguard::ffi::baseline::CSeedReport>(),
        ),
        (
            "RUST_ANOMALY_STATS_SIZE",
            size_of::<sipguard::ffi::baseline::CAnomalyStats>(),
        ),
        (
            "RUST_BASELINE_INFO_SIZE",
            size_of::<sipguard::ffi::baseline::CBaselineInfo>(),
        ),
        (
            "RUST_BASELINE_INFO_USUAL_HOUR",
            offset_of!(sipguard::ffi::baseline::CBaselineInfo, usual_hour),
        ),
        ("RUST_DIAL_URI_SIZE", size_of::<CDialUri>()),
        ("RUST_DIAL_URI_PARAMS_LEN", offset_of!(CDialUri, tel_params_len)),
    ];
    let mut cc = Command::new("cc");
    cc.args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-g", "-I"])
        .arg(root.join("include"));
    for (name, value) in defines {
        cc.arg(format!("-D{name}={value}"));
    }
    cc.arg(root.join("tests/c/abi_check.c"))
        .arg(root.join("tests/c/fraud_abi_check.c"))
        .arg(root.join("tests/c/cluster_abi_check.c"))
        .arg(root.join("tests/c/blocklist_abi_check.c"))
        .arg(target.join("release/libsipguard.a"))
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&exe);
    run(&mut cc);
    let valgrind = Command::new("valgrind").arg("--version").output().is_ok();
    let out = if valgrind {
        run(Command::new("valgrind")
            .args([
                "--error-exitcode=9",
                "--errors-for-leak-kinds=definite",
                "--leak-check=full",
                "-q",
            ])
            .arg(&exe))
    } else {
        run(&mut Command::new(&exe))
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("c abi: 0 failures"), "{stdout}");
}
