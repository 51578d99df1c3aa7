//! The C test programs of `tests/programs/`, compiled to `wasm32-wasi` with
//! clang and wasi-libc at test time and run under weft; where the behaviour
//! should match, also compiled natively with gcc (or `cc`) and compared.
//!
//! Without clang and a wasi-libc sysroot these tests print a `SKIPPED` line
//! to stderr and pass, unless `WEFT_REQUIRE_WASI_CC=1` is set (CI sets it
//! once it installs the toolchain), in which case they fail.
//!
//! Overrides: `WEFT_WASI_CC` (default `clang`), `WEFT_WASI_SYSROOT` (passed
//! as `--sysroot`; by default clang's own, e.g. Debian's `wasi-libc`),
//! `WEFT_NATIVE_CC` (default `cc`).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use weft::{Engine, Module};
use weft_wasi::{OutputPipe, WasiCtxBuilder};

fn programs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/programs")
}

fn out_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("wasi-programs");
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Prints past the test harness's output capture, so a skip is visible.
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

fn required() -> bool {
    std::env::var("WEFT_REQUIRE_WASI_CC").is_ok_and(|v| v == "1")
}

enum Built {
    Ok(PathBuf),
    Unavailable(String),
}

/// Compiled programs by (name, is wasm): the file, or why it could not be built.
type Cache = Mutex<HashMap<(String, bool), Result<PathBuf, String>>>;

/// Compiles `tests/programs/NAME.c` once per test binary run.
fn build(name: &str, wasm: bool) -> Built {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
    let r = cache
        .entry((name.to_string(), wasm))
        .or_insert_with(|| compile(name, wasm))
        .clone();
    match r {
        Ok(p) => Built::Ok(p),
        Err(e) => Built::Unavailable(e),
    }
}

/// Programs named `simd_*` are built with `-O3` (auto-vectorised) and, for
/// wasm, `-msimd128`.
fn is_simd(name: &str) -> bool {
    name.starts_with("simd_")
}

