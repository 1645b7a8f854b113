//! The Talos Image Factory path: asset URLs and installer references for a schematic
//! ([`urls`]), the factory's HTTP API ([`client`]), and release manifests ([`release`]).

pub mod client;
pub mod release;
pub mod urls;
