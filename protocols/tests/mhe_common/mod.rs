//! Shared harness for the `mhe_*` integration tests: run collective keygen among n parties in a
//! plain loop (seeded RNG), with a router that can reorder deliveries.
#![allow(dead_code)]

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use seco_protocols::mhe::{
    CollectiveKeygen, KeygenConfig, KeygenMsg, Outgoing, ParamId, PartyId, PublicKey,
    SecretKeyShare, To,
};

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// Runs keygen among n parties; deliveries are shuffled with `rng`. Messages also make a round
/// trip through their byte encoding.
pub fn keygen(param: ParamId, n: usize, rng: &mut ChaCha20Rng) -> (Vec<SecretKeyShare>, PublicKey) {
    let params = param.params().unwrap();
    let mut parties: Vec<CollectiveKeygen> = (0..n)
        .map(|me| {
            let cfg = KeygenConfig { param, n, me: me as PartyId, context: [7u8; 32] };
            CollectiveKeygen::new(cfg, rng).unwrap()
        })
        .collect();
    let mut queue: Vec<(PartyId, PartyId, Vec<u8>)> = Vec::new();
    let push = |queue: &mut Vec<(PartyId, PartyId, Vec<u8>)>, from: usize, out: Vec<Outgoing<KeygenMsg>>| {
        for o in out {
            let bytes = o.msg.to_bytes(&params);
            match o.to {
                To::All => {
                    for to in 0..n {
                        if to != from {
                            queue.push((from as PartyId, to as PartyId, bytes.clone()));
                        }
                    }
                }
                To::Party(to) => queue.push((from as PartyId, to, bytes)),
            }
        }
    };
    for (i, p) in parties.iter_mut().enumerate() {
        let out = p.start().unwrap();
        push(&mut queue, i, out);
    }
    while !queue.is_empty() {
        queue.shuffle(rng);
        let (from, to, bytes) = queue.pop().unwrap();
        let msg = KeygenMsg::from_bytes(&bytes, param).unwrap();
        let out = parties[to as usize].handle(from, msg).unwrap();
        push(&mut queue, to as usize, out);
    }
    let mut shares = Vec::new();
    let mut pk = None;
    for p in parties {
        assert!(p.is_done());
        let (sk, k) = p.finish().unwrap();
        if let Some(prev) = &pk {
            assert_eq!(prev, &k, "all parties agree on the collective key");
        }
        pk = Some(k);
        shares.push(sk);
    }
    (shares, pk.unwrap())
}

/// The single-party reference key `sum_i s_i` as an `fhe` key.
pub fn reference_key(shares: &[SecretKeyShare]) -> fhe::bfv::SecretKey {
    let refs: Vec<&SecretKeyShare> = shares.iter().collect();
    SecretKeyShare::sum_to_fhe(&refs).unwrap()
}
