//! Bounds-checked access to guest memory.
//!
//! Every guest pointer goes through [`GuestMemory`], which checks the whole
//! range against the memory's current size and answers `EFAULT` instead of
//! panicking or touching anything outside.

use crate::abi::Errno;

/// The most bytes one `fd_read`/`fd_write`-style call moves; longer requests
/// are served partially, as POSIX allows, so a guest can never make the host
/// allocate a copy of its whole memory at once.
pub(crate) const MAX_IO: usize = 16 << 20;

/// The longest path a guest may pass (longer ones fail with
/// `ENAMETOOLONG` before anything is copied).
pub(crate) const MAX_PATH: u32 = 64 << 10;

/// A guest's linear memory, as seen by the WASI functions.
pub(crate) trait GuestMemory {
    /// Current size in bytes.
    fn size(&mut self) -> usize;
    /// Copies `buf.len()` bytes from `ptr` (the caller has checked bounds).
    fn read_raw(&mut self, ptr: usize, buf: &mut [u8]) -> Result<(), Errno>;
    /// Copies `data` to `ptr` (the caller has checked bounds).
    fn write_raw(&mut self, ptr: usize, data: &[u8]) -> Result<(), Errno>;
}

/// Checks that `[ptr, ptr + len)` lies within a memory of `size` bytes.
pub(crate) fn check_range(size: usize, ptr: u32, len: u64) -> Result<usize, Errno> {
    let end = u64::from(ptr).checked_add(len).ok_or(Errno::Fault)?;
    if end > size as u64 {
        return Err(Errno::Fault);
    }
    Ok(ptr as usize)
}

/// Bounds-checked helpers over any [`GuestMemory`].
pub(crate) trait MemExt: GuestMemory {
    fn check(&mut self, ptr: u32, len: u64) -> Result<usize, Errno> {
        let size = self.size();
        check_range(size, ptr, len)
    }

    fn read(&mut self, ptr: u32, buf: &mut [u8]) -> Result<(), Errno> {
        let p = self.check(ptr, buf.len() as u64)?;
        self.read_raw(p, buf)
    }

    fn write(&mut self, ptr: u32, data: &[u8]) -> Result<(), Errno> {
        let p = self.check(ptr, data.len() as u64)?;
        self.write_raw(p, data)
    }

    fn read_vec(&mut self, ptr: u32, len: u32) -> Result<Vec<u8>, Errno> {
        self.check(ptr, u64::from(len))?;
        let mut v = vec![0u8; len as usize];
        self.read(ptr, &mut v)?;
        Ok(v)
    }

    /// A path argument: bounded in length before it is copied.
    fn read_path(&mut self, ptr: u32, len: u32) -> Result<Vec<u8>, Errno> {
        if len > MAX_PATH {
            return Err(Errno::Nametoolong);
        }
        self.read_vec(ptr, len)
    }

    fn read_array<const N: usize>(&mut self, ptr: u32) -> Result<[u8; N], Errno> {
        let mut b = [0u8; N];
        self.read(ptr, &mut b)?;
        Ok(b)
    }

    fn write_u8(&mut self, ptr: u32, v: u8) -> Result<(), Errno> {
        self.write(ptr, &[v])
    }
    fn write_u16(&mut self, ptr: u32, v: u16) -> Result<(), Errno> {
        self.write(ptr, &v.to_le_bytes())
    }
    fn write_u32(&mut self, ptr: u32, v: u32) -> Result<(), Errno> {
        self.write(ptr, &v.to_le_bytes())
    }
    fn write_u64(&mut self, ptr: u32, v: u64) -> Result<(), Errno> {
        self.write(ptr, &v.to_le_bytes())
    }

    /// An array of `iovec`/`ciovec`: `(buf, buf_len)` pairs, each checked
    /// to lie within memory.
    fn read_iovecs(&mut self, iovs: u32, count: u32) -> Result<Vec<(u32, u32)>, Errno> {
        let size = self.size();
        check_range(size, iovs, u64::from(count) * 8)?;
        let mut raw = vec![0u8; count as usize * 8];
        self.read(iovs, &mut raw)?;
        raw.chunks_exact(8)
            .map(|c| {
                let buf = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
                let len = u32::from_le_bytes([c[4], c[5], c[6], c[7]]);
                check_range(size, buf, u64::from(len))?;
                Ok((buf, len))
            })
            .collect()
    }

