//! Sandboxed path resolution: every guest path is resolved relative to a
//! directory descriptor and can never name anything outside it.
//!
//! Two strategies, both built on descriptor-relative system calls rather
//! than string checks on paths:
//!
//! * `openat2(2)` with `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS` (Linux 5.6+):
//!   the kernel resolves the whole path and refuses any step — `..`, an
//!   absolute path, a symlink — that leaves the directory. Used for
//!   `path_open`, the hot path.
//! * A component-by-component walk ([`resolve`]): every directory on the way
//!   is opened with `O_PATH | O_NOFOLLOW` relative to the previous one and
//!   held open; `..` pops back to the descriptor that was held for the
//!   parent (so it never asks the file system what `..` is); symlinks are
//!   read through the descriptor of the link itself and their targets are
//!   walked the same way, with absolute targets refused. Because each step
//!   works on a descriptor the walk already holds, a concurrent rename or
//!   symlink swap can change *which* file inside the sandbox is reached but
//!   never lets the walk step outside it. Used for `path_open` where
//!   `openat2` is unavailable, and for every other `path_*` operation, which
//!   then act with a `*at` call on a single final component that is never a
//!   followed symlink.
//!
//! An escape attempt fails with [`Errno::Notcapable`].

use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use crate::abi::Errno;

/// Symlink expansions allowed in one resolution (Linux's limit).
const MAX_SYMLINK_EXPANSIONS: usize = 40;

/// Whether `openat2` may be tried (cleared the first time the kernel or a
/// seccomp filter says it does not exist).
static OPENAT2_AVAILABLE: AtomicBool = AtomicBool::new(true);

/// A path resolved to a directory and one final component in it.
#[derive(Debug)]
pub(crate) struct Resolved<'a> {
    root: BorrowedFd<'a>,
    dir: Option<OwnedFd>,
    /// The final component: never empty, `.` or `..`, and contains no `/`.
    /// `None` when the path names the directory itself (e.g. `.` or `a/..`).
    pub(crate) name: Option<Vec<u8>>,
    /// The path ended in `/` (the final component must be a directory).
    pub(crate) must_be_dir: bool,
}

