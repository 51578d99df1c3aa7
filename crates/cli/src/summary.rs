//! The human-readable summary printed by `weft validate`.

use std::fmt::Write as _;
use std::path::Path;

use weft_decoder::{
    ConstExpr, ConstOp, ElementItems2, EntityType, ExternIndex, FuncType, GlobalType, Limits,
    MemoryType, Module, SegmentMode, TableType, ValType,
};

/// Reads, decodes and validates `file`; returns the summary. Errors are the
/// `weft` crate's (one line: not a module, a component, text that does not
/// parse with its line and column, an invalid module with its offset).
pub fn validate(file: &Path, all: bool) -> anyhow::Result<String> {
    use anyhow::Context;
    let bytes =
        std::fs::read(file).with_context(|| format!("{}: cannot read the file", file.display()))?;
    let decoded = if bytes.starts_with(b"\0asm") {
        Module::decode(&bytes).ok()
    } else {
        weft_decoder::parse_wat_named(&bytes, &file.display().to_string())
            .ok()
            .and_then(|b| Module::decode(&b).ok())
    };
    match decoded {
        Some(m) => Ok(summarize(file, &m, all)),
        None => {
            // Let the public API say what is wrong, in its words.
            let engine = weft::Engine::default();
            match weft::Module::from_file(&engine, file) {
                Err(e) => Err(anyhow::anyhow!(
                    "{}",
                    crate::output::about(file, &e.to_string())
                )),
                Ok(_) => Err(anyhow::anyhow!("{}: not a valid module", file.display())),
            }
        }
    }
}

/// Entries listed per section unless `--all` is given.
const LIMIT: usize = 48;

/// One line per section header, one indented line per entry.
pub fn summarize(file: &Path, m: &Module, all: bool) -> String {
    let mut out = String::new();
    let o = &mut out;
    let _ = writeln!(
        o,
        "{}: valid module, {} bytes",
        file.display(),
        m.bytes.len()
    );

    section(o, "types", m.types.len(), all, |o, i| {
        let _ = write!(o, "{i}: {}", func_type(&m.types[i]));
    });

    section(o, "imports", m.imports.len(), all, |o, i| {
        let imp = &m.imports[i];
        let _ = write!(o, "{i}: {:?} {:?}: ", imp.module, imp.name);
        match imp.ty {
            EntityType::Func(t) => {
                let _ = write!(o, "func (type {t}) {}", func_type(&m.types[t as usize]));
            }
            EntityType::Table(t) => table(o, &t),
            EntityType::Memory(t) => memory(o, &t),
            EntityType::Global(t) => global(o, &t),
        }
    });

    let defined = m.functions.len() as u32 - m.num_imported_funcs;
    header(
        o,
        "functions",
        m.functions.len(),
        &format!("{} imported, {defined} defined", m.num_imported_funcs),
    );
    list(o, m.functions.len(), all, |o, i| {
        let f = i as u32;
        let _ = write!(
            o,
            "{i}: type {} {}",
            m.functions[i],
            func_type(m.func_type(f))
        );
        if let Some(name) = m.func_name(f) {
            let _ = write!(o, " ${name}");
        }
        match m.body(f) {
            Some(b) => {
                let _ = write!(o, ", body {} bytes", b.range.len());
            }
            None => {
                let _ = write!(o, ", imported");
            }
        }
    });

    section(o, "tables", m.tables.len(), all, |o, i| {
        let _ = write!(o, "{i}: ");
        table(o, &m.tables[i]);
        if (i as u32) < m.num_imported_tables {
            let _ = write!(o, ", imported");
        }
    });

    section(o, "memories", m.memories.len(), all, |o, i| {
        let _ = write!(o, "{i}: ");
        memory(o, &m.memories[i]);
        if (i as u32) < m.num_imported_memories {
            let _ = write!(o, ", imported");
        }
    });

    section(o, "globals", m.globals.len(), all, |o, i| {
        let _ = write!(o, "{i}: ");
        global(o, &m.globals[i]);
        match (i as u32).checked_sub(m.num_imported_globals) {
            Some(d) => {
                let _ = write!(o, " = {}", expr(&m.global_defs[d as usize].init));
            }
            None => {
                let _ = write!(o, ", imported");
            }
        }
    });

    section(o, "exports", m.exports.len(), all, |o, i| {
        let e = &m.exports[i];
        let (kind, index) = match e.index {
            ExternIndex::Func(x) => ("func", x),
            ExternIndex::Table(x) => ("table", x),
            ExternIndex::Memory(x) => ("memory", x),
            ExternIndex::Global(x) => ("global", x),
        };
        let _ = write!(o, "{:?}: {kind} {index}", e.name);
    });

    match m.start {
        Some(f) => {
            let _ = write!(o, "start: func {f}");
            if let Some(name) = m.func_name(f) {
                let _ = write!(o, " ${name}");
            }
            o.push('\n');
        }
        None => o.push_str("start: none\n"),
    }

    section(o, "elements", m.elements.len(), all, |o, i| {
        let e = &m.elements[i];
        let _ = write!(o, "{i}: ");
        mode(o, &e.mode, "table");
        let kind = match e.items {
            ElementItems2::Functions(_) => "function indices",
            ElementItems2::Expressions(_) => "expressions",
        };
        let _ = write!(o, ", {} {} ({kind})", e.len(), e.ty);
    });

    let data_count = match m.data_count {
        Some(n) => format!("data count section: {n}"),
        None => "no data count section".to_string(),
    };
    header(o, "data", m.data.len(), &data_count);
    list(o, m.data.len(), all, |o, i| {
        let _ = write!(o, "{i}: ");
        mode(o, &m.data[i].mode, "memory");
        let _ = write!(o, ", {} bytes", m.data[i].data.len());
    });

    let module_name = match &m.names.module {
        Some(n) => format!("module {n:?}"),
        None => "no module name".to_string(),
    };
    let _ = writeln!(
        o,
        "names: {module_name}, {} function names",
        m.names.functions.len()
    );
    out
}

