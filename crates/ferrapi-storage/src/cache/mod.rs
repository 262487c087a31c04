//! cache (in progress).