impl Resolved<'_> {
    /// The directory containing [`Resolved::name`] (or named by the path).
    pub(crate) fn dir(&self) -> BorrowedFd<'_> {
        match &self.dir {
            Some(fd) => fd.as_fd(),
            None => self.root,
        }
    }

    /// The final component, or `.` when the path names the directory.
    pub(crate) fn name_or_dot(&self) -> &[u8] {
        self.name.as_deref().unwrap_or(b".")
    }

    /// With a trailing slash, an existing final component must be a
    /// directory (`ENOTDIR` otherwise). For operations that act on the final
    /// component without following it.
    pub(crate) fn check_trailing_slash(&self) -> Result<(), Errno> {
        if !self.must_be_dir {
            return Ok(());
        }
        if let Some(name) = &self.name {
            match rustix::fs::statat(self.dir(), name.as_slice(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) != FileType::Directory => {
                    return Err(Errno::Notdir);
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// Checks a guest path before any resolution: non-empty, relative, no NUL.
fn check_path(path: &[u8]) -> Result<(), Errno> {
    if path.is_empty() {
        return Err(Errno::Noent);
    }
    if path[0] == b'/' {
        return Err(Errno::Notcapable);
    }
    if path.contains(&0) {
        return Err(Errno::Inval);
    }
    Ok(())
}

fn components(path: &[u8]) -> impl DoubleEndedIterator<Item = &[u8]> {
    path.split(|&b| b == b'/').filter(|c| !c.is_empty())
}

struct Walk<'a> {
    root: BorrowedFd<'a>,
    /// Directories entered below `root`, innermost last.
    stack: Vec<OwnedFd>,
    /// Components still to walk.
    queue: VecDeque<Vec<u8>>,
    expansions: usize,
    must_be_dir: bool,
}

impl<'a> Walk<'a> {
    fn new(root: BorrowedFd<'a>, path: &[u8]) -> Walk<'a> {
        Walk {
            root,
            stack: Vec::new(),
            queue: components(path).map(<[u8]>::to_vec).collect(),
            expansions: 0,
            must_be_dir: path.ends_with(b"/"),
        }
    }

    fn cur(&self) -> BorrowedFd<'_> {
        match self.stack.last() {
            Some(fd) => fd.as_fd(),
            None => self.root,
        }
    }

    /// Replaces the component being walked by a symlink's target.
    fn expand(&mut self, target: &[u8]) -> Result<(), Errno> {
        self.expansions += 1;
        if self.expansions > MAX_SYMLINK_EXPANSIONS {
            return Err(Errno::Loop);
        }
        if target.is_empty() {
            return Err(Errno::Noent);
        }
        if target[0] == b'/' {
            return Err(Errno::Notcapable);
        }
        if self.queue.is_empty() && target.ends_with(b"/") {
            self.must_be_dir = true;
        }
        for c in components(target).rev() {
            self.queue.push_front(c.to_vec());
        }
        Ok(())
    }

    fn finish(mut self, name: Option<Vec<u8>>) -> Resolved<'a> {
        Resolved {
            root: self.root,
            dir: self.stack.pop(),
            name,
            must_be_dir: self.must_be_dir,
        }
    }

    fn run(mut self, follow_final: bool) -> Result<Resolved<'a>, Errno> {
        loop {
            let Some(c) = self.queue.pop_front() else {
                return Ok(self.finish(None));
            };
            let last = self.queue.is_empty();
            match c.as_slice() {
                b"." => {}
                b".." => {
                    if self.stack.pop().is_none() {
                        return Err(Errno::Notcapable);
                    }
                }
                name if last => {
                    if !follow_final {
                        return Ok(self.finish(Some(c)));
                    }
                    match rustix::fs::statat(self.cur(), name, AtFlags::SYMLINK_NOFOLLOW) {
                        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => {
                            match rustix::fs::readlinkat(self.cur(), name, Vec::new()) {
                                Ok(target) => self.expand(target.as_bytes())?,
                                // Replaced by a non-symlink since the stat:
                                // take what is there now.
                                Err(rustix::io::Errno::INVAL) => return Ok(self.finish(Some(c))),
                                Err(e) => return Err(e.into()),
                            }
                        }
                        Ok(_) | Err(rustix::io::Errno::NOENT) => return Ok(self.finish(Some(c))),
                        Err(e) => return Err(e.into()),
                    }
                }
                name => {
                    let fd = rustix::fs::openat(
                        self.cur(),
                        name,
                        OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                        Mode::empty(),
                    )?;
                    let st = rustix::fs::fstat(&fd)?;
                    match FileType::from_raw_mode(st.st_mode) {
                        FileType::Directory => self.stack.push(fd),
                        FileType::Symlink => {
                            // Read the very link that was opened (the name
                            // may have been swapped since).
                            let target = rustix::fs::readlinkat(&fd, c"", Vec::new())?;
                            self.expand(target.as_bytes())?;
                        }
                        _ => return Err(Errno::Notdir),
                    }
                }
            }
        }
    }
}

/// Resolves `path` beneath `root` to a directory and a final component.
///
/// Symlinks in intermediate components are followed (beneath `root`); the
/// final component is followed too when `follow_final` is set, so that on
/// success `name` is not a symlink (unless it was swapped in concurrently,
/// which callers handle by never following it again).
pub(crate) fn resolve<'a>(
    root: BorrowedFd<'a>,
    path: &[u8],
    follow_final: bool,
) -> Result<Resolved<'a>, Errno> {
    check_path(path)?;
    Walk::new(root, path).run(follow_final)
}

/// Opens `path` beneath `root` with `flags` (`O_CLOEXEC` and `O_NOCTTY` are
/// added; `O_NOFOLLOW` is added when `follow` is false).
pub(crate) fn open(
    root: BorrowedFd<'_>,
    path: &[u8],
    follow: bool,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let use_openat2 = cfg!(target_os = "linux") && OPENAT2_AVAILABLE.load(Ordering::Relaxed);
    open_with(root, path, follow, flags, mode, use_openat2)
}