fn compile(name: &str, wasm: bool) -> Result<PathBuf, String> {
    let src = programs_dir().join(format!("{name}.c"));
    let opt = if is_simd(name) { "-O3" } else { "-O2" };
    let (out, mut cmd) = if wasm {
        let cc = std::env::var("WEFT_WASI_CC").unwrap_or_else(|_| "clang".into());
        let mut cmd = Command::new(&cc);
        cmd.args(["--target=wasm32-wasi", opt]);
        if is_simd(name) {
            cmd.arg("-msimd128");
        }
        if let Ok(sysroot) = std::env::var("WEFT_WASI_SYSROOT") {
            cmd.arg(format!("--sysroot={sysroot}"));
        }
        (out_dir().join(format!("{name}.wasm")), cmd)
    } else {
        let cc = std::env::var("WEFT_NATIVE_CC").unwrap_or_else(|_| "cc".into());
        let mut cmd = Command::new(cc);
        cmd.arg(opt);
        (out_dir().join(format!("{name}.native")), cmd)
    };
    cmd.arg("-o").arg(&out).arg(&src);
    match cmd.output() {
        Ok(o) if o.status.success() => Ok(out),
        Ok(o) => Err(format!(
            "{:?} failed: {}",
            cmd,
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("cannot run {:?}: {e}", cmd.get_program())),
    }
}

/// The compiled wasm program, or `None` after printing why it is skipped.
fn wasm_program(name: &str) -> Option<PathBuf> {
    match build(name, true) {
        Built::Ok(p) => Some(p),
        Built::Unavailable(why) => {
            assert!(
                !required(),
                "WEFT_REQUIRE_WASI_CC=1 but {name}.c cannot be built for wasm32-wasi: {why}"
            );
            say(&format!(
                "SKIPPED: C program {name}: no wasm32-wasi C toolchain \
                 (install clang, lld, wasi-libc and libclang-rt-dev-wasm32): {why}"
            ));
            None
        }
    }
}

fn native_program(name: &str) -> Option<PathBuf> {
    match build(name, false) {
        Built::Ok(p) => Some(p),
        Built::Unavailable(why) => {
            say(&format!(
                "SKIPPED: native comparison for {name}: no native C compiler: {why}"
            ));
            None
        }
    }
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

fn engine() -> &'static Engine {
    static E: OnceLock<Engine> = OnceLock::new();
    E.get_or_init(Engine::default)
}

/// Runs a program under weft; `setup` adds arguments, environment and
/// pre-opens (argv[0] is already set to the file name).
fn run_wasm(path: &Path, setup: impl FnOnce(&mut WasiCtxBuilder)) -> Run {
    let module = Module::from_file(engine(), path).unwrap();
    let out = OutputPipe::new();
    let err = OutputPipe::new();
    let mut b = WasiCtxBuilder::new();
    b.arg(path.file_name().unwrap())
        .stdout(out.clone())
        .stderr(err.clone());
    setup(&mut b);
    let status = weft_wasi::run_command(engine(), &module, b.build()).unwrap();
    Run {
        status,
        stdout: out.contents_string(),
        stderr: err.contents_string(),
    }
}

fn run_native(path: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let o = Command::new(path)
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        status: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

#[test]
fn hello() {
    let Some(wasm) = wasm_program("hello") else {
        return;
    };
    let r = run_wasm(&wasm, |_| {});
    assert_eq!(r.status, 0);
    assert_eq!(r.stdout, "Hello, world!\n");
    if let Some(native) = native_program("hello") {
        let n = run_native(&native, &[], &[]);
        assert_eq!((n.status, n.stdout), (r.status, r.stdout));
    }
}

#[test]
fn args_and_env() {
    let Some(wasm) = wasm_program("args_env") else {
        return;
    };
    let args = ["one", "two words", "", "ünïcödé"];
    let env = [
        ("WEFT_TEST_A", "alpha"),
        ("WEFT_TEST_EMPTY", ""),
        ("OTHER", "x=y"),
    ];
    let r = run_wasm(&wasm, |b| {
        b.args(args).envs(env);
    });
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(
        r.stdout,
        "argc=5\nargv[1]=[one]\nargv[2]=[two words]\nargv[3]=[]\nargv[4]=[ünïcödé]\n\
         WEFT_TEST_A=[alpha]\nWEFT_TEST_B unset\nWEFT_TEST_EMPTY=[]\nWEFT_TEST_MISSING unset\n\
         WEFT_TEST_* count=2\n"
    );
    if let Some(native) = native_program("args_env") {
        let n = run_native(&native, &args, &env);
        assert_eq!((n.status, n.stdout), (r.status, r.stdout));
    }
}

#[test]
fn exit_codes() {
    let Some(wasm) = wasm_program("exit_code") else {
        return;
    };
    let native = native_program("exit_code");
    for status in [0, 1, 3, 42, 125] {
        let s = status.to_string();
        let r = run_wasm(&wasm, |b| {
            b.arg(&s);
        });
        assert_eq!(r.status, status);
        assert_eq!(
            r.stdout,
            format!("exiting with {status}\n"),
            "stdout is flushed before exit"
        );
        if let Some(native) = &native {
            let n = run_native(native, &[&s], &[]);
            assert_eq!((n.status, n.stdout), (r.status, r.stdout));
        }
    }
}

#[test]
fn clock_and_random() {
    let Some(wasm) = wasm_program("clock_random") else {
        return;
    };
    let r = run_wasm(&wasm, |_| {});
    let expected = "realtime ok\ntime ok\nmonotonic ok\nsleep ok\nresolution ok\nrandom ok\n";
    assert_eq!(r.stdout, expected);
    assert_eq!(r.status, 0);
    if let Some(native) = native_program("clock_random") {
        let n = run_native(&native, &[], &[]);
        assert_eq!((n.status, n.stdout), (0, expected.to_string()));
    }
}

#[test]
fn simd_kernels_match_native() {
    let Some(wasm) = wasm_program("simd_kernels") else {
        return;
    };
    // The build really uses SIMD: without it the module is invalid.
    let mut no_simd = weft::Config::new();
    no_simd.wasm_simd(false);
    let no_simd = Engine::new(&no_simd).unwrap();
    assert!(matches!(
        Module::from_file(&no_simd, &wasm),
        Err(weft::Error::Invalid { .. })
    ));
    let r = run_wasm(&wasm, |_| {});
    assert_eq!(r.status, 0, "{}", r.stderr);
    assert_eq!(r.stdout.lines().count(), 10, "{}", r.stdout);
    if let Some(native) = native_program("simd_kernels") {
        let n = run_native(&native, &[], &[]);
        assert_eq!((n.status, n.stdout), (r.status, r.stdout));
    }
}

#[test]
fn file_operations_in_a_preopened_dir() {
    let Some(wasm) = wasm_program("fileops") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let r = run_wasm(&wasm, |b| {
        b.arg("/data")
            .preopened_dir(tmp.path(), "/data", false)
            .unwrap();
    });
    assert_eq!(r.status, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(
        r.stdout.ends_with("ls work: result.txt:f\ndone\n"),
        "{}",
        r.stdout
    );
    // The file system effects, seen from the host.
    let entries: Vec<_> = std::fs::read_dir(tmp.path().join("work"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(entries, ["result.txt"]);
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("work/result.txt")).unwrap(),
        "LINE one\nline"
    );
    if let Some(native) = native_program("fileops") {
        let ntmp = tempfile::tempdir().unwrap();
        let n = run_native(&native, &[ntmp.path().to_str().unwrap()], &[]);
        assert_eq!((n.status, &n.stdout), (r.status, &r.stdout));
    }
}

#[test]
fn copy_upper_reads_writes_and_exits() {
    let Some(wasm) = wasm_program("copy_upper") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("in.txt"), "hello, weft\n").unwrap();
    let r = run_wasm(&wasm, |b| {
        b.args(["in.txt", "out.txt", "7"])
            .preopened_dir(tmp.path(), ".", false)
            .unwrap();
    });
    assert_eq!(r.status, 7, "{}", r.stderr);
    assert_eq!(r.stdout, "copied 12 bytes from in.txt to out.txt\n");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("out.txt")).unwrap(),
        "HELLO, WEFT\n"
    );
}

