//! [`Cluster`]: every node of a topology in one process, each with its own libp2p swarm on
//! 127.0.0.1, its own store and the example identity of its name. Used by the in-process tests
//! and by the examples; `seco demo` runs the same nodes as separate processes instead.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use seco_protocols::model::{Model, QuantModel};
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::SecoError;
use seco_runtime::fault::Faults;
use seco_runtime::store::{MemStore, SledStore, Store};

use super::example_keypair;
use crate::config::Limits;
use crate::error::{ActorError, Result};
use crate::node::{Node, ServerSetup, UserSetup};
use crate::topology::{Role, Topology};

/// Where the nodes of a cluster keep their state.
#[derive(Debug, Clone)]
pub enum StoreKind {
    /// In memory (kept by the cluster, so a restarted node finds it again).
    Memory,
    /// sled, one directory per node under this one.
    Sled(PathBuf),
}

/// Options of a [`Cluster`].
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Stores.
    pub store: StoreKind,
    /// Nodes whose network goes through the fault-injection layer.
    pub faulty: Vec<String>,
    /// Seed of the fault layers.
    pub fault_seed: u64,
    /// Nodes of the topology not to start (a test drives them by hand).
    pub skip: Vec<String>,
    /// Bounds of the server nodes.
    pub limits: Limits,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        Self {
            store: StoreKind::Memory,
            faulty: Vec::new(),
            fault_seed: 0,
            skip: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// A running deployment in one process.
pub struct Cluster {
    /// The topology.
    pub topology: Arc<Topology>,
    /// The model (for references and encoding).
    pub model: Model,
    /// Its fixed-point form.
    pub quant: QuantModel,
    /// The split plan (server order of the topology).
    pub plan: SplitPlan,
    /// Running nodes by name.
    pub nodes: HashMap<String, Node>,
    /// Fault controls of the faulty nodes.
    pub faults: HashMap<String, Faults>,
    stores: HashMap<String, Arc<dyn Store>>,
    opts: ClusterOptions,
}

fn proto<E: Into<SecoError>>(e: E) -> ActorError {
    ActorError::Protocol(e.into())
}

impl Cluster {
    /// Splits `model` over the topology's servers (balanced plan) and starts every node.
    pub async fn start(topology: Topology, model: Model, opts: ClusterOptions) -> Result<Self> {
        let quant = model.quantize().map_err(proto)?;
        let plan = SplitPlan::balanced(&quant, &topology.server_names()).map_err(proto)?;
        let mut c = Self {
            topology: Arc::new(topology),
            model,
            quant,
            plan,
            nodes: HashMap::new(),
            faults: HashMap::new(),
            stores: HashMap::new(),
            opts,
        };
        let names: Vec<String> = c
            .topology
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .filter(|n| !c.opts.skip.contains(n))
            .collect();
        for name in names {
            c.start_node(&name).await?;
        }
        Ok(c)
    }

    fn store(&mut self, name: &str) -> Result<Arc<dyn Store>> {
        if let Some(s) = self.stores.get(name) {
            return Ok(s.clone());
        }
        let s: Arc<dyn Store> = match &self.opts.store {
            StoreKind::Memory => Arc::new(MemStore::new()),
            StoreKind::Sled(dir) => Arc::new(SledStore::open(&dir.join(name))?),
        };
        self.stores.insert(name.to_string(), s.clone());
        Ok(s)
    }

    /// Starts (or restarts) node `name` with its example identity and its store.
    pub async fn start_node(&mut self, name: &str) -> Result<()> {
        let spec = self.topology.node(name)?.clone();
        let key = example_keypair(name).map_err(|e| ActorError::Spawn {
            actor: "network",
            reason: e.to_string(),
        })?;
        let mut network = Node::network(&self.topology, name, key, false)?;
        if self.opts.faulty.iter().any(|f| f == name) {
            let (n, faults) = network.with_faults(self.opts.fault_seed);
            network = n;
            self.faults.insert(name.to_string(), faults);
        }
        let store = self.store(name)?;
        let node = match spec.role {
            Role::User => {
                let setup = UserSetup {
                    name: name.to_string(),
                    topology: self.topology.clone(),
                    part: self.plan.user_part(&self.quant),
                    store,
                    network,
                };
                Node::start_user(setup).await?
            }
            Role::Gateway | Role::Remote => {
                let index = self
                    .plan
                    .server_index(name)
                    .ok_or(ActorError::Unsupported("server not in the plan"))?;
                let part = self.plan.server_part(&self.quant, index).map_err(proto)?;
                let setup = ServerSetup {
                    name: name.to_string(),
                    topology: self.topology.clone(),
                    part: Arc::new(part),
                    store,
                    network,
                    stats_file: None,
                    limits: self.opts.limits,
                };
                Node::start_server(setup).await?
            }
        };
        self.nodes.insert(name.to_string(), node);
        Ok(())
    }

    /// Stops node `name` (its store stays with the cluster).
    pub async fn stop_node(&mut self, name: &str) -> Result<()> {
        if let Some(node) = self.nodes.remove(name) {
            node.shutdown().await?;
        }
        Ok(())
    }

    /// Node `name`.
    pub fn node(&self, name: &str) -> Result<&Node> {
        self.nodes
            .get(name)
            .ok_or(ActorError::Unsupported("no running node of that name"))
    }

    /// The first user node.
    pub fn user(&self) -> Result<&Node> {
        let name = self
            .topology
            .users()
            .first()
            .map(|n| n.name.clone())
            .ok_or(ActorError::Unsupported("the topology has no user"))?;
        self.node(&name)
    }

    /// The encoded input and the fixed-point reference logits (signed) of a float input.
    pub fn reference(&self, x: &[f32]) -> Result<(Vec<u64>, Vec<i64>)> {
        let enc = self.model.encode_input(x).map_err(proto)?;
        let fp = self.model.fixed_point;
        let logits = self.quant.infer(&enc).map_err(proto)?;
        Ok((enc, logits.iter().map(|&v| fp.to_signed(v)).collect()))
    }

    /// Stops every node.
    pub async fn shutdown(mut self) -> Result<()> {
        let names: Vec<String> = self.nodes.keys().cloned().collect();
        for n in names {
            self.stop_node(&n).await?;
        }
        Ok(())
    }
}