/// [`open`] with the strategy chosen by the caller (tests use both).
pub(crate) fn open_with(
    root: BorrowedFd<'_>,
    path: &[u8],
    follow: bool,
    flags: OFlags,
    mode: Mode,
    use_openat2: bool,
) -> Result<OwnedFd, Errno> {
    check_path(path)?;
    // POSIX: with O_CREAT|O_EXCL a symlink in the final component is never
    // followed (the open fails with EEXIST).
    let creat_excl = flags.contains(OFlags::CREATE | OFlags::EXCL);
    let follow = follow && !creat_excl;
    let mut flags = flags | OFlags::CLOEXEC | OFlags::NOCTTY;
    let mode = if flags.contains(OFlags::CREATE) {
        mode
    } else {
        Mode::empty()
    };
    if use_openat2 {
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::ResolveFlags;
            let f = if follow {
                flags
            } else {
                flags | OFlags::NOFOLLOW
            };
            for _ in 0..4 {
                match rustix::fs::openat2(
                    root,
                    path,
                    f,
                    mode,
                    ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
                ) {
                    Ok(fd) => return Ok(fd),
                    Err(rustix::io::Errno::XDEV) => return Err(Errno::Notcapable),
                    // A concurrent rename raced the lookup: try again.
                    Err(rustix::io::Errno::AGAIN) => continue,
                    // No openat2 (old kernel, or filtered): walk instead.
                    Err(rustix::io::Errno::NOSYS) => {
                        OPENAT2_AVAILABLE.store(false, Ordering::Relaxed);
                        break;
                    }
                    // A seccomp filter may answer EPERM; the walk gives the
                    // real answer either way.
                    Err(rustix::io::Errno::PERM) => break,
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    // The walk. The final component is opened with O_NOFOLLOW; if it turned
    // into a symlink after the walk followed it, walk again (bounded).
    for _ in 0..MAX_SYMLINK_EXPANSIONS {
        let r = resolve(root, path, follow)?;
        if r.must_be_dir {
            flags |= OFlags::DIRECTORY;
        }
        match rustix::fs::openat(r.dir(), r.name_or_dot(), flags | OFlags::NOFOLLOW, mode) {
            Ok(fd) => return Ok(fd),
            Err(rustix::io::Errno::LOOP) if follow && r.name.is_some() => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(Errno::Loop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    struct Fixture {
        _tmp: tempfile::TempDir,
        outside: std::path::PathBuf,
        sandbox: std::path::PathBuf,
        root: OwnedFd,
    }

    /// `tmp/outside/secret.txt` and `tmp/sandbox/{file.txt, sub/inner.txt}`;
    /// the root descriptor is `tmp/sandbox`.
    fn fixture() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tmp.path().join("outside");
        let sandbox = tmp.path().join("sandbox");
        fs::create_dir(&outside).unwrap();
        fs::create_dir(&sandbox).unwrap();
        fs::write(outside.join("secret.txt"), "secret").unwrap();
        fs::write(sandbox.join("file.txt"), "file").unwrap();
        fs::create_dir(sandbox.join("sub")).unwrap();
        fs::write(sandbox.join("sub/inner.txt"), "inner").unwrap();
        let root = rustix::fs::open(
            &sandbox,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .unwrap();
        Fixture {
            _tmp: tmp,
            outside,
            sandbox,
            root,
        }
    }

    fn read_via(f: &Fixture, path: &str, follow: bool, openat2: bool) -> Result<String, Errno> {
        let fd = open_with(
            f.root.as_fd(),
            path.as_bytes(),
            follow,
            OFlags::RDONLY,
            Mode::empty(),
            openat2,
        )?;
        let mut buf = vec![0u8; 64];
        let n = rustix::io::read(&fd, &mut buf).unwrap();
        buf.truncate(n);
        Ok(String::from_utf8(buf).unwrap())
    }

    fn both(f: &Fixture, path: &str, follow: bool) -> Result<String, Errno> {
        let a = read_via(f, path, follow, true);
        let b = read_via(f, path, follow, false);
        assert_eq!(a, b, "openat2 and the walk disagree on {path:?}");
        a
    }

    #[test]
    fn plain_paths_resolve() {
        let f = fixture();
        assert_eq!(both(&f, "file.txt", true).unwrap(), "file");
        assert_eq!(both(&f, "./sub//inner.txt", true).unwrap(), "inner");
        assert_eq!(both(&f, "sub/../file.txt", true).unwrap(), "file");
        assert_eq!(both(&f, "sub/./../sub/inner.txt", false).unwrap(), "inner");
        assert_eq!(both(&f, "missing", true), Err(Errno::Noent));
        assert_eq!(both(&f, "file.txt/x", true), Err(Errno::Notdir));
    }

    #[test]
    fn dotdot_cannot_escape() {
        let f = fixture();
        assert_eq!(both(&f, "..", true), Err(Errno::Notcapable));
        assert_eq!(
            both(&f, "../outside/secret.txt", true),
            Err(Errno::Notcapable)
        );
        assert_eq!(
            both(&f, "sub/../../outside/secret.txt", true),
            Err(Errno::Notcapable)
        );
        assert_eq!(both(&f, "sub/../..", true), Err(Errno::Notcapable));
        assert!(matches!(
            resolve(f.root.as_fd(), b"sub/../..", false),
            Err(Errno::Notcapable)
        ));
        // `..` as the final component of a mutating operation's path.
        assert!(matches!(
            resolve(f.root.as_fd(), b"..", false),
            Err(Errno::Notcapable)
        ));
    }

    #[test]
    fn absolute_paths_are_refused() {
        let f = fixture();
        let abs = f.outside.join("secret.txt");
        assert_eq!(
            both(&f, abs.to_str().unwrap(), true),
            Err(Errno::Notcapable)
        );
        assert_eq!(both(&f, "/", true), Err(Errno::Notcapable));
        assert!(matches!(
            resolve(f.root.as_fd(), b"/etc", false),
            Err(Errno::Notcapable)
        ));
    }

    #[test]
    fn empty_and_nul_paths() {
        let f = fixture();
        assert_eq!(both(&f, "", true), Err(Errno::Noent));
        assert_eq!(both(&f, "a\0b", true), Err(Errno::Inval));
    }

    #[test]
    fn symlinks_pointing_out_are_refused() {
        let f = fixture();
        symlink(f.outside.join("secret.txt"), f.sandbox.join("abs_link")).unwrap();
        symlink("../outside/secret.txt", f.sandbox.join("rel_link")).unwrap();
        symlink("../outside", f.sandbox.join("dir_link")).unwrap();
        symlink("../../outside", f.sandbox.join("sub/deep_link")).unwrap();
        symlink("/proc/self/root", f.sandbox.join("magic")).unwrap();
        for p in [
            "abs_link",
            "rel_link",
            "dir_link/secret.txt",
            "sub/deep_link/secret.txt",
            "magic/etc/passwd",
        ] {
            assert_eq!(both(&f, p, true), Err(Errno::Notcapable), "{p}");
        }
        // Not following the final component: opening the link itself fails
        // (ELOOP), as with O_NOFOLLOW.
        assert_eq!(both(&f, "rel_link", false), Err(Errno::Loop));
        // Resolution for other operations refuses too.
        for p in ["dir_link/secret.txt", "sub/deep_link/x"] {
            assert!(matches!(
                resolve(f.root.as_fd(), p.as_bytes(), false),
                Err(Errno::Notcapable)
            ));
        }
        assert!(matches!(
            resolve(f.root.as_fd(), b"rel_link", true),
            Err(Errno::Notcapable)
        ));
        // Without following, the link itself is the final component; acting
        // on it (e.g. unlink) is allowed and stays inside.
        let r = resolve(f.root.as_fd(), b"rel_link", false).unwrap();
        assert_eq!(r.name.as_deref(), Some(&b"rel_link"[..]));
    }

    #[test]
    fn symlinks_inside_are_followed() {
        let f = fixture();
        symlink("sub/inner.txt", f.sandbox.join("in_link")).unwrap();
        symlink("../file.txt", f.sandbox.join("sub/up_link")).unwrap();
        symlink("sub", f.sandbox.join("sub_link")).unwrap();
        symlink("sub_link/../file.txt", f.sandbox.join("chain")).unwrap();
        assert_eq!(both(&f, "in_link", true).unwrap(), "inner");
        assert_eq!(both(&f, "sub/up_link", true).unwrap(), "file");
        assert_eq!(both(&f, "sub_link/inner.txt", true).unwrap(), "inner");
        assert_eq!(both(&f, "chain", true).unwrap(), "file");
        let r = resolve(f.root.as_fd(), b"in_link", true).unwrap();
        assert_eq!(r.name.as_deref(), Some(&b"inner.txt"[..]));
    }

    #[test]
    fn symlink_loops_end() {
        let f = fixture();
        symlink("b", f.sandbox.join("a")).unwrap();
        symlink("a", f.sandbox.join("b")).unwrap();
        assert_eq!(both(&f, "a", true), Err(Errno::Loop));
        assert_eq!(both(&f, "a/x", true), Err(Errno::Loop));
    }

    #[test]
    fn swapped_symlink_is_refused() {
        // Check, then use: a directory that was fine when first resolved is
        // replaced by a symlink pointing out; the next resolution refuses it.
        let f = fixture();
        fs::create_dir(f.sandbox.join("swap")).unwrap();
        fs::write(f.sandbox.join("swap/secret.txt"), "inside").unwrap();
        assert_eq!(both(&f, "swap/secret.txt", true).unwrap(), "inside");
        fs::rename(f.sandbox.join("swap"), f.sandbox.join("swap_old")).unwrap();
        symlink(&f.outside, f.sandbox.join("swap")).unwrap();
        assert_eq!(both(&f, "swap/secret.txt", true), Err(Errno::Notcapable));
        // A descriptor held across the swap still refers to the old
        // directory, inside the sandbox.
        let held = open_with(
            f.root.as_fd(),
            b"swap_old",
            true,
            OFlags::RDONLY | OFlags::DIRECTORY,
            Mode::empty(),
            false,
        )
        .unwrap();
        fs::remove_file(f.sandbox.join("swap")).unwrap();
        symlink(&f.outside, f.sandbox.join("swap_old/escape")).unwrap();
        assert!(matches!(
            resolve(held.as_fd(), b"escape/secret.txt", true),
            Err(Errno::Notcapable)
        ));
        assert!(matches!(
            resolve(held.as_fd(), b"..", true),
            Err(Errno::Notcapable)
        ));
    }

    #[test]
    fn concurrent_swaps_never_escape() {
        // A thread flips `flip` between a directory inside and a symlink to
        // the outside while the main thread resolves through it. Every
        // answer must be the inside file or an error, never the secret. The
        // loop is bounded by a count, not by time.
        let f = fixture();
        fs::create_dir(f.sandbox.join("real")).unwrap();
        fs::write(f.sandbox.join("real/secret.txt"), "inside").unwrap();
        symlink(&f.outside, f.sandbox.join("evil")).unwrap();
        let sandbox = f.sandbox.clone();
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let flipper = std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop2.load(Ordering::Relaxed) && n < 200_000 {
                let _ = fs::remove_file(sandbox.join("flip"));
                let _ = symlink("real", sandbox.join("flip"));
                let _ = fs::remove_file(sandbox.join("flip"));
                let _ = symlink("evil", sandbox.join("flip"));
                n += 1;
            }
        });
        let mut inside = 0;
        for i in 0..4000 {
            let r = read_via(&f, "flip/secret.txt", true, i % 2 == 0);
            match r {
                Ok(s) => {
                    assert_eq!(s, "inside");
                    inside += 1;
                }
                Err(e) => assert!(matches!(e, Errno::Notcapable | Errno::Noent), "{e:?}"),
            }
        }
        stop.store(true, Ordering::Relaxed);
        flipper.join().unwrap();
        let _ = inside;
    }

    #[test]
    fn create_through_dangling_symlink_stays_inside() {
        let f = fixture();
        symlink("../outside/created.txt", f.sandbox.join("dangling_out")).unwrap();
        symlink("created_in.txt", f.sandbox.join("dangling_in")).unwrap();
        for openat2 in [true, false] {
            let r = open_with(
                f.root.as_fd(),
                b"dangling_out",
                true,
                OFlags::WRONLY | OFlags::CREATE,
                Mode::from_raw_mode(0o644),
                openat2,
            );
            assert_eq!(r.err(), Some(Errno::Notcapable));
            assert!(!f.outside.join("created.txt").exists());
            // O_EXCL never follows the final symlink.
            let r = open_with(
                f.root.as_fd(),
                b"dangling_in",
                true,
                OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL,
                Mode::from_raw_mode(0o644),
                openat2,
            );
            assert_eq!(r.err(), Some(Errno::Exist));
        }
        open_with(
            f.root.as_fd(),
            b"dangling_in",
            true,
            OFlags::WRONLY | OFlags::CREATE,
            Mode::from_raw_mode(0o644),
            false,
        )
        .unwrap();
        assert!(f.sandbox.join("created_in.txt").exists());
    }

    #[test]
    fn trailing_slash_requires_directory() {
        let f = fixture();
        assert_eq!(both(&f, "file.txt/", true), Err(Errno::Notdir));
        let r = resolve(f.root.as_fd(), b"file.txt/", false).unwrap();
        assert!(r.must_be_dir);
        assert_eq!(r.check_trailing_slash(), Err(Errno::Notdir));
        let r = resolve(f.root.as_fd(), b"sub/", false).unwrap();
        assert_eq!(r.check_trailing_slash(), Ok(()));
        let r = resolve(f.root.as_fd(), b"sub/..", false).unwrap();
        assert!(r.name.is_none());
    }
}
