//! Expectations to outcomes. [`plan`] turns a spec into named checks without touching the
//! network (what `cargo test -- --list` shows); [`evaluate`] answers each against a resolved,
//! flattened image. Every reporter reads the same [`Outcome`]s.

pub mod evaluate;
pub mod golden;
pub mod outcome;
pub mod plan;
pub mod talos;

pub use outcome::{Outcome, Status};
pub use plan::{plan, Check, Plan, What};
