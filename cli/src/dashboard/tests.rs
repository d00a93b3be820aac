//! The dashboard drawn on ratatui's `TestBackend` from fixed data (insta snapshots of each view
//! at 80x24 and 160x48), and its keys.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use lightchain_devnet::rpc::types::ValidatorStatus;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;
use serde_json::json;

use super::app::{Action, App, Controls, Detail, Panel};
use super::data::{BlockRow, Data, Link, ModelRow, TaskRow};

fn validator(i: usize, state: &str, behavior: &str) -> ValidatorStatus {
    ValidatorStatus {
        index: i,
        state: state.into(),
        height: if state == "killed" { 9 } else { 12 },
        round: Some(0),
        tasks_executed: Some(3 + i as u64),
        mean_prove_ms: Some(290.0 + 10.0 * i as f64),
        proofs_verified: 7 - i as u64,
        votes: 11 - i as u64,
        penalties: u32::from(behavior != "honest"),
        jailed_until: None,
        stake: 1_000_000_000_000_000_000_000,
        behavior: Some(behavior.into()),
    }
}

fn task(n: u8, status: &str) -> TaskRow {
    let done = status == "completed";
    TaskRow {
        id: format!("{n:02x}").repeat(32),
        model_id: "ab".repeat(32),
        model: "digits".into(),
        status: status.into(),
        gas: 182_926,
        fee: "182926".into(),
        submitted_height: 2 * n as u64,
        latency_ms: done.then_some(310 + n as u64),
        proof_bytes: done.then_some(5_888),
        executor: Some(n as usize % 4),
        verifiers: if done { vec![1, 2, 3] } else { vec![] },
        reason: (status == "failed").then(|| "wrong output from executor 1".into()),
        receipt: done.then(|| {
            json!({"outputs_float": [[0.1, 0.9]], "block_height": 2 * n as u64 + 1,
                   "block_hash": "cd".repeat(32), "public_inputs": {"nonce": "00ff", "inputs": [[1, 2]]}})
        }),
    }
}

/// A devnet of 4 validators at height 12: one killed, one Byzantine, six tasks.
pub fn fixture() -> Data {
    Data {
        rpc: "http://127.0.0.1:8645".into(),
        chain_id: "lightchain-devnet".into(),
        height: 12,
        link: Link::Live,
        dev_controls: true,
        validators: vec![
            validator(0, "online", "honest"),
            validator(1, "online", "wrong_output"),
            validator(2, "partitioned", "honest"),
            validator(3, "killed", "honest"),
        ],
        blocks: (1..=12)
            .rev()
            .map(|h| BlockRow {
                height: h,
                hash: format!("{h:02x}").repeat(32),
                timestamp_ms: 1_700_000_000_000 + h * 250,
                proposer: h as usize % 4,
                txs: (h % 3) as usize,
                submitted: (h % 2) as usize,
                completed: ((h + 1) % 2) as usize,
                signers: vec![0, 1, 2],
            })
            .collect(),
        tasks: vec![
            task(6, "submitted"),
            task(5, "pending"),
            task(4, "failed"),
            task(3, "completed"),
            task(2, "completed"),
            task(1, "completed"),
        ],
        models: vec![
            ModelRow {
                id: "ab".repeat(32),
                name: "digits".into(),
                version: "0.1.0".into(),
                k: 9,
                gas: 182_926,
                height: 1,
            },
            ModelRow {
                id: "ef".repeat(32),
                name: "fraud".into(),
                version: "0.2.0".into(),
                k: 8,
                gas: 91_002,
                height: 3,
            },
        ],
        latency: vec![320, 311, 305, 340, 298, 312, 330, 301],
        gas: vec![
            182_926, 182_926, 91_002, 182_926, 91_002, 182_926, 182_926, 91_002,
        ],
        tasks_per_block: vec![1, 1, 2, 0, 1, 1, 2, 1, 0, 1, 1, 1],
    }
}

