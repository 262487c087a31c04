//! The guide examples.
