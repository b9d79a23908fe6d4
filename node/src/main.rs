//! The `seco` command. Thin (STYLE.md 14): parses arguments with clap and calls into the
//! library crates. Every error ends the process with a one-line reason and exit code 1.

mod cli;
mod cmd;

use clap::Parser;

fn main() {
    one_malloc_arena();
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

/// Makes glibc's allocator use one heap for all threads, unless the operator chose otherwise
/// with `MALLOC_ARENA_MAX` (docs/operations.md, "Memory"). By default glibc gives threads up to
/// 8 heaps per core, and each keeps its own peak of freed memory: a server's tokio, rayon and
/// arming threads take turns with the same hundreds of MB of garbled tables, so its resident
/// memory grew with every bundle (`cifar-cnn`, 3 servers, 6 bundles: gateway 1072-1098 MiB peak,
/// with one heap 683 MiB, at the same speed). Must run before any thread starts.
fn one_malloc_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets a parameter of the allocator; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
