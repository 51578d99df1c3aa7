//! Property tests: random operation sequences against simple models.
//!
//! * memories (linear, moving or not; shared): grow / write / read / atomics
//!   compared with a `Vec<u8>`;
//! * the pool: allocate / release compared with a slot counter.
//!
//! Case counts are modest by default (`PROPTEST_CASES` overrides).

use proptest::prelude::*;
use weft_memory::{
    AccessError, GrowError, LinearMemory, MemoryConfig, MemoryPool, PoolConfig, RmwOp, SharedMemory,
};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48);
    ProptestConfig::with_cases(cases)
}

#[derive(Debug, Clone)]
enum Op {
    Grow(u64),
    Write(u64, Vec<u8>),
    Read(u64, usize),
    Rmw(u8, u64, RmwOp, u64),
    Cmpxchg(u8, u64, u64, u64),
    Load(u8, u64),
}

fn rmw_op() -> impl Strategy<Value = RmwOp> {
    prop_oneof![
        Just(RmwOp::Add),
        Just(RmwOp::Sub),
        Just(RmwOp::And),
        Just(RmwOp::Or),
        Just(RmwOp::Xor),
        Just(RmwOp::Xchg),
    ]
}

/// Offsets cluster near interesting places: the start, and around
/// `limit` (a little past the maximum size).
fn offset(limit: u64) -> impl Strategy<Value = u64> {
    prop_oneof![0..64u64, 0..limit + 16, Just(u64::MAX - 3),]
}

fn width() -> impl Strategy<Value = u8> {
    prop_oneof![Just(1u8), Just(2), Just(4), Just(8)]
}

fn ops(limit: u64, max_pages: u64) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        2 => (0..max_pages + 2).prop_map(Op::Grow),
        3 => (offset(limit), prop::collection::vec(any::<u8>(), 0..40))
            .prop_map(|(o, d)| Op::Write(o, d)),
        2 => (offset(limit), 0..40usize).prop_map(|(o, n)| Op::Read(o, n)),
        3 => (width(), offset(limit), rmw_op(), any::<u64>())
            .prop_map(|(w, o, op, v)| Op::Rmw(w, o, op, v)),
        1 => (width(), offset(limit), any::<u64>(), any::<u64>())
            .prop_map(|(w, o, e, r)| Op::Cmpxchg(w, o, e, r)),
        1 => (width(), offset(limit)).prop_map(|(w, o)| Op::Load(w, o)),
    ];
    prop::collection::vec(op, 1..40)
}

/// The operations both memory kinds offer, so one driver checks both.
trait Mem {
    fn grow(&mut self, delta: u64) -> Result<u64, GrowError>;
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), AccessError>;
    fn write(&mut self, off: u64, buf: &[u8]) -> Result<(), AccessError>;
    fn rmw(&mut self, w: u8, off: u64, op: RmwOp, v: u64) -> Result<u64, AccessError>;
    fn cmpxchg(&mut self, w: u8, off: u64, e: u64, r: u64) -> Result<u64, AccessError>;
    fn load(&self, w: u8, off: u64) -> Result<u64, AccessError>;
    fn byte_len(&self) -> usize;
    fn contents(&self) -> Vec<u8>;
}

macro_rules! by_width {
    ($w:expr, $t:ident => $e:expr) => {
        match $w {
            1 => {
                type $t = u8;
                $e
            }
            2 => {
                type $t = u16;
                $e
            }
            4 => {
                type $t = u32;
                $e
            }
            _ => {
                type $t = u64;
                $e
            }
        }
    };
}

