//! The `flowkit` command line: argument parsing (clap), logging set-up and dispatch to one
//! module per command. Errors are printed as one line (`-v` adds the causes) and give a
//! non-zero exit code; stdout carries only the command's output (`--json` output included),
//! logs and progress go to stderr.

mod db;
mod error;
mod history;
mod okta_settings;
mod progress;
mod run;
mod schedule;
mod signals;
mod sim;
mod tables_cmd;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use tracing_subscriber::EnvFilter;

use self::error::CliError;

const MAIN_EXAMPLES: &str = "\
Examples:
  # Serve a simulated org, then report on it (in another shell):
  flowkit sim --users 5000
  export OKTA_CLIENT_ORGURL=http://127.0.0.1:PORT OKTA_CLIENT_TOKEN=TOKEN
  export OKTA_TESTING_TESTINGDISABLEHTTPSCHECK=true
  flowkit tables import Config config.csv
  flowkit run user-status-report

  flowkit tables show \"User Summary\"
  flowkit history --failed
  flowkit schedule user-status-report --cron \"0 9 * * WED\" --tz Australia/Sydney

Okta settings are read like the Okta SDKs read them: ~/.okta/okta.yaml, then
./.okta/okta.yaml, then OKTA_CLIENT_* environment variables, then flags.";

const RUN_EXAMPLES: &str = "\
Examples:
  OKTA_CLIENT_ORGURL=https://example.okta.com OKTA_CLIENT_TOKEN=... \\
    flowkit run user-status-report
  flowkit run user-status-report --db /var/lib/flowkit --json | jq .counts
  FLOWKIT_MAIL=smtp+starttls://user:pass@smtp.example.com:587 \\
    FLOWKIT_MAIL_FROM='Reports <reports@example.com>' flowkit run user-status-report

Mail (FLOWKIT_MAIL): unset or outbox:DIR (default ./outbox), smtp://host:port,
smtp+starttls://..., smtps://..., graph:, gmail:.
Other Okta settings (OKTA_CLIENT_AUTHORIZATIONMODE=PrivateKey, OKTA_CLIENT_CLIENTID,
OKTA_CLIENT_PRIVATEKEY, OKTA_CLIENT_KID, OKTA_CLIENT_SCOPES, ...) come from the
environment or okta.yaml. An http:// org URL needs OKTA_TESTING_TESTINGDISABLEHTTPSCHECK=true.";

const TABLES_EXAMPLES: &str = "\
Examples:
  flowkit tables list
  flowkit tables show \"User Summary\"
  flowkit tables show \"User Export\" --format csv --limit 10
  flowkit tables import Config Config.csv      # Okta's table CSV, unchanged
  flowkit tables export \"User Export\" users.csv";

const HISTORY_EXAMPLES: &str = "\
Examples:
  flowkit history
  flowkit history --failed --limit 5
  flowkit history --flow \"[helper] Extract All Users\"
  flowkit history show 0194c3a2-7d1e-7b11-9a53-2f0c1e8d4b10";

const SCHEDULE_EXAMPLES: &str = "\
Examples:
  flowkit schedule user-status-report --cron \"0 9 * * WED\" --tz Australia/Sydney
  flowkit schedule user-status-report --cron \"30 2 * * *\" --tz America/New_York --dry-run

Fields: minute hour day-of-month month day-of-week (an optional leading seconds field,
or @daily, @weekly, ...). Local times that do not exist on a daylight-saving change run
later by the gap; times that occur twice run once.";

const SIM_EXAMPLES: &str = "\
Examples:
  flowkit sim --users 5000
  flowkit sim --users 1000000 --listen 127.0.0.1:8080 --rate-limit 600 --fault-rate 0.02
  flowkit sim --users 5000 --seed 7 --truth      # the counts per status, as JSON

The first line on stdout is
  flowkit sim: serving N users at URL token TOKEN
(URL is the word after `at`, TOKEN the last word).";

