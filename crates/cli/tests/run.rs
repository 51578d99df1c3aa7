//! `weft run --invoke`: results, traps and errors, through the real binary.

mod common;
use common::weft_cmd;

use std::process::Command;

fn weft() -> Command {
    weft_cmd()
}

fn example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
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
            .args(["run", "--invoke", "fib"])
            .arg(example("fib.wat"))
            .arg(n.to_string())
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
        .args(["run", "--invoke", "add"])
        .arg(example("fib.wat"))
        .args(["0x10", "-3"])
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
        .args(["run", "--invoke", "div"])
        .arg(&file)
        .args(["1", "0"])
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
        .args(["run", "--invoke", "div"])
        .arg(&file)
        .args(["9", "3"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "3");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bad_invocations_are_clear_errors() {
    let cases: [(&str, &[&str]); 5] = [
        ("nope", &[]),
        ("add", &["1"]),
        ("add", &["1", "x"]),
        ("add", &["1", "99999999999"]),
        ("memory", &[]),
    ];
    for (name, args) in cases {
        let out = weft()
            .args(["run", "--invoke", name])
            .arg(example("fib.wat"))
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name} {args:?}: {stderr}");
        assert!(stderr.starts_with("error: "), "{name} {args:?}: {stderr}");
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
        .args(["run", "--timeout", "50ms", "--invoke", "spin"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(134), "{stderr}");
    assert!(stderr.contains("wasm trap: interrupt"), "{stderr}");
    let out = weft()
        .args(["run", "--fuel", "100000", "--invoke", "spin"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(134), "{stderr}");
    assert!(
        stderr.contains("all fuel consumed by WebAssembly"),
        "{stderr}"
    );
    let out = weft()
        .args(["run", "--timeout", "soon", "--invoke", "spin"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "a bad duration is a weft error");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_wasi_hello_example_prints_and_exits_zero() {
    let out = weft()
        .arg("run")
        .arg(example("hello.wat"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "Hello, world!\n");
}

#[test]
fn a_wasi_program_gets_args_env_dirs_and_its_exit_status() {
    let dir = std::env::temp_dir().join(format!("weft-cli-wasi-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data/in.txt"), "abc").unwrap();
    // Writes argv[1] and $GREETING to stdout, copies data/in.txt to
    // data/out.txt, and exits with status 7.
    let wat = r#"(module
      (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "environ_get" (func $environ_get (param i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "path_open" (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
      (memory (export "memory") 1)
      (data (i32.const 900) "in.txt")
      (data (i32.const 910) "out.txt")
      (func $strlen (param i32) (result i32) (local i32)
        (block $d (loop $l
          (br_if $d (i32.eqz (i32.load8_u (i32.add (local.get 0) (local.get 1)))))
          (local.set 1 (i32.add (local.get 1) (i32.const 1)))
          (br $l)))
        (local.get 1))
      (func $print (param i32)
        (i32.store (i32.const 0) (local.get 0))
        (i32.store (i32.const 4) (call $strlen (local.get 0)))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
      (func (export "_start") (local i32)
        ;; argv pointers at 100, strings at 200
        (drop (call $args_get (i32.const 100) (i32.const 200)))
        (call $print (i32.load (i32.const 104)))
        ;; environ pointers at 400, strings at 500
        (drop (call $environ_get (i32.const 400) (i32.const 500)))
        (call $print (i32.load (i32.const 400)))
        ;; open data/in.txt (preopen fd 3), read 3 bytes to 1000
        (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 900) (i32.const 6)
          (i32.const 0) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 16)))
        (i32.store (i32.const 20) (i32.const 1000))
        (i32.store (i32.const 24) (i32.const 3))
        (drop (call $fd_read (i32.load (i32.const 16)) (i32.const 20) (i32.const 1) (i32.const 28)))
        ;; create data/out.txt and write them
        (drop (call $path_open (i32.const 3) (i32.const 0) (i32.const 910) (i32.const 7)
          (i32.const 1) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 16)))
        (drop (call $fd_write (i32.load (i32.const 16)) (i32.const 20) (i32.const 1) (i32.const 28)))
        (call $proc_exit (i32.const 7))))"#;
    let file = dir.join("prog.wat");
    std::fs::write(&file, wat).unwrap();
    let out = weft()
        .arg("run")
        .arg(format!("--dir={}::data", dir.join("data").display()))
        .args(["--env", "GREETING=hi"])
        .arg(&file)
        .arg("first-arg")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "first-argGREETING=hi");
    assert_eq!(
        std::fs::read_to_string(dir.join("data/out.txt")).unwrap(),
        "abc"
    );
    // Without --dir the program sees no files: the open fails, nothing is written.
    std::fs::remove_file(dir.join("data/out.txt")).unwrap();
    let out = weft().arg("run").arg(&file).arg("x").output().unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert!(!dir.join("data/out.txt").exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_module_without_start_or_a_missing_dir_is_a_clear_error() {
    let out = weft().arg("run").arg(example("fib.wat")).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("--invoke"), "{stderr}");
    let out = weft()
        .args(["run", "--dir", "/definitely/not/here"])
        .arg(example("hello.wat"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr.matches("/definitely/not/here").count(),
        1,
        "the directory is named once: {stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
}
