//! Parallel compilation: `cargo bench -p weft --bench compile`.
//!
//! A generated module of 4 000 mid-sized functions (0.4 MB of wasm) is
//! compiled with `Config::parallel_compilation` off and on, interleaved
//! over rounds; the report gives the medians, the speed-up on this
//! machine's cores, the time to load the same module precompiled
//! (`Module::deserialize`, what `weft run` does on a cache hit) and the
//! process's peak resident memory.
//!
//! `--peak-mb N`: instead, builds a module of at least N MB (the same
//! function body, repeated, made with `wasm-encoder`), resets the process's
//! peak resident memory (`/proc/self/clear_refs`), compiles it once on all
//! cores and reports the time and the peak resident memory while
//! compiling (the module's bytes included). Linux only.

mod kernels;

use std::time::Instant;

use weft::{Config, Engine, Module};

fn module(functions: usize) -> Vec<u8> {
    kernels::many_functions(functions)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// A module of at least `min_bytes`: functions of eight copies of
/// `many_functions`' loop (loads, stores and a branch), as many as needed,
/// each exported. Built with `wasm-encoder`: parsing text of this size
/// would take far more memory than compiling it.
fn big_module(min_bytes: usize) -> Vec<u8> {
    use wasm_encoder::{
        BlockType, CodeSection, ExportKind, ExportSection, Function, FunctionSection,
        Instruction as I, MemArg, MemArgTarget, MemorySection, MemoryType, Module as Enc,
        TypeSection, ValType,
    };
    let body = |i: i32| {
        let mut f = Function::new([(1, ValType::I32)]);
        let mem = |offset| MemArg {
            offset,
            align: 2,
            target: MemArgTarget::Memory(0),
            ordering: None,
        };
        // Eight copies of the loop per function: a real large module has
        // fewer, bigger functions than the wasm limit of a million.
        for ins in std::iter::repeat_n(
            [
                I::I32Const(i),
                I::LocalSet(2),
                I::Block(BlockType::Empty),
                I::Loop(BlockType::Empty),
                I::LocalGet(2),
                I::LocalGet(1),
                I::I32GeU,
                I::BrIf(1),
                I::LocalGet(0),
                I::LocalGet(2),
                I::I32Const(3),
                I::I32Mul,
                I::I32Add,
                I::LocalSet(0),
                I::LocalGet(2),
                I::I32Const(1020),
                I::I32And,
                I::LocalGet(0),
                I::I32Store(mem(0)),
                I::LocalGet(0),
                I::LocalGet(0),
                I::I32Const(1020),
                I::I32And,
                I::I32Load(mem(4)),
                I::I32Xor,
                I::LocalSet(0),
                I::LocalGet(0),
                I::I32Const(1000),
                I::I32GtS,
                I::If(BlockType::Empty),
                I::LocalGet(0),
                I::I32Const(1),
                I::I32ShrU,
                I::LocalSet(0),
                I::End,
                I::LocalGet(2),
                I::I32Const(1),
                I::I32Add,
                I::LocalSet(2),
                I::Br(0),
                I::End,
                I::End,
            ],
            8,
        )
        .flatten()
        .chain([I::LocalGet(0), I::End])
        {
            f.instruction(&ins);
        }
        f
    };
    let per_function = {
        let mut code = CodeSection::new();
        code.function(&body(0));
        // The shortest export name: an underestimate, so `n` errs high.
        code.byte_len() + "f0".len() + 3
    };
    let n = min_bytes.div_ceil(per_function) as u32;
    let mut types = TypeSection::new();
    types
        .ty()
        .function([ValType::I32, ValType::I32], [ValType::I32]);
    let mut funcs = FunctionSection::new();
    let mut exports = ExportSection::new();
    let mut code = CodeSection::new();
    for i in 0..n {
        funcs.function(0);
        exports.export(&format!("f{i}"), ExportKind::Func, i);
        code.function(&body(i as i32));
    }
    let mut memories = MemorySection::new();
    memories.memory(MemoryType {
        minimum: 1,
        maximum: None,
        memory64: false,
        shared: false,
        page_size_log2: None,
    });
    let mut module = Enc::new();
    module
        .section(&types)
        .section(&funcs)
        .section(&memories)
        .section(&exports)
        .section(&code);
    module.finish()
}

fn vm_hwm() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM"))?;
    Some(line.trim_start_matches("VmHWM:").trim().to_string())
}

/// `--peak-mb N` (see the module docs).
fn peak(mb: usize) {
    let bytes = big_module(mb << 20);
    let engine = Engine::default();
    // Only the compile's own peak counts from here ("5": reset VmHWM).
    if std::fs::write("/proc/self/clear_refs", "5").is_err() {
        println!("cannot reset the peak resident memory here (not Linux?)");
        return;
    }
    let t = Instant::now();
    let module = Module::new(&engine, &bytes).unwrap();
    let secs = t.elapsed().as_secs_f64();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "compile one {:.1} MB module ({} functions) on {cores} threads: {secs:.1} s; \
         peak resident memory while compiling (the module's bytes included): {}",
        bytes.len() as f64 / (1 << 20) as f64,
        module.exports().count(),
        vm_hwm().unwrap_or_else(|| "unknown".into())
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--peak-mb") {
        let mb = args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or(100);
        peak(mb);
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, mut functions) = if quick { (1, 400) } else { (5, 4000) };
    if let Some(n) = std::env::var("WEFT_COMPILE_FUNCTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        functions = n;
    }
    let bytes = module(functions);
    let engines: Vec<Engine> = [false, true]
        .into_iter()
        .map(|parallel| {
            let mut c = Config::new();
            c.parallel_compilation(parallel);
            Engine::new(&c).unwrap()
        })
        .collect();
    let mut times = [Vec::new(), Vec::new()];
    let mut loads = Vec::new();
    let serialized = Module::new(&engines[1], &bytes)
        .unwrap()
        .serialize()
        .unwrap();
    for _ in 0..rounds {
        for (engine, out) in engines.iter().zip(times.iter_mut()) {
            let t = Instant::now();
            std::hint::black_box(Module::new(engine, &bytes).unwrap());
            out.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let t = Instant::now();
        // SAFETY: bytes this process just serialized with this engine.
        std::hint::black_box(unsafe { Module::deserialize(&engines[1], &serialized) }.unwrap());
        loads.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let serial = median(times[0].clone());
    let parallel = median(times[1].clone());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "compile {functions} functions ({:.1} MB of wasm), median of {rounds} interleaved rounds: \
         one thread {serial:.0} ms, {cores} threads {parallel:.0} ms ({:.2}x speed-up)",
        bytes.len() as f64 / 1e6,
        serial / parallel
    );
    let load = median(loads);
    println!(
        "load the same module precompiled ({:.1} MB, Module::deserialize, as `weft run` does from its cache): \
         {load:.1} ms ({:.0}x faster than compiling on {cores} threads)",
        serialized.len() as f64 / 1e6,
        parallel / load
    );
    if let Some(hwm) = vm_hwm() {
        println!("peak resident memory of this process: {hwm}");
    }
}
