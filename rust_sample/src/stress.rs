//! Allocation micro-benchmark: `rust_sample stress`.

use std::hint::black_box;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// Objects allocated per batch before they are freed.
const BATCH: usize = 64;
/// Bounded channel depth (in batches) for the cross-thread pattern.
const CHANNEL_DEPTH: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    Local,
    Cross,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub threads: usize,
    pub pattern: Pattern,
    pub ops: u64,
    pub size: usize,
    pub seconds: Option<f64>,
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
    #[inline]
    fn more(&self, done: u64) -> bool {
        match self.deadline {
            Some(d) => Instant::now() < d,
            None => done < self.ops,
        }
    }
}

fn local_worker(id: usize, budget: Budget, size: usize) -> u64 {
    let mut rng = XorShift::new(id as u64 + 1);
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(BATCH);
    let mut done = 0u64;
    while budget.more(done) {
        let n = match budget.deadline {
            Some(_) => BATCH as u64,
            None => (budget.ops - done).min(BATCH as u64),
        };
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
    while budget.more(done) {
        let n = match budget.deadline {
            Some(_) => BATCH as u64,
            None => (budget.ops - done).min(BATCH as u64),
        };
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

pub struct Outcome {
    pub os_threads: usize,
    pub ops: u64,
    pub elapsed: Duration,
}

pub fn run(cfg: &Config) -> Outcome {
    let size = cfg.size.max(MIN_SIZE);
    let threads = cfg.threads.max(1);
    let start = Instant::now();
    let deadline = cfg
        .seconds
        .map(|s| start + Duration::from_secs_f64(s.max(0.0)));
    match cfg.pattern {
        Pattern::Local => {
            let handles: Vec<_> = (0..threads)
                .map(|i| {
                    let budget = Budget {
                        ops: split(cfg.ops, threads, i),
                        deadline,
                    };
                    thread::spawn(move || local_worker(i, budget, size))
                })
                .collect();
            let ops = handles
                .into_iter()
                .map(|h| h.join().expect("worker panicked"))
                .sum();
            Outcome {
                os_threads: threads,
                ops,
                elapsed: start.elapsed(),
            }
        }
        Pattern::Cross => {
            // Half producers, half consumers; a single thread becomes one pair.
            let producers = threads.div_ceil(2).max(1);
            let consumers = (threads / 2).max(1);
            let mut senders = Vec::with_capacity(consumers);
            let mut consumer_handles = Vec::with_capacity(consumers);
            for _ in 0..consumers {
                let (tx, rx) = mpsc::sync_channel(CHANNEL_DEPTH);
                senders.push(tx);
                consumer_handles.push(thread::spawn(move || consumer(rx)));
            }
            let producer_handles: Vec<_> = (0..producers)
                .map(|i| {
                    let budget = Budget {
                        ops: split(cfg.ops, producers, i),
                        deadline,
                    };
                    let tx = senders[i % consumers].clone();
                    thread::spawn(move || producer(i, budget, size, tx))
                })
                .collect();
            drop(senders);
            let produced: u64 = producer_handles
                .into_iter()
                .map(|h| h.join().expect("producer panicked"))
                .sum();
            let freed: u64 = consumer_handles
                .into_iter()
                .map(|h| h.join().expect("consumer panicked"))
                .sum();
            debug_assert_eq!(produced, freed);
            Outcome {
                os_threads: producers + consumers,
                ops: freed,
                elapsed: start.elapsed(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_are_exact() {
        for pattern in [Pattern::Local, Pattern::Cross] {
            for threads in [1, 2, 3] {
                let cfg = Config {
                    threads,
                    pattern,
                    ops: 10_007,
                    size: 64,
                    seconds: None,
                };
                assert_eq!(run(&cfg).ops, 10_007, "{pattern:?} x{threads}");
            }
        }
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
