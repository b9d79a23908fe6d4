//! AND gates per non-linear element of the SECO stage circuits (issue 12), for 2, 3 and 5
//! servers: one ReLU word, and one 2x2 max-pool output after a convolution (`conv -> relu ->
//! maxpool`, built as max-pool then ReLU). The counts are exact; the table they print is the one
//! in `docs/garbled-circuits.md` ("AND gates per element").

use seco_protocols::model::NonLinearOp;
use seco_protocols::seco::circuits::StageCircuitSpec;

fn ands(n: usize, (k, f): (usize, usize), y_len: usize, post: Vec<NonLinearOp>) -> usize {
    // Owner 0, receiver 1 (the next stage's owner), as in a deployment where stages alternate.
    let spec = StageCircuitSpec::whole(n, (k, f), (y_len, 1), (0, 1), post).unwrap();
    spec.build().unwrap().counts().and as usize
}

fn pool() -> NonLinearOp {
    NonLinearOp::MaxPool2d {
        in_shape: [1, 2, 2],
        kernel: [2, 2],
        stride: [2, 2],
    }
}

#[test]
fn and_gates_per_relu_word_and_pool_output() {
    println!("| servers | k, f | ReLU word | 2x2 max-pool output (conv -> relu -> pool) |");
    println!("| --- | --- | --- | --- |");
    for n in [2, 3, 5] {
        for (k, f) in [(32, 8), (32, 10)] {
            let relu = ands(n, (k, f), 1, vec![NonLinearOp::Relu]);
            let pooled = ands(n, (k, f), 4, vec![NonLinearOp::Relu, pool()]);
            println!("| {n} | {k}, {f} | {relu} | {pooled} |");
            // The owner's share plus the XOR of the others' words in, the XOR of the mask words
            // out (the receiver's own share is subtracted outside): one adder and one
            // subtractor, k - 1 ANDs each, whatever n; ReLU k - f - 1.
            assert_eq!(relu, 2 * (k - 1) + (k - f - 1), "n {n}");
            // Four y sums, three comparisons and multiplexers on the k - f significant bits,
            // one ReLU after the max, one mask subtraction.
            let want = 4 * (k - 1) + 3 * 2 * (k - f) + (k - f - 1) + (k - 1);
            assert_eq!(pooled, want, "n {n}");
            // ReLU before or after the max: the circuit is built the cheap way either way.
            assert_eq!(pooled, ands(n, (k, f), 4, vec![pool(), NonLinearOp::Relu]));
        }
    }
}
