//! The `weft` command as a user (and an attacker) drives it: arguments,
//! stdio, output failures, messages, options and subcommands. Each test runs
//! the real binary.

mod common;
use common::weft_cmd;

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn weft() -> Command {
    weft_cmd()
}

/// A temporary directory removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("weft-cli-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, contents: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, contents).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Prints each argument on its own line, then exits with 0 if it was given
/// no pre-opened directory (fd 3 is not a pre-open), 5 if it was.
const ARGS: &str = r#"(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $n i32) (local $i i32) (local $p i32) (local $len i32)
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (local.set $n (i32.load (i32.const 0)))
    (drop (call $get (i32.const 16) (i32.const 1024)))
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $p (i32.load (i32.add (i32.const 16) (i32.mul (local.get $i) (i32.const 4)))))
      (local.set $len (i32.const 0))
      (block $e (loop $s
        (br_if $e (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $len)))))
        (local.set $len (i32.add (local.get $len) (i32.const 1)))
        (br $s)))
      (i32.store8 (i32.add (local.get $p) (local.get $len)) (i32.const 10))
      (i32.store (i32.const 8) (local.get $p))
      (i32.store (i32.const 12) (i32.add (local.get $len) (i32.const 1)))
      (drop (call $write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 4)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l)))
    (call $exit (select (i32.const 0) (i32.const 5)
      (call $prestat (i32.const 3) (i32.const 900))))))"#;

fn lines(out: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(out)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn every_word_after_file_goes_to_the_program() {
    let d = Dir::new("args");
    let prog = d.file("args.wat", ARGS.as_bytes());
    let tail = [
        "--dir", "/", "x", "--help", "--", "--invoke", "f", "-W", "fuel=1",
    ];
    let out = weft().arg("run").arg(&prog).args(tail).output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "no directory was granted: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want = vec!["args.wat".to_string()];
    want.extend(tail.iter().map(|s| s.to_string()));
    assert_eq!(lines(&out.stdout), want);
    // `weft FILE` is `weft run FILE`.
    let out = weft().arg(&prog).args(["--dir", "/"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(lines(&out.stdout), ["args.wat", "--dir", "/"]);
    // Options before FILE are weft's: this one does grant a directory.
    let out = weft()
        .args(["run", "--dir"])
        .arg(&d.0)
        .arg(&prog)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(5));
    // `--` before FILE ends weft's options; --argv0 renames the program.
    let out = weft()
        .args(["run", "--argv0", "renamed", "--"])
        .arg(&prog)
        .arg("a")
        .output()
        .unwrap();
    assert_eq!(lines(&out.stdout), ["renamed", "a"]);
}

/// Sets NONBLOCK on stdin, reads it (EAGAIN is fine), and exits 0.
const NONBLOCK: &str = r#"(module
  (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $set (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    ;; NONBLOCK is fdflags bit 2.
    (if (call $set (i32.const 0) (i32.const 4)) (then (call $exit (i32.const 10))))
    ;; The guest sees its own flag...
    (drop (call $get (i32.const 0) (i32.const 100)))
    (if (i32.eqz (i32.and (i32.load16_u (i32.add (i32.const 100) (i32.const 2))) (i32.const 4)))
      (then (call $exit (i32.const 11))))
    ;; ...and a read of the empty pipe does not block: EAGAIN (6).
    (i32.store (i32.const 0) (i32.const 200))
    (i32.store (i32.const 4) (i32.const 10))
    (if (i32.ne (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)) (i32.const 6))
      (then (call $exit (i32.const 12))))
    (call $exit (i32.const 0))))"#;

#[test]
fn a_guest_cannot_make_the_hosts_stdin_nonblocking() {
    let d = Dir::new("nonblock");
    let prog = d.file("nb.wat", NONBLOCK.as_bytes());
    let (read_end, write_end) = rustix_pipe();
    // Keep a handle on the read end's file description to look at it after.
    let ours = read_end.try_clone().unwrap();
    let out = weft()
        .arg(&prog)
        .stdin(Stdio::from(read_end))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // SAFETY: F_GETFL on a descriptor we own.
    let fl = unsafe { libc::fcntl(ours.as_raw_fd(), libc::F_GETFL) };
    assert!(fl >= 0);
    assert_eq!(
        fl & libc::O_NONBLOCK,
        0,
        "stdin's file description was changed"
    );
    drop(write_end);
}

fn rustix_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for two descriptors.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: `pipe` just returned these two descriptors, owned by nobody else.
    unsafe {
        use std::os::fd::FromRawFd;
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    }
}

