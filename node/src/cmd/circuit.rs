//! `seco circuit run`: garble and evaluate a Bristol circuit with N parties in one process.
//!
//! Engines: `plain` (no cryptography), `halfgates` (2 parties: party 0 garbles, party 1
//! evaluates), `bmr` (N garblers; party N-1 evaluates, party 0 learns the outputs). Without
//! `--engine`: 1 party is plain, 2 are half-gates, 3 or more are BMR. Input value i (one
//! `--input HEX` per input of the circuit, big-endian hex, see `seco_protocols::circuit::bits`)
//! belongs to party `i mod N`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, Subcommand, ValueEnum};
use rand::rngs::StdRng;
use rand::SeedableRng;
use seco_protocols::bmr::{driver, owners_round_robin, BmrConfig};
use seco_protocols::circuit::{bits, bristol, Circuit};
use seco_protocols::gc::{protocol::Side, run_two_party};

#[derive(Debug, Subcommand)]
pub enum CircuitCommand {
    /// Garble and evaluate a circuit in-process; print the outputs, gate counts and traffic.
    Run(RunArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FormatArg {
    /// The old Bristol format.
    Bristol,
    /// Bristol Fashion.
    Fashion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Engine {
    Plain,
    Halfgates,
    Bmr,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The circuit file.
    #[arg(long)]
    pub circuit: PathBuf,
    /// File format (detected when absent).
    #[arg(long, value_enum)]
    pub format: Option<FormatArg>,
    /// Number of parties.
    #[arg(long, default_value_t = 2)]
    pub parties: usize,
    /// Engine (default from --parties: 1 plain, 2 halfgates, 3+ bmr).
    #[arg(long, value_enum)]
    pub engine: Option<Engine>,
    /// One hex value per circuit input, in order.
    #[arg(long = "input", value_name = "HEX")]
    pub inputs: Vec<String>,
    /// Seed for a reproducible run (default: OS randomness).
    #[arg(long)]
    pub seed: Option<u64>,
}

pub fn run(cmd: CircuitCommand) -> anyhow::Result<()> {
    match cmd {
        CircuitCommand::Run(args) => run_circuit(&args),
    }
}

fn run_circuit(args: &RunArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.circuit)
        .with_context(|| format!("reading {}", args.circuit.display()))?;
    let format = args.format.map(|f| match f {
        FormatArg::Bristol => bristol::Format::Old,
        FormatArg::Fashion => bristol::Format::Fashion,
    });
    let circuit = bristol::read(&text, format)
        .with_context(|| format!("parsing {}", args.circuit.display()))?;
    let groups = circuit.input_groups();
    if args.inputs.len() != groups.len() {
        bail!(
            "the circuit has {} inputs ({:?} bits), got {} --input values",
            groups.len(),
            groups,
            args.inputs.len()
        );
    }
    let mut flat = Vec::with_capacity(circuit.num_inputs());
    for (i, (hex, &n)) in args.inputs.iter().zip(groups).enumerate() {
        flat.extend(bits::hex_to_bits(hex, n as usize).with_context(|| format!("input {i}"))?);
    }
    if args.parties == 0 {
        bail!("--parties must be at least 1");
    }
    let engine = args.engine.unwrap_or(match args.parties {
        1 => Engine::Plain,
        2 => Engine::Halfgates,
        _ => Engine::Bmr,
    });
    let mut rng = match args.seed {
        Some(s) => StdRng::seed_from_u64(s),
        None => StdRng::from_os_rng(),
    };
    let traffic = match engine {
        Engine::Plain => {
            print_outputs(&circuit, &circuit.eval_plain(&flat)?);
            "bytes exchanged: 0 (plain evaluation)".to_string()
        }
        Engine::Halfgates => {
            if args.parties != 2 {
                bail!(
                    "the halfgates engine runs exactly 2 parties, got --parties {}",
                    args.parties
                );
            }
            let owners: Vec<Side> = owners_round_robin(groups, 2)
                .into_iter()
                .map(|p| {
                    if p == 0 {
                        Side::Garbler
                    } else {
                        Side::Evaluator
                    }
                })
                .collect();
            let split = |side| {
                flat.iter()
                    .zip(&owners)
                    .filter(|(_, &o)| o == side)
                    .map(|(&b, _)| b)
                    .collect::<Vec<_>>()
            };
            let (out, bytes) = run_two_party(
                &mut rng,
                &circuit,
                &owners,
                &split(Side::Garbler),
                &split(Side::Evaluator),
            )?;
            print_outputs(&circuit, &out);
            format!(
                "bytes exchanged: garbler {} B, evaluator {} B, total {} B",
                bytes[0],
                bytes[1],
                bytes[0] + bytes[1]
            )
        }
        Engine::Bmr => {
            let n = args.parties;
            let cfg = BmrConfig::new(
                [0; 16],
                &circuit,
                n,
                n - 1,
                owners_round_robin(groups, n),
                vec![0; circuit.num_outputs()],
            )?;
            let (out, off, on) =
                driver::run(&mut rng, &cfg, &circuit, &driver::split_inputs(&cfg, &flat))?;
            print_outputs(&circuit, &out);
            format!(
                "bytes exchanged: offline {} B (per party {:?}, {:.1} B per AND per party), online {} B (per party {:?}); evaluator: party {}, outputs to party 0",
                off.total(),
                off.bytes_sent,
                off.total() as f64 / circuit.counts().and.max(1) as f64 / n as f64,
                on.total(),
                on.bytes_sent,
                n - 1
            )
        }
    };
    let c = circuit.counts();
    println!("engine: {engine:?}, parties: {}", args.parties);
    println!(
        "gates: {} AND, {} XOR, {} INV, {} other ({} total, {} wires)",
        c.and,
        c.xor,
        c.inv,
        c.other,
        c.total(),
        circuit.num_wires()
    );
    println!("{traffic}");
    Ok(())
}

fn print_outputs(circuit: &Circuit, out: &[bool]) {
    for (i, group) in Circuit::split_groups(out, circuit.output_groups())
        .into_iter()
        .enumerate()
    {
        println!("output {i}: {}", bits::bits_to_hex(group));
    }
}
