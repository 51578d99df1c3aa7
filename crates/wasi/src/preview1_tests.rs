//! Unit tests of the preview1 functions on a plain byte vector as guest
//! memory (no wasm involved).

use std::io::{Read as _, Write as _};

use super::*;
use crate::ctx::{OutputPipe, WasiCtxBuilder};
use crate::mem::MemExt;

const PATH: u32 = 1024; // scratch area for paths
const IOV: u32 = 2048; // iovec array
const BUF: u32 = 4096; // data
const OUT: u32 = 512; // results

struct Guest {
    st: Box<State>,
    mem: Vec<u8>,
    _tmp: Option<tempfile::TempDir>,
}

impl Guest {
    fn new(b: &mut WasiCtxBuilder) -> Guest {
        Guest {
            st: b.build().state.unwrap(),
            mem: vec![0u8; 65536],
            _tmp: None,
        }
    }

    /// A guest with `tmp/sandbox` pre-opened as fd 3 (read-write) and
    /// `tmp/ro` as fd 4 (read-only); `tmp/outside/secret.txt` exists.
    fn with_dirs() -> (Guest, std::path::PathBuf) {
        let tmp = tempfile::tempdir().unwrap();
        let sb = tmp.path().join("sandbox");
        std::fs::create_dir(&sb).unwrap();
        std::fs::create_dir(tmp.path().join("ro")).unwrap();
        std::fs::write(tmp.path().join("ro/data.txt"), "read only").unwrap();
        std::fs::create_dir(tmp.path().join("outside")).unwrap();
        std::fs::write(tmp.path().join("outside/secret.txt"), "secret").unwrap();
        let mut g = Guest::new(
            WasiCtxBuilder::new()
                .preopened_dir(&sb, "/sandbox", false)
                .unwrap()
                .preopened_dir(tmp.path().join("ro"), "/ro", true)
                .unwrap(),
        );
        g._tmp = Some(tmp);
        (g, sb)
    }

    fn put(&mut self, ptr: u32, data: &[u8]) -> u32 {
        MemExt::write(&mut self.mem, ptr, data).unwrap();
        data.len() as u32
    }

    fn u32_at(&mut self, ptr: u32) -> u32 {
        u32::from_le_bytes(self.mem.read_array::<4>(ptr).unwrap())
    }

    fn u64_at(&mut self, ptr: u32) -> u64 {
        u64::from_le_bytes(self.mem.read_array::<8>(ptr).unwrap())
    }

    fn open(
        &mut self,
        dir: u32,
        path: &str,
        oflags: u16,
        base: u64,
        fdflags: u16,
    ) -> Result<u32, Errno> {
        let len = self.put(PATH, path.as_bytes());
        self.st.path_open(
            &mut self.mem,
            dir,
            lookupflags::SYMLINK_FOLLOW,
            PATH,
            len,
            oflags,
            base,
            rights::ALL,
            fdflags,
            OUT,
        )?;
        Ok(self.u32_at(OUT))
    }

    fn write(&mut self, fd: u32, data: &[u8]) -> Result<u32, Errno> {
        let len = self.put(BUF, data);
        self.mem.write_u32(IOV, BUF).unwrap();
        self.mem.write_u32(IOV + 4, len).unwrap();
        self.st.fd_write(&mut self.mem, fd, IOV, 1, OUT)?;
        Ok(self.u32_at(OUT))
    }

    fn read(&mut self, fd: u32, max: u32) -> Result<Vec<u8>, Errno> {
        // Two iovecs, to exercise scattering.
        let half = max / 2;
        self.mem.write_u32(IOV, BUF).unwrap();
        self.mem.write_u32(IOV + 4, half).unwrap();
        self.mem.write_u32(IOV + 8, BUF + half).unwrap();
        self.mem.write_u32(IOV + 12, max - half).unwrap();
        self.st.fd_read(&mut self.mem, fd, IOV, 2, OUT)?;
        let n = self.u32_at(OUT);
        Ok(self.mem[BUF as usize..(BUF + n) as usize].to_vec())
    }

    fn path1(&mut self, path: &str) -> (u32, u32) {
        (PATH, self.put(PATH, path.as_bytes()))
    }

    fn path2(&mut self, a: &str, b: &str) -> (u32, u32, u32, u32) {
        let la = self.put(PATH, a.as_bytes());
        let lb = self.put(PATH + 512, b.as_bytes());
        (PATH, la, PATH + 512, lb)
    }

