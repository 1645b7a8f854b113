//! The Talos Image Factory pipelines: the factory's HTTP API ([`client`]) and release manifests
//! ([`release`]). The URLs and installer references themselves are rendered offline by
//! [`crate::factory::urls`].

pub mod client;
pub mod platforms;
pub mod release;
pub mod schematic;
pub mod urls;
