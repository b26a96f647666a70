//! A first look at every received frame before the TCP/IP stack sees it:
//! frames whose headers cannot be right are dropped and counted, so that a
//! hostile peer's garbage is visible in the statistics rather than silently
//! lost somewhere in the stack.
//!
//! Checked: an Ethernet header; for IPv4, version 4, a header length of at
//! least 20 bytes inside the frame, a total length covering the header and
//! inside the frame, and the header checksum; for ARP, the Ethernet/IPv4
//! shape (htype 1, ptype 0x0800, lengths 6 and 4) and a whole packet. Other
//! ethertypes (IPv6 from dom0's own stack, for one) are not malformed, just
//! not ours: dropped and counted apart.

use crate::net::inetsum::checksum;

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_ARP: u16 = 0x0806;

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Why a frame's headers cannot be right.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flaw {
    /// Shorter than an Ethernet header.
    ShortFrame,
    /// IPv4: shorter than 20 bytes, or a version other than 4.
    ShortOrNotV4,
    /// IPv4: a header length under 20 bytes or beyond the frame.
    HeaderLength,
    /// IPv4: a total length shorter than the header or beyond the frame.
    TotalLength,
    /// IPv4: the header checksum does not add up.
    HeaderChecksum,
    /// ARP: not the Ethernet/IPv4 shape, or cut short.
    Arp,
}

fn ipv4_flaw(p: &[u8]) -> Option<Flaw> {
    if p.len() < 20 || p[0] >> 4 != 4 {
        return Some(Flaw::ShortOrNotV4);
    }
    let ihl = usize::from(p[0] & 0x0f) * 4;
    let total = usize::from(be16(p, 2));
    if ihl < 20 || ihl > p.len() {
        Some(Flaw::HeaderLength)
    } else if total < ihl || total > p.len() {
        Some(Flaw::TotalLength)
    } else if checksum(&p[..ihl]) != 0 {
        Some(Flaw::HeaderChecksum)
    } else {
        None
    }
}

fn arp_flaw(p: &[u8]) -> Option<Flaw> {
    let sound =
        p.len() >= 28 && be16(p, 0) == 1 && be16(p, 2) == ETHERTYPE_IPV4 && p[4] == 6 && p[5] == 4;
    (!sound).then_some(Flaw::Arp)
}

/// What to do with a received frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// IPv4 or ARP with sound headers: to the stack.
    Accept,
    /// Headers that cannot be right: dropped and counted as malformed.
    Malformed(Flaw),
    /// Another protocol (an ethertype the guest does not speak): dropped.
    NotOurs,
}

/// Looks at an Ethernet frame's headers.
pub fn check_frame(frame: &[u8]) -> Verdict {
    if frame.len() < ETH_HEADER {
        return Verdict::Malformed(Flaw::ShortFrame);
    }
    let payload = &frame[ETH_HEADER..];
    let flaw = match be16(frame, 12) {
        ETHERTYPE_IPV4 => ipv4_flaw(payload),
        ETHERTYPE_ARP => arp_flaw(payload),
        _ => return Verdict::NotOurs,
    };
    match flaw {
        None => Verdict::Accept,
        Some(flaw) => Verdict::Malformed(flaw),
    }
}

/// Whether an Ethernet frame carries a fragment of an IPv4 datagram (more
/// fragments follow, or it starts past offset 0): what reassembly holds.
pub fn is_ipv4_fragment(frame: &[u8]) -> bool {
    frame.len() >= ETH_HEADER + 20
        && be16(frame, 12) == ETHERTYPE_IPV4
        && be16(frame, ETH_HEADER + 6) & 0x3fff != 0
}

/// Whether an Ethernet frame may go to the stack.
pub fn frame_is_well_formed(frame: &[u8]) -> bool {
    check_frame(frame) == Verdict::Accept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal valid IPv4/UDP frame.
    fn good_ipv4() -> Vec<u8> {
        let mut f = vec![0u8; ETH_HEADER];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        let mut ip = vec![
            0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        let c = checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[0u8; 8]); // UDP header
        f
    }

    #[test]
    fn fragments_are_told_from_whole_datagrams() {
        let whole = good_ipv4();
        assert!(!is_ipv4_fragment(&whole));
        let mut dont_fragment = good_ipv4();
        dont_fragment[ETH_HEADER + 6] = 0x40;
        assert!(!is_ipv4_fragment(&dont_fragment), "DF alone");
        let mut first = good_ipv4();
        first[ETH_HEADER + 6] = 0x20; // more fragments, offset 0
        assert!(is_ipv4_fragment(&first));
        let mut last = good_ipv4();
        last[ETH_HEADER + 7] = 185; // offset 1480, the last one
        assert!(is_ipv4_fragment(&last));
        let mut arp = good_ipv4();
        arp[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        assert!(!is_ipv4_fragment(&arp));
        assert!(!is_ipv4_fragment(&first[..ETH_HEADER + 7]), "cut short");
    }

    #[test]
    fn good_frames_pass() {
        assert!(frame_is_well_formed(&good_ipv4()));
        // Ethernet padding after the IP packet is fine.
        let mut padded = good_ipv4();
        padded.extend_from_slice(&[0u8; 18]);
        assert!(frame_is_well_formed(&padded));
        let mut arp = vec![0u8; ETH_HEADER + 28];
        arp[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        arp[14..16].copy_from_slice(&1u16.to_be_bytes());
        arp[16..18].copy_from_slice(&ETHERTYPE_IPV4.to_be_bytes());
        arp[18] = 6;
        arp[19] = 4;
        assert!(frame_is_well_formed(&arp));
    }

    #[test]
    fn malformed_frames_are_refused() {
        assert!(!frame_is_well_formed(&[0u8; 10]), "short");
        let mut bad_sum = good_ipv4();
        bad_sum[ETH_HEADER + 10] ^= 0xff;
        assert!(!frame_is_well_formed(&bad_sum), "checksum");
        let mut long = good_ipv4();
        long[ETH_HEADER + 3] = 200; // total length beyond the frame
        let c = {
            long[ETH_HEADER + 10] = 0;
            long[ETH_HEADER + 11] = 0;
            checksum(&long[ETH_HEADER..ETH_HEADER + 20])
        };
        long[ETH_HEADER + 10..ETH_HEADER + 12].copy_from_slice(&c.to_be_bytes());
        assert!(!frame_is_well_formed(&long), "total length");
        let mut v6 = good_ipv4();
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(check_frame(&v6), Verdict::NotOurs);
        assert_eq!(
            check_frame(&bad_sum),
            Verdict::Malformed(Flaw::HeaderChecksum)
        );
        assert_eq!(check_frame(&long), Verdict::Malformed(Flaw::TotalLength));
        assert_eq!(
            check_frame(&[0u8; 10]),
            Verdict::Malformed(Flaw::ShortFrame)
        );
        assert_eq!(check_frame(&good_ipv4()), Verdict::Accept);
        let mut short_ihl = good_ipv4();
        short_ihl[ETH_HEADER] = 0x44;
        assert!(!frame_is_well_formed(&short_ihl), "ihl");
        let mut short_arp = vec![0u8; ETH_HEADER + 20];
        short_arp[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        assert!(!frame_is_well_formed(&short_arp), "arp");
    }
}
