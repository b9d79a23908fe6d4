//! What the user learns (`docs/protocol.md`, "What each party learns"): the truncated logits,
//! or only the label computed inside the last garbled circuit; the result equals the
//! fixed-point reference bit for bit; the user's result bytes do not depend on the model in
//! label mode; an unknown output mode is refused; abort reasons that reach the user name no
//! server.

mod seco_common;

use rand::{Rng, SeedableRng};
use seco_common::{input, model_dir, recording, reference, server_config, servers, setup};
use seco_protocols::circuit::Circuit;
use seco_protocols::fixed::FixedPoint;
use seco_protocols::model::{argmax, Model};
use seco_protocols::plan::SplitPlan;
use seco_protocols::seco::circuits::StageCircuitSpec;
use seco_protocols::seco::local::{LocalDeployment, LocalOptions};
use seco_protocols::seco::msg::Body;
use seco_protocols::seco::{
    Event, Input, Machine, OutputMode, Party, Phase, SecoError, ServerSession, SessionId,
    UserConfig, UserSession,
};

fn opts(output: OutputMode) -> LocalOptions {
    LocalOptions {
        output,
        ..recording()
    }
}

fn deployment(model: &Model, n: usize, output: OutputMode) -> LocalDeployment {
    let q = model.quantize().unwrap();
    let plan = SplitPlan::balanced(&q, &servers(n)).unwrap();
    LocalDeployment::new(&q, &plan, opts(output)).unwrap()
}

/// The bytes of the `Result` messages the user received.
fn result_bytes(d: &LocalDeployment) -> Vec<usize> {
    d.trace
        .iter()
        .filter(|m| m.to == Party::User && matches!(m.msg.body, Body::Result { .. }))
        .map(|m| m.bytes)
        .collect()
}

/// Logits mode gives the reference's logits (already truncated: the `f` low bits of `y` are
/// not in the result), label mode the reference's argmax, with 2 and 3 servers.
#[test]
fn logits_and_label_equal_the_fixed_point_reference_with_2_and_3_servers() {
    let (model, q, _) = setup();
    for n in [2, 3] {
        let mut logits = deployment(&model, n, OutputMode::Logits);
        let mut label = deployment(&model, n, OutputMode::Label);
        logits.preprocess(4).unwrap();
        label.preprocess(4).unwrap();
        for i in 0..4 {
            let x = input(&model, i);
            let want = reference(&model, &q, &x);
            assert_eq!(logits.infer(&x).unwrap(), want, "{n} servers, input {i}");
            let class = label.infer_label(&x).unwrap();
            assert_eq!(class as usize, argmax(&want), "{n} servers, input {i}");
        }
        // One ring element per inference in label mode, ten in logits mode.
        let (l, c) = (result_bytes(&logits), result_bytes(&label));
        assert_eq!((l.len(), c.len()), (4, 4));
        assert!(c[0] < l[0], "label result {} B, logits {} B", c[0], l[0]);
        // Bytes sent by all parties per bundle in preprocessing and per inference online.
        let per_bundle = |d: &LocalDeployment, ph: Phase| -> u64 {
            let usage = d.accounting.usage.iter();
            usage
                .filter(|((_, p), _)| *p == ph)
                .map(|(_, u)| u.bytes_sent)
                .sum::<u64>()
                / 4
        };
        println!(
            "{n} servers: the user's Result {} B (label) / {} B (logits); all parties send \
             {} / {} B per bundle in preprocessing and {} / {} B per inference online",
            c[0],
            l[0],
            per_bundle(&label, Phase::Prep),
            per_bundle(&logits, Phase::Prep),
            per_bundle(&label, Phase::Online),
            per_bundle(&logits, Phase::Online),
        );
    }
}

