//! The `wasi_snapshot_preview1` ABI: constants, errno values and the byte
//! layouts of the structures exchanged with the guest, exactly as the
//! preview1 witx defines them (little-endian, wasm32 alignment).

/// A WASI error number (`errno`), as returned by every preview1 function.
#[repr(u16)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(
    missing_docs,
    reason = "the names are the witx names; see the witx for meanings"
)]
pub enum Errno {
    Success = 0,
    TooBig = 1,
    Acces = 2,
    Addrinuse = 3,
    Addrnotavail = 4,
    Afnosupport = 5,
    Again = 6,
    Already = 7,
    Badf = 8,
    Badmsg = 9,
    Busy = 10,
    Canceled = 11,
    Child = 12,
    Connaborted = 13,
    Connrefused = 14,
    Connreset = 15,
    Deadlk = 16,
    Destaddrreq = 17,
    Dom = 18,
    Dquot = 19,
    Exist = 20,
    Fault = 21,
    Fbig = 22,
    Hostunreach = 23,
    Idrm = 24,
    Ilseq = 25,
    Inprogress = 26,
    Intr = 27,
    Inval = 28,
    Io = 29,
    Isconn = 30,
    Isdir = 31,
    Loop = 32,
    Mfile = 33,
    Mlink = 34,
    Msgsize = 35,
    Multihop = 36,
    Nametoolong = 37,
    Netdown = 38,
    Netreset = 39,
    Netunreach = 40,
    Nfile = 41,
    Nobufs = 42,
    Nodev = 43,
    Noent = 44,
    Noexec = 45,
    Nolck = 46,
    Nolink = 47,
    Nomem = 48,
    Nomsg = 49,
    Noprotoopt = 50,
    Nospc = 51,
    Nosys = 52,
    Notconn = 53,
    Notdir = 54,
    Notempty = 55,
    Notrecoverable = 56,
    Notsock = 57,
    Notsup = 58,
    Notty = 59,
    Nxio = 60,
    Overflow = 61,
    Ownerdead = 62,
    Perm = 63,
    Pipe = 64,
    Proto = 65,
    Protonosupport = 66,
    Prototype = 67,
    Range = 68,
    Rofs = 69,
    Spipe = 70,
    Srch = 71,
    Stale = 72,
    Timedout = 73,
    Txtbsy = 74,
    Xdev = 75,
    Notcapable = 76,
}

impl Errno {
    /// The raw value returned to the guest.
    pub fn raw(self) -> u16 {
        self as u16
    }
}

impl std::fmt::Display for Errno {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?} (wasi errno {})", *self as u16)
    }
}

impl std::error::Error for Errno {}

/// File types (`filetype`).
pub mod filetype {
    /// The type of the descriptor or file is unknown or is different from
    /// any of the other types specified.
    pub const UNKNOWN: u8 = 0;
    /// A block device.
    pub const BLOCK_DEVICE: u8 = 1;
    /// A character device.
    pub const CHARACTER_DEVICE: u8 = 2;
    /// A directory.
    pub const DIRECTORY: u8 = 3;
    /// A regular file.
    pub const REGULAR_FILE: u8 = 4;
    /// A datagram socket.
    pub const SOCKET_DGRAM: u8 = 5;
    /// A byte-stream socket.
    pub const SOCKET_STREAM: u8 = 6;
    /// A symbolic link.
    pub const SYMBOLIC_LINK: u8 = 7;
}

