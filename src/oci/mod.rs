//! Everything about getting images: references to endpoints (mirrors), credentials, sources
//! (registry, OCI layout), resolution to one platform, the blob cache, and pushing.

pub mod archive;
pub mod auth;
pub mod cache;
pub mod distribution;
pub mod docker_config;
pub mod image;
pub mod layout;
pub mod manifest;
pub mod mirror;
pub mod platform;
pub mod push;
pub mod registry;
pub mod resolve;
pub mod source;
pub mod tarext;
