//! The kernel's event timeline as it travels to the daemon: fixed-size binary records,
//! the bounded ring that gathers them in the guest, and the checks the daemon makes of a
//! batch before it believes a byte of it.
//!
//! # A record
//!
//! Sixteen bytes, two little-endian `u64` words:
//!
//! | word | bits | what |
//! |---|---|---|
//! | 0 | 0..44 | the kernel clock (ns) modulo 2^44 (about 4.9 hours) |
//! | 0 | 44..60 | the pid (its low 16 bits; 0 for the kernel itself) |
//! | 0 | 60..64 | the [`Kind`] |
//! | 1 | 0..64 | the kind's word: an event id, a count, a call number |
//!
//! The clock's high bits travel in [`Kind::TimeBase`] records, whose word is the whole
//! time: the ring writes one at the start of every buffer and whenever the high bits
//! change, so every batch can be read alone and every record's time is exact.
//!
//! The kernel reads its clock once per entry (a system call, an upcall, a wake from
//! idle) and stamps every record that entry makes with it, so records of one entry
//! often share a time: their order is the order in the batch, and times never go
//! backwards.
//!
//! # A process's name
//!
//! When a process is created the kernel writes its name as [`Kind::Name`] records, all
//! with the process's pid and the same time, one after another in one buffer (so in
//! one batch). The word of each, as little-endian bytes:
//!
//! | byte | what |
//! |---|---|
//! | 0 | the name format, [`NAME_FORMAT`] |
//! | 1 | bits 0..4: this part's index; bits 4..8: the last part's index |
//! | 2..8 | [`NAME_BYTES_PER_RECORD`] bytes of the name's UTF-8; the last part padded with zero bytes |
//!
//! At most [`MAX_NAME_PARTS`] parts ([`MAX_NAME_BYTES`] bytes; the kernel cuts a longer
//! name at a character boundary). A daemon that predates the kind refuses the batch
//! ([`TraceError::UnknownKind`]); one that meets a name format newer than its own
//! checks only the record's time and ignores it ([`Record::name_format`]).
//!
//! # The ring
//!
//! [`Ring`] is `buffers × per_buffer` records allocated once: constant memory. Records
//! fill the buffers in turn; a full buffer waits to be taken ([`Ring::take`]) and shipped
//! as one `Trace` RPC. When every buffer is full a new record is dropped and counted
//! ([`Ring::dropped`]): recording never waits and never allocates.
//!
//! # Reading a batch
//!
//! [`parse`] reads records a guest sent as hostile: every kind known, the first record a
//! time base, a time base consistent with itself and pid 0, times never going backwards.
//! Any violation rejects the whole batch with a named [`TraceError`].

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Bytes of one record.
pub const RECORD_BYTES: usize = 16;
/// Bits of the clock a record carries itself.
pub const TIME_BITS: u32 = 44;
const TIME_MASK: u64 = (1 << TIME_BITS) - 1;
const PID_SHIFT: u32 = TIME_BITS;
const KIND_SHIFT: u32 = 60;

/// What a record says happened. The codes of the event kinds are `events::Happened`'s.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Kind {
    /// The clock's whole value (the word); pid 0.
    TimeBase = 1,
    /// An event was created; the word is its id.
    Created = 2,
    /// An event was completed; the word is its id.
    Completed = 3,
    /// The process blocked on a wait tree; the word is its leaves, bit 32 set when it was
    /// satisfied at once.
    Blocked = 4,
    /// The process was woken; the word is the leaves that had completed.
    Woken = 5,
    /// An event was retired; the word is its id.
    Retired = 6,
    /// An event was cancelled; the word is its id.
    Cancelled = 7,
    /// The process was switched in; the word is its slot.
    Switch = 8,
    /// Upcalls were taken (pid 0); the word is how many since the last such record.
    Upcall = 9,
    /// The process made a system call; the word is its number (`abi::Call`).
    Syscall = 10,
    /// The process left the event table; the word is how many events it still held.
    Exited = 11,
    /// Part of the name of a process just created (see the [module
    /// documentation](self)).
    Name = 12,
}

