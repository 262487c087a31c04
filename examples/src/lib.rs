//! The guide's examples: one module per chapter, each a runnable program
//! (`cargo run -p ferrapi-examples --bin <chapter>`) and each tested with the
//! in-process test client, so the guide never drifts from the code.
#![deny(missing_docs)]

pub mod first_steps;
