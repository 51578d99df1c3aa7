//! Epoch interruption and fuel metering, through the fake runtime's
//! `EpochInterrupt` and `OutOfFuel` builtins (which always let execution
//! continue: traps cannot be caught here).

use std::sync::atomic::{AtomicU64, Ordering};

use weft_decoder::Module;
use weft_jit::{CompiledModule, Compiler, TrapKind, Tunables, fuel_cost};

use crate::harness::{ImportVal, Instance, Val, ValRaw, instance, small_tunables, wat};

fn epoch_only() -> Tunables {
    Tunables {
        epoch_interruption: true,
        consume_fuel: false,
        interrupt_poll: false,
        ..small_tunables()
    }
}

fn fuel_only() -> Tunables {
    Tunables {
        epoch_interruption: false,
        consume_fuel: true,
        interrupt_poll: false,
        ..small_tunables()
    }
}

fn neither() -> Tunables {
    Tunables {
        epoch_interruption: false,
        consume_fuel: false,
        interrupt_poll: false,
        ..small_tunables()
    }
}

/// `EpochInterrupt` that changes nothing: every later check calls it again.
fn keep_deadline(_: &mut Instance) -> u32 {
    0
}

const LOOP: &str = r#"(module
  (func (export "loop") (param i32)
    (loop $l
      local.get 0 i32.const 1 i32.sub local.tee 0
      br_if $l)))"#;

#[test]
fn epoch_checks_every_entry_and_loop_header() {
    let mut m = Instance::with(LOOP, epoch_only(), Vec::new());
    // The deadline has passed and stays passed: every check calls the
    // builtin, once at entry and once per visit of the loop header.
    m.store.epoch_deadline = 0;
    m.on_epoch = keep_deadline;
    for n in [1, 2, 10, 1000] {
        m.epoch_calls = 0;
        m.call("loop", &[Val::I32(n)]);
        assert_eq!(m.epoch_calls, 1 + n as usize, "{n} iterations");
    }
    // A deadline in the future: no calls.
    m.store.epoch_deadline = 1;
    m.epoch_calls = 0;
    m.call("loop", &[Val::I32(100)]);
    assert_eq!(m.epoch_calls, 0);
}

#[test]
fn epoch_deadline_is_reread_after_the_slow_path() {
    let mut m = Instance::with(LOOP, epoch_only(), Vec::new());
    m.set_epoch(5);
    m.store.epoch_deadline = 5;
    // The default hook moves the deadline out of reach: one call only.
    m.call("loop", &[Val::I32(1000)]);
    assert_eq!(m.epoch_calls, 1);
    assert_eq!(m.store.epoch_deadline, u64::MAX);
}

/// Host function: advances the caller's epoch counter by one.
unsafe extern "C" fn tick(_ctx: *mut u8, caller: *mut u8, _v: *mut ValRaw, _len: usize) -> u32 {
    // SAFETY: the caller's vmctx is a harness instance's.
    let inst = unsafe { instance(caller) };
    inst.epoch.fetch_add(1, Ordering::Relaxed);
    0
}

#[test]
fn epoch_ticks_are_seen_at_loop_headers() {
    let mut m = Instance::with(
        r#"(module
          (import "h" "tick" (func $tick))
          (func (export "loop") (param i32)
            (loop $l
              call $tick
              local.get 0 i32.const 1 i32.sub local.tee 0
              br_if $l)))"#,
        epoch_only(),
        vec![ImportVal::Host(tick)],
    );
    // Each interrupt grants 10 more ticks.
    m.on_epoch = |inst| {
        inst.store.epoch_deadline = inst.epoch.load(Ordering::Relaxed) + 10;
        0
    };
    m.store.epoch_deadline = 0;
    // Header visit i (from 0) sees epoch i: calls at entry (epoch 0), then
    // at visits 10, 20, ..., 90.
    m.call("loop", &[Val::I32(100)]);
    assert_eq!(m.epoch.load(Ordering::Relaxed), 100);
    assert_eq!(m.epoch_calls, 10);
}

#[test]
fn epoch_checks_in_a_call_tree_without_loops() {
    let mut m = Instance::with(
        r#"(module
          (func $leaf)
          (func $mid call $leaf call $leaf)
          (func (export "root") call $mid call $mid call $leaf))"#,
        epoch_only(),
        Vec::new(),
    );
    m.store.epoch_deadline = 0;
    m.on_epoch = keep_deadline;
    m.call("root", &[]);
    // root 1 + mid 2 + leaf 5 function entries.
    assert_eq!(m.epoch_calls, 8);
}

