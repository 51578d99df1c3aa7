//! Runtime functions that compiled code calls through the vmctx builtins table.

/// Index into the builtins table (`vmctx->builtins[index]`).
///
/// Every builtin is an `extern "C"` function (the host's C calling
/// convention) whose first argument is the *caller's* vmctx. The runtime
/// fills a table of [`Builtin::COUNT`] code pointers, in this order, and
/// stores its address at [`crate::VMOffsets::builtins`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
#[non_exhaustive]
pub enum Builtin {
    /// `memory.grow`:
    /// `extern "C" fn(vmctx: *mut u8, memory_index: u32, delta_pages: u64) -> u64`.
    ///
    /// Returns the old size in pages, or `u64::MAX` when the memory cannot
    /// grow (the memory is then unchanged). `memory_index` is in the module's
    /// memory index space (imported memories first). After it returns,
    /// compiled code reloads the memory's base and length if memories may
    /// move.
    MemoryGrow = 0,
}

impl Builtin {
    /// Number of builtins: the length of the table the runtime provides.
    pub const COUNT: usize = 1;

    /// Every builtin, in table order.
    pub const ALL: [Builtin; Builtin::COUNT] = [Builtin::MemoryGrow];

    /// Index of this builtin in the table.
    pub fn index(self) -> u32 {
        self as u32
    }

    /// Byte offset of this builtin's entry within the table.
    pub fn table_offset(self) -> u32 {
        self.index() * crate::vmoffsets::PTR_SIZE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_dense() {
        for (i, b) in Builtin::ALL.iter().enumerate() {
            assert_eq!(b.index() as usize, i);
        }
    }
}