    fn readdir_names(&mut self, fd: u32, buf_len: u32) -> Vec<String> {
        let mut names = Vec::new();
        let mut cookie = 0u64;
        loop {
            self.st
                .fd_readdir(&mut self.mem, fd, BUF, buf_len, cookie, OUT)
                .unwrap();
            let used = self.u32_at(OUT) as usize;
            let buf = self.mem[BUF as usize..BUF as usize + used].to_vec();
            let mut off = 0;
            while off + 24 <= used {
                let next = u64::from_le_bytes(buf[off..off + 8].try_into().unwrap());
                let namlen =
                    u32::from_le_bytes(buf[off + 16..off + 20].try_into().unwrap()) as usize;
                if off + 24 + namlen > used {
                    break; // cut short: ask again from this entry
                }
                names.push(String::from_utf8(buf[off + 24..off + 24 + namlen].to_vec()).unwrap());
                cookie = next;
                off += 24 + namlen;
            }
            if used < buf_len as usize {
                break;
            }
        }
        names.sort();
        names
    }
}

const RW: u64 = rights::FD_READ
    | rights::FD_WRITE
    | rights::FD_SEEK
    | rights::FD_TELL
    | rights::FD_FILESTAT_GET;

#[test]
fn args_and_environ() {
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .args(["prog", "a b", ""])
            .env("X", "1")
            .env("LANG", "C")
            .env("X", "2"),
    );
    g.st.args_sizes_get(&mut g.mem, 0, 4).unwrap();
    assert_eq!(g.u32_at(0), 3);
    assert_eq!(g.u32_at(4), 5 + 4 + 1);
    g.st.args_get(&mut g.mem, 100, 200).unwrap();
    assert_eq!(
        [g.u32_at(100), g.u32_at(104), g.u32_at(108)],
        [200, 205, 209]
    );
    assert_eq!(&g.mem[200..210], b"prog\0a b\0\0");
    g.st.environ_sizes_get(&mut g.mem, 0, 4).unwrap();
    assert_eq!(g.u32_at(0), 2);
    assert_eq!(g.u32_at(4), 7 + 4);
    g.st.environ_get(&mut g.mem, 100, 200).unwrap();
    assert_eq!(&g.mem[200..211], b"LANG=C\0X=2\0");
    // Bad pointers: EFAULT, never a panic.
    assert_eq!(g.st.args_get(&mut g.mem, 65534, 200), Err(Errno::Fault));
    assert_eq!(g.st.args_get(&mut g.mem, 100, 65530), Err(Errno::Fault));
    assert_eq!(
        g.st.args_sizes_get(&mut g.mem, u32::MAX, 0),
        Err(Errno::Fault)
    );
}

#[test]
fn stdio_streams() {
    let out = OutputPipe::new();
    let err = OutputPipe::new();
    let mut g = Guest::new(
        WasiCtxBuilder::new()
            .stdin(std::io::Cursor::new(b"input!".to_vec()))
            .stdout(out.clone())
            .stderr(err.clone()),
    );
    assert_eq!(g.write(1, b"Hello, world!\n"), Ok(14));
    assert_eq!(g.write(2, b"oops"), Ok(4));
    assert_eq!(out.contents_string(), "Hello, world!\n");
    assert_eq!(err.contents_string(), "oops");
    assert_eq!(g.read(0, 4).unwrap(), b"inpu");
    assert_eq!(g.read(0, 100).unwrap(), b"t!");
    assert_eq!(g.read(0, 100).unwrap(), b"");
    // Wrong direction, bad descriptors, seeking a stream.
    assert_eq!(g.read(1, 4), Err(Errno::Badf));
    assert_eq!(g.write(0, b"x"), Err(Errno::Badf));
    assert_eq!(g.write(7, b"x"), Err(Errno::Badf));
    assert_eq!(
        g.st.fd_seek(&mut g.mem, 1, 0, whence::SET, OUT),
        Err(Errno::Spipe)
    );
    assert_eq!(g.st.fd_tell(&mut g.mem, 1, OUT), Err(Errno::Spipe));
    // An iovec pointing outside memory.
    g.mem.write_u32(IOV, 65530).unwrap();
    g.mem.write_u32(IOV + 4, 10).unwrap();
    assert_eq!(g.st.fd_write(&mut g.mem, 1, IOV, 1, OUT), Err(Errno::Fault));
    assert_eq!(
        g.st.fd_write(&mut g.mem, 1, 65535, 1, OUT),
        Err(Errno::Fault)
    );
    assert_eq!(out.contents_string(), "Hello, world!\n");
    // fdstat of a stream: no seek/tell rights.
    g.st.fd_fdstat_get(&mut g.mem, 1, OUT).unwrap();
    assert_eq!(g.mem[OUT as usize], filetype::UNKNOWN);
    assert_eq!(g.u64_at(OUT + 8) & (rights::FD_SEEK | rights::FD_TELL), 0);
    // No pre-opens: fd 3 is EBADF for prestat.
    assert_eq!(g.st.fd_prestat_get(&mut g.mem, 3, OUT), Err(Errno::Badf));
    assert_eq!(g.st.fd_prestat_get(&mut g.mem, 1, OUT), Err(Errno::Badf));
}

