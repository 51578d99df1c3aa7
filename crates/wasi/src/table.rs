//! The guest's descriptor table.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use rustix::fs::FileType;

use crate::abi::{Errno, filetype, rights};

/// A cached directory listing for `fd_readdir`.
pub(crate) struct DirListing {
    pub(crate) entries: Vec<DirEntry>,
}

/// One directory entry.
pub(crate) struct DirEntry {
    pub(crate) name: Vec<u8>,
    pub(crate) ino: u64,
    pub(crate) filetype: u8,
}

/// What a descriptor refers to.
pub(crate) enum Kind {
    /// A host file of any type other than directory (regular file, tty,
    /// pipe, character device, socket given as stdio).
    File { fd: OwnedFd },
    /// A host directory, opened for reading (usable as an `*at` base).
    Dir {
        fd: OwnedFd,
        listing: Option<DirListing>,
    },
    /// A pre-opened socket (listening or connected).
    Socket { fd: OwnedFd },
    /// An in-process input stream (a custom stdin).
    Reader(Box<dyn Read + Send>),
    /// An in-process output stream (a custom stdout/stderr).
    Writer(Box<dyn Write + Send>),
}

/// A descriptor.
pub(crate) struct Entry {
    pub(crate) kind: Kind,
    /// The WASI file type reported by `fd_fdstat_get`.
    pub(crate) filetype: u8,
    pub(crate) rights_base: u64,
    pub(crate) rights_inheriting: u64,
    /// Flags of in-process streams and of inherited stdio (other host
    /// descriptors report the host's).
    pub(crate) stream_flags: u16,
    /// An inherited host stdio descriptor: its file description is shared
    /// with this process and its parent (the shell, say), so the guest's
    /// `fd_fdstat_set_flags` must not change it — a `NONBLOCK` set there
    /// would outlive the run and break the next program reading the
    /// terminal. Its flags are kept in `stream_flags` and emulated instead.
    pub(crate) shared_description: bool,
    /// The guest path, if this is a pre-opened directory.
    pub(crate) preopen: Option<Vec<u8>>,
}

impl Entry {
    /// An entry for a host descriptor, typed and given rights by what it is.
    pub(crate) fn host(fd: OwnedFd, rights_mask: u64) -> Result<Entry, Errno> {
        let st = rustix::fs::fstat(&fd)?;
        let ft = FileType::from_raw_mode(st.st_mode);
        let (kind, filetype, base, inheriting) = match ft {
            FileType::Directory => (
                Kind::Dir { fd, listing: None },
                filetype::DIRECTORY,
                rights::DIRECTORY,
                rights::DIRECTORY | rights::REGULAR_FILE,
            ),
            FileType::RegularFile => (
                Kind::File { fd },
                filetype::REGULAR_FILE,
                rights::REGULAR_FILE,
                0,
            ),
            FileType::Socket => {
                let t = match rustix::net::sockopt::socket_type(&fd) {
                    Ok(rustix::net::SocketType::DGRAM) => filetype::SOCKET_DGRAM,
                    _ => filetype::SOCKET_STREAM,
                };
                let listening = rustix::net::sockopt::socket_acceptconn(&fd).unwrap_or(false);
                let r = if listening {
                    rights::LISTENER
                } else {
                    rights::SOCKET
                };
                (Kind::Socket { fd }, t, r, 0)
            }
            other => (Kind::File { fd }, host_filetype(other), rights::STREAM, 0),
        };
        Ok(Entry {
            kind,
            filetype,
            rights_base: base & rights_mask,
            rights_inheriting: inheriting & rights_mask,
            stream_flags: 0,
            shared_description: false,
            preopen: None,
        })
    }

    /// The host descriptor, if this entry has one.
    pub(crate) fn host_fd(&self) -> Option<BorrowedFd<'_>> {
        match &self.kind {
            Kind::File { fd } | Kind::Dir { fd, .. } | Kind::Socket { fd } => Some(fd.as_fd()),
            Kind::Reader(_) | Kind::Writer(_) => None,
        }
    }

    /// The host descriptor for a positioned read or write (`fd_pread`,
    /// `fd_pwrite`) that needs the rights `need`: `EISDIR`/`ESPIPE` if it
    /// cannot seek, `ENOTCAPABLE` without the rights.
    pub(crate) fn positioned_fd(&self, need: u64) -> Result<BorrowedFd<'_>, Errno> {
        if !self.seekable() {
            return Err(if self.filetype == filetype::DIRECTORY {
                Errno::Isdir
            } else {
                Errno::Spipe
            });
        }
        self.require(need)?;
        self.host_fd().ok_or(Errno::Badf)
    }

    /// Fails with `ENOTCAPABLE` unless every right in `need` is held.
    pub(crate) fn require(&self, need: u64) -> Result<(), Errno> {
        if self.rights_base & need == need {
            Ok(())
        } else {
            Err(Errno::Notcapable)
        }
    }

    /// Whether the descriptor can seek (regular files, directories and
    /// block devices with a host descriptor).
    pub(crate) fn seekable(&self) -> bool {
        matches!(
            self.filetype,
            filetype::REGULAR_FILE | filetype::DIRECTORY | filetype::BLOCK_DEVICE
        ) && self.host_fd().is_some()
    }
}

