//! The layout context: places rows in the circuit's one main region and offers the gadgets the
//! op layouts are written with. Without a region it only counts rows, which is how the circuit's
//! size (and so `k`) is known before any key is generated.
//!
//! Values are carried as exact integers (`i128`) next to their cells; `None` when the circuit is
//! laid out without a witness (key generation). Every relation a gadget relies on is a gate or a
//! lookup in [`super::config`]; computing a value here is never a substitute for a constraint.
//!
//! One rule keeps gadgets from reading each other's rows: a gadget whose gates read the next row
//! (`mchain`, `argmax`, `sdiv`, `div_hi`) lays out its rows back to back and range-checks a
//! value in its own row only when the check fits that row; a wider check (which continues into
//! following rows) is made on a copy after the gadget's last row ([`Deferred`]).

use ff::PrimeField as _;
use halo2_proofs::circuit::{AssignedCell, Region, Value};
use halo2_proofs::pasta::Fp;
use halo2_proofs::plonk::{Advice, Column, Error, Fixed, Selector};

use super::config::{Config, LANES, LIMBS};

/// An exact integer as a field element.
pub fn fp(v: i128) -> Fp {
    if v >= 0 {
        Fp::from_u128(v as u128)
    } else {
        -Fp::from_u128(v.unsigned_abs())
    }
}

/// A cell of the circuit and, with a witness, its integer value.
#[derive(Clone, Debug)]
pub struct Cell {
    pub cell: Option<AssignedCell<Fp, Fp>>,
    pub v: Option<i128>,
    /// Where the cell is: its advice column and row in the main region.
    pub at: (Column<Advice>, usize),
}

/// The families of copy constraints. Every copy a gadget makes belongs to one, so that the
/// soundness suite can disable a family and show the forgery it would let through.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CopyFamily {
    /// An operand of a dot-product row (Linear, Affine, Add/Sub, sums, means).
    DotLane,
    /// An input element into the packing rows of hashed inputs.
    PackLane,
    /// A value into the row that range-checks it.
    RangeCopy,
    /// An operand of the product gate.
    MulOperand,
    /// The compared value of a comparison row (ReLU, Clip, LeakyReLU's sign).
    CmpOperand,
    /// LeakyReLU's negative branch into its selection row.
    SelectOperand,
    /// A group member into the maximum chain.
    MaxOperand,
    /// A group member into the argmax chain.
    ArgmaxOperand,
    /// The input of a function-table lookup.
    LutOperand,
    /// An embedding index into its gather row.
    GatherIndex,
    /// A softmax numerator (`exp` value) into its division row.
    SoftmaxNumerator,
    /// A softmax denominator (the sum) into its division row.
    SoftmaxSum,
    /// A rescale's output into the row that range-checks it.
    RescaleOutput,
    /// Public inputs to the instance.
    PublicInput,
    /// Outputs to the instance.
    Output,
    /// The task nonce from the instance.
    Nonce,
    /// The input commitment to the instance.
    Commitment,
    /// A packed input element into the Poseidon hash.
    HashInput,
}

impl CopyFamily {
    pub const ALL: [CopyFamily; 18] = [
        CopyFamily::DotLane,
        CopyFamily::PackLane,
        CopyFamily::RangeCopy,
        CopyFamily::MulOperand,
        CopyFamily::CmpOperand,
        CopyFamily::SelectOperand,
        CopyFamily::MaxOperand,
        CopyFamily::ArgmaxOperand,
        CopyFamily::LutOperand,
        CopyFamily::GatherIndex,
        CopyFamily::SoftmaxNumerator,
        CopyFamily::SoftmaxSum,
        CopyFamily::RescaleOutput,
        CopyFamily::PublicInput,
        CopyFamily::Output,
        CopyFamily::Nonce,
        CopyFamily::Commitment,
        CopyFamily::HashInput,
    ];
}

/// Range checks postponed until a gadget's contiguous rows are laid out: `(cell, offset, bits)`.
#[derive(Default)]
pub struct Deferred(Vec<(Cell, i128, u32)>);

