//! Executable code: linking compiled functions into one region, trap tables
//! and PC lookups.

use std::sync::Mutex;

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::ir;
use cranelift_codegen::isa::OwnedTargetIsa;
use cranelift_jit::{ArenaMemoryProvider, JITBuilder, JITModule};
use cranelift_module::{FuncId, Module as _, ModuleReloc};

use crate::error::CompileError;
use crate::trap::{TrapKind, TrapTable};

/// One function compiled to machine code, not yet placed in memory.
pub(crate) struct CompiledFunc {
    /// What it is, for error messages.
    pub name: String,
    /// Its signature (needed to declare it in the JIT module).
    pub signature: ir::Signature,
    pub bytes: Vec<u8>,
    pub align: u64,
    pub relocs: Vec<ModuleReloc>,
    /// Trap sites, as offsets from the function's start.
    pub traps: Vec<(u32, TrapKind)>,
    /// Where the code of each wasm operator starts: (offset from the
    /// function's start, the operator's byte offset in the module), sorted.
    pub srclocs: Vec<(u32, u32)>,
}

/// A linked function's layout facts, kept for serialization.
pub(crate) struct FuncMeta {
    pub align: u64,
    pub relocs: Vec<ModuleReloc>,
    pub traps: Vec<(u32, TrapKind)>,
    pub srclocs: Vec<(u32, u32)>,
}

/// Owns a region of executable code built from several functions.
///
/// The functions are laid out contiguously in one reservation (an arena), so
/// `[start, end)` covers exactly this code.
pub(crate) struct CodeMemory {
    /// What serializing needs of each function (its code is read back from
    /// memory, relocation sites cleared).
    pub(crate) meta: Vec<FuncMeta>,
    /// The JIT module owning the memory. Never used after linking except to
    /// free the memory on drop; the mutex only makes the type `Sync`.
    module: Mutex<Option<JITModule>>,
    /// Address of each function, in the order they were given.
    funcs: Vec<(usize, usize)>,
    start: usize,
    end: usize,
    traps: TrapTable,
    /// (offset from `start`, module byte offset of the wasm operator whose
    /// code starts there), sorted by the first.
    srclocs: Vec<(u32, u32)>,
}

impl CodeMemory {
    /// Places `funcs` in executable memory and resolves calls between them:
    /// a function's IR must name function `i` of `funcs` as the user external
    /// name `(0, i)`.
    pub(crate) fn link(
        isa: &OwnedTargetIsa,
        funcs: Vec<CompiledFunc>,
    ) -> Result<Self, CompileError> {
        let page = 4096usize.max(page_size());
        // Functions start at the ISA's preferred alignment (32 bytes on
        // x86-64), not the 1 the code buffer asks for: otherwise adding one
        // instruction anywhere shifts every later function's loops across
        // fetch and cache-line boundaries, and measurements follow placement
        // rather than code.
        let preferred = u64::from(isa.function_alignment().preferred);
        let align_of = |f: &CompiledFunc| f.align.max(preferred).max(16);
        let mut total = 0usize;
        let mut largest = 0usize;
        for f in &funcs {
            largest = largest.max(f.bytes.len());
            let veneers = f
                .relocs
                .iter()
                .filter(|r| r.kind == Reloc::Arm64Call)
                .count();
            let align = align_of(f) as usize;
            total = total.next_multiple_of(align) + f.bytes.len() + veneers * 24;
        }
        // The arena grows its code segment in page-rounded steps of at most
        // one function, so the layout needs at most `largest + page` bytes
        // beyond the functions themselves.
        let reserve = (total + largest + 2 * page).next_multiple_of(page);
        let arena = ArenaMemoryProvider::new_with_size(reserve)
            .map_err(|e| CompileError::CodeMemory(e.to_string()))?;
        let mut builder =
            JITBuilder::with_isa(isa.clone(), cranelift_module::default_libcall_names());
        builder.memory_provider(Box::new(arena));
        // Resolve the float and shuffle libcalls Cranelift may emit (on CPUs
        // without SSE4.1 or SSSE3, say) to our own functions rather than to
        // whatever `dlsym` finds in the process.
        builder.symbols(LIBCALLS);
        #[cfg(target_arch = "x86_64")]
        builder.symbol("__cranelift_x86_pshufb", x86_pshufb as *const u8);
        let mut module = JITModule::new(builder);

        let mut ids = Vec::with_capacity(funcs.len());
        for (i, f) in funcs.iter().enumerate() {
            let id = module
                .declare_anonymous_function(&f.signature)
                .map_err(|e| CompileError::CodeMemory(e.to_string()))?;
            debug_assert_eq!(id, FuncId::from_u32(i as u32));
            ids.push(id);
        }
        for (f, &id) in funcs.iter().zip(&ids) {
            module
                .define_function_bytes(id, align_of(f), &f.bytes, &f.relocs)
                .map_err(|e| CompileError::Codegen {
                    func: f.name.clone(),
                    message: e.to_string(),
                })?;
        }
        module
            .finalize_definitions()
            .map_err(|e| CompileError::CodeMemory(e.to_string()))?;

        let mut traps = TrapTable::default();
        let mut addrs = Vec::with_capacity(funcs.len());
        for (f, &id) in funcs.iter().zip(&ids) {
            let ptr = module.get_finalized_function(id) as usize;
            addrs.push((ptr, ptr + f.bytes.len()));
        }
        let start = addrs.iter().map(|a| a.0).min().unwrap_or(0);
        let end = addrs.iter().map(|a| a.1).max().unwrap_or(0);
        let mut srclocs = Vec::new();
        for (f, &(ptr, _)) in funcs.iter().zip(&addrs) {
            for &(off, kind) in &f.traps {
                traps.push((ptr - start) as u32 + off, kind);
            }
            srclocs.extend(
                f.srclocs
                    .iter()
                    .map(|&(off, wasm)| ((ptr - start) as u32 + off, wasm)),
            );
        }
        traps.finish();
        srclocs.sort_unstable();
        let meta = funcs
            .into_iter()
            .map(|f| FuncMeta {
                align: f.align,
                relocs: f.relocs,
                traps: f.traps,
                srclocs: f.srclocs,
            })
            .collect();
        Ok(CodeMemory {
            meta,
            module: Mutex::new(Some(module)),
            funcs: addrs,
            start,
            end,
            traps,
            srclocs,
        })
    }

