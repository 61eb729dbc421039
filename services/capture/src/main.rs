//! otter-capture: arguments, configuration, start-up. No logic lives here.

use clap::{Parser, Subcommand};

use otter_capture::decode_cmd;

#[derive(Parser)]
#[command(name = "otter-capture", version, about = "Binlog capture for otter")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the records recorded binlog files would publish, one JSON envelope per line.
    ///
    /// Example: otter-capture decode mariadb-bin.000001
    Decode(decode_cmd::DecodeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Decode(args) => decode_cmd::run(&args),
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