pub struct Ctx<'r, 'a> {
    pub cfg: &'r Config,
    /// Fixed cells assigned so far: a gadget that reused another's fixed cell would silently
    /// change its constraint, so that is a layout bug caught here.
    fixed_used: std::collections::HashSet<(Column<Fixed>, usize)>,
    region: Option<&'r mut Region<'a, Fp>>,
    pub row: usize,
    /// Width of a range-check limb.
    pub lb: u32,
    #[cfg(test)]
    pub(crate) test: super::testing::CtxHooks,
}

impl<'r, 'a> Ctx<'r, 'a> {
    pub fn new(cfg: &'r Config, region: Option<&'r mut Region<'a, Fp>>, lb: u32) -> Self {
        Ctx {
            cfg,
            fixed_used: Default::default(),
            region,
            row: 0,
            lb,
            #[cfg(test)]
            test: super::testing::CtxHooks::from_thread(),
        }
    }

    /// Rows one range-check row covers: values of up to this many bits need no continuation.
    pub fn span(&self) -> u32 {
        self.lb * LIMBS as u32
    }

    /// Takes the next free row.
    pub fn next_row(&mut self) -> usize {
        self.row += 1;
        #[cfg(test)]
        self.test.took_row(self.row - 1);
        self.row - 1
    }

    /// Opens a gadget's scope, anchored at its main row (a no-op outside tests, where it
    /// records which gadget owns which rows); pass the result to [`Ctx::leave`].
    #[inline]
    pub fn enter(&mut self, _name: &'static str, _anchor: usize) -> u32 {
        #[cfg(test)]
        return self.test.enter(_name, _anchor);
        #[cfg(not(test))]
        0
    }

    #[inline]
    pub fn leave(&mut self, _prev: u32) {
        #[cfg(test)]
        self.test.leave(_prev);
    }

    pub fn advice_f(
        &mut self,
        col: Column<Advice>,
        row: usize,
        v: Option<Fp>,
    ) -> Result<Option<AssignedCell<Fp, Fp>>, Error> {
        #[cfg(test)]
        let v = self.test.assign(col, row, v);
        match self.region.as_mut() {
            None => Ok(None),
            Some(r) => {
                let val = v.map_or(Value::unknown(), Value::known);
                r.assign_advice(|| "a", col, row, || val).map(Some)
            }
        }
    }

    pub fn advice(
        &mut self,
        col: Column<Advice>,
        row: usize,
        v: Option<i128>,
    ) -> Result<Cell, Error> {
        #[cfg(test)]
        let v = self.test.forged_int(col, row).or(v);
        let cell = self.advice_f(col, row, v.map(fp))?;
        Ok(Cell {
            cell,
            v,
            at: (col, row),
        })
    }

    pub fn fixed(&mut self, col: Column<Fixed>, row: usize, v: Fp) -> Result<(), Error> {
        if !self.fixed_used.insert((col, row)) {
            panic!("layout bug: fixed column {col:?} assigned twice at row {row}");
        }
        if let Some(r) = self.region.as_mut() {
            r.assign_fixed(|| "f", col, row, || Value::known(v))?;
        }
        Ok(())
    }

    pub fn enable(&mut self, s: Selector, row: usize) -> Result<(), Error> {
        #[cfg(test)]
        self.test.enabled(s, row);
        if let Some(r) = self.region.as_mut() {
            s.enable(r, row)?;
        }
        Ok(())
    }

    /// Constrains two cells equal (a copy constraint of `family`).
    pub fn equal(&mut self, family: CopyFamily, a: &Cell, b: &Cell) -> Result<(), Error> {
        #[cfg(test)]
        {
            self.test.equal(a.at, b.at);
            if super::testing::copy_disabled(family) {
                return Ok(());
            }
        }
        let _ = family;
        if let (Some(r), Some(x), Some(y)) = (self.region.as_mut(), &a.cell, &b.cell) {
            r.constrain_equal(x.cell(), y.cell())?;
        }
        Ok(())
    }

    /// Unused lanes of a dot row: weight 0 and input 0 (every cell a gate reads is assigned).
    fn zero_lanes(&mut self, row: usize, from: usize) -> Result<(), Error> {
        for i in from..LANES {
            self.fixed(self.cfg.w[i], row, Fp::zero())?;
            self.advice(self.cfg.lane[i], row, Some(0))?;
        }
        Ok(())
    }