impl Kind {
    /// Every kind, in code order.
    pub const ALL: [Kind; 12] = [
        Kind::TimeBase,
        Kind::Created,
        Kind::Completed,
        Kind::Blocked,
        Kind::Woken,
        Kind::Retired,
        Kind::Cancelled,
        Kind::Switch,
        Kind::Upcall,
        Kind::Syscall,
        Kind::Exited,
        Kind::Name,
    ];

    /// The kind with this code, if any.
    pub fn from_code(code: u8) -> Option<Kind> {
        Kind::ALL.get(usize::from(code).wrapping_sub(1)).copied()
    }

    /// A short name, for timelines.
    pub fn name(self) -> &'static str {
        match self {
            Kind::TimeBase => "time base",
            Kind::Created => "create",
            Kind::Completed => "complete",
            Kind::Blocked => "block",
            Kind::Woken => "wake",
            Kind::Retired => "retire",
            Kind::Cancelled => "cancel",
            Kind::Switch => "switch",
            Kind::Upcall => "upcall",
            Kind::Syscall => "syscall",
            Kind::Exited => "exit",
            Kind::Name => "name",
        }
    }
}

/// The bit of a [`Kind::Blocked`] word that says the tree was satisfied at once.
pub const BLOCKED_SATISFIED: u64 = 1 << 32;

/// One record, read back with its whole time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// The kernel clock, ns.
    pub time_ns: u64,
    /// What happened.
    pub kind: Kind,
    /// The process (low 16 bits of its pid; 0 for the kernel).
    pub pid: u16,
    /// The kind's word.
    pub word: u64,
}

/// The name format this crate writes and reads: byte 0 of a [`Kind::Name`] word.
pub const NAME_FORMAT: u8 = 1;
/// Bytes of a name one [`Kind::Name`] record carries.
pub const NAME_BYTES_PER_RECORD: usize = 6;
/// Most [`Kind::Name`] records of one name.
pub const MAX_NAME_PARTS: usize = 4;
/// Most bytes of a name in the trace.
pub const MAX_NAME_BYTES: usize = NAME_BYTES_PER_RECORD * MAX_NAME_PARTS;