/// A remote owning the last stage (the output circuit's owner is then a remote, its receiver
/// and evaluator the gateway) and a digits-cnn split over 3 servers give the reference too.
#[test]
fn other_owners_and_a_cnn_give_the_reference_label_and_logits() {
    let (model, q, _) = setup();
    let plan = SplitPlan {
        model: q.name.clone(),
        servers: servers(3),
        owners: vec![2, 1],
        param: None,
    };
    for output in [OutputMode::Logits, OutputMode::Label] {
        let mut d = LocalDeployment::new(&q, &plan, opts(output)).unwrap();
        d.preprocess(2).unwrap();
        for i in 0..2 {
            let x = input(&model, i);
            let want = reference(&model, &q, &x);
            match output {
                OutputMode::Logits => assert_eq!(d.infer(&x).unwrap(), want),
                OutputMode::Label => {
                    assert_eq!(d.infer_label(&x).unwrap() as usize, argmax(&want))
                }
            }
        }
    }
    let cnn = Model::load(model_dir("digits-cnn")).unwrap();
    let qc = cnn.quantize().unwrap();
    let mut d = deployment(&cnn, 3, OutputMode::Label);
    d.preprocess(1).unwrap();
    let x = input(&cnn, 0);
    let want = argmax(&reference(&cnn, &qc, &x));
    assert_eq!(d.infer_label(&x).unwrap() as usize, want);
}

/// In label mode the user's bytes do not depend on the model: the result of digits-mlp and of
/// mnist-mlp (both 10 classes, different layers) have the same size, and so would a model with
/// any number of classes (one ring element, `OutputMode::output_len`).
#[test]
fn the_label_result_has_the_same_size_for_every_model() {
    let sizes: Vec<usize> = ["digits-mlp", "mnist-mlp"]
        .iter()
        .map(|name| {
            let model = Model::load(model_dir(name)).unwrap();
            let mut d = deployment(&model, 3, OutputMode::Label);
            d.preprocess(1).unwrap();
            d.infer_label(&input(&model, 0)).unwrap();
            result_bytes(&d)[0]
        })
        .collect();
    assert_eq!(sizes[0], sizes[1]);
    assert_eq!(
        OutputMode::Label.output_len(10),
        OutputMode::Label.output_len(1000)
    );
}

/// The output circuit in the clear, with random shares and forced ties: its argmax is
/// `model::argmax` of the truncated values (first index on ties), its logits `trunc(y)`.
/// Prints the AND gates the argmax adds for 10 classes (k = 32, f = 10; docs/garbled-circuits.md).
#[test]
fn the_output_circuit_computes_the_reference_argmax_and_counts_its_and_gates() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(14);
    let fp = FixedPoint::new(32, 10).unwrap();
    let (n, classes) = (3, 10);
    let label = StageCircuitSpec::output(n, (32, 10), classes, (1, 1), true).unwrap();
    let logits = StageCircuitSpec::output(n, (32, 10), classes, (1, 1), false).unwrap();
    let (cl, cg): (Circuit, Circuit) = (label.build().unwrap(), logits.build().unwrap());
    for round in 0..200 {
        // Values near each other so that truncation makes ties often.
        let y: Vec<u64> = (0..classes)
            .map(|_| fp.reduce(rng.random_range(0..4096u64).wrapping_sub(2048) << 2))
            .collect();
        let ys: Vec<Vec<u64>> = (0..n)
            .map(|_| {
                (0..classes)
                    .map(|_| rng.random::<u64>() & fp.mask())
                    .collect()
            })
            .collect();
        // Owner 1 inputs z = y - XOR of the others' words.
        let x = ys[0][0..classes]
            .iter()
            .zip(&ys[2])
            .map(|(&a, &b)| a ^ b)
            .collect::<Vec<u64>>();
        let mut shares = ys.clone();
        shares[1] = y.iter().zip(&x).map(|(&v, &u)| fp.sub(v, u)).collect();
        let rs: Vec<Vec<u64>> = (0..n)
            .map(|_| {
                (0..classes)
                    .map(|_| rng.random::<u64>() & fp.mask())
                    .collect()
            })
            .collect();
        let truncated: Vec<i64> = y.iter().map(|&v| fp.to_signed(fp.trunc(v))).collect();
        for (spec, c) in [(&label, &cl), (&logits, &cg)] {
            let bits: Vec<bool> = (0..n)
                .flat_map(|p| {
                    let r = &rs[p][..spec.r_len];
                    spec.encode_inputs(p, &shares[p], r).unwrap()
                })
                .collect();
            let out = spec.decode_outputs(&c.eval_plain(&bits).unwrap());
            // Add back the other servers' mask words (the receiver is server 1).
            let unmask = |i: usize| fp.add(out[i], rs[0][i] ^ rs[2][i]);
            if spec.argmax {
                assert_eq!(unmask(0) as usize, argmax(&truncated), "round {round}");
            } else {
                let got: Vec<i64> = (0..classes).map(|i| fp.to_signed(unmask(i))).collect();
                assert_eq!(got, truncated, "round {round}");
            }
        }
    }
    let (and_label, and_logits) = (cl.counts().and, cg.counts().and);
    println!(
        "output circuit, 10 classes, k = 32, f = 10, 3 servers: label {and_label} AND gates, \
         logits {and_logits}, the argmax adds {}",
        and_label as i64 - and_logits as i64
    );
    // Logits: one adder and one subtractor of k bits per class (k - 1 ANDs each). Label: the
    // adders, the argmax tree (9 comparisons and 9 value multiplexers on the k - f = 22
    // significant bits, 7 ANDs of index multiplexers: most index bits are constants), one
    // subtractor for the class word.
    assert_eq!(and_logits, 10 * (31 + 31));
    assert_eq!(and_label, 10 * 31 + 9 * 2 * 22 + 7 + 31);
}

