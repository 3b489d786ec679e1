//! Global allocator selection, driven by Cargo features.
//!
//! No feature selects the platform (libc) allocator. At most one of the
//! `jemalloc` and `mimalloc` features may be enabled.

// snmalloc was evaluated and dropped: snmalloc-sys 0.7 does not link for
// *-linux-musl (it needs glibc's `__cxa_thread_atexit_impl`).
#[cfg(all(feature = "jemalloc", feature = "mimalloc"))]
compile_error!("features `jemalloc` and `mimalloc` are mutually exclusive; enable at most one");

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Name of the allocator compiled into this binary.
pub const NAME: &str = if cfg!(feature = "jemalloc") {
    "jemalloc"
} else if cfg!(feature = "mimalloc") {
    "mimalloc"
} else {
    "system"
};

/// C library flavour of the target.
pub const LIBC: &str = if cfg!(target_env = "musl") {
    "musl"
} else if cfg!(target_env = "gnu") {
    "gnu"
} else {
    "other"
};

/// Target triple, recorded by build.rs.
pub const TARGET: &str = env!("KIT_TARGET_TRIPLE");

/// Allocator library version, queried at runtime from the linked library
/// (proves it is linked and callable). `n/a` for the system allocator.
pub fn version() -> String {
    runtime_version()
}

#[cfg(feature = "jemalloc")]
fn runtime_version() -> String {
    match tikv_jemalloc_ctl::version::read() {
        // e.g. "5.3.1-0-g81034ce1f..." -> "5.3.1"
        Ok(v) => v.split('-').next().unwrap_or(v).to_string(),
        Err(_) => "unknown".to_string(),
    }
}

#[cfg(feature = "mimalloc")]
fn runtime_version() -> String {
    // SAFETY: mi_version takes no arguments and only returns a constant.
    let v = unsafe { libmimalloc_sys::mi_version() };
    format_mi_version(v)
}

#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
fn runtime_version() -> String {
    "n/a".to_string()
}

/// mimalloc encodes its version as major + 2-digit minor + 2-digit patch
/// (30302 = 3.3.2) since 2.1.8; older releases used one digit each (217 = 2.1.7).
#[cfg_attr(not(any(feature = "mimalloc", test)), allow(dead_code))]
pub fn format_mi_version(v: i32) -> String {
    if v >= 10_000 {
        format!("{}.{}.{}", v / 10_000, (v / 100) % 100, v % 100)
    } else {
        format!("{}.{}.{}", v / 100, (v / 10) % 10, v % 10)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn mi_version_formatting() {
        assert_eq!(super::format_mi_version(217), "2.1.7");
        assert_eq!(super::format_mi_version(20302), "2.3.2");
        assert_eq!(super::format_mi_version(30302), "3.3.2");
    }

    #[test]
    fn name_is_consistent() {
        let v = super::version();
        if super::NAME == "system" {
            assert_eq!(v, "n/a");
        } else {
            assert_ne!(v, "n/a");
        }
    }
}
