//! Property test: modules generated and encoded with wasm-encoder decode to
//! exactly what was encoded, in every index space and section.

mod common;

use proptest::prelude::*;
use weft_decoder::wasmparser::WasmFeatures;
use weft_decoder::{Features, Module};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn decoder_reports_what_was_encoded(raw in common::raw()) {
        let spec = common::Spec::from_raw(&raw);
        let bytes = spec.encode();
        // The generator promises valid modules; hold it to that with
        // wasmparser's own validator first.
        let features = WasmFeatures::WASM2 | WasmFeatures::THREADS;
        let reference = weft_decoder::wasmparser::Validator::new_with_features(features)
            .validate_all(&bytes)
            .err();
        prop_assert!(reference.is_none(), "generated module is invalid: {reference:?}");

        let module = Module::decode_with(&bytes, Features(features));
        let module = match module {
            Ok(m) => m,
            Err(e) => return Err(TestCaseError::fail(format!("decode failed: {e}"))),
        };
        prop_assert_eq!(module.features, features);
        if let Err(diff) = spec.check(&module) {
            return Err(TestCaseError::fail(diff));
        }
    }

    /// A module using shared memory needs the threads feature.
    #[test]
    fn shared_memory_needs_threads(raw in common::raw()) {
        let spec = common::Spec::from_raw(&raw);
        let bytes = spec.encode();
        let shared = spec.memory.is_some_and(|m| m.shared)
            || spec.imports.iter().any(|i| {
                matches!(i.ty, weft_decoder::EntityType::Memory(m) if m.shared)
            });
        let wasm2 = Module::decode_with(&bytes, Features(WasmFeatures::WASM2));
        prop_assert_eq!(wasm2.is_ok(), !shared, "{:?}", wasm2.err());
    }
}