    /// Gathers the bytes of `ciovec`s (at most [`MAX_IO`]).
    fn gather(&mut self, iovs: &[(u32, u32)]) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        for &(buf, len) in iovs {
            let take = (len as usize).min(MAX_IO - out.len());
            if take == 0 {
                if out.len() == MAX_IO {
                    break;
                }
                continue;
            }
            let start = out.len();
            out.resize(start + take, 0);
            self.read(buf, &mut out[start..])?;
        }
        Ok(out)
    }

    /// Scatters `data` over `iovec`s, in order.
    fn scatter(&mut self, iovs: &[(u32, u32)], mut data: &[u8]) -> Result<(), Errno> {
        for &(buf, len) in iovs {
            if data.is_empty() {
                break;
            }
            let n = (len as usize).min(data.len());
            self.write(buf, &data[..n])?;
            data = &data[n..];
        }
        Ok(())
    }
}

impl<M: GuestMemory + ?Sized> MemExt for M {}

/// The total length of `iovec`s, capped at [`MAX_IO`].
pub(crate) fn iovec_total(iovs: &[(u32, u32)]) -> usize {
    iovs.iter()
        .fold(0usize, |a, &(_, l)| a.saturating_add(l as usize))
        .min(MAX_IO)
}

/// A plain byte vector as guest memory (for tests).
impl GuestMemory for Vec<u8> {
    fn size(&mut self) -> usize {
        self.len()
    }
    fn read_raw(&mut self, ptr: usize, buf: &mut [u8]) -> Result<(), Errno> {
        let src = self.get(ptr..ptr + buf.len()).ok_or(Errno::Fault)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write_raw(&mut self, ptr: usize, data: &[u8]) -> Result<(), Errno> {
        let dst = self.get_mut(ptr..ptr + data.len()).ok_or(Errno::Fault)?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked() {
        let mut m = vec![0u8; 16];
        assert_eq!(m.write(12, &[1, 2, 3, 4]), Ok(()));
        assert_eq!(m.write(13, &[1, 2, 3, 4]), Err(Errno::Fault));
        assert_eq!(m.write(u32::MAX, &[1]), Err(Errno::Fault));
        assert_eq!(m.write_u64(8, 7), Ok(()));
        assert_eq!(m.write_u64(9, 7), Err(Errno::Fault));
        assert_eq!(m.read_vec(0, 17), Err(Errno::Fault));
        assert_eq!(m.read_vec(16, 0), Ok(vec![]));
        assert_eq!(m.read_path(0, MAX_PATH + 1), Err(Errno::Nametoolong));
        // Zero-length access at the very end is fine, one past is not.
        assert_eq!(m.read_vec(17, 0), Err(Errno::Fault));
    }

    #[test]
    fn iovecs_are_checked() {
        let mut m = vec![0u8; 64];
        // iovec 0: (32, 8); iovec 1: (60, 8) is out of bounds.
        m.write_u32(0, 32).unwrap();
        m.write_u32(4, 8).unwrap();
        m.write_u32(8, 60).unwrap();
        m.write_u32(12, 8).unwrap();
        assert_eq!(m.read_iovecs(0, 1), Ok(vec![(32, 8)]));
        assert_eq!(m.read_iovecs(0, 2), Err(Errno::Fault));
        assert_eq!(m.read_iovecs(60, 1), Err(Errno::Fault));
        assert_eq!(m.read_iovecs(0, u32::MAX), Err(Errno::Fault));
        m.write(32, b"abcdefgh").unwrap();
        let iovs = m.read_iovecs(0, 1).unwrap();
        assert_eq!(m.gather(&iovs), Ok(b"abcdefgh".to_vec()));
        m.scatter(&[(40, 2), (50, 10)], b"xyz").unwrap();
        assert_eq!(&m[40..42], b"xy");
        assert_eq!(&m[50..51], b"z");
        assert_eq!(iovec_total(&[(0, u32::MAX), (0, u32::MAX)]), MAX_IO);
    }
}
