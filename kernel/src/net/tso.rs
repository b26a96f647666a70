//! TCP segmentation offload, built backwards: consecutive full-sized
//! segments of one TCP flow, as the stack emits them in one poll, are
//! joined into one large segment that netback hands to dom0 as a single
//! GSO packet (`XEN_NETIF_GSO_TYPE_TCPV4`, `gso_size` = the segments' size).
//!
//! Why: under emulation dom0's per-packet work (netback, the bridge, its
//! TCP receive path, one ACK per two segments) bounds a transfer out of the
//! guest. Linux's netfront sends up to 64 KiB per packet for the same
//! reason. smoltcp cuts its output into MSS-sized segments; this module
//! puts them back together, and dom0 treats the result exactly as it
//! treats the GSO packets Linux sends (kept whole for local delivery, cut
//! again at the original boundaries if it is forwarded).
//!
//! Only what the stack could have sent as one segment is joined: same
//! Ethernet and IPv4 header (no options, not fragmented), same ports, TCP
//! without options, plain ACK segments (PSH only on the last), contiguous
//! sequence numbers, the same acknowledgment and window, every segment but
//! the last exactly as long as the first. Anything else goes out alone.
//! The joined segment carries the first segment's IPv4 id (segmentation
//! numbers the others), its total length and header checksum are redone;
//! the TCP checksum is left to [`crate::net::txcsum`] (a partial checksum over
//! the whole length, as GSO expects).

use crate::net::inetsum::checksum;
use alloc::vec::Vec;

