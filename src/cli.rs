//! The command line of SPEC §1. Doc comments are the help text; every flag
//! also reads an `IDENTIFY_LOADER_…` environment variable.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "identify-loader", version, about = "Loads identify event logs into Parquet tables")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// More logging (-v: debug, -vv: trace). Its environment form is RUST_LOG
    /// (e.g. RUST_LOG=identify_loader=debug), which overrides it.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Only errors on stderr, and no progress bar.
    #[arg(short, long, global = true, env = "IDENTIFY_LOADER_QUIET")]
    pub quiet: bool,

    /// Log lines as human-readable text or JSON (for log collectors).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text, env = "IDENTIFY_LOADER_LOG_FORMAT")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load, then build users (the nightly command).
    Run(LoadArgs),
    /// Append identify events to the `identifies` table.
    Load(LoadArgs),
    /// Rebuild `users` and `identity_map` from `identifies`.
    BuildUsers(BuildArgs),
    /// Run SQL over the warehouse's tables.
    Query(QueryArgs),
    /// List recent committed runs, newest first, like a sync history.
    Runs(InspectArgs),
    /// The columns and types of every table, and when each dynamic column appeared.
    Schema(InspectArgs),
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    #[command(flatten)]
    pub build: BuildArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, env = "IDENTIFY_LOADER_FORMAT")]
    pub format: Format,

    /// How many runs to list.
    #[arg(long, default_value_t = 20, env = "IDENTIFY_LOADER_LIMIT")]
    pub limit: usize,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Source prefixes or globs (local path, file://, s3://, gs://, az://, memory://);
    /// the environment variable takes a comma-separated list.
    #[arg(long, required = true, num_args = 1.., value_name = "URL", env = "IDENTIFY_LOADER_INPUT", value_delimiter = ',')]
    pub input: Vec<String>,

    /// List the objects that would be loaded and those skipped as already loaded; write nothing.
    #[arg(long, env = "IDENTIFY_LOADER_DRY_RUN")]
    pub dry_run: bool,

    #[command(flatten)]
    pub build: BuildArgs,

    /// Longest accepted line; longer lines are rejected `line_too_long`.
    #[arg(long, env = "IDENTIFY_LOADER_MAX_LINE_BYTES", default_value = "1MiB", value_name = "SIZE")]
    pub max_line_bytes: String,

    /// Most dynamic columns in `identifies`; values of further columns are discarded.
    #[arg(long, env = "IDENTIFY_LOADER_MAX_COLUMNS", default_value_t = 1000)]
    pub max_columns: usize,

    /// A message id seen within this window of `received_at` is a duplicate.
    #[arg(long, env = "IDENTIFY_LOADER_DEDUP_WINDOW", default_value = "7days", value_name = "DURATION")]
    pub dedup_window: String,

    /// Set the `email` trait from a user id that is an e-mail address (Customer.io).
    #[arg(long, env = "IDENTIFY_LOADER_EMAIL_FROM_USER_ID")]
    pub email_from_user_id: bool,

    /// Exit 3 when rejected / lines is above this ratio.
    #[arg(long, env = "IDENTIFY_LOADER_MAX_REJECT_RATIO", default_value_t = 1.0)]
    pub max_reject_ratio: f64,

    /// Re-cut source streams into chunks of this many bytes (testing).
    #[arg(long, hide = true, default_value_t = 0, env = "IDENTIFY_LOADER_CHUNK_BYTES")]
    pub chunk_bytes: usize,

    /// Read buffer capacity in bytes (testing).
    #[arg(long, hide = true, default_value_t = 256 * 1024, env = "IDENTIFY_LOADER_BUFFER_BYTES")]
    pub buffer_bytes: usize,

    /// Rows per written record batch (testing).
    #[arg(long, hide = true, default_value_t = 8192, env = "IDENTIFY_LOADER_BATCH_ROWS")]
    pub batch_rows: usize,

    /// Stage every event in the local spill and write the tables once all
    /// are read, the way a load goes when writing as it reads gives up
    /// (testing).
    #[arg(long, hide = true, env = "IDENTIFY_LOADER_THROUGH_SPILL")]
    pub through_spill: bool,
}

#[derive(Debug, Args)]
pub struct BuildArgs {
    /// Where the tables live.
    #[arg(long, env = "IDENTIFY_LOADER_WAREHOUSE", value_name = "URL")]
    pub warehouse: String,

    /// Memory budget of the run; DataFusion spills past it.
    #[arg(long, env = "IDENTIFY_LOADER_MEMORY_LIMIT", default_value = "2GiB", value_name = "SIZE")]
    pub memory_limit: String,

    /// Local folder for spill files (default: the system's temp folder).
    #[arg(long, env = "IDENTIFY_LOADER_SPILL_DIR", value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,

    /// Worker threads (default: all cores).
    #[arg(long, env = "IDENTIFY_LOADER_THREADS")]
    pub threads: Option<usize>,

    /// Retries of a failed request to a remote store (5xx, dropped connection, timeout).
    #[arg(long, env = "IDENTIFY_LOADER_MAX_RETRIES", default_value_t = 10)]
    pub max_retries: usize,

    /// Give up retrying a request after this long.
    #[arg(long, env = "IDENTIFY_LOADER_RETRY_TIMEOUT", default_value = "3min", value_name = "DURATION")]
    pub retry_timeout: String,

    /// Time limit of one request to a remote store.
    #[arg(long, env = "IDENTIFY_LOADER_REQUEST_TIMEOUT", default_value = "30s", value_name = "DURATION")]
    pub request_timeout: String,

    /// The run's start time, RFC 3339 (testing: makes `loaded_at` repeatable).
    #[arg(long, hide = true, env = "IDENTIFY_LOADER_NOW")]
    pub now: Option<String>,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub build: BuildArgs,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table, env = "IDENTIFY_LOADER_FORMAT")]
    pub format: Format,

    /// The SQL to run.
    pub sql: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Csv,
    Json,
}

impl Command {
    pub fn threads(&self) -> Option<usize> {
        self.build_args().threads
    }

    /// The settings every command has.
    pub fn build_args(&self) -> &BuildArgs {
        match self {
            Command::Run(a) | Command::Load(a) => &a.build,
            Command::BuildUsers(b) => b,
            Command::Query(q) => &q.build,
            Command::Runs(i) | Command::Schema(i) => &i.build,
        }
    }
}
