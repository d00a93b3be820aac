//! The columns, gates and lookup arguments shared by every AIVM circuit.
//!
//! One configuration serves every program: the program decides which rows use which gates
//! (fixed selectors), the weights live in fixed columns and the tables are fixed too, so the
//! verifying key commits to the whole model. Gate by gate:
//!
//! - `dot`: `acc[next] = acc + Σ w_i·lane_i` (weights `w_i` fixed), the dot-product chain of
//!   Linear, Affine, Add/Sub and sums; `bias`: `acc = c0` starts a chain.
//! - `rescale`: `acc + c0 = y·c1 + v`: division of an accumulator by `c1` (a power of two for a
//!   rescale, any positive constant for a mean) with rounding offset `c0`; `v` is the remainder,
//!   range-checked in the same row; `div_hi` checks `c1 - 1 - v` in the next row when `c1` is
//!   not a power of two.
//! - `rng`: `v + c2 = Σ limb_j·2^(b·j)` (weights fixed per row, `b` the circuit's limb width);
//!   every limb is looked up in the range table under its fixed tag (`tag` bits allowed; tag 0
//!   forces the limb to 0), so `v + c2 ∈ [0, 2^bits)`.
//!   `rng_cont` continues a value wider than 32 bits into the next row; `rng2` checks two values
//!   of up to 16 bits (the remainder `v` and the output `y + c2`) in one row.
//! - `mul`: `acc = lane0·lane1`.
//! - `pdot`: `acc[next] = acc + Σ w_i·lane_2i·lane_2i+1` (weights fixed, 0 on unused pairs), the
//!   product chain of MatMul of two activations; it starts with `bias` like `dot`.
//! - `cmp`: a sign bit `b = lane1` of `x - c` (`x = lane0`, `c = c0`): `b` is boolean and
//!   `v = b·(x - c) + (1 - b)·(c - x - 1)` is range-checked, so `b = 1` iff `x >= c` (zero has
//!   one sign). `max_c`/`min_c`/`leaky` then select `y`.
//! - `mchain`: the maximum of a group: every `y - x_i >= 0` and `Π (y - x_i) = 0`.
//! - `argmax`: a one-hot vector with prefix sums; ties go to the lowest index.
//! - `sdiv`: softmax's division `lane0·c1 = y·lane1 + v`, `0 <= v < lane1`.
//! - `lut`: `(ftag, lane0, y)` in the function table; `gather` computes the key `lane1·c0 + c1`.

use halo2_gadgets::poseidon::{Pow5Chip, Pow5Config, primitives::P128Pow5T3};
use halo2_proofs::pasta::Fp;
use halo2_proofs::plonk::{
    Advice, Column, ConstraintSystem, Constraints, Expression, Fixed, Instance, Selector,
    TableColumn, VirtualCells,
};
use halo2_proofs::poly::Rotation;

/// Lanes of the dot-product gate.
pub const LANES: usize = 8;
/// Range-check limbs per row.
pub const LIMBS: usize = 4;
/// Largest limb width. A circuit uses 8-bit limbs, or 7 or 6 bits when that lets a small
/// model fit a smaller domain (the range table has `2^(bits+1) - 1` rows).
pub const MAX_LIMB_BITS: u32 = 8;

#[derive(Clone, Debug)]
pub struct Config {
    pub lane: [Column<Advice>; LANES],
    pub acc: Column<Advice>,
    pub y: Column<Advice>,
    pub v: Column<Advice>,
    pub limb: [Column<Advice>; LIMBS],
    pub w: [Column<Fixed>; LANES],
    pub c: [Column<Fixed>; 3],
    pub tag: [Column<Fixed>; LIMBS],
    /// Per-row weights of the limbs (`2^(bits·j)`), and of the next row in a continued check.
    pub lw: [Column<Fixed>; LIMBS + 1],
    pub ftag: Column<Fixed>,
    pub instance: Column<Instance>,

