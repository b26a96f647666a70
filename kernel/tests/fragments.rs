//! IPv4 fragments through smoltcp built as the guest builds it (the
//! features kernel/Cargo.toml gives it: 4 reassembly buffers of 4 KiB, a
//! 4 KiB fragmenter) and the vendored bound on reassembly memory (issue
//! 13, item 10): a ping larger than the MTU is reassembled and answered in
//! fragments; fragments that never complete hold at most the 4 buffers,
//! and give them back once they expire.

use kernel::net::inetsum::checksum;
use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::time::{Duration, Instant};
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::collections::VecDeque;

/// Counts the bytes this thread holds, so that a test sees what the
/// interface keeps (tests run on threads of their own).
struct Counting;

thread_local! {
    static HELD: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: every call goes to the system allocator unchanged; the count
// is a thread-local cell that allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        HELD.with(|h| h.set(h.get() + l.size() as isize));
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HELD.with(|h| h.set(h.get() - l.size() as isize));
        System.dealloc(p, l)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn held() -> isize {
    HELD.with(Cell::get)
}

const GUEST: [u8; 4] = [192, 0, 2, 2];
const PEER: [u8; 4] = [192, 0, 2, 1];
const MTU: usize = 1500;

#[derive(Default)]
struct Wire {
    inbox: VecDeque<Vec<u8>>,
    out: Vec<Vec<u8>>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut Vec<Vec<u8>>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut p = vec![0; len];
        let r = f(&mut p);
        self.0.push(p);
        r
    }
}

impl Device for Wire {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;
    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let p = self.inbox.pop_front()?;
        Some((Rx(p), Tx(&mut self.out)))
    }
    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.out))
    }
    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = MTU;
        caps
    }
}

/// One IPv4 fragment from the peer to the guest: `data` at byte `offset`
/// of datagram `ident`, more to come or not.
fn fragment(ident: u16, protocol: u8, offset: usize, more: bool, data: &[u8]) -> Vec<u8> {
    let mut p = vec![0x45u8, 0, 0, 0, 0, 0, 0, 0, 64, protocol, 0, 0];
    p.extend_from_slice(&PEER);
    p.extend_from_slice(&GUEST);
    p[2..4].copy_from_slice(&((20 + data.len()) as u16).to_be_bytes());
    p[4..6].copy_from_slice(&ident.to_be_bytes());
    p[6..8].copy_from_slice(&((u16::from(more) << 13) | (offset / 8) as u16).to_be_bytes());
    let sum = checksum(&p);
    p[10..12].copy_from_slice(&sum.to_be_bytes());
    p.extend_from_slice(data);
    p
}

/// An ICMP echo request carrying `size` bytes, cut into fragments that
/// fit the MTU.
fn big_ping(ident: u16, size: usize) -> Vec<Vec<u8>> {
    let mut icmp = vec![8u8, 0, 0, 0, 0x12, 0x34, 0, 1];
    icmp.extend((0..size).map(|i| i as u8));
    let sum = checksum(&icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    let per = (MTU - 20) / 8 * 8;
    icmp.chunks(per)
        .enumerate()
        .map(|(i, c)| fragment(ident, 1, i * per, (i + 1) * per < icmp.len(), c))
        .collect()
}

fn guest(wire: &mut Wire) -> Interface {
    let mut iface = Interface::new(Config::new(HardwareAddress::Ip), wire, Instant::ZERO);
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(
            IpAddress::v4(GUEST[0], GUEST[1], GUEST[2], GUEST[3]),
            24,
        ))
        .unwrap()
    });
    iface.set_reassembly_timeout(Duration::from_secs(15));
    iface
}

/// Polls until the interface has nothing more to do.
fn settle(iface: &mut Interface, wire: &mut Wire, sockets: &mut SocketSet, at: Instant) {
    for _ in 0..64 {
        iface.poll(at, wire, sockets);
        if wire.inbox.is_empty() && iface.poll_at(at, sockets) != Some(Instant::ZERO) {
            break;
        }
    }
}

#[test]
fn a_ping_larger_than_the_mtu_is_answered_in_fragments() {
    let mut wire = Wire::default();
    let mut iface = guest(&mut wire);
    let mut sockets = SocketSet::new(vec![]);
    let request = big_ping(7, 3000);
    assert_eq!(request.len(), 3);
    wire.inbox.extend(request);
    settle(&mut iface, &mut wire, &mut sockets, Instant::from_secs(1));
    let replies = std::mem::take(&mut wire.out);
    assert!(replies.len() >= 3, "{} packets", replies.len());
    assert!(replies.iter().all(|p| p.len() <= MTU));
    // Put back together: the echo reply with the request's 3,000 bytes.
    let mut icmp = vec![0u8; 8 + 3000];
    for p in &replies {
        let flags_offset = u16::from_be_bytes([p[6], p[7]]);
        let offset = usize::from(flags_offset & 0x1fff) * 8;
        icmp[offset..offset + p.len() - 20].copy_from_slice(&p[20..]);
    }
    assert_eq!(icmp[0], 0, "an echo reply");
    assert_eq!(checksum(&icmp), 0);
    assert!(icmp[8..].iter().enumerate().all(|(i, &b)| b == i as u8));
}

#[test]
fn orphan_fragments_hold_bounded_memory_and_give_it_back() {
    let mut wire = Wire::default();
    let mut iface = guest(&mut wire);
    let mut sockets = SocketSet::new(vec![]);
    // Buffers made once, not reassembly's: a first datagram's worth.
    wire.inbox.extend(big_ping(1, 3000));
    settle(&mut iface, &mut wire, &mut sockets, Instant::from_secs(1));
    wire.out.clear();
    wire.out.shrink_to_fit();
    let before = held();
    // 300 fragments of datagrams that never complete, each its own: first
    // pieces, middle pieces, and last pieces of 60 KB datagrams (beyond
    // the 4 KiB a buffer may grow to).
    for i in 0..300u16 {
        let f = match i % 3 {
            0 => fragment(0x4000 + i, 17, 0, true, &[0x5a; 1000]),
            1 => fragment(0x4000 + i, 17, 1480, true, &[0x5a; 1000]),
            _ => fragment(0x4000 + i, 17, 60_000, false, &[0x5a; 512]),
        };
        wire.inbox.push_back(f);
        settle(&mut iface, &mut wire, &mut sockets, Instant::from_secs(2));
    }
    let during = held() - before;
    assert!(
        during <= 4 * 4096,
        "{during} bytes held for fragments (4 buffers of 4 KiB at most)"
    );
    // Meanwhile a whole datagram finds no free buffer (the cost of the bound).
    wire.inbox.extend(big_ping(2, 3000));
    settle(&mut iface, &mut wire, &mut sockets, Instant::from_secs(3));
    assert!(wire.out.is_empty(), "answered while every buffer was held");
    // Once the timeout has passed, the next poll frees what they held ...
    settle(&mut iface, &mut wire, &mut sockets, Instant::from_secs(30));
    assert!(held() - before <= 0, "{} bytes still held", held() - before);
    // ... and reassembly works again.
    wire.inbox.extend(big_ping(3, 3000));
    settle(&mut iface, &mut wire, &mut sockets, Instant::from_secs(31));
    assert!(wire.out.len() >= 3);
}
