//! Talos's imager, offline: the boot assets a build writes, byte for byte as siderolabs/talos
//! `pkg/imager` makes them. [`bake`] bakes extensions into a base initramfs, [`modules`] is its
//! kernel-module side (`depmod` over the merged modules tree), and [`assemble`] writes the
//! pieces (newc archives, squashfs images, compressed segments).

pub mod assemble;
pub mod bake;
pub mod modules;
