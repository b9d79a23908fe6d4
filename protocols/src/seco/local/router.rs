//! The in-memory router of a local deployment: delivers queued messages one at a time (in
//! order, or shuffled) and drives each party's outputs through the loop of `io.rs`.

use std::time::Instant;

use rand::Rng;

use super::super::error::Result;
use super::super::ids::Party;
use super::super::io::{Input, Persist, Ready};
use super::super::msg::{Phase, SecoMsg};
use super::{Delivered, LocalDeployment};

impl LocalDeployment {
    /// Delivers queued messages until none is left. A refused message is recorded in
    /// [`LocalDeployment::refused`] and dropped, as a node would log and drop it.
    pub fn run(&mut self) -> Result<()> {
        while let Some((from, to, bytes)) = self.next() {
            let msg = match SecoMsg::from_bytes(&bytes) {
                Ok(m) => m,
                Err(e) => {
                    self.refused.push((to, "undecodable", e.to_string()));
                    continue;
                }
            };
            let (phase, kind) = (msg.body.phase(), msg.body.name());
            self.accounting.entry(to, phase).bytes_received += bytes.len() as u64;
            if self.opts.record {
                self.trace.push(Delivered {
                    from,
                    to,
                    msg: msg.clone(),
                    bytes: bytes.len(),
                });
            }
            let start = Instant::now();
            let ready = self.machine(to)?.handle(Input::Message { from, msg });
            self.accounting.entry(to, phase).cpu += start.elapsed();
            match ready {
                Ok(ready) => self.apply_phase(to, phase, ready)?,
                Err(e) => self.refused.push((to, kind, e.to_string())),
            }
            if let Some(s) = to.server().and_then(|i| self.servers.get(i)) {
                let peak = self.peak_garblings.entry(to).or_default();
                *peak = (*peak).max(s.garblings_running());
            }
        }
        Ok(())
    }

    fn next(&mut self) -> Option<(Party, Party, Vec<u8>)> {
        if self.opts.shuffle && self.queue.len() > 1 {
            let i = self.router_rng.random_range(0..self.queue.len());
            self.queue.remove(i)
        } else {
            self.queue.pop_front()
        }
    }

    pub(super) fn apply(&mut self, p: Party, ready: Ready) -> Result<()> {
        self.apply_phase(p, Phase::Session, ready)
    }

    /// The driver loop of `io.rs`: persist, take (and feed back), send, report.
    pub(super) fn apply_phase(&mut self, p: Party, phase: Phase, mut ready: Ready) -> Result<()> {
        loop {
            let store = self.stores.entry(p).or_default();
            for w in ready.persist.drain(..) {
                match w {
                    Persist::Keys(b) => store.keys = Some(b),
                    Persist::Bundle { bundle, bytes } => {
                        store.bundles.insert(bundle, bytes);
                    }
                    Persist::Session(b) => store.session = Some(b),
                    Persist::Chunk {
                        bundle,
                        stage,
                        chunk,
                        bytes,
                    } => {
                        self.largest_chunk_record = self.largest_chunk_record.max(bytes.len());
                        store.chunks.insert((bundle, stage, chunk), bytes);
                    }
                    Persist::ForgetChunks(b) => store.chunks.retain(|k, _| k.0 != b),
                    Persist::KeyUse { .. } => {}
                }
            }
            let mut taken: Vec<Input> = ready
                .take
                .drain(..)
                .map(|bundle| Input::Loaded {
                    bundle,
                    bytes: store.bundles.remove(&bundle),
                })
                .collect();
            taken.extend(ready.take_chunks.drain(..).map(|t| {
                Input::Chunks {
                    bundle: t.bundle,
                    stage: t.stage,
                    chunks: (0..t.chunks)
                        .map(|c| store.chunks.remove(&(t.bundle, t.stage, c)))
                        .collect(),
                }
            }));
            for (to, msg) in ready.send.drain(..) {
                let bytes = msg.to_bytes();
                let ph = msg.body.phase();
                let u = self
                    .accounting
                    .entry(p, if ph == Phase::Abort { phase } else { ph });
                u.bytes_sent += bytes.len() as u64;
                u.messages += 1;
                self.queue.push_back((p, to, bytes));
            }
            self.events.extend(ready.events.drain(..).map(|e| (p, e)));
            // After the sends (`Ready::resume`).
            taken.extend(
                ready
                    .resume
                    .drain(..)
                    .map(|bundle| Input::Resume { bundle }),
            );
            if taken.is_empty() {
                return Ok(());
            }
            for input in taken {
                let ph = match input {
                    Input::Resume { .. } => Phase::Prep,
                    _ => Phase::Online,
                };
                let start = Instant::now();
                let r = self.machine(p)?.handle(input);
                self.accounting.entry(p, ph).cpu += start.elapsed();
                match r {
                    Ok(r) => ready.extend(r),
                    Err(e) => self.refused.push((p, "Loaded", e.to_string())),
                }
            }
        }
    }
}