/// The words of `name`'s [`Kind::Name`] records and how many there are (none for an
/// empty name); a name longer than [`MAX_NAME_BYTES`] is cut at a character boundary.
pub fn name_words(name: &str) -> ([u64; MAX_NAME_PARTS], usize) {
    let mut end = name.len().min(MAX_NAME_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    let bytes = &name.as_bytes()[..end];
    let mut words = [0u64; MAX_NAME_PARTS];
    let parts = bytes.len().div_ceil(NAME_BYTES_PER_RECORD);
    for (part, chunk) in bytes.chunks(NAME_BYTES_PER_RECORD).enumerate() {
        let mut word = [0u8; 8];
        word[0] = NAME_FORMAT;
        word[1] = (part | (parts - 1) << 4) as u8;
        word[2..2 + chunk.len()].copy_from_slice(chunk);
        words[part] = u64::from_le_bytes(word);
    }
    (words, parts)
}

impl Record {
    /// A [`Kind::Name`] record's format (byte 0 of its word).
    pub fn name_format(&self) -> u8 {
        self.word as u8
    }

    /// A [`Kind::Name`] record's part index and last part's index.
    fn name_part(&self) -> (usize, usize) {
        let b = (self.word >> 8) as u8;
        (usize::from(b & 0xf), usize::from(b >> 4))
    }
}

/// The name that `parts` starts with (its [`Kind::Name`] records of [`NAME_FORMAT`], the
/// first one's part count saying how many) and how many records it took; `None` unless
/// they follow every rule: one pid and one time, each part in its place, at most
/// [`MAX_NAME_PARTS`], zero padding only at the end of the last part, not empty, UTF-8
/// without control characters.
pub fn name_of(parts: &[Record]) -> Option<(String, usize)> {
    let first = parts.first()?;
    let (_, last) = first.name_part();
    if last >= MAX_NAME_PARTS {
        return None;
    }
    let parts = parts.get(..=last)?;
    let mut bytes = Vec::with_capacity(parts.len() * NAME_BYTES_PER_RECORD);
    for (i, r) in parts.iter().enumerate() {
        let in_place = r.kind == Kind::Name
            && r.name_format() == NAME_FORMAT
            && r.name_part() == (i, last)
            && r.pid == first.pid
            && r.time_ns == first.time_ns;
        if !in_place {
            return None;
        }
        bytes.extend_from_slice(&r.word.to_le_bytes()[2..]);
    }
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let padding = &bytes[len..];
    if padding.len() >= NAME_BYTES_PER_RECORD || padding.iter().any(|&b| b != 0) {
        return None;
    }
    bytes.truncate(len);
    let name = String::from_utf8(bytes).ok()?;
    if name.is_empty() || name.chars().any(char::is_control) {
        return None;
    }
    Some((name, parts.len()))
}

fn head_word(time_ns: u64, kind: Kind, pid: u32) -> u64 {
    (time_ns & TIME_MASK) | (u64::from(pid & 0xffff) << PID_SHIFT) | ((kind as u64) << KIND_SHIFT)
}

/// The bounded ring of records; see the [module documentation](self).
#[derive(Debug)]
pub struct Ring {
    /// The records as they travel. A buffer is `per_buffer` records in a row and the
    /// ring a whole number of buffers, so a batch is one slice. Both counts are powers
    /// of two: positions are masked, never divided.
    bytes: Vec<u8>,
    per_buffer: u64,
    capacity: u64,
    /// Records written and records taken since the start (never wrap in practice:
    /// 2^64 records).
    head: u64,
    taken: u64,
    dropped: u64,
    /// The clock's high bits as the last time base gave them (`u64::MAX`: none yet).
    high: u64,
}

impl Ring {
    /// A ring of `buffers` buffers of `per_buffer` records each (each count at least 2,
    /// rounded up to a power of two), all of it allocated now.
    pub fn new(buffers: usize, per_buffer: usize) -> Ring {
        let per_buffer = per_buffer.max(2).next_power_of_two();
        let capacity = buffers.max(2).next_power_of_two() * per_buffer;
        Ring {
            bytes: alloc::vec![0; capacity * RECORD_BYTES],
            per_buffer: per_buffer as u64,
            capacity: capacity as u64,
            head: 0,
            taken: 0,
            dropped: 0,
            high: u64::MAX,
        }
    }

    /// Appends a record made at `time_ns`, after a time base where one is due; drops it
    /// (counted) when every buffer is full. Times must not go backwards.
    pub fn push(&mut self, time_ns: u64, kind: Kind, pid: u32, word: u64) {
        self.push_all(time_ns, kind, pid, &[word]);
    }

    /// Appends one record of `kind` per word, all made at `time_ns`, in one buffer (so
    /// that one batch holds them all), after a time base where one is due; drops them
    /// all (counted) when they do not fit. A group that does not fit in what is left of
    /// the current buffer starts the next one, the gap filled with time bases. Times
    /// must not go backwards.
    pub fn push_all(&mut self, time_ns: u64, kind: Kind, pid: u32, words: &[u64]) {
        let n = words.len() as u64;
        let high = time_ns >> TIME_BITS;
        let used = self.head & (self.per_buffer - 1);
        let base_due = u64::from(used == 0 || high != self.high);
        let pad = if used != 0 && used + base_due + n > self.per_buffer {
            self.per_buffer - used
        } else {
            0
        };
        // After padding the group starts a buffer, which begins with a time base.
        let base = pad > 0 || base_due == 1;
        let need = pad + u64::from(base) + n;
        if n >= self.per_buffer || self.head - self.taken + need > self.capacity {
            self.dropped += n;
            return;
        }
        let time_base = head_word(time_ns, Kind::TimeBase, 0);
        for _ in 0..pad {
            self.write(time_base, time_ns);
        }
        if base {
            self.high = high;
            self.write(time_base, time_ns);
        }
        for &word in words {
            self.write(head_word(time_ns, kind, pid), word);
        }
    }

    /// Writes a record at the head (the caller checked for room).
    fn write(&mut self, w0: u64, w1: u64) {
        let at = (self.head & (self.capacity - 1)) as usize * RECORD_BYTES;
        if let Some(slot) = self.bytes.get_mut(at..at + RECORD_BYTES) {
            slot[..8].copy_from_slice(&w0.to_le_bytes());
            slot[8..].copy_from_slice(&w1.to_le_bytes());
        }
        self.head += 1;
    }

    /// The oldest full buffer's records as a batch's bytes, or with `partial` the records
    /// of the oldest buffer however many there are; `None` if there are none. The rest
    /// of a buffer taken partly is skipped, so the next record starts a fresh one.
    pub fn take(&mut self, partial: bool) -> Option<Vec<u8>> {
        let n = (self.head - self.taken).min(self.per_buffer);
        if n == 0 || (n < self.per_buffer && !partial) {
            return None;
        }
        let at = (self.taken & (self.capacity - 1)) as usize * RECORD_BYTES;
        let out = self.bytes.get(at..at + n as usize * RECORD_BYTES)?.to_vec();
        self.taken += self.per_buffer;
        // A partial take skips the rest of its buffer: the next record starts the next.
        self.head = self.head.max(self.taken);
        Some(out)
    }

    /// Records dropped because every buffer was full.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Records in the ring, not yet taken.
    pub fn len(&self) -> usize {
        (self.head - self.taken) as usize
    }

    /// Whether no record waits to be taken.
    pub fn is_empty(&self) -> bool {
        self.head == self.taken
    }

    /// Records a buffer holds (a full batch).
    pub fn per_buffer(&self) -> usize {
        self.per_buffer as usize
    }
}

/// Why a batch was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceError {
    /// The bytes are not a whole number of records.
    PartialRecord,
    /// A record's kind code is not a [`Kind`].
    UnknownKind {
        /// The record's index in the batch.
        index: usize,
        /// The code.
        code: u8,
    },
    /// A record before the batch's first time base (its time is unknown).
    NoTimeBase,
    /// A time base whose low bits disagree with its word, or with a pid.
    BadTimeBase {
        /// The record's index in the batch.
        index: usize,
    },
    /// A record earlier than the one before it.
    TimeBackwards {
        /// The record's index in the batch.
        index: usize,
    },
    /// A process's name whose records break a rule ([`name_of`]), or are cut off by
    /// another record or the batch's end.
    BadName {
        /// The index of the name's first record in the batch.
        index: usize,
    },
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::PartialRecord => {
                write!(f, "not a whole number of {RECORD_BYTES}-byte records")
            }
            TraceError::UnknownKind { index, code } => {
                write!(f, "record {index} has unknown kind {code}")
            }
            TraceError::NoTimeBase => f.write_str("a record before the first time base"),
            TraceError::BadTimeBase { index } => write!(f, "record {index} is a bad time base"),
            TraceError::TimeBackwards { index } => {
                write!(f, "record {index} is earlier than the one before it")
            }
            TraceError::BadName { index } => {
                write!(f, "record {index} starts a broken process name")
            }
        }
    }
}

