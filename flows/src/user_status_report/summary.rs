//! Counts per status and the comparison with the previous delivered report.
//!
//! This is the arithmetic of the report, kept apart from flows, tables and templates so it can
//! be tested on its own: which rows the report shows, in which order, and how a change is
//! written ("+12", "+3.4%", "new", "—"; never a made-up "0%").

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Every user status the Okta Users API documents, in the order the report lists them.
///
/// The first six are the rows of the original Workflows sample; `PASSWORD_EXPIRED` was missing
/// there. `DEPROVISIONED` is shown below the total, which does not include it.
pub const STATUSES: [&str; 8] = [
    "ACTIVE",
    "PROVISIONED",
    "SUSPENDED",
    "RECOVERY",
    "STAGED",
    "LOCKED_OUT",
    "PASSWORD_EXPIRED",
    "DEPROVISIONED",
];

/// The status that the total leaves out.
pub const DEPROVISIONED: &str = "DEPROVISIONED";

/// The label of the total row, as in the original email.
pub const TOTAL_LABEL: &str = "Total Users*";

/// Footnote that explains what the total counts.
pub const TOTAL_FOOTNOTE: &str = "Does not include deactivated (DEPROVISIONED) users";

/// Number of users per status.
///
/// Always holds the eight documented statuses (zero when no user has one); a status the API
/// adds later is kept under its own name rather than dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StatusCounts(BTreeMap<String, u64>);

impl Default for StatusCounts {
    fn default() -> Self {
        Self::new()
    }
}

impl StatusCounts {
    /// Counts with every documented status at zero.
    pub fn new() -> Self {
        StatusCounts(STATUSES.iter().map(|s| (s.to_string(), 0)).collect())
    }

    /// Builds counts from `(status, n)` pairs; documented statuses that are missing are zero.
    pub fn from_pairs<I, S>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (S, u64)>,
        S: Into<String>,
    {
        let mut counts = Self::new();
        for (status, n) in pairs {
            *counts.0.entry(status.into()).or_insert(0) += n;
        }
        counts
    }

    /// The count of one status (zero when absent).
    pub fn get(&self, status: &str) -> u64 {
        self.0.get(status).copied().unwrap_or(0)
    }

    /// Sets the count of one status.
    pub fn set(&mut self, status: impl Into<String>, n: u64) {
        self.0.insert(status.into(), n);
    }

    /// Every user except DEPROVISIONED ones: the report's "Total Users*".
    pub fn total(&self) -> u64 {
        self.0
            .iter()
            .filter(|(status, _)| status.as_str() != DEPROVISIONED)
            .map(|(_, n)| *n)
            .sum()
    }

    /// Every user, DEPROVISIONED included.
    pub fn all_users(&self) -> u64 {
        self.0.values().sum()
    }

    /// The statuses in report order: the documented ones, then any others by name.
    pub fn statuses(&self) -> Vec<&str> {
        let mut out: Vec<&str> = STATUSES.to_vec();
        out.extend(
            self.0
                .keys()
                .map(String::as_str)
                .filter(|s| !STATUSES.contains(s)),
        );
        out
    }

    /// The underlying map, status to count.
    pub fn as_map(&self) -> &BTreeMap<String, u64> {
        &self.0
    }
}

/// One line of the report: a label with its current and previous figures, already formatted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    /// The status (or group) shown in the first column.
    pub label: String,
    /// Current count, with thousands separators.
    pub current: String,
    /// Previous count, or "—" when there is no previous report.
    pub previous: String,
    /// Absolute change ("+12", "−3", "0"), or "—".
    pub change: String,
    /// Percentage change ("+3.4%"), "new" when the previous count was zero, or "—".
    pub percent: String,
    /// The raw current count.
    pub current_value: u64,
    /// The raw previous count, if there was a previous report.
    pub previous_value: Option<u64>,
}

impl ReportRow {
    /// Compares `current` with `previous` (None: there was no previous report).
    pub fn new(label: impl Into<String>, current: u64, previous: Option<u64>) -> Self {
        ReportRow {
            label: label.into(),
            current: thousands(current),
            previous: previous.map_or_else(|| "—".to_string(), thousands),
            change: previous.map_or_else(|| "—".to_string(), |p| signed_change(current, p)),
            percent: percent_change(current, previous),
            current_value: current,
            previous_value: previous,
        }
    }
}

/// The rows of one report: per status, the total, and what is listed below the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportTable {
    /// One row per status counted in the total, in report order.
    pub rows: Vec<ReportRow>,
    /// The "Total Users*" row.
    pub total: ReportRow,
    /// Rows shown under the total: DEPROVISIONED, then any groupings.
    pub below_total: Vec<ReportRow>,
}

/// A named sum of statuses shown under the total, e.g. "Inactive" = SUSPENDED + LOCKED_OUT.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusGroup {
    /// The label of the row.
    pub label: String,
    /// The statuses it adds up.
    pub statuses: Vec<String>,
}

