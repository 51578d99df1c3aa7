//! The `wasi_snapshot_preview1` functions, on a [`State`] and a
//! [`GuestMemory`]. Each returns `Ok(())` (errno `SUCCESS`) or the errno;
//! results are written through guest pointers, all bounds-checked.

use std::io::{Read, Write};
use std::num::NonZeroU64;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timestamps};
use rustix::time::{ClockId, Timespec};

use crate::abi::{
    self, Errno, Fdstat, Filestat, Subscription, SubscriptionKind, clockid, eventrwflags,
    eventtype, fdflags, filetype, fstflags, lookupflags, oflags, rights, size, subclockflags,
    whence,
};
use crate::ctx::State;
use crate::mem::{GuestMemory, MAX_IO, MemExt, iovec_total};
use crate::sandbox;
use crate::table::{DirEntry, DirListing, Entry, Kind, host_filetype};

type R = Result<(), Errno>;

/// Retries a system call interrupted by a signal.
fn retry<T>(mut f: impl FnMut() -> rustix::io::Result<T>) -> Result<T, Errno> {
    loop {
        match f() {
            Err(rustix::io::Errno::INTR) => continue,
            r => return r.map_err(Errno::from),
        }
    }
}

fn ts_to_ns(sec: i64, nsec: u64) -> u64 {
    if sec < 0 {
        return 0;
    }
    (sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(nsec)
}

fn filestat_of(st: &rustix::fs::Stat) -> Filestat {
    Filestat {
        dev: st.st_dev,
        ino: st.st_ino,
        filetype: host_filetype(FileType::from_raw_mode(st.st_mode)),
        nlink: st.st_nlink,
        size: st.st_size.max(0) as u64,
        atim: ts_to_ns(st.st_atime, st.st_atime_nsec),
        mtim: ts_to_ns(st.st_mtime, st.st_mtime_nsec),
        ctim: ts_to_ns(st.st_ctime, st.st_ctime_nsec),
    }
}

fn clock(id: u32) -> Result<ClockId, Errno> {
    Ok(match id {
        clockid::REALTIME => ClockId::Realtime,
        clockid::MONOTONIC => ClockId::Monotonic,
        clockid::PROCESS_CPUTIME_ID => ClockId::ProcessCPUTime,
        clockid::THREAD_CPUTIME_ID => ClockId::ThreadCPUTime,
        _ => return Err(Errno::Inval),
    })
}

fn ns_of(t: Timespec) -> u64 {
    ts_to_ns(t.tv_sec, t.tv_nsec.max(0) as u64)
}

/// The `Timestamps` for a `*_filestat_set_times` call.
fn timestamps(atim: u64, mtim: u64, flags: u16) -> Result<Timestamps, Errno> {
    if flags & !(fstflags::ATIM | fstflags::ATIM_NOW | fstflags::MTIM | fstflags::MTIM_NOW) != 0 {
        return Err(Errno::Inval);
    }
    let one = |t: u64, set: u16, now: u16| -> Result<Timespec, Errno> {
        match (flags & set != 0, flags & now != 0) {
            (true, true) => Err(Errno::Inval),
            (true, false) => Ok(Timespec {
                tv_sec: (t / 1_000_000_000) as i64,
                tv_nsec: (t % 1_000_000_000) as _,
            }),
            (false, true) => Ok(Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_NOW,
            }),
            (false, false) => Ok(Timespec {
                tv_sec: 0,
                tv_nsec: rustix::fs::UTIME_OMIT,
            }),
        }
    };
    Ok(Timestamps {
        last_access: one(atim, fstflags::ATIM, fstflags::ATIM_NOW)?,
        last_modification: one(mtim, fstflags::MTIM, fstflags::MTIM_NOW)?,
    })
}

fn write_strings(mem: &mut dyn GuestMemory, list: &[Vec<u8>], ptrs: u32, buf: u32) -> R {
    let mut off = 0u32;
    for (i, s) in list.iter().enumerate() {
        let p = buf.checked_add(off).ok_or(Errno::Fault)?;
        mem.write_u32(ptrs.checked_add(4 * i as u32).ok_or(Errno::Fault)?, p)?;
        mem.write(p, s)?;
        mem.write_u8(p.checked_add(s.len() as u32).ok_or(Errno::Fault)?, 0)?;
        off = off.checked_add(s.len() as u32 + 1).ok_or(Errno::Overflow)?;
    }
    Ok(())
}

fn sizes(list: &[Vec<u8>]) -> Result<(u32, u32), Errno> {
    let n = u32::try_from(list.len()).map_err(|_| Errno::Overflow)?;
    let bytes: usize = list.iter().map(|s| s.len() + 1).sum();
    let bytes = u32::try_from(bytes).map_err(|_| Errno::Overflow)?;
    Ok((n, bytes))
}

/// Reads a whole directory through a fresh descriptor (so the guest's
/// descriptor offset is not disturbed), `.` and `..` included.
fn list_dir(fd: BorrowedFd<'_>) -> Result<DirListing, Errno> {
    let mut dir = rustix::fs::Dir::read_from(fd)?;
    let mut entries = Vec::new();
    while let Some(e) = dir.read() {
        let e = e?;
        let name = e.file_name().to_bytes().to_vec();
        let mut ft = e.file_type();
        if ft == FileType::Unknown
            && let Ok(st) = rustix::fs::statat(fd, name.as_slice(), AtFlags::SYMLINK_NOFOLLOW)
        {
            ft = FileType::from_raw_mode(st.st_mode);
        }
        entries.push(DirEntry {
            name,
            ino: e.ino(),
            filetype: host_filetype(ft),
        });
    }
    Ok(DirListing { entries })
}

/// What a pending `poll_oneoff` subscription waits on.
enum Wait {
    Clock(Duration),
    Fd { fd: u32, read: bool },
}