/// The WASI file type of a host file type.
pub(crate) fn host_filetype(ft: FileType) -> u8 {
    match ft {
        FileType::RegularFile => filetype::REGULAR_FILE,
        FileType::Directory => filetype::DIRECTORY,
        FileType::Symlink => filetype::SYMBOLIC_LINK,
        FileType::CharacterDevice => filetype::CHARACTER_DEVICE,
        FileType::BlockDevice => filetype::BLOCK_DEVICE,
        FileType::Socket => filetype::SOCKET_STREAM,
        FileType::Fifo | FileType::Unknown => filetype::UNKNOWN,
    }
}

/// Descriptor numbers to entries; new descriptors get the lowest free
/// number, as in POSIX.
#[derive(Default)]
pub(crate) struct Table {
    entries: BTreeMap<u32, Entry>,
}

impl Table {
    pub(crate) fn insert(&mut self, entry: Entry) -> Result<u32, Errno> {
        let mut fd = 0u32;
        for &k in self.entries.keys() {
            if k != fd {
                break;
            }
            fd = fd.checked_add(1).ok_or(Errno::Mfile)?;
        }
        self.entries.insert(fd, entry);
        Ok(fd)
    }

    pub(crate) fn insert_at(&mut self, fd: u32, entry: Entry) {
        self.entries.insert(fd, entry);
    }

    pub(crate) fn get(&self, fd: u32) -> Result<&Entry, Errno> {
        self.entries.get(&fd).ok_or(Errno::Badf)
    }

    pub(crate) fn get_mut(&mut self, fd: u32) -> Result<&mut Entry, Errno> {
        self.entries.get_mut(&fd).ok_or(Errno::Badf)
    }

    pub(crate) fn remove(&mut self, fd: u32) -> Result<Entry, Errno> {
        self.entries.remove(&fd).ok_or(Errno::Badf)
    }

    pub(crate) fn contains(&self, fd: u32) -> bool {
        self.entries.contains_key(&fd)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream() -> Entry {
        Entry {
            kind: Kind::Writer(Box::new(std::io::sink())),
            filetype: filetype::UNKNOWN,
            rights_base: rights::STREAM,
            rights_inheriting: 0,
            stream_flags: 0,
            shared_description: false,
            preopen: None,
        }
    }

    #[test]
    fn lowest_free_descriptor() {
        let mut t = Table::default();
        assert_eq!(t.insert(stream()), Ok(0));
        assert_eq!(t.insert(stream()), Ok(1));
        assert_eq!(t.insert(stream()), Ok(2));
        t.remove(1).unwrap();
        assert_eq!(t.insert(stream()), Ok(1));
        assert_eq!(t.insert(stream()), Ok(3));
        t.remove(0).unwrap();
        assert_eq!(t.insert(stream()), Ok(0));
        assert!(matches!(t.remove(9), Err(Errno::Badf)));
        assert_eq!(t.len(), 4);
    }

    #[test]
    fn host_entries_are_typed() {
        let dir = tempfile::tempdir().unwrap();
        let d = std::fs::File::open(dir.path()).unwrap();
        let e = Entry::host(d.into(), rights::ALL).unwrap();
        assert_eq!(e.filetype, filetype::DIRECTORY);
        assert!(e.require(rights::PATH_OPEN).is_ok());
        assert_eq!(e.require(rights::FD_READ), Err(Errno::Notcapable));
        let f = std::fs::File::create(dir.path().join("f")).unwrap();
        let e = Entry::host(f.into(), rights::ALL & !rights::MUTATING).unwrap();
        assert_eq!(e.filetype, filetype::REGULAR_FILE);
        assert!(e.seekable());
        assert_eq!(e.require(rights::FD_WRITE), Err(Errno::Notcapable));
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = Entry::host(l.into(), rights::ALL).unwrap();
        assert_eq!(e.filetype, filetype::SOCKET_STREAM);
        assert!(e.require(rights::SOCK_ACCEPT).is_ok());
        assert!(!e.seekable());
    }
}
