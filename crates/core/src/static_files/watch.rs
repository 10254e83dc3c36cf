//! Change notices for cached files, so that a cached file is known current
//! without a stat per request: inotify watches on the directories from the
//! root down to each cached file. Before a request looks in the cache it takes
//! the notices queued so far: a look at an epoll set that holds only the
//! inotify descriptor, and a read only when that says notices wait. The kernel
//! queues a notice, and marks the set ready, while the change is made, so a
//! change made before the request was sent is always seen. Watches follow
//! directories, not paths: a renamed or removed directory on the way (or the
//! root itself) drops every cached entry.
//! Misses are kept too, while nothing changes in the directories watched for them.
//!
//! Only local filesystems are watched, where every change goes through this
//! kernel; on network filesystems other machines' changes go unreported, so
//! their files, and any when watches run out, are checked by a stat per request.

#[cfg(target_os = "linux")]
pub use self::linux::Watcher;

#[cfg(not(target_os = "linux"))]
pub use self::elsewhere::Watcher;

use std::path::PathBuf;

/// What a notice says went stale.
pub enum Change {
    /// The entry of the file at this path, and of the file this one is a
    /// precompressed sibling of (`x.gz` for `x`); or a directory appeared there.
    Path(PathBuf),
    /// Possibly anything: a directory moved or went, or notices were lost.
    Everything,
}

#[cfg(target_os = "linux")]
mod linux {
    use std::ffi::CString;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::sync::Mutex;

    use inotify::{EventMask, Inotify, WatchMask};
    use rustc_hash::FxHashMap;

    use super::Change;

    /// Every way a directory's entries can change, and the directory itself go.
    const MASK: WatchMask = WatchMask::MODIFY
        .union(WatchMask::ATTRIB)
        // Writes through a shared mapping raise no MODIFY, only this at close.
        .union(WatchMask::CLOSE_WRITE)
        .union(WatchMask::CREATE)
        .union(WatchMask::DELETE)
        .union(WatchMask::MOVED_FROM)
        .union(WatchMask::MOVED_TO)
        .union(WatchMask::DELETE_SELF)
        .union(WatchMask::MOVE_SELF)
        .union(WatchMask::ONLYDIR);

    /// What the directory itself went through: nothing below it can be trusted.
    const GONE: EventMask = EventMask::DELETE_SELF
        .union(EventMask::MOVE_SELF)
        .union(EventMask::IGNORED)
        .union(EventMask::Q_OVERFLOW);

    pub struct Watcher {
        /// An epoll set of the inotify descriptor alone: ready while notices
        /// are queued, looked at without the lock.
        queue: OwnedFd,
        inner: Mutex<Inner>,
    }

    struct Inner {
        inotify: Inotify,
        /// Each watch's directory.
        dirs: FxHashMap<i32, std::path::PathBuf>,
        buffer: Box<[u8]>,
    }

    impl Watcher {
        /// None where inotify is unavailable (its instances per user ran out, say).
        pub fn new() -> Option<Watcher> {
            let inotify = Inotify::init().ok()?;
            let queue = readiness_of(inotify.as_raw_fd())?;
            Some(Watcher {
                queue,
                inner: Mutex::new(Inner {
                    inotify,
                    dirs: FxHashMap::default(),
                    buffer: vec![0; 4096].into_boxed_slice(),
                }),
            })
        }

        fn inner(&self) -> std::sync::MutexGuard<'_, Inner> {
            self.inner.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// Watch the directories from `root` down to `dir`. False when some
        /// cannot be (a network filesystem, no watches left): what was read there
        /// is then checked by stat, or not kept. Blocking; call it before
        /// reading, so that a change after the read is noticed.
        pub fn watch(&self, root: &Path, mut dir: &Path) -> bool {
            if !dir.starts_with(root) || !local_filesystem(dir) {
                return false;
            }
            let mut inner = self.inner();
            loop {
                // A directory watched already keeps its watch (and its id).
                let Ok(wd) = inner.inotify.watches().add(dir, MASK) else {
                    return false;
                };
                inner
                    .dirs
                    .entry(wd.get_watch_descriptor_id())
                    .or_insert_with(|| dir.to_owned());
                if dir == root {
                    return true;
                }
                match dir.parent() {
                    Some(parent) if parent.starts_with(root) => dir = parent,
                    _ => return false,
                }
            }
        }

        /// Notices are queued. A zero-timeout `epoll_pwait` on a set whose
        /// readiness the kernel keeps as notices come costs about what the
        /// cheapest system call does (120 ns here, where FIONREAD's locks and
        /// security hooks take 190, and an empty read more). Made through
        /// `syscall`, not glibc's wrapper: in a process with threads (node) the
        /// wrapper's cancellation point adds about 40 ns to every call, and a
        /// call that never blocks has no use for one. (On error: some, so that
        /// the read finds out.)
        fn queued(&self) -> bool {
            let mut event = libc::epoll_event { events: 0, u64: 0 };
            let no_mask: *const libc::sigset_t = std::ptr::null();
            // SAFETY: `queue` is an open epoll descriptor; one event is written
            // at most; a null signal mask leaves the thread's as it is.
            let ready = unsafe {
                libc::syscall(
                    libc::SYS_epoll_pwait,
                    self.queue.as_raw_fd(),
                    &mut event as *mut libc::epoll_event,
                    1,
                    0,
                    no_mask,
                    0usize,
                )
            };
            ready != 0
        }