#[test]
fn prestat_and_fdstat() {
    let (mut g, _) = Guest::with_dirs();
    g.st.fd_prestat_get(&mut g.mem, 3, OUT).unwrap();
    assert_eq!(
        &g.mem[OUT as usize..OUT as usize + 8],
        &[0, 0, 0, 0, 8, 0, 0, 0]
    );
    assert_eq!(
        g.st.fd_prestat_dir_name(&mut g.mem, 3, BUF, 7),
        Err(Errno::Nametoolong)
    );
    g.st.fd_prestat_dir_name(&mut g.mem, 3, BUF, 8).unwrap();
    assert_eq!(&g.mem[BUF as usize..BUF as usize + 8], b"/sandbox");
    g.st.fd_prestat_get(&mut g.mem, 4, OUT).unwrap();
    assert_eq!(g.u32_at(OUT + 4), 3);
    assert_eq!(g.st.fd_prestat_get(&mut g.mem, 5, OUT), Err(Errno::Badf));
    g.st.fd_fdstat_get(&mut g.mem, 3, OUT).unwrap();
    assert_eq!(g.mem[OUT as usize], filetype::DIRECTORY);
    assert_eq!(g.u64_at(OUT + 8), rights::DIRECTORY);
    g.st.fd_fdstat_get(&mut g.mem, 4, OUT).unwrap();
    assert_eq!(g.u64_at(OUT + 8) & rights::MUTATING, 0);
    assert_eq!(g.u64_at(OUT + 16) & rights::MUTATING, 0);
    assert_eq!(g.st.fd_fdstat_get(&mut g.mem, 3, 65530), Err(Errno::Fault));
}