/// Descriptor rights (`rights`), a 64-bit set.
pub mod rights {
    /// `fd_datasync`.
    pub const FD_DATASYNC: u64 = 1 << 0;
    /// `fd_read` (and `sock_recv`).
    pub const FD_READ: u64 = 1 << 1;
    /// `fd_seek` (implies `FD_TELL`).
    pub const FD_SEEK: u64 = 1 << 2;
    /// `fd_fdstat_set_flags`.
    pub const FD_FDSTAT_SET_FLAGS: u64 = 1 << 3;
    /// `fd_sync`.
    pub const FD_SYNC: u64 = 1 << 4;
    /// `fd_tell` (and `fd_seek` with offset 0 from the current position).
    pub const FD_TELL: u64 = 1 << 5;
    /// `fd_write` (and `sock_send`).
    pub const FD_WRITE: u64 = 1 << 6;
    /// `fd_advise`.
    pub const FD_ADVISE: u64 = 1 << 7;
    /// `fd_allocate`.
    pub const FD_ALLOCATE: u64 = 1 << 8;
    /// `path_create_directory`.
    pub const PATH_CREATE_DIRECTORY: u64 = 1 << 9;
    /// `path_open` with `oflags::CREAT`.
    pub const PATH_CREATE_FILE: u64 = 1 << 10;
    /// `path_link` (source directory).
    pub const PATH_LINK_SOURCE: u64 = 1 << 11;
    /// `path_link` (target directory).
    pub const PATH_LINK_TARGET: u64 = 1 << 12;
    /// `path_open`.
    pub const PATH_OPEN: u64 = 1 << 13;
    /// `fd_readdir`.
    pub const FD_READDIR: u64 = 1 << 14;
    /// `path_readlink`.
    pub const PATH_READLINK: u64 = 1 << 15;
    /// `path_rename` (source directory).
    pub const PATH_RENAME_SOURCE: u64 = 1 << 16;
    /// `path_rename` (target directory).
    pub const PATH_RENAME_TARGET: u64 = 1 << 17;
    /// `path_filestat_get`.
    pub const PATH_FILESTAT_GET: u64 = 1 << 18;
    /// `path_open` with `oflags::TRUNC`.
    pub const PATH_FILESTAT_SET_SIZE: u64 = 1 << 19;
    /// `path_filestat_set_times`.
    pub const PATH_FILESTAT_SET_TIMES: u64 = 1 << 20;
    /// `fd_filestat_get`.
    pub const FD_FILESTAT_GET: u64 = 1 << 21;
    /// `fd_filestat_set_size`.
    pub const FD_FILESTAT_SET_SIZE: u64 = 1 << 22;
    /// `fd_filestat_set_times`.
    pub const FD_FILESTAT_SET_TIMES: u64 = 1 << 23;
    /// `path_symlink`.
    pub const PATH_SYMLINK: u64 = 1 << 24;
    /// `path_remove_directory`.
    pub const PATH_REMOVE_DIRECTORY: u64 = 1 << 25;
    /// `path_unlink_file`.
    pub const PATH_UNLINK_FILE: u64 = 1 << 26;
    /// `poll_oneoff` read/write subscriptions.
    pub const POLL_FD_READWRITE: u64 = 1 << 27;
    /// `sock_shutdown`.
    pub const SOCK_SHUTDOWN: u64 = 1 << 28;
    /// `sock_accept`.
    pub const SOCK_ACCEPT: u64 = 1 << 29;

    /// Every right.
    pub const ALL: u64 = (1 << 30) - 1;

    /// Rights that change file contents, metadata or the directory tree; a
    /// read-only pre-open and everything opened through it lack them.
    pub const MUTATING: u64 = FD_DATASYNC
        | FD_WRITE
        | FD_ALLOCATE
        | PATH_CREATE_DIRECTORY
        | PATH_CREATE_FILE
        | PATH_LINK_SOURCE
        | PATH_LINK_TARGET
        | PATH_RENAME_SOURCE
        | PATH_RENAME_TARGET
        | PATH_FILESTAT_SET_SIZE
        | PATH_FILESTAT_SET_TIMES
        | FD_FILESTAT_SET_SIZE
        | FD_FILESTAT_SET_TIMES
        | PATH_SYMLINK
        | PATH_REMOVE_DIRECTORY
        | PATH_UNLINK_FILE;

    /// Rights meaningful on a regular file.
    pub const REGULAR_FILE: u64 = FD_DATASYNC
        | FD_READ
        | FD_SEEK
        | FD_FDSTAT_SET_FLAGS
        | FD_SYNC
        | FD_TELL
        | FD_WRITE
        | FD_ADVISE
        | FD_ALLOCATE
        | FD_FILESTAT_GET
        | FD_FILESTAT_SET_SIZE
        | FD_FILESTAT_SET_TIMES
        | POLL_FD_READWRITE;

    /// Rights meaningful on a directory.
    pub const DIRECTORY: u64 = FD_FDSTAT_SET_FLAGS
        | FD_SYNC
        | FD_ADVISE
        | PATH_CREATE_DIRECTORY
        | PATH_CREATE_FILE
        | PATH_LINK_SOURCE
        | PATH_LINK_TARGET
        | PATH_OPEN
        | FD_READDIR
        | PATH_READLINK
        | PATH_RENAME_SOURCE
        | PATH_RENAME_TARGET
        | PATH_FILESTAT_GET
        | PATH_FILESTAT_SET_SIZE
        | PATH_FILESTAT_SET_TIMES
        | FD_FILESTAT_GET
        | FD_FILESTAT_SET_TIMES
        | PATH_SYMLINK
        | PATH_REMOVE_DIRECTORY
        | PATH_UNLINK_FILE
        | POLL_FD_READWRITE;