/// Reads a batch's records (hostile bytes, already copied into private memory), with
/// their whole times; all of them or none.
pub fn parse(data: &[u8]) -> Result<Vec<Record>, TraceError> {
    if !data.len().is_multiple_of(RECORD_BYTES) {
        return Err(TraceError::PartialRecord);
    }
    let mut out = Vec::with_capacity(data.len() / RECORD_BYTES);
    let mut high: Option<u64> = None;
    let mut last = 0u64;
    for (index, chunk) in data.chunks_exact(RECORD_BYTES).enumerate() {
        let w0 = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
        let word = u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
        let code = (w0 >> KIND_SHIFT) as u8;
        let kind = Kind::from_code(code).ok_or(TraceError::UnknownKind { index, code })?;
        let pid = ((w0 >> PID_SHIFT) & 0xffff) as u16;
        let low = w0 & TIME_MASK;
        let time_ns = if kind == Kind::TimeBase {
            if pid != 0 || word & TIME_MASK != low {
                return Err(TraceError::BadTimeBase { index });
            }
            high = Some(word >> TIME_BITS);
            word
        } else {
            let high = high.ok_or(TraceError::NoTimeBase)?;
            (high << TIME_BITS) | low
        };
        if time_ns < last {
            return Err(TraceError::TimeBackwards { index });
        }
        last = time_ns;
        out.push(Record {
            time_ns,
            kind,
            pid,
            word,
        });
    }
    check_names(&out)?;
    Ok(out)
}

