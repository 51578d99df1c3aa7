//! Precompiled modules: the `.cwasm` container (`Module::serialize` /
//! `deserialize`) and the on-disk cache of compiled modules
//! (`Config::cache_dir`).
//!
//! A container is
//!
//! ```text
//! MAGIC, u32 version, fingerprint, wasm bytes, code      (lengths: u64 LE)
//! ```
//!
//! where the fingerprint is the compiler's (weft-jit version, target, every
//! Cranelift setting including CPU features, tunables) plus the engine's
//! wasm features: everything that changes the generated code. Loading
//! refuses any other fingerprint, naming the first setting that differs.
//!
//! The cache stores one container per module under a name derived from a
//! hash of the fingerprint and the module's bytes; a hit must also carry
//! exactly the module's bytes (the hash only picks the file). Files are
//! written to a temporary name and renamed into place, so concurrent
//! processes never see a partial file; the directory is trimmed to its size
//! bound (oldest first) after each write. Everything about the cache is best
//! effort: a failure to read or write it only means compiling.
//!
//! Trust model: the cache directory is trusted like the weft binary itself
//! (its code is run as it is). It is created private to the user (0700).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::module::Module;

/// The first bytes of every precompiled module.
pub(crate) const MAGIC: &[u8] = b"\0weft-cwasm\n";
const VERSION: u32 = 1;

/// Everything that must match for code to be reused.
pub(crate) fn fingerprint(engine: &Engine) -> String {
    format!(
        "{}; wasm features {:?}",
        engine.inner.compiler.fingerprint(),
        engine.inner.config.features.bits()
    )
}

fn put(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u64).to_le_bytes());
    out.extend_from_slice(b);
}

pub(crate) fn encode(engine: &Engine, wasm: &[u8], code: &[u8]) -> Vec<u8> {
    let fp = fingerprint(engine);
    let mut out = Vec::with_capacity(MAGIC.len() + 40 + fp.len() + wasm.len() + code.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    put(&mut out, fp.as_bytes());
    put(&mut out, wasm);
    put(&mut out, code);
    out
}

fn take<'a>(b: &mut &'a [u8], what: &str) -> Result<&'a [u8]> {
    let bad = || Error::InvalidArgument(format!("precompiled module: truncated {what}"));
    let len: [u8; 8] = b.get(..8).ok_or_else(bad)?.try_into().expect("8 bytes");
    let len = usize::try_from(u64::from_le_bytes(len)).map_err(|_| bad())?;
    let rest = &b[8..];
    if rest.len() < len {
        return Err(bad());
    }
    let (v, r) = rest.split_at(len);
    *b = r;
    Ok(v)
}

/// The module's bytes and its code, if `bytes` is a container made for
/// `engine`'s settings.
pub(crate) fn decode<'a>(engine: &Engine, bytes: &'a [u8]) -> Result<(&'a [u8], &'a [u8])> {
    let Some(mut b) = bytes.strip_prefix(MAGIC) else {
        return Err(Error::InvalidArgument(
            "not a precompiled weft module (`weft compile` writes them)".into(),
        ));
    };
    let version = b
        .get(..4)
        .map(|v| u32::from_le_bytes(v.try_into().expect("4 bytes")));
    if version != Some(VERSION) {
        return Err(Error::InvalidArgument(
            "precompiled module in another container version: recompile it with this weft".into(),
        ));
    }
    b = &b[4..];
    let theirs = std::str::from_utf8(take(&mut b, "header")?).unwrap_or("");
    let ours = fingerprint(engine);
    if theirs != ours {
        let differ = first_difference(theirs, &ours);
        return Err(Error::InvalidArgument(format!(
            "precompiled module made by another weft version or for another engine \
             configuration or CPU ({differ}): recompile it"
        )));
    }
    let wasm = take(&mut b, "module")?;
    let code = take(&mut b, "code")?;
    if !b.is_empty() {
        return Err(Error::InvalidArgument(
            "precompiled module: trailing bytes".into(),
        ));
    }
    Ok((wasm, code))
}

