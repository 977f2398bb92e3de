//! Rebuilds the crate when a migration is added: `embed_migrations!` reads the folder at
//! compile time, and Cargo would otherwise not notice a new file in it.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations/postgres");
}
