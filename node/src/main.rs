//! The `seco` command. Thin (STYLE.md 14): parses arguments with clap and calls into the
//! library crates. Every error ends the process with a one-line reason and exit code 1.

mod cli;
mod cmd;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(err) = cmd::dispatch(cli) {
        // One line: the chain of causes joined, no backtrace.
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}
