//! The dashboard's state and its keys: which panel has the focus, what is selected, filter,
//! pause, help, details, and the fault keys that act on a devnet through [`Controls`].

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::data::{Data, TaskRow};

/// The panels that take the focus, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    Validators,
    Tasks,
    Blocks,
    Models,
}

impl Panel {
    pub const ALL: [Panel; 4] = [
        Panel::Validators,
        Panel::Tasks,
        Panel::Blocks,
        Panel::Models,
    ];

    fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }
}

/// What a detail window shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Detail {
    Validator(usize),
    Task(String),
    Block(u64),
    Model(String),
}

/// What the fault keys ask of the node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    Kill(usize),
    Revive(usize),
    /// Cut the validator off from the others (or heal, when `false`).
    Partition(usize, bool),
    /// Make it answer wrong outputs (or honest again, when `false`).
    Byzantine(usize, bool),
    /// Submit a task to the model.
    Submit(String),
}

/// Carries out the fault keys (the node's `dev_*` methods, or a test's record).
pub trait Controls {
    /// What happened, for the status line.
    fn act(&mut self, action: &Action) -> anyhow::Result<String>;
}

/// The key help, in the order `?` shows it.
pub const KEYS: &[(&str, &str)] = &[
    ("tab / shift-tab", "next / previous panel (also ← →)"),
    ("↑ ↓ pgup pgdn", "move the selection"),
    (
        "enter",
        "details: a task's receipt and public inputs, a block",
    ),
    ("esc", "close details, help or the filter"),
    ("/", "filter tasks by id, model or status (esc clears)"),
    ("p", "pause / resume the live view"),
    ("?", "this help"),
    ("q, ctrl-c", "quit"),
    ("k", "devnet: kill the selected validator"),
    ("r", "devnet: revive the selected validator"),
    (
        "x",
        "devnet: partition the selected validator off (again: heal)",
    ),
    ("b", "devnet: selected validator Byzantine (again: honest)"),
    ("s", "devnet: submit a task to the selected model"),
];

/// The dashboard's state.
#[derive(Clone, Debug)]
pub struct App {
    pub title: String,
    pub data: Data,
    pub focus: Panel,
    /// Selected row per panel (in [`Panel::ALL`] order).
    pub selected: [usize; 4],
    pub filter: String,
    pub filtering: bool,
    pub paused: bool,
    pub help: bool,
    pub detail: Option<Detail>,
    /// What the last key did.
    pub status: String,
    /// Colours on (off with `NO_COLOR`).
    pub color: bool,
    pub quit: bool,
}

impl App {
    pub fn new(title: &str, color: bool) -> App {
        App {
            title: title.to_string(),
            data: Data::default(),
            focus: Panel::Validators,
            selected: [0; 4],
            filter: String::new(),
            filtering: false,
            paused: false,
            help: false,
            detail: None,
            status: "? for help".into(),
            color,
            quit: false,
        }
    }

    /// The tasks the filter lets through, newest first.
    pub fn visible_tasks(&self) -> Vec<&TaskRow> {
        let f = self.filter.to_lowercase();
        self.data
            .tasks
            .iter()
            .filter(|t| {
                f.is_empty()
                    || t.id.contains(&f)
                    || t.model.to_lowercase().contains(&f)
                    || t.status.contains(&f)
            })
            .collect()
    }

    fn rows(&self, p: Panel) -> usize {
        match p {
            Panel::Validators => self.data.validators.len(),
            Panel::Tasks => self.visible_tasks().len(),
            Panel::Blocks => self.data.blocks.len(),
            Panel::Models => self.data.models.len(),
        }
    }

    /// The selected row of a panel, kept within its rows.
    pub fn selection(&self, p: Panel) -> usize {
        self.selected[p.index()].min(self.rows(p).saturating_sub(1))
    }

    fn select_by(&mut self, delta: isize) {
        let p = self.focus;
        let n = self.rows(p);
        let cur = self.selection(p) as isize;
        self.selected[p.index()] = (cur + delta).clamp(0, n.saturating_sub(1) as isize) as usize;
    }

