//! The process's memory allocator, tuned for tensor work.
//!
//! A training step allocates and frees hundreds of tensors of megabytes each. glibc's
//! defaults hand every block over its mmap threshold back to the kernel when it is freed, so
//! the next step faults the same memory in again, a page at a time, zeroed by the kernel
//! (plus TLB shootdowns on every unmap). Keeping freed memory avoids that (measured:
//! docs/performance.md).
//! The cost: the process keeps its peak heap until it exits instead of returning it early.

/// Keep freed memory for reuse instead of returning it to the kernel: one heap for all
/// threads (glibc otherwise gives each thread its own, each trimmed separately), no mmap
/// for large blocks, no trimming of the heap's top. Call first thing in `main`, before
/// threads start. A no-op on other allocators, and when `EGI_SYSTEM_MALLOC` is set (to
/// compare, or when memory is tighter than time). Returns whether it applied.
pub fn keep_freed_memory() -> bool {
    if std::env::var_os("EGI_SYSTEM_MALLOC").is_some() {
        return false;
    }
    imp()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn imp() -> bool {
    // SAFETY: mallopt only changes allocator parameters; it is called before other threads
    // allocate (documented requirement of the caller), and each call is checked.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1) == 1
            && libc::mallopt(libc::M_MMAP_MAX, 0) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn imp() -> bool {
    false
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn applies_on_glibc_and_memory_still_works() {
        assert!(super::keep_freed_memory());
        // Large blocks now come from the heap: allocate, free and reuse one.
        for _ in 0..3 {
            let v = vec![1u8; 64 << 20];
            assert_eq!(v.iter().map(|&x| x as usize).sum::<usize>(), 64 << 20);
        }
    }
}
