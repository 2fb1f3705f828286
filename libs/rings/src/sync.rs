//! The atomics the queue uses: `core`'s normally, `loom`'s when the crate is model-checked
//! (`RUSTFLAGS="--cfg loom"`, see `loom.sh`).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
