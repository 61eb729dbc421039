//! otter-apply: arguments, configuration, start-up. No logic lives here.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use otter_apply::config::Config;
use otter_apply::{metrics, run, verify};

// Apply allocates a row tree per record (the JSON envelope); the system allocator
// spent ~25% of apply's CPU in malloc/free (perf, loadtest/RESULTS.md).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "otter-apply",
    version,
    about = "Applies otter's per-table Kafka topics to a MySQL/MariaDB target, exactly once"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume the pipeline's topics and apply them until stopped (SIGINT/SIGTERM).
    ///
    /// Example: otter-apply run --config services/apply/config.example.toml
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
    },
    /// Serve a pipeline defined in ZooKeeper (`otterctl pipeline create`): join its
    /// consumer group, apply while it runs, follow pause, resume and definition
    /// changes. Run several to share the partitions.
    ///
    /// Example: otter-apply serve --pipeline orders --zookeeper 127.0.0.1:2181
    Serve(otter_coord::control::ServeArgs),
    /// Compare source and target tables: row counts, per-chunk checksums by primary
    /// key (a multiset for tables without one); prints the differing keys.
    /// Exit status 0 = identical, 1 = differences, 2 = could not compare.
    ///
    /// Example: otter-apply verify --source mysql://otter:otter@127.0.0.1:3307
    ///          --target mysql://otter:otter@127.0.0.1:3308 --tables 'shop\..*'
    Verify(verify::VerifyArgs),
}

async fn run_apply(config: PathBuf, check: bool, metrics_listen: String) -> anyhow::Result<bool> {
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
    let hooks = run::Hooks::default();
    let lag = tokio::spawn(otter_apply::lag::run(
        hooks.beats.clone(),
        std::sync::Arc::new(std::sync::Mutex::new(cfg.source_url.clone())),
        metrics.clone(),
        cfg.pipeline.clone(),
    ));
    let result = run::run_with(cfg, metrics, rx, hooks).await;
    lag.abort();
    match result {
        Ok(()) => Ok(true),
        Err(e) => {
            eprintln!("error: {}", otter_apply::error::chain(&e));
            Ok(false)
        }
    }
}

async fn serve(args: otter_coord::control::ServeArgs) -> anyhow::Result<bool> {
    let settings = args.zk.settings().map_err(anyhow::Error::msg)?;
    let registry = prometheus::Registry::new();
    let metrics = metrics::Metrics::new(&registry)?;
    let endpoint = otter_telemetry::expose(&args.metrics_listen, &registry, &metrics.health)
        .await
        .map_err(anyhow::Error::msg)?;
    let me = args.registration("apply", &endpoint);
    let shutdown = otter_coord::control::shutdown_signal();
    match otter_apply::managed::serve(settings, me, metrics, shutdown).await {
        Ok(()) => Ok(true),
        Err(e) => {
            eprintln!("error: {}", otter_apply::error::chain(&e));
            Ok(false)
        }
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    otter_telemetry::init_tracing();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Run {
            config,
            check_config,
            metrics_listen,
        } => rt
            .block_on(run_apply(config, check_config, metrics_listen))
            .map(u8::from)
            .map(|ok| 1 - ok),
        Command::Serve(args) => rt.block_on(serve(args)).map(u8::from).map(|ok| 1 - ok),
        Command::Verify(args) => rt
            .block_on(verify::run(&args))
            .map_err(|e| anyhow::anyhow!(otter_apply::error::chain(&e))),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}
