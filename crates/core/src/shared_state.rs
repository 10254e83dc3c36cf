//! Values shared by every worker of a service (`skitai.g`): a file in shared
//! memory that the master creates and every worker maps.
//!
//! The file holds a header, then one slot per registered name. A slot has a lock
//! word (the pid of its writer), a sequence number and two value buffers. A write
//! fills the buffer not in use, then publishes it by bumping the sequence: readers
//! never wait, and a writer that dies mid-write leaves the last whole value in
//! place (its lock is taken over once its pid is gone).

use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use std::{fmt, io};

use memmap2::MmapMut;

const MAGIC: &[u8; 8] = b"SKITAIG1";
const HEADER: usize = 64;
/// Per slot: lock u32 @0, sequence u64 @8, name length u32 @16, name @24.
const CONTROL: usize = 128;
pub const NAME_MAX: usize = CONTROL - 24;
/// Per buffer: length u32 @0, tag u32 @4, value @8.
const BUFFER_HEAD: usize = 8;
/// A writer that holds a lock this long is taken to be stuck.
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);

const TAG_UNSET: u32 = 0;
const TAG_NUMBER: u32 = 1;
const TAG_JSON: u32 = 2;

/// A shared value: a number (kept exact as an f64) or JSON text for the rest.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Unset,
    Number(f64),
    Json(Vec<u8>),
}

#[derive(Debug, PartialEq)]
pub enum StateError {
    NoSuchSlot(usize),
    TooLarge { size: usize, capacity: usize },
    NotANumber,
    LockTimeout { pid: u32 },
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StateError::NoSuchSlot(slot) => write!(f, "no shared value number {slot}"),
            StateError::TooLarge { size, capacity } => write!(
                f,
                "the value takes {size} bytes, over the limit of {capacity} bytes"
            ),
            StateError::NotANumber => write!(f, "the value is not a number"),
            StateError::LockTimeout { pid } => write!(
                f,
                "process {pid} has held the value's lock for over {}s",
                LOCK_TIMEOUT.as_secs()
            ),
        }
    }
}

impl std::error::Error for StateError {}

pub struct SharedState {
    map: MmapMut,
    names: Vec<String>,
    capacity: usize,
    pid: u32,
}

