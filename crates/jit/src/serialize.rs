//! Compiled code that persists: a [`CompiledModule`]'s functions written to
//! bytes and linked again from them.
//!
//! What is written per function (code, then trampolines, in link order):
//! its alignment, its machine code as linked but with every relocation site
//! cleared, its relocations (offset, kind, target, addend), its trap sites
//! and its source locations. Reading links the functions into fresh
//! executable memory exactly as compiling does (`CodeMemory::link`), with
//! signatures rebuilt from the module's types, so loading costs a copy and
//! the relocations, not a compilation.
//!
//! Nothing here can check that the code is what weft would generate: the
//! bytes are trusted. The caller (the runtime) binds them to the compiler's
//! [`fingerprint`](crate::Compiler::fingerprint) and to the module, and
//! documents that only bytes it produced may be loaded.

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::ir::LibCall;
use cranelift_module::{ModuleReloc, ModuleRelocTarget};
use weft_decoder::Module;

use crate::code::{CodeMemory, CompiledFunc};
use crate::compiler::{CompiledModule, Compiler};
use crate::error::CompileError;
use crate::trap::TrapKind;
use crate::vmoffsets::VMOffsets;

/// Format version of the function list and code (bumped on any layout or
/// code ABI change; 2: `wasm_call` functions use the `tail` convention).
const FORMAT: u32 = 3;

fn err(msg: impl Into<String>) -> CompileError {
    CompileError::Serialized(msg.into())
}