#[test]
fn another_thread_interrupts_an_infinite_loop() {
    let mut m = Instance::with(
        r#"(module
          (global $stop (mut i32) (i32.const 0))
          (func (export "spin") (result i32) (local i32)
            (loop $l
              local.get 0 i32.const 1 i32.add local.set 0
              global.get $stop i32.eqz br_if $l)
            local.get 0))"#,
        epoch_only(),
        Vec::new(),
    );
    m.store.epoch_deadline = 1;
    // The interrupt sets the global the loop polls.
    m.on_epoch = |inst| {
        *inst.globals[0] = ValRaw::from_val(Val::I32(1));
        inst.store.epoch_deadline = u64::MAX;
        0
    };
    let epoch = m.epoch.clone();
    let ticker = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        epoch.fetch_add(1, Ordering::Relaxed);
    });
    let iterations = m.call1("spin", &[]).i32();
    ticker.join().unwrap();
    assert_eq!(m.epoch_calls, 1);
    assert!(iterations >= 1);

    // The other way to interrupt from another thread: lower this store's
    // deadline (atomically) below the epoch. The deadline is re-read at
    // every check too.
    *m.globals[0] = ValRaw::from_val(Val::I32(0));
    m.store.epoch_deadline = u64::MAX;
    let deadline = &raw mut m.store.epoch_deadline as usize;
    let interrupter = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        // SAFETY: the store context outlives the spinning call, which is
        // joined below; compiled code only reads the field meanwhile.
        let d = unsafe { AtomicU64::from_ptr(deadline as *mut u64) };
        d.store(0, Ordering::SeqCst);
    });
    m.call1("spin", &[]);
    interrupter.join().unwrap();
    assert_eq!(m.epoch_calls, 2);
}

fn compile(src: &str, tunables: Tunables) -> CompiledModule {
    Compiler::new(tunables)
        .unwrap()
        .compile(&Module::decode(&wat(src)).unwrap())
        .unwrap()
}

fn host_sites(m: &CompiledModule) -> usize {
    let (start, end) = m.code_range();
    (start..end)
        .filter(|&pc| m.lookup_trap(pc) == Some(TrapKind::Host))
        .count()
}

#[test]
fn no_checks_when_both_flags_are_off() {
    let src = r#"(module
      (func $leaf (param i32) (result i32) local.get 0)
      (func (export "loop") (param i32) (result i32)
        (loop $l
          local.get 0 call $leaf i32.const 1 i32.sub local.tee 0
          br_if $l)
        local.get 0))"#;
    // Epoch: entry + header of each function. Fuel: the same, plus an
    // overdraft check after each charged segment (before the call to $leaf,
    // before br_if, and before each return).
    assert_eq!(host_sites(&compile(src, neither())), 0);
    let epoch = host_sites(&compile(src, epoch_only()));
    let fuel = host_sites(&compile(src, fuel_only()));
    assert_eq!(epoch, 3);
    assert_eq!(fuel, 3 + 4);
    let both = Tunables {
        consume_fuel: true,
        ..epoch_only()
    };
    assert_eq!(host_sites(&compile(src, both)), epoch + fuel);

    let mut m = Instance::with(src, neither(), Vec::new());
    // Any check would fault on the null epoch pointer or call a builtin.
    m.store.epoch_ptr = std::ptr::null();
    m.store.epoch_deadline = 0;
    m.store.fuel_consumed = 0;
    assert_eq!(m.call1("loop", &[Val::I32(50)]), Val::I32(0));
    assert_eq!((m.epoch_calls, m.fuel_calls), (0, 0));
    assert_eq!(m.store.fuel_consumed, 0);
}

#[test]
fn default_tunables_have_no_interruption_checks() {
    let t = Tunables::default();
    assert!(!t.interrupt_poll);
    assert!(!t.epoch_interruption);
    assert!(!t.consume_fuel);
}

/// Runs `name(args)` and returns the fuel it consumed.
fn fuel_of(m: &mut Instance, name: &str, args: &[Val]) -> i64 {
    let before = m.store.fuel_consumed;
    m.call(name, args);
    assert_eq!(m.fuel_calls, 0, "ran out of fuel");
    m.store.fuel_consumed - before
}

