//! Layout analyses over every fixture's circuit (and wide programs that take the deferred and
//! continued range checks): every assigned advice cell is read by an enabled gate, looked up or
//! copied; every cell an enabled gate reads is assigned; and a gate that reads the next row
//! reads a row its own gadget took, never one of another gadget's (a range check's
//! continuation, say).

use std::collections::{HashMap, HashSet};

use super::*;
use crate::circuit::config::GateInfo;
use crate::ops::group::{GroupSpec, Pool2d};
use crate::ops::reduce::ReduceKind;

fn column_names(cfg: &Config) -> HashMap<Column<Advice>, String> {
    let mut m = HashMap::new();
    for (i, c) in cfg.lane.iter().enumerate() {
        m.insert(*c, format!("lane{i}"));
    }
    for (i, c) in cfg.limb.iter().enumerate() {
        m.insert(*c, format!("limb{i}"));
    }
    m.insert(cfg.acc, "acc".into());
    m.insert(cfg.y, "y".into());
    m.insert(cfg.v, "v".into());
    m
}

/// Problems found in one layout.
pub(crate) fn analyze(case: &Case) -> Vec<String> {
    let (cfg, t) = (&case.cfg, &case.honest);
    let names = column_names(cfg);
    let gadget = |row: usize| {
        t.owner
            .get(&row)
            .and_then(|&s| s.checked_sub(1))
            .map_or("?", |s| t.scopes[s as usize].0)
    };
    let by_sel: HashMap<_, &GateInfo> = cfg.gate_info.iter().map(|g| (g.selector, g)).collect();
    let mut touched: HashSet<Pos> = HashSet::new();
    let mut problems = Vec::new();
    // The range lookups read every limb cell of every row.
    let limbs: HashSet<Column<Advice>> = cfg.limb.iter().copied().collect();
    touched.extend(t.values.keys().filter(|(c, _)| limbs.contains(c)));
    for &(sel, row, scope) in &t.enabled {
        if sel == cfg.q_lut {
            touched.insert((cfg.lane[0], row));
            touched.insert((cfg.y, row));
        }
        let Some(g) = by_sel.get(&sel) else {
            continue;
        };
        for &(col, rot) in &g.cells {
            let r = (row as i64 + rot as i64) as usize;
            let pos = (col, r);
            if !t.values.contains_key(&pos) {
                problems.push(format!(
                    "gate {} at row {row} ({}) reads {} at row {r}, which nothing assigned",
                    g.name,
                    gadget(row),
                    names[&col]
                ));
            }
            if rot != 0 && t.owner.get(&r) != Some(&scope) {
                problems.push(format!(
                    "gate {} enabled by {} at row {row} reads row {r}, which {} took",
                    g.name,
                    t.scopes[scope as usize - 1].0,
                    gadget(r)
                ));
            }
            touched.insert(pos);
        }
    }
    for &(a, b) in &t.equal {
        touched.insert(a);
        touched.insert(b);
    }
    let mut free: Vec<&Pos> = t.values.keys().filter(|p| !touched.contains(p)).collect();
    free.sort_by_key(|p| (p.1, names[&p.0].clone()));
    for &&(c, r) in free.iter().take(10) {
        problems.push(format!(
            "{} at row {r} ({}) is assigned but no gate, lookup or copy constrains it",
            names[&c],
            gadget(r)
        ));
    }
    problems
}

/// Programs that take the wide paths: deferred checks after maximum, argmax and softmax
/// chains, continued checks, wide means.
fn wide_programs() -> Vec<(String, Arc<Program>, Vec<Vec<i64>>)> {
    let mut out = Vec::new();
    let axes = |n: usize| GroupSpec::Axes {
        shape: vec![n],
        axes: vec![0],
    };
    for bits in [25, 33, 40, 48] {
        let (lo, hi) = crate::program::bit_range(bits);
        let x = vec![lo, hi, 0, hi - 1, lo + 1, 7];
        let mut p = P::default();
        let i = p.input(&[6], bits);
        let m = p.node(
            Op::Reduce(crate::ops::reduce::Reduce {
                kind: ReduceKind::Max,
                groups: axes(6),
                shift: 0,
            }),
            &[i],
            &[1],
            bits,
        );
        let a = p.node(
            Op::ArgMax(crate::ops::argmax::ArgMax { groups: axes(6) }),
            &[i],
            &[1],
            4,
        );
        let s = p.node(
            Op::Reduce(crate::ops::reduce::Reduce {
                kind: ReduceKind::Mean,
                groups: axes(6),
                shift: 0,
            }),
            &[i],
            &[1],
            bits,
        );
        p.output(m).output(a).output(s);
        out.push((
            format!("max/argmax/mean at {bits} bits"),
            p.build(),
            vec![x],
        ));
    }
    // A 2x2 max pool over 40-bit values.
    let mut p = P::default();
    let i = p.input(&[1, 1, 2, 4], 40);
    let pool = GroupSpec::Pool2d(Pool2d {
        n: 1,
        c: 1,
        h: 2,
        w: 4,
        kh: 2,
        kw: 2,
        stride: [2, 2],
        pad: [0, 0],
        oh: 1,
        ow: 2,
        count_include_pad: false,
    });
    let y = p.node(
        Op::Reduce(crate::ops::reduce::Reduce {
            kind: ReduceKind::Max,
            groups: pool,
            shift: 0,
        }),
        &[i],
        &[1, 1, 1, 2],
        40,
    );
    let (lo, hi) = crate::program::bit_range(40);
    out.push((
        "max pool at 40 bits".into(),
        p.output(y).build(),
        vec![vec![lo, hi, 3, -3, hi, lo, 0, 1]],
    ));
    // A softmax whose sum (up to 2^33) is wider than a range-check row: its division's
    // remainder checks are deferred.
    let mut p = P::default();
    let i = p.input(&[8], 20);
    let y = p.node(
        Op::Softmax(crate::ops::softmax::Softmax {
            groups: axes(8),
            in_shift: 0,
            lo: -4,
            table: (26..=30).map(|e| 1i64 << e).collect(),
            out_scale: 12,
            split_bits: 0,
        }),
        &[i],
        &[8],
        16,
    );
    out.push((
        "softmax with a 2^33 sum".into(),
        p.output(y).build(),
        vec![vec![5, 5, 5, 5, 5, 5, 5, 5]],
    ));
    out
}

