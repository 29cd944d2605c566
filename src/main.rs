//! Parse the command line, run the command, map the outcome to SPEC §1's
//! exit codes: 0 success, 1 fatal (nothing committed), 2 usage, 3 committed
//! with failed sources or too many rejects.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use identify_loader::cli::{Cli, Command, LogFormat};

use identify_loader::config::{LoadConfig, WarehouseConfig, store_options};
use identify_loader::pipeline::users::build_users;
use identify_loader::query::query;
use identify_loader::storage::Stores;
use identify_loader::summary::Summary;
use identify_loader::{Error, inspect, pipeline};

// Parsing allocates many small strings; mimalloc is much faster at that
// than the system allocator (see the profile in the README).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli);
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.command.threads() {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = match runtime.enable_all().build() {
        Ok(r) => r,
        Err(e) => return fatal(&anyhow::Error::from(e)),
    };
    match runtime.block_on(run(cli.command, cli.quiet)) {
        Ok(code) => code,
        Err(Error::Config(message)) => {
            eprintln!("identify-loader: {message}");
            ExitCode::from(2)
        }
        Err(Error::Query(message)) => {
            eprintln!("identify-loader: {message}");
            ExitCode::from(1)
        }
        Err(e) => fatal(&anyhow::Error::from(e)),
    }
}

async fn run(command: Command, quiet: bool) -> Result<ExitCode, Error> {
    let stores = Stores::new(store_options(command.build_args())?);
    let threads =
        command.threads().unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
    let started = Instant::now();
    match command {
        Command::Load(args) | Command::Run(args) if args.dry_run => {
            let config = LoadConfig::from_args(&args)?;
            let summary = pipeline::dry_run(&config, &stores).await?;
            print_summary(&summary);
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(args) => {
            let config = LoadConfig { progress: !quiet, ..LoadConfig::from_args(&args)? };
            let summary = pipeline::load(&config, &stores).await?;
            Ok(finish(&summary, &config))
        }
        Command::Run(args) => {
            let config = LoadConfig { progress: !quiet, ..LoadConfig::from_args(&args)? };
            let summary = pipeline::run(&config, &stores, threads).await?;
            Ok(finish(&summary, &config))
        }
        Command::Runs(args) => {
            let config = WarehouseConfig::from_args(&args.build)?;
            let warehouse = pipeline::open_warehouse(&stores, &config.warehouse).await?;
            inspect::runs(&warehouse, args.limit, args.format).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema(args) => {
            let config = WarehouseConfig::from_args(&args.build)?;
            let warehouse = pipeline::open_warehouse(&stores, &config.warehouse).await?;
            inspect::schema(&warehouse, args.format).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::BuildUsers(args) => {
            let config = WarehouseConfig::from_args(&args)?;
            let warehouse = pipeline::open_warehouse(&stores, &config.warehouse).await?;
            let users = build_users(&config, &warehouse, threads).await?;
            let summary = Summary {
                run_id: pipeline::run_id(config.now),
                users: Some(users),
                elapsed_s: started.elapsed().as_secs_f64(),
                ..Summary::default()
            };
            print_summary(&summary);
            Ok(ExitCode::SUCCESS)
        }
        Command::Query(args) => {
            let config = WarehouseConfig::from_args(&args.build)?;
            let warehouse = pipeline::open_warehouse(&stores, &config.warehouse).await?;
            query(&config, &warehouse, threads, &args.sql, args.format).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The summary, as the last line on stdout (a closed pipe is not an error).
fn print_summary(summary: &Summary) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{}", serde_json::to_string(summary).unwrap_or_default());
}

/// Prints the summary and picks the exit code: 3 when committed with
/// failed sources or too many rejects.
fn finish(summary: &Summary, config: &LoadConfig) -> ExitCode {
    print_summary(summary);
    let degraded = !summary.files_failed.is_empty() || summary.reject_ratio_exceeded(config.max_reject_ratio);
    ExitCode::from(if degraded { 3 } else { 0 })
}

/// One line with the cause chain, skipping a cause whose text the message
/// before it already holds (object_store's errors include their source).
fn fatal(e: &anyhow::Error) -> ExitCode {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !line.contains(&text) {
            if !line.is_empty() {
                line.push_str(": ");
            }
            line.push_str(&text);
        }
    }
    eprintln!("identify-loader: error: {}", line.replace('\n', " "));
    ExitCode::from(1)
}

fn init_logging(cli: &Cli) {
    use tracing_subscriber::EnvFilter;
    let default = match (cli.quiet, cli.verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let logs = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
}