    /// Rights meaningful on a stream (terminal, pipe, character device):
    /// those of a regular file without seeking.
    pub const STREAM: u64 = REGULAR_FILE & !(FD_SEEK | FD_TELL);

    /// Rights meaningful on a connected socket.
    pub const SOCKET: u64 = FD_READ
        | FD_WRITE
        | FD_FDSTAT_SET_FLAGS
        | FD_FILESTAT_GET
        | POLL_FD_READWRITE
        | SOCK_SHUTDOWN;

    /// Rights meaningful on a listening socket.
    pub const LISTENER: u64 =
        FD_FDSTAT_SET_FLAGS | FD_FILESTAT_GET | POLL_FD_READWRITE | SOCK_ACCEPT;
}

/// File descriptor flags (`fdflags`).
pub mod fdflags {
    /// Append mode.
    pub const APPEND: u16 = 1 << 0;
    /// Write according to synchronized I/O data integrity completion.
    pub const DSYNC: u16 = 1 << 1;
    /// Non-blocking mode.
    pub const NONBLOCK: u16 = 1 << 2;
    /// Synchronized read I/O operations.
    pub const RSYNC: u16 = 1 << 3;
    /// Write according to synchronized I/O file integrity completion.
    pub const SYNC: u16 = 1 << 4;
    /// All defined flags.
    pub const ALL: u16 = APPEND | DSYNC | NONBLOCK | RSYNC | SYNC;
}

/// Open flags for `path_open` (`oflags`).
pub mod oflags {
    /// Create the file if it does not exist.
    pub const CREAT: u16 = 1 << 0;
    /// Fail if not a directory.
    pub const DIRECTORY: u16 = 1 << 1;
    /// Fail if the file already exists.
    pub const EXCL: u16 = 1 << 2;
    /// Truncate the file to size 0.
    pub const TRUNC: u16 = 1 << 3;
    /// All defined flags.
    pub const ALL: u16 = CREAT | DIRECTORY | EXCL | TRUNC;
}

/// Path lookup flags (`lookupflags`).
pub mod lookupflags {
    /// Follow a symbolic link in the last component of the path.
    pub const SYMLINK_FOLLOW: u32 = 1 << 0;
}

/// Which timestamps `*_filestat_set_times` changes (`fstflags`).
pub mod fstflags {
    /// Set the access time to the given value.
    pub const ATIM: u16 = 1 << 0;
    /// Set the access time to the current time.
    pub const ATIM_NOW: u16 = 1 << 1;
    /// Set the modification time to the given value.
    pub const MTIM: u16 = 1 << 2;
    /// Set the modification time to the current time.
    pub const MTIM_NOW: u16 = 1 << 3;
}

/// `fd_seek` origins (`whence`).
pub mod whence {
    /// From the start of the file.
    pub const SET: u8 = 0;
    /// From the current position.
    pub const CUR: u8 = 1;
    /// From the end of the file.
    pub const END: u8 = 2;
}

/// Clock identifiers (`clockid`).
pub mod clockid {
    /// Wall-clock time since the Unix epoch.
    pub const REALTIME: u32 = 0;
    /// A clock that cannot be set and only moves forward.
    pub const MONOTONIC: u32 = 1;
    /// CPU time of the process.
    pub const PROCESS_CPUTIME_ID: u32 = 2;
    /// CPU time of the calling thread.
    pub const THREAD_CPUTIME_ID: u32 = 3;
}

/// `poll_oneoff` event types (`eventtype`).
pub mod eventtype {
    /// A clock subscription's timeout was reached.
    pub const CLOCK: u8 = 0;
    /// A descriptor is readable.
    pub const FD_READ: u8 = 1;
    /// A descriptor is writable.
    pub const FD_WRITE: u8 = 2;
}

/// `event.fd_readwrite.flags` (`eventrwflags`).
pub mod eventrwflags {
    /// The peer of this socket or pipe has closed or hung up.
    pub const FD_READWRITE_HANGUP: u16 = 1 << 0;
}

