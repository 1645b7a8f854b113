//! The Talos Image Factory pipelines: the factory's HTTP API ([`client`]) and release manifests
//! ([`release`]). The URLs and installer references themselves are rendered offline by
//! [`crate::talos::factory`].

pub mod client;
pub mod release;
