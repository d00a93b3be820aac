//! The layout context: places rows in the circuit's one main region and offers the gadgets the
//! op layouts are written with. Without a region it only counts rows, which is how the circuit's
//! size (and so `k`) is known before any key is generated.
//!
//! Values are carried as exact integers (`i128`) next to their cells; `None` when the circuit is
//! laid out without a witness (key generation). Every relation a gadget relies on is a gate or a
//! lookup in [`super::config`]; computing a value here is never a substitute for a constraint.

use ff::{Field as _, PrimeField as _};
use halo2_proofs::circuit::{AssignedCell, Region, Value};
use halo2_proofs::pasta::Fp;
use halo2_proofs::plonk::{Advice, Column, Error, Fixed, Selector};

use super::Tamper;
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
}

/// Counts of the gadgets used, for tamper targeting and reports.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    pub rescale: usize,
    pub cmp: usize,
    pub lut: usize,
    pub argmax: usize,
}

pub struct Ctx<'r, 'a> {
    pub cfg: &'r Config,
    /// Fixed cells assigned so far: a gadget that reused another's fixed cell would silently
    /// change its constraint, so that is a layout bug caught here.
    fixed_used: std::collections::HashSet<(Column<Fixed>, usize)>,
    region: Option<&'r mut Region<'a, Fp>>,
    pub row: usize,
    pub tamper: Option<&'r Tamper>,
    pub counters: Counters,
    /// Width of a range-check limb.
    pub lb: u32,
}

impl<'r, 'a> Ctx<'r, 'a> {
    pub fn new(
        cfg: &'r Config,
        region: Option<&'r mut Region<'a, Fp>>,
        tamper: Option<&'r Tamper>,
        lb: u32,
    ) -> Self {
        Ctx {
            cfg,
            fixed_used: Default::default(),
            region,
            row: 0,
            tamper,
            counters: Counters::default(),
            lb,
        }
    }

    /// Takes the next free row.
    pub fn next_row(&mut self) -> usize {
        self.row += 1;
        self.row - 1
    }

    pub fn advice_f(
        &mut self,
        col: Column<Advice>,
        row: usize,
        v: Option<Fp>,
    ) -> Result<Option<AssignedCell<Fp, Fp>>, Error> {
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
        let cell = self.advice_f(col, row, v.map(fp))?;
        Ok(Cell { cell, v })
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
        if let Some(r) = self.region.as_mut() {
            s.enable(r, row)?;
        }
        Ok(())
    }

