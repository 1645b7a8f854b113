//! tdg: a test-driven validation harness for Talos Linux boot-asset images.
//!
//! Data flows one way: a [`spec`] is loaded and planned into checks; [`oci`] resolves and pulls
//! the image; [`layers`] flattens it; [`check`] turns expectations into outcomes; [`report`]
//! prints them. [`verify`] wires those stages together for the CLI and the test harness.

pub mod boot;
pub mod build;
pub mod check;
pub mod demo;
pub mod digest;
pub mod epoch;
pub mod error;
pub mod exit;
pub mod factory;
pub mod fleet;
pub mod goyaml;
pub mod http;
pub mod image_path;
pub mod imager;
pub mod inspect;
pub mod layers;
pub mod limits;
pub mod located;
pub mod oci;
pub mod partition;
pub mod progress;
pub mod promote;
pub mod pull;
pub mod reason;
pub mod reference;
pub mod report;
pub mod run;
pub mod sign;
pub mod spec;
pub mod talos;
pub mod temps;
