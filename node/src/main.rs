//! The `seco` command. Thin (STYLE.md 14): parses arguments with clap and calls into the
//! library crates. Every error ends the process with a one-line reason and exit code 1.

mod cli;
mod cmd;

use clap::Parser;

fn main() {
    tune_malloc();
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

/// Tunes glibc's allocator before any thread starts (docs/operations.md, "Memory"); each
/// setting is left alone when the operator chose it with its `MALLOC_*` variable.
///
/// - One heap for all threads (`MALLOC_ARENA_MAX`). By default glibc gives threads up to 8
///   heaps per core, and each keeps its own peak of freed memory: a server's tokio, rayon and
///   arming threads take turns with the same hundreds of MB of garbled tables, so its resident
///   memory grew with every bundle (`cifar-cnn`, 3 servers, 6 bundles: gateway 1072-1098 MiB
///   peak, with one heap 683 MiB, at the same speed).
/// - Blocks up to 64 MiB from the heap, not from `mmap` (`MALLOC_MMAP_THRESHOLD_`), and up to
///   256 MiB of freed heap kept rather than handed back (`MALLOC_TRIM_THRESHOLD_`), grown
///   16 MiB at a time (`MALLOC_TOP_PAD_`). A bundle's garbling allocates and frees the same
///   few-MB buffers for every chunk and round; with glibc's defaults each was mapped, faulted
///   in page by page and unmapped again (11% of a `mnist-mlp` bundle's CPU in the kernel).
///   The 211 MB table buffers of a large model stay mapped and are returned when freed.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    for (var, param, value) in [
        ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, 1),
        ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 64 << 20),
        ("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 256 << 20),
        ("MALLOC_TOP_PAD_", libc::M_TOP_PAD, 16 << 20),
    ] {
        if std::env::var_os(var).is_none() {
            // SAFETY: `mallopt` only sets a parameter of the allocator; no other thread
            // exists yet.
            unsafe {
                libc::mallopt(param, value);
            }
        }
    }
}