    /// The module byte offset of the wasm operator whose code contains `pc`.
    pub(crate) fn wasm_offset(&self, pc: usize) -> Option<u32> {
        if pc < self.start || pc >= self.end {
            return None;
        }
        let off = (pc - self.start) as u32;
        let i = self.srclocs.partition_point(|&(o, _)| o <= off);
        Some(self.srclocs.get(i.checked_sub(1)?)?.1)
    }

    /// Address of function `i` (in the order given to [`CodeMemory::link`]).
    pub(crate) fn func_ptr(&self, i: usize) -> *const u8 {
        self.funcs[i].0 as *const u8
    }

    /// `[start, end)` of function `i`.
    pub(crate) fn func_range(&self, i: usize) -> (usize, usize) {
        self.funcs[i]
    }

    pub(crate) fn range(&self) -> (usize, usize) {
        (self.start, self.end)
    }

    pub(crate) fn lookup_trap(&self, pc: usize) -> Option<TrapKind> {
        if pc < self.start || pc >= self.end {
            return None;
        }
        self.traps.lookup((pc - self.start) as u32)
    }

    pub(crate) fn num_trap_sites(&self) -> usize {
        self.traps.len()
    }
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        let module = self
            .module
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(module) = module {
            // SAFETY: the owner of this code memory (a `CompiledModule` or
            // `CompiledTrampoline`) is being dropped; the runtime keeps it
            // alive (in an `Arc`) as long as any instance may run its code, so
            // no pointer into this memory is used after this point.
            unsafe { module.free_memory() };
        }
    }
}

extern "C" fn floorf(x: f32) -> f32 {
    x.floor()
}
extern "C" fn floor(x: f64) -> f64 {
    x.floor()
}
extern "C" fn ceilf(x: f32) -> f32 {
    x.ceil()
}
extern "C" fn ceil(x: f64) -> f64 {
    x.ceil()
}
extern "C" fn truncf(x: f32) -> f32 {
    x.trunc()
}
extern "C" fn trunc(x: f64) -> f64 {
    x.trunc()
}
extern "C" fn nearbyintf(x: f32) -> f32 {
    x.round_ties_even()
}
extern "C" fn nearbyint(x: f64) -> f64 {
    x.round_ties_even()
}
extern "C" fn fmaf(x: f32, y: f32, z: f32) -> f32 {
    x.mul_add(y, z)
}
extern "C" fn fma(x: f64, y: f64, z: f64) -> f64 {
    x.mul_add(y, z)
}

/// `pshufb`, which Cranelift calls for byte shuffles on x86-64 CPUs without
/// SSSE3: byte `i` of the result is 0 if bit 7 of `idx[i]` is set, else
/// `x[idx[i] & 15]`.
///
/// Cranelift calls it with the target's default convention, System V on
/// the Unix hosts weft runs on, where `extern "C"` passes and returns each
/// `__m128i` in an XMM register, as Cranelift does
/// (`shuffle_libcall_resolves_and_follows_wasm` runs it).
#[cfg(target_arch = "x86_64")]
#[allow(
    improper_ctypes_definitions,
    reason = "__m128i is an SSE register value in the System V C ABI"
)]
extern "C" fn x86_pshufb(
    x: std::arch::x86_64::__m128i,
    idx: std::arch::x86_64::__m128i,
) -> std::arch::x86_64::__m128i {
    // SAFETY: `__m128i` is 16 plain bytes; any bit pattern is valid either way.
    let (x, idx) = unsafe {
        (
            std::mem::transmute::<std::arch::x86_64::__m128i, [u8; 16]>(x),
            std::mem::transmute::<std::arch::x86_64::__m128i, [u8; 16]>(idx),
        )
    };
    let r = idx.map(|i| {
        if i & 0x80 != 0 {
            0
        } else {
            x[usize::from(i & 15)]
        }
    });
    // SAFETY: as above.
    unsafe { std::mem::transmute::<[u8; 16], std::arch::x86_64::__m128i>(r) }
}

/// Libcall symbols (as `cranelift_module::default_libcall_names` spells
/// them) and their implementations.
const LIBCALLS: [(&str, *const u8); 10] = [
    ("floorf", floorf as *const u8),
    ("floor", floor as *const u8),
    ("ceilf", ceilf as *const u8),
    ("ceil", ceil as *const u8),
    ("truncf", truncf as *const u8),
    ("trunc", trunc as *const u8),
    ("nearbyintf", nearbyintf as *const u8),
    ("nearbyint", nearbyint as *const u8),
    ("fmaf", fmaf as *const u8),
    ("fma", fma as *const u8),
];

fn page_size() -> usize {
    // Cranelift's arena rounds to the host page size; 64 KiB covers every
    // host we run on without asking the OS.
    65536
}
