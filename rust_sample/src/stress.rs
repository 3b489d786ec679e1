//! Allocation micro-benchmark: `rust_sample stress`.
//!
//! `--threads N` is always the number of worker OS threads the run spawns (the main thread
//! only spawns and joins them); every pattern runs N of them, "cross" as producers and
//! consumers, so it needs N >= 2.

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Objects allocated per batch before they are freed ("local", "cross").
const BATCH: usize = 64;
/// Bounded channel depth (in batches) for the cross-thread pattern.
const CHANNEL_DEPTH: usize = 16;
/// Ops between two looks at the clock in the small-block patterns.
const CHUNK: u64 = 64;
/// Live blocks per thread in "steady".
const WORKING_SET: usize = 64;
/// Long-lived cache entries per thread in "cache".
const CACHE_ENTRIES: usize = 4096;
/// One "cache" op in this many also replaces a cache entry.
const CACHE_REPLACE_EVERY: u64 = 8;
/// Final buffer lengths in "realloc": log-uniform-ish from `REALLOC_MIN` to `REALLOC_MAX`.
const REALLOC_MIN: usize = 32 << 10;
const REALLOC_MAX: usize = 4 << 20;
/// Bytes appended per push in "realloc" (each push at most this many).
const REALLOC_CHUNK: usize = 4096;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Each thread allocates a batch of 64 blocks of random sizes, then frees the batch whole,
    /// on the thread that allocated it. The heap empties between batches: the worst case for
    /// an allocator that returns emptied groups/pages to the OS eagerly (musl's mallocng), the
    /// best for a per-thread cache. One op = one block allocated and freed.
    Local,
    /// Producer threads allocate batches of blocks and send them through bounded channels to
    /// consumer threads, which free them: every free is remote (cross-thread), the case for
    /// an allocator's remote-free queues or shared-arena locking. N/2 producers (rounded up)
    /// and the rest consumers; needs N >= 2. One op = one block allocated on one thread and
    /// freed on another.
    Cross,
    /// Each thread keeps a steady working set of 64 live blocks of random sizes and replaces
    /// a random one per op (free it, allocate a new one), so the heap never empties: the
    /// steady-state reuse of freed slots of mixed size classes, without the empty-heap cliff
    /// of "local". One op = one block freed and one allocated.
    Steady,
    /// A long-lived per-thread cache (4096 blocks of random sizes allocated up front, one
    /// replaced every 8th op) next to short-lived per-request allocations (a String, a
    /// Vec<u64>, a Vec<u8> and a small Vec of Strings, all freed at the end of the op): the
    /// shape of a server, where fragmentation from long-lived objects meets fast churn of
    /// small ones. One op = one "request".
    Cache,
    /// Large buffers (32 KiB to 4 MiB) grown from empty by repeated pushes of up to 4 KiB
    /// (Vec's doubling: a dozen or more reallocs each, many above the mmap threshold), shrunk
    /// to fit, then dropped: realloc and mremap/copy cost, large-block and page reuse. One op
    /// = one buffer built and dropped.
    Realloc,
}

