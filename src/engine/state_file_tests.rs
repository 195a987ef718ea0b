//! The two state files of the engine's capabilities (bans:
//! [`crate::flood::state`], suspensions: [`crate::fraud::persist`]) share
//! one policy for damaged files; tested here, where both are known.

use crate::flood::region::{small_flood, Flood};
use crate::flood::state::{load, StateError};
use crate::util::clock::NS_PER_SEC as S;

fn region() -> Flood {
    small_flood(|_| {})
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sipguard-engine-state-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("bans.state")
}

#[test]
fn both_state_files_share_one_corruption_policy() {
    // The same damage, in a ban file and in an account file, is
    // reported the same way.
    let path = tmp("policy");
    let damage = |magic: &str| {
        let mut b = format!("{magic}\n\n# c\njunk\n{}\n", "x".repeat(300)).into_bytes();
        b.extend_from_slice(b"\xff\n");
        b
    };
    std::fs::write(&path, damage("# sipguard state v1")).unwrap();
    let lines = crate::util::log::capture(|| assert_eq!(load(&region(), &path, S), Ok(0)));
    let file = path.display().to_string();
    let bans: Vec<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("sipguard: state_file "))
        .map(|l| l.replacen(&file, "F", 1))
        .collect();
    let acc = path.with_file_name("accounts.state");
    std::fs::write(&acc, damage("# sipguard accounts v1")).unwrap();
    let a = crate::fraud::accounts::Accounts::create(64, Default::default()).unwrap();
    let got = crate::fraud::persist::load(&a, &acc, S).unwrap();
    let accs: Vec<String> = got
        .warnings
        .iter()
        .map(|w| w.replacen(&acc.display().to_string(), "F", 1))
        .collect();
    assert_eq!(
        bans,
        [
            "F:4: expected 4 fields (or 5 with \"prefix\"); line skipped",
            "F:5: line too long; line skipped",
            "F:6: not text; line skipped"
        ]
    );
    assert_eq!(accs[1..], bans[1..], "{accs:?}");
    // A first line not ours: both refuse the file whole and move it aside.
    std::fs::write(&path, "junk\n").unwrap();
    std::fs::write(&acc, "junk\n").unwrap();
    assert!(matches!(load(&region(), &path, S), Err(StateError::Corrupt(m)) if m.contains("line 1")));
    assert!(crate::fraud::persist::load(&a, &acc, S)
        .unwrap_err()
        .contains("line 1"));
    assert!(path.with_extension("corrupt").exists() && acc.with_extension("corrupt").exists());
}