    /// Places a copy of `src` in `col` at `row`, constrained equal to it.
    pub fn copy(
        &mut self,
        family: CopyFamily,
        src: &Cell,
        col: Column<Advice>,
        row: usize,
    ) -> Result<Cell, Error> {
        let c = self.advice(col, row, src.v)?;
        self.equal(family, src, &c)?;
        Ok(c)
    }

    // ---- range checks -------------------------------------------------------------------

    /// Fills limbs `from..from+n` of `row` with the little-endian limbs of `u`, their weights, and
    /// tags that allow exactly `bits` bits (higher limbs get tag 0, which forces them to 0).
    fn limbs(
        &mut self,
        row: usize,
        u: Option<u128>,
        bits: u32,
        from: usize,
        n: usize,
    ) -> Result<(), Error> {
        let lb = self.lb;
        for j in 0..n {
            let lo = lb * j as u32;
            let tag = bits.saturating_sub(lo).min(lb);
            self.fixed(self.cfg.tag[from + j], row, Fp::from(tag as u64))?;
            self.fixed(self.cfg.lw[from + j], row, Fp::from(1u64 << lo))?;
            let limb = u.map(|u| ((u >> lo) & ((1u128 << lb) - 1)) as i128);
            self.advice(self.cfg.limb[from + j], row, limb)?;
        }
        Ok(())
    }

    /// Range-checks the `v` cell of `row` (already assigned, value `val`): `val + offset` must lie
    /// in `[0, 2^bits)`. Values wider than [`Ctx::span`] bits continue into the rows that follow,
    /// so a gadget whose gates read `row + 1` must not call this for a wide value (see
    /// [`Ctx::range_here_or_defer`]).
    pub fn range_v(
        &mut self,
        row: usize,
        val: Option<i128>,
        offset: i128,
        bits: u32,
    ) -> Result<(), Error> {
        let scope = self.enter("range", row);
        // A negative value (only a malicious witness has one) wraps to a huge u128; its limbs
        // then cannot match the field value and the gate fails, as it must.
        let u = val.map(|v| (v + offset) as u128);
        self.fixed(self.cfg.c[2], row, fp(offset))?;
        let span = self.span();
        if bits <= span {
            self.enable(self.cfg.q_rng, row)?;
            self.limbs(row, u, bits, 0, LIMBS)?;
        } else {
            self.enable(self.cfg.q_rng_cont, row)?;
            self.fixed(self.cfg.lw[LIMBS], row, fp(1i128 << span))?;
            self.limbs(row, u, span, 0, LIMBS)?;
            let hi_row = self.next_row();
            let hi = u.map(|u| (u >> span) as i128);
            self.advice(self.cfg.v, hi_row, hi)?;
            self.range_v(hi_row, hi, 0, bits - span)?;
        }
        self.leave(scope);
        Ok(())
    }

    /// Range-checks `cell`, which sits in the `v` column of `row`, in that row when the check
    /// fits it; a wider check is queued in `later` for [`Ctx::flush`], so that the rows after
    /// `row` stay the calling gadget's own.
    pub fn range_here_or_defer(
        &mut self,
        row: usize,
        cell: &Cell,
        offset: i128,
        bits: u32,
        later: &mut Deferred,
    ) -> Result<(), Error> {
        debug_assert_eq!(cell.at, (self.cfg.v, row));
        if bits <= self.span() {
            self.range_v(row, cell.v, offset, bits)
        } else {
            later.0.push((cell.clone(), offset, bits));
            Ok(())
        }
    }

    /// Makes the queued range checks, each on a copy in a row of its own.
    pub fn flush(&mut self, later: Deferred) -> Result<(), Error> {
        for (cell, offset, bits) in later.0 {
            self.range_copy(&cell, offset, bits)?;
        }
        Ok(())
    }

    /// Range-checks a copy of `x` in a new row: `x + offset` in `[0, 2^bits)`. Returns the copy.
    pub fn range_copy(&mut self, x: &Cell, offset: i128, bits: u32) -> Result<Cell, Error> {
        let row = self.next_row();
        let c = self.copy(CopyFamily::RangeCopy, x, self.cfg.v, row)?;
        self.range_v(row, c.v, offset, bits)?;
        Ok(c)
    }