/// `subscription_clock.flags` (`subclockflags`).
pub mod subclockflags {
    /// The timeout is an absolute time on the clock, not relative to now.
    pub const SUBSCRIPTION_CLOCK_ABSTIME: u16 = 1 << 0;
}

/// `sock_recv` input flags (`riflags`).
pub mod riflags {
    /// Return data without removing it from the queue.
    pub const RECV_PEEK: u16 = 1 << 0;
    /// Wait for the full amount of data.
    pub const RECV_WAITALL: u16 = 1 << 1;
}

/// `sock_recv` output flags (`roflags`).
pub mod roflags {
    /// The message was truncated.
    pub const RECV_DATA_TRUNCATED: u16 = 1 << 0;
}

/// `sock_shutdown` directions (`sdflags`).
pub mod sdflags {
    /// Disable further receives.
    pub const RD: u8 = 1 << 0;
    /// Disable further sends.
    pub const WR: u8 = 1 << 1;
}

/// `fd_advise` advice values (`advice`).
pub mod advice {
    /// No particular access pattern.
    pub const NORMAL: u8 = 0;
    /// Sequential access.
    pub const SEQUENTIAL: u8 = 1;
    /// Random access.
    pub const RANDOM: u8 = 2;
    /// Will be accessed soon.
    pub const WILLNEED: u8 = 3;
    /// Will not be accessed soon.
    pub const DONTNEED: u8 = 4;
    /// Will be accessed once.
    pub const NOREUSE: u8 = 5;
}

/// `prestat` tags (`preopentype`).
pub mod preopentype {
    /// A pre-opened directory.
    pub const DIR: u8 = 0;
}

/// Sizes of the witx structures, in bytes.
pub mod size {
    /// `iovec` / `ciovec`.
    pub const IOVEC: u32 = 8;
    /// `dirent` (the name follows it).
    pub const DIRENT: u32 = 24;
    /// `fdstat`.
    pub const FDSTAT: u32 = 24;
    /// `filestat`.
    pub const FILESTAT: u32 = 64;
    /// `prestat`.
    pub const PRESTAT: u32 = 8;
    /// `event`.
    pub const EVENT: u32 = 32;
    /// `subscription`.
    pub const SUBSCRIPTION: u32 = 48;
}

/// `filestat`: file attributes (64 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Filestat {
    /// Device ID of the device containing the file.
    pub dev: u64,
    /// File serial number.
    pub ino: u64,
    /// File type (a [`filetype`] value).
    pub filetype: u8,
    /// Number of hard links.
    pub nlink: u64,
    /// Size in bytes (for symlinks, the length of the target).
    pub size: u64,
    /// Last access time, nanoseconds since the epoch.
    pub atim: u64,
    /// Last modification time, nanoseconds since the epoch.
    pub mtim: u64,
    /// Last status change time, nanoseconds since the epoch.
    pub ctim: u64,
}

impl Filestat {
    /// The guest representation.
    pub fn encode(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..8].copy_from_slice(&self.dev.to_le_bytes());
        b[8..16].copy_from_slice(&self.ino.to_le_bytes());
        b[16] = self.filetype;
        b[24..32].copy_from_slice(&self.nlink.to_le_bytes());
        b[32..40].copy_from_slice(&self.size.to_le_bytes());
        b[40..48].copy_from_slice(&self.atim.to_le_bytes());
        b[48..56].copy_from_slice(&self.mtim.to_le_bytes());
        b[56..64].copy_from_slice(&self.ctim.to_le_bytes());
        b
    }
}

/// `fdstat`: descriptor attributes (24 bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fdstat {
    /// File type (a [`filetype`] value).
    pub filetype: u8,
    /// Descriptor flags ([`fdflags`]).
    pub flags: u16,
    /// Rights of operations on this descriptor ([`rights`]).
    pub rights_base: u64,
    /// Maximum rights of descriptors opened through this one.
    pub rights_inheriting: u64,
}

impl Fdstat {
    /// The guest representation.
    pub fn encode(&self) -> [u8; 24] {
        let mut b = [0u8; 24];
        b[0] = self.filetype;
        b[2..4].copy_from_slice(&self.flags.to_le_bytes());
        b[8..16].copy_from_slice(&self.rights_base.to_le_bytes());
        b[16..24].copy_from_slice(&self.rights_inheriting.to_le_bytes());
        b
    }
}