        /// Hand each notice queued so far to `stale`.
        pub fn take(&self, mut stale: impl FnMut(Change)) {
            if !self.queued() {
                return;
            }
            let mut guard = self.inner();
            let inner = &mut *guard;
            // A full buffer may leave more behind it.
            loop {
                let events = match inner.inotify.read_events(&mut inner.buffer) {
                    Ok(events) => events,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        // Unreadable notices: trust nothing cached.
                        stale(Change::Everything);
                        break;
                    }
                };
                for event in events {
                    let id = event.wd.get_watch_descriptor_id();
                    if event.mask.intersects(GONE) {
                        inner.dirs.remove(&id);
                        stale(Change::Everything);
                        continue;
                    }
                    let (Some(dir), Some(name)) = (inner.dirs.get(&id), event.name) else {
                        continue;
                    };
                    if event.mask.contains(EventMask::ISDIR)
                        && event
                            .mask
                            .intersects(EventMask::MOVED_FROM | EventMask::DELETE)
                    {
                        // A directory on some cached file's way moved or went.
                        stale(Change::Everything);
                        continue;
                    }
                    stale(Change::Path(dir.join(name)));
                }
            }
        }
    }

    /// An epoll set holding `fd` alone, level-triggered: ready while `fd` has something to read.
    fn readiness_of(fd: RawFd) -> Option<OwnedFd> {
        // SAFETY: plain system calls; the new descriptor is owned at once.
        let queue = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if queue < 0 {
            return None;
        }
        let queue = unsafe { OwnedFd::from_raw_fd(queue) };
        let mut interest = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: 0,
        };
        // SAFETY: both descriptors are open; `interest` is read by the call.
        let added =
            unsafe { libc::epoll_ctl(queue.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut interest) };
        (added == 0).then_some(queue)
    }

    /// Filesystems whose every change this kernel makes, and so reports.
    fn local_filesystem(dir: &Path) -> bool {
        const LOCAL: [i64; 14] = [
            0xEF53,     // ext2, ext3, ext4
            0x58465342, // xfs
            0x9123683E, // btrfs
            0xCA451A4E, // bcachefs
            0x01021994, // tmpfs
            0x858458F6, // ramfs
            0x794C7630, // overlayfs
            0x2FC12FC1, // zfs
            0xF2F52010, // f2fs
            0x73717368, // squashfs (read-only)
            0xE0F5E1E2, // erofs (read-only)
            0x4D44,     // vfat
            0x2011BAB0, // exfat
            0x7366746E, // ntfs3
        ];
        let Ok(path) = CString::new(dir.as_os_str().as_bytes()) else {
            return false;
        };
        // SAFETY: `path` is NUL-terminated and `stat` is written by the call.
        let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statfs(path.as_ptr(), &mut stat) } != 0 {
            return false;
        }
        #[allow(clippy::unnecessary_cast)]
        LOCAL.contains(&(stat.f_type as i64))
    }
}

#[cfg(not(target_os = "linux"))]
mod elsewhere {
    use std::path::Path;

    use super::Change;

    /// No change notices here: every cached entry is checked by stat.
    pub struct Watcher;

    impl Watcher {
        pub fn new() -> Option<Watcher> {
            None
        }

        pub fn watch(&self, _root: &Path, _dir: &Path) -> bool {
            false
        }

        pub fn take(&self, _stale: impl FnMut(Change)) {}
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    /// What `take` hands over, as text.
    fn taken(watcher: &Watcher) -> Vec<String> {
        let mut out = Vec::new();
        watcher.take(|change| {
            out.push(match change {
                Change::Path(path) => path.display().to_string(),
                Change::Everything => "everything".into(),
            })
        });
        out
    }

    #[test]
    fn notices_name_the_changed_file_and_a_moved_directory_drops_everything() {
        let root = std::env::temp_dir().join(format!("skitai-watch-{}", std::process::id()));
        let dir = root.join("a");
        std::fs::create_dir_all(&dir).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        let file = root.join("a").join("f.txt");
        std::fs::write(&file, "one").unwrap();
        let watcher = Watcher::new().unwrap();
        // Only a local filesystem is watched; where the test runs on another, skip.
        if !watcher.watch(&root, &root.join("a")) {
            return;
        }
        assert!(taken(&watcher).is_empty(), "nothing changed yet");
        std::fs::write(&file, "two").unwrap();
        let changes = taken(&watcher);
        assert!(!changes.is_empty());
        assert!(
            changes.iter().all(|c| *c == file.display().to_string()),
            "{changes:?}"
        );
        assert!(taken(&watcher).is_empty(), "each notice is taken once");
        std::fs::rename(root.join("a"), root.join("b")).unwrap();
        assert!(taken(&watcher).contains(&"everything".to_string()));
        std::fs::remove_dir_all(&root).unwrap();
    }
}