    /// Range-checks a cell as a signed `bits`-bit integer in a new row.
    pub fn range_signed(&mut self, x: &Cell, bits: u32) -> Result<(), Error> {
        self.range_copy(x, 1i128 << (bits - 1), bits).map(|_| ())
    }

    /// Assigns a fresh value in the `v` column of a new row and range-checks it as a signed
    /// `bits`-bit integer (program inputs enter the circuit this way).
    pub fn new_signed(&mut self, val: Option<i128>, bits: u32) -> Result<Cell, Error> {
        let row = self.next_row();
        let c = self.advice(self.cfg.v, row, val)?;
        self.range_v(row, c.v, 1i128 << (bits - 1), bits)?;
        Ok(c)
    }

    // ---- dot products and rescaling -----------------------------------------------------

    /// A chain of accumulator rows under `gate`, started at `bias` by the bias gate: each
    /// chunk of `per_row` terms fills one row (`fill` places it and returns what it adds), and
    /// the final accumulator lands in the row after the last. Returns that row (free for a
    /// gadget that consumes the accumulator) and the accumulator cell.
    fn chain<T>(
        &mut self,
        gate: Selector,
        bias: i128,
        terms: &[T],
        per_row: usize,
        mut fill: impl FnMut(&mut Self, usize, &[T]) -> Result<Option<i128>, Error>,
    ) -> Result<(usize, Cell), Error> {
        let cfg = self.cfg;
        let first = self.row;
        // At least one chain row, so that the bias (c0 of the first row) never shares a row with
        // the consumer of the final accumulator.
        let chunks: Vec<&[T]> = if terms.is_empty() {
            vec![terms]
        } else {
            terms.chunks(per_row).collect()
        };
        let mut acc = Some(bias);
        for chunk in chunks {
            let row = self.next_row();
            acc = self.advice(cfg.acc, row, acc)?.v;
            self.enable(gate, row)?;
            let add = fill(self, row, chunk)?;
            acc = acc.zip(add).map(|(a, d)| a + d);
        }
        let last = self.next_row();
        let cell = self.advice(cfg.acc, last, acc)?;
        self.enable(cfg.q_bias, first)?;
        self.fixed(cfg.c[0], first, fp(bias))?;
        Ok((last, cell))
    }

    /// `bias + Σ w·x` over `terms`, LANES terms per row. Returns the row holding the final
    /// accumulator (free for a gadget that consumes it) and the accumulator cell.
    pub fn dot(&mut self, bias: i128, terms: &[(i128, &Cell)]) -> Result<(usize, Cell), Error> {
        let scope = self.enter("dot", self.row);
        let cfg = self.cfg;
        let out = self.chain(cfg.q_dot, bias, terms, LANES, |ctx, row, chunk| {
            let mut sum = Some(0);
            for (i, (w, x)) in chunk.iter().enumerate() {
                let lane = ctx.copy(CopyFamily::DotLane, x, cfg.lane[i], row)?;
                ctx.fixed(cfg.w[i], row, fp(*w))?;
                sum = sum.zip(lane.v).map(|(s, xv)| s + w * xv);
            }
            ctx.zero_lanes(row, chunk.len())?;
            Ok(sum)
        });
        self.leave(scope);
        out
    }

    /// `Σ a·b` over `pairs`, `LANES / 2` products per row (the `pdot` gate, weight 1 on every
    /// used pair, 0 on the rest), the chain starting at 0. Returns the row holding the final
    /// accumulator and its cell, as [`Ctx::dot`].
    pub fn pdot(&mut self, pairs: &[(&Cell, &Cell)]) -> Result<(usize, Cell), Error> {
        let scope = self.enter("pdot", self.row);
        let cfg = self.cfg;
        let out = self.chain(cfg.q_pdot, 0, pairs, LANES / 2, |ctx, row, chunk| {
            let mut sum = Some(0);
            for i in 0..LANES / 2 {
                let (a, b, w) = match chunk.get(i) {
                    Some((a, b)) => (
                        ctx.copy(CopyFamily::MulOperand, a, cfg.lane[2 * i], row)?,
                        ctx.copy(CopyFamily::MulOperand, b, cfg.lane[2 * i + 1], row)?,
                        1,
                    ),
                    None => (
                        ctx.advice(cfg.lane[2 * i], row, Some(0))?,
                        ctx.advice(cfg.lane[2 * i + 1], row, Some(0))?,
                        0,
                    ),
                };
                ctx.fixed(cfg.w[i], row, fp(w))?;
                sum = sum.zip(a.v).zip(b.v).map(|((s, x), y)| s + w * x * y);
            }
            Ok(sum)
        });
        self.leave(scope);
        out
    }

