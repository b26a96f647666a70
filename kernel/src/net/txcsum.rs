//! Transmit checksum offload for TCP over IPv4, the netif way.
//!
//! A frame sent with `NETTXF_csum_blank | NETTXF_data_validated` becomes a
//! `CHECKSUM_PARTIAL` packet in dom0: delivered locally it needs no
//! checksum at all (dom0's stack trusts it, as it trusts its own), and sent
//! on to a real NIC the checksum is completed there. What such a packet
//! must carry in its TCP checksum field is the folded sum of the IPv4
//! pseudo-header alone, not complemented (what Linux's own stack leaves for
//! the NIC), so that summing the segment from the TCP header on and
//! complementing gives the real checksum. Neither the guest nor dom0 then
//! sums the payload: the per-byte work of the transfer shrinks on both sides.
//!
//! Only the guest's own frames come here (built by its stack), so nothing
//! is foreign; still, a frame that is not a whole IPv4/TCP packet is left
//! alone and reported as such.

use crate::net::inetsum::{add, fold};

const ETH_HEADER: usize = 14;
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const PROTO_TCP: u8 = 6;
/// Offset of the checksum within the TCP header.
const TCP_CHECKSUM: usize = 16;

/// Where an IPv4/TCP frame's TCP segment starts and how long it is.
fn tcp_segment(frame: &[u8]) -> Option<(usize, usize)> {
    if frame.len() < ETH_HEADER + 20 || frame[12..14] != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = &frame[ETH_HEADER..];
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // A fragment is not a whole segment: later ones carry no TCP header
    // where this one would write (smoltcp sizes TCP to the MTU, so none
    // should come, but IPv4 fragmentation is on).
    let fragment = u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0;
    if ip[0] >> 4 != 4 || ip[9] != PROTO_TCP || ihl < 20 || total > ip.len() || fragment {
        return None;
    }
    let tcp_len = total.checked_sub(ihl).filter(|&n| n >= 20)?;
    Some((ETH_HEADER + ihl, tcp_len))
}

/// Writes the pseudo-header sum into an IPv4/TCP frame's checksum field,
/// ready for `NETTXF_csum_blank`. Returns false (frame untouched) for any
/// other frame, which must then carry its full checksum.
pub fn prepare_partial_checksum(frame: &mut [u8]) -> bool {
    let Some((tcp, tcp_len)) = tcp_segment(frame) else {
        return false;
    };
    let ip = &frame[ETH_HEADER..];
    let mut sum = add(0, &ip[12..20]); // source and destination
    sum += u64::from(PROTO_TCP);
    sum += tcp_len as u64;
    let partial = fold(sum);
    frame[tcp + TCP_CHECKSUM..tcp + TCP_CHECKSUM + 2].copy_from_slice(&partial.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet/IPv4/TCP frame with `payload`, checksum field zero.
    fn frame(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; ETH_HEADER];
        f[12..14].copy_from_slice(&ETHERTYPE_IPV4);
        let total = (20 + 20 + payload.len()) as u16;
        let mut ip = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, PROTO_TCP, 0, 0];
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&[192, 0, 2, 2, 192, 0, 2, 1]);
        f.extend_from_slice(&ip);
        let mut tcp = vec![0u8; 20];
        tcp[0..2].copy_from_slice(&8080u16.to_be_bytes());
        tcp[2..4].copy_from_slice(&40000u16.to_be_bytes());
        tcp[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = 0x18; // PSH, ACK
        tcp[14..16].copy_from_slice(&64240u16.to_be_bytes());
        f.extend_from_slice(&tcp);
        f.extend_from_slice(payload);
        f
    }

    /// The full TCP checksum computed the textbook way (RFC 793).
    fn full_checksum(f: &[u8]) -> u16 {
        let tcp = &f[ETH_HEADER + 20..];
        let mut pseudo = f[ETH_HEADER + 12..ETH_HEADER + 20].to_vec();
        pseudo.extend_from_slice(&[0, PROTO_TCP]);
        pseudo.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
        let mut zeroed = tcp.to_vec();
        zeroed[TCP_CHECKSUM] = 0;
        zeroed[TCP_CHECKSUM + 1] = 0;
        !fold(add(add(0, &pseudo), &zeroed))
    }

    /// What the NIC (or Linux's skb_checksum_help) does with a partial
    /// checksum: sum the segment as it is, field included, and complement.
    fn completed(f: &[u8]) -> u16 {
        !fold(add(0, &f[ETH_HEADER + 20..]))
    }

    #[test]
    fn completing_the_partial_sum_gives_the_real_checksum() {
        for payload in [
            &b""[..],
            b"x",
            b"GET / HTTP/1.1\r\n\r\n",
            &[0xff; 1460],
            &[0; 1459],
        ] {
            let mut f = frame(payload);
            let want = full_checksum(&f);
            assert!(prepare_partial_checksum(&mut f));
            assert_eq!(completed(&f), want, "payload of {} bytes", payload.len());
        }
    }

    #[test]
    fn other_frames_are_left_alone() {
        let mut udp = frame(b"hello");
        udp[ETH_HEADER + 9] = 17;
        let mut arp = frame(b"");
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        let mut short = frame(b"");
        short.truncate(ETH_HEADER + 30);
        let mut lying = frame(b"abc");
        lying[ETH_HEADER + 3] = 0xff; // total length beyond the frame
        let mut first_fragment = frame(b"abc");
        first_fragment[ETH_HEADER + 6] = 0x20; // more fragments
        let mut later_fragment = frame(b"abc");
        later_fragment[ETH_HEADER + 6] = 0;
        later_fragment[ETH_HEADER + 7] = 185; // offset 1480
        for mut f in [udp, arp, short, lying, first_fragment, later_fragment] {
            let before = f.clone();
            assert!(!prepare_partial_checksum(&mut f));
            assert_eq!(f, before);
        }
    }
}