#[test]
fn a_closed_stderr_never_makes_weft_panic() {
    let d = Dir::new("epipe");
    let prog = d.file(
        "deep.wat",
        br#"(module (func $f (export "f") (param i32) (result i32)
             (if (result i32) (i32.eqz (local.get 0)) (then unreachable)
               (else (call $f (i32.sub (local.get 0) (i32.const 1)))))))"#,
    );
    for _ in 0..40 {
        let (r, w) = rustix_pipe();
        drop(r); // nobody will read what weft writes
        let status = weft()
            .args(["run", "--invoke", "f"])
            .arg(&prog)
            .arg("200")
            .stderr(Stdio::from(w))
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(134), "a trap, not a panic (101)");
    }
    // The same with stdout closed while results are printed.
    let (r, w) = rustix_pipe();
    drop(r);
    let status = weft()
        .args(["run", "--invoke", "fib"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/fib.wat"))
        .arg("10")
        .stdout(Stdio::from(w))
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn the_trap_message_and_backtrace_come_in_one_piece() {
    let d = Dir::new("trapmsg");
    let prog = d.file(
        "t.wat",
        br#"(module
          (func $inner (unreachable))
          (func $outer (export "go") (call $inner)))"#,
    );
    let out = weft()
        .args(["run", "--invoke", "go"])
        .arg(&prog)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(134));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("wasm trap: unreachable"), "{err}");
    let inner = err.find("inner").expect("the trapping function");
    let outer = err.rfind("outer").expect("its caller");
    assert!(inner < outer, "innermost first: {err}");
}