fn round8(n: usize) -> usize {
    n.div_ceil(8) * 8
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

impl SharedState {
    /// Make the file at `path` (replacing any) with an unset slot per name, each
    /// taking values up to `capacity` bytes.
    pub fn create(path: &Path, names: &[String], capacity: usize) -> io::Result<SharedState> {
        for name in names {
            if name.is_empty() || name.len() > NAME_MAX {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("a shared name must have 1 to {NAME_MAX} bytes: '{name}'"),
                ));
            }
        }
        let capacity = round8(capacity.max(8));
        let size = HEADER + names.len() * slot_size(capacity);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        file.set_len(size as u64)?;
        let mut map = map(&file)?;
        map[8..12].copy_from_slice(&(names.len() as u32).to_le_bytes());
        map[12..16].copy_from_slice(&(capacity as u32).to_le_bytes());
        for (i, name) in names.iter().enumerate() {
            let at = HEADER + i * slot_size(capacity);
            map[at + 16..at + 20].copy_from_slice(&(name.len() as u32).to_le_bytes());
            map[at + 24..at + 24 + name.len()].copy_from_slice(name.as_bytes());
        }
        // The magic last: a half-made file is never taken for a whole one.
        map[..8].copy_from_slice(MAGIC);
        map.flush_async()?;
        Ok(SharedState {
            map,
            names: names.to_vec(),
            capacity,
            pid: std::process::id(),
        })
    }

    /// Map a file that `create` made (in another process).
    pub fn open(path: &Path) -> io::Result<SharedState> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let map = map(&file)?;
        if map.len() < HEADER || &map[..8] != MAGIC {
            return Err(invalid(format!(
                "{} is not a skitai shared state file",
                path.display()
            )));
        }
        let word = |at: usize| u32::from_le_bytes([map[at], map[at + 1], map[at + 2], map[at + 3]]);
        let (count, capacity) = (word(8) as usize, word(12) as usize);
        if !capacity.is_multiple_of(8) || map.len() != HEADER + count * slot_size(capacity) {
            return Err(invalid(format!("{} has a broken header", path.display())));
        }
        let mut names = Vec::with_capacity(count);
        for i in 0..count {
            let at = HEADER + i * slot_size(capacity);
            let len = word(at + 16) as usize;
            let name = map
                .get(at + 24..at + 24 + len.min(NAME_MAX))
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or_else(|| invalid(format!("{} has a broken name", path.display())))?;
            names.push(name.to_owned());
        }
        Ok(SharedState {
            map,
            names,
            capacity,
            pid: std::process::id(),
        })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The largest value a slot takes, in bytes (a number takes 8).
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The last whole value written, whatever writers do meanwhile.
    pub fn read(&self, slot: usize) -> Result<Value, StateError> {
        let slot = self.slot(slot)?;
        loop {
            let seen = slot.sequence().load(Ordering::Acquire);
            let published = seen / 2;
            let value = slot.buffer(published).load(self.capacity);
            fence(Ordering::Acquire);
            // A writer overwrites this buffer two generations on; it announces
            // that (sequence 2g+3) before touching the bytes.
            if slot.sequence().load(Ordering::Relaxed) < 2 * published + 3 {
                return Ok(value);
            }
        }
    }

    pub fn write(&self, slot: usize, value: &Value) -> Result<(), StateError> {
        let size = match value {
            Value::Json(text) => text.len(),
            _ => 8,
        };
        if size > self.capacity {
            return Err(StateError::TooLarge {
                size,
                capacity: self.capacity,
            });
        }
        let slot = self.slot(slot)?;
        let _held = slot.lock(self.pid)?;
        slot.publish(value);
        Ok(())
    }

    /// Add `by` to a number (an unset value counts as 0); the new value.
    pub fn incr(&self, slot: usize, by: f64) -> Result<f64, StateError> {
        let slot = self.slot(slot)?;
        let _held = slot.lock(self.pid)?;
        // Under the lock no one else writes: the published value is stable.
        let sum = match slot.current(self.capacity) {
            Value::Unset => by,
            Value::Number(n) => n + by,
            Value::Json(_) => return Err(StateError::NotANumber),
        };
        slot.publish(&Value::Number(sum));
        Ok(sum)
    }

    fn slot(&self, slot: usize) -> Result<Slot<'_>, StateError> {
        if slot >= self.names.len() {
            return Err(StateError::NoSuchSlot(slot));
        }
        let at = HEADER + slot * slot_size(self.capacity);
        Ok(Slot {
            bytes: &self.map[at..at + slot_size(self.capacity)],
            capacity: self.capacity,
        })
    }
}

fn slot_size(capacity: usize) -> usize {
    CONTROL + 2 * (BUFFER_HEAD + capacity)
}

fn map(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the file is only ever accessed through atomics (see `Slot`), so
    // concurrent writers in other processes cannot break Rust's aliasing rules.
    unsafe { MmapMut::map_mut(file) }
}

/// One slot's bytes; every access goes through atomics because other processes
/// write them concurrently.
struct Slot<'a> {
    bytes: &'a [u8],
    capacity: usize,
}

struct Held<'a> {
    lock: &'a AtomicU32,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.lock.store(0, Ordering::Release);
    }
}

