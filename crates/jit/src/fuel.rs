//! The fuel cost model.
//!
//! With [`crate::Tunables::consume_fuel`], every executed operator adds its
//! [`fuel_cost`] to `VMStoreContext::fuel_consumed` (see `CONTRACT.md`).
//! The model is static and deterministic: the fuel a call consumes depends
//! only on the operators it executes, never on timing, optimisation level
//! or tunables, so "fuel remaining after a call" is the same on every run.

use weft_decoder::wasmparser::Operator;

/// The fuel one execution of `op` costs: 0 for `nop`, `drop`, `block`,
/// `loop`, `end` and `else` (they compile to no work, or only mark
/// structure), 1 for every other operator.
///
/// Operators in unreachable code are never executed and never charged. A
/// trapping operator may or may not have been charged when the trap
/// happens (fuel after a trap is unspecified but still deterministic).
pub fn fuel_cost(op: &Operator<'_>) -> u64 {
    match op {
        Operator::Nop
        | Operator::Drop
        | Operator::Block { .. }
        | Operator::Loop { .. }
        | Operator::TryTable { .. }
        | Operator::End
        | Operator::Else => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weft_decoder::wasmparser::BlockType;

    #[test]
    fn structural_operators_are_free() {
        assert_eq!(fuel_cost(&Operator::Nop), 0);
        assert_eq!(fuel_cost(&Operator::Drop), 0);
        assert_eq!(
            fuel_cost(&Operator::Block {
                blockty: BlockType::Empty
            }),
            0
        );
        assert_eq!(
            fuel_cost(&Operator::Loop {
                blockty: BlockType::Empty
            }),
            0
        );
        assert_eq!(fuel_cost(&Operator::End), 0);
        assert_eq!(fuel_cost(&Operator::Else), 0);
        assert_eq!(fuel_cost(&Operator::I32Add), 1);
        assert_eq!(fuel_cost(&Operator::Br { relative_depth: 0 }), 1);
        assert_eq!(fuel_cost(&Operator::Call { function_index: 0 }), 1);
        assert_eq!(
            fuel_cost(&Operator::If {
                blockty: BlockType::Empty
            }),
            1
        );
    }
}
