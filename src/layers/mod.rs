//! Layers to a flattened tree index, and writing that tree out (`tdg export`).

pub mod export;
pub mod flatten;
pub mod index_cache;
pub mod tree;

#[cfg(test)]
mod tests;