impl<'a> Slot<'a> {
    fn u32_at(&self, at: usize) -> &'a AtomicU32 {
        // SAFETY: `at` is a multiple of 4 within the slot, and the map is page aligned.
        unsafe { &*self.bytes.as_ptr().add(at).cast::<AtomicU32>() }
    }

    fn sequence(&self) -> &'a AtomicU64 {
        // SAFETY: offset 8 of a slot, which starts at a multiple of 8.
        unsafe { &*self.bytes.as_ptr().add(8).cast::<AtomicU64>() }
    }

    fn buffer(&self, generation: u64) -> Buffer<'a> {
        let at = CONTROL + (generation % 2) as usize * (BUFFER_HEAD + self.capacity);
        Buffer {
            bytes: &self.bytes[at..at + BUFFER_HEAD + self.capacity],
        }
    }

    fn lock(&self, me: u32) -> Result<Held<'a>, StateError> {
        let lock = self.u32_at(0);
        let started = Instant::now();
        let mut spins = 0u32;
        loop {
            match lock.compare_exchange(0, me, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => return Ok(Held { lock }),
                Err(owner) => {
                    spins += 1;
                    if spins.is_multiple_of(64) {
                        if owner != me
                            && !alive(owner)
                            && lock
                                .compare_exchange(owner, me, Ordering::Acquire, Ordering::Relaxed)
                                .is_ok()
                        {
                            return Ok(Held { lock });
                        }
                        if started.elapsed() > LOCK_TIMEOUT {
                            return Err(StateError::LockTimeout { pid: owner });
                        }
                        std::thread::yield_now();
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        }
    }

    /// The published value; call with the lock held.
    fn current(&self, capacity: usize) -> Value {
        self.buffer(self.sequence().load(Ordering::Acquire) / 2)
            .load(capacity)
    }

    /// Write the next generation and make it the published one; call with the lock held.
    fn publish(&self, value: &Value) {
        let sequence = self.sequence();
        // An odd sequence left by a writer that died is the same generation.
        let next = sequence.load(Ordering::Relaxed) / 2 + 1;
        sequence.store(2 * next - 1, Ordering::Relaxed);
        fence(Ordering::Release);
        self.buffer(next).store(value);
        sequence.store(2 * next, Ordering::Release);
    }
}

struct Buffer<'a> {
    bytes: &'a [u8],
}

impl Buffer<'_> {
    fn word(&self, index: usize) -> &AtomicU64 {
        // SAFETY: buffers start at multiples of 8 and hold whole words.
        unsafe { &*self.bytes.as_ptr().add(index * 8).cast::<AtomicU64>() }
    }

    fn load(&self, capacity: usize) -> Value {
        let head = self.word(0).load(Ordering::Relaxed);
        let (len, tag) = ((head & 0xffff_ffff) as usize, (head >> 32) as u32);
        match tag {
            TAG_NUMBER => Value::Number(f64::from_bits(self.word(1).load(Ordering::Relaxed))),
            // A length past the buffer can only be a torn read; the caller retries.
            TAG_JSON if len <= capacity => {
                let mut text = Vec::with_capacity(round8(len));
                for i in 0..round8(len) / 8 {
                    text.extend_from_slice(&self.word(1 + i).load(Ordering::Relaxed).to_le_bytes());
                }
                text.truncate(len);
                Value::Json(text)
            }
            _ => Value::Unset,
        }
    }

    fn store(&self, value: &Value) {
        let (len, tag) = match value {
            Value::Unset => (0, TAG_UNSET),
            Value::Number(n) => {
                self.word(1).store(n.to_bits(), Ordering::Relaxed);
                (8, TAG_NUMBER)
            }
            Value::Json(text) => {
                for (i, chunk) in text.chunks(8).enumerate() {
                    let mut word = [0u8; 8];
                    word[..chunk.len()].copy_from_slice(chunk);
                    self.word(1 + i)
                        .store(u64::from_le_bytes(word), Ordering::Relaxed);
                }
                (text.len(), TAG_JSON)
            }
        };
        self.word(0)
            .store((u64::from(tag) << 32) | len as u64, Ordering::Relaxed);
    }
}