/// An embeddable flow engine in the style of Okta Workflows, and the User Status Report.
#[derive(Debug, Parser)]
#[command(name = "flowkit", version, after_help = MAIN_EXAMPLES)]
pub struct Cli {
    /// Database directory.
    #[arg(
        long,
        global = true,
        env = "FLOWKIT_DB",
        default_value = "./flowkit.db",
        value_name = "PATH"
    )]
    db: PathBuf,
    /// More log output on stderr (-v info, -vv debug, -vvv trace); errors show their causes.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors on stderr; no progress display.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a flow now.
    #[command(after_help = RUN_EXAMPLES)]
    Run {
        /// The flow to run.
        flow: FlowName,
        /// Print only the outcome as one JSON object on stdout.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        okta: OktaArgs,
        #[command(flatten)]
        mail: MailArgs,
    },
    /// List, show, import and export tables.
    #[command(subcommand, after_help = TABLES_EXAMPLES)]
    Tables(TablesCommand),
    /// List executions, or show one with its helper calls and steps.
    #[command(after_help = HISTORY_EXAMPLES, args_conflicts_with_subcommands = true)]
    History(HistoryArgs),
    /// Run a flow at each fire time of a cron schedule, until SIGINT/SIGTERM.
    #[command(after_help = SCHEDULE_EXAMPLES)]
    Schedule(ScheduleArgs),
    /// Serve a simulated Okta org (Users API) until SIGINT/SIGTERM.
    #[command(after_help = SIM_EXAMPLES)]
    Sim(SimArgs),
}

impl Command {
    /// The command's words without option values (which may hold secrets), e.g.
    /// `flowkit run user-status-report`.
    fn label(&self) -> String {
        let words = match self {
            Command::Run { .. } => "run user-status-report",
            Command::Schedule(_) => "schedule user-status-report",
            Command::Tables(TablesCommand::List) => "tables list",
            Command::Tables(TablesCommand::Show { .. }) => "tables show",
            Command::Tables(TablesCommand::Import { .. }) => "tables import",
            Command::Tables(TablesCommand::Export { .. }) => "tables export",
            Command::History(_) => "history",
            Command::Sim(_) => "sim",
        };
        format!("flowkit {words}")
    }
}

/// The flows the CLI runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FlowName {
    /// `[main] Run User Status Report` and its helpers.
    UserStatusReport,
}

/// Where the Okta org is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub struct OktaArgs {
    /// Okta org URL, e.g. https://example.okta.com.
    #[arg(long, env = "OKTA_CLIENT_ORGURL", value_name = "URL")]
    org_url: Option<String>,
    /// Okta API token (SSWS). Prefer the environment variable: flags show in `ps`.
    #[arg(
        long,
        env = "OKTA_CLIENT_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    token: Option<String>,
}

/// How the report is mailed.
#[derive(Debug, Clone, Args)]
pub struct MailArgs {
    /// Mail connector: outbox:DIR (default ./outbox), smtp://..., smtp+starttls://...,
    /// smtps://..., graph:, gmail:.
    #[arg(
        long,
        env = "FLOWKIT_MAIL",
        hide_env_values = true,
        value_name = "SPEC"
    )]
    mail: Option<String>,
    /// Sender address, e.g. "Reports <reports@example.com>".
    #[arg(long, env = "FLOWKIT_MAIL_FROM", value_name = "ADDRESS")]
    mail_from: Option<String>,
}

#[derive(Debug, Subcommand)]
enum TablesCommand {
    /// List tables with their row counts and columns.
    List,
    /// Print a table's rows.
    Show {
        /// Table name, e.g. "User Summary".
        name: String,
        /// Output format (csv and json include rowId and system.updated).
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
        /// At most N rows (table format: 100 unless given; 0 means all).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Import an Okta table CSV (all rows or none). The report's tables are created if missing.
    Import {
        /// Table name, e.g. Config.
        name: String,
        /// CSV file (`-` reads standard input).
        file: PathBuf,
    },
    /// Export a table as Okta's CSV (to FILE, or stdout).
    Export {
        /// Table name.
        name: String,
        /// Output file; standard output when left out.
        file: Option<PathBuf>,
        /// Write text cells exactly as stored (no `'` before formula-like cells).
        #[arg(long)]
        raw: bool,
    },
}

/// How `tables show` prints rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ShowFormat {
    /// Aligned columns.
    Table,
    /// Okta's CSV format.
    Csv,
    /// A JSON array of row objects.
    Json,
}