fn error_of(args: &[&str], file: &Path) -> (Option<i32>, String) {
    let out = weft().args(args).arg(file).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn messages_are_one_line_and_say_what_is_wrong() {
    let d = Dir::new("msgs");
    let text = d.file("notes.txt", b"these are my notes\n");
    let (code, err) = error_of(&["run"], &text);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("not a WebAssembly module") && err.contains(".wat"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    let component = d.file("c.wasm", b"\0asm\x0d\x00\x01\x00");
    let (code, err) = error_of(&["run"], &component);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("component") && err.contains("not supported"),
        "{err}"
    );
    assert!(
        !err.contains("wasmtime") && !err.contains("--wasm"),
        "no advice that cannot be followed: {err}"
    );

    let broken = d.file("broken.wat", b"(module\n  (func (i32.add)))\n  (oops\n");
    let (code, err) = error_of(&["run"], &broken);
    assert_eq!(code, Some(1));
    assert!(err.contains("broken.wat:"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let hello = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/hello.wat");
    let (code, err) = error_of(&["run", "--timeout", "-1s"], &hello);
    assert_eq!(code, Some(1));
    assert!(err.contains("negative") && err.contains("500ms"), "{err}");
    let (code, err) = error_of(&["run", "--fuel", "-5"], &hello);
    assert_eq!(code, Some(1));
    assert!(err.contains("negative"), "{err}");
    for ok in ["0", "500us", "2.5s"] {
        let out = weft()
            .args(["run", "--timeout", ok])
            .arg(&hello)
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(1), "--timeout {ok} is accepted");
    }
    let (code, err) = error_of(&["run", "--dir", "::x"], &hello);
    assert_eq!(code, Some(1));
    assert!(err.contains("empty"), "{err}");
    let (code, err) = error_of(&["run", "--env", "=v"], &hello);
    assert_eq!(code, Some(1));
    assert!(err.contains("empty"), "{err}");
    let (code, err) = error_of(&["run", "-S", "preview2"], &hello);
    assert_eq!(code, Some(1));
    assert!(err.contains("preview1"), "{err}");
}

#[test]
fn invoke_arguments_and_results_round_trip_exactly() {
    let d = Dir::new("floats");
    let prog = d.file(
        "f.wat",
        br#"(module
          (func (export "id32") (param f32) (result f32) (local.get 0))
          (func (export "id64") (param f64) (result f64) (local.get 0))
          (func (export "two") (param i32) (result i32 i64) (local.get 0) (i64.const -1))
          (func (export "i") (param i32) (result i32) (local.get 0)))"#,
    );
    let call = |f: &str, a: &str| {
        let out = weft()
            .args(["run", "--invoke", f])
            .arg(&prog)
            .arg(a)
            .output()
            .unwrap();
        (
            out.status.code(),
            lines(&out.stdout),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(call("id64", "0.1").1, ["0.1"]);
    assert_eq!(call("id64", "0x1.8p1").1, ["3.0"]);
    assert_eq!(call("id32", "nan:0x200000").1, ["nan:0x200000"]);
    assert_eq!(call("id64", "-nan").1, ["-nan"]);
    assert_eq!(call("id64", "inf").1, ["inf"]);
    assert_eq!(
        call("two", "7").1,
        ["7", "-1"],
        "several results, one per line"
    );
    let (code, _, err) = call("i", "4294967296");
    assert_eq!(code, Some(1));
    assert!(err.contains("out of range"), "{err}");
    assert_eq!(call("i", "4294967295").1, ["-1"]);
}

#[test]
fn wasmtime_style_options_work() {
    let d = Dir::new("opts");
    // -W fuel stops a spin loop; -W timeout too.
    let spin = d.file(
        "spin.wat",
        br#"(module (func (export "_start") (loop (br 0))))"#,
    );
    let out = weft()
        .args(["run", "-W", "fuel=100000"])
        .arg(&spin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(134));
    assert!(String::from_utf8_lossy(&out.stderr).contains("fuel"));
    let out = weft()
        .args(["run", "-W", "timeout=50ms"])
        .arg(&spin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(134));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupt"));
    let out = weft()
        .args(["run", "-W", "bogus=1"])
        .arg(&spin)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));

    // --preload: link another module's exports by name.
    let lib = d.file(
        "lib.wat",
        br#"(module (func (export "seven") (result i32) (i32.const 7)))"#,
    );
    let main = d.file(
        "main.wat",
        br#"(module (import "lib" "seven" (func $s (result i32)))
             (func (export "go") (result i32) (i32.mul (call $s) (i32.const 6))))"#,
    );
    let out = weft()
        .arg("run")
        .arg(format!("--preload=lib={}", lib.display()))
        .args(["--invoke", "go"])
        .arg(&main)
        .output()
        .unwrap();
    assert_eq!(
        lines(&out.stdout),
        ["42"],
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // --dir-ro: reading works, creating a file does not.
    let data = d.0.join("ro");
    std::fs::create_dir_all(&data).unwrap();
    let creat = d.file(
        "creat.wat",
        br#"(module
          (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 0) "new.txt")
          (func (export "_start")
            (call $exit (call $open (i32.const 3) (i32.const 0) (i32.const 0) (i32.const 7)
              (i32.const 1) (i64.const -1) (i64.const -1) (i32.const 0) (i32.const 100)))))"#,
    );
    let ro = weft()
        .arg("run")
        .arg("--dir-ro")
        .arg(&data)
        .arg(&creat)
        .status()
        .unwrap();
    assert_ne!(ro.code(), Some(0), "creating in a read-only dir fails");
    assert!(!data.join("new.txt").exists());
    let rw = weft()
        .arg("run")
        .arg("--dir")
        .arg(&data)
        .arg(&creat)
        .status()
        .unwrap();
    assert_eq!(rw.code(), Some(0));
    assert!(data.join("new.txt").exists());
}

#[test]
fn weft_wast_runs_a_script_and_counts() {
    let d = Dir::new("wast");
    let good = d.file(
        "good.wast",
        br#"(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
                    (func (export "div") (param i32 i32) (result i32) (i32.div_u (local.get 0) (local.get 1))))
            (assert_return (invoke "add" (i32.const 1) (i32.const 2)) (i32.const 3))
            (assert_trap (invoke "div" (i32.const 1) (i32.const 0)) "integer divide by zero")
            (assert_invalid (module (func (result i32) (i64.const 0))) "type mismatch")
            (assert_malformed (module quote "(func") "unexpected end")"#,
    );
    let out = weft().arg("wast").arg(&good).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("5 passed, 0 failed"), "{text}");
    let bad = d.file(
        "bad.wast",
        br#"(module (func (export "one") (result i32) (i32.const 1)))
            (assert_return (invoke "one") (i32.const 2))"#,
    );
    let out = weft().arg("wast").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 passed, 1 failed"));
    // A real spec file, when the testsuite is beside the project.
    let i32_wast =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testsuite/core/i32.wast");
    if i32_wast.exists() {
        let out = weft().arg("wast").arg(&i32_wast).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{text}");
        let passed: usize = text
            .lines()
            .last()
            .and_then(|l| l.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap();
        assert!(passed > 400, "{text}");
    }
}