    pub q_dot: Selector,
    pub q_bias: Selector,
    pub q_rescale: Selector,
    pub q_div_hi: Selector,
    pub q_rng: Selector,
    pub q_rng_cont: Selector,
    pub q_rng2: Selector,
    pub q_mul: Selector,
    pub q_pdot: Selector,
    pub q_cmp: Selector,
    pub q_max_c: Selector,
    pub q_min_c: Selector,
    pub q_leaky: Selector,
    pub q_mchain: Selector,
    pub q_argmax: Selector,
    pub q_argmax_start: Selector,
    pub q_argmax_end: Selector,
    pub q_sdiv: Selector,
    pub q_lut: Selector,
    pub q_gather: Selector,

    pub t_rtag: TableColumn,
    pub t_rval: TableColumn,
    pub t_ftag: TableColumn,
    pub t_fin: TableColumn,
    pub t_fout: TableColumn,

    pub poseidon: Pow5Config<Fp, 3, 2>,

    /// The custom gates, what each reads (see [`GateInfo`]).
    pub gate_info: Vec<GateInfo>,
    /// The lookup arguments in the order they were registered.
    pub lookup_names: Vec<&'static str>,
}

fn c(v: u64) -> Expression<Fp> {
    Expression::Constant(Fp::from(v))
}

impl Config {
    pub fn configure(meta: &mut ConstraintSystem<Fp>) -> Config {
        let lane = [(); LANES].map(|_| meta.advice_column());
        let acc = meta.advice_column();
        let y = meta.advice_column();
        let v = meta.advice_column();
        let limb = [(); LIMBS].map(|_| meta.advice_column());
        let w = [(); LANES].map(|_| meta.fixed_column());
        let cc = [(); 3].map(|_| meta.fixed_column());
        let tag = [(); LIMBS].map(|_| meta.fixed_column());
        let lw = [(); LIMBS + 1].map(|_| meta.fixed_column());
        let ftag = meta.fixed_column();
        let instance = meta.instance_column();
        for col in lane.iter().chain([&acc, &y, &v]) {
            meta.enable_equality(*col);
        }
        meta.enable_equality(instance);

        let mut cfg = Config {
            lane,
            acc,
            y,
            v,
            limb,
            w,
            c: cc,
            tag,
            lw,
            ftag,
            instance,
            q_dot: meta.selector(),
            q_bias: meta.selector(),
            q_rescale: meta.selector(),
            q_div_hi: meta.selector(),
            q_rng: meta.selector(),
            q_rng_cont: meta.selector(),
            q_rng2: meta.selector(),
            q_mul: meta.selector(),
            q_pdot: meta.selector(),
            q_cmp: meta.selector(),
            q_max_c: meta.selector(),
            q_min_c: meta.selector(),
            q_leaky: meta.selector(),
            q_mchain: meta.selector(),
            q_argmax: meta.selector(),
            q_argmax_start: meta.selector(),
            q_argmax_end: meta.selector(),
            q_sdiv: meta.selector(),
            q_lut: meta.complex_selector(),
            q_gather: meta.selector(),
            t_rtag: meta.lookup_table_column(),
            t_rval: meta.lookup_table_column(),
            t_ftag: meta.lookup_table_column(),
            t_fin: meta.lookup_table_column(),
            t_fout: meta.lookup_table_column(),
            poseidon: {
                // The Poseidon chip reuses lanes 0..4 and weight columns 0..6 in its own rows.
                meta.enable_constant(w[3]);
                Pow5Chip::configure::<P128Pow5T3>(
                    meta,
                    [lane[0], lane[1], lane[2]],
                    lane[3],
                    [w[0], w[1], w[2]],
                    [w[3], w[4], w[5]],
                )
            },
            gate_info: Vec::new(),
            lookup_names: Vec::new(),
        };
        cfg.gates(meta);
        cfg
    }

    /// Every gate and lookup, in a fixed order (the order is part of the verifying key).
    fn gates(&mut self, meta: &mut ConstraintSystem<Fp>) {
        let mut infos = Vec::new();
        self.arithmetic_gates(meta, &mut infos);
        self.selection_gates(meta, &mut infos);
        self.gate_info = infos;
        self.lookup_names = self.lookups(meta);
    }

