//! Giving freed memory back to the system: the allocator (mimalloc) keeps freed pages for reuse and
//! returns them only after a delay, checked when it is next called, which an idle proxy never does; so
//! the threads that just freed a burst's memory ask for it explicitly.

/// Returns what this thread's heap freed (and the process's abandoned pages) to the system now.
pub fn give_back_freed_memory() {
    // SAFETY: `mi_collect` takes no pointers; it only walks this thread's heap and the process's
    // arenas (a no-op where mimalloc is not the global allocator, as in the unit tests).
    unsafe { libmimalloc_sys::mi_collect(true) };
}
