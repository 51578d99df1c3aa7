//! `weft run --invoke`: results, traps and errors, through the real binary.

use std::process::Command;

fn weft() -> Command {
    Command::new(env!("CARGO_BIN_EXE_weft"))
}

fn example() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello.wat")
}

fn fib(n: u32) -> u64 {
    let (mut a, mut b) = (0u64, 1u64);
    for _ in 0..n {
        (a, b) = (b, a.wrapping_add(b));
    }
    a
}

#[test]
fn invoke_prints_the_results() {
    for n in [0u32, 1, 20, 90] {
        let out = weft()
            .args(["run"])
            .arg(example())
            .args(["--invoke", "fib", &n.to_string()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            fib(n).to_string()
        );
    }
    let out = weft()
        .arg("run")
        .arg(example())
        .args(["--invoke", "add", "0x10", "-3"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap().trim(),
        (16 - 3).to_string()
    );
}

#[test]
fn a_trap_prints_its_message_and_exits_with_the_trap_status() {
    let dir = std::env::temp_dir().join(format!("weft-cli-trap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("trap.wat");
    std::fs::write(
        &file,
        r#"(module (func $divide (export "div") (param i32 i32) (result i32)
             (i32.div_u (local.get 0) (local.get 1))))"#,
    )
    .unwrap();
    let out = weft()
        .arg("run")
        .arg(&file)
        .args(["--invoke", "div", "1", "0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(134), "{stderr}");
    assert!(
        stderr.contains("wasm trap: integer divide by zero"),
        "{stderr}"
    );
    assert!(
        stderr.contains("divide"),
        "the function name is reported: {stderr}"
    );
    let out = weft()
        .arg("run")
        .arg(&file)
        .args(["--invoke", "div", "9", "3"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "3");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_invocations_are_clear_errors() {
    let cases: [&[&str]; 4] = [
        &["--invoke", "nope"],
        &["--invoke", "add", "1"],
        &["--invoke", "add", "1", "x"],
        &["--invoke", "add", "1", "99999999999"],
    ];
    for args in cases {
        let out = weft()
            .arg("run")
            .arg(example())
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{args:?}: {stderr}");
    }
}

#[test]
fn timeout_and_fuel_stop_a_runaway_guest() {
    let dir = std::env::temp_dir().join(format!("weft-cli-spin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("spin.wat");
    std::fs::write(
        &file,
        r#"(module (func (export "spin") (loop $l (br $l))))"#,
    )
    .unwrap();
    let out = weft()
        .arg("run")
        .arg(&file)
        .args(["--timeout", "50ms", "--invoke", "spin"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(134), "{stderr}");
    assert!(stderr.contains("wasm trap: interrupt"), "{stderr}");
    let out = weft()
        .arg("run")
        .arg(&file)
        .args(["--fuel", "100000", "--invoke", "spin"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(134), "{stderr}");
    assert!(
        stderr.contains("all fuel consumed by WebAssembly"),
        "{stderr}"
    );
    let out = weft()
        .arg("run")
        .arg(&file)
        .args(["--timeout", "soon", "--invoke", "spin"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "clap rejects a bad duration");
    std::fs::remove_dir_all(&dir).ok();
}
