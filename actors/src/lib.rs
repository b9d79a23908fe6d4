//! # seco-actors
//!
//! ractor actors (DESIGN.md s.6): one party actor per node role that supervises a network actor
//! and one session actor per session. Session actors drive the sans-IO state machines of
//! `seco-protocols`, persist what they mark durable, then send.
//!
//! # Layout
//! (filled in by the networking issue)