#[derive(Debug, Args)]
struct HistoryArgs {
    #[command(subcommand)]
    show: Option<HistoryCommand>,
    /// Only executions of this flow (main or helper), e.g. "[helper] Extract All Users".
    #[arg(long, value_name = "NAME")]
    flow: Option<String>,
    /// Only failed executions.
    #[arg(long)]
    failed: bool,
    /// At most N executions, newest first.
    #[arg(long, value_name = "N", default_value_t = 20)]
    limit: usize,
}

#[derive(Debug, Subcommand)]
enum HistoryCommand {
    /// One execution with its helper calls, steps and streams.
    Show {
        /// Execution id, as `flowkit history` lists it.
        id: String,
    },
}

/// `schedule` arguments.
#[derive(Debug, Args)]
pub struct ScheduleArgs {
    /// The flow to run.
    flow: FlowName,
    /// Cron expression, e.g. "0 9 * * WED".
    #[arg(long, value_name = "EXPR")]
    cron: String,
    /// IANA time zone the expression is read in, e.g. Australia/Sydney.
    #[arg(long, value_name = "ZONE")]
    tz: String,
    /// Print the next five fire times and exit.
    #[arg(long)]
    dry_run: bool,
    /// Compute fire times from this instant instead of now (RFC 3339; for tests).
    #[arg(long, hide = true, value_name = "RFC3339")]
    from: Option<DateTime<Utc>>,
    #[command(flatten)]
    okta: OktaArgs,
    #[command(flatten)]
    mail: MailArgs,
}

/// `sim` arguments.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Number of users.
    #[arg(long, value_name = "N")]
    users: u64,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Seed of the synthetic users and injected faults.
    #[arg(long, value_name = "S", default_value_t = 1)]
    seed: u64,
    /// Requests per minute to /api/v1/users before answering 429 (unlimited if left out).
    #[arg(long, value_name = "PER_MIN")]
    rate_limit: Option<u32>,
    /// Share of requests answered with a 5xx, half 503 and half 500 (0 to 1).
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    fault_rate: f64,
    /// Print the number of users per status as JSON and exit.
    #[arg(long)]
    truth: bool,
    /// Simulated day: each epoch changes some statuses and adds users.
    #[arg(long, value_name = "E", default_value_t = 0)]
    epoch: u64,
    /// API token to accept (the default is a fixed demo token, not a secret).
    #[arg(long, value_name = "TOKEN", default_value = connectors::okta::simulator::DEMO_TOKEN)]
    token: String,
}

/// Parses the arguments, runs the command and turns the result into an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    db::set_command(cli.command.label());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("flowkit: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(&cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("flowkit: error: {}", error.summary());
            if cli.verbose > 0 {
                for cause in error.chain().iter().skip(1) {
                    eprintln!("  caused by: {cause}");
                }
            }
            ExitCode::from(error.exit_code())
        }
    }
}

async fn dispatch(cli: &Cli) -> Result<(), CliError> {
    match &cli.command {
        Command::Run {
            flow,
            json,
            okta,
            mail,
        } => run::run(*flow, &cli.db, okta, mail, *json, cli.quiet).await,
        Command::Tables(command) => tables_cmd::run(command, &cli.db),
        Command::History(args) => match &args.show {
            Some(HistoryCommand::Show { id }) => history::show(&cli.db, id),
            None => history::list(&cli.db, args.flow.as_deref(), args.failed, args.limit),
        },
        Command::Schedule(args) => schedule::run(args, &cli.db, &args.okta, &args.mail).await,
        Command::Sim(args) => sim::run(args).await,
    }
}

/// Logs go to stderr. `RUST_LOG` wins; otherwise `-q` shows errors, the default shows this
/// program's info lines and everyone's warnings, `-v`/`-vv`/`-vvv` show more.
fn init_logging(verbose: u8, quiet: bool) {
    use std::io::IsTerminal;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn,flowkit=info",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => EnvFilter::new(spec),
        _ => EnvFilter::new(default),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(verbose > 0)
        .try_init();
}