/// The gateway refuses an unknown output mode in `Hello` (fatal: the session aborts and the
/// user gets the reason); a remote refuses it in `Open` too.
#[test]
fn an_unknown_output_mode_is_refused() {
    let (_, q, plan) = setup();
    let session = SessionId([5; 16]);
    let ucfg = UserConfig {
        session,
        part: plan.user_part(&q),
        param: seco_protocols::mhe::ParamId::Bfv4096T32V1,
        user_param: seco_protocols::mhe::ParamId::Bfv2048T32V1,
        output: OutputMode::Label,
    };
    let (_, hello) = UserSession::new(ucfg, [3; 32]).unwrap();
    let mut msg = hello.send[0].1.clone();
    let Body::Hello { output, .. } = &mut msg.body else {
        panic!("not a Hello: {:?}", msg.body);
    };
    assert_eq!(*output, OutputMode::Label.code());
    *output = 9;
    let mut g =
        ServerSession::new(server_config(&q, &plan, 0, session), Vec::new(), [1; 32]).unwrap();
    let err = g
        .handle(Input::Message {
            from: Party::User,
            msg: msg.clone(),
        })
        .unwrap_err();
    assert!(matches!(err, SecoError::OutputMode(9)), "{err}");
    assert!(err.is_fatal());
    assert!(err.to_string().contains("unknown output mode 9"), "{err}");
    let mut r =
        ServerSession::new(server_config(&q, &plan, 1, session), Vec::new(), [2; 32]).unwrap();
    let skeleton = r.schedule().digest;
    let open = seco_common::msg(
        session,
        Party::GATEWAY,
        0,
        Body::Open {
            model: q.name.clone(),
            skeleton,
            key_ids: Vec::new(),
            user_pk: Default::default(),
            output: 200,
        },
    );
    let err = r
        .handle(Input::Message {
            from: Party::GATEWAY,
            msg: open,
        })
        .unwrap_err();
    assert!(matches!(err, SecoError::OutputMode(200)), "{err}");
}

/// An inference aborted at a remote (its stored bundle is corrupt): the servers' reasons name
/// the remote ("server 2"), the user's copy only roles.
#[test]
fn abort_reasons_that_reach_the_user_name_no_server() {
    let (model, q, plan) = setup();
    let mut d = LocalDeployment::new(&q, &plan, LocalOptions::default()).unwrap();
    let ids = d.preprocess(1).unwrap();
    d.put_bundle(Party::Server(2), ids[0], b"not a bundle".to_vec());
    assert!(d.infer(&input(&model, 0)).is_err());
    let reason_at = |p: Party| {
        d.events
            .iter()
            .find_map(|(q, e)| match e {
                Event::Aborted { reason, .. } if *q == p => Some(reason.clone()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no abort at {p}"))
    };
    let gateway = reason_at(Party::GATEWAY);
    assert!(gateway.contains("server 2"), "{gateway}");
    let user = reason_at(Party::User);
    assert!(user.starts_with("a remote server: "), "{user}");
    for name in servers(3)
        .iter()
        .map(String::as_str)
        .chain(["server 1", "server 2"])
    {
        assert!(
            !user.contains(name),
            "the user's abort reason names {name}: {user}"
        );
    }
}
