//! The on-disk MQTT queue (reference §8 "Queueing"; on unless
//! `disable-mqtt-filequeue`): signed `new_qname` messages wait here, under
//! `<data-dir>/mqtt/queue`, until the broker takes them, so an outage or a
//! restart loses nothing that was queued.
//!
//! A `fjall` keyspace (the store the seen check already uses) with one
//! partition: key = a big-endian sequence number, value = the signed message.
//! Pushing appends at the tail; the sender reads from the head and removes
//! what it handed to the broker. Reads seek from the head sequence, so the
//! tombstones of removed messages are never scanned. The queue is bounded
//! (`mqtt-filequeue-max-messages`): a push beyond it is refused and the event
//! counted as discarded, so a long outage cannot fill the disk.
//!
//! The reference's autopaho file format (`queue*.msg`) is Go-specific; a queue
//! left by the Go EDM is not read.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The queue could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the MQTT file queue {path}")]
pub struct OpenError {
    /// The queue directory.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: fjall::Error,
}

/// A persistent FIFO of messages.
pub struct FileQueue {
    keyspace: fjall::Keyspace,
    messages: fjall::PartitionHandle,
    /// Next sequence number to push (taken under the lock so pushes stay ordered).
    tail: Mutex<u64>,
    /// First sequence number that may still be queued.
    head: AtomicU64,
    len: AtomicU64,
    max: u64,
}

impl std::fmt::Debug for FileQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileQueue")
            .field("len", &self.len())
            .field("max", &self.max)
            .finish()
    }
}

fn seq_of(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(key.try_into().ok()?))
}

impl FileQueue {
    /// Open (or create) the queue in `dir`, holding at most `max` messages.
    /// Messages left by an earlier run are kept, in order.
    ///
    /// # Errors
    /// [`OpenError`] naming the directory.
    pub fn open(dir: &Path, max: u64) -> Result<Self, OpenError> {
        let err = |source| OpenError {
            path: dir.to_path_buf(),
            source,
        };
        let keyspace = fjall::Config::new(dir).open().map_err(err)?;
        let messages = keyspace
            .open_partition("messages", fjall::PartitionCreateOptions::default())
            .map_err(err)?;
        // One pass over what an earlier run left (bounded by `max`).
        let (mut head, mut tail, mut len) = (None, 0u64, 0u64);
        for kv in messages.keys() {
            let key = kv.map_err(err)?;
            let Some(seq) = seq_of(&key) else {
                // Not ours: remove it rather than stall on it forever.
                messages.remove(key).map_err(err)?;
                continue;
            };
            head.get_or_insert(seq);
            tail = seq + 1;
            len += 1;
        }
        Ok(Self {
            keyspace,
            messages,
            tail: Mutex::new(tail),
            head: AtomicU64::new(head.unwrap_or(tail)),
            len: AtomicU64::new(len),
            max,
        })
    }

    /// Messages waiting.
    pub fn len(&self) -> u64 {
        self.len.load(Relaxed)
    }

    /// No message waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append `msg`. `Ok(false)`: the queue is full and `msg` was not queued.
    ///
    /// # Errors
    /// The store's write error (`msg` was not queued).
    pub fn push(&self, msg: &[u8]) -> Result<bool, fjall::Error> {
        let mut tail = self.tail.lock().unwrap_or_else(|p| p.into_inner());
        if self.len() >= self.max {
            return Ok(false);
        }
        self.messages.insert(tail.to_be_bytes(), msg)?;
        *tail += 1;
        self.len.fetch_add(1, Relaxed);
        Ok(true)
    }

    /// The oldest message and its sequence number, without removing it.
    ///
    /// # Errors
    /// The store's read error.
    pub fn front(&self) -> Result<Option<(u64, fjall::Slice)>, fjall::Error> {
        let head = self.head.load(Relaxed);
        match self.messages.range(head.to_be_bytes()..).next() {
            None => Ok(None),
            Some(kv) => {
                let (k, v) = kv?;
                Ok(seq_of(&k).map(|s| (s, v)))
            }
        }
    }

    /// Remove the message `seq` returned by [`FileQueue::front`].
    ///
    /// # Errors
    /// The store's write error (the message stays queued).
    pub fn remove(&self, seq: u64) -> Result<(), fjall::Error> {
        self.messages.remove(seq.to_be_bytes())?;
        self.head.store(seq + 1, Relaxed);
        self.len.fetch_sub(1, Relaxed);
        Ok(())
    }

    /// Flush the journal to disk.
    ///
    /// # Errors
    /// The store's error.
    pub fn persist(&self) -> Result<(), fjall::Error> {
        self.keyspace.persist(fjall::PersistMode::SyncAll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(q: &FileQueue) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some((seq, m)) = q.front().unwrap() {
            out.push(m.to_vec());
            q.remove(seq).unwrap();
        }
        out
    }

    #[test]
    fn fifo_bounded_and_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let q = FileQueue::open(dir.path(), 3).unwrap();
        assert!(q.front().unwrap().is_none());
        for m in [b"a", b"b", b"c"] {
            assert!(q.push(m).unwrap());
        }
        assert!(!q.push(b"d").unwrap(), "full");
        assert_eq!(q.len(), 3);
        let (seq, m) = q.front().unwrap().unwrap();
        assert_eq!(&*m, b"a");
        q.remove(seq).unwrap();
        assert!(q.push(b"e").unwrap());
        q.persist().unwrap();
        drop(q);

        let q = FileQueue::open(dir.path(), 3).unwrap();
        assert_eq!(q.len(), 3);
        assert!(q.push(b"f").is_ok_and(|ok| !ok), "still full after reopen");
        assert_eq!(drain(&q), [b"b", b"c", b"e"]);
        assert!(q.is_empty());
        assert!(q.push(b"g").unwrap());
        drop(q);
        let q = FileQueue::open(dir.path(), 3).unwrap();
        assert_eq!(
            drain(&q),
            [b"g"],
            "sequence continues after the drained ones"
        );
    }

    #[test]
    fn many_messages_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let q = FileQueue::open(dir.path(), 1_000_000).unwrap();
        for i in 0..20_000u32 {
            assert!(q.push(&i.to_le_bytes()).unwrap());
        }
        let got = drain(&q);
        assert_eq!(got.len(), 20_000);
        for (i, m) in got.iter().enumerate() {
            assert_eq!(m, &(i as u32).to_le_bytes());
        }
    }
}
