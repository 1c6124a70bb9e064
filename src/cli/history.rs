//! `flowkit history` and `flowkit history show ID`: executions as Okta's flow history lists
//! them, and one run's tree of helper calls, steps and streams.

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Local, Utc};
use flow_core::{
    ExecutionId, ExecutionRecord, ExecutionTree, History, Status, StepOutcome, Trigger,
};

use super::db;
use super::error::{one_line, CliError};

/// `history [--flow NAME] [--failed] [--limit N]`.
pub fn list(db_dir: &Path, flow: Option<&str>, failed: bool, limit: usize) -> Result<(), CliError> {
    let store = db::open_existing(db_dir)?;
    let history = History::new(&store)?;
    let records = match (flow, failed) {
        (None, false) => history.recent_main(limit)?,
        (None, true) => history.failed(limit)?,
        (Some(flow), false) => history.by_flow(flow, limit)?,
        (Some(flow), true) => history
            .by_flow(flow, usize::MAX)?
            .into_iter()
            .filter(|r| r.status == Status::Failed)
            .take(limit)
            .collect(),
    };
    let mut out = std::io::stdout().lock();
    let text = if records.is_empty() {
        "no executions recorded\n".to_owned()
    } else {
        list_text(&records)
    };
    out.write_all(text.as_bytes()).map_err(stdout_error)
}

/// The listing: one line per execution, and the error under each failed one.
pub fn list_text(records: &[ExecutionRecord]) -> String {
    let flow_width = records
        .iter()
        .map(|r| r.flow.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut text = format!(
        "  {:<19}  {:<flow_width$}  {:<9}  {:>9}  ID\n",
        "STARTED", "FLOW", "STATUS", "DURATION"
    );
    for record in records {
        let mark = if is_failure(record.status) {
            "✗"
        } else {
            " "
        };
        text.push_str(&format!(
            "{mark} {:<19}  {:<flow_width$}  {:<9}  {:>9}  {}\n",
            local_time(record.started_at),
            record.flow,
            status_name(record.status),
            duration_text(record),
            record.id
        ));
        if let Some(error) = record.error.as_ref().filter(|e| !e.is_empty()) {
            text.push_str(&format!("      {}\n", error_line(error)));
        }
    }
    text
}

/// `history show ID`.
pub fn show(db_dir: &Path, id: &str) -> Result<(), CliError> {
    let parsed: ExecutionId = id
        .trim()
        .parse()
        .map_err(|_| CliError::BadExecutionId(id.to_owned()))?;
    let store = db::open_existing(db_dir)?;
    let history = History::new(&store)?;
    let tree = history.tree(parsed)?.ok_or_else(|| CliError::NoExecution {
        id: id.to_owned(),
        db: db_dir.to_path_buf(),
    })?;
    let mut text = String::new();
    tree_text(&tree, 0, &mut text);
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(stdout_error)
}

/// One execution and, indented below it, its steps, streams and helper calls.
pub fn tree_text(tree: &ExecutionTree, depth: usize, text: &mut String) {
    let pad = "    ".repeat(depth);
    let r = &tree.record;
    let mark = if is_failure(r.status) { "✗ " } else { "" };
    text.push_str(&format!(
        "{pad}{mark}{} — {} in {} ({}, started {})\n",
        r.flow,
        status_name(r.status),
        duration_text(r),
        trigger_text(&r.trigger),
        local_time(r.started_at)
    ));
    text.push_str(&format!("{pad}  id {}\n", r.id));
    if let Some(error) = r.error.as_ref().filter(|e| !e.is_empty()) {
        text.push_str(&format!("{pad}  error: {}\n", one_line(&error[0])));
        for cause in &error[1..] {
            text.push_str(&format!("{pad}    caused by: {}\n", one_line(cause)));
        }
    }
    for step in &r.steps {
        let (mark, detail) = match &step.outcome {
            StepOutcome::Succeeded => ("✓", String::new()),
            StepOutcome::Failed { error } => ("✗", format!(": {}", error_line(error))),
            _ => ("?", String::new()),
        };
        let attempts = if step.attempts > 1 {
            format!(", {} attempts", step.attempts)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "{pad}  {mark} step {} ({}{attempts}){detail}\n",
            step.name,
            short_duration(Duration::from_millis(step.duration_ms))
        ));
    }
    if r.steps_dropped > 0 {
        text.push_str(&format!(
            "{pad}  … {} more steps not recorded\n",
            r.steps_dropped
        ));
    }
    for stream in &r.streams {
        text.push_str(&format!(
            "{pad}  ⇉ stream to {}: {} item{}, {} failed, {} executions ({})\n",
            stream.helper,
            stream.processed,
            if stream.processed == 1 { "" } else { "s" },
            stream.failed,
            stream.executions,
            short_duration(Duration::from_millis(stream.duration_ms))
        ));
        for failure in &stream.first_errors {
            text.push_str(&format!(
                "{pad}      item {}: {}\n",
                failure.index,
                error_line(&failure.error)
            ));
        }
        if let Some(stopped) = &stream.stopped {
            text.push_str(&format!("{pad}      stopped: {stopped}\n"));
        }
    }
    for child in &tree.children {
        tree_text(child, depth + 1, text);
    }
}

