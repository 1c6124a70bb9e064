//! The report email: handlebars templates (HTML and plain text), the chart, and the view model.
//!
//! The default templates are compiled into the crate; [`ReportTemplates::from_files`] loads a
//! user's own. HTML values are escaped by handlebars (`{{value}}`), the text template is rendered
//! without escaping, and both are rendered from the same [`EmailView`] so the two parts always
//! carry the same figures.

use std::path::Path;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use handlebars::Handlebars;
use serde::Serialize;

use super::summary::{ReportRow, ReportTable, DEPROVISIONED, TOTAL_FOOTNOTE};
use crate::Error;

const DEFAULT_HTML: &str = include_str!("../../templates/user_status_report.html.hbs");
const DEFAULT_TEXT: &str = include_str!("../../templates/user_status_report.txt.hbs");

const HTML: &str = "html";
const TEXT: &str = "text";

/// The subject line of the report email.
pub fn subject(org: &str) -> String {
    format!("User Status Report — {org}")
}

/// Formats an instant in the report's time zone, with the zone's abbreviation
/// (`2026-12-02 09:00 AEDT`).
pub fn format_local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// One bar pair of the chart: widths are percentages of the largest count (0 = no bar).
#[derive(Debug, Clone, Serialize)]
pub struct ChartBar {
    /// The status.
    pub label: String,
    /// Current count, formatted.
    pub current: String,
    /// Previous count, formatted ("—" when none).
    pub previous: String,
    /// Width of the current bar in percent of the widest bar.
    pub current_width: u32,
    /// Width of the previous bar in percent of the widest bar.
    pub previous_width: u32,
}

/// Everything a template can use. Field names are the template variables.
#[derive(Debug, Clone, Serialize)]
pub struct EmailView {
    /// The subject line.
    pub subject: String,
    /// The tenant's display name (Config `org`).
    pub org: String,
    /// The logo URL (Config `logo`), if any.
    pub logo: Option<String>,
    /// When this report was generated, in the configured zone.
    pub generated_at: String,
    /// When the previous delivered report was generated, if there was one.
    pub previous_at: Option<String>,
    /// One row per status counted in the total.
    pub rows: Vec<ReportRow>,
    /// The total row.
    pub total: ReportRow,
    /// Rows below the total (DEPROVISIONED, groupings).
    pub below_total: Vec<ReportRow>,
    /// The bar chart, one entry per status.
    pub chart: Vec<ChartBar>,
    /// The footnote on the total.
    pub total_footnote: String,
    /// The footnote on the previous counts.
    pub previous_footnote: String,
    /// The whole table as aligned plain text (for the text template).
    pub table: String,
}

impl EmailView {
    /// Builds the view for one report.
    pub fn new(
        org: &str,
        logo: Option<&str>,
        generated_at: DateTime<Utc>,
        previous_at: Option<DateTime<Utc>>,
        tz: Tz,
        table: &ReportTable,
    ) -> Self {
        let previous_at = previous_at.map(|at| format_local(at, tz));
        let widest = table
            .rows
            .iter()
            .chain(
                table
                    .below_total
                    .iter()
                    .filter(|r| r.label == DEPROVISIONED),
            )
            .flat_map(|r| [r.current_value, r.previous_value.unwrap_or(0)])
            .max()
            .unwrap_or(0);
        let width = |n: u64| -> u32 {
            if n == 0 || widest == 0 {
                0
            } else {
                // At least 1% so that a small non-zero count still shows a bar.
                ((n as f64 / widest as f64 * 100.0).round() as u32).clamp(1, 100)
            }
        };
        let chart = table
            .rows
            .iter()
            .chain(
                table
                    .below_total
                    .iter()
                    .filter(|r| r.label == DEPROVISIONED),
            )
            .map(|r| ChartBar {
                label: r.label.clone(),
                current: r.current.clone(),
                previous: r.previous.clone(),
                current_width: width(r.current_value),
                previous_width: width(r.previous_value.unwrap_or(0)),
            })
            .collect();
        EmailView {
            subject: subject(org),
            org: org.to_string(),
            logo: logo.filter(|l| !l.is_empty()).map(str::to_string),
            generated_at: format_local(generated_at, tz),
            previous_footnote: previous_at
                .clone()
                .unwrap_or_else(|| "no previous report".to_string()),
            previous_at,
            rows: table.rows.clone(),
            total: table.total.clone(),
            below_total: table.below_total.clone(),
            chart,
            total_footnote: TOTAL_FOOTNOTE.to_string(),
            table: table.to_text(),
        }
    }
}