impl Pattern {
    pub const ALL: [Pattern; 5] = [
        Pattern::Local,
        Pattern::Cross,
        Pattern::Steady,
        Pattern::Cache,
        Pattern::Realloc,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Pattern::Local => "local",
            Pattern::Cross => "cross",
            Pattern::Steady => "steady",
            Pattern::Cache => "cache",
            Pattern::Realloc => "realloc",
        }
    }

    pub fn parse(s: &str) -> Option<Pattern> {
        Pattern::ALL.into_iter().find(|p| p.name() == s)
    }

    /// The fewest worker threads the pattern can run with.
    pub fn min_threads(self) -> usize {
        match self {
            Pattern::Cross => 2,
            _ => 1,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub threads: usize,
    pub pattern: Pattern,
    pub ops: u64,
    pub size: usize,
    pub seconds: Option<f64>,
}

impl Config {
    /// Why this configuration cannot run (one line), if it cannot.
    pub fn check(&self) -> Result<(), String> {
        let min = self.pattern.min_threads();
        if self.threads < min {
            return Err(match self.pattern {
                Pattern::Cross => format!(
                    "--pattern cross needs --threads >= 2 (N worker threads in total: \
                     N/2 producers rounded up, the rest consumers); got --threads {}",
                    self.threads
                ),
                p => format!(
                    "--pattern {} needs --threads >= {min}; got --threads {}",
                    p.name(),
                    self.threads
                ),
            });
        }
        Ok(())
    }
}

/// Tuned so musl + mimalloc at one thread runs ~0.25-0.6 s on a 2-core box.
pub const DEFAULT_OPS: u64 = 8_000_000;
pub const DEFAULT_SIZE: usize = 512;
const MIN_SIZE: usize = 16;

/// Deterministic xorshift64 generator.
#[derive(Clone)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish value in `lo..=hi`.
    #[inline]
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }
}

/// Allocate one buffer of a pseudo-random size and touch it.
#[inline]
fn make_buf(rng: &mut XorShift, max: usize) -> Vec<u8> {
    let len = rng.range(MIN_SIZE, max);
    let mut v: Vec<u8> = Vec::with_capacity(len);
    // Touch first, middle and last byte so pages are really used.
    v.resize(len, 0xA5);
    v[len / 2] = len as u8;
    black_box(v)
}

/// Per-thread budget: split `total` across `n` workers (remainder to the first ones).
fn split(total: u64, n: usize, i: usize) -> u64 {
    let n64 = n as u64;
    total / n64 + u64::from((i as u64) < total % n64)
}

struct Budget {
    ops: u64,
    deadline: Option<Instant>,
}

impl Budget {
    /// How many ops to run before looking again (at most `chunk`; 0: stop).
    #[inline]
    fn next(&self, done: u64, chunk: u64) -> u64 {
        match self.deadline {
            Some(d) if Instant::now() < d => chunk,
            Some(_) => 0,
            None => (self.ops - done).min(chunk),
        }
    }
}

fn local_worker(id: usize, budget: Budget, size: usize) -> u64 {
    let mut rng = XorShift::new(id as u64 + 1);
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut done = 0u64;
    loop {
        let n = budget.next(done, BATCH as u64);
        if n == 0 {
            break;
        }
        for _ in 0..n {
            batch.push(make_buf(&mut rng, size));
        }
        black_box(&mut batch);
        batch.clear(); // frees on the allocating thread
        done += n;
    }
    done
}

fn producer(id: usize, budget: Budget, size: usize, tx: mpsc::SyncSender<Vec<Vec<u8>>>) -> u64 {
    let mut rng = XorShift::new(id as u64 + 1);
    let mut done = 0u64;
    loop {
        let n = budget.next(done, BATCH as u64);
        if n == 0 {
            break;
        }
        let mut batch: Vec<Vec<u8>> = Vec::with_capacity(n as usize);
        for _ in 0..n {
            batch.push(make_buf(&mut rng, size));
        }
        if tx.send(batch).is_err() {
            break;
        }
        done += n;
    }
    done
}

fn consumer(rx: mpsc::Receiver<Vec<Vec<u8>>>) -> u64 {
    let mut freed = 0u64;
    for batch in rx {
        freed += batch.len() as u64;
        drop(black_box(batch)); // frees on a different thread than the allocator
    }
    freed
}

fn steady_worker(id: usize, budget: Budget, size: usize) -> u64 {
    let mut rng = XorShift::new(id as u64 + 1);
    // The working set is allocated before the first op and freed after the last.
    let mut live: Vec<Vec<u8>> = (0..WORKING_SET).map(|_| make_buf(&mut rng, size)).collect();
    let mut done = 0u64;
    loop {
        let n = budget.next(done, CHUNK);
        if n == 0 {
            break;
        }
        for _ in 0..n {
            let slot = rng.range(0, WORKING_SET - 1);
            // Free the old block first, then allocate its replacement.
            drop(std::mem::take(&mut live[slot]));
            live[slot] = make_buf(&mut rng, size);
        }
        black_box(&mut live);
        done += n;
    }
    done
}

