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
    TableColumn,
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

        let cfg = Config {
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
        };
        cfg.gates(meta);
        cfg
    }

    fn gates(&self, meta: &mut ConstraintSystem<Fp>) {
        let cfg = self.clone();
        meta.create_gate("dot", |m| {
            let q = m.query_selector(cfg.q_dot);
            let acc = m.query_advice(cfg.acc, Rotation::cur());
            let next = m.query_advice(cfg.acc, Rotation::next());
            let sum = (0..LANES)
                .map(|i| m.query_fixed(cfg.w[i]) * m.query_advice(cfg.lane[i], Rotation::cur()))
                .fold(acc, |a, t| a + t);
            Constraints::with_selector(q, [next - sum])
        });
        meta.create_gate("bias", |m| {
            let q = m.query_selector(cfg.q_bias);
            let acc = m.query_advice(cfg.acc, Rotation::cur());
            Constraints::with_selector(q, [acc - m.query_fixed(cfg.c[0])])
        });
        meta.create_gate("rescale", |m| {
            let q = m.query_selector(cfg.q_rescale);
            let acc = m.query_advice(cfg.acc, Rotation::cur());
            let y = m.query_advice(cfg.y, Rotation::cur());
            let v = m.query_advice(cfg.v, Rotation::cur());
            let (c0, c1) = (m.query_fixed(cfg.c[0]), m.query_fixed(cfg.c[1]));
            Constraints::with_selector(q, [acc + c0 - y * c1 - v])
        });
        meta.create_gate("div_hi", |m| {
            let q = m.query_selector(cfg.q_div_hi);
            let v = m.query_advice(cfg.v, Rotation::cur());
            let vn = m.query_advice(cfg.v, Rotation::next());
            let c1 = m.query_fixed(cfg.c[1]);
            Constraints::with_selector(q, [vn - (c1 - c(1) - v)])
        });
        let limbs = |m: &mut halo2_proofs::plonk::VirtualCells<'_, Fp>, from: usize, to: usize| {
            (from..to)
                .map(|j| m.query_advice(cfg.limb[j], Rotation::cur()) * m.query_fixed(cfg.lw[j]))
                .reduce(|a, b| a + b)
                .expect("at least one limb")
        };
        meta.create_gate("rng", |m| {
            let q = m.query_selector(cfg.q_rng);
            let v = m.query_advice(cfg.v, Rotation::cur());
            let c2 = m.query_fixed(cfg.c[2]);
            let l = limbs(m, 0, LIMBS);
            Constraints::with_selector(q, [v + c2 - l])
        });
        meta.create_gate("rng_cont", |m| {
            let q = m.query_selector(cfg.q_rng_cont);
            let v = m.query_advice(cfg.v, Rotation::cur());
            let vn = m.query_advice(cfg.v, Rotation::next());
            let c2 = m.query_fixed(cfg.c[2]);
            let l = limbs(m, 0, LIMBS);
            let span = m.query_fixed(cfg.lw[LIMBS]);
            Constraints::with_selector(q, [v + c2 - l - vn * span])
        });
        meta.create_gate("rng2", |m| {
            let q = m.query_selector(cfg.q_rng2);
            let v = m.query_advice(cfg.v, Rotation::cur());
            let y = m.query_advice(cfg.y, Rotation::cur());
            let c2 = m.query_fixed(cfg.c[2]);
            let lo = limbs(m, 0, 2);
            let hi = limbs(m, 2, 4);
            Constraints::with_selector(q, [v - lo, y + c2 - hi])
        });
        for j in 0..LIMBS {
            meta.lookup(|m| {
                let t = m.query_fixed(cfg.tag[j]);
                let l = m.query_advice(cfg.limb[j], Rotation::cur());
                vec![(t, cfg.t_rtag), (l, cfg.t_rval)]
            });
        }
        meta.create_gate("mul", |m| {
            let q = m.query_selector(cfg.q_mul);
            let acc = m.query_advice(cfg.acc, Rotation::cur());
            let a = m.query_advice(cfg.lane[0], Rotation::cur());
            let b = m.query_advice(cfg.lane[1], Rotation::cur());
            Constraints::with_selector(q, [acc - a * b])
        });
        meta.create_gate("cmp", |m| {
            let q = m.query_selector(cfg.q_cmp);
            let x = m.query_advice(cfg.lane[0], Rotation::cur());
            let b = m.query_advice(cfg.lane[1], Rotation::cur());
            let v = m.query_advice(cfg.v, Rotation::cur());
            let k = m.query_fixed(cfg.c[0]);
            let one = c(1);
            let sign = b.clone() * (x.clone() - k.clone())
                + (one.clone() - b.clone()) * (k - x - one.clone());
            Constraints::with_selector(q, [b.clone() * (one - b), v - sign])
        });
        meta.create_gate("max_c", |m| {
            let q = m.query_selector(cfg.q_max_c);
            let x = m.query_advice(cfg.lane[0], Rotation::cur());
            let b = m.query_advice(cfg.lane[1], Rotation::cur());
            let y = m.query_advice(cfg.y, Rotation::cur());
            let k = m.query_fixed(cfg.c[0]);
            Constraints::with_selector(q, [y - (b.clone() * x + (c(1) - b) * k)])
        });
        meta.create_gate("min_c", |m| {
            let q = m.query_selector(cfg.q_min_c);
            let x = m.query_advice(cfg.lane[0], Rotation::cur());
            let b = m.query_advice(cfg.lane[1], Rotation::cur());
            let y = m.query_advice(cfg.y, Rotation::cur());
            let k = m.query_fixed(cfg.c[0]);
            Constraints::with_selector(q, [y - (b.clone() * k + (c(1) - b) * x)])
        });
        meta.create_gate("leaky", |m| {
            let q = m.query_selector(cfg.q_leaky);
            let x = m.query_advice(cfg.lane[0], Rotation::cur());
            let b = m.query_advice(cfg.lane[1], Rotation::cur());
            let z = m.query_advice(cfg.lane[2], Rotation::cur());
            let y = m.query_advice(cfg.y, Rotation::cur());
            Constraints::with_selector(q, [y - (b.clone() * x + (c(1) - b) * z)])
        });
        meta.create_gate("mchain", |m| {
            let q = m.query_selector(cfg.q_mchain);
            let x = m.query_advice(cfg.lane[0], Rotation::cur());
            let y = m.query_advice(cfg.y, Rotation::cur());
            let yn = m.query_advice(cfg.y, Rotation::next());
            let acc = m.query_advice(cfg.acc, Rotation::cur());
            let accn = m.query_advice(cfg.acc, Rotation::next());
            let v = m.query_advice(cfg.v, Rotation::cur());
            let d = y.clone() - x;
            Constraints::with_selector(q, [accn - acc * d.clone(), yn - y, v - d])
        });
        meta.create_gate("argmax", |m| {
            let q = m.query_selector(cfg.q_argmax);
            let cur = |m: &mut halo2_proofs::plonk::VirtualCells<'_, Fp>, i: usize| {
                m.query_advice(cfg.lane[i], Rotation::cur())
            };
            let nxt = |m: &mut halo2_proofs::plonk::VirtualCells<'_, Fp>, i: usize| {
                m.query_advice(cfg.lane[i], Rotation::next())
            };
            let (x, o, pre, sum, idx) = (cur(m, 0), cur(m, 1), cur(m, 2), cur(m, 3), cur(m, 4));
            let (pre_n, sum_n, idx_n) = (nxt(m, 2), nxt(m, 3), nxt(m, 4));
            let y = m.query_advice(cfg.y, Rotation::cur());
            let yn = m.query_advice(cfg.y, Rotation::next());
            let v = m.query_advice(cfg.v, Rotation::cur());
            let i = m.query_fixed(cfg.c[0]);
            Constraints::with_selector(
                q,
                [
                    o.clone() * (c(1) - o.clone()),
                    pre_n - pre.clone() - o.clone(),
                    sum_n - sum - o.clone() * x.clone(),
                    idx_n - idx - i * o.clone(),
                    yn - y.clone(),
                    // e = m - x - 1 + (prefix including this element): strict before the one.
                    v - (y - x - c(1) + pre + o),
                ],
            )
        });
        meta.create_gate("argmax_start", |m| {
            let q = m.query_selector(cfg.q_argmax_start);
            let p = m.query_advice(cfg.lane[2], Rotation::cur());
            let s = m.query_advice(cfg.lane[3], Rotation::cur());
            let t = m.query_advice(cfg.lane[4], Rotation::cur());
            Constraints::with_selector(q, [p, s, t])
        });
        meta.create_gate("argmax_end", |m| {
            let q = m.query_selector(cfg.q_argmax_end);
            let p = m.query_advice(cfg.lane[2], Rotation::cur());
            let s = m.query_advice(cfg.lane[3], Rotation::cur());
            let y = m.query_advice(cfg.y, Rotation::cur());
            Constraints::with_selector(q, [p - c(1), s - y])
        });
        meta.create_gate("sdiv", |m| {
            let q = m.query_selector(cfg.q_sdiv);
            let e = m.query_advice(cfg.lane[0], Rotation::cur());
            let s = m.query_advice(cfg.lane[1], Rotation::cur());
            let y = m.query_advice(cfg.y, Rotation::cur());
            let v = m.query_advice(cfg.v, Rotation::cur());
            let vn = m.query_advice(cfg.v, Rotation::next());
            let c1 = m.query_fixed(cfg.c[1]);
            Constraints::with_selector(q, [e * c1 - y * s.clone() - v.clone(), vn - (s - c(1) - v)])
        });
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
        meta.create_gate("gather", |m| {
            let q = m.query_selector(cfg.q_gather);
            let key = m.query_advice(cfg.lane[0], Rotation::cur());
            let id = m.query_advice(cfg.lane[1], Rotation::cur());
            let (c0, c1) = (m.query_fixed(cfg.c[0]), m.query_fixed(cfg.c[1]));
            Constraints::with_selector(q, [key - (id * c0 + c1)])
        });
    }
}
