//! The `seco` command. Thin (STYLE.md 14): parses arguments with clap and calls into the
//! library crates. Every error ends the process with a one-line reason and exit code 1.

mod cli;
mod cmd;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(err) = threads(cli.threads).and_then(|()| cmd::dispatch(cli)) {
        // One line: the chain of causes joined, no backtrace.
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

/// Sizes the pool of the garbling and evaluation loops from `--threads` or `SECO_THREADS`, and
/// passes the choice on to child processes (`seco demo` starts `seco node`s).
fn threads(flag: Option<usize>) -> anyhow::Result<()> {
    let env = std::env::var("SECO_THREADS").ok();
    let n = match (flag, env) {
        (Some(0), _) => anyhow::bail!("--threads must be at least 1"),
        (Some(n), _) => n,
        (None, Some(v)) => match v.trim().parse::<usize>() {
            Ok(n) if n >= 1 => n,
            _ => anyhow::bail!("SECO_THREADS must be a number of threads >= 1, got {v:?}"),
        },
        (None, None) => return Ok(()),
    };
    std::env::set_var("SECO_THREADS", n.to_string());
    seco_protocols::set_threads(n).map_err(anyhow::Error::msg)
}