const WORDS: &[&str] = &[
    "alpha", "beta", "gamma", "delta", "musl", "glibc", "tokio", "heap", "arena", "page",
];

/// One short-lived "request" next to the long-lived cache: a few small allocations, all
/// freed when it returns. Returns a value derived from them (kept from being optimised out).
#[inline]
fn cache_request(rng: &mut XorShift, cache: &[Vec<u8>], size: usize) -> u64 {
    // A String built from a few words (grows once or twice).
    let mut s = String::new();
    for _ in 0..rng.range(2, 6) {
        s.push_str(WORDS[rng.range(0, WORDS.len() - 1)]);
        s.push('/');
    }
    // A small Vec of numbers, a request body, and a Vec of Strings.
    let nums: Vec<u64> = (0..rng.range(4, 32))
        .map(|_| rng.next_u64() & 0xFFFF)
        .collect();
    let body = make_buf(rng, size);
    let fields: Vec<String> = (0..rng.range(1, 4))
        .map(|i| WORDS[(i + s.len()) % WORDS.len()].to_string())
        .collect();
    // Read a few cache entries.
    let mut acc = 0u64;
    for _ in 0..4 {
        let e = &cache[rng.range(0, cache.len() - 1)];
        acc = acc.wrapping_add(u64::from(e[e.len() / 2]));
    }
    let (s, nums, body, fields) = black_box((s, nums, body, fields));
    acc.wrapping_add(s.len() as u64)
        .wrapping_add(nums.iter().sum::<u64>())
        .wrapping_add(body.len() as u64)
        .wrapping_add(fields.len() as u64)
}

fn cache_worker(id: usize, budget: Budget, size: usize) -> u64 {
    let mut rng = XorShift::new(id as u64 + 1);
    // The long-lived cache, allocated up front and freed after the last op.
    let mut cache: Vec<Vec<u8>> = (0..CACHE_ENTRIES)
        .map(|_| make_buf(&mut rng, size))
        .collect();
    let mut acc = 0u64;
    let mut done = 0u64;
    loop {
        let n = budget.next(done, CHUNK);
        if n == 0 {
            break;
        }
        for i in done..done + n {
            acc = acc.wrapping_add(cache_request(&mut rng, &cache, size));
            if i % CACHE_REPLACE_EVERY == 0 {
                let slot = rng.range(0, CACHE_ENTRIES - 1);
                cache[slot] = make_buf(&mut rng, size);
            }
        }
        done += n;
    }
    black_box(acc);
    black_box(&mut cache);
    done
}

fn realloc_worker(id: usize, budget: Budget) -> u64 {
    let mut rng = XorShift::new(id as u64 + 1);
    let source = [0x5Au8; REALLOC_CHUNK];
    let doublings = (REALLOC_MAX / REALLOC_MIN).trailing_zeros() as usize;
    let mut done = 0u64;
    loop {
        let n = budget.next(done, 1);
        if n == 0 {
            break;
        }
        // Log-uniform-ish target: a random power-of-two band, a random length inside it.
        let band = REALLOC_MIN << rng.range(0, doublings - 1);
        let target = rng.range(band, band * 2).min(REALLOC_MAX);
        let mut buf: Vec<u8> = Vec::new();
        while buf.len() < target {
            let k = rng.range(1, REALLOC_CHUNK).min(target - buf.len());
            buf.extend_from_slice(&source[..k]); // reallocs whenever capacity runs out
        }
        buf.shrink_to_fit(); // one more realloc, downwards
        drop(black_box(buf));
        done += n;
    }
    done
}

pub struct Outcome {
    /// Worker OS threads spawned (the main thread only spawns and joins them).
    pub os_threads: usize,
    pub ops: u64,
    pub elapsed: Duration,
}