/// Every name of [`NAME_FORMAT`] in a batch whole and well formed (names of a newer
/// format are left to be ignored).
fn check_names(records: &[Record]) -> Result<(), TraceError> {
    let mut index = 0;
    while let Some(r) = records.get(index) {
        if r.kind == Kind::Name && r.name_format() == NAME_FORMAT {
            let (_, taken) = name_of(&records[index..]).ok_or(TraceError::BadName { index })?;
            index += taken;
        } else {
            index += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    fn kinds(records: &[Record]) -> Vec<Kind> {
        records.iter().map(|r| r.kind).collect()
    }

    #[test]
    fn codes_round_trip() {
        for (i, k) in Kind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i + 1);
            assert_eq!(Kind::from_code(*k as u8), Some(*k));
        }
        assert_eq!(Kind::from_code(0), None);
        assert_eq!(Kind::from_code(13), None);
    }

    #[test]
    fn a_batch_starts_with_a_time_base_and_keeps_order_and_fields() {
        let mut ring = Ring::new(2, 4);
        ring.push(1_000, Kind::Created, 3, 0xdead_beef);
        ring.push(2_000, Kind::Completed, 3, 0xdead_beef);
        ring.push(3_000, Kind::Retired, 70_000, 7);
        // One time base and three records: the buffer is full.
        let batch = ring.take(false).expect("a full buffer");
        assert_eq!(batch.len(), 4 * RECORD_BYTES);
        let records = parse(&batch).unwrap();
        assert_eq!(
            records[1..],
            [
                Record {
                    time_ns: 1_000,
                    kind: Kind::Created,
                    pid: 3,
                    word: 0xdead_beef
                },
                Record {
                    time_ns: 2_000,
                    kind: Kind::Completed,
                    pid: 3,
                    word: 0xdead_beef
                },
                Record {
                    time_ns: 3_000,
                    kind: Kind::Retired,
                    pid: (70_000 & 0xffff) as u16,
                    word: 7
                },
            ]
        );
        assert_eq!(records[0].kind, Kind::TimeBase);
        assert!(ring.is_empty());
    }

    #[test]
    fn a_full_ring_drops_and_counts_new_records_and_keeps_the_old() {
        let mut ring = Ring::new(2, 4);
        for t in 0..20u64 {
            ring.push(t, Kind::Syscall, 1, t);
        }
        // Two buffers of a time base and three records each: 6 kept, 14 dropped.
        assert_eq!(ring.dropped(), 14);
        assert_eq!(ring.len(), 8);
        let first = parse(&ring.take(false).unwrap()).unwrap();
        let second = parse(&ring.take(false).unwrap()).unwrap();
        let words: Vec<u64> = first
            .iter()
            .chain(&second)
            .filter(|r| r.kind == Kind::Syscall)
            .map(|r| r.word)
            .collect();
        assert_eq!(words, [0, 1, 2, 3, 4, 5]);
        assert_eq!(ring.take(true), None);
        // Room again: recording goes on.
        ring.push(100, Kind::Syscall, 1, 100);
        let third = parse(&ring.take(true).unwrap()).unwrap();
        assert_eq!(kinds(&third), [Kind::TimeBase, Kind::Syscall]);
        assert_eq!(ring.dropped(), 14);
    }

    #[test]
    fn a_partial_take_leaves_the_next_record_a_fresh_buffer() {
        let mut ring = Ring::new(2, 8);
        ring.push(5, Kind::Created, 1, 9);
        assert_eq!(ring.take(false), None, "not full yet");
        let part = parse(&ring.take(true).unwrap()).unwrap();
        assert_eq!(kinds(&part), [Kind::TimeBase, Kind::Created]);
        ring.push(6, Kind::Retired, 1, 9);
        let next = parse(&ring.take(true).unwrap()).unwrap();
        assert_eq!(kinds(&next), [Kind::TimeBase, Kind::Retired]);
        assert_eq!(next[1].time_ns, 6);
    }

    #[test]
    fn times_past_the_low_bits_get_a_new_time_base() {
        let mut ring = Ring::new(2, 8);
        let t0 = (5u64 << TIME_BITS) - 10;
        ring.push(t0, Kind::Created, 1, 1);
        ring.push(t0 + 20, Kind::Completed, 1, 1);
        let records = parse(&ring.take(true).unwrap()).unwrap();
        assert_eq!(
            kinds(&records),
            [
                Kind::TimeBase,
                Kind::Created,
                Kind::TimeBase,
                Kind::Completed
            ]
        );
        assert_eq!(records[1].time_ns, t0);
        assert_eq!(records[3].time_ns, t0 + 20);
    }

    fn record(kind: u8, pid: u64, time: u64, word: u64) -> Vec<u8> {
        let w0 = (time & TIME_MASK) | (pid << PID_SHIFT) | (u64::from(kind) << KIND_SHIFT);
        let mut b = w0.to_le_bytes().to_vec();
        b.extend_from_slice(&word.to_le_bytes());
        b
    }

    #[test]
    fn hostile_batches_are_refused_by_name() {
        let base = record(1, 0, 100, 100);
        assert_eq!(parse(&[]), Ok(Vec::new()));
        assert_eq!(parse(&base[..15]), Err(TraceError::PartialRecord));
        assert_eq!(parse(&record(2, 1, 100, 5)), Err(TraceError::NoTimeBase));
        let unknown = [base.clone(), record(0, 1, 100, 5)].concat();
        assert_eq!(
            parse(&unknown),
            Err(TraceError::UnknownKind { index: 1, code: 0 })
        );
        let unknown = [base.clone(), record(15, 1, 100, 5)].concat();
        assert_eq!(
            parse(&unknown),
            Err(TraceError::UnknownKind { index: 1, code: 15 })
        );
        assert_eq!(
            parse(&record(1, 0, 100, 101)),
            Err(TraceError::BadTimeBase { index: 0 })
        );
        assert_eq!(
            parse(&record(1, 4, 100, 100)),
            Err(TraceError::BadTimeBase { index: 0 })
        );
        let backwards = [base.clone(), record(2, 1, 99, 5)].concat();
        assert_eq!(
            parse(&backwards),
            Err(TraceError::TimeBackwards { index: 1 })
        );
        let good = [base, record(2, 1, 100, 5), record(6, 1, 200, 5)].concat();
        assert_eq!(parse(&good).unwrap().len(), 3);
    }

    fn named(time: u64, pid: u16, name: &str) -> Vec<u8> {
        let (words, n) = name_words(name);
        let mut ring = Ring::new(2, 16);
        ring.push_all(time, Kind::Name, u32::from(pid), &words[..n]);
        ring.take(true).unwrap()
    }

    #[test]
    fn names_round_trip_and_long_ones_are_cut_at_a_character() {
        for name in [
            "a",
            "rpc-de",
            "rpc-demo",
            "x".repeat(MAX_NAME_BYTES).as_str(),
        ] {
            let records = parse(&named(50, 3, name)).unwrap();
            assert_eq!(records[0].kind, Kind::TimeBase);
            let parts = name.len().div_ceil(NAME_BYTES_PER_RECORD);
            assert_eq!(records.len(), 1 + parts, "{name}");
            assert!(records[1..]
                .iter()
                .all(|r| r.kind == Kind::Name && r.pid == 3));
            assert_eq!(name_of(&records[1..]), Some((name.to_string(), parts)));
        }
        // 23 ASCII bytes and a two-byte character: the character does not fit.
        let long = format!("{}é and more", "y".repeat(MAX_NAME_BYTES - 1));
        let records = parse(&named(50, 3, &long)).unwrap();
        assert_eq!(
            name_of(&records[1..]).unwrap().0,
            "y".repeat(MAX_NAME_BYTES - 1)
        );
        assert_eq!(name_words(""), ([0; MAX_NAME_PARTS], 0));
    }

    #[test]
    fn a_name_never_straddles_two_batches() {
        let mut ring = Ring::new(2, 4);
        ring.push(10, Kind::Syscall, 1, 0);
        ring.push(10, Kind::Syscall, 1, 1);
        let (words, n) = name_words("rpc-demo");
        assert_eq!(n, 2);
        // One slot is left in the first buffer: the name starts the second.
        ring.push_all(10, Kind::Name, 2, &words[..n]);
        let first = parse(&ring.take(false).unwrap()).unwrap();
        assert_eq!(
            kinds(&first),
            [Kind::TimeBase, Kind::Syscall, Kind::Syscall, Kind::TimeBase]
        );
        let second = parse(&ring.take(true).unwrap()).unwrap();
        assert_eq!(kinds(&second), [Kind::TimeBase, Kind::Name, Kind::Name]);
        assert_eq!(name_of(&second[1..]).unwrap().0, "rpc-demo");
        // No room for all of a name: none of it is written.
        let mut full = Ring::new(2, 4);
        for t in 0..5 {
            full.push(t, Kind::Syscall, 1, t);
        }
        full.push_all(6, Kind::Name, 2, &words[..n]);
        assert_eq!(full.dropped(), 2);
        assert_eq!(full.len(), 7);
    }

    #[test]
    fn records_of_one_entry_share_a_time_and_keep_their_order() {
        let mut ring = Ring::new(2, 8);
        for (kind, word) in [(Kind::Syscall, 3), (Kind::Created, 9), (Kind::Completed, 9)] {
            ring.push(700, kind, 4, word);
        }
        ring.push(700, Kind::Retired, 4, 9);
        let records = parse(&ring.take(true).unwrap()).unwrap();
        assert_eq!(
            kinds(&records[1..]),
            [Kind::Syscall, Kind::Created, Kind::Completed, Kind::Retired]
        );
        assert!(records.iter().all(|r| r.time_ns == 700));
    }

    fn name_record(pid: u64, time: u64, format: u8, part: u8, last: u8, text: &[u8]) -> Vec<u8> {
        let mut word = [0u8; 8];
        word[0] = format;
        word[1] = part | last << 4;
        word[2..2 + text.len()].copy_from_slice(text);
        record(12, pid, time, u64::from_le_bytes(word))
    }

    #[test]
    fn hostile_names_are_refused_by_name() {
        let base = record(1, 0, 100, 100);
        let bad = |parts: &[Vec<u8>]| {
            let batch = [core::slice::from_ref(&base), parts].concat().concat();
            parse(&batch)
        };
        let good = [
            name_record(3, 100, 1, 0, 1, b"rpc-de"),
            name_record(3, 100, 1, 1, 1, b"mo"),
        ];
        assert_eq!(bad(&good).unwrap().len(), 3);
        let refused = Err(TraceError::BadName { index: 1 });
        // Cut off by the batch's end, or by another record.
        assert_eq!(bad(&good[..1]), refused);
        assert_eq!(bad(&[good[0].clone(), record(10, 3, 100, 0)]), refused);
        // Parts out of place, another pid or time, too many parts.
        assert_eq!(bad(&[good[1].clone(), good[0].clone()]), refused);
        assert_eq!(
            bad(&[good[0].clone(), name_record(4, 100, 1, 1, 1, b"mo")]),
            refused
        );
        assert_eq!(
            bad(&[good[0].clone(), name_record(3, 101, 1, 1, 1, b"mo")]),
            refused
        );
        assert_eq!(bad(&[name_record(3, 100, 1, 0, 4, b"abcdef")]), refused);
        // Empty, zero bytes inside, a part of padding only, not UTF-8, control characters.
        assert_eq!(bad(&[name_record(3, 100, 1, 0, 0, b"")]), refused);
        assert_eq!(bad(&[name_record(3, 100, 1, 0, 0, b"a\0b")]), refused);
        let padding_part = [
            name_record(3, 100, 1, 0, 1, b"abcdef"),
            name_record(3, 100, 1, 1, 1, b""),
        ];
        assert_eq!(bad(&padding_part), refused);
        assert_eq!(
            bad(&[good[0].clone(), name_record(3, 100, 1, 1, 1, b"\0x")]),
            refused
        );
        assert_eq!(bad(&[name_record(3, 100, 1, 0, 0, b"\xff\xfe")]), refused);
        assert_eq!(bad(&[name_record(3, 100, 1, 0, 0, b"a\nb")]), refused);
        // A newer format is left to be ignored; its time is still checked.
        assert_eq!(
            bad(&[name_record(3, 100, 2, 9, 0, b"\xff")]).unwrap().len(),
            2
        );
        assert_eq!(
            bad(&[name_record(3, 99, 2, 0, 0, b"x")]),
            Err(TraceError::TimeBackwards { index: 1 })
        );
    }
}
