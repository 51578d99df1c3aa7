//! WASI through real wasm: hand-written WAT modules, so these always run
//! (no C compiler needed).

use weft::{Engine, Instance, Linker, Module, Store};
use weft_wasi::{DeadlineExceeded, Errno, I32Exit, OutputPipe, WasiCtx, WasiCtxBuilder};

fn engine() -> Engine {
    Engine::default()
}

#[test]
fn hello_fixture_prints_and_returns() {
    let engine = engine();
    let module = Module::from_file(
        &engine,
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hello.wat"),
    )
    .unwrap();
    let out = OutputPipe::new();
    let ctx = WasiCtxBuilder::new().stdout(out.clone()).build();
    let status = weft_wasi::run_command(&engine, &module, ctx).unwrap();
    assert_eq!(status, 0);
    assert_eq!(out.contents_string(), "Hello, world!\n");
}

#[test]
fn proc_exit_ends_the_run_with_its_status() {
    let engine = engine();
    let module = Module::new(
        &engine,
        r#"(module
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (func (export "_start")
              (call $exit (i32.const 42))
              unreachable))"#,
    )
    .unwrap();
    let status = weft_wasi::run_command(&engine, &module, WasiCtx::builder().build()).unwrap();
    assert_eq!(status, 42);

    // The embedder sees `Error::Host(I32Exit)`, and the store stays usable.
    let mut store = Store::new(&engine, WasiCtxBuilder::new().build());
    let mut linker = Linker::new();
    weft_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    let err = start.call(&mut store, ()).unwrap_err();
    assert_eq!(I32Exit::from_error(&err), Some(42));
    assert!(err.to_string().contains("42"), "{err}");
    let err = start.call(&mut store, ()).unwrap_err();
    assert_eq!(I32Exit::from_error(&err), Some(42));
}