fn join_all(handles: Vec<thread::JoinHandle<u64>>, what: &str) -> u64 {
    handles
        .into_iter()
        .map(|h| h.join().unwrap_or_else(|_| panic!("{what} panicked")))
        .sum()
}

pub fn run(cfg: &Config) -> Result<Outcome, String> {
    cfg.check()?;
    let size = cfg.size.max(MIN_SIZE);
    let threads = cfg.threads;
    let start = Instant::now();
    let deadline = cfg
        .seconds
        .map(|s| start + Duration::from_secs_f64(s.max(0.0)));
    let budget = |i: usize, n: usize| Budget {
        ops: split(cfg.ops, n, i),
        deadline,
    };
    let (ops, os_threads) = match cfg.pattern {
        Pattern::Cross => {
            // N worker threads in all: N/2 producers rounded up, the rest consumers; producer
            // i sends to consumer i % consumers.
            let producers = threads.div_ceil(2);
            let consumers = threads - producers;
            let mut senders = Vec::with_capacity(consumers);
            let mut consumer_handles = Vec::with_capacity(consumers);
            for _ in 0..consumers {
                let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
                senders.push(tx);
                consumer_handles.push(thread::spawn(move || consumer(rx)));
            }
            let producer_handles: Vec<_> = (0..producers)
                .map(|i| {
                    let b = budget(i, producers);
                    let tx = senders[i % consumers].clone();
                    thread::spawn(move || producer(i, b, size, tx))
                })
                .collect();
            drop(senders);
            let spawned = producer_handles.len() + consumer_handles.len();
            let produced = join_all(producer_handles, "producer");
            let freed = join_all(consumer_handles, "consumer");
            debug_assert_eq!(produced, freed);
            (freed, spawned)
        }
        pattern => {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let b = budget(i, threads);
                    thread::spawn(move || match pattern {
                        Pattern::Local => local_worker(i, b, size),
                        Pattern::Steady => steady_worker(i, b, size),
                        Pattern::Cache => cache_worker(i, b, size),
                        Pattern::Realloc => realloc_worker(i, b),
                        Pattern::Cross => unreachable!("handled above"),
                    })
                })
                .collect();
            let spawned = handles.len();
            (join_all(handles, "worker"), spawned)
        }
    };
    Ok(Outcome {
        os_threads,
        ops,
        elapsed: start.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(pattern: Pattern, threads: usize, ops: u64) -> Config {
        Config {
            threads,
            pattern,
            ops,
            size: 64,
            seconds: None,
        }
    }

    #[test]
    fn ops_and_threads_are_exact() {
        for pattern in Pattern::ALL {
            // A realloc op builds up to 4 MiB: fewer of them.
            let ops = if pattern == Pattern::Realloc {
                37
            } else {
                10_007
            };
            for threads in [1, 2, 3, 4] {
                if threads < pattern.min_threads() {
                    continue;
                }
                let out = run(&cfg(pattern, threads, ops)).unwrap();
                assert_eq!(out.ops, ops, "{pattern:?} x{threads}");
                assert_eq!(out.os_threads, threads, "{pattern:?} x{threads}");
            }
        }
    }

    #[test]
    fn cross_needs_two_threads() {
        let err = run(&cfg(Pattern::Cross, 1, 100))
            .err()
            .expect("cross x1 must fail");
        assert!(
            err.contains("--threads >= 2") && !err.contains('\n'),
            "{err}"
        );
        assert!(run(&cfg(Pattern::Cross, 0, 100)).is_err());
    }

    #[test]
    fn patterns_round_trip_by_name() {
        for p in Pattern::ALL {
            assert_eq!(Pattern::parse(p.name()), Some(p));
        }
        assert_eq!(Pattern::parse("nope"), None);
    }

    #[test]
    fn xorshift_range_bounds() {
        let mut r = XorShift::new(7);
        for _ in 0..10_000 {
            let v = r.range(16, 512);
            assert!((16..=512).contains(&v));
        }
    }
}
