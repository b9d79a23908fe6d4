//! The `seco` command. Thin: parses arguments and calls into the library crates.
fn main() {
    println!("seco");
}
