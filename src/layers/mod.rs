//! Layers to a flattened tree index, and writing that tree out (`tdg export`).

pub mod export;
pub mod flatten;
mod held;
pub mod index_cache;
mod read;
mod spool;
pub mod tree;

#[cfg(test)]
mod tests;