    /// On `row`, whose `acc` holds `acc`: `y = floor((acc + half) / d)` with remainder `v`
    /// range-checked to `[0, d)`, and `y` range-checked as a signed `out_bits`-bit integer.
    /// `d = 2^shift` with `half = 2^(shift-1)` is the AIVM rescale; other `d` divide by a
    /// constant (means).
    pub fn divide_at(
        &mut self,
        row: usize,
        acc: Option<i128>,
        d: i128,
        half: i128,
        out_bits: u32,
    ) -> Result<Cell, Error> {
        let scope = self.enter("rescale", row);
        let cfg = self.cfg;
        let pow2 = d > 0 && (d & (d - 1)) == 0;
        let rbits = if pow2 {
            d.trailing_zeros()
        } else {
            128 - (d - 1).leading_zeros()
        };
        self.enable(cfg.q_rescale, row)?;
        self.fixed(cfg.c[0], row, fp(half))?;
        self.fixed(cfg.c[1], row, fp(d))?;
        let y = self.advice(cfg.y, row, acc.map(|a| (a + half).div_euclid(d)))?;
        let r = self.advice(cfg.v, row, acc.map(|a| (a + half).rem_euclid(d)))?;
        let together = rbits <= 2 * self.lb && out_bits <= 2 * self.lb;
        let mut later = Deferred::default();
        if together {
            // Remainder and output checked together in this row.
            self.enable(cfg.q_rng2, row)?;
            self.fixed(cfg.c[2], row, fp(1i128 << (out_bits - 1)))?;
            let yu = y.v.map(|q| (q + (1i128 << (out_bits - 1))) as u128);
            self.limbs(row, r.v.map(|r| r as u128), rbits, 0, 2)?;
            self.limbs(row, yu, out_bits, 2, 2)?;
        } else if pow2 {
            // No gate here reads the next row: a wide remainder continues right below.
            self.range_v(row, r.v, 0, rbits)?;
        } else {
            self.range_here_or_defer(row, &r, 0, rbits, &mut later)?;
        }
        if !pow2 {
            // 0 <= d - 1 - r as well, in the row right after.
            self.enable(cfg.q_div_hi, row)?;
            let hrow = self.next_row();
            let h = self.advice(cfg.v, hrow, r.v.map(|r| d - 1 - r))?;
            self.range_here_or_defer(hrow, &h, 0, rbits, &mut later)?;
        }
        self.flush(later)?;
        if !together {
            // The output in its own row: a copy of the y cell against its limbs.
            let qrow = self.next_row();
            let c = self.copy(CopyFamily::RescaleOutput, &y, cfg.v, qrow)?;
            self.range_v(qrow, c.v, 1i128 << (out_bits - 1), out_bits)?;
        }
        self.leave(scope);
        Ok(y)
    }

    /// Rescale by `2^shift` with round-half-up.
    pub fn rescale_at(
        &mut self,
        row: usize,
        acc: Option<i128>,
        shift: u32,
        out_bits: u32,
    ) -> Result<Cell, Error> {
        let half = if shift == 0 { 0 } else { 1i128 << (shift - 1) };
        self.divide_at(row, acc, 1i128 << shift, half, out_bits)
    }

    /// `rescale(bias + Σ w·x, shift)` as a signed `out_bits`-bit value.
    pub fn affine(
        &mut self,
        bias: i128,
        terms: &[(i128, &Cell)],
        shift: u32,
        out_bits: u32,
    ) -> Result<Cell, Error> {
        let (row, acc) = self.dot(bias, terms)?;
        self.rescale_at(row, acc.v, shift, out_bits)
    }

