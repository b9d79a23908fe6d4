//! `seco identity new|show --file F`: a node's Ed25519 key file (mode 0600) and its peer id,
//! which goes into the topology file.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Subcommand;
use seco_runtime::identity;

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Create a new key file and print its peer id.
    New {
        /// The key file to create (mode 0600).
        #[arg(long)]
        file: PathBuf,
        /// Replace an existing key file (the node gets a new peer id).
        #[arg(long)]
        force: bool,
    },
    /// Print the peer id of a key file.
    Show {
        /// The key file.
        #[arg(long)]
        file: PathBuf,
    },
}

pub fn run(cmd: IdentityCommand) -> Result<()> {
    match cmd {
        IdentityCommand::New { file, force } => {
            if file.exists() && !force {
                bail!(
                    "{} exists already (its peer id is in use; pass --force to replace it)",
                    file.display()
                );
            }
            let key = identity::generate();
            identity::save(&file, &key)?;
            println!("{}", identity::peer_id(&key));
        }
        IdentityCommand::Show { file } => {
            let key = identity::load(&file)?;
            println!("{}", identity::peer_id(&key));
        }
    }
    Ok(())
}