    /// Dot products, rescaling divisions, range checks and products.
    fn arithmetic_gates(&self, meta: &mut ConstraintSystem<Fp>, infos: &mut Vec<GateInfo>) {
        let cfg = self;
        let mut g = |name: &'static str, sel: Selector, f: &dyn Fn(&mut Q<'_, '_>) -> Vec<Poly>| {
            gate(meta, infos, name, sel, f)
        };
        g("dot", cfg.q_dot, &|q| {
            let acc = q.a(cfg.acc);
            let sum = (0..LANES)
                .map(|i| q.f(cfg.w[i]) * q.a(cfg.lane[i]))
                .fold(acc, |a, t| a + t);
            vec![("acc_next", q.next(cfg.acc) - sum)]
        });
        g("bias", cfg.q_bias, &|q| {
            vec![("acc_start", q.a(cfg.acc) - q.f(cfg.c[0]))]
        });
        g("rescale", cfg.q_rescale, &|q| {
            let (acc, y, v) = (q.a(cfg.acc), q.a(cfg.y), q.a(cfg.v));
            vec![("division", acc + q.f(cfg.c[0]) - y * q.f(cfg.c[1]) - v)]
        });
        g("div_hi", cfg.q_div_hi, &|q| {
            let (v, vn, c1) = (q.a(cfg.v), q.next(cfg.v), q.f(cfg.c[1]));
            vec![("remainder_below_divisor", vn - (c1 - c(1) - v))]
        });
        let limbs = |q: &mut Q<'_, '_>, from: usize, to: usize| {
            (from..to)
                .map(|j| q.a(cfg.limb[j]) * q.f(cfg.lw[j]))
                .reduce(|a, b| a + b)
                .expect("at least one limb")
        };
        g("rng", cfg.q_rng, &|q| {
            let l = limbs(q, 0, LIMBS);
            vec![("limbs", q.a(cfg.v) + q.f(cfg.c[2]) - l)]
        });
        g("rng_cont", cfg.q_rng_cont, &|q| {
            let l = limbs(q, 0, LIMBS);
            let rest = q.next(cfg.v) * q.f(cfg.lw[LIMBS]);
            vec![("limbs_and_rest", q.a(cfg.v) + q.f(cfg.c[2]) - l - rest)]
        });
        g("rng2", cfg.q_rng2, &|q| {
            let lo = limbs(q, 0, 2);
            let hi = limbs(q, 2, 4);
            vec![
                ("remainder_limbs", q.a(cfg.v) - lo),
                ("output_limbs", q.a(cfg.y) + q.f(cfg.c[2]) - hi),
            ]
        });
        g("mul", cfg.q_mul, &|q| {
            let p = q.a(cfg.lane[0]) * q.a(cfg.lane[1]);
            vec![("product", q.a(cfg.acc) - p)]
        });
        g("pdot", cfg.q_pdot, &|q| {
            let acc = q.a(cfg.acc);
            let sum = (0..LANES / 2)
                .map(|i| q.f(cfg.w[i]) * q.a(cfg.lane[2 * i]) * q.a(cfg.lane[2 * i + 1]))
                .fold(acc, |a, t| a + t);
            vec![("acc_next", q.next(cfg.acc) - sum)]
        });
    }

    /// Comparisons and selections: clamps, leaky ReLU, max chains, argmax, softmax's
    /// division, gather keys.
    fn selection_gates(&self, meta: &mut ConstraintSystem<Fp>, infos: &mut Vec<GateInfo>) {
        let cfg = self;
        let mut g = |name: &'static str, sel: Selector, f: &dyn Fn(&mut Q<'_, '_>) -> Vec<Poly>| {
            gate(meta, infos, name, sel, f)
        };
        g("cmp", cfg.q_cmp, &|q| {
            let (x, b, v, k) = (
                q.a(cfg.lane[0]),
                q.a(cfg.lane[1]),
                q.a(cfg.v),
                q.f(cfg.c[0]),
            );
            let sign = b.clone() * (x.clone() - k.clone()) + (c(1) - b.clone()) * (k - x - c(1));
            vec![("bit", b.clone() * (c(1) - b)), ("sign", v - sign)]
        });
        g("max_c", cfg.q_max_c, &|q| {
            let (x, b, y, k) = (
                q.a(cfg.lane[0]),
                q.a(cfg.lane[1]),
                q.a(cfg.y),
                q.f(cfg.c[0]),
            );
            vec![("select", y - (b.clone() * x + (c(1) - b) * k))]
        });
        g("min_c", cfg.q_min_c, &|q| {
            let (x, b, y, k) = (
                q.a(cfg.lane[0]),
                q.a(cfg.lane[1]),
                q.a(cfg.y),
                q.f(cfg.c[0]),
            );
            vec![("select", y - (b.clone() * k + (c(1) - b) * x))]
        });
        g("leaky", cfg.q_leaky, &|q| {
            let (x, b, z, y) = (
                q.a(cfg.lane[0]),
                q.a(cfg.lane[1]),
                q.a(cfg.lane[2]),
                q.a(cfg.y),
            );
            vec![("select", y - (b.clone() * x + (c(1) - b) * z))]
        });
        g("mchain", cfg.q_mchain, &|q| {
            let (x, y, acc, v) = (q.a(cfg.lane[0]), q.a(cfg.y), q.a(cfg.acc), q.a(cfg.v));
            let (yn, accn) = (q.next(cfg.y), q.next(cfg.acc));
            let d = y.clone() - x;
            vec![
                ("product", accn - acc * d.clone()),
                ("same_max", yn - y),
                ("difference", v - d),
            ]
        });
        g("argmax", cfg.q_argmax, &|q| {
            let (x, o, pre, sum, idx) = (
                q.a(cfg.lane[0]),
                q.a(cfg.lane[1]),
                q.a(cfg.lane[2]),
                q.a(cfg.lane[3]),
                q.a(cfg.lane[4]),
            );
            let (pre_n, sum_n, idx_n) = (
                q.next(cfg.lane[2]),
                q.next(cfg.lane[3]),
                q.next(cfg.lane[4]),
            );
            let (y, yn, v, i) = (q.a(cfg.y), q.next(cfg.y), q.a(cfg.v), q.f(cfg.c[0]));
            vec![
                ("one_hot_bit", o.clone() * (c(1) - o.clone())),
                ("prefix", pre_n - pre.clone() - o.clone()),
                ("sum", sum_n - sum - o.clone() * x.clone()),
                ("index", idx_n - idx - i * o.clone()),
                ("same_max", yn - y.clone()),
                // e = m - x - 1 + (prefix including this element): strict before the one.
                ("order", v - (y - x - c(1) + pre + o)),
            ]
        });
        g("argmax_start", cfg.q_argmax_start, &|q| {
            vec![
                ("prefix_zero", q.a(cfg.lane[2])),
                ("sum_zero", q.a(cfg.lane[3])),
                ("index_zero", q.a(cfg.lane[4])),
            ]
        });
        g("argmax_end", cfg.q_argmax_end, &|q| {
            let (p, s, y) = (q.a(cfg.lane[2]), q.a(cfg.lane[3]), q.a(cfg.y));
            vec![("exactly_one", p - c(1)), ("max_taken", s - y)]
        });
        g("sdiv", cfg.q_sdiv, &|q| {
            let (e, s, y, v) = (q.a(cfg.lane[0]), q.a(cfg.lane[1]), q.a(cfg.y), q.a(cfg.v));
            let (vn, c1) = (q.next(cfg.v), q.f(cfg.c[1]));
            vec![
                ("division", e * c1 - y * s.clone() - v.clone()),
                ("remainder_below_sum", vn - (s - c(1) - v)),
            ]
        });
        g("gather", cfg.q_gather, &|q| {
            let (key, id) = (q.a(cfg.lane[0]), q.a(cfg.lane[1]));
            vec![("key", key - (id * q.f(cfg.c[0]) + q.f(cfg.c[1])))]
        });
    }

    /// The range lookups (one per limb column) and the function-table lookup.
    fn lookups(&self, meta: &mut ConstraintSystem<Fp>) -> Vec<&'static str> {
        let cfg = self;
        let mut lookups = Vec::new();
        for (j, name) in RANGE_LOOKUPS.into_iter().enumerate() {
            if !lookup_off(name) {
                lookups.push(name);
                meta.lookup(|m| {
                    let t = m.query_fixed(cfg.tag[j]);
                    let l = m.query_advice(cfg.limb[j], Rotation::cur());
                    vec![(t, cfg.t_rtag), (l, cfg.t_rval)]
                });
            }
        }
        if !lookup_off(FUNCTION_LOOKUP) {
            lookups.push(FUNCTION_LOOKUP);
            meta.lookup(|m| {
                let q = m.query_selector(cfg.q_lut);
                let t = m.query_fixed(cfg.ftag);
                let x = m.query_advice(cfg.lane[0], Rotation::cur());
                let y = m.query_advice(cfg.y, Rotation::cur());
                vec![
                    (q.clone() * t, cfg.t_ftag),
                    (q.clone() * x, cfg.t_fin),
                    (q * y, cfg.t_fout),
                ]
            });
        }
        lookups
    }
}

