//! Replays every saved input of every target (`regressions/<target>/*.bin`):
//! inputs that once failed, and hand-made ones that reach deep into each
//! target. Each must now pass (or be skipped by design), so a fixed bug
//! stays fixed.

use std::path::Path;

use weft_fuzz::{Outcome, TARGETS, check};

#[test]
fn every_saved_input_passes() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut replayed = 0;
    for &(name, f) in TARGETS {
        let dir = root.join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "bin"))
            .collect();
        files.sort();
        assert!(
            !files.is_empty(),
            "{name}: no saved inputs in {}",
            dir.display()
        );
        for path in files {
            let data = std::fs::read(&path).unwrap();
            if let Outcome::Failed(why) = check(f, &data) {
                panic!("{}: {why}", path.display());
            }
            replayed += 1;
        }
    }
    assert!(replayed >= TARGETS.len());
}

#[test]
fn a_broken_target_is_caught() {
    // The replay machinery itself: a panicking target is a failure.
    fn boom(_: &[u8]) -> Outcome {
        panic!("boom")
    }
    assert!(matches!(check(boom, b""), Outcome::Failed(m) if m.contains("boom")));
}
