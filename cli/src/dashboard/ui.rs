//! Drawing the dashboard: `impl Widget for &App`. Works from 80x24 up: below 120 columns the
//! validators take the full width and blocks share the bottom row with models and charts.

use ratatui::buffer::Buffer;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{
    Block, Cell, Clear, Paragraph, Row, Sparkline, StatefulWidget, Table, TableState, Widget, Wrap,
};

use super::app::{App, Detail, KEYS, Panel};
use super::data::Link;

/// Styles, or none of them under `NO_COLOR`.
struct Theme(bool);

impl Theme {
    fn fg(&self, c: Color) -> Style {
        if self.0 {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    fn good(&self) -> Style {
        self.fg(Color::Green)
    }
    fn bad(&self) -> Style {
        self.fg(Color::Red)
    }
    fn warn(&self) -> Style {
        self.fg(Color::Yellow)
    }
    fn accent(&self) -> Style {
        self.fg(Color::Cyan)
    }
    fn dim(&self) -> Style {
        self.fg(Color::DarkGray)
    }
    /// The selected row: reversed, which needs no colour.
    fn selected(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    fn state(&self, s: &str) -> Style {
        match s {
            "online" | "completed" => self.good(),
            "killed" | "stopped" | "failed" => self.bad(),
            "partitioned" | "pending" | "submitted" => self.warn(),
            _ => Style::default(),
        }
    }
}

fn short(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

impl App {
    fn panel_block(&self, p: Panel, title: String) -> Block<'static> {
        let t = Theme(self.color);
        let b = Block::bordered().title(title);
        if self.focus == p {
            b.border_style(t.accent().add_modifier(Modifier::BOLD))
        } else {
            b.border_style(t.dim())
        }
    }

    fn table(&self, p: Panel, area: Rect, buf: &mut Buffer, t: Table<'_>) {
        let mut state = TableState::default();
        if self.focus == p {
            state.select(Some(self.selection(p)));
        }
        StatefulWidget::render(
            t.row_highlight_style(Theme(self.color).selected()),
            area,
            buf,
            &mut state,
        );
    }

    fn header(&self) -> Line<'static> {
        let t = Theme(self.color);
        let d = &self.data;
        let online = d
            .validators
            .iter()
            .filter(|v| v.state == "online" || v.state == "remote")
            .count();
        let (link, style) = match &d.link {
            Link::Live => ("live".to_string(), t.good()),
            Link::Polling => ("polling".to_string(), t.warn()),
            Link::Connecting => ("connecting".to_string(), t.warn()),
            Link::Down(why) => (format!("down: {why}"), t.bad()),
        };
        let link = if self.paused {
            "paused".to_string()
        } else {
            link
        };
        Line::from(vec![
            Span::styled(
                format!(" {} ", self.title),
                t.accent().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!(
                "│ {} │ height {} │ {} validators, {online} up │ ",
                d.chain_id,
                d.height,
                d.validators.len()
            )),
            Span::styled(link, style),
            Span::styled(format!(" │ {}", d.rpc), t.dim()),
        ])
    }

    fn validators(&self, area: Rect, buf: &mut Buffer) {
        let t = Theme(self.color);
        let rows = self.data.validators.iter().map(|v| {
            let behavior = v.behavior.as_deref().filter(|b| *b != "honest");
            Row::new(vec![
                Cell::from(v.index.to_string()),
                Cell::from(v.state.clone()).style(t.state(&v.state)),
                Cell::from(v.height.to_string()),
                Cell::from(opt(v.round)),
                Cell::from(v.votes.to_string()),
                Cell::from(opt(v.tasks_executed)),
                Cell::from(v.proofs_verified.to_string()),
                Cell::from(v.penalties.to_string()).style(if v.penalties > 0 {
                    t.bad()
                } else {
                    Style::default()
                }),
                Cell::from(v.mean_prove_ms.map_or("-".into(), |m| format!("{m:.0}"))),
                Cell::from(behavior.unwrap_or("").to_string()).style(t.bad()),
            ])
        });
        let widths = [
            Constraint::Length(2),
            Constraint::Length(11),
            Constraint::Length(6),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(3),
            Constraint::Length(6),
            Constraint::Min(6),
        ];
        let table = Table::new(rows, widths)
            .header(
                Row::new([
                    "#", "state", "height", "round", "votes", "tasks", "proofs", "pen", "prove",
                    "fault",
                ])
                .style(t.dim()),
            )
            .block(self.panel_block(Panel::Validators, " Validators ".into()));
        self.table(Panel::Validators, area, buf, table);
    }

    fn tasks(&self, area: Rect, buf: &mut Buffer) {
        let t = Theme(self.color);
        let tasks = self.visible_tasks();
        let rows = tasks.iter().map(|x| {
            Row::new(vec![
                Cell::from(short(&x.id, 10)),
                Cell::from(short(&x.model, 10)),
                Cell::from(x.status.clone()).style(t.state(&x.status)),
                Cell::from(x.gas.to_string()),
                Cell::from(x.fee.clone()),
                Cell::from(x.latency_ms.map_or("-".into(), |l| format!("{l} ms"))),
                Cell::from(x.proof_bytes.map_or("-".into(), |b| format!("{b} B"))),
                Cell::from(opt(x.executor)),
                Cell::from(format!("{:?}", x.verifiers)),
            ])
        });
        let widths = [
            Constraint::Length(10),
            Constraint::Length(10),
            Constraint::Length(9),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(8),
            Constraint::Length(7),
            Constraint::Length(4),
            Constraint::Min(8),
        ];
        let title = if self.filter.is_empty() && !self.filtering {
            format!(" Tasks ({}) ", tasks.len())
        } else {
            format!(
                " Tasks ({}) filter: {}{} ",
                tasks.len(),
                self.filter,
                if self.filtering { "▏" } else { "" }
            )
        };
        let table = Table::new(rows, widths)
            .header(
                Row::new([
                    "id",
                    "model",
                    "status",
                    "gas",
                    "fee",
                    "latency",
                    "proof",
                    "exec",
                    "verified by",
                ])
                .style(t.dim()),
            )
            .block(self.panel_block(Panel::Tasks, title));
        self.table(Panel::Tasks, area, buf, table);
    }

    fn blocks(&self, area: Rect, buf: &mut Buffer) {
        let t = Theme(self.color);
        let rows = self.data.blocks.iter().map(|b| {
            Row::new(vec![
                b.height.to_string(),
                short(&b.hash, 8),
                format!("{}+{}", b.submitted, b.completed),
                b.proposer.to_string(),
            ])
        });
        let widths = [
            Constraint::Length(6),
            Constraint::Length(8),
            Constraint::Length(5),
            Constraint::Min(4),
        ];
        let table = Table::new(rows, widths)
            .header(Row::new(["height", "hash", "tasks", "prop"]).style(t.dim()))
            .block(self.panel_block(Panel::Blocks, " Blocks ".into()));
        self.table(Panel::Blocks, area, buf, table);
    }

    fn models(&self, area: Rect, buf: &mut Buffer) {
        let t = Theme(self.color);
        let rows = self.data.models.iter().map(|m| {
            Row::new(vec![
                format!("{} {}", m.name, m.version),
                m.k.to_string(),
                m.gas.to_string(),
            ])
        });
        let widths = [
            Constraint::Min(10),
            Constraint::Length(3),
            Constraint::Length(8),
        ];
        let table = Table::new(rows, widths)
            .header(Row::new(["model", "k", "gas/task"]).style(t.dim()))
            .block(self.panel_block(Panel::Models, " Models ".into()));
        self.table(Panel::Models, area, buf, table);
    }

    fn charts(&self, area: Rect, buf: &mut Buffer) {
        let t = Theme(self.color);
        let block = Block::bordered().title(" Charts ").border_style(t.dim());
        let inner = block.inner(area);
        block.render(area, buf);
        let d = &self.data;
        let last = |v: &[u64]| v.last().map_or("-".into(), |x| x.to_string());
        let series: [(&str, &[u64], String, Color); 3] = [
            ("latency ms", &d.latency, last(&d.latency), Color::Cyan),
            ("gas", &d.gas, last(&d.gas), Color::Magenta),
            (
                "tasks/block",
                &d.tasks_per_block,
                last(&d.tasks_per_block),
                Color::Green,
            ),
        ];
        let each = (inner.height / 3).max(1);
        for (i, (name, data, now, color)) in series.into_iter().enumerate() {
            let y = inner.y + i as u16 * each;
            if y >= inner.bottom() {
                break;
            }
            let h = each.min(inner.bottom() - y);
            let label_w = 18.min(inner.width);
            let label = Rect {
                x: inner.x,
                y,
                width: label_w,
                height: 1,
            };
            Paragraph::new(format!("{name} {now}"))
                .style(t.dim())
                .render(label, buf);
            let chart = Rect {
                x: inner.x + label_w,
                y,
                width: inner.width - label_w,
                height: h,
            };
            let shown = &data[data.len().saturating_sub(chart.width as usize)..];
            Sparkline::default()
                .data(shown)
                .style(t.fg(color))
                .render(chart, buf);
        }
    }

    fn status_line(&self) -> Line<'static> {
        let t = Theme(self.color);
        let keys = if self.data.dev_controls {
            "tab ↑↓ enter / p ? q · k r x b s"
        } else {
            "tab ↑↓ enter / p ? q"
        };
        Line::from(vec![
            Span::styled(format!(" {keys} "), t.dim()),
            Span::raw(format!("│ {}", self.status)),
        ])
    }

    fn detail_text(&self, d: &Detail) -> (String, Vec<String>) {
        let data = &self.data;
        match d {
            Detail::Validator(i) => {
                let lines = data.validators.iter().find(|v| v.index == *i).map_or_else(
                    || vec!["gone".to_string()],
                    |v| {
                        vec![
                            format!("state           {}", v.state),
                            format!("height, round   {}, {}", v.height, opt(v.round)),
                            format!("votes in blocks {}", v.votes),
                            format!("tasks executed  {}", opt(v.tasks_executed)),
                            format!(
                                "mean prove      {}",
                                v.mean_prove_ms.map_or("-".into(), |m| format!("{m:.1} ms"))
                            ),
                            format!("proofs verified {}", v.proofs_verified),
                            format!("penalties       {}", v.penalties),
                            format!("jailed until    {}", opt(v.jailed_until)),
                            format!("stake           {}", v.stake),
                            format!("behaviour       {}", v.behavior.as_deref().unwrap_or("-")),
                        ]
                    },
                );
                (format!(" Validator {i} "), lines)
            }
            Detail::Task(id) => {
                let Some(x) = data.tasks.iter().find(|t| &t.id == id) else {
                    return (" Task ".into(), vec!["gone".into()]);
                };
                let mut lines = vec![
                    format!("id        {}", x.id),
                    format!("model     {} ({}…)", x.model, short(&x.model_id, 16)),
                    format!(
                        "status    {}{}",
                        x.status,
                        x.reason
                            .as_ref()
                            .map_or(String::new(), |r| format!(": {r}"))
                    ),
                    format!("gas, fee  {}, {}", x.gas, x.fee),
                    format!("submitted block {}", x.submitted_height),
                    format!(
                        "latency   {}",
                        x.latency_ms.map_or("-".into(), |l| format!("{l} ms"))
                    ),
                    format!(
                        "proof     {}",
                        x.proof_bytes.map_or("-".into(), |b| format!("{b} bytes"))
                    ),
                    format!(
                        "executor  {}  verified by {:?}",
                        opt(x.executor),
                        x.verifiers
                    ),
                ];
                if let Some(r) = &x.receipt {
                    lines.push(format!("outputs   {}", r["outputs_float"]));
                    lines.push(format!(
                        "block     {} {}",
                        r["block_height"],
                        r["block_hash"].as_str().unwrap_or_default()
                    ));
                    lines.push(format!("public inputs {}", r["public_inputs"]));
                }
                (" Task ".into(), lines)
            }
            Detail::Block(h) => {
                let lines = data.blocks.iter().find(|b| b.height == *h).map_or_else(
                    || vec!["gone".to_string()],
                    |b| {
                        vec![
                            format!("hash      {}", b.hash),
                            format!("time      {} ms", b.timestamp_ms),
                            format!("proposer  {}", b.proposer),
                            format!("txs       {}", b.txs),
                            format!(
                                "tasks     {} submitted, {} completed",
                                b.submitted, b.completed
                            ),
                            format!("signed by {:?}", b.signers),
                        ]
                    },
                );
                (format!(" Block {h} "), lines)
            }
            Detail::Model(id) => {
                let lines = data.models.iter().find(|m| &m.id == id).map_or_else(
                    || vec!["gone".to_string()],
                    |m| {
                        vec![
                            format!("id        {}", m.id),
                            format!("name      {} {}", m.name, m.version),
                            format!("k         {}", m.k),
                            format!("gas/task  {}", m.gas),
                            format!("deployed  at height {}", m.height),
                        ]
                    },
                );
                (" Model ".into(), lines)
            }
        }
    }
}

/// A window in the middle of `area`.
fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn popup(area: Rect, buf: &mut Buffer, title: String, lines: Vec<Line<'static>>, style: Style) {
    let widest = lines.iter().map(Line::width).max().unwrap_or(20);
    let width = (widest.min(200) as u16 + 4).clamp(30, 100).min(area.width);
    // Lines wrap inside the borders: count the rows they take.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines.iter().map(|l| l.width().max(1).div_ceil(inner)).sum();
    let r = centered(area, width, (rows.min(200) as u16).saturating_add(2));
    Clear.render(r, buf);
    Paragraph::new(Text::from(lines))
        .wrap(Wrap { trim: false })
        .block(Block::bordered().title(title).border_style(style))
        .render(r, buf);
}

impl Widget for &App {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let t = Theme(self.color);
        let [head, body, foot] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(area);
        self.header().render(head, buf);
        self.status_line().render(foot, buf);
        let wide = area.width >= 120;
        let vals = self.data.validators.len().clamp(1, 16) as u16 + 3;
        let bottom = if area.height >= 40 { 12 } else { 8 };
        let [top, mid, low] = Layout::vertical([
            Constraint::Length(vals),
            Constraint::Min(5),
            Constraint::Length(bottom),
        ])
        .areas(body);
        if wide {
            let [v, b] =
                Layout::horizontal([Constraint::Percentage(60), Constraint::Percentage(40)])
                    .areas(top);
            self.validators(v, buf);
            self.blocks(b, buf);
            self.tasks(mid, buf);
            let [m, c] =
                Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)])
                    .areas(low);
            self.models(m, buf);
            self.charts(c, buf);
        } else {
            self.validators(top, buf);
            self.tasks(mid, buf);
            let [b, m, c] = Layout::horizontal([
                Constraint::Length(27),
                Constraint::Length(25),
                Constraint::Min(20),
            ])
            .areas(low);
            self.blocks(b, buf);
            self.models(m, buf);
            self.charts(c, buf);
        }
        if let Some(d) = &self.detail {
            let (title, lines) = self.detail_text(d);
            popup(
                body,
                buf,
                title,
                lines.into_iter().map(Line::from).collect(),
                t.accent(),
            );
        }
        if self.help {
            let mut lines: Vec<Line> = KEYS
                .iter()
                .map(|(k, what)| {
                    Line::from(vec![
                        Span::styled(format!("{k:<16}"), t.accent()),
                        Span::raw(what.to_string()),
                    ])
                })
                .collect();
            if !self.data.dev_controls {
                lines.push(Line::from(Span::styled(
                    "fault keys: read-only here (a devnet takes them)",
                    t.dim(),
                )));
            }
            popup(
                body,
                buf,
                " Keys (? or esc closes) ".into(),
                lines,
                t.accent(),
            );
        }
    }
}
