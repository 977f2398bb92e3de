//! `chat-bench`: run one load scenario against a chatd server and print its figures.
//!
//! Exit status: 0 when the scenario ran without errors or losses, 1 when it reports any,
//! 2 when it could not run at all.

use std::process::ExitCode;

use chat_bench::{Cli, Scenario, run, scenario::connections};
use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.scenario, Scenario::ConnectionsWorker) {
        return match connections::worker_main().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("chat-bench worker: {error}");
                ExitCode::from(2)
            }
        };
    }
    match run(&cli).await {
        Ok(report) => {
            if cli.common.json {
                println!("{}", report.json());
            } else {
                print!("{}", report.table());
            }
            if report.failures() == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(error) => {
            eprintln!("chat-bench: {error}");
            ExitCode::from(2)
        }
    }
}
