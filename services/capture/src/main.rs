//! otter-capture: arguments, configuration, start-up. No logic lives here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use otter_capture::config::Config;
use otter_capture::{decode_cmd, metrics, run};

#[derive(Parser)]
#[command(
    name = "otter-capture",
    version,
    about = "Binlog capture for otter: MySQL/MariaDB row changes to per-table Kafka topics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Capture the source's binlog into Kafka until stopped (SIGINT/SIGTERM).
    ///
    /// Example: otter-capture run --config services/capture/config.example.toml
    Run {
        /// Configuration file (see config.example.toml).
        #[arg(long)]
        config: PathBuf,
        /// Validate and print the configuration (password redacted), then exit.
        #[arg(long)]
        check_config: bool,
        /// Stop cleanly once everything up to this binlog position (FILE:OFFSET) is
        /// acknowledged, and print a JSON summary (used by loadtest/).
        #[arg(long, value_parser = parse_pos)]
        stop_at: Option<otter_core::SourcePos>,
    },
    /// Print the records recorded binlog files would publish, one JSON envelope per line.
    ///
    /// Example: otter-capture decode mariadb-bin.000001
    Decode(decode_cmd::DecodeArgs),
}

fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if std::env::var("OTTER_LOG_FORMAT").as_deref() == Ok("json") {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn parse_pos(s: &str) -> Result<otter_core::SourcePos, String> {
    otter_core::SourcePos::parse(s).map_err(|e| e.to_string())
}

async fn run_capture(
    config: PathBuf,
    check: bool,
    stop_at: Option<otter_core::SourcePos>,
) -> anyhow::Result<bool> {
    let cfg = Config::load(&config)?;
    if check {
        println!("{}", cfg.redacted());
        return Ok(true);
    }
    let registry = prometheus::Registry::new();
    let metrics = metrics::Metrics::new(&registry)?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        let _ = tx.send(true);
    });
    let stopping = stop_at.is_some();
    match run::run(cfg, metrics, rx, stop_at).await {
        Ok(summary) => {
            if stopping {
                println!("{}", serde_json::to_string(&summary)?);
            }
            Ok(true)
        }
        Err(e) => {
            eprintln!("error: {}", otter_capture::error::chain(&e));
            Ok(false)
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode_cmd::run(&args),
        Command::Run {
            config,
            check_config,
            stop_at,
        } => {
            init_tracing();
            match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(run_capture(config, check_config, stop_at)),
                Err(e) => Err(e.into()),
            }
        }
    };
    match result {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