/// The first setting in which two fingerprints differ, as `it has X, this
/// engine Y` (settings are `; `-separated; lists inside one, such as the
/// tunables or the CPU flags, are compared item by item).
fn first_difference(theirs: &str, ours: &str) -> String {
    let items = |s: &str| -> Vec<String> {
        s.split("; ")
            .flat_map(|part| {
                let inner = part
                    .find('{')
                    .filter(|_| part.ends_with('}'))
                    .map(|i| &part[i + 1..part.len() - 1]);
                match inner {
                    Some(fields) => fields.split(", ").map(|f| f.trim().to_string()).collect(),
                    None => part
                        .split(',')
                        .map(|f| f.trim().to_string())
                        .collect::<Vec<_>>(),
                }
            })
            .collect()
    };
    let (a, b) = (items(theirs), items(ours));
    a.iter()
        .zip(b.iter())
        .find(|(x, y)| x != y)
        .map(|(x, y)| format!("it has `{x}`, this engine `{y}`"))
        .unwrap_or_else(|| "settings differ".into())
}

/// The cache directory weft uses by default: `$XDG_CACHE_HOME/weft`, else
/// `$HOME/.cache/weft`.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".cache"))
        })?;
    Some(base.join("weft"))
}

/// FNV-1a over `parts`, twice with different seeds: a file name, not a
/// proof (the file's contents are compared).
fn key(parts: &[&[u8]]) -> String {
    let mut h = [0xcbf2_9ce4_8422_2325u64, 0x6c62_272e_07bb_0142u64];
    for p in parts {
        for &b in *p {
            for (i, x) in h.iter_mut().enumerate() {
                *x ^= u64::from(b) ^ (i as u64);
                *x = x.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
    }
    format!("{:016x}{:016x}", h[0], h[1])
}

fn path_for(dir: &Path, engine: &Engine, wasm: &[u8]) -> PathBuf {
    let fp = fingerprint(engine);
    dir.join(format!("{}.cwasm", key(&[fp.as_bytes(), wasm])))
}

/// The cached compilation of `decoded`, if there is a valid one.
pub(crate) fn lookup(
    engine: &Engine,
    dir: &Path,
    decoded: &Arc<weft_decoder::Module>,
) -> Option<Module> {
    let path = path_for(dir, engine, &decoded.bytes);
    let bytes = std::fs::read(&path).ok()?;
    let (wasm, code) = decode(engine, &bytes).ok()?;
    if wasm != &decoded.bytes[..] {
        return None;
    }
    // SAFETY: the cache directory is trusted (see the module docs); the
    // file was made for this module by a compiler with this fingerprint.
    let compiled = match unsafe { engine.inner.compiler.deserialize(decoded, code) } {
        Ok(c) => c,
        Err(e) => {
            tracing::debug!(path = %path.display(), error = %e, "unusable cache entry");
            let _ = std::fs::remove_file(&path);
            return None;
        }
    };
    // Recently used entries are trimmed last.
    if let Ok(f) = std::fs::File::options().append(true).open(&path) {
        let _ = f.set_modified(std::time::SystemTime::now());
    }
    tracing::debug!(path = %path.display(), "compiled module from the cache");
    Module::assemble(engine, decoded.clone(), Arc::new(compiled)).ok()
}

/// Writes `module`'s compilation to the cache (best effort).
pub(crate) fn store(dir: &Path, module: &Module) {
    let engine = module.engine();
    let Ok(bytes) = module.serialize() else {
        return;
    };
    if create_private_dir(dir).is_err() {
        return;
    }
    let path = path_for(dir, engine, &module.inner.decoded.bytes);
    let tmp = dir.join(format!(
        ".{}.{}.{:?}.tmp",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
        std::thread::current().id()
    ));
    if std::fs::write(&tmp, &bytes).is_err() || std::fs::rename(&tmp, &path).is_err() {
        let _ = std::fs::remove_file(&tmp);
        return;
    }
    trim(dir, engine.inner.config.cache_max_bytes);
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Deletes the least recently used entries until the directory holds at
/// most `max` bytes of them.
fn trim(dir: &Path, max: u64) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<(std::time::SystemTime, u64, PathBuf)> = rd
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "cwasm"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            Some((m.modified().ok()?, m.len(), e.path()))
        })
        .collect();
    let mut total: u64 = entries.iter().map(|e| e.1).sum();
    entries.sort();
    for (_, len, path) in entries {
        if total <= max {
            break;
        }
        if std::fs::remove_file(&path).is_ok() {
            total -= len;
        }
    }
}
