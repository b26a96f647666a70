//! The frame that tells the guest's segment where its address now lives:
//! a gratuitous ARP (RFC 5227's ARP announcement), sent as soon as a new
//! backend is connected.
//!
//! After a live migration the guest's MAC sits on a new port of dom0's
//! bridge (a new vif), while the bridge's forwarding table still names the
//! old one until that port goes or the entry ages out; frames for the guest
//! go to the old, dead port meanwhile, and the downtime a peer sees lasts
//! until the guest happens to send something itself. A broadcast from the
//! new port moves the entry at once (Linux's netfront does the same through
//! `netdev_notify_peers`). Neighbours' caches learn nothing new: the MAC and
//! address are those they had.

/// An Ethernet header and an IPv4-over-Ethernet ARP packet, no padding
/// (the backend's bridge pads short frames if it must, as for smoltcp's
/// own 42-byte ARP frames).
pub const FRAME_LEN: usize = 14 + 28;

/// The announcement of `ip` at `mac`: a broadcast ARP request whose sender
/// and target address are both `ip`, the target hardware address zero
/// (RFC 5227 section 2.3, and what Linux sends for `arp_notify`).
pub fn gratuitous_arp(mac: [u8; 6], ip: [u8; 4]) -> [u8; FRAME_LEN] {
    let mut f = [0u8; FRAME_LEN];
    f[0..6].copy_from_slice(&[0xff; 6]);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&[0x08, 0x06]); // ARP
    let arp = &mut f[14..];
    arp[0..2].copy_from_slice(&[0x00, 0x01]); // hardware: Ethernet
    arp[2..4].copy_from_slice(&[0x08, 0x00]); // protocol: IPv4
    arp[4] = 6;
    arp[5] = 4;
    arp[6..8].copy_from_slice(&[0x00, 0x01]); // request
    arp[8..14].copy_from_slice(&mac);
    arp[14..18].copy_from_slice(&ip);
    // arp[18..24]: the target hardware address, unknown (zero).
    arp[24..28].copy_from_slice(&ip);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x00, 0x16, 0x3e, 0x00, 0x00, 0x02];
    const IP: [u8; 4] = [192, 0, 2, 2];

    #[test]
    fn the_announcement_is_a_broadcast_arp_request_for_our_own_address() {
        let f = gratuitous_arp(MAC, IP);
        assert_eq!(f.len(), 42);
        assert_eq!(f[0..6], [0xff; 6], "to everyone on the segment");
        assert_eq!(f[6..12], MAC, "from our MAC: the bridge learns this port");
        assert_eq!(f[12..14], [0x08, 0x06], "an ARP frame");
        assert_eq!(
            f[14..22],
            [0, 1, 8, 0, 6, 4, 0, 1],
            "Ethernet/IPv4, a request"
        );
        assert_eq!(f[22..28], MAC, "sender hardware address");
        assert_eq!(f[28..32], IP, "sender address");
        assert_eq!(f[32..38], [0; 6], "target hardware address unknown");
        assert_eq!(f[38..42], IP, "target address: our own (gratuitous)");
    }

    #[test]
    fn the_announcement_follows_the_address_and_mac_given() {
        let other = gratuitous_arp([2, 3, 4, 5, 6, 7], [10, 1, 2, 3]);
        assert_eq!(other[6..12], [2, 3, 4, 5, 6, 7]);
        assert_eq!(other[22..28], [2, 3, 4, 5, 6, 7]);
        assert_eq!(other[28..32], [10, 1, 2, 3]);
        assert_eq!(other[38..42], [10, 1, 2, 3]);
    }
}