    pub fn equal(&mut self, a: &Cell, b: &Cell) -> Result<(), Error> {
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
    pub fn copy(&mut self, src: &Cell, col: Column<Advice>, row: usize) -> Result<Cell, Error> {
        let c = self.advice(col, row, src.v)?;
        self.equal(src, &c)?;
        Ok(c)
    }

    fn tampering(&self, f: impl Fn(&Tamper) -> bool) -> bool {
        self.tamper.is_some_and(f)
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
    /// in `[0, 2^bits)`. Values wider than 32 bits continue into following rows.
    pub fn range_v(
        &mut self,
        row: usize,
        val: Option<i128>,
        offset: i128,
        bits: u32,
    ) -> Result<(), Error> {
        let u = val.map(|v| (v + offset) as u128);
        self.fixed(self.cfg.c[2], row, fp(offset))?;
        let span = self.lb * LIMBS as u32;
        if bits <= span {
            self.enable(self.cfg.q_rng, row)?;
            return self.limbs(row, u, bits, 0, LIMBS);
        }
        self.enable(self.cfg.q_rng_cont, row)?;
        self.fixed(self.cfg.lw[LIMBS], row, fp(1i128 << span))?;
        self.limbs(row, u, span, 0, LIMBS)?;
        let hi_row = self.next_row();
        let hi = u.map(|u| (u >> span) as i128);
        self.advice(self.cfg.v, hi_row, hi)?;
        self.range_v(hi_row, hi, 0, bits - span)
    }

    /// Range-checks a cell as a signed `bits`-bit integer in a new row.
    pub fn range_signed(&mut self, x: &Cell, bits: u32) -> Result<(), Error> {
        let row = self.next_row();
        self.copy(x, self.cfg.v, row)?;
        self.range_v(row, x.v, 1i128 << (bits - 1), bits)
    }

    /// Assigns a fresh value in the `v` column of a new row and range-checks it as a signed
    /// `bits`-bit integer (program inputs enter the circuit this way).
    pub fn new_signed(&mut self, val: Option<i128>, bits: u32) -> Result<Cell, Error> {
        let row = self.next_row();
        let c = self.advice(self.cfg.v, row, val)?;
        self.range_v(row, val, 1i128 << (bits - 1), bits)?;
        Ok(c)
    }

    // ---- dot products and rescaling -----------------------------------------------------

    /// `bias + Σ w·x` over `terms`, LANES terms per row. Returns the row holding the final
    /// accumulator (free for a gadget that consumes it) and the accumulator cell.
    pub fn dot(&mut self, bias: i128, terms: &[(i128, &Cell)]) -> Result<(usize, Cell), Error> {
        let cfg = self.cfg;
        let mut acc = Some(bias);
        let first = self.row;
        let no_terms: [(i128, &Cell); 0] = [];
        // At least one chain row, so that the bias (c0 of the first row) never shares a row with
        // the consumer of the final accumulator.
        let chunks: Vec<&[(i128, &Cell)]> = if terms.is_empty() {
            vec![&no_terms[..]]
        } else {
            terms.chunks(LANES).collect()
        };
        for chunk in chunks {
            let row = self.next_row();
            self.advice(cfg.acc, row, acc)?;
            self.enable(cfg.q_dot, row)?;
            for (i, (w, x)) in chunk.iter().enumerate() {
                self.copy(x, cfg.lane[i], row)?;
                self.fixed(cfg.w[i], row, fp(*w))?;
                acc = acc.zip(x.v).map(|(a, xv)| a + w * xv);
            }
            self.zero_lanes(row, chunk.len())?;
        }
        let last = self.next_row();
        let cell = self.advice(cfg.acc, last, acc)?;
        self.enable(cfg.q_bias, first)?;
        self.fixed(cfg.c[0], first, fp(bias))?;
        Ok((last, cell))
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
        let cfg = self.cfg;
        let n = self.counters.rescale;
        self.counters.rescale += 1;
        let pow2 = d > 0 && (d & (d - 1)) == 0;
        let rbits = if pow2 {
            d.trailing_zeros()
        } else {
            128 - (d - 1).leading_zeros()
        };
        let q = acc.map(|a| (a + half).div_euclid(d));
        let mut r = acc.map(|a| (a + half).rem_euclid(d));
        // The output as a field element; only tampering makes it differ from `q`.
        let mut y_field = q.map(fp);
        let mut wrapped = false;
        if let Some(t) = self.tamper {
            match t {
                Tamper::RescaleRemainder(k) if *k == n => {
                    // q - 1 and r + d keep acc + half = q·d + r, but r leaves [0, d).
                    y_field = q.map(|q| fp(q - 1));
                    r = r.map(|r| r + d);
                }
                Tamper::RescaleWrap(k) if *k == n => {
                    // Another remainder in range, with q solved in the field: q wraps.
                    let r2 = r.map(|r| (r + 1) % d);
                    y_field = acc
                        .zip(r2)
                        .map(|(a, r2)| (fp(a + half) - fp(r2)) * fp(d).invert().unwrap());
                    r = r2;
                    wrapped = true;
                }
                _ => {}
            }
        }
        self.enable(cfg.q_rescale, row)?;
        self.fixed(cfg.c[0], row, fp(half))?;
        self.fixed(cfg.c[1], row, fp(d))?;
        let y = Cell {
            cell: self.advice_f(cfg.y, row, y_field)?,
            v: q,
        };
        self.advice(cfg.v, row, r)?;
        let qu = q.map(|q| (q + (1i128 << (out_bits - 1))) as u128);
        let together = rbits <= 2 * self.lb && out_bits <= 2 * self.lb && !wrapped;
        if together {
            // Remainder and output checked together in this row.
            self.enable(cfg.q_rng2, row)?;
            self.fixed(cfg.c[2], row, fp(1i128 << (out_bits - 1)))?;
            self.limbs(row, r.map(|r| r as u128), rbits, 0, 2)?;
            self.limbs(row, qu, out_bits, 2, 2)?;
        } else {
            // Continuation rows of a wide remainder follow this row directly.
            self.range_v(row, r, 0, rbits)?;
        }
        if !pow2 {
            // 0 <= d - 1 - r as well, in the row right after (divisors are far below 2^32).
            self.enable(cfg.q_div_hi, row)?;
            let hrow = self.next_row();
            debug_assert_eq!(hrow, row + 1);
            let hv = r.map(|r| d - 1 - r);
            self.advice(cfg.v, hrow, hv)?;
            self.range_v(hrow, hv, 0, rbits)?;
        }
        if !together {
            // The output in its own row: a copy of the y cell (its field value, wrapped or not)
            // against limbs of the integer q.
            let qrow = self.next_row();
            let c = Cell {
                cell: self.advice_f(cfg.v, qrow, y_field)?,
                v: q,
            };
            self.equal(&y, &c)?;
            self.range_v(qrow, q, 1i128 << (out_bits - 1), out_bits)?;
        }
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
        let cfg = self.cfg;
        let row = self.next_row();
        self.copy(a, cfg.lane[0], row)?;
        self.copy(b, cfg.lane[1], row)?;
        let p = a.v.zip(b.v).map(|(x, y)| x * y);
        self.advice(cfg.acc, row, p)?;
        self.enable(cfg.q_mul, row)?;
        self.rescale_at(row, p, shift, out_bits)
    }

    // ---- comparisons --------------------------------------------------------------------

    /// One comparison row: `b = [x >= k]`, range of the sign decomposition `bits`. Returns the
    /// row and `b`.
    fn cmp_row(&mut self, x: &Cell, k: i128, bits: u32) -> Result<(usize, Option<i128>), Error> {
        let cfg = self.cfg;
        let n = self.counters.cmp;
        self.counters.cmp += 1;
        let row = self.next_row();
        self.copy(x, cfg.lane[0], row)?;
        let mut b = x.v.map(|xv| (xv >= k) as i128);
        if self.tampering(|t| matches!(t, Tamper::FlipSign(i) if *i == n)) {
            b = b.map(|b| 1 - b);
        }
        self.advice(cfg.lane[1], row, b)?;
        self.fixed(cfg.c[0], row, fp(k))?;
        self.enable(cfg.q_cmp, row)?;
        let v =
            x.v.zip(b)
                .map(|(xv, b)| if b == 1 { xv - k } else { k - xv - 1 });
        self.advice(cfg.v, row, v)?;
        // v may be negative only when tampered: its field value then wraps and the range fails.
        self.range_v(row, v, 0, bits)?;
        Ok((row, b))
    }

    /// `max(x, k)` (`min = false`) or `min(x, k)` (`min = true`); `bits` bounds `|x - k|`.
    pub fn cmp_const(&mut self, x: &Cell, k: i128, min: bool, bits: u32) -> Result<Cell, Error> {
        let (row, b) = self.cmp_row(x, k, bits)?;
        let y = x.v.zip(b).map(|(xv, b)| match (min, b == 1) {
            (false, true) | (true, false) => xv,
            _ => k,
        });
        self.enable(
            if min {
                self.cfg.q_min_c
            } else {
                self.cfg.q_max_c
            },
            row,
        )?;
        self.advice(self.cfg.y, row, y)
    }

    /// `x` when `x >= 0`, else `z`.
    pub fn select_nonneg(&mut self, x: &Cell, z: &Cell, bits: u32) -> Result<Cell, Error> {
        let (row, b) = self.cmp_row(x, 0, bits)?;
        self.copy(z, self.cfg.lane[2], row)?;
        self.enable(self.cfg.q_leaky, row)?;
        let y =
            x.v.zip(z.v)
                .zip(b)
                .map(|((xv, zv), b)| if b == 1 { xv } else { zv });
        self.advice(self.cfg.y, row, y)
    }

    /// The maximum of a group; `bits` bounds `max - x_i`.
    pub fn max_of(&mut self, xs: &[&Cell], bits: u32) -> Result<Cell, Error> {
        let cfg = self.cfg;
        let m = xs
            .iter()
            .map(|c| c.v)
            .collect::<Option<Vec<_>>>()
            .and_then(|v| v.into_iter().max());
        let first = self.row;
        let mut prod = m.map(|_| Fp::one());
        for x in xs {
            let row = self.next_row();
            self.copy(x, cfg.lane[0], row)?;
            self.advice(cfg.y, row, m)?;
            self.advice_f(cfg.acc, row, prod)?;
            let d = m.zip(x.v).map(|(m, xv)| m - xv);
            self.advice(cfg.v, row, d)?;
            self.range_v(row, d, 0, bits)?;
            self.enable(cfg.q_mchain, row)?;
            prod = prod.zip(d).map(|(p, d)| p * fp(d));
        }
        let end = self.next_row();
        self.advice_f(cfg.acc, end, prod)?;
        let y = self.advice(cfg.y, end, m)?;
        // The product starts at one and must end at zero: some x_i equals the maximum.
        self.enable(cfg.q_bias, first)?;
        self.fixed(cfg.c[0], first, Fp::one())?;
        self.enable(cfg.q_bias, end)?;
        self.fixed(cfg.c[0], end, Fp::zero())?;
        Ok(y)
    }

    /// Index of the first maximum of a group; `bits` bounds `max - x_i + 1`.
    pub fn argmax_of(&mut self, xs: &[&Cell], bits: u32) -> Result<Cell, Error> {
        let cfg = self.cfg;
        let n_call = self.counters.argmax;
        self.counters.argmax += 1;
        let vals: Option<Vec<i128>> = xs.iter().map(|c| c.v).collect();
        let m = vals.as_ref().and_then(|v| v.iter().copied().max());
        let mut idx = vals
            .as_ref()
            .and_then(|v| v.iter().position(|&x| Some(x) == m));
        let mut onehot: Option<Vec<i128>> =
            idx.map(|i| (0..xs.len()).map(|j| (j == i) as i128).collect());
        if let Some(t) = self.tamper {
            match t {
                Tamper::ArgmaxTwoOnes(k) if *k == n_call => {
                    if let Some(o) = onehot.as_mut() {
                        let i = idx.unwrap_or(0);
                        let len = o.len();
                        o[(i + 1) % len] = 1;
                    }
                }
                Tamper::ArgmaxLastTie(k) if *k == n_call => {
                    let last = vals
                        .as_ref()
                        .and_then(|v| v.iter().rposition(|&x| Some(x) == m));
                    idx = last;
                    onehot = idx.map(|i| (0..xs.len()).map(|j| (j == i) as i128).collect());
                }
                _ => {}
            }
        }
        let first = self.row;
        let (mut pre, mut sum, mut ix) = (Some(0i128), Some(0i128), Some(0i128));
        for (i, x) in xs.iter().enumerate() {
            let row = self.next_row();
            self.copy(x, cfg.lane[0], row)?;
            let o = onehot.as_ref().map(|o| o[i]);
            self.advice(cfg.lane[1], row, o)?;
            self.advice(cfg.lane[2], row, pre)?;
            self.advice(cfg.lane[3], row, sum)?;
            self.advice(cfg.lane[4], row, ix)?;
            self.advice(cfg.y, row, m)?;
            self.fixed(cfg.c[0], row, Fp::from(i as u64))?;
            let e = m
                .zip(x.v)
                .zip(pre)
                .zip(o)
                .map(|(((m, xv), p), o)| m - xv - 1 + p + o);
            self.advice(cfg.v, row, e)?;
            self.range_v(row, e, 0, bits)?;
            self.enable(cfg.q_argmax, row)?;
            pre = pre.zip(o).map(|(p, o)| p + o);
            sum = sum.zip(o).zip(x.v).map(|((s, o), xv)| s + o * xv);
            ix = ix.zip(o).map(|(t, o)| t + o * i as i128);
        }
        let end = self.next_row();
        self.advice(cfg.lane[2], end, pre)?;
        self.advice(cfg.lane[3], end, sum)?;
        let out = self.advice(cfg.lane[4], end, ix)?;
        self.advice(cfg.y, end, m)?;
        self.enable(cfg.q_argmax_start, first)?;
        self.enable(cfg.q_argmax_end, end)?;
        Ok(out)
    }

    // ---- tables ---------------------------------------------------------------------------

    /// `y = table[x]` for the function table `tag`; `y` is the table's value for `x`.
    pub fn lut(&mut self, tag: u64, x: &Cell, y: Option<i128>) -> Result<Cell, Error> {
        let cfg = self.cfg;
        let n = self.counters.lut;
        self.counters.lut += 1;
        let row = self.next_row();
        self.copy(x, cfg.lane[0], row)?;
        let y = match self.tamper {
            Some(Tamper::LutValue(k, v)) if *k == n => Some(*v),
            _ => y,
        };
        let out = self.advice(cfg.y, row, y)?;
        self.fixed(cfg.ftag, row, Fp::from(tag))?;
        self.enable(cfg.q_lut, row)?;
        Ok(out)
    }

    /// `y = table[id·row_len + j]` for the gather table `tag`.
    pub fn gather(
        &mut self,
        tag: u64,
        id: &Cell,
        row_len: usize,
        j: usize,
        y: Option<i128>,
    ) -> Result<Cell, Error> {
        let cfg = self.cfg;
        let row = self.next_row();
        self.copy(id, cfg.lane[1], row)?;
        let key = id.v.map(|i| i * row_len as i128 + j as i128);
        self.advice(cfg.lane[0], row, key)?;
        self.fixed(cfg.c[0], row, Fp::from(row_len as u64))?;
        self.fixed(cfg.c[1], row, Fp::from(j as u64))?;
        let out = self.advice(cfg.y, row, y)?;
        self.fixed(cfg.ftag, row, Fp::from(tag))?;
        self.enable(cfg.q_lut, row)?;
        self.enable(cfg.q_gather, row)?;
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
        let cfg = self.cfg;
        let row = self.next_row();
        self.copy(e, cfg.lane[0], row)?;
        self.copy(s, cfg.lane[1], row)?;
        self.fixed(cfg.c[1], row, fp(1i128 << out_scale))?;
        let num = e.v.map(|e| e << out_scale);
        let y = num.zip(s.v).map(|(n, s)| n.div_euclid(s));
        let r = num.zip(s.v).map(|(n, s)| n.rem_euclid(s));
        let yc = self.advice(cfg.y, row, y)?;
        self.advice(cfg.v, row, r)?;
        self.range_v(row, r, 0, sbits)?;
        self.enable(cfg.q_sdiv, row)?;
        let hrow = self.next_row();
        let h = r.zip(s.v).map(|(r, s)| s - 1 - r);
        self.advice(cfg.v, hrow, h)?;
        self.range_v(hrow, h, 0, sbits)?;
        self.range_signed(&yc, out_bits)?;
        Ok(yc)
    }
}

impl Ctx<'_, '_> {
    /// `bias + Σ w·x` with field weights (used to pack inputs for hashing, where weights reach
    /// 2^192). Returns the accumulator cell of the final row.
    pub fn dot_field(
        &mut self,
        bias: Fp,
        terms: &[(Fp, &Cell)],
    ) -> Result<Option<AssignedCell<Fp, Fp>>, Error> {
        let cfg = self.cfg;
        let first = self.row;
        let mut acc = Some(bias);
        for chunk in terms.chunks(LANES) {
            let row = self.next_row();
            self.advice_f(cfg.acc, row, acc)?;
            self.enable(cfg.q_dot, row)?;
            for (i, (w, x)) in chunk.iter().enumerate() {
                self.copy(x, cfg.lane[i], row)?;
                self.fixed(cfg.w[i], row, *w)?;
                acc = acc.zip(x.v).map(|(a, xv)| a + *w * fp(xv));
            }
            self.zero_lanes(row, chunk.len())?;
        }
        let last = self.next_row();
        let cell = self.advice_f(cfg.acc, last, acc)?;
        self.enable(cfg.q_bias, first)?;
        self.fixed(cfg.c[0], first, bias)?;
        Ok(cell)
    }
}