/// `NONBLOCK` on an inherited stdio descriptor, emulated: the host's shared
/// file description stays as it was (see `Entry::shared_description`), and
/// a read or write that would block fails with `EAGAIN` instead.
fn emulated_nonblock(e: &Entry, events: PollFlags) -> Result<(), Errno> {
    if !e.shared_description || e.stream_flags & fdflags::NONBLOCK == 0 {
        return Ok(());
    }
    let Some(h) = e.host_fd() else {
        return Ok(());
    };
    if matches!(e.filetype, filetype::REGULAR_FILE | filetype::DIRECTORY) {
        return Ok(());
    }
    let mut p = [PollFd::from_borrowed_fd(h, events)];
    let zero = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match retry(|| rustix::event::poll(&mut p, Some(&zero))) {
        Ok(0) => Err(Errno::Again),
        _ => Ok(()),
    }
}

/// The [`Stop`] of a `State`, borrowing only its stop fields (so the
/// descriptor table can be borrowed at the same time).
macro_rules! stop {
    ($s:expr) => {
        Stop {
            deadline: $s.deadline,
            deadline_hit: &mut $s.deadline_hit,
            interrupt: $s.interrupt.as_ref(),
            interrupted: &mut $s.interrupted_hit,
        }
    };
}

/// How often a blocked call looks at the store's interrupt flag: an
/// interrupt stops a guest blocked in the host within about this long.
const INTERRUPT_SLICE: Duration = Duration::from_millis(5);

/// What ends a blocking host call early: the context's deadline, and the
/// store being interrupted (`InterruptHandle::interrupt`, Ctrl-C in `weft
/// run`). Each sets its flag and the call fails with `Intr`; the glue then
/// ends the run with `DeadlineExceeded` or `Interrupted`.
pub(crate) struct Stop<'a> {
    pub(crate) deadline: Option<Instant>,
    pub(crate) deadline_hit: &'a mut bool,
    pub(crate) interrupt: Option<&'a weft::InterruptHandle>,
    pub(crate) interrupted: &'a mut bool,
}

impl Stop<'_> {
    /// How long the next wait may last (`None`: forever).
    fn slice(&self) -> Option<Duration> {
        let left = self
            .deadline
            .map(|d| d.saturating_duration_since(Instant::now()));
        match (left, self.interrupt.is_some()) {
            (Some(l), true) => Some(l.min(INTERRUPT_SLICE)),
            (Some(l), false) => Some(l),
            (None, true) => Some(INTERRUPT_SLICE),
            (None, false) => None,
        }
    }

    /// `Err(Intr)`, with the reason recorded, if the call must stop now.
    fn check(&mut self) -> Result<(), Errno> {
        if self
            .interrupt
            .is_some_and(weft::InterruptHandle::is_interrupted)
        {
            *self.interrupted = true;
            return Err(Errno::Intr);
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            *self.deadline_hit = true;
            return Err(Errno::Intr);
        }
        Ok(())
    }
}