/// `prestat` for a pre-opened directory whose guest path is `name_len`
/// bytes long (8 bytes).
pub fn encode_prestat_dir(name_len: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[0] = preopentype::DIR;
    b[4..8].copy_from_slice(&name_len.to_le_bytes());
    b
}

/// `dirent` header (24 bytes; the name follows it, not NUL-terminated).
pub fn encode_dirent(next: u64, ino: u64, namlen: u32, filetype: u8) -> [u8; 24] {
    let mut b = [0u8; 24];
    b[0..8].copy_from_slice(&next.to_le_bytes());
    b[8..16].copy_from_slice(&ino.to_le_bytes());
    b[16..20].copy_from_slice(&namlen.to_le_bytes());
    b[20] = filetype;
    b
}

/// `event` (32 bytes). `nbytes` and `flags` are the `fd_readwrite` member,
/// zero for clock events.
pub fn encode_event(userdata: u64, error: Errno, ty: u8, nbytes: u64, flags: u16) -> [u8; 32] {
    let mut b = [0u8; 32];
    b[0..8].copy_from_slice(&userdata.to_le_bytes());
    b[8..10].copy_from_slice(&error.raw().to_le_bytes());
    b[10] = ty;
    b[16..24].copy_from_slice(&nbytes.to_le_bytes());
    b[24..26].copy_from_slice(&flags.to_le_bytes());
    b
}

/// A decoded `subscription` (48 bytes in guest memory).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscription {
    /// Returned unchanged in the event.
    pub userdata: u64,
    /// What is waited for.
    pub kind: SubscriptionKind,
}

/// The union member of a `subscription`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionKind {
    /// A clock timeout.
    Clock {
        /// The clock ([`clockid`]).
        id: u32,
        /// The timeout, in nanoseconds (relative or absolute).
        timeout: u64,
        /// Accepted imprecision, in nanoseconds.
        precision: u64,
        /// [`subclockflags`].
        flags: u16,
    },
    /// The descriptor becomes readable.
    FdRead(u32),
    /// The descriptor becomes writable.
    FdWrite(u32),
    /// An unknown tag: answered with `EINVAL` in its event.
    Unknown(u8),
}

impl Subscription {
    /// Decodes the guest representation.
    pub fn decode(b: &[u8; 48]) -> Subscription {
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let userdata = u64_at(0);
        let kind = match b[8] {
            eventtype::CLOCK => SubscriptionKind::Clock {
                id: u32_at(16),
                timeout: u64_at(24),
                precision: u64_at(32),
                flags: u16::from_le_bytes([b[40], b[41]]),
            },
            eventtype::FD_READ => SubscriptionKind::FdRead(u32_at(16)),
            eventtype::FD_WRITE => SubscriptionKind::FdWrite(u32_at(16)),
            t => SubscriptionKind::Unknown(t),
        };
        Subscription { userdata, kind }
    }

