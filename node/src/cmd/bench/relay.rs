//! A shaping TCP relay for `seco bench --network lan|wan`: listens on 127.0.0.1, forwards each
//! accepted connection to one server's real listener (on 127.0.0.1 only), and shapes both
//! directions of it like a link: every chunk read is paced at the link rate (serialised after
//! the bytes before it) and delivered one-way delay (rtt / 2) after it left.
//!
//! Each accepted connection is one link between two parties (libp2p keeps one connection per
//! pair), paced on its own, so a relay per listening server shapes every link in the
//! deployment. The pipes run on OS threads: `std::thread::sleep` wakes within tens of
//! microseconds, tokio's timer only to the millisecond (too coarse for a LAN's 0.25 ms).
//!
//! What is not modelled: the relay acknowledges TCP segments locally, so the kernel's
//! congestion control sees loopback, not the link; the protocol's own round trips (Noise
//! handshake, Yamux window updates, per-chunk acks, every protocol message) see the delay and
//! the rate. Each direction buffers at most [`QUEUE_CHUNKS`] chunks, then stops reading (the
//! sender's socket fills and it waits, as behind a full router queue).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// Largest chunk read at once.
const CHUNK: usize = 16 << 10;
/// Chunks queued per direction (at most 4 MiB; a WAN link of the defaults holds 0.5 MB).
pub const QUEUE_CHUNKS: usize = 256;

/// How one link is shaped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shape {
    /// Bytes per second in each direction.
    pub bytes_per_sec: f64,
    /// Round-trip time (each direction is delayed by half).
    pub rtt: Duration,
}

/// A running relay; stops accepting and closes its connections when dropped.
pub struct Relay {
    /// Where parties dial (127.0.0.1, a port chosen by the OS).
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    streams: Arc<Mutex<Vec<TcpStream>>>,
}

impl Relay {
    /// Connections relayed so far (links that passed this relay).
    pub fn connections(&self) -> usize {
        self.streams.lock().map_or(0, |s| s.len() / 2)
    }
}

