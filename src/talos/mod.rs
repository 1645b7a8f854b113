//! What Talos boot assets are made of, read from their bytes: kernels and UKIs, initramfs
//! segments and the extensions baked into them, extension images, checksums files and build
//! reports; and the writing side the imager has, for fixtures and builds.

pub mod checksums;
pub mod extension_paths;
pub mod extensions;
pub mod foreign;
pub mod initramfs;

pub mod kernel;
pub mod newc;
pub mod report;
pub mod rootfs;
pub mod services;
pub mod validator;
pub mod version;