#[test]
fn fuel_is_exact() {
    let mut m = Instance::with(
        r#"(module
          (func $add (param i32 i32) (result i32) local.get 0 local.get 1 i32.add)
          (func (export "call") (result i32) i32.const 1 i32.const 2 call $add)
          (func (export "sum") (param i32) (result i32) (local i32)
            (loop $l
              local.get 1 local.get 0 i32.add local.set 1
              local.get 0 i32.const 1 i32.sub local.tee 0
              br_if $l)
            local.get 1)
          (func (export "if") (param i32) (result i32)
            local.get 0
            if (result i32) i32.const 1 else i32.const 2 i32.const 3 i32.add end)
          (func (export "ret") (param i32) (result i32)
            local.get 0 if i32.const 7 return end i32.const 8)
          (func (export "free") (block nop i32.const 5 drop) nop)
          (func (export "table") (param i32) (result i32)
            (block (block (block
              local.get 0 br_table 0 1 2)
              i32.const 10 return)
              i32.const 20 return)
            i32.const 30)
          (func (export "unreached_code") (result i32)
            (block (br 0) i32.const 1 drop i32.const 2 drop) i32.const 3))"#,
        fuel_only(),
        Vec::new(),
    );
    m.store.fuel_consumed = -1_000_000;
    assert_eq!(fuel_of(&mut m, "call", &[]), 6);
    for n in [1, 2, 7, 100] {
        assert_eq!(fuel_of(&mut m, "sum", &[Val::I32(n)]), 9 * i64::from(n) + 1);
    }
    assert_eq!(fuel_of(&mut m, "if", &[Val::I32(1)]), 3);
    assert_eq!(fuel_of(&mut m, "if", &[Val::I32(0)]), 5);
    assert_eq!(fuel_of(&mut m, "ret", &[Val::I32(1)]), 4);
    assert_eq!(fuel_of(&mut m, "ret", &[Val::I32(0)]), 3);
    assert_eq!(fuel_of(&mut m, "free", &[]), 1);
    // local.get, br_table, then i32.const + return (or i32.const alone).
    assert_eq!(fuel_of(&mut m, "table", &[Val::I32(0)]), 4);
    assert_eq!(fuel_of(&mut m, "table", &[Val::I32(1)]), 4);
    assert_eq!(fuel_of(&mut m, "table", &[Val::I32(2)]), 3);
    assert_eq!(fuel_of(&mut m, "table", &[Val::I32(9)]), 3);
    // br, i32.const: the dead operators are not charged.
    assert_eq!(fuel_of(&mut m, "unreached_code", &[]), 2);
    // Deterministic: the same call costs the same every time.
    let costs: Vec<i64> = (0..5)
        .map(|_| fuel_of(&mut m, "sum", &[Val::I32(33)]))
        .collect();
    assert_eq!(costs, vec![9 * 33 + 1; 5]);
}

#[test]
fn fuel_cost_model_is_documented_function() {
    use weft_decoder::wasmparser::Operator as O;
    assert_eq!(fuel_cost(&O::Nop), 0);
    assert_eq!(fuel_cost(&O::Drop), 0);
    assert_eq!(fuel_cost(&O::End), 0);
    assert_eq!(fuel_cost(&O::Else), 0);
    assert_eq!(fuel_cost(&O::I64Mul), 1);
    assert_eq!(fuel_cost(&O::Return), 1);
}

#[test]
fn out_of_fuel_is_called_at_checks_and_may_refill() {
    let src = r#"(module
      (func (export "sum") (param i32) (result i32) (local i32)
        (loop $l
          local.get 1 local.get 0 i32.add local.set 1
          local.get 0 i32.const 1 i32.sub local.tee 0
          br_if $l)
        local.get 1))"#;
    let mut m = Instance::with(src, fuel_only(), Vec::new());
    // 5 fuel: the entry and header checks pass (-5); the first loop body
    // (cost 9) overdraws to 4, and the refill adds 1000.
    m.store.fuel_consumed = -5;
    assert_eq!(m.call1("sum", &[Val::I32(100)]), Val::I32(5050));
    assert_eq!(m.fuel_seen, vec![4]);
    assert_eq!(m.store.fuel_consumed, -5 + 901 - 1000);

    // No fuel at all: the entry check calls at once.
    m.fuel_seen.clear();
    m.store.fuel_consumed = 0;
    m.call("sum", &[Val::I32(1)]);
    assert_eq!(m.fuel_seen, vec![0]);
    assert_eq!(m.store.fuel_consumed, -1000 + 10);

    // Refill 1 fuel at a time: a check every header visit runs out again.
    let mut m = Instance::with(src, fuel_only(), Vec::new());
    m.on_out_of_fuel = |inst| {
        inst.store.fuel_consumed = -1;
        0
    };
    m.store.fuel_consumed = 0;
    m.call("sum", &[Val::I32(10)]);
    // The entry check (0 left), then every loop body (cost 9) overdraws to
    // 8; the final `local.get 1` brings the last refill to exactly 0, which
    // is not an overdraft.
    assert_eq!(m.fuel_calls, 11);
    assert_eq!(m.fuel_seen, [vec![0], vec![8; 10]].concat());
    assert_eq!(m.store.fuel_consumed, 0);
}

