//! Parse the command line, run the command, map the outcome to SPEC §1's
//! exit codes: 0 success, 1 fatal (nothing committed), 2 usage, 3 committed
//! with failed sources or too many rejects.

use std::process::ExitCode;

use clap::Parser;
use identify_loader::cli::{Cli, Command};
use identify_loader::config::LoadConfig;
use identify_loader::storage::Stores;
use identify_loader::{Error, pipeline};

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
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(Error::Config(message)) => {
            eprintln!("identify-loader: {message}");
            ExitCode::from(2)
        }
        Err(e) => fatal(&anyhow::Error::from(e)),
    }
}

async fn run(command: Command) -> Result<ExitCode, Error> {
    let stores = Stores::default();
    match command {
        Command::Load(args) => {
            let config = LoadConfig::from_args(&args)?;
            let summary = pipeline::load(&config, &stores).await?;
            println!("{}", serde_json::to_string(&summary).unwrap_or_default());
            let degraded =
                !summary.files_failed.is_empty() || summary.reject_ratio_exceeded(config.max_reject_ratio);
            Ok(ExitCode::from(if degraded { 3 } else { 0 }))
        }
        Command::Run(_) => Err(Error::NotYet("`run` (load, then build-users)")),
        Command::BuildUsers(_) => Err(Error::NotYet("`build-users`")),
        Command::Query(_) => Err(Error::NotYet("`query`")),
    }
}

fn fatal(e: &anyhow::Error) -> ExitCode {
    eprintln!("identify-loader: error: {e:#}");
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
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}