    /// `rescale(a·b, shift)`.
    pub fn mul(&mut self, a: &Cell, b: &Cell, shift: u32, out_bits: u32) -> Result<Cell, Error> {
        let scope = self.enter("mul", self.row);
        let cfg = self.cfg;
        let row = self.next_row();
        let a = self.copy(CopyFamily::MulOperand, a, cfg.lane[0], row)?;
        let b = self.copy(CopyFamily::MulOperand, b, cfg.lane[1], row)?;
        let p = self.advice(cfg.acc, row, a.v.zip(b.v).map(|(x, y)| x * y))?;
        self.enable(cfg.q_mul, row)?;
        let y = self.rescale_at(row, p.v, shift, out_bits);
        self.leave(scope);
        y
    }

    // ---- comparisons --------------------------------------------------------------------

    /// One comparison row: `b = [x >= k]`, range of the sign decomposition `bits`. Returns the
    /// row, the copy of `x` and `b`.
    fn cmp_row(&mut self, x: &Cell, k: i128, bits: u32) -> Result<(usize, Cell, Cell), Error> {
        let cfg = self.cfg;
        let row = self.next_row();
        let x = self.copy(CopyFamily::CmpOperand, x, cfg.lane[0], row)?;
        let b = self.advice(cfg.lane[1], row, x.v.map(|xv| (xv >= k) as i128))?;
        self.fixed(cfg.c[0], row, fp(k))?;
        self.enable(cfg.q_cmp, row)?;
        let v =
            x.v.zip(b.v)
                .map(|(xv, b)| if b == 1 { xv - k } else { k - xv - 1 });
        let v = self.advice(cfg.v, row, v)?;
        // No comparison gate reads the next row: a wide check may continue below.
        self.range_v(row, v.v, 0, bits)?;
        Ok((row, x, b))
    }

    /// `max(x, k)` (`min = false`) or `min(x, k)` (`min = true`); `bits` bounds `|x - k|`.
    pub fn cmp_const(&mut self, x: &Cell, k: i128, min: bool, bits: u32) -> Result<Cell, Error> {
        let scope = self.enter(if min { "min_c" } else { "max_c" }, self.row);
        let (row, x, b) = self.cmp_row(x, k, bits)?;
        let y = x.v.zip(b.v).map(|(xv, b)| match (min, b == 1) {
            (false, true) | (true, false) => xv,
            _ => k,
        });
        let sel = if min {
            self.cfg.q_min_c
        } else {
            self.cfg.q_max_c
        };
        self.enable(sel, row)?;
        let y = self.advice(self.cfg.y, row, y);
        self.leave(scope);
        y
    }

    /// `x` when `x >= 0`, else `z`.
    pub fn select_nonneg(&mut self, x: &Cell, z: &Cell, bits: u32) -> Result<Cell, Error> {
        let scope = self.enter("leaky", self.row);
        let (row, x, b) = self.cmp_row(x, 0, bits)?;
        let z = self.copy(CopyFamily::SelectOperand, z, self.cfg.lane[2], row)?;
        self.enable(self.cfg.q_leaky, row)?;
        let y =
            x.v.zip(z.v)
                .zip(b.v)
                .map(|((xv, zv), b)| if b == 1 { xv } else { zv });
        let y = self.advice(self.cfg.y, row, y);
        self.leave(scope);
        y
    }