/// Which rows the report shows: the statuses above the total (all of them, in report order,
/// by default) and the groups below it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportLayout {
    /// The statuses shown, in this order; `None` shows every status. `DEPROVISIONED` is shown
    /// under the total when listed (or by default). The total always counts every user except
    /// DEPROVISIONED ones, shown or not, as its footnote says.
    pub statuses: Option<Vec<String>>,
    /// Rows under the total that add up statuses.
    pub groups: Vec<StatusGroup>,
}

impl ReportTable {
    /// Builds the table with every status and the given groups.
    pub fn build(
        current: &StatusCounts,
        previous: Option<&StatusCounts>,
        groups: &[StatusGroup],
    ) -> Self {
        let layout = ReportLayout {
            statuses: None,
            groups: groups.to_vec(),
        };
        Self::build_for(current, previous, &layout)
    }

    /// Builds the table from the current counts and, if there was one, the previous report's,
    /// with the rows `layout` asks for.
    pub fn build_for(
        current: &StatusCounts,
        previous: Option<&StatusCounts>,
        layout: &ReportLayout,
    ) -> Self {
        let statuses: Vec<&str> = match &layout.statuses {
            Some(list) => list.iter().map(String::as_str).collect(),
            None => {
                let mut all = current.statuses();
                if let Some(prev) = previous {
                    for s in prev.statuses() {
                        if !all.contains(&s) {
                            all.push(s);
                        }
                    }
                }
                all
            }
        };
        let row = |s: &str| ReportRow::new(s, current.get(s), previous.map(|p| p.get(s)));
        let rows = statuses
            .iter()
            .filter(|s| **s != DEPROVISIONED)
            .map(|s| row(s))
            .collect();
        let total = ReportRow::new(
            TOTAL_LABEL,
            current.total(),
            previous.map(StatusCounts::total),
        );
        let mut below_total = Vec::new();
        if statuses.contains(&DEPROVISIONED) {
            below_total.push(row(DEPROVISIONED));
        }
        for group in &layout.groups {
            let sum = |c: &StatusCounts| group.statuses.iter().map(|s| c.get(s)).sum::<u64>();
            below_total.push(ReportRow::new(
                group.label.clone(),
                sum(current),
                previous.map(sum),
            ));
        }
        ReportTable {
            rows,
            total,
            below_total,
        }
    }

    /// Every row in display order: statuses, total, then the rows below the total.
    pub fn all_rows(&self) -> impl Iterator<Item = &ReportRow> {
        self.rows
            .iter()
            .chain(std::iter::once(&self.total))
            .chain(self.below_total.iter())
    }

    /// The table as aligned plain text, for the text part of the email and the terminal.
    pub fn to_text(&self) -> String {
        let header = [
            "User Status",
            "Current",
            "Previous**",
            "Change",
            "Percentage",
        ];
        let cells: Vec<[&str; 5]> = self
            .all_rows()
            .map(|r| {
                [
                    r.label.as_str(),
                    r.current.as_str(),
                    r.previous.as_str(),
                    r.change.as_str(),
                    r.percent.as_str(),
                ]
            })
            .collect();
        let mut widths = header.map(|h| h.chars().count());
        for row in &cells {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |row: &[&str; 5]| {
            let mut out = String::new();
            for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
                let pad = " ".repeat(w - cell.chars().count());
                if i == 0 {
                    out.push_str(cell);
                    out.push_str(&pad);
                } else {
                    out.push_str("  ");
                    out.push_str(&pad);
                    out.push_str(cell);
                }
            }
            out.trim_end().to_string()
        };
        let rule: String = "-".repeat(widths.iter().sum::<usize>() + 2 * (widths.len() - 1));
        let mut text = vec![line(&header), rule.clone()];
        let status_rows = self.rows.len();
        for (i, row) in cells.iter().enumerate() {
            if i == status_rows {
                text.push(rule.clone());
            }
            text.push(line(row));
        }
        text.join("\n")
    }
}

/// `1234567` → `"1,234,567"`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The absolute change, signed: "+12", "−3" (a true minus sign), "0".
pub fn signed_change(current: u64, previous: u64) -> String {
    use std::cmp::Ordering;
    match current.cmp(&previous) {
        Ordering::Greater => format!("+{}", thousands(current - previous)),
        Ordering::Less => format!("−{}", thousands(previous - current)),
        Ordering::Equal => "0".to_string(),
    }
}