/// `(func (param i32 i32) (result i32))`, leaving out empty lists.
pub fn func_type(t: &FuncType) -> String {
    let list = |kw: &str, v: &[ValType]| {
        if v.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = v.iter().map(ValType::to_string).collect();
            format!(" ({kw} {})", names.join(" "))
        }
    };
    format!(
        "(func{}{})",
        list("param", &t.params),
        list("result", &t.results)
    )
}

fn header(o: &mut String, name: &str, n: usize, detail: &str) {
    let _ = writeln!(o, "{name} ({n}): {detail}");
}

fn section(o: &mut String, name: &str, n: usize, all: bool, entry: impl FnMut(&mut String, usize)) {
    let _ = writeln!(o, "{name} ({n})");
    list(o, n, all, entry);
}

fn list(o: &mut String, n: usize, all: bool, mut entry: impl FnMut(&mut String, usize)) {
    let shown = if all { n } else { n.min(LIMIT) };
    for i in 0..shown {
        o.push_str("  ");
        entry(o, i);
        o.push('\n');
    }
    if shown < n {
        let _ = writeln!(o, "  ... {} more (--all lists them)", n - shown);
    }
}

fn limits(o: &mut String, l: &Limits, unit: &str) {
    match l.max {
        Some(max) => {
            let _ = write!(o, "{}..{max} {unit}", l.min);
        }
        None => {
            let _ = write!(o, "{}.. {unit}", l.min);
        }
    }
}

fn table(o: &mut String, t: &TableType) {
    let _ = write!(o, "table {}, ", t.element);
    limits(o, &t.limits, "elements");
    if t.table64 {
        o.push_str(", table64");
    }
}

fn memory(o: &mut String, t: &MemoryType) {
    o.push_str("memory ");
    limits(o, &t.limits, "pages");
    if t.page_size_log2 != 16 {
        let _ = write!(o, " of {} bytes", t.page_size());
    }
    if t.shared {
        o.push_str(", shared");
    }
    if t.memory64 {
        o.push_str(", memory64");
    }
}

fn global(o: &mut String, t: &GlobalType) {
    let _ = write!(o, "global {}{}", if t.mutable { "mut " } else { "" }, t.ty);
}

fn mode(o: &mut String, mode: &SegmentMode, what: &str) {
    match mode {
        SegmentMode::Passive => o.push_str("passive"),
        SegmentMode::Declared => o.push_str("declared"),
        SegmentMode::Active { index, offset } => {
            let _ = write!(o, "active {what} {index} at {}", expr(offset));
        }
    }
}

/// A constant expression in text syntax.
pub fn expr(e: &ConstExpr) -> String {
    let ops: Vec<String> = e.ops.iter().map(op).collect();
    ops.join(" ")
}

fn op(op: &ConstOp) -> String {
    match *op {
        ConstOp::I32Const(v) => format!("i32.const {v}"),
        ConstOp::I64Const(v) => format!("i64.const {v}"),
        ConstOp::F32Const(b) => format!("f32.const {}", f32::from_bits(b)),
        ConstOp::F64Const(b) => format!("f64.const {}", f64::from_bits(b)),
        ConstOp::V128Const(b) => format!("v128.const i64x2 {} {}", b as u64, (b >> 64) as u64),
        ConstOp::RefNull(t) => format!("ref.null {t}"),
        ConstOp::RefFunc(f) => format!("ref.func {f}"),
        ConstOp::GlobalGet(g) => format!("global.get {g}"),
        ConstOp::I32Add => "i32.add".into(),
        ConstOp::I32Sub => "i32.sub".into(),
        ConstOp::I32Mul => "i32.mul".into(),
        ConstOp::I64Add => "i64.add".into(),
        ConstOp::I64Sub => "i64.sub".into(),
        ConstOp::I64Mul => "i64.mul".into(),
    }
}