fn stdout_error(source: std::io::Error) -> CliError {
    CliError::Write {
        path: "standard output".into(),
        source,
    }
}

fn is_failure(status: Status) -> bool {
    matches!(status, Status::Failed | Status::Cancelled)
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Running => "Running",
        Status::Succeeded => "Succeeded",
        Status::Failed => "Failed",
        Status::Cancelled => "Cancelled",
        Status::Skipped => "Skipped",
        _ => "Unknown",
    }
}

fn trigger_text(trigger: &Trigger) -> String {
    match trigger {
        Trigger::Manual => "manual".to_owned(),
        Trigger::Call => "called".to_owned(),
        Trigger::Schedule { fire_time } => format!("scheduled for {}", local_time(*fire_time)),
        _ => "other trigger".to_owned(),
    }
}

/// An error chain on one line: the outermost message and the root cause.
fn error_line(chain: &[String]) -> String {
    match chain {
        [] => String::new(),
        [one] => one_line(one),
        [first, .., last] if first.contains(last.as_str()) => one_line(first),
        [first, .., last] => format!("{}: {}", one_line(first), one_line(last)),
    }
}

fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn duration_text(record: &ExecutionRecord) -> String {
    match record.duration() {
        Some(d) => short_duration(d),
        None if record.status == Status::Running => "running".to_owned(),
        None => "—".to_owned(),
    }
}

/// `850ms`, `4.2s`, `3m 05s`, `1h 02m`.
pub fn short_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        format!("{}m {:02}s", d.as_secs() / 60, d.as_secs() % 60)
    } else {
        format!("{}h {:02}m", d.as_secs() / 3600, (d.as_secs() % 3600) / 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_okta_history() {
        assert_eq!(short_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(short_duration(Duration::from_millis(4_250)), "4.2s");
        assert_eq!(short_duration(Duration::from_secs(185)), "3m 05s");
        assert_eq!(short_duration(Duration::from_secs(3_720)), "1h 02m");
    }

    #[test]
    fn error_line_keeps_outermost_and_root() {
        let chain = vec![
            "[helper] Extract All Users failed".to_owned(),
            "step 'List users' failed".to_owned(),
            "Okta answered 401".to_owned(),
        ];
        assert_eq!(
            error_line(&chain),
            "[helper] Extract All Users failed: Okta answered 401"
        );
        assert_eq!(error_line(&chain[2..]), "Okta answered 401");
        let multi_line = vec!["invalid Config (2 problems):\n  - row a\n  - row b".to_owned()];
        assert_eq!(
            error_line(&multi_line),
            "invalid Config (2 problems): - row a - row b"
        );
    }
}
