//! `cargo xtask fuzz TARGET|all [--time SECONDS] [--seed N]`: runs the
//! weft-fuzz driver (release build) and, if it dies by a signal — a crash
//! Rust code cannot catch — saves the input it was running as a regression.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Runs the driver with `args` in `profile` (`--release` or none).
pub fn run(root: &Path, args: &[String], release: bool) -> Result<()> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root).args(["run", "-q", "-p", "weft-fuzz"]);
    if release {
        cmd.arg("--release");
    }
    cmd.arg("--").args(args);
    let status = cmd.status().context("could not run cargo")?;
    if status.success() {
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    if let Some(sig) = status.signal() {
        // The driver wrote the input it was running before running it.
        let mut saved = Vec::new();
        for entry in std::fs::read_dir(root.join("target/fuzz"))
            .into_iter()
            .flatten()
        {
            let path = entry?.path();
            let Some(target) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".current"))
            else {
                continue;
            };
            let data = std::fs::read(&path)?;
            let hash = data.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
            let dir = root.join("crates/fuzz/regressions").join(target);
            std::fs::create_dir_all(&dir)?;
            let out = dir.join(format!("{hash:016x}.bin"));
            std::fs::write(&out, &data)?;
            saved.push(out.display().to_string());
        }
        bail!(
            "the fuzz driver died with signal {sig}; input saved as {}",
            saved.join(", ")
        );
    }
    bail!("the fuzz driver found a failure (see above; the input is saved)")
}