#[test]
fn file_lifecycle() {
    let (mut g, sb) = Guest::with_dirs();
    let fd = g
        .open(
            3,
            "notes.txt",
            oflags::CREAT | oflags::EXCL,
            RW | rights::FD_FILESTAT_SET_SIZE,
            0,
        )
        .unwrap();
    assert_eq!(fd, 5);
    assert_eq!(g.write(fd, b"hello world"), Ok(11));
    assert_eq!(
        std::fs::read_to_string(sb.join("notes.txt")).unwrap(),
        "hello world"
    );
    assert_eq!(
        g.open(3, "notes.txt", oflags::CREAT | oflags::EXCL, RW, 0),
        Err(Errno::Exist)
    );
    // Seek and tell.
    g.st.fd_seek(&mut g.mem, fd, -5, whence::END, OUT).unwrap();
    assert_eq!(g.u64_at(OUT), 6);
    assert_eq!(g.read(fd, 100).unwrap(), b"world");
    g.st.fd_tell(&mut g.mem, fd, OUT).unwrap();
    assert_eq!(g.u64_at(OUT), 11);
    assert_eq!(
        g.st.fd_seek(&mut g.mem, fd, -1, whence::SET, OUT),
        Err(Errno::Inval)
    );
    assert_eq!(g.st.fd_seek(&mut g.mem, fd, 0, 3, OUT), Err(Errno::Inval));
    // pread / pwrite do not move the offset.
    g.put(BUF, b"HELLO");
    g.mem.write_u32(IOV, BUF).unwrap();
    g.mem.write_u32(IOV + 4, 5).unwrap();
    g.st.fd_pwrite(&mut g.mem, fd, IOV, 1, 0, OUT).unwrap();
    assert_eq!(g.u32_at(OUT), 5);
    g.mem.write_u32(IOV + 4, 3).unwrap();
    g.st.fd_pread(&mut g.mem, fd, IOV, 1, 8, OUT).unwrap();
    assert_eq!(&g.mem[BUF as usize..BUF as usize + 3], b"rld");
    g.st.fd_tell(&mut g.mem, fd, OUT).unwrap();
    assert_eq!(g.u64_at(OUT), 11);
    // filestat.
    g.st.fd_filestat_get(&mut g.mem, fd, OUT).unwrap();
    assert_eq!(g.mem[OUT as usize + 16], filetype::REGULAR_FILE);
    assert_eq!(g.u64_at(OUT + 32), 11);
    g.st.fd_filestat_set_size(fd, 5).unwrap();
    assert_eq!(
        std::fs::read_to_string(sb.join("notes.txt")).unwrap(),
        "HELLO"
    );
    g.st.fd_filestat_set_times(
        fd,
        1_000_000_000,
        2_000_000_000,
        fstflags::ATIM | fstflags::MTIM,
    )
    .unwrap_err(); // no FD_FILESTAT_SET_TIMES right was asked for
    assert_eq!(
        g.st.fd_filestat_set_times(fd, 0, 0, fstflags::ATIM | fstflags::ATIM_NOW),
        Err(Errno::Notcapable)
    );
    g.st.fd_sync(fd).unwrap_err();
    // Append mode.
    let fa = g
        .open(
            3,
            "notes.txt",
            0,
            rights::FD_WRITE | rights::FD_FDSTAT_SET_FLAGS,
            fdflags::APPEND,
        )
        .unwrap();
    g.write(fa, b"!!").unwrap();
    assert_eq!(
        std::fs::read_to_string(sb.join("notes.txt")).unwrap(),
        "HELLO!!"
    );
    g.st.fd_fdstat_get(&mut g.mem, fa, OUT).unwrap();
    assert_eq!(
        u16::from_le_bytes([g.mem[OUT as usize + 2], g.mem[OUT as usize + 3]]),
        fdflags::APPEND
    );
    g.st.fd_fdstat_set_flags(fa, 0).unwrap();
    g.st.fd_fdstat_get(&mut g.mem, fa, OUT).unwrap();
    assert_eq!(g.mem[OUT as usize + 2], 0);
    assert_eq!(
        g.st.fd_fdstat_set_flags(fa, fdflags::SYNC),
        Err(Errno::Notsup)
    );
    // Rights can be dropped, not gained.
    g.st.fd_fdstat_set_rights(fa, rights::FD_WRITE, 0).unwrap();
    assert_eq!(
        g.st.fd_fdstat_set_rights(fa, rights::FD_WRITE | rights::FD_READ, 0),
        Err(Errno::Notcapable)
    );
    assert_eq!(g.st.fd_fdstat_set_flags(fa, 0), Err(Errno::Notcapable));
    // A file opened without FD_READ cannot be read.
    assert_eq!(g.read(fa, 4), Err(Errno::Badf));
    // Renumber and close.
    g.st.fd_renumber(fa, fd).unwrap();
    assert_eq!(g.read(fd, 4), Err(Errno::Badf));
    assert_eq!(g.st.fd_close(fa), Err(Errno::Badf));
    assert_eq!(g.st.fd_renumber(fd, 99), Err(Errno::Badf));
    g.st.fd_close(fd).unwrap();
    assert_eq!(g.st.fd_close(fd), Err(Errno::Badf));
    // Truncate on open.
    let ft = g.open(3, "notes.txt", oflags::TRUNC, RW, 0).unwrap();
    assert_eq!(g.read(ft, 10).unwrap(), b"");
}