/// Host function: records the caller's fuel, and grants 50 more.
unsafe extern "C" fn fuel_probe(
    _ctx: *mut u8,
    caller: *mut u8,
    _v: *mut ValRaw,
    _len: usize,
) -> u32 {
    // SAFETY: the caller's vmctx is a harness instance's.
    let inst = unsafe { instance(caller) };
    inst.fuel_seen.push(inst.store.fuel_consumed);
    inst.store.fuel_consumed -= 50;
    0
}

#[test]
fn fuel_is_up_to_date_across_calls() {
    let mut m = Instance::with(
        r#"(module
          (import "h" "probe" (func $probe))
          (func $callee (result i32) call $probe i32.const 4)
          (func (export "f") (result i32)
            i32.const 1 drop nop call $probe
            call $callee
            i32.const 2 i32.add))"#,
        fuel_only(),
        vec![ImportVal::Host(fuel_probe)],
    );
    let start = -1_000;
    m.store.fuel_consumed = start;
    // i32.const, drop, nop, call: 2 before the first probe; call $callee
    // and the callee's call: 2 more (after the first probe's -50); then
    // i32.const, end of callee, i32.const, i32.add: 3.
    assert_eq!(m.call1("f", &[]), Val::I32(6));
    assert_eq!(m.fuel_seen, vec![start + 2, start + 2 - 50 + 2]);
    assert_eq!(m.store.fuel_consumed, start + 2 - 50 + 2 - 50 + 3);
    assert_eq!(m.fuel_calls, 0);
}

#[test]
fn interrupt_polls_are_interrupt_trap_sites_at_loop_headers_only() {
    let src = r#"(module
      (func $leaf (param i32) (result i32) local.get 0)
      (func (export "loop") (param i32) (result i32)
        (loop $l
          local.get 0 call $leaf i32.const 1 i32.sub local.tee 0
          br_if $l)
        local.get 0))"#;
    let sites = |t: Tunables| {
        let m = compile(src, t);
        let (start, end) = m.code_range();
        (start..end)
            .filter(|&pc| m.lookup_trap(pc) == Some(TrapKind::Interrupt))
            .count()
    };
    let poll = Tunables {
        interrupt_poll: true,
        ..neither()
    };
    // The loop header only: entries rely on the prologue's stack check.
    assert_eq!(sites(poll.clone()), 1);
    assert_eq!(sites(neither()), 0);
    // With the page readable, polls do nothing observable.
    let mut m = Instance::with(src, poll, Vec::new());
    assert_eq!(m.call1("loop", &[Val::I32(50)]), Val::I32(0));
}

#[test]
fn a_store_free_loop_keeps_its_own_poll() {
    // Nothing in this loop touches memory, so a plain load at the header
    // would be merged with the entry's poll and vanish; the poll must stay.
    let src = r#"(module (func (export "spin") (param i32)
      (loop $l (br_if $l (local.get 0)))))"#;
    let m = compile(
        src,
        Tunables {
            interrupt_poll: true,
            ..neither()
        },
    );
    let (start, end) = m.code_range();
    let polls = (start..end)
        .filter(|&pc| m.lookup_trap(pc) == Some(TrapKind::Interrupt))
        .count();
    assert_eq!(polls, 1, "the loop header keeps its poll");
}

#[test]
fn a_raised_stack_limit_stops_the_next_call_at_its_prologue() {
    // How the runtime interrupts function entries: `stack_limit =
    // usize::MAX / 2` makes every prologue's stack check trap (`usize::MAX`
    // would overflow `limit + frame size` and never trap).
    let src = r#"(module
      (func $inner (param i32) (result i32) (i32.add (local.get 0) (call $leaf)))
      (func $leaf (result i32) (i32.const 1))
      (func (export "outer") (param i32) (result i32) (call $inner (local.get 0))))"#;
    let poll = Tunables {
        interrupt_poll: true,
        ..neither()
    };
    let mut m = Instance::with(src, poll.clone(), Vec::new());
    assert_eq!(m.call1("outer", &[Val::I32(1)]), Val::I32(2));
    let mut m = Instance::with(src, poll, Vec::new());
    m.store.stack_limit = usize::MAX / 2;
    assert_eq!(
        m.trap_of("outer", &[Val::I32(1)]),
        Some(TrapKind::StackOverflow)
    );
}