    fn selected_validator(&self) -> Option<usize> {
        self.data
            .validators
            .get(self.selection(Panel::Validators))
            .map(|v| v.index)
    }

    /// Takes fresh data (unless paused).
    pub fn update(&mut self, data: Data) {
        if !self.paused {
            self.data = data;
        }
    }

    /// Handles one key press.
    pub fn on_key(&mut self, key: KeyEvent, controls: &mut dyn Controls) {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            self.quit = true;
            return;
        }
        if self.filtering {
            match key.code {
                KeyCode::Enter => self.filtering = false,
                KeyCode::Esc => {
                    self.filtering = false;
                    self.filter.clear();
                }
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if self.filter.len() < 64 => self.filter.push(c),
                _ => {}
            }
            self.status = format!("filter: {}", self.filter);
            return;
        }
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Esc => {
                self.detail = None;
                self.help = false;
            }
            KeyCode::Char('?') => self.help = !self.help,
            KeyCode::Tab | KeyCode::Right => self.cycle(1),
            KeyCode::BackTab | KeyCode::Left => self.cycle(-1),
            KeyCode::Up => self.select_by(-1),
            KeyCode::Down => self.select_by(1),
            KeyCode::PageUp => self.select_by(-10),
            KeyCode::PageDown => self.select_by(10),
            KeyCode::Enter => self.detail = self.detail_of_selection(),
            KeyCode::Char('/') => {
                self.filtering = true;
                self.focus = Panel::Tasks;
                self.status = format!("filter: {}", self.filter);
            }
            KeyCode::Char('p') => {
                self.paused = !self.paused;
                self.status = if self.paused {
                    "paused (p resumes)".into()
                } else {
                    "live".into()
                };
            }
            KeyCode::Char(c @ ('k' | 'r' | 'x' | 'b' | 's')) => self.fault_key(c, controls),
            _ => {}
        }
    }

    fn cycle(&mut self, step: isize) {
        let i = (self.focus.index() as isize + step).rem_euclid(Panel::ALL.len() as isize);
        self.focus = Panel::ALL[i as usize];
    }

    fn detail_of_selection(&self) -> Option<Detail> {
        let i = self.selection(self.focus);
        match self.focus {
            Panel::Validators => self
                .data
                .validators
                .get(i)
                .map(|v| Detail::Validator(v.index)),
            Panel::Tasks => self
                .visible_tasks()
                .get(i)
                .map(|t| Detail::Task(t.id.clone())),
            Panel::Blocks => self.data.blocks.get(i).map(|b| Detail::Block(b.height)),
            Panel::Models => self.data.models.get(i).map(|m| Detail::Model(m.id.clone())),
        }
    }

    fn fault_key(&mut self, c: char, controls: &mut dyn Controls) {
        if !self.data.dev_controls {
            self.status =
                "read-only: this node does not take the fault keys (a devnet does)".into();
            return;
        }
        let action = if c == 's' {
            match self.data.models.get(self.selection(Panel::Models)) {
                Some(m) => Action::Submit(m.id.clone()),
                None => {
                    self.status = "no model deployed to submit a task to".into();
                    return;
                }
            }
        } else {
            let Some(v) = self.selected_validator() else {
                self.status = "no validator selected".into();
                return;
            };
            let state = self.data.validators.iter().find(|x| x.index == v);
            let partitioned = state.is_some_and(|s| s.state == "partitioned");
            let byzantine =
                state.is_some_and(|s| s.behavior.as_deref().is_some_and(|b| b != "honest"));
            match c {
                'k' => Action::Kill(v),
                'r' => Action::Revive(v),
                'x' => Action::Partition(v, !partitioned),
                _ => Action::Byzantine(v, !byzantine),
            }
        };
        self.status = match controls.act(&action) {
            Ok(s) => s,
            Err(e) => format!("{action:?} failed: {e:#}"),
        };
    }
}