    /// The maximum of a group; `bits` bounds `max - x_i`.
    pub fn max_of(&mut self, xs: &[&Cell], bits: u32) -> Result<Cell, Error> {
        let scope = self.enter("mchain", self.row);
        let cfg = self.cfg;
        let m = xs
            .iter()
            .map(|c| c.v)
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max());
        let first = self.row;
        let mut later = Deferred::default();
        let mut prod = m.map(|_| Fp::one());
        let mut y = m;
        for x in xs {
            let row = self.next_row();
            let x = self.copy(CopyFamily::MaxOperand, x, cfg.lane[0], row)?;
            y = self.advice(cfg.y, row, y)?.v;
            self.advice_f(cfg.acc, row, prod)?;
            let d = self.advice(cfg.v, row, y.zip(x.v).map(|(m, xv)| m - xv))?;
            self.range_here_or_defer(row, &d, 0, bits, &mut later)?;
            self.enable(cfg.q_mchain, row)?;
            prod = prod.zip(d.v).map(|(p, d)| p * fp(d));
        }
        let end = self.next_row();
        self.advice_f(cfg.acc, end, prod)?;
        let y = self.advice(cfg.y, end, y)?;
        // The product starts at one and must end at zero: some x_i equals the maximum.
        self.enable(cfg.q_bias, first)?;
        self.fixed(cfg.c[0], first, Fp::one())?;
        self.enable(cfg.q_bias, end)?;
        self.fixed(cfg.c[0], end, Fp::zero())?;
        self.flush(later)?;
        self.leave(scope);
        Ok(y)
    }

    /// Index of the first maximum of a group, or with `last` of the last one; `bits` bounds
    /// `max - x_i + 1`. The chain takes the first maximum in its row order, so for the last
    /// one it walks the group backwards; each row's fixed index is the member's own.
    pub fn argmax_of(&mut self, xs: &[&Cell], last: bool, bits: u32) -> Result<Cell, Error> {
        let scope = self.enter("argmax", self.row);
        let cfg = self.cfg;
        let order: Vec<(usize, &Cell)> = if last {
            xs.iter().copied().enumerate().rev().collect()
        } else {
            xs.iter().copied().enumerate().collect()
        };
        let vals: Option<Vec<i128>> = order.iter().map(|(_, c)| c.v).collect();
        let m = vals.as_ref().and_then(|v| v.iter().copied().max());
        let pos = vals
            .as_ref()
            .and_then(|v| v.iter().position(|&x| Some(x) == m));
        let first = self.row;
        let mut later = Deferred::default();
        let (mut pre, mut sum, mut ix, mut y) = (Some(0i128), Some(0i128), Some(0i128), m);
        for (r, (i, x)) in order.iter().enumerate() {
            let row = self.next_row();
            let x = self.copy(CopyFamily::ArgmaxOperand, x, cfg.lane[0], row)?;
            let o = self
                .advice(cfg.lane[1], row, pos.map(|j| (r == j) as i128))?
                .v;
            pre = self.advice(cfg.lane[2], row, pre)?.v;
            sum = self.advice(cfg.lane[3], row, sum)?.v;
            ix = self.advice(cfg.lane[4], row, ix)?.v;
            y = self.advice(cfg.y, row, y)?.v;
            self.fixed(cfg.c[0], row, Fp::from(*i as u64))?;
            let e = y
                .zip(x.v)
                .zip(pre)
                .zip(o)
                .map(|(((m, xv), p), o)| m - xv - 1 + p + o);
            let e = self.advice(cfg.v, row, e)?;
            self.range_here_or_defer(row, &e, 0, bits, &mut later)?;
            self.enable(cfg.q_argmax, row)?;
            pre = pre.zip(o).map(|(p, o)| p + o);
            sum = sum.zip(o).zip(x.v).map(|((s, o), xv)| s + o * xv);
            ix = ix.zip(o).map(|(t, o)| t + o * *i as i128);
        }
        let end = self.next_row();
        self.advice(cfg.lane[2], end, pre)?;
        self.advice(cfg.lane[3], end, sum)?;
        let out = self.advice(cfg.lane[4], end, ix)?;
        self.advice(cfg.y, end, y)?;
        self.enable(cfg.q_argmax_start, first)?;
        self.enable(cfg.q_argmax_end, end)?;
        self.flush(later)?;
        self.leave(scope);
        Ok(out)
    }

    // ---- tables ---------------------------------------------------------------------------

    /// `y = table[x]` for the function table `tag`; `y` is the table's value for `x`.
    pub fn lut(&mut self, tag: u64, x: &Cell, y: Option<i128>) -> Result<Cell, Error> {
        let scope = self.enter("lut", self.row);
        let cfg = self.cfg;
        let row = self.next_row();
        self.copy(CopyFamily::LutOperand, x, cfg.lane[0], row)?;
        let out = self.advice(cfg.y, row, y)?;
        self.fixed(cfg.ftag, row, Fp::from(tag))?;
        self.enable(cfg.q_lut, row)?;
        self.leave(scope);
        Ok(out)
    }

    /// `y = table[id·row_len + j]` for the gather table `tag`; `value` looks a key up.
    pub fn gather(
        &mut self,
        tag: u64,
        id: &Cell,
        row_len: usize,
        j: usize,
        value: impl Fn(i128) -> Option<i128>,
    ) -> Result<Cell, Error> {
        let scope = self.enter("gather", self.row);
        let cfg = self.cfg;
        let row = self.next_row();
        let id = self.copy(CopyFamily::GatherIndex, id, cfg.lane[1], row)?;
        let key = id.v.map(|i| i * row_len as i128 + j as i128);
        let key = self.advice(cfg.lane[0], row, key)?;
        self.fixed(cfg.c[0], row, Fp::from(row_len as u64))?;
        self.fixed(cfg.c[1], row, Fp::from(j as u64))?;
        let out = self.advice(cfg.y, row, key.v.and_then(value))?;
        self.fixed(cfg.ftag, row, Fp::from(tag))?;
        self.enable(cfg.q_lut, row)?;
        self.enable(cfg.q_gather, row)?;
        self.leave(scope);
        Ok(out)
    }

    /// Softmax's division: `y = floor(e·2^out_scale / s)`, `0 <= remainder < s`; `sbits`
    /// bounds `s`, `out_bits` the output.
    pub fn softmax_div(
        &mut self,
        e: &Cell,
        s: &Cell,
        out_scale: u32,
        sbits: u32,
        out_bits: u32,
    ) -> Result<Cell, Error> {
        let scope = self.enter("sdiv", self.row);
        let cfg = self.cfg;
        let row = self.next_row();
        let e = self.copy(CopyFamily::SoftmaxNumerator, e, cfg.lane[0], row)?;
        let s = self.copy(CopyFamily::SoftmaxSum, s, cfg.lane[1], row)?;
        self.fixed(cfg.c[1], row, fp(1i128 << out_scale))?;
        let num = e.v.map(|e| e << out_scale);
        let y = self.advice(cfg.y, row, num.zip(s.v).map(|(n, s)| n.div_euclid(s)))?;
        let r = self.advice(cfg.v, row, num.zip(s.v).map(|(n, s)| n.rem_euclid(s)))?;
        let mut later = Deferred::default();
        self.range_here_or_defer(row, &r, 0, sbits, &mut later)?;
        self.enable(cfg.q_sdiv, row)?;
        let hrow = self.next_row();
        let h = self.advice(cfg.v, hrow, r.v.zip(s.v).map(|(r, s)| s - 1 - r))?;
        self.range_here_or_defer(hrow, &h, 0, sbits, &mut later)?;
        self.flush(later)?;
        self.range_signed(&y, out_bits)?;
        self.leave(scope);
        Ok(y)
    }
}

