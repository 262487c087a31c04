//! files (in progress).
