//! What every CLI test file shares.

use std::process::Command;

/// `weft`, with its compiled-module cache in a directory of this test run
/// (never the user's own cache).
pub fn weft_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_weft"));
    c.env(
        "XDG_CACHE_HOME",
        std::env::temp_dir().join(format!("weft-test-cache-{}", std::process::id())),
    );
    c
}
