//! Test-only hooks of the circuit (compiled under `cfg(test)` only): a witness forged cell by
//! cell, one constraint switched off, and a trace of what a layout assigned, enabled and copied.
//!
//! A forgery overrides assigned advice cells by `(column, row)`. The gadgets compute every later
//! value from the cells they assigned, so a forged value flows on to the cells that depend on it,
//! as a malicious prover's would: only the constraints that tie the forged cell to its inputs
//! can catch it. The hooks live in a thread-local, because halo2 calls `configure` and
//! `synthesize` itself (on the calling thread).

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use ff::PrimeField as _;
use halo2_proofs::pasta::Fp;
use halo2_proofs::plonk::{Advice, Column, Selector};

use super::ctx::CopyFamily;

/// One constraint of the circuit: a gate polynomial, a lookup argument or a family of copies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Target {
    Gate(&'static str, &'static str),
    Lookup(&'static str),
    Copy(CopyFamily),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Gate(g, p) => write!(f, "gate `{g}`, polynomial `{p}`"),
            Target::Lookup(l) => write!(f, "lookup `{l}`"),
            Target::Copy(c) => write!(f, "copies {c:?}"),
        }
    }
}

/// A cell of the main region: advice column index and row.
pub type Pos = (Column<Advice>, usize);

/// What one layout did.
#[derive(Clone, Debug, Default)]
pub struct Trace {
    /// Every assigned advice cell and its value.
    pub values: HashMap<Pos, Fp>,
    /// The scope that took each row.
    pub owner: HashMap<usize, u32>,
    /// Scopes in the order they were opened (scope id = index + 1): gadget name, anchor row.
    pub scopes: Vec<(&'static str, usize)>,
    /// Enabled selectors: selector, row, the scope that enabled it.
    pub enabled: Vec<(Selector, usize, u32)>,
    /// Copy constraints between two cells.
    pub equal: Vec<(Pos, Pos)>,
}

impl Trace {
    /// Anchor rows of every instance of a gadget, in layout order.
    pub fn rows_of(&self, name: &str) -> Vec<usize> {
        self.scopes
            .iter()
            .filter(|(n, _)| *n == name)
            .map(|&(_, r)| r)
            .collect()
    }

    /// The value of an assigned cell as an integer (panics when it is not a small one).
    pub fn int(&self, col: Column<Advice>, row: usize) -> i128 {
        let v = self
            .values
            .get(&(col, row))
            .unwrap_or_else(|| panic!("no cell at {col:?} row {row}"));
        to_int(*v).expect("a small integer")
    }
}

/// A field element that is a small signed integer, as that integer.
pub fn to_int(v: Fp) -> Option<i128> {
    let small = |x: Fp| {
        let r = x.to_repr();
        r[16..].iter().all(|&b| b == 0).then(|| {
            i128::try_from(u128::from_le_bytes(r[..16].try_into().expect("16 bytes"))).ok()
        })?
    };
    small(v).or_else(|| small(-v).map(|x| -x))
}

#[derive(Default)]
struct State {
    disabled: Option<Target>,
    overrides: Rc<HashMap<Pos, Fp>>,
    trace: Option<Rc<RefCell<Trace>>>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::default();
}

/// Runs `f` with one constraint disabled, cells overridden, and (with `trace`) a trace of the
/// last layout `f` made.
pub fn with<R>(
    disabled: Option<Target>,
    overrides: HashMap<Pos, Fp>,
    trace: bool,
    f: impl FnOnce() -> R,
) -> (R, Option<Trace>) {
    let t = trace.then(|| Rc::new(RefCell::new(Trace::default())));
    STATE.with(|s| {
        *s.borrow_mut() = State {
            disabled,
            overrides: Rc::new(overrides),
            trace: t.clone(),
        }
    });
    let r = f();
    STATE.with(|s| *s.borrow_mut() = State::default());
    (r, t.map(|t| t.take()))
}

fn disabled() -> Option<Target> {
    STATE.with(|s| s.borrow().disabled)
}

/// The forged value of a cell assigned outside the layout context, if any.
pub fn override_at(col: Column<Advice>, row: usize) -> Option<Fp> {
    STATE.with(|s| s.borrow().overrides.get(&(col, row)).copied())
}

pub fn copy_disabled(f: CopyFamily) -> bool {
    disabled() == Some(Target::Copy(f))
}

pub fn gate_disabled(gate: &'static str, poly: &'static str) -> bool {
    disabled() == Some(Target::Gate(gate, poly))
}

pub fn lookup_disabled(name: &'static str) -> bool {
    disabled() == Some(Target::Lookup(name))
}

/// A layout context's view of the hooks.
pub struct CtxHooks {
    overrides: Rc<HashMap<Pos, Fp>>,
    trace: Option<Rc<RefCell<Trace>>>,
    scope: u32,
}

impl CtxHooks {
    /// The thread's hooks; a new layout starts a new trace.
    pub fn from_thread() -> CtxHooks {
        STATE.with(|s| {
            let s = s.borrow();
            if let Some(t) = &s.trace {
                *t.borrow_mut() = Trace::default();
            }
            CtxHooks {
                overrides: s.overrides.clone(),
                trace: s.trace.clone(),
                scope: 0,
            }
        })
    }

    fn record(&self, f: impl FnOnce(&mut Trace)) {
        if let Some(t) = &self.trace {
            f(&mut t.borrow_mut());
        }
    }

    pub fn took_row(&self, row: usize) {
        let s = self.scope;
        self.record(|t| {
            t.owner.insert(row, s);
        });
    }

    pub fn enter(&mut self, name: &'static str, anchor: usize) -> u32 {
        let prev = self.scope;
        let mut id = prev;
        self.record(|t| {
            t.scopes.push((name, anchor));
            id = t.scopes.len() as u32;
        });
        self.scope = id;
        prev
    }

    pub fn leave(&mut self, prev: u32) {
        self.scope = prev;
    }

    /// The value a cell gets: the forged one where there is one.
    pub fn assign(&self, col: Column<Advice>, row: usize, v: Option<Fp>) -> Option<Fp> {
        let v = self.overrides.get(&(col, row)).copied().or(v);
        if let Some(v) = v {
            self.record(|t| {
                t.values.insert((col, row), v);
            });
        }
        v
    }

    /// A forged cell's value as an integer, so that later cells are computed from it.
    pub fn forged_int(&self, col: Column<Advice>, row: usize) -> Option<i128> {
        self.overrides.get(&(col, row)).and_then(|v| to_int(*v))
    }

    pub fn enabled(&self, s: Selector, row: usize) {
        let scope = self.scope;
        self.record(|t| t.enabled.push((s, row, scope)));
    }

    pub fn equal(&self, a: (Column<Advice>, usize), b: (Column<Advice>, usize)) {
        self.record(|t| t.equal.push(((a.0, a.1), (b.0, b.1))));
    }
}