impl Ctx<'_, '_> {
    /// `bias + Σ w·x` with field weights (used to pack inputs for hashing, where weights reach
    /// 2^253). Returns the accumulator cell of the final row and that row.
    pub fn dot_field(
        &mut self,
        bias: Fp,
        terms: &[(Fp, &Cell)],
    ) -> Result<(Option<AssignedCell<Fp, Fp>>, usize), Error> {
        let scope = self.enter("pack", self.row);
        let cfg = self.cfg;
        let first = self.row;
        let mut acc = Some(bias);
        for chunk in terms.chunks(LANES) {
            let row = self.next_row();
            self.advice_f(cfg.acc, row, acc)?;
            self.enable(cfg.q_dot, row)?;
            for (i, (w, x)) in chunk.iter().enumerate() {
                let lane = self.copy(CopyFamily::PackLane, x, cfg.lane[i], row)?;
                self.fixed(cfg.w[i], row, *w)?;
                acc = acc.zip(lane.v).map(|(a, xv)| a + *w * fp(xv));
            }
            self.zero_lanes(row, chunk.len())?;
        }
        let last = self.next_row();
        let cell = self.advice_f(cfg.acc, last, acc)?;
        self.enable(cfg.q_bias, first)?;
        self.fixed(cfg.c[0], first, bias)?;
        self.leave(scope);
        Ok((cell, last))
    }
}
