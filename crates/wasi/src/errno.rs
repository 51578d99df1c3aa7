//! Host error numbers to WASI [`Errno`] values.

use crate::abi::Errno;

/// Maps a host `errno` value to the WASI errno with the same meaning.
///
/// Anything without a WASI counterpart becomes `EIO`.
pub fn from_raw_os_error(code: i32) -> Errno {
    use libc::*;
    match code {
        0 => Errno::Success,
        E2BIG => Errno::TooBig,
        EACCES => Errno::Acces,
        EADDRINUSE => Errno::Addrinuse,
        EADDRNOTAVAIL => Errno::Addrnotavail,
        EAFNOSUPPORT => Errno::Afnosupport,
        EAGAIN => Errno::Again,
        EALREADY => Errno::Already,
        EBADF => Errno::Badf,
        EBADMSG => Errno::Badmsg,
        EBUSY => Errno::Busy,
        ECANCELED => Errno::Canceled,
        ECHILD => Errno::Child,
        ECONNABORTED => Errno::Connaborted,
        ECONNREFUSED => Errno::Connrefused,
        ECONNRESET => Errno::Connreset,
        EDEADLK => Errno::Deadlk,
        EDESTADDRREQ => Errno::Destaddrreq,
        EDOM => Errno::Dom,
        EDQUOT => Errno::Dquot,
        EEXIST => Errno::Exist,
        EFAULT => Errno::Fault,
        EFBIG => Errno::Fbig,
        EHOSTUNREACH => Errno::Hostunreach,
        EIDRM => Errno::Idrm,
        EILSEQ => Errno::Ilseq,
        EINPROGRESS => Errno::Inprogress,
        EINTR => Errno::Intr,
        EINVAL => Errno::Inval,
        EIO => Errno::Io,
        EISCONN => Errno::Isconn,
        EISDIR => Errno::Isdir,
        ELOOP => Errno::Loop,
        EMFILE => Errno::Mfile,
        EMLINK => Errno::Mlink,
        EMSGSIZE => Errno::Msgsize,
        EMULTIHOP => Errno::Multihop,
        ENAMETOOLONG => Errno::Nametoolong,
        ENETDOWN => Errno::Netdown,
        ENETRESET => Errno::Netreset,
        ENETUNREACH => Errno::Netunreach,
        ENFILE => Errno::Nfile,
        ENOBUFS => Errno::Nobufs,
        ENODEV => Errno::Nodev,
        ENOENT => Errno::Noent,
        ENOEXEC => Errno::Noexec,
        ENOLCK => Errno::Nolck,
        ENOLINK => Errno::Nolink,
        ENOMEM => Errno::Nomem,
        ENOMSG => Errno::Nomsg,
        ENOPROTOOPT => Errno::Noprotoopt,
        ENOSPC => Errno::Nospc,
        ENOSYS => Errno::Nosys,
        ENOTCONN => Errno::Notconn,
        ENOTDIR => Errno::Notdir,
        ENOTEMPTY => Errno::Notempty,
        ENOTRECOVERABLE => Errno::Notrecoverable,
        ENOTSOCK => Errno::Notsock,
        // EOPNOTSUPP has the same value as ENOTSUP on Linux.
        ENOTSUP => Errno::Notsup,
        ENOTTY => Errno::Notty,
        ENXIO => Errno::Nxio,
        EOVERFLOW => Errno::Overflow,
        EOWNERDEAD => Errno::Ownerdead,
        EPERM => Errno::Perm,
        EPIPE => Errno::Pipe,
        EPROTO => Errno::Proto,
        EPROTONOSUPPORT => Errno::Protonosupport,
        EPROTOTYPE => Errno::Prototype,
        ERANGE => Errno::Range,
        EROFS => Errno::Rofs,
        ESPIPE => Errno::Spipe,
        ESRCH => Errno::Srch,
        ESTALE => Errno::Stale,
        ETIMEDOUT => Errno::Timedout,
        ETXTBSY => Errno::Txtbsy,
        EXDEV => Errno::Xdev,
        _ => Errno::Io,
    }
}

impl From<rustix::io::Errno> for Errno {
    fn from(e: rustix::io::Errno) -> Errno {
        from_raw_os_error(e.raw_os_error())
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Errno {
        match e.raw_os_error() {
            Some(code) => from_raw_os_error(code),
            None => match e.kind() {
                std::io::ErrorKind::NotFound => Errno::Noent,
                std::io::ErrorKind::PermissionDenied => Errno::Acces,
                std::io::ErrorKind::AlreadyExists => Errno::Exist,
                std::io::ErrorKind::WouldBlock => Errno::Again,
                std::io::ErrorKind::InvalidInput => Errno::Inval,
                std::io::ErrorKind::BrokenPipe => Errno::Pipe,
                std::io::ErrorKind::Interrupted => Errno::Intr,
                std::io::ErrorKind::Unsupported => Errno::Notsup,
                std::io::ErrorKind::OutOfMemory => Errno::Nomem,
                _ => Errno::Io,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_errnos_map() {
        assert_eq!(from_raw_os_error(libc::ENOENT), Errno::Noent);
        assert_eq!(from_raw_os_error(libc::EEXIST), Errno::Exist);
        assert_eq!(from_raw_os_error(libc::ELOOP), Errno::Loop);
        assert_eq!(from_raw_os_error(libc::EXDEV), Errno::Xdev);
        assert_eq!(from_raw_os_error(libc::EOPNOTSUPP), Errno::Notsup);
        assert_eq!(from_raw_os_error(libc::EWOULDBLOCK), Errno::Again);
        assert_eq!(from_raw_os_error(99999), Errno::Io);
        assert_eq!(Errno::from(rustix::io::Errno::NOTDIR), Errno::Notdir);
        assert_eq!(
            Errno::from(std::io::Error::from(std::io::ErrorKind::NotFound)),
            Errno::Noent
        );
    }
}