#[test]
fn help_says_what_weft_is_and_every_subcommand_has_examples() {
    let out = weft().arg("--help").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("WebAssembly runtime"), "{text}");
    for sub in ["run", "validate", "wast"] {
        let out = weft().args([sub, "--help"]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Examples:"), "weft {sub} --help: {text}");
    }
}

#[test]
fn ctrl_c_stops_a_running_guest_with_status_130() {
    let d = Dir::new("sigint");
    let spin = d.file(
        "spin.wat",
        br#"(module (func (export "_start") (loop (br 0))))"#,
    );
    let mut child = weft().arg(&spin).stderr(Stdio::piped()).spawn().unwrap();
    let (status, err) = ctrl_c(&mut child);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("wasm trap: interrupt"), "{err}");
}

#[test]
fn the_command_is_built_on_the_public_api_only() {
    // `[dependencies]` of this crate (tests may use anything as an oracle).
    let toml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let deps = toml
        .split("[dependencies]")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap();
    for internal in ["weft-decoder", "weft-jit", "weft-runtime", "weft-memory"] {
        assert!(!deps.contains(internal), "weft-cli depends on {internal}");
    }
    assert!(deps.contains("weft.workspace") && deps.contains("weft-wasi"));
}

#[test]
fn ctrl_c_stops_a_guest_blocked_reading_stdin() {
    let d = Dir::new("sigint-read");
    let reader = d.file(
        "read.wat",
        br#"(module
          (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
          (memory (export "memory") 1)
          (func (export "_start")
            (i32.store (i32.const 0) (i32.const 100))
            (i32.store (i32.const 4) (i32.const 10))
            (drop (call $read (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
    );
    // stdin is a pipe nobody writes to: the guest blocks in fd_read.
    let mut child = weft()
        .arg(&reader)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (status, err) = ctrl_c(&mut child);
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(err.contains("interrupt"), "{err}");
}

/// Waits 300 ms (the guest is running or blocked by then), sends the child
/// SIGINT, and returns how it ended and its stderr (a failsafe kills it
/// after 60 s).
fn ctrl_c(child: &mut std::process::Child) -> (std::process::ExitStatus, String) {
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: sending SIGINT to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("Ctrl-C did not stop the guest");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (status, err)
}

/// `weft compile` writes precompiled code that `weft run` loads only with
/// `--allow-precompiled`, and only for the settings it was made for; and a
/// second `weft run` of a module loads it from the cache instead of
/// compiling (what the runtime logs under WEFT_LOG says which happened).
#[test]
fn precompiled_code_and_the_compiled_module_cache() {
    let dir = Dir::new("precompiled");
    let wat = dir.file("args.wat", ARGS.as_bytes());
    let cwasm = dir.0.join("args.cwasm");
    let out = weft().args(["compile"]).arg(&wat).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(cwasm.exists());
    let out = weft().arg("run").arg(&cwasm).arg("x").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("--allow-precompiled"), "{err}");
    let out = weft()
        .args(["run", "--allow-precompiled"])
        .arg(&cwasm)
        .args(["x", "--y"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(lines(&out.stdout), ["args.cwasm", "x", "--y"]);
    // Fuel metering changes the code: refused, saying why.
    let out = weft()
        .args(["run", "--fuel", "1000000", "--allow-precompiled"])
        .arg(&cwasm)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        err.contains("consume_fuel") && err.lines().count() == 1,
        "{err}"
    );

    // The cache, in a directory of its own.
    let cache = dir.0.join("cache");
    let run = |extra: &[&str]| {
        let out = weft()
            .env("XDG_CACHE_HOME", &cache)
            .env("WEFT_LOG", "weft_runtime=debug")
            .arg("run")
            .args(extra)
            .arg(&wat)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let first = run(&[]);
    // The compile event carries the compile time (`elapsed_us`).
    assert!(
        first.contains("elapsed_us") && !first.contains("from the cache"),
        "{first}"
    );
    let second = run(&[]);
    assert!(
        second.contains("from the cache") && !second.contains("elapsed_us"),
        "{second}"
    );
    let skipped = run(&["--no-cache"]);
    assert!(
        skipped.contains("elapsed_us") && !skipped.contains("from the cache"),
        "{skipped}"
    );
    assert_eq!(std::fs::read_dir(cache.join("weft")).unwrap().count(), 1);
}
