//! Truncated and byte-corrupted modules: the decoder returns `Ok` or `Err`,
//! never panics, and accepts exactly what wasmparser's validator accepts.

#[allow(dead_code, reason = "only the generator is used here, not the checks")]
mod common;

use proptest::prelude::*;
use weft_decoder::wasmparser::{Validator, WasmFeatures};
use weft_decoder::{DecodeError, Features, Module};

const FEATURES: WasmFeatures = WasmFeatures::WASM2.union(WasmFeatures::THREADS);

/// Decodes `bytes` and compares with the reference validator. A panic fails
/// the calling test.
fn judge(bytes: &[u8]) -> Result<(), String> {
    let ours = Module::decode_with(bytes, Features(FEATURES));
    let reference = Validator::new_with_features(FEATURES).validate_all(bytes);
    match (&ours, &reference) {
        (Ok(_), Ok(_)) => Ok(()),
        (Err(DecodeError::Invalid { offset, .. }), Err(_)) if *offset <= bytes.len() => Ok(()),
        _ => Err(format!(
            "decoder: {:?}, wasmparser: {:?}",
            ours.map(|_| "ok"),
            reference.map(|_| "ok")
        )),
    }
}

/// A module with a bit of everything (and a valid one, checked below).
const HELLO: &str = r#"
(module $m
  (type $t (func (param i32) (result i32)))
  (import "env" "f" (func $imp (type $t)))
  (import "env" "g" (global $g i32))
  (memory 1 4 shared)
  (table 3 funcref)
  (global $h (mut i64) (i64.const -1))
  (global $r funcref (ref.func $id))
  (func $id (export "id") (type $t) local.get 0)
  (func $loop (param $n i32) (result i32) (local $acc i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $acc (i32.add (local.get $acc) (local.get $n)))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $next)))
    (i32.atomic.rmw.add (i32.const 0) (local.get $acc)))
  (func $start)
  (start $start)
  (elem (i32.const 0) $id $loop)
  (elem func $imp)
  (elem declare func $start)
  (data (i32.const 8) "weft")
  (data "passive"))
"#;

#[test]
fn every_truncation_and_single_byte_change_of_a_module() {
    let bytes = weft_decoder::parse_wat(HELLO).unwrap();
    judge(&bytes).unwrap();
    Module::decode_with(&bytes, Features(FEATURES)).expect("the base module is valid");
    for len in 0..bytes.len() {
        judge(&bytes[..len]).unwrap_or_else(|e| panic!("truncated to {len}: {e}"));
    }
    for i in 0..bytes.len() {
        for v in [0x00, 0x01, 0x7f, 0x80, 0xff, bytes[i] ^ 0x40] {
            let mut b = bytes.clone();
            b[i] = v;
            judge(&b).unwrap_or_else(|e| panic!("byte {i} set to {v:#x}: {e}"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn corrupted_generated_modules(
        raw in common::raw(),
        cut in any::<prop::sample::Index>(),
        changes in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = common::Spec::from_raw(&raw).encode();
        let len = cut.index(bytes.len() + 1);
        if let Err(e) = judge(&bytes[..len]) {
            return Err(TestCaseError::fail(format!("truncated to {len}: {e}")));
        }
        for (at, v) in changes {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if let Err(e) = judge(&bytes) {
            return Err(TestCaseError::fail(format!("corrupted: {e}")));
        }
    }
}

/// A module whose function section declares 3 bytes but whose one entry is a
/// 6-byte (over-long) LEB128 number: the spec reads the number to its end
/// and calls it too long; the section's end comes second.
#[test]
fn an_over_long_number_cut_by_its_sections_end_is_reported_as_too_long() {
    let cut = |entry: &[u8]| {
        let mut m = b"\0asm\x01\0\0\0".to_vec();
        m.extend_from_slice(b"\x01\x04\x01\x60\x00\x00"); // type section: () -> ()
        m.extend_from_slice(b"\x03\x03\x01"); // function section, 3 bytes, 1 entry
        m.extend_from_slice(entry);
        m.extend_from_slice(b"\x0a\x04\x01\x02\x00\x0b"); // code section
        Module::decode_with(&m, Features(FEATURES)).unwrap_err()
    };
    let too_long = cut(b"\x80\x80\x80\x80\x80\x00");
    assert!(
        too_long
            .message()
            .contains("integer representation too long"),
        "{too_long}"
    );
    let too_large = cut(b"\x80\x80\x80\x80\x70");
    assert!(
        too_large.message().contains("integer too large"),
        "{too_large}"
    );
    // Read past the section's end this number is well-formed (type 0), so the
    // section's end is the defect.
    let well_formed = cut(b"\x80\x80\x00");
    assert!(
        well_formed.message().contains("unexpected end-of-file"),
        "{well_formed}"
    );
    // A module truncated inside a number has nothing past its end to read.
    let truncated = Module::decode_with(b"\0asm\x01\0\0\0\x01\x84\x80", Features(FEATURES));
    assert!(
        truncated
            .unwrap_err()
            .message()
            .contains("unexpected end-of-file")
    );
}