fn app() -> App {
    let mut a = App::new("lightchain devnet", true);
    a.update(fixture());
    a
}

fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| f.render_widget(app, f.area())).unwrap();
    t
}

fn text(app: &App, w: u16, h: u16) -> String {
    draw(app, w, h).backend().to_string()
}

macro_rules! frame {
    ($name:expr, $app:expr) => {
        insta::with_settings!({
            snapshot_path => lightchain_test_utils::repo().join("snapshots"),
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("dashboard_{}_80x24", $name), text($app, 80, 24));
            insta::assert_snapshot!(format!("dashboard_{}_160x48", $name), text($app, 160, 48));
        })
    };
}

/// Records what the fault keys ask.
#[derive(Default)]
struct Record(Vec<Action>);

impl Controls for Record {
    fn act(&mut self, a: &Action) -> anyhow::Result<String> {
        self.0.push(a.clone());
        Ok(format!("did {a:?}"))
    }
}

fn press(app: &mut App, c: &mut Record, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE), c);
}

#[test]
fn every_view_at_80x24_and_160x48() {
    let mut a = app();
    frame!("main", &a);
    let mut r = Record::default();
    press(&mut a, &mut r, KeyCode::Char('?'));
    frame!("help", &a);
    press(&mut a, &mut r, KeyCode::Esc);
    // The third task (completed) in the tasks panel.
    press(&mut a, &mut r, KeyCode::Tab);
    for _ in 0..3 {
        press(&mut a, &mut r, KeyCode::Down);
    }
    press(&mut a, &mut r, KeyCode::Enter);
    assert_eq!(
        a.detail,
        Some(Detail::Task(format!("{:02x}", 3).repeat(32)))
    );
    frame!("task", &a);
    press(&mut a, &mut r, KeyCode::Esc);
    press(&mut a, &mut r, KeyCode::Tab);
    press(&mut a, &mut r, KeyCode::Down);
    press(&mut a, &mut r, KeyCode::Enter);
    assert_eq!(a.detail, Some(Detail::Block(11)));
    frame!("block", &a);
    press(&mut a, &mut r, KeyCode::Esc);
    press(&mut a, &mut r, KeyCode::Char('/'));
    for c in "fail".chars() {
        press(&mut a, &mut r, KeyCode::Char(c));
    }
    frame!("filter", &a);
    assert!(
        r.0.is_empty(),
        "keys typed into the filter act on nothing: {:?}",
        r.0
    );
}

#[test]
fn keys_move_filter_pause_and_quit() {
    let (mut a, mut r) = (app(), Record::default());
    assert_eq!(a.focus, Panel::Validators);
    for p in [
        Panel::Tasks,
        Panel::Blocks,
        Panel::Models,
        Panel::Validators,
    ] {
        press(&mut a, &mut r, KeyCode::Tab);
        assert_eq!(a.focus, p);
    }
    press(&mut a, &mut r, KeyCode::BackTab);
    assert_eq!(a.focus, Panel::Models);
    // The selection stays within the rows.
    for _ in 0..9 {
        press(&mut a, &mut r, KeyCode::Down);
    }
    assert_eq!(a.selection(Panel::Models), 1);
    press(&mut a, &mut r, KeyCode::PageUp);
    assert_eq!(a.selection(Panel::Models), 0);
    // Filter: only failed tasks; esc clears it.
    press(&mut a, &mut r, KeyCode::Char('/'));
    for c in "failed".chars() {
        press(&mut a, &mut r, KeyCode::Char(c));
    }
    press(&mut a, &mut r, KeyCode::Enter);
    assert!(!a.filtering);
    let shown: Vec<&str> = a
        .visible_tasks()
        .iter()
        .map(|t| t.status.as_str())
        .collect();
    assert_eq!(shown, ["failed"]);
    press(&mut a, &mut r, KeyCode::Char('/'));
    press(&mut a, &mut r, KeyCode::Esc);
    assert_eq!(a.visible_tasks().len(), 6);
    // Paused: new data waits.
    press(&mut a, &mut r, KeyCode::Char('p'));
    let mut newer = fixture();
    newer.height = 99;
    a.update(newer.clone());
    assert_eq!(a.data.height, 12);
    assert!(text(&a, 80, 24).contains("paused"));
    press(&mut a, &mut r, KeyCode::Char('p'));
    a.update(newer);
    assert_eq!(a.data.height, 99);
    press(&mut a, &mut r, KeyCode::Char('?'));
    assert!(a.help);
    press(&mut a, &mut r, KeyCode::Char('?'));
    assert!(!a.help);
    press(&mut a, &mut r, KeyCode::Char('q'));
    assert!(a.quit);
    let mut b = app();
    b.on_key(
        KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL),
        &mut r,
    );
    assert!(b.quit);
}