/// The percentage change to one decimal place.
///
/// No previous report, or zero before and now: "—". Zero before and some now: "new". The
/// original sample printed "0%" in both cases, which read as "no change".
pub fn percent_change(current: u64, previous: Option<u64>) -> String {
    match previous {
        None => "—".to_string(),
        Some(0) if current == 0 => "—".to_string(),
        Some(0) => "new".to_string(),
        Some(p) => {
            let pct = (current as f64 - p as f64) / p as f64 * 100.0;
            let rounded = (pct * 10.0).round() / 10.0;
            if rounded > 0.0 {
                format!("+{rounded:.1}%")
            } else if rounded < 0.0 {
                format!("−{:.1}%", -rounded)
            } else {
                "0.0%".to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn percent_change_never_claims_zero_for_missing_data() {
        assert_eq!(percent_change(10, None), "—");
        assert_eq!(percent_change(10, Some(0)), "new");
        assert_eq!(percent_change(0, Some(0)), "—");
        assert_eq!(percent_change(110, Some(100)), "+10.0%");
        assert_eq!(percent_change(90, Some(100)), "−10.0%");
        assert_eq!(percent_change(100, Some(100)), "0.0%");
        assert_eq!(percent_change(1, Some(3)), "−66.7%");
        assert_eq!(percent_change(0, Some(5)), "−100.0%");
    }

    #[test]
    fn signed_change_uses_signs() {
        assert_eq!(signed_change(5, 3), "+2");
        assert_eq!(signed_change(3, 5), "−2");
        assert_eq!(signed_change(4, 4), "0");
        assert_eq!(signed_change(2_000, 0), "+2,000");
    }

    #[test]
    fn total_leaves_out_deprovisioned_only() {
        let counts = StatusCounts::from_pairs([
            ("ACTIVE", 10),
            ("DEPROVISIONED", 4),
            ("PASSWORD_EXPIRED", 2),
            ("SOMETHING_NEW", 1),
        ]);
        assert_eq!(counts.total(), 13);
        assert_eq!(counts.all_users(), 17);
        assert_eq!(counts.get("STAGED"), 0);
    }

    #[test]
    fn table_lists_every_status_then_total_then_deprovisioned() {
        let current = StatusCounts::from_pairs([("ACTIVE", 10), ("DEPROVISIONED", 4)]);
        let previous = StatusCounts::from_pairs([("ACTIVE", 8), ("SUSPENDED", 1)]);
        let groups = [StatusGroup {
            label: "Inactive".into(),
            statuses: vec!["SUSPENDED".into(), "LOCKED_OUT".into()],
        }];
        let table = ReportTable::build(&current, Some(&previous), &groups);
        let labels: Vec<&str> = table.rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "ACTIVE",
                "PROVISIONED",
                "SUSPENDED",
                "RECOVERY",
                "STAGED",
                "LOCKED_OUT",
                "PASSWORD_EXPIRED"
            ]
        );
        assert_eq!(table.total.current, "10");
        assert_eq!(table.total.previous, "9");
        assert_eq!(table.total.percent, "+11.1%");
        assert_eq!(table.below_total[0].label, "DEPROVISIONED");
        assert_eq!(table.below_total[0].percent, "new");
        assert_eq!(table.below_total[1].label, "Inactive");
        assert_eq!(table.below_total[1].current, "0");
        assert_eq!(table.below_total[1].previous, "1");
        let suspended = &table.rows[2];
        assert_eq!(
            (suspended.change.as_str(), suspended.percent.as_str()),
            ("−1", "−100.0%")
        );
    }

    #[test]
    fn a_layout_chooses_the_status_rows_but_the_total_counts_everyone() {
        let current = StatusCounts::from_pairs([
            ("ACTIVE", 10),
            ("SUSPENDED", 2),
            ("STAGED", 5),
            ("DEPROVISIONED", 4),
        ]);
        let layout = ReportLayout {
            statuses: Some(vec!["SUSPENDED".into(), "ACTIVE".into()]),
            groups: vec![],
        };
        let table = ReportTable::build_for(&current, None, &layout);
        let labels: Vec<&str> = table.all_rows().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["SUSPENDED", "ACTIVE", TOTAL_LABEL]);
        assert_eq!(table.total.current_value, 17);
    }

    #[test]
    fn first_report_shows_no_previous_figures() {
        let current = StatusCounts::from_pairs([("ACTIVE", 3)]);
        let table = ReportTable::build(&current, None, &[]);
        for row in table.all_rows() {
            assert_eq!(row.previous, "—");
            assert_eq!(row.change, "—");
            assert_eq!(row.percent, "—");
        }
    }

    #[test]
    fn text_table_is_aligned() {
        let current = StatusCounts::from_pairs([("ACTIVE", 12_345), ("STAGED", 7)]);
        let table = ReportTable::build(&current, None, &[]);
        let text = table.to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("User Status"));
        let active = lines.iter().find(|l| l.starts_with("ACTIVE")).unwrap();
        let staged = lines.iter().find(|l| l.starts_with("STAGED")).unwrap();
        // Right-aligned numbers end in the same column.
        let end_of = |line: &str, cell: &str| line.find(cell).unwrap() + cell.len();
        assert_eq!(end_of(active, "12,345"), end_of(staged, " 7"));
        assert!(text.contains("Total Users*"));
    }
}