// `by_width!` converts every width with `u64::from`, a no-op for `u64`.
#[allow(clippy::useless_conversion)]
impl Mem for LinearMemory {
    fn grow(&mut self, delta: u64) -> Result<u64, GrowError> {
        LinearMemory::grow(self, delta)
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        LinearMemory::read(self, off, buf)
    }
    fn write(&mut self, off: u64, buf: &[u8]) -> Result<(), AccessError> {
        LinearMemory::write(self, off, buf)
    }
    fn rmw(&mut self, w: u8, off: u64, op: RmwOp, v: u64) -> Result<u64, AccessError> {
        by_width!(w, T => self.atomic_rmw::<T>(off, op, v as T).map(u64::from))
    }
    fn cmpxchg(&mut self, w: u8, off: u64, e: u64, r: u64) -> Result<u64, AccessError> {
        by_width!(w, T => self.atomic_cmpxchg::<T>(off, e as T, r as T).map(u64::from))
    }
    fn load(&self, w: u8, off: u64) -> Result<u64, AccessError> {
        by_width!(w, T => self.atomic_load::<T>(off).map(u64::from))
    }
    fn byte_len(&self) -> usize {
        LinearMemory::byte_len(self)
    }
    fn contents(&self) -> Vec<u8> {
        self.data().to_vec()
    }
}

#[allow(clippy::useless_conversion)]
impl Mem for SharedMemory {
    fn grow(&mut self, delta: u64) -> Result<u64, GrowError> {
        SharedMemory::grow(self, delta)
    }
    fn read(&self, off: u64, buf: &mut [u8]) -> Result<(), AccessError> {
        SharedMemory::read(self, off, buf)
    }
    fn write(&mut self, off: u64, buf: &[u8]) -> Result<(), AccessError> {
        SharedMemory::write(self, off, buf)
    }
    fn rmw(&mut self, w: u8, off: u64, op: RmwOp, v: u64) -> Result<u64, AccessError> {
        by_width!(w, T => self.atomic_rmw::<T>(off, op, v as T).map(u64::from))
    }
    fn cmpxchg(&mut self, w: u8, off: u64, e: u64, r: u64) -> Result<u64, AccessError> {
        by_width!(w, T => self.atomic_cmpxchg::<T>(off, e as T, r as T).map(u64::from))
    }
    fn load(&self, w: u8, off: u64) -> Result<u64, AccessError> {
        by_width!(w, T => self.atomic_load::<T>(off).map(u64::from))
    }
    fn byte_len(&self) -> usize {
        SharedMemory::byte_len(self)
    }
    fn contents(&self) -> Vec<u8> {
        let mut v = vec![0; self.byte_len()];
        SharedMemory::read(self, 0, &mut v).unwrap();
        v
    }
}

/// The model: plain bytes plus the memory's limits.
struct Model {
    bytes: Vec<u8>,
    page: u64,
    max_pages: u64,
    /// `Some(r)`: growth past `r` bytes fails (the memory cannot move).
    fixed_reservation: Option<usize>,
}

impl Model {
    fn range(&self, off: u64, len: usize) -> Result<std::ops::Range<usize>, AccessError> {
        let end = off.checked_add(len as u64);
        match end {
            Some(end) if end <= self.bytes.len() as u64 => Ok(off as usize..end as usize),
            _ => Err(AccessError::OutOfBounds {
                offset: off,
                len: len as u64,
                memory_len: self.bytes.len(),
            }),
        }
    }

    fn atomic_range(&self, w: u8, off: u64) -> Result<std::ops::Range<usize>, AccessError> {
        if !off.is_multiple_of(u64::from(w)) {
            return Err(AccessError::Misaligned {
                offset: off,
                alignment: w.into(),
            });
        }
        self.range(off, w.into())
    }

    fn get(&self, r: &std::ops::Range<usize>) -> u64 {
        let mut b = [0u8; 8];
        b[..r.len()].copy_from_slice(&self.bytes[r.clone()]);
        u64::from_le_bytes(b)
    }

    fn set(&mut self, r: &std::ops::Range<usize>, v: u64) {
        let n = r.len();
        self.bytes[r.clone()].copy_from_slice(&v.to_le_bytes()[..n]);
    }
}

