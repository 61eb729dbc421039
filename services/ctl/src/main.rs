//! otterctl: the operator's tool for otter's control plane. No replication logic lives
//! here: it reads and writes the topology in ZooKeeper (`otter_coord::topology`) and
//! checks definitions with the services' own configuration code.

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};
use otter_coord::topology::{Desired, Topology};
use otter_coord::zk::ZkArgs;
use otter_coord::{CoordError, Zk};

mod output;
mod position;
mod spec;
mod status;

const EXIT_CODES: &str = "Exit status: 0 done; 1 refused (invalid definition, wrong state, \
concurrent change); 2 bad usage; 3 ZooKeeper unreachable or access denied; 4 no such pipeline.";

#[derive(Parser)]
#[command(
    name = "otterctl",
    version,
    about = "Define, start, pause and inspect otter pipelines (kept in ZooKeeper)",
    after_help = EXIT_CODES
)]
struct Cli {
    #[command(flatten)]
    zk: ZkArgs,
    /// Output format: human-readable tables, or JSON for scripts.
    #[arg(long, short, global = true, value_enum, default_value = "table")]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Define, change and control pipelines.
    #[command(subcommand)]
    Pipeline(PipelineCmd),
    /// Show or set where a pipeline's capture resumes.
    #[command(subcommand)]
    Position(PositionCmd),
    /// Per pipeline: state, active capture and standbys, apply instances and their
    /// partitions, capture position vs the source's head, lag, throughput, last error.
    /// A running pipeline is called STUCK when capture's position stays still while
    /// the source moves on, or an apply instance has records waiting and commits
    /// nothing, for `--stuck-after` seconds.
    ///
    /// Example: otterctl status orders
    Status {
        /// One pipeline (default: all).
        name: Option<String>,
        /// Seconds without progress, while there is work, before STUCK.
        #[arg(long, default_value_t = 30)]
        stuck_after: u64,
    },
    /// Every registered service instance.
    ///
    /// Example: otterctl nodes --output json
    Nodes,
}