impl Relay {
    /// Starts a relay to `target`, which must be a loopback address.
    pub fn start(target: SocketAddr, shape: Shape) -> Result<Self> {
        if !target.ip().is_loopback() {
            bail!("the shaping relay forwards only to loopback addresses, not {target}");
        }
        if !(shape.bytes_per_sec.is_finite() && shape.bytes_per_sec > 0.0) {
            bail!("the link rate must be a positive number");
        }
        let listener =
            TcpListener::bind(("127.0.0.1", 0)).context("cannot start a shaping relay")?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let streams = Arc::new(Mutex::new(Vec::new()));
        let (s, st) = (stop.clone(), streams.clone());
        std::thread::Builder::new()
            .name(format!("relay-{}", addr.port()))
            .spawn(move || accept_loop(&listener, target, shape, &s, &st))
            .context("cannot start a relay thread")?;
        Ok(Self {
            addr,
            stop,
            streams,
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the flag and returns.
        let _ = TcpStream::connect(self.addr);
        if let Ok(streams) = self.streams.lock() {
            for s in streams.iter() {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }
}

fn accept_loop(
    listener: &TcpListener,
    target: SocketAddr,
    shape: Shape,
    stop: &AtomicBool,
    streams: &Mutex<Vec<TcpStream>>,
) {
    for inbound in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(inbound) = inbound else { continue };
        if let Err(e) = connect(inbound, target, shape, streams) {
            tracing::warn!(error = %e, "shaping relay: connection dropped");
        }
    }
}

/// Connects one accepted connection to the target and starts its two shaped directions.
fn connect(
    inbound: TcpStream,
    target: SocketAddr,
    shape: Shape,
    streams: &Mutex<Vec<TcpStream>>,
) -> std::io::Result<()> {
    let outbound = TcpStream::connect(target)?;
    for s in [&inbound, &outbound] {
        s.set_nodelay(true)?;
    }
    if let Ok(mut list) = streams.lock() {
        list.push(inbound.try_clone()?);
        list.push(outbound.try_clone()?);
    }
    direction(inbound.try_clone()?, outbound.try_clone()?, shape)?;
    direction(outbound, inbound, shape)
}

/// One direction: a reader thread stamping chunks, a writer thread delivering them on time.
fn direction(from: TcpStream, to: TcpStream, shape: Shape) -> std::io::Result<()> {
    let (tx, rx) = sync_channel(QUEUE_CHUNKS);
    std::thread::Builder::new()
        .name("relay-read".into())
        .spawn(move || read_side(from, &tx, shape))?;
    std::thread::Builder::new()
        .name("relay-write".into())
        .spawn(move || write_side(to, &rx))?;
    Ok(())
}

/// `Some((deliver at, bytes))`, `None` at end of stream.
type Item = Option<(Instant, Vec<u8>)>;

fn read_side(mut from: TcpStream, tx: &SyncSender<Item>, shape: Shape) {
    let mut clock = LinkClock::new(shape);
    let mut buf = vec![0u8; CHUNK];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let at = clock.deliver_at(Instant::now(), n);
                if tx.send(Some((at, buf[..n].to_vec()))).is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send(None);
}

fn write_side(mut to: TcpStream, rx: &Receiver<Item>) {
    while let Ok(Some((at, bytes))) = rx.recv() {
        let now = Instant::now();
        if at > now {
            std::thread::sleep(at - now);
        }
        if to.write_all(&bytes).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}

/// The link's timeline in one direction: when the wire is free, when a chunk arrives.
#[derive(Debug)]
pub struct LinkClock {
    shape: Shape,
    free_at: Option<Instant>,
}

impl LinkClock {
    /// A link idle so far.
    pub fn new(shape: Shape) -> Self {
        Self {
            shape,
            free_at: None,
        }
    }

    /// A chunk of `len` bytes handed to the link at `now` is serialised once the bytes before
    /// it are (at the rate) and arrives one-way delay later.
    pub fn deliver_at(&mut self, now: Instant, len: usize) -> Instant {
        let start = self.free_at.map_or(now, |f| f.max(now));
        let wire = Duration::from_secs_f64(len as f64 / self.shape.bytes_per_sec);
        let done = start + wire;
        self.free_at = Some(done);
        done + self.shape.rtt / 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_serialised_at_the_rate_then_delayed() {
        let shape = Shape {
            bytes_per_sec: 1000.0,
            rtt: Duration::from_millis(40),
        };
        let mut c = LinkClock::new(shape);
        let t0 = Instant::now();
        // 100 bytes at 1000 B/s: 100 ms on the wire, then 20 ms one way.
        assert_eq!(c.deliver_at(t0, 100), t0 + Duration::from_millis(120));
        // Handed over while the first is still on the wire: queued behind it.
        assert_eq!(
            c.deliver_at(t0 + Duration::from_millis(50), 100),
            t0 + Duration::from_millis(220)
        );
        // After an idle gap the wire starts at once.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!(c.deliver_at(t1, 10), t1 + Duration::from_millis(30));
    }

    #[test]
    fn bytes_pass_both_ways_and_only_loopback_targets_are_accepted() {
        let shape = Shape {
            bytes_per_sec: 1e9,
            rtt: Duration::from_millis(1),
        };
        assert!(Relay::start("10.0.0.1:80".parse().unwrap(), shape).is_err());
        let echo = TcpListener::bind("127.0.0.1:0").unwrap();
        let target = echo.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = echo.accept().unwrap();
            let mut buf = [0u8; 5];
            s.read_exact(&mut buf).unwrap();
            s.write_all(&buf).unwrap();
        });
        let relay = Relay::start(target, shape).unwrap();
        let mut c = TcpStream::connect(relay.addr).unwrap();
        c.write_all(b"hello").unwrap();
        let mut back = [0u8; 5];
        c.read_exact(&mut back).unwrap();
        assert_eq!(&back, b"hello");
    }
}