    /// The event type this subscription reports.
    pub fn event_type(&self) -> u8 {
        match self.kind {
            SubscriptionKind::Clock { .. } => eventtype::CLOCK,
            SubscriptionKind::FdRead(_) => eventtype::FD_READ,
            SubscriptionKind::FdWrite(_) => eventtype::FD_WRITE,
            SubscriptionKind::Unknown(t) => t,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_values_match_witx() {
        assert_eq!(Errno::Success.raw(), 0);
        assert_eq!(Errno::TooBig.raw(), 1);
        assert_eq!(Errno::Badf.raw(), 8);
        assert_eq!(Errno::Exist.raw(), 20);
        assert_eq!(Errno::Fault.raw(), 21);
        assert_eq!(Errno::Inval.raw(), 28);
        assert_eq!(Errno::Isdir.raw(), 31);
        assert_eq!(Errno::Loop.raw(), 32);
        assert_eq!(Errno::Noent.raw(), 44);
        assert_eq!(Errno::Nosys.raw(), 52);
        assert_eq!(Errno::Notdir.raw(), 54);
        assert_eq!(Errno::Notempty.raw(), 55);
        assert_eq!(Errno::Notsup.raw(), 58);
        assert_eq!(Errno::Perm.raw(), 63);
        assert_eq!(Errno::Spipe.raw(), 70);
        assert_eq!(Errno::Xdev.raw(), 75);
        assert_eq!(Errno::Notcapable.raw(), 76);
    }

    #[test]
    fn rights_bits_match_witx() {
        assert_eq!(rights::FD_DATASYNC, 1);
        assert_eq!(rights::FD_WRITE, 64);
        assert_eq!(rights::PATH_OPEN, 1 << 13);
        assert_eq!(rights::FD_FILESTAT_GET, 1 << 21);
        assert_eq!(rights::SOCK_ACCEPT, 1 << 29);
        assert_eq!(rights::ALL, 0x3fff_ffff);
    }

    #[test]
    fn filestat_layout() {
        let st = Filestat {
            dev: 0x0102030405060708,
            ino: 0x1112131415161718,
            filetype: filetype::REGULAR_FILE,
            nlink: 3,
            size: 0x2122232425262728,
            atim: 5,
            mtim: 6,
            ctim: 7,
        };
        let b = st.encode();
        assert_eq!(b.len(), size::FILESTAT as usize);
        assert_eq!(&b[0..8], &0x0102030405060708u64.to_le_bytes());
        assert_eq!(&b[8..16], &0x1112131415161718u64.to_le_bytes());
        assert_eq!(b[16], 4);
        assert_eq!(&b[17..24], &[0; 7]);
        assert_eq!(&b[24..32], &3u64.to_le_bytes());
        assert_eq!(&b[32..40], &0x2122232425262728u64.to_le_bytes());
        assert_eq!(&b[40..48], &5u64.to_le_bytes());
        assert_eq!(&b[48..56], &6u64.to_le_bytes());
        assert_eq!(&b[56..64], &7u64.to_le_bytes());
    }

    #[test]
    fn fdstat_layout() {
        let b = Fdstat {
            filetype: filetype::DIRECTORY,
            flags: fdflags::APPEND | fdflags::NONBLOCK,
            rights_base: 0xAABB,
            rights_inheriting: 0xCCDD,
        }
        .encode();
        assert_eq!(b.len(), size::FDSTAT as usize);
        assert_eq!(b[0], 3);
        assert_eq!(b[1], 0);
        assert_eq!(&b[2..4], &5u16.to_le_bytes());
        assert_eq!(&b[8..16], &0xAABBu64.to_le_bytes());
        assert_eq!(&b[16..24], &0xCCDDu64.to_le_bytes());
    }

    #[test]
    fn prestat_dirent_event_layout() {
        let p = encode_prestat_dir(9);
        assert_eq!(p, [0, 0, 0, 0, 9, 0, 0, 0]);
        let d = encode_dirent(2, 77, 5, filetype::DIRECTORY);
        assert_eq!(d.len(), size::DIRENT as usize);
        assert_eq!(&d[0..8], &2u64.to_le_bytes());
        assert_eq!(&d[8..16], &77u64.to_le_bytes());
        assert_eq!(&d[16..20], &5u32.to_le_bytes());
        assert_eq!(d[20], 3);
        let e = encode_event(0xdead, Errno::Badf, eventtype::FD_WRITE, 10, 1);
        assert_eq!(e.len(), size::EVENT as usize);
        assert_eq!(&e[0..8], &0xdeadu64.to_le_bytes());
        assert_eq!(&e[8..10], &8u16.to_le_bytes());
        assert_eq!(e[10], 2);
        assert_eq!(&e[16..24], &10u64.to_le_bytes());
        assert_eq!(&e[24..26], &1u16.to_le_bytes());
    }

    #[test]
    fn subscription_layout() {
        let mut b = [0u8; 48];
        b[0..8].copy_from_slice(&42u64.to_le_bytes());
        b[8] = eventtype::CLOCK;
        b[16..20].copy_from_slice(&clockid::MONOTONIC.to_le_bytes());
        b[24..32].copy_from_slice(&1_000u64.to_le_bytes());
        b[32..40].copy_from_slice(&7u64.to_le_bytes());
        b[40..42].copy_from_slice(&1u16.to_le_bytes());
        assert_eq!(
            Subscription::decode(&b),
            Subscription {
                userdata: 42,
                kind: SubscriptionKind::Clock {
                    id: 1,
                    timeout: 1000,
                    precision: 7,
                    flags: 1
                }
            }
        );
        let mut b = [0u8; 48];
        b[8] = eventtype::FD_READ;
        b[16..20].copy_from_slice(&5u32.to_le_bytes());
        assert_eq!(Subscription::decode(&b).kind, SubscriptionKind::FdRead(5));
        b[8] = 9;
        assert_eq!(Subscription::decode(&b).kind, SubscriptionKind::Unknown(9));
    }
}