#[test]
fn directories_and_paths() {
    let (mut g, sb) = Guest::with_dirs();
    let (p, l) = g.path1("d");
    g.st.path_create_directory(&mut g.mem, 3, p, l).unwrap();
    assert_eq!(
        g.st.path_create_directory(&mut g.mem, 3, p, l),
        Err(Errno::Exist)
    );
    let f = g.open(3, "d/a.txt", oflags::CREAT, RW, 0).unwrap();
    g.write(f, b"A").unwrap();
    g.open(3, "d/b.txt", oflags::CREAT, RW, 0).unwrap();
    // Rename.
    let (a, al, b, bl) = g.path2("d/b.txt", "d/c.txt");
    g.st.path_rename(&mut g.mem, 3, a, al, 3, b, bl).unwrap();
    assert!(sb.join("d/c.txt").exists() && !sb.join("d/b.txt").exists());
    // Readdir, with small buffers too.
    let d = g
        .open(3, "d", oflags::DIRECTORY, rights::FD_READDIR, 0)
        .unwrap();
    let all = vec![".", "..", "a.txt", "c.txt"];
    assert_eq!(g.readdir_names(d, 4096), all);
    assert_eq!(g.readdir_names(d, 30), all);
    // path_filestat_get.
    let (p, l) = g.path1("d/a.txt");
    g.st.path_filestat_get(&mut g.mem, 3, 0, p, l, OUT).unwrap();
    assert_eq!(g.mem[OUT as usize + 16], filetype::REGULAR_FILE);
    assert_eq!(g.u64_at(OUT + 32), 1);
    let (p, l) = g.path1("d/");
    g.st.path_filestat_get(&mut g.mem, 3, 0, p, l, OUT).unwrap();
    assert_eq!(g.mem[OUT as usize + 16], filetype::DIRECTORY);
    let (p, l) = g.path1("d/a.txt/");
    assert_eq!(
        g.st.path_filestat_get(&mut g.mem, 3, 0, p, l, OUT),
        Err(Errno::Notdir)
    );
    // Set times through a path.
    let (p, l) = g.path1("d/a.txt");
    g.st.path_filestat_set_times(
        &mut g.mem,
        3,
        0,
        p,
        l,
        0,
        1_500_000_000_000_000_000,
        fstflags::MTIM,
    )
    .unwrap();
    g.st.path_filestat_get(&mut g.mem, 3, 0, p, l, OUT).unwrap();
    assert_eq!(g.u64_at(OUT + 48), 1_500_000_000_000_000_000);
    // Symlinks and hard links.
    let (a, al, b, bl) = g.path2("a.txt", "d/link");
    g.st.path_symlink(&mut g.mem, a, al, 3, b, bl).unwrap();
    let (p, l) = g.path1("d/link");
    g.st.path_readlink(&mut g.mem, 3, p, l, BUF, 100, OUT)
        .unwrap();
    assert_eq!(g.u32_at(OUT), 5);
    assert_eq!(&g.mem[BUF as usize..BUF as usize + 5], b"a.txt");
    g.st.path_readlink(&mut g.mem, 3, p, l, BUF, 2, OUT)
        .unwrap();
    assert_eq!(g.u32_at(OUT), 2);
    g.st.path_filestat_get(&mut g.mem, 3, 0, p, l, OUT).unwrap();
    assert_eq!(g.mem[OUT as usize + 16], filetype::SYMBOLIC_LINK);
    g.st.path_filestat_get(&mut g.mem, 3, lookupflags::SYMLINK_FOLLOW, p, l, OUT)
        .unwrap();
    assert_eq!(g.mem[OUT as usize + 16], filetype::REGULAR_FILE);
    let lf = g.open(3, "d/link", 0, RW, 0).unwrap();
    assert_eq!(g.read(lf, 10).unwrap(), b"A");
    let (a, al, b, bl) = g.path2("d/a.txt", "hard.txt");
    g.st.path_link(&mut g.mem, 3, 0, a, al, 3, b, bl).unwrap();
    assert_eq!(std::fs::read_to_string(sb.join("hard.txt")).unwrap(), "A");
    // Unlink and rmdir.
    let (p, l) = g.path1("d");
    assert_eq!(
        g.st.path_remove_directory(&mut g.mem, 3, p, l),
        Err(Errno::Notempty)
    );
    assert_eq!(
        g.st.path_unlink_file(&mut g.mem, 3, p, l),
        Err(Errno::Isdir)
    );
    for f in ["d/a.txt", "d/c.txt", "d/link"] {
        let (p, l) = g.path1(f);
        g.st.path_unlink_file(&mut g.mem, 3, p, l).unwrap();
    }
    let (p, l) = g.path1("d/");
    g.st.path_remove_directory(&mut g.mem, 3, p, l).unwrap();
    assert!(!sb.join("d").exists());
    // Removing the pre-open itself is refused.
    for p in [".", "./", "x/..", ".."] {
        let _ = std::fs::create_dir(sb.join("x"));
        let (pp, l) = g.path1(p);
        assert!(
            g.st.path_remove_directory(&mut g.mem, 3, pp, l).is_err(),
            "{p}"
        );
    }
    assert!(sb.exists());
    // Not a directory descriptor.
    let (p, l) = g.path1("x");
    assert_eq!(
        g.st.path_create_directory(&mut g.mem, 1, p, l),
        Err(Errno::Notdir)
    );
    assert_eq!(
        g.st.path_create_directory(&mut g.mem, 42, p, l),
        Err(Errno::Badf)
    );
}

