//! Global allocator selection, driven by Cargo features.
//!
//! No feature selects the platform (libc) allocator. At most one of the
//! `jemalloc`, `mimalloc` and `snmalloc` features may be enabled.

#[cfg(any(
    all(feature = "jemalloc", feature = "mimalloc"),
    all(feature = "jemalloc", feature = "snmalloc"),
    all(feature = "mimalloc", feature = "snmalloc"),
))]
compile_error!(
    "features `jemalloc`, `mimalloc` and `snmalloc` are mutually exclusive; enable at most one"
);

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(feature = "snmalloc")]
#[global_allocator]
static GLOBAL: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;

/// Name of the allocator compiled into this binary.
pub const NAME: &str = if cfg!(feature = "jemalloc") {
    "jemalloc"
} else if cfg!(feature = "mimalloc") {
    "mimalloc"
} else if cfg!(feature = "snmalloc") {
    "snmalloc"
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

#[cfg(feature = "snmalloc")]
fn runtime_version() -> String {
    // snmalloc has no version API; call into the library to prove it is
    // linked, then report the version of the bundled snmalloc-sys crate.
    // SAFETY: plain allocate / query / free round trip through snmalloc.
    let usable = unsafe {
        let p = snmalloc_sys::sn_malloc(24);
        let u = snmalloc_sys::sn_malloc_usable_size(p);
        snmalloc_sys::sn_free(p);
        u
    };
    if usable >= 24 {
        format!("snmalloc-sys-{}", env!("KIT_SNMALLOC_SYS_VERSION"))
    } else {
        "unknown".to_string()
    }
}

#[cfg(not(any(feature = "jemalloc", feature = "mimalloc", feature = "snmalloc")))]
fn runtime_version() -> String {
    "n/a".to_string()
}

/// mimalloc encodes its version as e.g. 217 for 2.1.7.
#[cfg_attr(not(any(feature = "mimalloc", test)), allow(dead_code))]
pub fn format_mi_version(v: i32) -> String {
    format!("{}.{}.{}", v / 100, (v / 10) % 10, v % 10)
}

#[cfg(test)]
mod tests {
    #[test]
    fn mi_version_formatting() {
        assert_eq!(super::format_mi_version(217), "2.1.7");
        assert_eq!(super::format_mi_version(300), "3.0.0");
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
