//! TCP initial sequence numbers as a real smoltcp interface sends them,
//! against the attack of `kernel::net::seqattack` (issue 13, item 7).
//!
//! A "guest" interface with listening sockets, as the guest's listeners
//! keep them, and a "peer" interface that connects to them over a pipe;
//! the SYN-ACKs on the pipe give the guest's ISNs. Without a generator of
//! its own (`Config::tcp_isn`), smoltcp draws them from the generator
//! seeded once, and two of them predict the third: the attack is real.
//! With the RFC 6528 generator the guest's stack installs
//! (`kernel::net::isn`), the attack predicts nothing.

use kernel::net::isn::initial_sequence_number;
use kernel::net::seqattack::{Attack, GAP};
use smoltcp::iface::{Config, Interface, SocketSet, TcpIsnGenerator};
use smoltcp::phy::{self, Device, DeviceCapabilities, Medium};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, Ipv4Packet, TcpPacket};
use std::collections::VecDeque;

const GUEST: [u8; 4] = [192, 0, 2, 2];
const PEER: [u8; 4] = [192, 0, 2, 1];
const PORT: u16 = 80;

/// One end of an IP pipe: what it sends waits in `out` for the other end.
#[derive(Default)]
struct Pipe {
    inbox: VecDeque<Vec<u8>>,
    out: VecDeque<Vec<u8>>,
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = vec![0; len];
        let r = f(&mut frame);
        self.0.push_back(frame);
        r
    }
}

impl Device for Pipe {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.inbox.pop_front()?;
        Some((Rx(frame), Tx(&mut self.out)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.out))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ip;
        caps.max_transmission_unit = 1500;
        caps
    }
}

fn interface(dev: &mut Pipe, ip: [u8; 4], seed: u64, isn: Option<TcpIsnGenerator>) -> Interface {
    let mut c = Config::new(HardwareAddress::Ip);
    c.random_seed = seed;
    c.tcp_isn = isn;
    let mut iface = Interface::new(c, dev, Instant::ZERO);
    iface.update_ip_addrs(|a| {
        a.push(IpCidr::new(IpAddress::v4(ip[0], ip[1], ip[2], ip[3]), 24))
            .unwrap()
    });
    iface
}

fn socket() -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; 1024]),
        tcp::SocketBuffer::new(vec![0; 1024]),
    )
}

/// The SYN-ACK's sequence number, if `packet` is one from the guest.
fn syn_ack_isn(packet: &[u8]) -> Option<u32> {
    let ip = Ipv4Packet::new_checked(packet).ok()?;
    let tcp = TcpPacket::new_checked(ip.payload()).ok()?;
    (tcp.syn() && tcp.ack() && tcp.src_port() == PORT).then(|| tcp.seq_number().0 as u32)
}

/// The ISNs of `n` connections the peer opens one after the other to the
/// guest's listener, whose interface is seeded with `seed` and chooses
/// ISNs with `isn` (smoltcp's generator if `None`).
fn guest_isns(seed: u64, isn: Option<TcpIsnGenerator>, n: usize) -> Vec<u32> {
    let (mut guest_dev, mut peer_dev) = (Pipe::default(), Pipe::default());
    let mut guest = interface(&mut guest_dev, GUEST, seed, isn);
    let mut peer = interface(&mut peer_dev, PEER, seed ^ 0x5a5a, None);
    let (mut guest_sockets, mut peer_sockets) = (SocketSet::new(vec![]), SocketSet::new(vec![]));
    let mut isns = Vec::new();
    let mut now_us = 1_000_000i64;
    for i in 0..n {
        let mut listening = socket();
        listening.listen(PORT).unwrap();
        guest_sockets.add(listening);
        let mut client = socket();
        let to = IpEndpoint::new(IpAddress::v4(GUEST[0], GUEST[1], GUEST[2], GUEST[3]), PORT);
        client
            .connect(peer.context(), to, 40000 + i as u16)
            .unwrap();
        let client = peer_sockets.add(client);
        for _ in 0..8 {
            let t = Instant::from_micros(now_us);
            peer.poll(t, &mut peer_dev, &mut peer_sockets);
            guest_dev.inbox.extend(peer_dev.out.drain(..));
            guest.poll(t, &mut guest_dev, &mut guest_sockets);
            for frame in guest_dev.out.drain(..) {
                isns.extend(syn_ack_isn(&frame));
                peer_dev.inbox.push_back(frame);
            }
            now_us += 1500;
        }
        assert_eq!(
            peer_sockets.get::<tcp::Socket>(client).state(),
            tcp::State::Established,
            "connection {i}"
        );
    }
    assert_eq!(isns.len(), n, "one SYN-ACK per connection");
    isns
}

/// The guest's generator: RFC 6528 under a fixed test secret.
fn rfc6528(local: IpEndpoint, remote: IpEndpoint, now: Instant) -> u32 {
    let v4 = |e: IpEndpoint| {
        let IpAddress::Ipv4(a) = e.addr;
        (a.octets(), e.port)
    };
    initial_sequence_number(
        [0x1234_5678_9abc_def0, 0x0fed_cba9_8765_4321],
        v4(local),
        v4(remote),
        now.total_micros() as u64,
    )
}

#[test]
fn two_syn_acks_predict_smoltcps_next_isn() {
    let attack = Attack::new();
    for seed in [0x0123_4567_89ab_cdef, 0x9e37_79b9_7f4a_7c15, 42] {
        let isns = guest_isns(seed, None, 3);
        let guesses = attack.predict(isns[0], isns[1], 1);
        assert!(
            guesses.contains(&isns[2]),
            "seed {seed:#x}: {isns:x?}, guessed {guesses:x?}"
        );
        // A handful of guesses at most: each is one spoofing attempt.
        assert!(guesses.len() <= 8, "{guesses:x?}");
        assert!(attack.predicts_any(&isns));
    }
}

#[test]
fn rfc6528_isns_are_not_predicted() {
    let attack = Attack::new();
    let isns = guest_isns(0x0123_4567_89ab_cdef, Some(rfc6528), 2 + GAP);
    // The same interface, seed and connections: only the generator differs.
    assert_ne!(isns, guest_isns(0x0123_4567_89ab_cdef, None, 2 + GAP));
    assert!(!attack.predicts_any(&isns), "{isns:x?}");
}