/// The relocation kinds weft's code uses, with their byte width at the site
/// (`Arm64Call` patches the low 26 bits of a 4-byte instruction).
const RELOCS: [(u8, Reloc, usize); 6] = [
    (0, Reloc::Abs4, 4),
    (1, Reloc::Abs8, 8),
    (2, Reloc::X86PCRel4, 4),
    (3, Reloc::X86CallPCRel4, 4),
    (4, Reloc::X86CallPLTRel4, 4),
    (5, Reloc::Arm64Call, 4),
];

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.u64(b.len() as u64);
        self.0.extend_from_slice(b);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CompileError> {
        if self.0.len() < n {
            return Err(err("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, CompileError> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32, CompileError> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64, CompileError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn len(&mut self) -> Result<usize, CompileError> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n <= self.0.len())
            .ok_or_else(|| err("a length runs past the end"))
    }
    fn bytes(&mut self) -> Result<&'a [u8], CompileError> {
        let n = self.len()?;
        self.take(n)
    }
}

impl CompiledModule {
    /// The module's code as bytes that [`Compiler::deserialize`] links
    /// again (see the module docs).
    ///
    /// # Errors
    /// If the code uses a relocation this format does not describe.
    pub fn serialize(&self) -> Result<Vec<u8>, CompileError> {
        serialize_code(&self.code)
    }
}

fn serialize_code(code: &CodeMemory) -> Result<Vec<u8>, CompileError> {
    let mut w = Writer(Vec::new());
    w.u32(FORMAT);
    w.u32(code.meta.len() as u32);
    for (i, meta) in code.meta.iter().enumerate() {
        let (start, end) = code.func_range(i);
        // SAFETY: `[start, end)` is function `i`'s linked code, which lives
        // (read-only, executable) as long as `code`.
        let mut bytes =
            unsafe { std::slice::from_raw_parts(start as *const u8, end - start) }.to_vec();
        w.u64(meta.align);
        w.u32(meta.relocs.len() as u32);
        for r in &meta.relocs {
            let &(tag, _, width) = RELOCS
                .iter()
                .find(|(_, k, _)| *k == r.kind)
                .ok_or_else(|| err(format!("relocation kind {:?} cannot be saved", r.kind)))?;
            let at = r.offset as usize;
            let site = bytes
                .get_mut(at..at + width)
                .ok_or_else(|| err("relocation outside its function"))?;
            if r.kind == Reloc::Arm64Call {
                let insn = u32::from_le_bytes(site.try_into().expect("4 bytes")) & !0x03ff_ffff;
                site.copy_from_slice(&insn.to_le_bytes());
            } else {
                site.fill(0);
            }
            w.u32(r.offset);
            w.u8(tag);
            match &r.name {
                ModuleRelocTarget::User { namespace, index } => {
                    w.u8(0);
                    w.u32(*namespace);
                    w.u32(*index);
                }
                ModuleRelocTarget::LibCall(l) => {
                    w.u8(1);
                    w.bytes(l.to_string().as_bytes());
                }
                other => return Err(err(format!("relocation target {other:?} cannot be saved"))),
            }
            w.u64(r.addend as u64);
        }
        w.bytes(&bytes);
        w.u32(meta.traps.len() as u32);
        for &(off, kind) in &meta.traps {
            w.u32(off);
            let k = TrapKind::ALL
                .iter()
                .position(|&t| t == kind)
                .expect("every kind is listed");
            w.u8(k as u8);
        }
        w.u32(meta.srclocs.len() as u32);
        for &(off, wasm) in &meta.srclocs {
            w.u32(off);
            w.u32(wasm);
        }
    }
    Ok(w.0)
}

impl Compiler {
    /// Links code written by [`CompiledModule::serialize`] for `module`.
    ///
    /// # Safety
    /// `bytes` must have been produced by `serialize` for this same
    /// `module` by a compiler with the same
    /// [`fingerprint`](Self::fingerprint): the machine code in it is run
    /// as it is. Malformed bytes are an error; well-formed bytes of another
    /// origin are undefined behaviour when the code runs.
    pub unsafe fn deserialize(
        &self,
        module: &Module,
        bytes: &[u8],
    ) -> Result<CompiledModule, CompileError> {
        let mut r = Reader(bytes);
        if r.u32()? != FORMAT {
            return Err(err("written by another version of the format"));
        }
        let n = module.bodies.len();
        let count = r.u32()? as usize;
        if count != 2 * n {
            return Err(err(format!(
                "{count} functions saved, the module has {}",
                2 * n
            )));
        }
        let mut funcs = Vec::with_capacity(count);
        for i in 0..count {
            let align = r.u64()?;
            if !align.is_power_of_two() || align > 4096 {
                return Err(err("bad function alignment"));
            }
            let nrelocs = r.u32()? as usize;
            let mut relocs = Vec::with_capacity(nrelocs.min(r.0.len()));
            for _ in 0..nrelocs {
                let offset = r.u32()?;
                let tag = r.u8()?;
                let &(_, kind, _) = RELOCS
                    .iter()
                    .find(|(t, _, _)| *t == tag)
                    .ok_or_else(|| err("unknown relocation kind"))?;
                let name = match r.u8()? {
                    0 => {
                        let namespace = r.u32()?;
                        let index = r.u32()?;
                        if namespace != 0 || index as usize >= count {
                            return Err(err("relocation to a function that does not exist"));
                        }
                        ModuleRelocTarget::User { namespace, index }
                    }
                    1 => {
                        let name =
                            std::str::from_utf8(r.bytes()?).map_err(|_| err("bad libcall name"))?;
                        let l: LibCall = name.parse().map_err(|_| err("unknown libcall"))?;
                        ModuleRelocTarget::LibCall(l)
                    }
                    _ => return Err(err("unknown relocation target")),
                };
                let addend = r.u64()? as i64;
                relocs.push(ModuleReloc {
                    offset,
                    kind,
                    name,
                    addend,
                });
            }
            let code = r.bytes()?.to_vec();
            for rel in &relocs {
                let width = RELOCS
                    .iter()
                    .find(|(_, k, _)| *k == rel.kind)
                    .map_or(8, |x| x.2);
                if rel.offset as usize + width > code.len() {
                    return Err(err("relocation outside its function"));
                }
            }
            let ntraps = r.u32()? as usize;
            let mut traps = Vec::with_capacity(ntraps.min(r.0.len()));
            for _ in 0..ntraps {
                let off = r.u32()?;
                let kind = *TrapKind::ALL
                    .get(r.u8()? as usize)
                    .ok_or_else(|| err("unknown trap kind"))?;
                traps.push((off, kind));
            }
            let nsrc = r.u32()? as usize;
            let mut srclocs = Vec::with_capacity(nsrc.min(r.0.len()));
            for _ in 0..nsrc {
                srclocs.push((r.u32()?, r.u32()?));
            }
            let (signature, name) = if i < n {
                let f = module.num_imported_funcs + i as u32;
                (
                    crate::translate::wasm_signature(module.func_type(f), self.wasm_call_conv())?,
                    format!("wasm function {f}"),
                )
            } else {
                let f = module.num_imported_funcs + (i - n) as u32;
                (
                    crate::trampolines::array_signature(self, false),
                    format!("array trampoline of function {f}"),
                )
            };
            funcs.push(CompiledFunc {
                name,
                signature,
                bytes: code,
                align,
                relocs,
                traps,
                srclocs,
            });
        }
        if !r.0.is_empty() {
            return Err(err("trailing bytes"));
        }
        let offsets = VMOffsets::new(module);
        self.link_module(module, offsets, funcs)
    }
}