fn mask(w: u8) -> u64 {
    if w == 8 {
        u64::MAX
    } else {
        (1u64 << (8 * w)) - 1
    }
}

fn run(mem: &mut dyn Mem, model: &mut Model, ops: &[Op]) -> Result<(), TestCaseError> {
    for op in ops {
        match op {
            Op::Grow(d) => {
                let pages = model.bytes.len() as u64 / model.page;
                let new_pages = pages + d;
                let new_len = (new_pages * model.page) as usize;
                let got = mem.grow(*d);
                let fits = new_pages <= model.max_pages
                    && model
                        .fixed_reservation
                        .is_none_or(|r| new_len <= r || *d == 0);
                if fits {
                    prop_assert_eq!(got, Ok(pages));
                    model.bytes.resize(new_len, 0);
                } else {
                    prop_assert!(got.is_err(), "grow {} from {} should fail", d, pages);
                }
            }
            Op::Write(off, data) => {
                let want = model.range(*off, data.len());
                let got = mem.write(*off, data);
                prop_assert_eq!(got, want.clone().map(|_| ()));
                if let Ok(r) = want {
                    model.bytes[r].copy_from_slice(data);
                }
            }
            Op::Read(off, n) => {
                let mut buf = vec![0xAA; *n];
                let got = mem.read(*off, &mut buf);
                let want = model.range(*off, *n);
                prop_assert_eq!(got, want.clone().map(|_| ()));
                if let Ok(r) = want {
                    prop_assert_eq!(&buf[..], &model.bytes[r]);
                }
            }
            Op::Rmw(w, off, op, v) => {
                let got = mem.rmw(*w, *off, *op, *v);
                let want = model.atomic_range(*w, *off);
                match want {
                    Err(e) => prop_assert_eq!(got, Err(e)),
                    Ok(r) => {
                        let old = model.get(&r);
                        let v = v & mask(*w);
                        let new = match op {
                            RmwOp::Add => old.wrapping_add(v),
                            RmwOp::Sub => old.wrapping_sub(v),
                            RmwOp::And => old & v,
                            RmwOp::Or => old | v,
                            RmwOp::Xor => old ^ v,
                            RmwOp::Xchg => v,
                        } & mask(*w);
                        prop_assert_eq!(got, Ok(old));
                        model.set(&r, new);
                    }
                }
            }
            Op::Cmpxchg(w, off, e, r) => {
                let got = mem.cmpxchg(*w, *off, *e, *r);
                match model.atomic_range(*w, *off) {
                    Err(err) => prop_assert_eq!(got, Err(err)),
                    Ok(range) => {
                        let old = model.get(&range);
                        prop_assert_eq!(got, Ok(old));
                        if old == e & mask(*w) {
                            model.set(&range, r & mask(*w));
                        }
                    }
                }
            }
            Op::Load(w, off) => {
                let got = mem.load(*w, *off);
                let want = model.atomic_range(*w, *off).map(|r| model.get(&r));
                prop_assert_eq!(got, want);
            }
        }
        prop_assert_eq!(mem.byte_len(), model.bytes.len());
    }
    prop_assert_eq!(mem.contents(), model.bytes.clone());
    Ok(())
}

/// `(page_size_log2, initial_pages, max_pages)` with at most 256 KiB total.
fn shape() -> impl Strategy<Value = (u8, u64, u64)> {
    prop_oneof![Just(0u8), Just(4), Just(12), Just(16)].prop_flat_map(|log2| {
        let cap = (256 * 1024u64) >> log2;
        let cap = cap.min(300);
        (Just(log2), 0..4u64, 1..cap).prop_map(|(l, i, m)| (l, i.min(m), m))
    })
}

