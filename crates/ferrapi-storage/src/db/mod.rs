//! db (in progress).