#[cfg(unix)]
fn alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: signal 0 only asks whether the process exists.
    let status = unsafe { libc::kill(pid, 0) };
    status == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn alive(_pid: u32) -> bool {
    // No cheap check: a stuck lock ends with the timeout.
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn temp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("skitai-g-{}-{name}", std::process::id()))
    }

    #[test]
    fn values_written_in_one_mapping_are_read_in_another() {
        let path = temp("two-maps");
        let a = SharedState::create(&path, &names(&["N", "TEXT"]), 64).unwrap();
        let b = SharedState::open(&path).unwrap();
        assert_eq!(b.names(), &names(&["N", "TEXT"])[..]);
        assert_eq!(b.read(0).unwrap(), Value::Unset);
        a.write(0, &Value::Number(4.5)).unwrap();
        a.write(1, &Value::Json(b"\"maintenance at 2am\"".to_vec()))
            .unwrap();
        assert_eq!(b.read(0).unwrap(), Value::Number(4.5));
        assert_eq!(
            b.read(1).unwrap(),
            Value::Json(b"\"maintenance at 2am\"".to_vec())
        );
        a.write(1, &Value::Unset).unwrap();
        assert_eq!(b.read(1).unwrap(), Value::Unset);
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn limits_are_errors() {
        let path = temp("limits");
        let g = SharedState::create(&path, &names(&["A"]), 10).unwrap();
        assert_eq!(g.capacity(), 16);
        assert_eq!(
            g.write(0, &Value::Json(vec![b'1'; 17])),
            Err(StateError::TooLarge {
                size: 17,
                capacity: 16
            })
        );
        assert_eq!(g.read(1), Err(StateError::NoSuchSlot(1)));
        g.write(0, &Value::Json(b"[]".to_vec())).unwrap();
        assert_eq!(g.incr(0, 1.0), Err(StateError::NotANumber));
        assert!(SharedState::create(&path, &names(&[""]), 8).is_err());
        std::fs::write(
            &path,
            b"not a state file at all, not at all, no.............",
        )
        .unwrap();
        assert!(SharedState::open(&path).is_err());
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn a_writer_that_died_mid_write_leaves_the_last_value_and_its_lock() {
        let path = temp("dead-writer");
        let g = SharedState::create(&path, &names(&["C"]), 8).unwrap();
        g.write(0, &Value::Number(1.0)).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        // As the dead writer left it: lock held, next generation announced, half written.
        let slot = g.slot(0).unwrap();
        slot.u32_at(0).store(dead, Ordering::Relaxed);
        slot.sequence().store(3, Ordering::Relaxed);
        slot.buffer(2).store(&Value::Json(b"\"half".to_vec()));
        assert_eq!(g.read(0).unwrap(), Value::Number(1.0));
        assert_eq!(g.incr(0, 2.0).unwrap(), 3.0);
        assert_eq!(g.read(0).unwrap(), Value::Number(3.0));
        std::fs::remove_file(path).unwrap();
    }

    #[test]
    fn increments_from_many_threads_are_exact() {
        let path = temp("threads");
        SharedState::create(&path, &names(&["TOTAL", "TEXT"]), 64).unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    // Each thread maps the file itself, like a worker process.
                    let g = SharedState::open(&path).unwrap();
                    for i in 0..10_000 {
                        g.incr(0, 1.0).unwrap();
                        let text = format!("\"{}\"", "x".repeat(i % 50));
                        g.write(1, &Value::Json(text.into_bytes())).unwrap();
                        match g.read(1).unwrap() {
                            Value::Json(t) => {
                                assert!(t.iter().skip(1).take(t.len() - 2).all(|&b| b == b'x'))
                            }
                            other => panic!("torn read: {other:?}"),
                        }
                    }
                });
            }
        });
        let g = SharedState::open(&path).unwrap();
        assert_eq!(g.read(0).unwrap(), Value::Number(40_000.0));
        std::fs::remove_file(path).unwrap();
    }
}