/// The rendered email parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    /// Subject line.
    pub subject: String,
    /// HTML part.
    pub html: String,
    /// Plain-text part.
    pub text: String,
}

/// The HTML and text templates of the report email.
pub struct ReportTemplates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

impl std::fmt::Debug for ReportTemplates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportTemplates").finish_non_exhaustive()
    }
}

impl ReportTemplates {
    /// The templates that ship with flowkit.
    pub fn bundled() -> Result<Self, Error> {
        Self::from_strings(DEFAULT_HTML, DEFAULT_TEXT, "bundled template")
    }

    /// Parses templates given as strings; `origin` names them in errors.
    pub fn from_strings(html: &str, text: &str, origin: &str) -> Result<Self, Error> {
        let mut html_reg = Handlebars::new();
        html_reg.set_strict_mode(true);
        html_reg
            .register_template_string(HTML, html)
            .map_err(|e| Error::Template {
                origin: format!("{origin} (HTML)"),
                message: e.to_string(),
            })?;
        let mut text_reg = Handlebars::new();
        text_reg.set_strict_mode(true);
        text_reg.register_escape_fn(handlebars::no_escape);
        text_reg
            .register_template_string(TEXT, text)
            .map_err(|e| Error::Template {
                origin: format!("{origin} (text)"),
                message: e.to_string(),
            })?;
        let templates = ReportTemplates {
            html: html_reg,
            text: text_reg,
        };
        // Render once with sample data so a template that names an unknown variable fails
        // now, before any user is extracted, not after the run.
        templates.render(&sample_view()).map_err(|e| match e {
            Error::Template { message, .. } => Error::Template {
                origin: origin.to_string(),
                message,
            },
            other => other,
        })?;
        Ok(templates)
    }

    /// Loads a user's templates from files.
    pub fn from_files(html: &Path, text: &Path) -> Result<Self, Error> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| Error::Template {
                origin: p.display().to_string(),
                message: format!("cannot read the template: {e}"),
            })
        };
        let (html_src, text_src) = (read(html)?, read(text)?);
        Self::from_strings(
            &html_src,
            &text_src,
            &format!("{} / {}", html.display(), text.display()),
        )
    }

    /// Renders both parts from one view.
    pub fn render(&self, view: &EmailView) -> Result<RenderedEmail, Error> {
        let html = self.html.render(HTML, view).map_err(|e| Error::Template {
            origin: "HTML template".to_string(),
            message: e.to_string(),
        })?;
        let text = self.text.render(TEXT, view).map_err(|e| Error::Template {
            origin: "text template".to_string(),
            message: e.to_string(),
        })?;
        Ok(RenderedEmail {
            subject: view.subject.clone(),
            html,
            text,
        })
    }
}

fn sample_view() -> EmailView {
    use super::summary::StatusCounts;
    let counts = StatusCounts::from_pairs([("ACTIVE", 2), ("DEPROVISIONED", 1)]);
    let table = ReportTable::build(&counts, Some(&counts), &[]);
    EmailView::new(
        "Example",
        Some("https://example.com/logo.png"),
        DateTime::<Utc>::UNIX_EPOCH,
        Some(DateTime::<Utc>::UNIX_EPOCH),
        Tz::UTC,
        &table,
    )
}

