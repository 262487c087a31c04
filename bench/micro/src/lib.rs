//! Criterion microbenchmarks live in benches/.