#[test]
fn sandbox_escapes_fail_with_notcapable() {
    let (mut g, sb) = Guest::with_dirs();
    let outside = sb.parent().unwrap().join("outside");
    let secret = outside.join("secret.txt");
    for p in [
        "../outside/secret.txt",
        "..",
        "./../outside",
        "a/../../outside/secret.txt",
        secret.to_str().unwrap(),
        "/etc/passwd",
    ] {
        let _ = std::fs::create_dir(sb.join("a"));
        assert_eq!(g.open(3, p, 0, RW, 0), Err(Errno::Notcapable), "{p}");
        assert_eq!(
            g.open(3, p, oflags::CREAT, RW, 0),
            Err(Errno::Notcapable),
            "{p}"
        );
        let (pp, l) = g.path1(p);
        assert_eq!(
            g.st.path_filestat_get(&mut g.mem, 3, 1, pp, l, OUT),
            Err(Errno::Notcapable),
            "{p}"
        );
        assert_eq!(
            g.st.path_unlink_file(&mut g.mem, 3, pp, l),
            Err(Errno::Notcapable),
            "{p}"
        );
        assert_eq!(
            g.st.path_create_directory(&mut g.mem, 3, pp, l),
            Err(Errno::Notcapable),
            "{p}"
        );
    }
    // Guest-created symlinks pointing out: creation of relative ones works
    // (they are just data), following them out never does.
    let (a, al, b, bl) = g.path2("../outside", "out");
    g.st.path_symlink(&mut g.mem, a, al, 3, b, bl).unwrap();
    let (a, al, b, bl) = g.path2("/etc", "abs");
    assert_eq!(
        g.st.path_symlink(&mut g.mem, a, al, 3, b, bl),
        Err(Errno::Notcapable)
    );
    assert_eq!(
        g.open(3, "out/secret.txt", 0, RW, 0),
        Err(Errno::Notcapable)
    );
    assert_eq!(
        g.open(3, "out/new.txt", oflags::CREAT, RW, 0),
        Err(Errno::Notcapable)
    );
    let (p, l) = g.path1("out/secret.txt");
    assert_eq!(
        g.st.path_unlink_file(&mut g.mem, 3, p, l),
        Err(Errno::Notcapable)
    );
    let (a, al, b, bl) = g.path2("out/secret.txt", "stolen.txt");
    assert_eq!(
        g.st.path_rename(&mut g.mem, 3, a, al, 3, b, bl),
        Err(Errno::Notcapable)
    );
    assert_eq!(
        g.st.path_link(&mut g.mem, 3, 0, a, al, 3, b, bl),
        Err(Errno::Notcapable)
    );
    // The link to a directory outside: its dirfd never gets opened.
    assert_eq!(
        g.open(3, "out", oflags::DIRECTORY, rights::FD_READDIR, 0),
        Err(Errno::Notcapable)
    );
    // Unlinking the symlink itself is fine (stays inside).
    let (p, l) = g.path1("out");
    g.st.path_unlink_file(&mut g.mem, 3, p, l).unwrap();
    assert!(secret.exists());
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "secret");
    assert!(!outside.join("new.txt").exists());
}

#[test]
fn readonly_preopen() {
    let (mut g, _) = Guest::with_dirs();
    let f = g.open(4, "data.txt", 0, RW & !rights::FD_WRITE, 0).unwrap();
    assert_eq!(g.read(f, 100).unwrap(), b"read only");
    assert_eq!(g.write(f, b"x"), Err(Errno::Badf));
    // Asking to write (explicitly, or as wasi-libc's O_WRONLY does after
    // masking: neither read nor write) is refused at open.
    assert_eq!(
        g.open(4, "data.txt", 0, rights::FD_WRITE, 0),
        Err(Errno::Notcapable)
    );
    assert_eq!(
        g.open(
            4,
            "data.txt",
            0,
            RW & !(rights::FD_READ | rights::FD_WRITE),
            0
        ),
        Err(Errno::Notcapable)
    );
    assert_eq!(
        g.open(4, "new.txt", oflags::CREAT, RW, 0),
        Err(Errno::Notcapable)
    );
    assert_eq!(
        g.open(4, "data.txt", oflags::TRUNC, RW, 0),
        Err(Errno::Notcapable)
    );
    let (p, l) = g.path1("dir");
    assert_eq!(
        g.st.path_create_directory(&mut g.mem, 4, p, l),
        Err(Errno::Notcapable)
    );
    let (p, l) = g.path1("data.txt");
    assert_eq!(
        g.st.path_unlink_file(&mut g.mem, 4, p, l),
        Err(Errno::Notcapable)
    );
    assert_eq!(
        g.st.path_filestat_set_times(&mut g.mem, 4, 0, p, l, 0, 0, fstflags::MTIM_NOW),
        Err(Errno::Notcapable)
    );
    let (a, al, b, bl) = g.path2("data.txt", "moved.txt");
    assert_eq!(
        g.st.path_rename(&mut g.mem, 4, a, al, 4, b, bl),
        Err(Errno::Notcapable)
    );
    assert_eq!(
        g.st.path_symlink(&mut g.mem, a, al, 4, b, bl),
        Err(Errno::Notcapable)
    );
    // Directories opened inside inherit the restriction.
    let d = g.open(4, ".", oflags::DIRECTORY, rights::ALL, 0).unwrap();
    assert_eq!(
        g.open(d, "new.txt", oflags::CREAT, RW, 0),
        Err(Errno::Notcapable)
    );
    assert_eq!(g.st.fd_filestat_set_size(f, 0), Err(Errno::Notcapable));
    assert_eq!(
        std::fs::read_to_string(g._tmp.as_ref().unwrap().path().join("ro/data.txt")).unwrap(),
        "read only"
    );
}