#[test]
fn sandbox_escapes_are_refused() {
    let Some(wasm) = wasm_program("sandbox_escape") else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let sandbox = tmp.path().join("sandbox");
    let outside = tmp.path().join("outside");
    let ro = tmp.path().join("ro");
    for d in [&sandbox, &outside, &ro] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(outside.join("secret.txt"), "secret").unwrap();
    std::fs::write(ro.join("data.txt"), "data").unwrap();
    std::os::unix::fs::symlink(&outside, sandbox.join("escape")).unwrap();
    let r = run_wasm(&wasm, |b| {
        b.args(["/sandbox", "/ro"])
            .preopened_dir(&sandbox, "/sandbox", false)
            .unwrap()
            .preopened_dir(&ro, "/ro", true)
            .unwrap();
    });
    assert_eq!(r.status, 0, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    let refused = r
        .stdout
        .lines()
        .filter(|l| l.contains(": refused ("))
        .count();
    assert_eq!(refused, 23, "{}", r.stdout);
    assert!(r.stdout.ends_with("0 escape(s)\n"), "{}", r.stdout);
    // Nothing outside was touched; the read-only directory is unchanged.
    let outside_now: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(outside_now, ["secret.txt"]);
    assert_eq!(
        std::fs::read_to_string(outside.join("secret.txt")).unwrap(),
        "secret"
    );
    assert!(!tmp.path().join("created.txt").exists());
    assert!(!tmp.path().join("evil").exists());
    assert_eq!(std::fs::read_dir(&ro).unwrap().count(), 1);
    assert_eq!(
        std::fs::read_to_string(ro.join("data.txt")).unwrap(),
        "data"
    );
}