/// The range lookups, one per limb column: `(tag, limb)` in the range table.
pub const RANGE_LOOKUPS: [&str; LIMBS] =
    ["range_limb0", "range_limb1", "range_limb2", "range_limb3"];
/// The function-table lookup: `(ftag, lane0, y)` where `q_lut` is enabled.
pub const FUNCTION_LOOKUP: &str = "function";

/// What one custom gate reads, for the layout analyses of the soundness suite.
#[derive(Clone, Debug)]
pub struct GateInfo {
    pub name: &'static str,
    pub selector: Selector,
    pub polys: Vec<&'static str>,
    /// The advice cells its polynomials query: column and rotation.
    pub cells: Vec<(Column<Advice>, i32)>,
}

type Poly = (&'static str, Expression<Fp>);

/// Queries of a gate under construction, recorded.
struct Q<'m, 'v> {
    m: &'m mut VirtualCells<'v, Fp>,
    cells: Vec<(Column<Advice>, i32)>,
}

impl Q<'_, '_> {
    fn at(&mut self, col: Column<Advice>, rot: i32) -> Expression<Fp> {
        self.cells.push((col, rot));
        self.m.query_advice(col, Rotation(rot))
    }

    fn a(&mut self, col: Column<Advice>) -> Expression<Fp> {
        self.at(col, 0)
    }

    fn next(&mut self, col: Column<Advice>) -> Expression<Fp> {
        self.at(col, 1)
    }

    fn f(&mut self, col: Column<Fixed>) -> Expression<Fp> {
        self.m.query_fixed(col)
    }
}

/// Creates a gate of named polynomials under one selector and records what it reads.
fn gate(
    meta: &mut ConstraintSystem<Fp>,
    infos: &mut Vec<GateInfo>,
    name: &'static str,
    sel: Selector,
    f: &dyn Fn(&mut Q<'_, '_>) -> Vec<Poly>,
) {
    let mut info = None;
    meta.create_gate(name, |m| {
        let s = m.query_selector(sel);
        let mut q = Q {
            m,
            cells: Vec::new(),
        };
        let polys = f(&mut q);
        info = Some(GateInfo {
            name,
            selector: sel,
            polys: polys.iter().map(|p| p.0).collect(),
            cells: q.cells,
        });
        let polys: Vec<Poly> = polys
            .into_iter()
            .map(|(p, e)| (p, if gate_off(name, p) { c(0) } else { e }))
            .collect();
        Constraints::with_selector(s, polys)
    });
    infos.push(info.expect("the gate was built"));
}

#[cfg(test)]
fn gate_off(gate: &'static str, poly: &'static str) -> bool {
    super::testing::gate_disabled(gate, poly)
}

#[cfg(not(test))]
fn gate_off(_: &'static str, _: &'static str) -> bool {
    false
}

#[cfg(test)]
fn lookup_off(name: &'static str) -> bool {
    super::testing::lookup_disabled(name)
}

#[cfg(not(test))]
fn lookup_off(_: &'static str) -> bool {
    false
}
