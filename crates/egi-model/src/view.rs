//! Borrowing a tensor's f32 elements: how egi's CPU kernels (fastops, kernels) read their
//! inputs without a copy.

use candle_core::{CpuStorage, DType, Storage, Tensor};

/// A contiguous f32 CPU tensor's elements, borrowed from its storage (None otherwise).
pub(crate) struct View<'a> {
    guard: candle_core::StorageRef<'a>,
    range: std::ops::Range<usize>,
}

impl std::ops::Deref for View<'_> {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        match &*self.guard {
            Storage::Cpu(CpuStorage::F32(v)) => &v[self.range.clone()],
            _ => unreachable!("checked in f32s"),
        }
    }
}

pub(crate) fn f32s(t: &Tensor) -> Option<View<'_>> {
    if t.dtype() != DType::F32 || !t.device().is_cpu() {
        return None;
    }
    let (guard, l) = t.storage_and_layout();
    let range = match (&*guard, l.contiguous_offsets()) {
        (Storage::Cpu(CpuStorage::F32(_)), Some((a, b))) => a..b,
        _ => return None,
    };
    Some(View { guard, range })
}