#[derive(Subcommand)]
enum PipelineCmd {
    /// Create a pipeline from a TOML or YAML file, checked first (every problem listed).
    ///
    /// Example: otterctl pipeline create -f pipelines/orders.toml --state stopped
    Create {
        /// Definition file (`.yaml`/`.yml` = YAML, else TOML); see
        /// schemas/zookeeper/README.md.
        #[arg(short, long)]
        file: PathBuf,
        /// State to create it in.
        #[arg(long, value_enum, default_value = "running")]
        state: StateArg,
        /// Skip connecting to the source and target.
        #[arg(long)]
        no_check: bool,
    },
    /// List pipelines with their states.
    ///
    /// Example: otterctl pipeline list
    List,
    /// Print a pipeline's definition (TOML; JSON with --output json).
    ///
    /// Example: otterctl pipeline show orders > orders.toml
    Show { name: String },
    /// Change a definition: from a file, or in $EDITOR. Checked like create; services
    /// pick the change up at their next batch boundary.
    ///
    /// Example: otterctl pipeline edit orders -f orders.toml
    Edit {
        name: String,
        /// New definition (default: edit the current one in $EDITOR).
        #[arg(short, long)]
        file: Option<PathBuf>,
        /// Skip connecting to the source and target.
        #[arg(long)]
        no_check: bool,
    },
    /// Pause: capture and apply stop at a committed position and wait.
    ///
    /// Example: otterctl pipeline pause orders
    Pause { name: String },
    /// Run a paused or stopped pipeline from its committed position.
    ///
    /// Example: otterctl pipeline resume orders
    Resume { name: String },
    /// Stop: like pause, and the capture position may then be set.
    ///
    /// Example: otterctl pipeline stop orders
    Stop { name: String },
    /// Delete a stopped pipeline and its stored capture position (target tables and
    /// topics are left alone).
    ///
    /// Example: otterctl pipeline delete orders
    Delete {
        name: String,
        /// Delete even if it is not stopped.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum PositionCmd {
    /// Print the stored capture position.
    ///
    /// Example: otterctl position show orders
    Show { name: String },
    /// Set where capture resumes; only while the pipeline is stopped.
    ///
    /// Example: otterctl position set orders --file-pos mariadb-bin.000012:4
    ///          otterctl position set orders --gtid 0-1-4711
    ///          otterctl position set orders --timestamp 2026-11-25T08:00:00Z
    Set {
        name: String,
        /// A GTID set (MariaDB `d-s-n[,...]`): resume after it.
        #[arg(long, group = "to")]
        gtid: Option<String>,
        /// A binlog file and offset, `file:offset`, at a transaction boundary.
        #[arg(long, group = "to")]
        file_pos: Option<String>,
        /// The first transaction the source committed at or after this time (RFC 3339
        /// or seconds since the epoch), found by reading the source's binlogs.
        #[arg(long, group = "to")]
        timestamp: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum StateArg {
    Running,
    Paused,
    Stopped,
}

impl From<StateArg> for Desired {
    fn from(s: StateArg) -> Desired {
        match s {
            StateArg::Running => Desired::Running,
            StateArg::Paused => Desired::Paused,
            StateArg::Stopped => Desired::Stopped,
        }
    }
}

/// A command's failure: its message and exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn refused(message: impl Into<String>) -> Failure {
        Failure {
            code: 1,
            message: message.into(),
        }
    }

    pub fn invalid(problems: &[String]) -> Failure {
        Failure::refused(format!(
            "the definition is not valid:\n  - {}",
            problems.join("\n  - ")
        ))
    }
}

impl From<CoordError> for Failure {
    fn from(e: CoordError) -> Failure {
        let code = match &e {
            CoordError::Missing { .. } => 4,
            CoordError::Denied { .. } | CoordError::Connect { .. } => 3,
            CoordError::Zk { .. } if e.class() == otter_core::ErrorClass::Transient => 3,
            _ => 1,
        };
        Failure {
            code,
            message: otter_core::error::chain(&e),
        }
    }
}

/// Who is making a change, recorded with it.
fn by() -> String {
    format!("otterctl@{}", otter_coord::topology::hostname())
}

pub struct Ctx {
    pub topo: Topology,
    pub settings: otter_coord::ZkSettings,
    pub format: Format,
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let settings = cli.zk.settings().map_err(|m| Failure {
        code: 2,
        message: m,
    })?;
    let zk = Zk::connect(&settings).await?;
    let ctx = Ctx {
        topo: Topology::new(zk),
        settings,
        format: cli.output,
    };
    match cli.command {
        Command::Pipeline(cmd) => pipeline(&ctx, cmd).await,
        Command::Position(PositionCmd::Show { name }) => position::show(&ctx, &name).await,
        Command::Position(PositionCmd::Set {
            name,
            gtid,
            file_pos,
            timestamp,
        }) => position::set(&ctx, &name, gtid, file_pos, timestamp).await,
        Command::Status { name, stuck_after } => {
            status::status(&ctx, name.as_deref(), stuck_after.saturating_mul(1000)).await
        }
        Command::Nodes => status::nodes(&ctx).await,
    }
}

async fn pipeline(ctx: &Ctx, cmd: PipelineCmd) -> Result<(), Failure> {
    let topo = &ctx.topo;
    match cmd {
        PipelineCmd::Create {
            file,
            state,
            no_check,
        } => {
            let value = spec::read(&file)?;
            let spec = spec::check(value, &ctx.settings, !no_check)
                .await
                .map_err(|p| Failure::invalid(&p))?;
            topo.create_pipeline(&spec, state.into(), &by()).await?;
            output::done(
                ctx,
                &format!(
                    "pipeline {} created ({})",
                    spec.name,
                    Desired::from(state).as_str()
                ),
            );
            Ok(())
        }
        PipelineCmd::List => {
            let mut rows = Vec::new();
            for name in topo.pipelines().await? {
                let state = topo
                    .state(&name)
                    .await?
                    .map(|s| s.desired.as_str().to_owned());
                let description = topo
                    .pipeline(&name)
                    .await?
                    .map(|(s, _)| s.description)
                    .unwrap_or_default();
                rows.push(
                    serde_json::json!({"name": name, "state": state, "description": description}),
                );
            }
            output::rows(ctx, &["name", "state", "description"], rows);
            Ok(())
        }
        PipelineCmd::Show { name } => {
            let (spec, _) = require(topo, &name).await?;
            match ctx.format {
                Format::Json => output::json(&spec),
                Format::Table => print!("{}", spec::render(&spec)),
            }
            Ok(())
        }
        PipelineCmd::Edit {
            name,
            file,
            no_check,
        } => {
            let (old, version) = require(topo, &name).await?;
            let value = match file {
                Some(f) => spec::read(&f)?,
                None => edit_in_editor(&old)?,
            };
            let new = spec::check(value, &ctx.settings, !no_check)
                .await
                .map_err(|p| Failure::invalid(&p))?;
            if new.name != name {
                return Err(Failure::refused(format!(
                    "name: a pipeline cannot be renamed (`{}` -> `{}`); create a new one",
                    name, new.name
                )));
            }
            if new == old {
                output::done(ctx, &format!("pipeline {name} unchanged"));
                return Ok(());
            }
            topo.replace_pipeline(&new, version).await?;
            output::done(
                ctx,
                &format!("pipeline {name} changed; services apply it at their next batch boundary"),
            );
            Ok(())
        }
        PipelineCmd::Pause { name } => set_state(ctx, &name, Desired::Paused).await,
        PipelineCmd::Resume { name } => set_state(ctx, &name, Desired::Running).await,
        PipelineCmd::Stop { name } => set_state(ctx, &name, Desired::Stopped).await,
        PipelineCmd::Delete { name, force } => {
            let state = topo.state(&name).await?;
            if !force
                && state
                    .as_ref()
                    .is_some_and(|s| s.desired != Desired::Stopped)
            {
                return Err(Failure::refused(format!(
                    "pipeline {name} is {}: `otterctl pipeline stop {name}` first (or --force)",
                    state.map_or("", |s| s.desired.as_str())
                )));
            }
            topo.delete_pipeline(&name).await?;
            output::done(ctx, &format!("pipeline {name} deleted"));
            Ok(())
        }
    }
}

async fn require(
    topo: &Topology,
    name: &str,
) -> Result<(otter_coord::topology::PipelineSpec, i32), Failure> {
    topo.pipeline(name).await?.ok_or_else(|| Failure {
        code: 4,
        message: format!("pipeline {name} does not exist (otterctl pipeline list)"),
    })
}

async fn set_state(ctx: &Ctx, name: &str, desired: Desired) -> Result<(), Failure> {
    let old = ctx.topo.set_state(name, desired, &by()).await?;
    if desired == Desired::Running {
        // A resume clears the error that led to the stop, so status shows fresh news.
        ctx.topo.clear_error(name).await?;
    }
    output::done(
        ctx,
        &format!("pipeline {name}: {} -> {}", old.as_str(), desired.as_str()),
    );
    Ok(())
}

fn edit_in_editor(old: &otter_coord::topology::PipelineSpec) -> Result<serde_json::Value, Failure> {
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    let path =
        std::env::temp_dir().join(format!("otterctl-{}-{}.toml", old.name, std::process::id()));
    std::fs::write(&path, spec::render(old))
        .map_err(|e| Failure::refused(format!("cannot write {}: {e}", path.display())))?;
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(&path)
        .status()
        .map_err(|e| Failure::refused(format!("cannot start the editor `{editor}`: {e}")))?;
    if !status.success() {
        return Err(Failure::refused(format!(
            "the editor `{editor}` failed ({status}); nothing changed"
        )));
    }
    let value = spec::read(&path);
    let _ = std::fs::remove_file(&path);
    value
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            std::process::ExitCode::from(f.code)
        }
    }
}