#[cfg(test)]
mod tests {
    use super::super::summary::StatusCounts;
    use super::*;
    use chrono::TimeZone;

    fn view(org: &str, previous: bool) -> EmailView {
        let current =
            StatusCounts::from_pairs([("ACTIVE", 1200), ("STAGED", 3), ("DEPROVISIONED", 7)]);
        let prev = StatusCounts::from_pairs([("ACTIVE", 1000), ("DEPROVISIONED", 7)]);
        let table = ReportTable::build(&current, previous.then_some(&prev), &[]);
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 22, 0, 0).unwrap();
        EmailView::new(
            org,
            Some("https://example.com/logo.png"),
            at,
            previous.then(|| at - chrono::Duration::days(7)),
            "Australia/Sydney".parse().unwrap(),
            &table,
        )
    }

    #[test]
    fn dates_use_the_zone_abbreviation() {
        let at = Utc.with_ymd_and_hms(2026, 12, 1, 22, 0, 0).unwrap();
        assert_eq!(
            format_local(at, "Australia/Sydney".parse().unwrap()),
            "2026-12-02 09:00 AEDT"
        );
        let winter = Utc.with_ymd_and_hms(2026, 7, 1, 23, 0, 0).unwrap();
        assert_eq!(
            format_local(winter, "Australia/Sydney".parse().unwrap()),
            "2026-07-02 09:00 AEST"
        );
    }

    #[test]
    fn html_and_text_carry_the_same_figures() {
        let rendered = ReportTemplates::bundled()
            .unwrap()
            .render(&view("Acme", true))
            .unwrap();
        for needle in [
            "1,200",
            "1,000",
            "+200",
            "+20.0%",
            "new",
            "Total Users*",
            "AEDT",
        ] {
            assert!(rendered.html.contains(needle), "HTML lacks {needle}");
            assert!(rendered.text.contains(needle), "text lacks {needle}");
        }
        assert_eq!(rendered.subject, "User Status Report — Acme");
    }

    #[test]
    fn every_value_is_escaped_in_html_but_not_in_text() {
        let rendered = ReportTemplates::bundled()
            .unwrap()
            .render(&view("<script>alert(1)</script>", false))
            .unwrap();
        assert!(!rendered.html.contains("<script>"));
        assert!(rendered.html.contains("&lt;script&gt;"));
        assert!(rendered.text.contains("<script>alert(1)</script>"));
    }

    #[test]
    fn html_markup_is_balanced() {
        let rendered = ReportTemplates::bundled()
            .unwrap()
            .render(&view("Acme", true))
            .unwrap();
        assert_balanced(&rendered.html);
    }

    #[test]
    fn broken_user_template_is_a_clear_error() {
        let err = ReportTemplates::from_strings("{{#each rows}}", "ok", "my.hbs").unwrap_err();
        assert!(err.to_string().contains("my.hbs"), "{err}");
        let err = ReportTemplates::from_strings("{{no_such_field}}", "ok", "mine").unwrap_err();
        assert!(err.to_string().contains("no_such_field"), "{err}");
    }

    /// Checks that every opened element is closed in order (void elements excepted).
    pub(crate) fn assert_balanced(html: &str) {
        const VOID: [&str; 6] = ["meta", "img", "br", "hr", "link", "input"];
        let mut stack: Vec<String> = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            rest = &rest[start + 1..];
            let end = rest.find('>').expect("unclosed tag");
            let tag = &rest[..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') {
                continue;
            }
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_ascii_lowercase();
            if VOID.contains(&name.as_str()) || tag.ends_with('/') {
                continue;
            }
            if tag.starts_with('/') {
                let open = stack.pop().unwrap_or_else(|| panic!("stray </{name}>"));
                assert_eq!(open, name, "</{name}> closes <{open}>");
            } else {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }
}