/// A module exporting thin wrappers of a few WASI functions, so the tests
/// can call them with chosen arguments.
const PROBE: &str = r#"(module
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_filestat_get"
    (func $path_filestat_get (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_symlink"
    (func $path_symlink (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_unlink_file"
    (func $path_unlink_file (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_create_directory"
    (func $path_create_directory (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read"
    (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close"
    (func $fd_close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "random_get"
    (func $random_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)

  ;; open(dirfd, path, len, oflags, rights) -> errno; the new fd at 0x100.
  (func (export "open") (param i32 i32 i32 i32 i64) (result i32)
    (call $path_open (local.get 0) (i32.const 1) (local.get 1) (local.get 2)
      (local.get 3) (local.get 4) (i64.const -1) (i32.const 0) (i32.const 0x100)))
  (func (export "stat") (param i32 i32 i32 i32) (result i32)
    (call $path_filestat_get (local.get 0) (local.get 1) (local.get 2) (local.get 3)
      (i32.const 0x200)))
  (func (export "symlink") (param i32 i32 i32 i32 i32) (result i32)
    (call $path_symlink (local.get 0) (local.get 1) (local.get 2) (local.get 3) (local.get 4)))
  (func (export "unlink") (param i32 i32 i32) (result i32)
    (call $path_unlink_file (local.get 0) (local.get 1) (local.get 2)))
  (func (export "mkdir") (param i32 i32 i32) (result i32)
    (call $path_create_directory (local.get 0) (local.get 1) (local.get 2)))
  ;; write(fd, iovs, n) / read(fd, iovs, n): the count at 0x300.
  (func (export "write") (param i32 i32 i32) (result i32)
    (call $fd_write (local.get 0) (local.get 1) (local.get 2) (i32.const 0x300)))
  (func (export "read") (param i32 i32 i32) (result i32)
    (call $fd_read (local.get 0) (local.get 1) (local.get 2) (i32.const 0x300)))
  (func (export "close") (param i32) (result i32)
    (call $fd_close (local.get 0)))
  (func (export "args_sizes") (param i32 i32) (result i32)
    (call $args_sizes_get (local.get 0) (local.get 1)))
  (func (export "random") (param i32 i32) (result i32)
    (call $random_get (local.get 0) (local.get 1)))
)"#;

struct Probe {
    store: Store<WasiCtx>,
    instance: Instance,
    _tmp: tempfile::TempDir,
    sandbox: std::path::PathBuf,
    outside: std::path::PathBuf,
}

const PATH_AT: u32 = 0x1000;
const PATH2_AT: u32 = 0x1800;

impl Probe {
    /// `tmp/sandbox` pre-opened read-write as fd 3, `tmp/ro` read-only as
    /// fd 4; `tmp/outside/secret.txt` exists.
    fn new() -> Probe {
        let tmp = tempfile::tempdir().unwrap();
        let sandbox = tmp.path().join("sandbox");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&sandbox).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::create_dir(tmp.path().join("ro")).unwrap();
        std::fs::write(outside.join("secret.txt"), "secret").unwrap();
        std::fs::write(sandbox.join("inside.txt"), "inside").unwrap();
        std::fs::write(tmp.path().join("ro/ro.txt"), "ro").unwrap();
        let ctx = WasiCtxBuilder::new()
            .args(["probe", "x"])
            .preopened_dir(&sandbox, "/sandbox", false)
            .unwrap()
            .preopened_dir(tmp.path().join("ro"), "/ro", true)
            .unwrap()
            .build();
        let engine = engine();
        let module = Module::new(&engine, PROBE).unwrap();
        let mut store = Store::new(&engine, ctx);
        let mut linker = Linker::new();
        weft_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
        let instance = linker.instantiate(&mut store, &module).unwrap();
        Probe {
            store,
            instance,
            _tmp: tmp,
            sandbox,
            outside,
        }
    }

    fn put(&mut self, at: u32, bytes: &[u8]) -> i32 {
        let mem = self.instance.get_memory(&mut self.store, "memory").unwrap();
        mem.write(&mut self.store, at as usize, bytes).unwrap();
        bytes.len() as i32
    }

    fn get(&mut self, at: u32, len: usize) -> Vec<u8> {
        let mem = self.instance.get_memory(&mut self.store, "memory").unwrap();
        let mut v = vec![0u8; len];
        mem.read(&mut self.store, at as usize, &mut v).unwrap();
        v
    }

    fn u32_at(&mut self, at: u32) -> u32 {
        u32::from_le_bytes(self.get(at, 4).try_into().unwrap())
    }

    fn open(&mut self, dir: i32, path: &str, oflags: i32, rights: i64) -> Result<u32, u16> {
        let len = self.put(PATH_AT, path.as_bytes());
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32, i32, i64), i32>(&mut self.store, "open")
            .unwrap();
        match f
            .call(&mut self.store, (dir, PATH_AT as i32, len, oflags, rights))
            .unwrap()
        {
            0 => Ok(self.u32_at(0x100)),
            e => Err(e as u16),
        }
    }

    fn call1(&mut self, name: &str, dir: i32, path: &str) -> u16 {
        let len = self.put(PATH_AT, path.as_bytes());
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32), i32>(&mut self.store, name)
            .unwrap();
        f.call(&mut self.store, (dir, PATH_AT as i32, len)).unwrap() as u16
    }

    fn stat(&mut self, dir: i32, path: &str, follow: bool) -> u16 {
        let len = self.put(PATH_AT, path.as_bytes());
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32, i32), i32>(&mut self.store, "stat")
            .unwrap();
        f.call(&mut self.store, (dir, follow as i32, PATH_AT as i32, len))
            .unwrap() as u16
    }

    fn symlink(&mut self, target: &str, dir: i32, path: &str) -> u16 {
        let tl = self.put(PATH_AT, target.as_bytes());
        let pl = self.put(PATH2_AT, path.as_bytes());
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32, i32, i32), i32>(&mut self.store, "symlink")
            .unwrap();
        f.call(
            &mut self.store,
            (PATH_AT as i32, tl, dir, PATH2_AT as i32, pl),
        )
        .unwrap() as u16
    }

    fn io(&mut self, name: &str, fd: i32, iovs: i32, n: i32) -> u16 {
        let f = self
            .instance
            .get_typed_func::<(i32, i32, i32), i32>(&mut self.store, name)
            .unwrap();
        f.call(&mut self.store, (fd, iovs, n)).unwrap() as u16
    }
}

const NOTCAPABLE: u16 = Errno::Notcapable as u16;
const READ: i64 = 1 << 1; // FD_READ
const READ_WRITE: i64 = READ | (1 << 6); // FD_READ | FD_WRITE
const CREAT: i32 = 1;

#[test]
fn escaping_paths_fail_with_enotcapable() {
    let mut p = Probe::new();
    std::fs::create_dir(p.sandbox.join("a")).unwrap();
    let secret = p.outside.join("secret.txt");
    let abs = secret.to_str().unwrap().to_owned();
    for path in [
        "../outside/secret.txt",
        "..",
        "../sandbox/../outside/secret.txt",
        "./a/../../outside",
        abs.as_str(),
        "/etc/passwd",
        "/",
    ] {
        assert_eq!(
            p.open(3, path, 0, READ_WRITE),
            Err(NOTCAPABLE),
            "open {path}"
        );
        assert_eq!(
            p.open(3, path, CREAT, READ_WRITE),
            Err(NOTCAPABLE),
            "create {path}"
        );
        assert_eq!(p.stat(3, path, true), NOTCAPABLE, "stat {path}");
        assert_eq!(p.call1("unlink", 3, path), NOTCAPABLE, "unlink {path}");
        assert_eq!(p.call1("mkdir", 3, path), NOTCAPABLE, "mkdir {path}");
    }
    // Symlinks pointing out, made by the host or by the guest.
    std::os::unix::fs::symlink(&secret, p.sandbox.join("host_abs")).unwrap();
    std::os::unix::fs::symlink("../outside", p.sandbox.join("host_rel")).unwrap();
    assert_eq!(p.symlink("../outside", 3, "guest_rel"), 0);
    assert_eq!(p.symlink("../../../../../../etc", 3, "guest_deep"), 0);
    assert_eq!(p.symlink(&abs, 3, "guest_abs"), NOTCAPABLE);
    for path in [
        "host_abs",
        "host_rel/secret.txt",
        "guest_rel/secret.txt",
        "guest_deep/passwd",
    ] {
        assert_eq!(p.open(3, path, 0, READ_WRITE), Err(NOTCAPABLE), "{path}");
        assert_eq!(p.stat(3, path, true), NOTCAPABLE, "{path}");
    }
    // Check, then swap: a directory that resolved fine becomes a symlink
    // out; the next use is refused.
    std::fs::create_dir(p.sandbox.join("swap")).unwrap();
    std::fs::write(p.sandbox.join("swap/secret.txt"), "inside copy").unwrap();
    assert!(p.open(3, "swap/secret.txt", 0, READ_WRITE).is_ok());
    std::fs::rename(p.sandbox.join("swap"), p.sandbox.join("swap.old")).unwrap();
    std::os::unix::fs::symlink(&p.outside, p.sandbox.join("swap")).unwrap();
    assert_eq!(p.open(3, "swap/secret.txt", 0, READ_WRITE), Err(NOTCAPABLE));
    // Nothing outside changed.
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
    assert_eq!(std::fs::read_dir(&p.outside).unwrap().count(), 1);
}

#[test]
fn files_inside_work_through_wasm() {
    let mut p = Probe::new();
    let fd = p.open(3, "inside.txt", 0, READ_WRITE).unwrap();
    assert_eq!(fd, 5);
    // iovec at 0x400 -> 0x500 (16 bytes).
    p.put(0x400, &[0x00, 0x05, 0, 0, 16, 0, 0, 0]);
    assert_eq!(p.io("read", fd as i32, 0x400, 1), 0);
    assert_eq!(p.u32_at(0x300), 6);
    assert_eq!(p.get(0x500, 6), b"inside");
    let fd2 = p.open(3, "new.txt", CREAT, READ_WRITE).unwrap();
    p.put(0x500, b"written by wasm");
    p.put(0x400, &[0x00, 0x05, 0, 0, 15, 0, 0, 0]);
    assert_eq!(p.io("write", fd2 as i32, 0x400, 1), 0);
    assert_eq!(
        std::fs::read_to_string(p.sandbox.join("new.txt")).unwrap(),
        "written by wasm"
    );
    let close = p
        .instance
        .get_typed_func::<i32, i32>(&mut p.store, "close")
        .unwrap();
    assert_eq!(close.call(&mut p.store, fd2 as i32).unwrap(), 0);
    assert_eq!(
        close.call(&mut p.store, fd2 as i32).unwrap(),
        Errno::Badf as i32
    );
    // The read-only pre-open.
    assert!(p.open(4, "ro.txt", 0, READ).is_ok());
    assert_eq!(p.open(4, "ro.txt", 0, READ_WRITE), Err(NOTCAPABLE));
    assert_eq!(p.open(4, "new.txt", CREAT, READ_WRITE), Err(NOTCAPABLE));
    assert_eq!(p.call1("mkdir", 4, "d"), NOTCAPABLE);
    assert_eq!(p.call1("unlink", 4, "ro.txt"), NOTCAPABLE);
}

#[test]
fn bad_pointers_return_efault_without_trapping() {
    let mut p = Probe::new();
    let fault = Errno::Fault as u16;
    // iovec array past the end of memory; iovec pointing past the end.
    assert_eq!(p.io("write", 1, 65536 - 4, 1), fault);
    assert_eq!(p.io("write", 1, -1, 1), fault);
    p.put(0x400, &[0xf0, 0xff, 0, 0, 0x20, 0, 0, 0]);
    assert_eq!(p.io("write", 1, 0x400, 1), fault);
    assert_eq!(p.io("read", 0, 0x400, 1), fault);
    // A path pointer out of bounds.
    let f = p
        .instance
        .get_typed_func::<(i32, i32, i32), i32>(&mut p.store, "mkdir")
        .unwrap();
    assert_eq!(f.call(&mut p.store, (3, 65530, 100)).unwrap() as u16, fault);
    assert_eq!(f.call(&mut p.store, (3, -1, 2)).unwrap() as u16, fault);
    let sizes = p
        .instance
        .get_typed_func::<(i32, i32), i32>(&mut p.store, "args_sizes")
        .unwrap();
    assert_eq!(sizes.call(&mut p.store, (65534, 0)).unwrap() as u16, fault);
    assert_eq!(sizes.call(&mut p.store, (0x10, 0x14)).unwrap(), 0);
    assert_eq!(p.u32_at(0x10), 2);
    assert_eq!(p.u32_at(0x14), 8);
    let random = p
        .instance
        .get_typed_func::<(i32, i32), i32>(&mut p.store, "random")
        .unwrap();
    assert_eq!(
        random.call(&mut p.store, (65000, 1000)).unwrap() as u16,
        fault
    );
    assert_eq!(random.call(&mut p.store, (0x2000, 64)).unwrap(), 0);
    // Unknown descriptors.
    assert_eq!(p.io("write", 99, 0x400, 0), Errno::Badf as u16);
}

#[test]
fn module_without_memory_traps_cleanly() {
    let engine = engine();
    let module = Module::new(
        &engine,
        r#"(module
            (import "wasi_snapshot_preview1" "fd_write"
              (func $fd_write (param i32 i32 i32 i32) (result i32)))
            (import "wasi_snapshot_preview1" "sched_yield" (func $yield (result i32)))
            (func (export "yield") (result i32) (call $yield))
            (func (export "_start")
              (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 0)))))"#,
    )
    .unwrap();
    let mut store = Store::new(&engine, WasiCtxBuilder::new().build());
    let mut linker = Linker::new();
    weft_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    let err = start.call(&mut store, ()).unwrap_err();
    assert!(err.to_string().contains("memory"), "{err}");
    // The context was put back: functions that need no memory still work.
    let y = instance
        .get_typed_func::<(), i32>(&mut store, "yield")
        .unwrap();
    assert_eq!(y.call(&mut store, ()).unwrap(), 0);
}

#[test]
fn every_preview1_function_links() {
    // A module importing all 46 functions with their witx signatures links
    // against add_to_linker (a wrong signature would be a link error).
    let imports = [
        ("args_get", "i32 i32", "i32"),
        ("args_sizes_get", "i32 i32", "i32"),
        ("environ_get", "i32 i32", "i32"),
        ("environ_sizes_get", "i32 i32", "i32"),
        ("clock_res_get", "i32 i32", "i32"),
        ("clock_time_get", "i32 i64 i32", "i32"),
        ("fd_advise", "i32 i64 i64 i32", "i32"),
        ("fd_allocate", "i32 i64 i64", "i32"),
        ("fd_close", "i32", "i32"),
        ("fd_datasync", "i32", "i32"),
        ("fd_fdstat_get", "i32 i32", "i32"),
        ("fd_fdstat_set_flags", "i32 i32", "i32"),
        ("fd_fdstat_set_rights", "i32 i64 i64", "i32"),
        ("fd_filestat_get", "i32 i32", "i32"),
        ("fd_filestat_set_size", "i32 i64", "i32"),
        ("fd_filestat_set_times", "i32 i64 i64 i32", "i32"),
        ("fd_pread", "i32 i32 i32 i64 i32", "i32"),
        ("fd_prestat_get", "i32 i32", "i32"),
        ("fd_prestat_dir_name", "i32 i32 i32", "i32"),
        ("fd_pwrite", "i32 i32 i32 i64 i32", "i32"),
        ("fd_read", "i32 i32 i32 i32", "i32"),
        ("fd_readdir", "i32 i32 i32 i64 i32", "i32"),
        ("fd_renumber", "i32 i32", "i32"),
        ("fd_seek", "i32 i64 i32 i32", "i32"),
        ("fd_sync", "i32", "i32"),
        ("fd_tell", "i32 i32", "i32"),
        ("fd_write", "i32 i32 i32 i32", "i32"),
        ("path_create_directory", "i32 i32 i32", "i32"),
        ("path_filestat_get", "i32 i32 i32 i32 i32", "i32"),
        (
            "path_filestat_set_times",
            "i32 i32 i32 i32 i64 i64 i32",
            "i32",
        ),
        ("path_link", "i32 i32 i32 i32 i32 i32 i32", "i32"),
        ("path_open", "i32 i32 i32 i32 i32 i64 i64 i32 i32", "i32"),
        ("path_readlink", "i32 i32 i32 i32 i32 i32", "i32"),
        ("path_remove_directory", "i32 i32 i32", "i32"),
        ("path_rename", "i32 i32 i32 i32 i32 i32", "i32"),
        ("path_symlink", "i32 i32 i32 i32 i32", "i32"),
        ("path_unlink_file", "i32 i32 i32", "i32"),
        ("poll_oneoff", "i32 i32 i32 i32", "i32"),
        ("proc_exit", "i32", ""),
        ("proc_raise", "i32", "i32"),
        ("sched_yield", "", "i32"),
        ("random_get", "i32 i32", "i32"),
        ("sock_accept", "i32 i32 i32", "i32"),
        ("sock_recv", "i32 i32 i32 i32 i32 i32", "i32"),
        ("sock_send", "i32 i32 i32 i32 i32", "i32"),
        ("sock_shutdown", "i32 i32", "i32"),
    ];
    assert_eq!(imports.len(), 46);
    let mut wat = String::from("(module\n");
    for (name, params, results) in imports {
        let results = if results.is_empty() {
            String::new()
        } else {
            format!("(result {results})")
        };
        wat.push_str(&format!(
            "  (import \"wasi_snapshot_preview1\" \"{name}\" (func (param {params}) {results}))\n"
        ));
    }
    wat.push_str("  (memory (export \"memory\") 1))\n");
    let engine = engine();
    let module = Module::new(&engine, &wat).unwrap();
    let mut store = Store::new(&engine, WasiCtxBuilder::new().build());
    let mut linker = Linker::new();
    weft_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
    linker.instantiate(&mut store, &module).unwrap();
}

#[test]
fn wasi_ctx_can_live_inside_embedder_data() {
    struct Host {
        calls: u32,
        wasi: WasiCtx,
    }
    let engine = engine();
    let module = Module::from_file(
        &engine,
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hello.wat"),
    )
    .unwrap();
    let out = OutputPipe::new();
    let mut store = Store::new(
        &engine,
        Host {
            calls: 0,
            wasi: WasiCtxBuilder::new().stdout(out.clone()).build(),
        },
    );
    let mut linker = Linker::new();
    weft_wasi::add_to_linker(&mut linker, |h: &mut Host| {
        h.calls += 1;
        &mut h.wasi
    })
    .unwrap();
    let instance = linker.instantiate(&mut store, &module).unwrap();
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .unwrap();
    start.call(&mut store, ()).unwrap();
    start.call(&mut store, ()).unwrap();
    assert_eq!(out.contents_string(), "Hello, world!\n".repeat(2));
    assert!(store.data().calls >= 2);
}

#[test]
fn deadline_ends_a_run_blocked_in_poll_oneoff() {
    // `_start` sleeps for an hour (one relative monotonic clock
    // subscription). With a deadline already passed the run ends at once
    // with DeadlineExceeded; no timing is involved.
    let engine = engine();
    let module = Module::new(
        &engine,
        r#"(module
            (import "wasi_snapshot_preview1" "poll_oneoff"
              (func $poll (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start")
              ;; subscription at 0: userdata 0, tag 0 (clock), id 1, timeout 1 h
              (i32.store8 (i32.const 8) (i32.const 0))
              (i32.store (i32.const 16) (i32.const 1))
              (i64.store (i32.const 24) (i64.const 3600000000000))
              (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#,
    )
    .unwrap();
    let ctx = WasiCtxBuilder::new()
        .deadline(std::time::Instant::now())
        .build();
    let err = weft_wasi::run_command(&engine, &module, ctx).unwrap_err();
    assert!(DeadlineExceeded::matches(&err), "{err}");
    assert_eq!(I32Exit::from_error(&err), None);
}

/// Runs `_start` of `wat` on a thread-free store whose interrupt handle is
/// fired from another thread once the guest has had time to block; returns
/// the run's error. A failsafe releases a guest that ignored the interrupt
/// (by the test's own means), so a broken build fails instead of hanging.
fn interrupted_run(
    wat: &str,
    ctx: WasiCtx,
    release: impl FnOnce() + Send + 'static,
) -> weft::Error {
    let engine = engine();
    let module = Module::new(&engine, wat).unwrap();
    let mut store = Store::new(&engine, ctx);
    let mut linker = Linker::new();
    weft_wasi::add_to_linker(&mut linker, |c: &mut WasiCtx| c).unwrap();
    let inst = linker.instantiate(&mut store, &module).unwrap();
    let start = inst.get_typed_func::<(), ()>(&mut store, "_start").unwrap();
    let handle = store.interrupt_handle();
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d = done.clone();
    let helper = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(50));
        handle.interrupt();
        let t = std::time::Instant::now();
        while !d.load(std::sync::atomic::Ordering::SeqCst) {
            if t.elapsed() > std::time::Duration::from_secs(60) {
                release();
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        false
    });
    let r = start.call(&mut store, ());
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert!(
        !helper.join().unwrap(),
        "the interrupt did not stop the blocked call"
    );
    r.unwrap_err()
}

#[test]
fn an_interrupt_stops_a_guest_sleeping_in_poll_oneoff() {
    let err = interrupted_run(
        r#"(module
            (import "wasi_snapshot_preview1" "poll_oneoff"
              (func $poll (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start")
              (i32.store8 (i32.const 8) (i32.const 0))
              (i32.store (i32.const 16) (i32.const 1))
              (i64.store (i32.const 24) (i64.const 60000000000))
              (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#,
        WasiCtxBuilder::new().build(),
        || {},
    );
    assert!(weft_wasi::Interrupted::matches(&err), "{err}");
}

#[test]
fn an_interrupt_stops_a_guest_blocked_reading_a_socket() {
    let (ours, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
    let keep = ours.try_clone().unwrap();
    let mut b = WasiCtxBuilder::new();
    b.preopened_socket(std::os::fd::OwnedFd::from(theirs))
        .unwrap();
    // fd 3 is the socket: read from it, which blocks (nobody writes).
    let err = interrupted_run(
        r#"(module
            (import "wasi_snapshot_preview1" "fd_read"
              (func $read (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            (func (export "_start")
              (i32.store (i32.const 0) (i32.const 100))
              (i32.store (i32.const 4) (i32.const 10))
              (drop (call $read (i32.const 3) (i32.const 0) (i32.const 1) (i32.const 8)))))"#,
        b.build(),
        move || {
            // Failsafe: give the reader something so it returns.
            use std::io::Write;
            let _ = (&keep).write_all(b"x");
        },
    );
    assert!(weft_wasi::Interrupted::matches(&err), "{err}");
    drop(ours);
}