/// A shape and an operation sequence whose offsets suit it.
fn shaped_ops() -> impl Strategy<Value = ((u8, u64, u64), Vec<Op>)> {
    shape().prop_flat_map(|s @ (log2, _, max)| (Just(s), ops(max << log2, max)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn linear_memory_matches_vec_model(
        ((log2, initial, max), ops) in shaped_ops(),
        may_move in any::<bool>(),
        reservation_pages in 0..6u64,
    ) {
        let page = 1u64 << log2;
        let reservation = (reservation_pages * page) as usize;
        let cfg = MemoryConfig::new(initial)
            .with_maximum(Some(max))
            .with_page_size_log2(log2)
            .with_reservation(reservation.max((initial * page) as usize))
            .with_guards(0, 4096)
            .with_may_move(may_move)
            .with_reservation_for_growth(8192);
        let mut mem = LinearMemory::new(&cfg).unwrap();
        let fixed = (!may_move).then(|| mem.reservation_bytes());
        let mut model = Model {
            bytes: vec![0; (initial * page) as usize],
            page,
            max_pages: max,
            fixed_reservation: fixed,
        };
        run(&mut mem, &mut model, &ops)?;
        // the definition header agrees with the memory
        // SAFETY: `mem` is alive.
        let def = unsafe { &*mem.definition() };
        prop_assert_eq!(def.base(), mem.base_ptr());
        prop_assert_eq!(def.current_length(), mem.byte_len());
    }

    #[test]
    fn shared_memory_matches_vec_model(
        ((log2, initial, max), ops) in shaped_ops(),
    ) {
        let page = 1u64 << log2;
        let cfg = MemoryConfig::new(initial)
            .with_maximum(Some(max))
            .with_page_size_log2(log2)
            .with_reservation(0)
            .with_guards(4096, 4096);
        let mut mem = SharedMemory::new(&cfg).unwrap();
        let base = mem.base_ptr();
        let mut model = Model {
            bytes: vec![0; (initial * page) as usize],
            page,
            max_pages: max,
            fixed_reservation: None,
        };
        run(&mut mem, &mut model, &ops)?;
        prop_assert_eq!(mem.base_ptr(), base, "shared memory never moves");
    }

    #[test]
    fn pool_accounting_matches_counter(
        slots in 1..5usize,
        steps in prop::collection::vec((any::<bool>(), 0..3u64, any::<prop::sample::Index>()), 1..60),
    ) {
        let page = 65536u64;
        let pool = MemoryPool::new(&PoolConfig::new(slots, 2 * page as usize).with_guards(0, 4096)).unwrap();
        let mut live = Vec::new();
        for (alloc, initial, pick) in steps {
            if alloc {
                match pool.allocate(initial, Some(4)) {
                    Ok(mut m) => {
                        prop_assert!(live.len() < slots);
                        prop_assert!(initial <= 2);
                        prop_assert!(m.data().iter().all(|&b| b == 0), "slot not zeroed");
                        if m.byte_len() > 0 {
                            m.data_mut().fill(0x5A);
                        }
                        // growing past the slot fails and changes nothing
                        let pages = m.size_pages();
                        prop_assert!(m.grow(3 - pages).is_err());
                        prop_assert_eq!(m.size_pages(), pages);
                        live.push(m);
                    }
                    Err(weft_memory::Error::PoolExhausted { capacity }) => {
                        prop_assert_eq!(capacity, slots);
                        prop_assert_eq!(live.len(), slots);
                    }
                    Err(weft_memory::Error::InitialExceedsReservation { .. }) => {
                        prop_assert!(initial > 2);
                    }
                    Err(e) => prop_assert!(false, "unexpected error {e}"),
                }
            } else if !live.is_empty() {
                live.swap_remove(pick.index(live.len()));
            }
            prop_assert_eq!(pool.in_use(), live.len());
            prop_assert_eq!(pool.free_slots(), slots - live.len());
            prop_assert_eq!(pool.quarantined(), 0);
        }
        drop(live);
        prop_assert_eq!(pool.free_slots(), slots);
    }
}
