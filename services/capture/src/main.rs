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
        /// Where to serve /metrics, /healthz and /readyz (`host:port`; port 0 = any free
        /// port, logged and shown by `otterctl nodes`).
        #[arg(long, default_value = "127.0.0.1:0")]
        metrics_listen: String,
        /// Stop cleanly once everything up to this binlog position (FILE:OFFSET) is
        /// acknowledged, and print a JSON summary (used by loadtest/).
        #[arg(long, value_parser = parse_pos)]
        stop_at: Option<otter_core::SourcePos>,
    },
    /// Serve a pipeline defined in ZooKeeper (`otterctl pipeline create`): contend for
    /// its capture, capture while elected, stand by otherwise; follow pause, resume and
    /// definition changes. Run several for hot standbys.
    ///
    /// Example: otter-capture serve --pipeline orders --zookeeper 127.0.0.1:2181
    Serve(otter_coord::control::ServeArgs),
    /// Print the records recorded binlog files would publish, one JSON envelope per line.
    ///
    /// Example: otter-capture decode mariadb-bin.000001
    Decode(decode_cmd::DecodeArgs),
}

async fn serve(args: otter_coord::control::ServeArgs) -> anyhow::Result<bool> {
    let settings = args.zk.settings().map_err(anyhow::Error::msg)?;
    let registry = prometheus::Registry::new();
    let metrics = metrics::Metrics::new(&registry)?;
    let endpoint = otter_telemetry::expose(&args.metrics_listen, &registry, &metrics.health)
        .await
        .map_err(anyhow::Error::msg)?;
    let me = args.registration("capture", &endpoint);
    match otter_capture::managed::serve(
        settings,
        me,
        metrics,
        otter_coord::control::shutdown_signal(),
    )
    .await
    {
        Ok(()) => Ok(true),
        Err(e) => {
            eprintln!("error: {}", otter_capture::error::chain(&e));
            Ok(false)
        }
    }
}

fn parse_pos(s: &str) -> Result<otter_core::SourcePos, String> {
    otter_core::SourcePos::parse(s).map_err(|e| e.to_string())
}

async fn run_capture(
    config: PathBuf,
    check: bool,
    stop_at: Option<otter_core::SourcePos>,
    metrics_listen: String,
) -> anyhow::Result<bool> {
    let cfg = Config::load(&config)?;
    if check {
        println!("{}", cfg.redacted());
        return Ok(true);
    }
    let registry = prometheus::Registry::new();
    let metrics = metrics::Metrics::new(&registry)?;
    otter_telemetry::expose(&metrics_listen, &registry, &metrics.health)
        .await
        .map_err(anyhow::Error::msg)?;
    let rx = otter_coord::control::shutdown_signal();
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

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode_cmd::run(&args),
        Command::Run {
            config,
            check_config,
            stop_at,
            metrics_listen,
        } => {
            otter_telemetry::init_tracing();
            runtime().and_then(|rt| {
                rt.block_on(run_capture(config, check_config, stop_at, metrics_listen))
            })
        }
        Command::Serve(args) => {
            otter_telemetry::init_tracing();
            runtime().and_then(|rt| rt.block_on(serve(args)))
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
