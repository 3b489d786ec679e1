fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".to_string());
    println!("cargo:rustc-env=KIT_TARGET_TRIPLE={target}");

    // Version of snmalloc-sys from Cargo.lock (snmalloc exposes no version API).
    let lock = std::fs::read_to_string("Cargo.lock").unwrap_or_default();
    let mut snmalloc = "unknown".to_string();
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"snmalloc-sys\"" {
            if let Some(v) = lines
                .next()
                .and_then(|l| l.trim().strip_prefix("version = "))
            {
                snmalloc = v.trim_matches('"').to_string();
            }
            break;
        }
    }
    println!("cargo:rustc-env=KIT_SNMALLOC_SYS_VERSION={snmalloc}");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=Cargo.lock");
}