#[test]
fn fixture_layouts_constrain_every_cell_and_keep_to_their_rows() {
    let mut all: Vec<(String, Arc<Program>, Vec<Vec<i64>>)> = FIXTURES
        .iter()
        .map(|name| {
            let (p, q) = fixture(name);
            (name.to_string(), p, q)
        })
        .collect();
    all.extend(wide_programs());
    for (name, p, q) in all {
        for vis in [Visibility::Public, Visibility::Hashed] {
            let case = Case::new(p.clone(), q.clone(), vis);
            let problems = analyze(&case);
            assert!(
                problems.is_empty(),
                "{name} ({vis}):\n{}",
                problems.join("\n")
            );
        }
    }
}

#[test]
fn wide_programs_satisfy_the_circuit() {
    for (name, p, q) in wide_programs() {
        let case = Case::public(p, q);
        case.honest_result()
            .unwrap_or_else(|e| panic!("{name}: {} failures, first {}", e.len(), e[0]));
    }
}

#[test]
fn the_analysis_finds_a_gate_reading_a_continuation_row() {
    // The layout this suite guards against: a maximum chain whose wide difference is checked
    // in place, so that its continuation row sits between two rows of the chain. Built by hand
    // from the gadgets, the way `max_of` looked before the checks were deferred.
    let (lo, hi) = crate::program::bit_range(40);
    let mut p = P::default();
    let i = p.input(&[2], 40);
    let y = p.node(
        Op::Reduce(crate::ops::reduce::Reduce {
            kind: ReduceKind::Max,
            groups: GroupSpec::Axes {
                shape: vec![2],
                axes: vec![0],
            },
            shift: 0,
        }),
        &[i],
        &[1],
        40,
    );
    let program = p.output(y).build();
    let circuit = AivmCircuit::new(program, Visibility::Public);
    let cfg = config();
    let (_, trace) = testing::with(None, HashMap::new(), true, || {
        let mut ctx = Ctx::new(&cfg, None, circuit.limb_bits);
        let a = ctx.new_signed(Some(lo as i128), 40).unwrap();
        let b = ctx.new_signed(Some(hi as i128), 40).unwrap();
        let scope = ctx.enter("mchain", ctx.row);
        let first = ctx.row;
        for x in [&a, &b] {
            let row = ctx.next_row();
            ctx.copy(ctx::CopyFamily::MaxOperand, x, cfg.lane[0], row)
                .unwrap();
            ctx.advice(cfg.y, row, Some(hi as i128)).unwrap();
            ctx.advice(cfg.acc, row, Some(1)).unwrap();
            let d = ctx
                .advice(cfg.v, row, Some(hi as i128 - x.v.unwrap()))
                .unwrap();
            ctx.range_v(row, d.v, 0, 40).unwrap();
            ctx.enable(cfg.q_mchain, row).unwrap();
        }
        let end = ctx.next_row();
        ctx.advice(cfg.acc, end, Some(0)).unwrap();
        ctx.advice(cfg.y, end, Some(hi as i128)).unwrap();
        ctx.enable(cfg.q_bias, first).unwrap();
        ctx.leave(scope);
    });
    let case = Case {
        honest: trace.unwrap(),
        ..Case::public(circuit.program.clone(), vec![vec![lo, hi]])
    };
    let problems = analyze(&case);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("gate mchain enabled by mchain") && p.contains("which range took")),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("which nothing assigned")),
        "{problems:?}"
    );
}