#[test]
fn clocks_random_poll() {
    let mut g = Guest::new(&mut WasiCtxBuilder::new());
    for id in 0..4 {
        g.st.clock_res_get(&mut g.mem, id, OUT).unwrap();
        assert!(g.u64_at(OUT) > 0);
        g.st.clock_time_get(&mut g.mem, id, 0, OUT).unwrap();
    }
    assert_eq!(
        g.st.clock_time_get(&mut g.mem, 4, 0, OUT),
        Err(Errno::Inval)
    );
    g.st.clock_time_get(&mut g.mem, clockid::REALTIME, 0, OUT)
        .unwrap();
    assert!(g.u64_at(OUT) > 1_600_000_000_000_000_000);
    g.st.clock_time_get(&mut g.mem, clockid::MONOTONIC, 0, OUT)
        .unwrap();
    let t0 = g.u64_at(OUT);
    g.st.random_get(&mut g.mem, BUF, 1000).unwrap();
    assert!(
        g.mem[BUF as usize..BUF as usize + 1000]
            .iter()
            .any(|&b| b != 0)
    );
    assert_eq!(g.st.random_get(&mut g.mem, 65000, 1000), Err(Errno::Fault));
    g.st.random_get(&mut g.mem, 0, 0).unwrap();

    // poll_oneoff: a 1 ms monotonic sleep and a ready stdout.
    let sub = |g: &mut Guest, i: u32, userdata: u64, tag: u8, a: u32, timeout: u64| {
        let base = 8192 + i * 48;
        g.mem.write_u64(base, userdata).unwrap();
        g.mem.write_u8(base + 8, tag).unwrap();
        g.mem.write_u32(base + 16, a).unwrap();
        g.mem.write_u64(base + 24, timeout).unwrap();
        g.mem.write_u16(base + 40, 0).unwrap();
    };
    sub(
        &mut g,
        0,
        77,
        eventtype::CLOCK,
        clockid::MONOTONIC,
        1_000_000,
    );
    g.st.poll_oneoff(&mut g.mem, 8192, 16384, 1, OUT).unwrap();
    assert_eq!(g.u32_at(OUT), 1);
    assert_eq!(g.u64_at(16384), 77);
    assert_eq!(g.mem[16384 + 10], eventtype::CLOCK);
    g.st.clock_time_get(&mut g.mem, clockid::MONOTONIC, 0, OUT)
        .unwrap();
    assert!(g.u64_at(OUT) - t0 >= 1_000_000);
    sub(
        &mut g,
        0,
        1,
        eventtype::CLOCK,
        clockid::MONOTONIC,
        10_000_000_000,
    );
    sub(&mut g, 1, 2, eventtype::FD_WRITE, 1, 0);
    sub(&mut g, 2, 3, eventtype::FD_READ, 9, 0);
    g.st.poll_oneoff(&mut g.mem, 8192, 16384, 3, OUT).unwrap();
    assert_eq!(g.u32_at(OUT), 2);
    assert_eq!(g.u64_at(16384), 2);
    assert_eq!(g.mem[16384 + 10], eventtype::FD_WRITE);
    assert_eq!(g.u64_at(16384 + 32), 3);
    assert_eq!(
        u16::from_le_bytes([g.mem[16384 + 40], g.mem[16384 + 41]]),
        Errno::Badf.raw()
    );
    assert_eq!(
        g.st.poll_oneoff(&mut g.mem, 8192, 16384, 0, OUT),
        Err(Errno::Inval)
    );
    assert_eq!(
        g.st.poll_oneoff(&mut g.mem, 65500, 16384, 3, OUT),
        Err(Errno::Fault)
    );
}

