//! Subcommands whose wiring would crowd `main.rs`.

pub mod factory;
