//! bus (in progress).
