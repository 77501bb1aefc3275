//! Checks of recaudo's deployment (`deploy/`): nothing here ships. The container image,
//! the Kubernetes manifests and the Terraform are checked by the real tools (podman,
//! `kubernetes-validate`, checkov) in this crate's tests; this library holds what those
//! tools do not check: the rules of [`manifest`] for the rendered manifests, and the
//! [`skips`] register of scanner checks that are not met on purpose, each with its reason.

pub mod manifest;
pub mod skips;