#[test]
fn poll_pipe_and_sockets() {
    // A pipe's read end as stdin: poll waits for data written to it.
    let (r, mut w) = std::io::pipe().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut g = Guest::new(WasiCtxBuilder::new().preopened_socket(listener).unwrap());
    g.st.table
        .insert_at(0, Entry::host(r.into(), rights::ALL).unwrap());
    w.write_all(b"ping").unwrap();
    g.mem.write_u64(8192, 5).unwrap();
    g.mem.write_u8(8192 + 8, eventtype::FD_READ).unwrap();
    g.mem.write_u32(8192 + 16, 0).unwrap();
    g.st.poll_oneoff(&mut g.mem, 8192, 16384, 1, OUT).unwrap();
    assert_eq!(g.u32_at(OUT), 1);
    assert_eq!(g.u64_at(16384 + 16), 4, "nbytes available");
    assert_eq!(g.read(0, 10).unwrap(), b"ping");
    drop(w);
    g.st.poll_oneoff(&mut g.mem, 8192, 16384, 1, OUT).unwrap();
    assert_eq!(
        u16::from_le_bytes([g.mem[16384 + 24], g.mem[16384 + 25]]),
        eventrwflags::FD_READWRITE_HANGUP
    );

    // Sockets: fd 3 is the listener.
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    g.st.sock_accept(&mut g.mem, 3, 0, OUT).unwrap();
    let conn = g.u32_at(OUT);
    assert_eq!(conn, 4);
    g.st.fd_fdstat_get(&mut g.mem, conn, OUT).unwrap();
    assert_eq!(g.mem[OUT as usize], filetype::SOCKET_STREAM);
    client.write_all(b"hello").unwrap();
    g.mem.write_u32(IOV, BUF).unwrap();
    g.mem.write_u32(IOV + 4, 5).unwrap();
    g.st.sock_recv(
        &mut g.mem,
        conn,
        IOV,
        1,
        abi::riflags::RECV_WAITALL,
        OUT,
        OUT + 4,
    )
    .unwrap();
    assert_eq!(g.u32_at(OUT), 5);
    assert_eq!(&g.mem[BUF as usize..BUF as usize + 5], b"hello");
    g.put(BUF, b"world");
    g.st.sock_send(&mut g.mem, conn, IOV, 1, 0, OUT).unwrap();
    assert_eq!(g.u32_at(OUT), 5);
    let mut got = [0u8; 5];
    client.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"world");
    g.st.sock_shutdown(conn, abi::sdflags::WR).unwrap();
    assert_eq!(client.read(&mut got).unwrap(), 0);
    assert_eq!(g.st.sock_shutdown(conn, 0), Err(Errno::Inval));
    // Sockets calls on non-sockets.
    assert_eq!(g.st.sock_shutdown(1, abi::sdflags::WR), Err(Errno::Notsock));
    assert_eq!(g.st.sock_accept(&mut g.mem, 1, 0, OUT), Err(Errno::Notsock));
    assert_eq!(
        g.st.sock_accept(&mut g.mem, conn, 0, OUT),
        Err(Errno::Notcapable)
    );
    assert_eq!(g.st.sock_accept(&mut g.mem, 77, 0, OUT), Err(Errno::Badf));
    // Not a pre-opened directory: prestat says EBADF (libc stops there).
    assert_eq!(g.st.fd_prestat_get(&mut g.mem, 3, OUT), Err(Errno::Badf));
}

#[test]
fn deadline_stops_blocking_calls() {
    let (r, mut w) = std::io::pipe().unwrap();
    // A deadline already passed: nothing waits, whatever the machine's speed.
    let mut g = Guest::new(WasiCtxBuilder::new().deadline(Instant::now()));
    g.st.table
        .insert_at(0, Entry::host(r.into(), rights::ALL).unwrap());
    assert_eq!(g.read(0, 10), Err(Errno::Intr));
    assert!(std::mem::take(&mut g.st.deadline_hit));
    // Data already there is still read.
    w.write_all(b"x").unwrap();
    assert_eq!(g.read(0, 10).unwrap(), b"x");
    assert!(!g.st.deadline_hit);
    // poll_oneoff: an hour's sleep gives up at once...
    g.mem.write_u64(8192, 9).unwrap();
    g.mem.write_u8(8192 + 8, eventtype::CLOCK).unwrap();
    g.mem.write_u32(8192 + 16, clockid::MONOTONIC).unwrap();
    g.mem.write_u64(8192 + 24, 3_600_000_000_000).unwrap();
    assert_eq!(
        g.st.poll_oneoff(&mut g.mem, 8192, 16384, 1, OUT),
        Err(Errno::Intr)
    );
    assert!(std::mem::take(&mut g.st.deadline_hit));
    // ...but events that are ready are delivered.
    g.mem.write_u8(8192 + 48 + 8, eventtype::FD_READ).unwrap();
    g.mem.write_u32(8192 + 48 + 16, 0).unwrap();
    w.write_all(b"y").unwrap();
    g.st.poll_oneoff(&mut g.mem, 8192, 16384, 2, OUT).unwrap();
    assert_eq!(g.u32_at(OUT), 1);
    assert_eq!(g.mem[16384 + 10], eventtype::FD_READ);
    assert!(!g.st.deadline_hit);
    // Regular files never wait.
    let (mut g, _) = Guest::with_dirs();
    g.st.deadline = Some(Instant::now());
    let f = g.open(3, "f", oflags::CREAT, RW, 0).unwrap();
    assert_eq!(g.write(f, b"data"), Ok(4));
    assert!(!g.st.deadline_hit);
}