const ETH: usize = 14;
const IP: usize = 20;
const TCP: usize = 20;
const HEADERS: usize = ETH + IP + TCP;
const ACK: u8 = 0x10;
const PSH: u8 = 0x08;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The TCP payload length of a frame that may be joined, or `None`.
fn joinable(f: &[u8]) -> Option<usize> {
    if f.len() < HEADERS || f[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip = &f[ETH..];
    let total = usize::from(be16(ip, 2));
    let fragmented = be16(ip, 6) & 0x3fff != 0; // MF or an offset
    let tcp = &f[ETH + IP..];
    let flags = tcp[13];
    let plain = flags == ACK || flags == ACK | PSH;
    let sound = ip[0] == 0x45 && ip[9] == 6 && !fragmented && total >= IP + TCP;
    let fits = ETH + total <= f.len();
    (sound && fits && tcp[12] >> 4 == 5 && plain && be16(tcp, 18) == 0)
        .then(|| total - IP - TCP)
        .filter(|&n| n > 0)
}

/// The segment being built.
pub struct Coalescer {
    /// Headers of the first segment, then every payload so far.
    frame: Vec<u8>,
    /// Largest frame to build (the caller's buffer and slot limits).
    max_frame: usize,
    /// Segments joined so far (0: nothing pending).
    segments: usize,
    /// Payload bytes of the first segment: every other but the last has as many.
    size: usize,
    /// Sequence number the next segment must start at.
    next_seq: u32,
    /// No more may be joined (a short or PSH segment came).
    closed: bool,
    psh: bool,
}

impl Coalescer {
    /// A coalescer building frames of at most `max_frame` bytes. Its
    /// buffer is taken whole now (growing it by doubling later would ask
    /// for half as much again, at a time the heap may not have it); `None`
    /// when the heap cannot give it.
    pub fn new(max_frame: usize) -> Option<Self> {
        let mut frame = Vec::new();
        frame.try_reserve_exact(max_frame).ok()?;
        Some(Coalescer {
            frame,
            max_frame,
            segments: 0,
            size: 0,
            next_seq: 0,
            closed: false,
            psh: false,
        })
    }

    /// Bytes of the frame pending (0 when none).
    pub fn pending_len(&self) -> usize {
        if self.segments == 0 {
            0
        } else {
            self.frame.len()
        }
    }

    /// Takes `f` into the pending segment if it continues it, or starts a
    /// new one with it when none is pending. False: `f` was not taken (the
    /// caller sends what is pending, then offers `f` again or sends it alone).
    pub fn offer(&mut self, f: &[u8]) -> bool {
        let Some(len) = joinable(f) else {
            return false;
        };
        let seq = be32(f, ETH + IP + 4);
        if self.segments == 0 {
            if ETH + IP + TCP + len > self.max_frame {
                return false;
            }
            self.frame.clear();
            self.frame.extend_from_slice(&f[..HEADERS + len]);
            self.segments = 1;
            self.size = len;
            self.next_seq = seq.wrapping_add(len as u32);
            self.psh = f[ETH + IP + 13] & PSH != 0;
            self.closed = self.psh;
            return true;
        }
        let p = &self.frame;
        let same_headers = f[..ETH] == p[..ETH]
            && f[ETH + 1] == p[ETH + 1] // TOS
            && f[ETH + 8..ETH + 10] == p[ETH + 8..ETH + 10] // TTL, protocol
            && f[ETH + 12..ETH + IP + 4] == p[ETH + 12..ETH + IP + 4] // addresses, ports
            && f[ETH + IP + 8..ETH + IP + 12] == p[ETH + IP + 8..ETH + IP + 12] // ack
            && f[ETH + IP + 14..ETH + IP + 16] == p[ETH + IP + 14..ETH + IP + 16]; // window
        if self.closed
            || !same_headers
            || seq != self.next_seq
            || len > self.size
            || self.frame.len() + len > self.max_frame
            || self.frame.len() + len - ETH > usize::from(u16::MAX)
        {
            return false;
        }
        self.frame.extend_from_slice(&f[HEADERS..HEADERS + len]);
        self.segments += 1;
        self.next_seq = seq.wrapping_add(len as u32);
        let psh = f[ETH + IP + 13] & PSH != 0;
        self.psh |= psh;
        // A short segment or a push ends the joined one (only the last
        // segment of a GSO packet may be short or carry PSH).
        self.closed = psh || len < self.size;
        true
    }

    /// Hands the pending frame to `out` with its GSO segment size (`None`:
    /// a single segment, sent as it came) and starts afresh. Nothing
    /// happens when nothing is pending. The frame is lent mutably so that
    /// the sender can fill in its checksum field in place.
    pub fn take<R>(&mut self, out: impl FnOnce(&mut [u8], Option<u16>) -> R) -> Option<R> {
        if self.segments == 0 {
            return None;
        }
        let segments = core::mem::take(&mut self.segments);
        if segments == 1 {
            return Some(out(&mut self.frame, None));
        }
        let total = (self.frame.len() - ETH) as u16;
        self.frame[ETH + 2..ETH + 4].copy_from_slice(&total.to_be_bytes());
        self.frame[ETH + 10..ETH + 12].fill(0);
        let sum = checksum(&self.frame[ETH..ETH + IP]);
        self.frame[ETH + 10..ETH + 12].copy_from_slice(&sum.to_be_bytes());
        self.frame[ETH + IP + 13] = if self.psh { ACK | PSH } else { ACK };
        Some(out(&mut self.frame, Some(self.size as u16)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;

    const MSS: usize = 1460;

    /// A segment of the flow 192.0.2.2:8080 -> 192.0.2.1:40000.
    fn segment(seq: u32, payload: &[u8], flags: u8) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x00, 0x16, 0x3e, 0, 0, 2, 0x08, 0x00];
        let total = (IP + TCP + payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[192, 0, 2, 2, 192, 0, 2, 1]);
        let sum = checksum(&ip);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut tcp = vec![0u8; TCP];
        tcp[0..2].copy_from_slice(&8080u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[8..12].copy_from_slice(&77u32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        tcp[14..16].copy_from_slice(&1024u16.to_be_bytes());
        f.extend_from_slice(&tcp);
        f.extend_from_slice(payload);
        f
    }

    fn payload(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect()
    }

    /// Cuts a joined frame again as Linux's GSO would: (seq, payload, flags).
    fn resegment(f: &[u8], gso: Option<u16>) -> Vec<(u32, Vec<u8>, u8)> {
        let seq = be32(f, ETH + IP + 4);
        let flags = f[ETH + IP + 13];
        let data = &f[HEADERS..ETH + usize::from(be16(f, ETH + 2))];
        let Some(size) = gso else {
            return vec![(seq, data.to_vec(), flags)];
        };
        let pieces: Vec<&[u8]> = data.chunks(usize::from(size)).collect();
        pieces
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let last = i + 1 == pieces.len();
                let offset = (i * usize::from(size)) as u32;
                let fl = if last { flags } else { flags & !PSH };
                (seq.wrapping_add(offset), p.to_vec(), fl)
            })
            .collect()
    }

    fn take_all(c: &mut Coalescer) -> Option<(Vec<u8>, Option<u16>)> {
        c.take(|f, gso| (f.to_vec(), gso))
    }

    #[test]
    fn full_segments_join_into_one_gso_frame() {
        let mut c = Coalescer::new(65536).unwrap();
        let segs: Vec<_> = (0..4u32)
            .map(|i| segment(1000 + i * MSS as u32, &payload(MSS, i as u8), ACK))
            .collect();
        for s in &segs {
            assert!(c.offer(s));
        }
        let (f, gso) = take_all(&mut c).unwrap();
        assert_eq!(gso, Some(MSS as u16));
        assert_eq!(f.len(), HEADERS + 4 * MSS);
        assert_eq!(usize::from(be16(&f, ETH + 2)), IP + TCP + 4 * MSS);
        assert_eq!(checksum(&f[ETH..ETH + IP]), 0, "IPv4 header checksum");
        assert_eq!(be16(&f, ETH + 4), 0x1234, "first segment's IPv4 id");
        let back = resegment(&f, gso);
        for (s, (seq, data, flags)) in segs.iter().zip(&back) {
            assert_eq!(*seq, be32(s, ETH + IP + 4));
            assert_eq!(data[..], s[HEADERS..]);
            assert_eq!(*flags, ACK);
        }
        assert_eq!(c.pending_len(), 0);
        assert!(take_all(&mut c).is_none());
    }

    #[test]
    fn a_single_segment_goes_out_unchanged() {
        let mut c = Coalescer::new(65536).unwrap();
        let s = segment(5, b"hello", ACK | PSH);
        assert!(c.offer(&s));
        // PSH closes it: nothing more joins.
        assert!(!c.offer(&segment(10, b"more", ACK)));
        assert_eq!(take_all(&mut c), Some((s, None)));
    }

    #[test]
    fn what_cannot_be_one_segment_is_refused() {
        let base = segment(0, &payload(MSS, 0), ACK);
        let next = |f: &mut Vec<u8>| {
            f[ETH + IP + 4..ETH + IP + 8].copy_from_slice(&(MSS as u32).to_be_bytes())
        };
        let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
        // A sequence number one past where the first ended.
        cases.push(("gap", segment(MSS as u32 + 1, &payload(MSS, 1), ACK)));
        let mut other_port = segment(0, &payload(MSS, 1), ACK);
        next(&mut other_port);
        other_port[ETH + IP + 1] = 81;
        cases.push(("port", other_port));
        let mut other_ack = segment(0, &payload(MSS, 1), ACK);
        next(&mut other_ack);
        other_ack[ETH + IP + 11] = 78;
        cases.push(("ack", other_ack));
        let mut other_window = segment(0, &payload(MSS, 1), ACK);
        next(&mut other_window);
        other_window[ETH + IP + 15] = 1;
        cases.push(("window", other_window));
        let mut longer = segment(MSS as u32, &payload(MSS + 1, 1), ACK);
        next(&mut longer);
        cases.push(("longer than the first", longer));
        let mut fin = segment(0, &payload(MSS, 1), ACK | 0x01);
        next(&mut fin);
        cases.push(("fin", fin));
        let mut options = segment(0, &payload(MSS, 1), ACK);
        next(&mut options);
        options[ETH + IP + 12] = 6 << 4;
        cases.push(("tcp options", options));
        let mut frag = segment(0, &payload(MSS, 1), ACK);
        next(&mut frag);
        frag[ETH + 6] = 0x20; // MF
        cases.push(("fragment", frag));
        for (what, f) in cases {
            let mut c = Coalescer::new(65536).unwrap();
            assert!(c.offer(&base));
            assert!(!c.offer(&f), "{what}");
            assert_eq!(take_all(&mut c).unwrap(), (base.clone(), None), "{what}");
        }
        // Not TCP data at all: never taken, not even to start with.
        let mut c = Coalescer::new(65536).unwrap();
        assert!(!c.offer(&segment(0, b"", ACK)), "pure ACK");
        let mut arp = base.clone();
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert!(!c.offer(&arp));
        assert_eq!(c.pending_len(), 0);
    }

    #[test]
    fn a_short_segment_ends_the_frame_and_limits_hold() {
        let mut c = Coalescer::new(HEADERS + 3 * MSS).unwrap();
        assert!(c.offer(&segment(0, &payload(MSS, 0), ACK)));
        assert!(c.offer(&segment(MSS as u32, &payload(100, 1), ACK)));
        assert!(!c.offer(&segment(MSS as u32 + 100, &payload(MSS, 2), ACK)));
        let (f, gso) = take_all(&mut c).unwrap();
        assert_eq!((f.len(), gso), (HEADERS + MSS + 100, Some(MSS as u16)));
        // The frame limit.
        for i in 0..3u32 {
            assert!(c.offer(&segment(i * MSS as u32, &payload(MSS, 0), ACK)));
        }
        assert!(!c.offer(&segment(3 * MSS as u32, &payload(MSS, 0), ACK)));
        assert_eq!(c.pending_len(), HEADERS + 3 * MSS);
        // The buffer taken at the start was enough: it never grew.
        assert_eq!(c.frame.capacity(), HEADERS + 3 * MSS);
    }

    proptest! {
        /// Whatever the stream of segments, joining then cutting again as
        /// GSO does gives back every segment, in order, with its sequence
        /// number, bytes and flags; no frame passes the limit.
        #[test]
        fn joined_frames_cut_back_into_the_same_segments(
            sizes in proptest::collection::vec(
                (prop_oneof![3 => Just(MSS), 1 => 1usize..=MSS], prop::bool::weighted(0.1), 0u8..8),
                1..80,
            ),
            limit in (HEADERS + MSS)..70000usize,
        ) {
            let mut c = Coalescer::new(limit).unwrap();
            let mut sent: Vec<(u32, Vec<u8>, u8)> = Vec::new();
            let mut out: Vec<(u32, Vec<u8>, u8)> = Vec::new();
            let mut seq = 7u32;
            for (i, (len, psh, twist)) in sizes.into_iter().enumerate() {
                let flags = if psh { ACK | PSH } else { ACK };
                let mut s = segment(seq, &payload(len, i as u8), flags);
                if twist == 0 {
                    s[ETH + IP + 15] ^= 1; // another window now and then
                }
                let mut emit = |f: &mut [u8], gso: Option<u16>| {
                    assert!(f.len() <= limit.max(s.len()));
                    out.extend(resegment(f, gso));
                };
                if !c.offer(&s) {
                    c.take(&mut emit);
                    if !c.offer(&s) {
                        emit(&mut s.clone(), None);
                    }
                }
                sent.push((seq, s[HEADERS..].to_vec(), flags));
                seq = seq.wrapping_add(len as u32);
            }
            c.take(|f, gso| out.extend(resegment(f, gso)));
            prop_assert_eq!(out, sent);
        }
    }
}