/// Waits until a blocking host descriptor is ready for `events`, or `stop`
/// says to give up (`Err(Intr)`). Descriptors in non-blocking mode, regular
/// files and directories are never waited on.
fn wait_ready(mut stop: Stop<'_>, e: &Entry, events: PollFlags) -> Result<(), Errno> {
    if stop.slice().is_none() {
        return Ok(());
    }
    let Some(h) = e.host_fd() else {
        return Ok(());
    };
    if matches!(e.filetype, filetype::REGULAR_FILE | filetype::DIRECTORY) {
        return Ok(());
    }
    if rustix::fs::fcntl_getfl(h).is_ok_and(|f| f.contains(OFlags::NONBLOCK)) {
        return Ok(());
    }
    loop {
        let wait = stop.slice().unwrap_or(INTERRUPT_SLICE);
        let ts = Timespec {
            tv_sec: wait.as_secs() as i64,
            tv_nsec: wait.subsec_nanos() as _,
        };
        let mut p = [PollFd::from_borrowed_fd(h, events)];
        match rustix::event::poll(&mut p, Some(&ts)) {
            Ok(n) if n > 0 => return Ok(()),
            Ok(_) | Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
        stop.check()?;
    }
}

impl State {
    fn dir_entry(&self, fd: u32, need: u64) -> Result<(&Entry, BorrowedFd<'_>), Errno> {
        let e = self.table.get(fd)?;
        let Kind::Dir { fd: d, .. } = &e.kind else {
            return Err(Errno::Notdir);
        };
        e.require(need)?;
        Ok((e, d.as_fd()))
    }

    // ----- arguments, environment, clocks, randomness -----

    pub(crate) fn args_get(&self, mem: &mut dyn GuestMemory, argv: u32, buf: u32) -> R {
        write_strings(mem, &self.args, argv, buf)
    }

    pub(crate) fn args_sizes_get(&self, mem: &mut dyn GuestMemory, argc: u32, size: u32) -> R {
        let (n, bytes) = sizes(&self.args)?;
        mem.write_u32(argc, n)?;
        mem.write_u32(size, bytes)
    }

    pub(crate) fn environ_get(&self, mem: &mut dyn GuestMemory, environ: u32, buf: u32) -> R {
        write_strings(mem, &self.env, environ, buf)
    }

    pub(crate) fn environ_sizes_get(&self, mem: &mut dyn GuestMemory, n: u32, size: u32) -> R {
        let (count, bytes) = sizes(&self.env)?;
        mem.write_u32(n, count)?;
        mem.write_u32(size, bytes)
    }

    pub(crate) fn clock_res_get(&self, mem: &mut dyn GuestMemory, id: u32, out: u32) -> R {
        let res = ns_of(rustix::time::clock_getres(clock(id)?)).max(1);
        mem.write_u64(out, res)
    }

    pub(crate) fn clock_time_get(
        &self,
        mem: &mut dyn GuestMemory,
        id: u32,
        _prec: u64,
        out: u32,
    ) -> R {
        let now = ns_of(rustix::time::clock_gettime(clock(id)?));
        mem.write_u64(out, now)
    }

    pub(crate) fn random_get(&self, mem: &mut dyn GuestMemory, buf: u32, len: u32) -> R {
        mem.check(buf, u64::from(len))?;
        let mut chunk = vec![0u8; (len as usize).min(64 << 10)];
        let mut done = 0u32;
        while done < len {
            let n = ((len - done) as usize).min(chunk.len());
            getrandom::fill(&mut chunk[..n]).map_err(|_| Errno::Io)?;
            mem.write(buf + done, &chunk[..n])?;
            done += n as u32;
        }
        Ok(())
    }

    // ----- descriptors -----

    pub(crate) fn fd_advise(&mut self, fd: u32, offset: u64, len: u64, advice: u8) -> R {
        use rustix::fs::Advice;
        let e = self.table.get(fd)?;
        e.require(rights::FD_ADVISE)?;
        let advice = match advice {
            abi::advice::NORMAL => Advice::Normal,
            abi::advice::SEQUENTIAL => Advice::Sequential,
            abi::advice::RANDOM => Advice::Random,
            abi::advice::WILLNEED => Advice::WillNeed,
            abi::advice::DONTNEED => Advice::DontNeed,
            abi::advice::NOREUSE => Advice::NoReuse,
            _ => return Err(Errno::Inval),
        };
        let h = e.host_fd().ok_or(Errno::Spipe)?;
        retry(|| rustix::fs::fadvise(h, offset, NonZeroU64::new(len), advice))
    }

    pub(crate) fn fd_allocate(&mut self, fd: u32, offset: u64, len: u64) -> R {
        let e = self.table.get(fd)?;
        e.require(rights::FD_ALLOCATE)?;
        let Kind::File { fd: h } = &e.kind else {
            return Err(Errno::Badf);
        };
        if e.filetype != filetype::REGULAR_FILE {
            return Err(Errno::Spipe);
        }
        retry(|| rustix::fs::fallocate(h, rustix::fs::FallocateFlags::empty(), offset, len))
    }

    pub(crate) fn fd_close(&mut self, fd: u32) -> R {
        self.table.remove(fd).map(drop)
    }

    pub(crate) fn fd_datasync(&mut self, fd: u32) -> R {
        let e = self.table.get_mut(fd)?;
        e.require(rights::FD_DATASYNC)?;
        match &mut e.kind {
            Kind::Writer(w) => w.flush().map_err(Errno::from),
            Kind::Reader(_) => Err(Errno::Inval),
            _ => {
                let h = e.host_fd().ok_or(Errno::Badf)?;
                retry(|| rustix::fs::fdatasync(h))
            }
        }
    }

    pub(crate) fn fd_sync(&mut self, fd: u32) -> R {
        let e = self.table.get_mut(fd)?;
        e.require(rights::FD_SYNC)?;
        match &mut e.kind {
            Kind::Writer(w) => w.flush().map_err(Errno::from),
            Kind::Reader(_) => Err(Errno::Inval),
            _ => {
                let h = e.host_fd().ok_or(Errno::Badf)?;
                retry(|| rustix::fs::fsync(h))
            }
        }
    }

    pub(crate) fn fd_fdstat_get(&self, mem: &mut dyn GuestMemory, fd: u32, out: u32) -> R {
        let e = self.table.get(fd)?;
        let flags = match e.host_fd().filter(|_| !e.shared_description) {
            Some(h) => {
                let fl = rustix::fs::fcntl_getfl(h)?;
                let mut f = 0;
                if fl.contains(OFlags::APPEND) {
                    f |= fdflags::APPEND;
                }
                if fl.contains(OFlags::NONBLOCK) {
                    f |= fdflags::NONBLOCK;
                }
                if fl.contains(OFlags::SYNC) {
                    // O_SYNC includes the O_DSYNC bit on Linux.
                    f |= fdflags::SYNC;
                } else if fl.contains(OFlags::DSYNC) {
                    f |= fdflags::DSYNC;
                }
                f
            }
            None => e.stream_flags,
        };
        let st = Fdstat {
            filetype: e.filetype,
            flags,
            rights_base: e.rights_base,
            rights_inheriting: e.rights_inheriting,
        };
        mem.write(out, &st.encode())
    }

    pub(crate) fn fd_fdstat_set_flags(&mut self, fd: u32, flags: u16) -> R {
        let e = self.table.get_mut(fd)?;
        e.require(rights::FD_FDSTAT_SET_FLAGS)?;
        if flags & !fdflags::ALL != 0 {
            return Err(Errno::Inval);
        }
        if flags & (fdflags::DSYNC | fdflags::RSYNC | fdflags::SYNC) != 0 {
            // Linux cannot change these on an open file.
            return Err(Errno::Notsup);
        }
        match e.host_fd().filter(|_| !e.shared_description) {
            Some(h) => {
                let mut fl = rustix::fs::fcntl_getfl(h)?;
                fl.set(OFlags::APPEND, flags & fdflags::APPEND != 0);
                fl.set(OFlags::NONBLOCK, flags & fdflags::NONBLOCK != 0);
                retry(|| rustix::fs::fcntl_setfl(h, fl))
            }
            None => {
                e.stream_flags = flags;
                Ok(())
            }
        }
    }

    pub(crate) fn fd_fdstat_set_rights(&mut self, fd: u32, base: u64, inheriting: u64) -> R {
        let e = self.table.get_mut(fd)?;
        if base & !e.rights_base != 0 || inheriting & !e.rights_inheriting != 0 {
            return Err(Errno::Notcapable);
        }
        e.rights_base = base;
        e.rights_inheriting = inheriting;
        Ok(())
    }

    pub(crate) fn fd_filestat_get(&self, mem: &mut dyn GuestMemory, fd: u32, out: u32) -> R {
        let e = self.table.get(fd)?;
        e.require(rights::FD_FILESTAT_GET)?;
        let st = match e.host_fd() {
            Some(h) => {
                let mut st = filestat_of(&rustix::fs::fstat(h)?);
                st.filetype = e.filetype;
                st
            }
            None => Filestat {
                filetype: e.filetype,
                ..Filestat::default()
            },
        };
        mem.write(out, &st.encode())
    }

    pub(crate) fn fd_filestat_set_size(&mut self, fd: u32, size: u64) -> R {
        let e = self.table.get(fd)?;
        e.require(rights::FD_FILESTAT_SET_SIZE)?;
        let Kind::File { fd: h } = &e.kind else {
            return Err(Errno::Badf);
        };
        retry(|| rustix::fs::ftruncate(h, size))
    }

    pub(crate) fn fd_filestat_set_times(&mut self, fd: u32, atim: u64, mtim: u64, flags: u16) -> R {
        let e = self.table.get(fd)?;
        e.require(rights::FD_FILESTAT_SET_TIMES)?;
        let times = timestamps(atim, mtim, flags)?;
        let h = e.host_fd().ok_or(Errno::Badf)?;
        retry(|| rustix::fs::futimens(h, &times))
    }

    pub(crate) fn fd_pread(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        iovs: u32,
        iovs_len: u32,
        offset: u64,
        nread: u32,
    ) -> R {
        let iovs = mem.read_iovecs(iovs, iovs_len)?;
        let h = self
            .table
            .get(fd)?
            .positioned_fd(rights::FD_READ | rights::FD_SEEK)?;
        let mut buf = vec![0u8; iovec_total(&iovs)];
        let n = retry(|| rustix::io::pread(h, &mut buf[..], offset))?;
        mem.scatter(&iovs, &buf[..n])?;
        mem.write_u32(nread, n as u32)
    }

    pub(crate) fn fd_pwrite(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        iovs: u32,
        iovs_len: u32,
        offset: u64,
        nwritten: u32,
    ) -> R {
        let iovs = mem.read_iovecs(iovs, iovs_len)?;
        let h = self
            .table
            .get(fd)?
            .positioned_fd(rights::FD_WRITE | rights::FD_SEEK)?;
        let data = mem.gather(&iovs)?;
        let n = retry(|| rustix::io::pwrite(h, &data, offset))?;
        mem.write_u32(nwritten, n as u32)
    }

    pub(crate) fn fd_prestat_get(&self, mem: &mut dyn GuestMemory, fd: u32, out: u32) -> R {
        let e = self.table.get(fd)?;
        let name = e.preopen.as_ref().ok_or(Errno::Badf)?;
        mem.write(out, &abi::encode_prestat_dir(name.len() as u32))
    }

    pub(crate) fn fd_prestat_dir_name(
        &self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> R {
        let e = self.table.get(fd)?;
        let name = e.preopen.as_ref().ok_or(Errno::Badf)?;
        if (len as usize) < name.len() {
            return Err(Errno::Nametoolong);
        }
        mem.write(path, name)
    }

    pub(crate) fn fd_read(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        iovs: u32,
        iovs_len: u32,
        nread: u32,
    ) -> R {
        let iovs = mem.read_iovecs(iovs, iovs_len)?;
        let e = self.table.get_mut(fd)?;
        if e.rights_base & rights::FD_READ == 0 {
            return Err(Errno::Badf);
        }
        emulated_nonblock(e, PollFlags::IN)?;
        wait_ready(stop!(self), e, PollFlags::IN)?;
        let mut buf = vec![0u8; iovec_total(&iovs)];
        let n = match &mut e.kind {
            Kind::Reader(r) => loop {
                match r.read(&mut buf) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    r => break r?,
                }
            },
            Kind::Writer(_) => return Err(Errno::Badf),
            Kind::Dir { .. } => return Err(Errno::Isdir),
            Kind::File { fd } | Kind::Socket { fd } => {
                retry(|| rustix::io::read(&*fd, &mut buf[..]))?
            }
        };
        mem.scatter(&iovs, &buf[..n])?;
        mem.write_u32(nread, n as u32)
    }

    pub(crate) fn fd_write(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        iovs: u32,
        iovs_len: u32,
        nwritten: u32,
    ) -> R {
        let iovs = mem.read_iovecs(iovs, iovs_len)?;
        let e = self.table.get_mut(fd)?;
        if e.rights_base & rights::FD_WRITE == 0 {
            return Err(Errno::Badf);
        }
        emulated_nonblock(e, PollFlags::OUT)?;
        wait_ready(stop!(self), e, PollFlags::OUT)?;
        let data = mem.gather(&iovs)?;
        let n = match &mut e.kind {
            Kind::Writer(w) => {
                w.write_all(&data)?;
                w.flush()?;
                data.len()
            }
            Kind::Reader(_) => return Err(Errno::Badf),
            Kind::Dir { .. } => return Err(Errno::Isdir),
            Kind::File { fd } | Kind::Socket { fd } => {
                if data.is_empty() {
                    0
                } else {
                    retry(|| rustix::io::write(&*fd, &data))?
                }
            }
        };
        mem.write_u32(nwritten, n as u32)
    }

    pub(crate) fn fd_readdir(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        buf: u32,
        buf_len: u32,
        cookie: u64,
        bufused: u32,
    ) -> R {
        mem.check(buf, u64::from(buf_len))?;
        let e = self.table.get_mut(fd)?;
        e.require(rights::FD_READDIR)?;
        let Kind::Dir { fd: d, listing } = &mut e.kind else {
            return Err(Errno::Notdir);
        };
        if cookie == 0 || listing.is_none() {
            *listing = Some(list_dir(d.as_fd())?);
        }
        let entries: &[DirEntry] = listing.as_ref().map_or(&[], |l| &l.entries);
        let mut out = Vec::with_capacity((buf_len as usize).min(64 << 10));
        let start = usize::try_from(cookie).unwrap_or(usize::MAX);
        for (i, ent) in entries.iter().enumerate().skip(start) {
            if out.len() >= buf_len as usize {
                break;
            }
            let header =
                abi::encode_dirent(i as u64 + 1, ent.ino, ent.name.len() as u32, ent.filetype);
            out.extend_from_slice(&header);
            out.extend_from_slice(&ent.name);
        }
        // A full buffer tells the guest to call again; the last entry may be
        // cut short (the guest then asks again from that entry's cookie).
        out.truncate(buf_len as usize);
        mem.write(buf, &out)?;
        mem.write_u32(bufused, out.len() as u32)
    }

    pub(crate) fn fd_renumber(&mut self, from: u32, to: u32) -> R {
        if !self.table.contains(from) || !self.table.contains(to) {
            return Err(Errno::Badf);
        }
        if from == to {
            return Ok(());
        }
        let e = self.table.remove(from)?;
        self.table.insert_at(to, e);
        Ok(())
    }

    pub(crate) fn fd_seek(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        offset: i64,
        wh: u8,
        out: u32,
    ) -> R {
        use rustix::fs::SeekFrom;
        let e = self.table.get(fd)?;
        if !e.seekable() {
            return Err(Errno::Spipe);
        }
        if offset == 0 && wh == whence::CUR {
            e.require(rights::FD_TELL)?;
        } else {
            e.require(rights::FD_SEEK)?;
        }
        let pos = match wh {
            whence::SET => SeekFrom::Start(u64::try_from(offset).map_err(|_| Errno::Inval)?),
            whence::CUR => SeekFrom::Current(offset),
            whence::END => SeekFrom::End(offset),
            _ => return Err(Errno::Inval),
        };
        let h = e.host_fd().ok_or(Errno::Spipe)?;
        let new = retry(|| rustix::fs::seek(h, pos))?;
        mem.write_u64(out, new)
    }

    pub(crate) fn fd_tell(&mut self, mem: &mut dyn GuestMemory, fd: u32, out: u32) -> R {
        let e = self.table.get(fd)?;
        if !e.seekable() {
            return Err(Errno::Spipe);
        }
        e.require(rights::FD_TELL)?;
        let h = e.host_fd().ok_or(Errno::Spipe)?;
        let pos = retry(|| rustix::fs::tell(h))?;
        mem.write_u64(out, pos)
    }

    // ----- paths -----

    pub(crate) fn path_create_directory(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> R {
        let path = mem.read_path(path, len)?;
        let (_, dir) = self.dir_entry(fd, rights::PATH_CREATE_DIRECTORY)?;
        let r = sandbox::resolve(dir, &path, false)?;
        retry(|| rustix::fs::mkdirat(r.dir(), r.name_or_dot(), Mode::from_raw_mode(0o777)))
    }

    pub(crate) fn path_filestat_get(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        flags: u32,
        path: u32,
        len: u32,
        out: u32,
    ) -> R {
        let path = mem.read_path(path, len)?;
        let (_, dir) = self.dir_entry(fd, rights::PATH_FILESTAT_GET)?;
        let follow = flags & lookupflags::SYMLINK_FOLLOW != 0 || path.ends_with(b"/");
        let r = sandbox::resolve(dir, &path, follow)?;
        let st = retry(|| rustix::fs::statat(r.dir(), r.name_or_dot(), AtFlags::SYMLINK_NOFOLLOW))?;
        if r.must_be_dir && FileType::from_raw_mode(st.st_mode) != FileType::Directory {
            return Err(Errno::Notdir);
        }
        mem.write(out, &filestat_of(&st).encode())
    }

    #[allow(clippy::too_many_arguments, reason = "the witx signature")]
    pub(crate) fn path_filestat_set_times(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        flags: u32,
        path: u32,
        len: u32,
        atim: u64,
        mtim: u64,
        fst: u16,
    ) -> R {
        let path = mem.read_path(path, len)?;
        let (_, dir) = self.dir_entry(fd, rights::PATH_FILESTAT_SET_TIMES)?;
        let times = timestamps(atim, mtim, fst)?;
        let follow = flags & lookupflags::SYMLINK_FOLLOW != 0;
        let r = sandbox::resolve(dir, &path, follow)?;
        r.check_trailing_slash()?;
        retry(|| rustix::fs::utimensat(r.dir(), r.name_or_dot(), &times, AtFlags::SYMLINK_NOFOLLOW))
    }

    #[allow(clippy::too_many_arguments, reason = "the witx signature")]
    pub(crate) fn path_link(
        &mut self,
        mem: &mut dyn GuestMemory,
        old_fd: u32,
        old_flags: u32,
        old_path: u32,
        old_len: u32,
        new_fd: u32,
        new_path: u32,
        new_len: u32,
    ) -> R {
        let old_path = mem.read_path(old_path, old_len)?;
        let new_path = mem.read_path(new_path, new_len)?;
        let (_, old_dir) = self.dir_entry(old_fd, rights::PATH_LINK_SOURCE)?;
        let (_, new_dir) = self.dir_entry(new_fd, rights::PATH_LINK_TARGET)?;
        let follow = old_flags & lookupflags::SYMLINK_FOLLOW != 0;
        let old = sandbox::resolve(old_dir, &old_path, follow)?;
        old.check_trailing_slash()?;
        let new = sandbox::resolve(new_dir, &new_path, false)?;
        new.check_trailing_slash()?;
        retry(|| {
            rustix::fs::linkat(
                old.dir(),
                old.name_or_dot(),
                new.dir(),
                new.name_or_dot(),
                AtFlags::empty(),
            )
        })
    }

    #[allow(clippy::too_many_arguments, reason = "the witx signature")]
    pub(crate) fn path_open(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        dirflags: u32,
        path: u32,
        len: u32,
        oflags: u16,
        base: u64,
        inheriting: u64,
        fdflags: u16,
        out: u32,
    ) -> R {
        let path = mem.read_path(path, len)?;
        mem.check(out, 4)?;
        if oflags & !oflags::ALL != 0 || fdflags & !fdflags::ALL != 0 {
            return Err(Errno::Inval);
        }
        let (parent, dir) = self.dir_entry(fd, rights::PATH_OPEN)?;
        let mut need = 0;
        if oflags & oflags::CREAT != 0 {
            need |= rights::PATH_CREATE_FILE;
        }
        if oflags & oflags::TRUNC != 0 {
            need |= rights::PATH_FILESTAT_SET_SIZE;
        }
        parent.require(need)?;
        // In a read-only tree, a request to write — explicit (FD_WRITE),
        // implied by write-only flags (append, sync), or implied by asking
        // for neither reading nor writing, which is what wasi-libc's
        // `open(O_WRONLY)` sends once it has masked the rights with the
        // directory's — fails here, as a write to a read-only file system
        // would, instead of opening a descriptor that cannot write.
        if parent.rights_inheriting & rights::FD_WRITE == 0
            && oflags & oflags::DIRECTORY == 0
            && (base & rights::FD_WRITE != 0
                || fdflags & (fdflags::APPEND | fdflags::DSYNC | fdflags::SYNC) != 0
                || base & (rights::FD_READ | rights::FD_READDIR) == 0)
        {
            return Err(Errno::Notcapable);
        }
        let base = base & parent.rights_inheriting;
        let inheriting = inheriting & parent.rights_inheriting;

        let read = base & (rights::FD_READ | rights::FD_READDIR) != 0;
        let write =
            base & (rights::FD_WRITE | rights::FD_ALLOCATE | rights::FD_FILESTAT_SET_SIZE) != 0;
        let mut fl = if oflags & oflags::DIRECTORY != 0 {
            OFlags::RDONLY | OFlags::DIRECTORY
        } else {
            match (read, write) {
                (_, false) => OFlags::RDONLY,
                (false, true) => OFlags::WRONLY,
                (true, true) => OFlags::RDWR,
            }
        };
        if oflags & oflags::CREAT != 0 {
            fl |= OFlags::CREATE;
        }
        if oflags & oflags::EXCL != 0 {
            fl |= OFlags::EXCL;
        }
        if oflags & oflags::TRUNC != 0 {
            fl |= OFlags::TRUNC;
        }
        if fdflags & fdflags::APPEND != 0 {
            fl |= OFlags::APPEND;
        }
        if fdflags & fdflags::NONBLOCK != 0 {
            fl |= OFlags::NONBLOCK;
        }
        if fdflags & fdflags::DSYNC != 0 {
            fl |= OFlags::DSYNC;
        }
        if fdflags & (fdflags::SYNC | fdflags::RSYNC) != 0 {
            fl |= OFlags::SYNC;
        }
        let follow = dirflags & lookupflags::SYMLINK_FOLLOW != 0;
        let host = sandbox::open(dir, &path, follow, fl, Mode::from_raw_mode(0o666))?;
        let mut entry = Entry::host(host, rights::ALL)?;
        entry.rights_base &= base;
        entry.rights_inheriting &= inheriting;
        let new = self.table.insert(entry)?;
        mem.write_u32(out, new)
    }

    #[allow(clippy::too_many_arguments, reason = "the witx signature")]
    pub(crate) fn path_readlink(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
        buf: u32,
        buf_len: u32,
        bufused: u32,
    ) -> R {
        let path = mem.read_path(path, len)?;
        mem.check(buf, u64::from(buf_len))?;
        let (_, dir) = self.dir_entry(fd, rights::PATH_READLINK)?;
        let r = sandbox::resolve(dir, &path, false)?;
        r.check_trailing_slash()?;
        let target = retry(|| rustix::fs::readlinkat(r.dir(), r.name_or_dot(), Vec::new()))?;
        let bytes = target.as_bytes();
        let n = bytes.len().min(buf_len as usize);
        mem.write(buf, &bytes[..n])?;
        mem.write_u32(bufused, n as u32)
    }

    pub(crate) fn path_remove_directory(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> R {
        let path = mem.read_path(path, len)?;
        let (_, dir) = self.dir_entry(fd, rights::PATH_REMOVE_DIRECTORY)?;
        let r = sandbox::resolve(dir, &path, false)?;
        r.check_trailing_slash()?;
        retry(|| rustix::fs::unlinkat(r.dir(), r.name_or_dot(), AtFlags::REMOVEDIR))
    }

    #[allow(clippy::too_many_arguments, reason = "the witx signature")]
    pub(crate) fn path_rename(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        old_path: u32,
        old_len: u32,
        new_fd: u32,
        new_path: u32,
        new_len: u32,
    ) -> R {
        let old_path = mem.read_path(old_path, old_len)?;
        let new_path = mem.read_path(new_path, new_len)?;
        let (_, old_dir) = self.dir_entry(fd, rights::PATH_RENAME_SOURCE)?;
        let (_, new_dir) = self.dir_entry(new_fd, rights::PATH_RENAME_TARGET)?;
        let old = sandbox::resolve(old_dir, &old_path, false)?;
        old.check_trailing_slash()?;
        let new = sandbox::resolve(new_dir, &new_path, false)?;
        if new.must_be_dir {
            // `rename("file", "dir/")` names a directory target.
            let st = retry(|| {
                rustix::fs::statat(old.dir(), old.name_or_dot(), AtFlags::SYMLINK_NOFOLLOW)
            })?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
                return Err(Errno::Notdir);
            }
        }
        retry(|| rustix::fs::renameat(old.dir(), old.name_or_dot(), new.dir(), new.name_or_dot()))
    }

    pub(crate) fn path_symlink(
        &mut self,
        mem: &mut dyn GuestMemory,
        old_path: u32,
        old_len: u32,
        fd: u32,
        new_path: u32,
        new_len: u32,
    ) -> R {
        let target = mem.read_path(old_path, old_len)?;
        let new_path = mem.read_path(new_path, new_len)?;
        let (_, dir) = self.dir_entry(fd, rights::PATH_SYMLINK)?;
        if target.is_empty() {
            return Err(Errno::Noent);
        }
        if target.contains(&0) {
            return Err(Errno::Inval);
        }
        // Host-absolute targets are meaningless to the guest and would point
        // host programs outside the sandbox: refused. (Relative targets that
        // climb out are stored, but the resolver never follows them out.)
        if target[0] == b'/' {
            return Err(Errno::Notcapable);
        }
        let r = sandbox::resolve(dir, &new_path, false)?;
        r.check_trailing_slash()?;
        retry(|| rustix::fs::symlinkat(target.as_slice(), r.dir(), r.name_or_dot()))
    }

    pub(crate) fn path_unlink_file(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        path: u32,
        len: u32,
    ) -> R {
        let path = mem.read_path(path, len)?;
        let (_, dir) = self.dir_entry(fd, rights::PATH_UNLINK_FILE)?;
        let r = sandbox::resolve(dir, &path, false)?;
        if r.must_be_dir {
            // `unlink("x/")`: a directory is EISDIR, anything else ENOTDIR.
            let st =
                retry(|| rustix::fs::statat(r.dir(), r.name_or_dot(), AtFlags::SYMLINK_NOFOLLOW))?;
            return Err(
                if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                    Errno::Isdir
                } else {
                    Errno::Notdir
                },
            );
        }
        retry(|| rustix::fs::unlinkat(r.dir(), r.name_or_dot(), AtFlags::empty()))
    }

    // ----- polling -----

    pub(crate) fn poll_oneoff(
        &mut self,
        mem: &mut dyn GuestMemory,
        input: u32,
        output: u32,
        n: u32,
        nevents: u32,
    ) -> R {
        if n == 0 {
            return Err(Errno::Inval);
        }
        mem.check(input, u64::from(n) * u64::from(size::SUBSCRIPTION))?;
        mem.check(output, u64::from(n) * u64::from(size::EVENT))?;
        mem.check(nevents, 4)?;
        let mut subs = Vec::with_capacity(n as usize);
        for i in 0..n {
            let raw = mem.read_array::<48>(input + i * size::SUBSCRIPTION)?;
            subs.push(Subscription::decode(&raw));
        }

        let start = Instant::now();
        let mut events: Vec<[u8; 32]> = Vec::new();
        let mut waits: Vec<(usize, Wait)> = Vec::new();
        for (i, s) in subs.iter().enumerate() {
            let ty = s.event_type();
            let mut ready = |error: Errno, nbytes: u64| {
                events.push(abi::encode_event(s.userdata, error, ty, nbytes, 0));
            };
            match s.kind {
                SubscriptionKind::Clock {
                    id, timeout, flags, ..
                } => {
                    let cid = match id {
                        clockid::REALTIME => ClockId::Realtime,
                        clockid::MONOTONIC => ClockId::Monotonic,
                        clockid::PROCESS_CPUTIME_ID | clockid::THREAD_CPUTIME_ID => {
                            ready(Errno::Notsup, 0);
                            continue;
                        }
                        _ => {
                            ready(Errno::Inval, 0);
                            continue;
                        }
                    };
                    let rel = if flags & subclockflags::SUBSCRIPTION_CLOCK_ABSTIME != 0 {
                        timeout.saturating_sub(ns_of(rustix::time::clock_gettime(cid)))
                    } else {
                        timeout
                    };
                    if rel == 0 {
                        ready(Errno::Success, 0);
                    } else {
                        waits.push((i, Wait::Clock(Duration::from_nanos(rel))));
                    }
                }
                SubscriptionKind::FdRead(fd) | SubscriptionKind::FdWrite(fd) => {
                    let read = matches!(s.kind, SubscriptionKind::FdRead(_));
                    let e = match self.table.get(fd) {
                        Ok(e) => e,
                        Err(err) => {
                            ready(err, 0);
                            continue;
                        }
                    };
                    if let Err(err) = e.require(rights::POLL_FD_READWRITE) {
                        ready(err, 0);
                        continue;
                    }
                    match &e.kind {
                        Kind::File { fd: h } if e.filetype == filetype::REGULAR_FILE => {
                            // Regular files are always ready.
                            let nbytes = if read {
                                let size = rustix::fs::fstat(h).map(|s| s.st_size.max(0) as u64);
                                let pos = rustix::fs::tell(h);
                                match (size, pos) {
                                    (Ok(s), Ok(p)) => s.saturating_sub(p),
                                    _ => 0,
                                }
                            } else {
                                0
                            };
                            ready(Errno::Success, nbytes);
                        }
                        Kind::Dir { .. } | Kind::Reader(_) | Kind::Writer(_) => {
                            ready(Errno::Success, 0)
                        }
                        Kind::File { .. } | Kind::Socket { .. } => {
                            waits.push((i, Wait::Fd { fd, read }))
                        }
                    }
                }
                SubscriptionKind::Unknown(_) => ready(Errno::Inval, 0),
            }
        }

        // Host descriptors are polled (without waiting if something is
        // already ready); otherwise wait for the nearest clock.
        let fds: Vec<(usize, u32, bool)> = waits
            .iter()
            .filter_map(|(i, w)| match w {
                Wait::Fd { fd, read } => Some((*i, *fd, *read)),
                Wait::Clock(_) => None,
            })
            .collect();
        let nearest = waits
            .iter()
            .filter_map(|(_, w)| match w {
                Wait::Clock(d) => Some(*d),
                Wait::Fd { .. } => None,
            })
            .min();
        loop {
            let elapsed = start.elapsed();
            let mut timeout = if !events.is_empty() {
                Some(Duration::ZERO)
            } else {
                nearest.map(|d| d.saturating_sub(elapsed))
            };
            // Never wait past the context's deadline, nor longer than an
            // interrupt may take to be noticed.
            if let Some(left) = stop!(self).slice() {
                timeout = Some(timeout.map_or(left, |t| t.min(left)));
            }
            if fds.is_empty() {
                if let Some(t) = timeout
                    && !t.is_zero()
                {
                    std::thread::sleep(t);
                }
            } else {
                let mut pollfds: Vec<PollFd<'_>> = Vec::with_capacity(fds.len());
                for (_, fd, read) in &fds {
                    let h = self
                        .table
                        .get(*fd)
                        .ok()
                        .and_then(Entry::host_fd)
                        .ok_or(Errno::Badf)?;
                    let flags = if *read { PollFlags::IN } else { PollFlags::OUT };
                    pollfds.push(PollFd::from_borrowed_fd(h, flags));
                }
                let ts = timeout.map(|t| Timespec {
                    tv_sec: t.as_secs() as i64,
                    tv_nsec: t.subsec_nanos() as _,
                });
                match rustix::event::poll(&mut pollfds, ts.as_ref()) {
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => return Err(e.into()),
                }
                for (pfd, (i, fd, read)) in pollfds.iter().zip(&fds) {
                    let rev = pfd.revents();
                    if rev.is_empty() {
                        continue;
                    }
                    let s = &subs[*i];
                    let (error, nbytes) = if rev.contains(PollFlags::NVAL) {
                        (Errno::Badf, 0)
                    } else if rev.contains(PollFlags::ERR)
                        && !rev.intersects(PollFlags::IN | PollFlags::OUT)
                    {
                        (Errno::Io, 0)
                    } else if *read {
                        let nb = self
                            .table
                            .get(*fd)
                            .ok()
                            .and_then(Entry::host_fd)
                            .and_then(|h| rustix::io::ioctl_fionread(h).ok())
                            .unwrap_or(0);
                        (Errno::Success, nb)
                    } else {
                        (Errno::Success, 0)
                    };
                    let flags = if rev.contains(PollFlags::HUP) {
                        eventrwflags::FD_READWRITE_HANGUP
                    } else {
                        0
                    };
                    events.push(abi::encode_event(
                        s.userdata,
                        error,
                        s.event_type(),
                        nbytes,
                        flags,
                    ));
                }
            }
            let elapsed = start.elapsed();
            for (i, w) in &waits {
                if let Wait::Clock(d) = w
                    && *d <= elapsed
                {
                    events.push(abi::encode_event(
                        subs[*i].userdata,
                        Errno::Success,
                        eventtype::CLOCK,
                        0,
                        0,
                    ));
                }
            }
            if !events.is_empty() {
                break;
            }
            stop!(self).check()?;
        }
        for (k, ev) in events.iter().enumerate() {
            mem.write(output + k as u32 * size::EVENT, ev)?;
        }
        mem.write_u32(nevents, events.len() as u32)
    }

    // ----- sockets -----

    pub(crate) fn sock_accept(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        flags: u16,
        out: u32,
    ) -> R {
        mem.check(out, 4)?;
        let e = self.table.get(fd)?;
        let Kind::Socket { fd: s } = &e.kind else {
            return Err(Errno::Notsock);
        };
        e.require(rights::SOCK_ACCEPT)?;
        if flags & !fdflags::NONBLOCK != 0 {
            return Err(Errno::Inval);
        }
        wait_ready(stop!(self), e, PollFlags::IN)?;
        let mut sf = rustix::net::SocketFlags::CLOEXEC;
        if flags & fdflags::NONBLOCK != 0 {
            sf |= rustix::net::SocketFlags::NONBLOCK;
        }
        let conn = retry(|| rustix::net::accept_with(s, sf))?;
        let entry = Entry::host(conn, rights::ALL)?;
        let new = self.table.insert(entry)?;
        mem.write_u32(out, new)
    }

    #[allow(clippy::too_many_arguments, reason = "the witx signature")]
    pub(crate) fn sock_recv(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        iovs: u32,
        iovs_len: u32,
        riflags: u16,
        datalen: u32,
        roflags: u32,
    ) -> R {
        use rustix::net::RecvFlags;
        let iovs = mem.read_iovecs(iovs, iovs_len)?;
        let e = self.table.get(fd)?;
        if e.rights_base & rights::FD_READ == 0 {
            return Err(Errno::Badf);
        }
        let h = socket_fd(e)?;
        if riflags & !(abi::riflags::RECV_PEEK | abi::riflags::RECV_WAITALL) != 0 {
            return Err(Errno::Inval);
        }
        let mut rf = RecvFlags::empty();
        if riflags & abi::riflags::RECV_PEEK != 0 {
            rf |= RecvFlags::PEEK;
        }
        if riflags & abi::riflags::RECV_WAITALL != 0 {
            rf |= RecvFlags::WAITALL;
        }
        emulated_nonblock(e, PollFlags::IN)?;
        wait_ready(stop!(self), e, PollFlags::IN)?;
        let mut buf = vec![0u8; iovec_total(&iovs)];
        let n = retry(|| rustix::net::recv(h, &mut buf[..], rf).map(|(n, _)| n))?;
        mem.scatter(&iovs, &buf[..n])?;
        mem.write_u32(datalen, n as u32)?;
        mem.write_u16(roflags, 0)
    }

    pub(crate) fn sock_send(
        &mut self,
        mem: &mut dyn GuestMemory,
        fd: u32,
        iovs: u32,
        iovs_len: u32,
        siflags: u16,
        datalen: u32,
    ) -> R {
        let iovs = mem.read_iovecs(iovs, iovs_len)?;
        let e = self.table.get(fd)?;
        if e.rights_base & rights::FD_WRITE == 0 {
            return Err(Errno::Badf);
        }
        let h = socket_fd(e)?;
        if siflags != 0 {
            return Err(Errno::Inval);
        }
        emulated_nonblock(e, PollFlags::OUT)?;
        wait_ready(stop!(self), e, PollFlags::OUT)?;
        let data = mem.gather(&iovs)?;
        debug_assert!(data.len() <= MAX_IO);
        let n = retry(|| rustix::net::send(h, &data, rustix::net::SendFlags::NOSIGNAL))?;
        mem.write_u32(datalen, n as u32)
    }

    pub(crate) fn sock_shutdown(&mut self, fd: u32, how: u8) -> R {
        use rustix::net::Shutdown;
        let e = self.table.get(fd)?;
        let h = socket_fd(e)?;
        e.require(rights::SOCK_SHUTDOWN)?;
        let how = match how {
            abi::sdflags::RD => Shutdown::Read,
            abi::sdflags::WR => Shutdown::Write,
            x if x == abi::sdflags::RD | abi::sdflags::WR => Shutdown::Both,
            _ => return Err(Errno::Inval),
        };
        retry(|| rustix::net::shutdown(h, how))
    }
}

/// The socket of a socket entry (a host socket given as stdio counts).
fn socket_fd(e: &Entry) -> Result<BorrowedFd<'_>, Errno> {
    match &e.kind {
        Kind::Socket { fd } => Ok(fd.as_fd()),
        Kind::File { fd }
            if matches!(e.filetype, filetype::SOCKET_STREAM | filetype::SOCKET_DGRAM) =>
        {
            Ok(fd.as_fd())
        }
        _ => Err(Errno::Notsock),
    }
}

#[cfg(test)]
#[path = "preview1_tests.rs"]
mod tests;