#[test]
fn fault_keys_act_on_the_selection_and_only_on_a_devnet() {
    let (mut a, mut r) = (app(), Record::default());
    press(&mut a, &mut r, KeyCode::Down);
    press(&mut a, &mut r, KeyCode::Char('k'));
    press(&mut a, &mut r, KeyCode::Char('r'));
    // Validator 1 is Byzantine: b makes it honest again.
    press(&mut a, &mut r, KeyCode::Char('b'));
    press(&mut a, &mut r, KeyCode::Char('x'));
    press(&mut a, &mut r, KeyCode::Down);
    // Validator 2 is partitioned: x heals.
    press(&mut a, &mut r, KeyCode::Char('x'));
    press(&mut a, &mut r, KeyCode::Char('b'));
    // s: the selected model (the second).
    a.focus = Panel::Models;
    press(&mut a, &mut r, KeyCode::Down);
    press(&mut a, &mut r, KeyCode::Char('s'));
    assert_eq!(
        r.0,
        vec![
            Action::Kill(1),
            Action::Revive(1),
            Action::Byzantine(1, false),
            Action::Partition(1, true),
            Action::Partition(2, false),
            Action::Byzantine(2, true),
            Action::Submit("ef".repeat(32)),
        ]
    );
    assert!(a.status.contains("Submit"), "{}", a.status);
    // A node that is not a devnet: nothing is asked, the status line says why.
    let mut ro = app();
    ro.data.dev_controls = false;
    let mut r2 = Record::default();
    for c in ['k', 'r', 'x', 'b', 's'] {
        press(&mut ro, &mut r2, KeyCode::Char(c));
    }
    assert!(r2.0.is_empty());
    assert!(ro.status.contains("read-only"), "{}", ro.status);
    assert!(!text(&ro, 80, 24).contains("k r x b s"));
}

#[test]
fn resizing_redraws_cleanly_and_no_color_means_no_colour() {
    let a = app();
    let mut t = draw(&a, 80, 24);
    let first = t.backend().to_string();
    t.backend_mut().resize(160, 48);
    t.draw(|f| f.render_widget(&a, f.area())).unwrap();
    t.backend_mut().resize(80, 24);
    t.draw(|f| f.render_widget(&a, f.area())).unwrap();
    assert_eq!(t.backend().to_string(), first);
    // Tiny terminals draw what fits, without panicking.
    for (w, h) in [(20, 5), (1, 1), (80, 3)] {
        draw(&a, w, h);
    }
    let coloured = draw(&a, 80, 24);
    assert!(
        coloured
            .backend()
            .buffer()
            .content()
            .iter()
            .any(|c| c.fg != Color::Reset)
    );
    let mut plain = app();
    plain.color = false;
    let t = draw(&plain, 80, 24);
    assert!(
        t.backend()
            .buffer()
            .content()
            .iter()
            .all(|c| c.fg == Color::Reset && c.bg == Color::Reset)
    );
    assert_eq!(t.backend().to_string(), first);
}
