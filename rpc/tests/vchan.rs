//! The byte-level vchan ends: set-up as libxenvchan does it, data both ways, notify bits,
//! liveness, and every named violation of the shared indices and liveness bytes.

mod common;

use std::sync::Arc;

use common::{pair, Mem, Pages};
use rpc::layout::{
    CLI_LIVE, CLI_NOTIFY, GRANTS, LEFT_CONS, LEFT_ORDER, LEFT_PROD, NOTIFY_READ, NOTIFY_WRITE,
    RIGHT_CONS, RIGHT_ORDER, RIGHT_PROD, SRV_LIVE, SRV_NOTIFY,
};
use rpc::{
    BrokenReason, Error, HeapMem, Layout, Notify, PeerState, Probe, SetupError, SharedMem, Side,
    Transfer, Vchan,
};

fn read_all(end: &mut Vchan<Mem>, n: usize) -> Vec<u8> {
    let mut buf = vec![0u8; n];
    let t = end.read(&mut buf).unwrap();
    buf.truncate(t.bytes);
    buf
}

#[test]
fn server_initialises_the_page_like_libxenvchan() {
    let pages = Pages::new(12, 13);
    // Garbage left by a previous user of the page must not survive.
    pages.ctrl.copy_in(0, &[0xee; 24]);
    let _server = pages.server();
    let c = &pages.ctrl;
    for off in [LEFT_CONS, LEFT_PROD, RIGHT_CONS, RIGHT_PROD] {
        assert_eq!(c.load_u32_acquire(off), 0);
    }
    assert_eq!([c.load_u8(LEFT_ORDER), c.load_u8(LEFT_ORDER + 1)], [12, 0]);
    assert_eq!(
        [c.load_u8(RIGHT_ORDER), c.load_u8(RIGHT_ORDER + 1)],
        [13, 0]
    );
    assert_eq!(c.load_u8(CLI_LIVE), 2);
    assert_eq!(c.load_u8(SRV_LIVE), 1);
    assert_eq!(c.load_u8(CLI_NOTIFY), NOTIFY_WRITE);
    assert_eq!(c.load_u8(SRV_NOTIFY), 0);
    let grants: Vec<u32> = (0..3).map(|i| c.load_u32_acquire(GRANTS + 4 * i)).collect();
    assert_eq!(grants, [100, 101, 102]);
    let probe = Probe::read(&**c).unwrap();
    assert_eq!(probe.left_grants, [100]);
    assert_eq!(probe.right_grants, [101, 102]);
}

#[test]
fn client_attach_marks_itself_live() {
    let pages = Pages::new(10, 11);
    let mut server = pages.server();
    assert_eq!(server.peer_state(), Ok(PeerState::Waiting));
    let mut client = pages.client();
    assert_eq!(pages.ctrl.load_u8(CLI_LIVE), 1);
    assert_eq!(pages.ctrl.load_u8(SRV_NOTIFY), NOTIFY_WRITE);
    assert_eq!(server.peer_state(), Ok(PeerState::Live));
    assert_eq!(client.peer_state(), Ok(PeerState::Live));
}

#[test]
fn bytes_flow_both_ways_and_wrap() {
    for (l, r) in [(10, 11), (11, 10), (12, 13), (14, 10)] {
        let (mut server, mut client, _pages) = pair(l, r);
        let msg: Vec<u8> = (0..700u32).map(|i| (i * 7 % 251) as u8).collect();
        for _ in 0..20 {
            // client -> server on the left ring
            assert_eq!(client.write(&msg).unwrap().bytes, msg.len());
            assert_eq!(read_all(&mut server, 4096), msg);
            // server -> client on the right ring
            assert_eq!(server.write(&msg).unwrap().bytes, msg.len());
            assert_eq!(read_all(&mut client, 4096), msg);
        }
        assert_eq!(server.stats().bytes_read, 20 * 700);
        assert_eq!(client.stats().bytes_written, 20 * 700);
    }
}

#[test]
fn partial_write_when_full_then_space_after_read() {
    let (mut server, mut client, _pages) = pair(10, 11);
    let big = vec![5u8; 1500];
    let t = client.write(&big).unwrap();
    assert_eq!(t.bytes, 1024, "left ring is 1 KiB");
    assert_eq!(client.write(&big).unwrap().bytes, 0);
    assert_eq!(client.send(&[1]), Ok(None), "send is all or nothing");
    assert_eq!(read_all(&mut server, 100).len(), 100);
    assert_eq!(client.buffer_space(), Ok(100));
    assert_eq!(client.send(&[1; 100]).map(|n| n.is_some()), Ok(true));
}

/// What the peer really read, by its consumer index: no kick asked for, and still
/// readable once either end closed.
#[test]
fn unread_by_peer_follows_the_consumer_index() {
    let (mut server, mut client, pages) = pair(10, 11);
    assert_eq!(client.unread_by_peer(), Ok(0));
    let _ = client.write(&[7u8; 300]).unwrap();
    let asked = client.stats().notify_requests;
    assert_eq!(client.unread_by_peer(), Ok(300));
    assert_eq!(read_all(&mut server, 120).len(), 120);
    assert_eq!(client.unread_by_peer(), Ok(180));
    assert_eq!(client.stats().notify_requests, asked, "asked for a kick");
    let _ = server.close();
    let _ = client.close();
    assert_eq!(client.unread_by_peer(), Ok(180), "after both ends closed");
    // A consumer index out of range is refused as everywhere else.
    pages.ctrl.store_u32_release(LEFT_CONS, 301);
    let r = BrokenReason::ConsumerOutOfRange { ring: Side::Left };
    assert_eq!(client.unread_by_peer(), Err(Error::Broken(r)));
}

#[test]
fn recv_takes_exactly_or_nothing() {
    let (mut server, mut client, _pages) = pair(10, 11);
    let _ = client.write(&[1, 2, 3]).unwrap();
    let mut four = [0u8; 4];
    assert_eq!(server.recv(&mut four), Ok(None));
    assert_eq!(server.data_ready(), Ok(3), "nothing was taken");
    let _ = client.write(&[4]).unwrap();
    assert!(server.recv(&mut four).unwrap().is_some());
    assert_eq!(four, [1, 2, 3, 4]);
    assert_eq!(server.recv(&mut [0u8; 1025]), Err(Error::ExceedsRing));
    assert_eq!(client.send(&[0u8; 1025]), Err(Error::ExceedsRing));
}

#[test]
fn client_sees_what_the_server_wrote_before_it_came() {
    let pages = Pages::new(10, 11);
    let mut server = pages.server();
    assert_eq!(server.peer_state(), Ok(PeerState::Waiting));
    let t = server.write(b"early").unwrap();
    assert_eq!(t.bytes, 5);
    assert_eq!(t.notify, Notify::No, "no client asked yet");
    let mut client = pages.client();
    assert_eq!(read_all(&mut client, 64), b"early");
}

#[test]
fn writes_kick_only_a_reader_that_asked() {
    let (mut server, mut client, pages) = pair(12, 12);
    let c = &pages.ctrl;
    // The server set cli_notify = WRITE at init: the first client write kicks.
    assert_eq!(client.write(b"a").unwrap().notify, Notify::Yes);
    assert_eq!(
        c.load_u8(CLI_NOTIFY) & NOTIFY_WRITE,
        0,
        "the kick consumed the request"
    );
    // The server is not waiting: further writes do not kick.
    assert_eq!(client.write(b"b").unwrap().notify, Notify::No);
    assert_eq!(client.write(b"c").unwrap().notify, Notify::No);
    // Asking for more than there is re-arms the request, and the next write kicks.
    assert_eq!(read_all(&mut server, 100), b"abc");
    assert_eq!(c.load_u8(CLI_NOTIFY) & NOTIFY_WRITE, NOTIFY_WRITE);
    assert_eq!(client.write(b"d").unwrap().notify, Notify::Yes);
    // A read that gets all it asked for does not re-arm.
    let _ = client.write(b"e").unwrap();
    assert_eq!(read_all(&mut server, 2), b"de");
    assert_eq!(client.write(b"f").unwrap().notify, Notify::No);
    assert_eq!(client.stats().notifies, 2);
}

#[test]
fn reads_kick_only_a_writer_that_asked() {
    let (mut server, mut client, pages) = pair(10, 11);
    let c = &pages.ctrl;
    let _ = read_all(&mut server, 1); // nothing yet
    assert_eq!(client.write(&[0u8; 1000]).unwrap().bytes, 1000);
    // Reading while the writer is content does not kick.
    let t = server.read(&mut [0u8; 10]).unwrap();
    assert_eq!(
        t,
        Transfer {
            bytes: 10,
            notify: Notify::No
        }
    );
    // The writer wants more space than there is: it asks to hear about reads.
    assert_eq!(client.write(&[0u8; 100]).unwrap().bytes, 34);
    assert_eq!(c.load_u8(SRV_NOTIFY) & NOTIFY_READ, NOTIFY_READ);
    let t = server.read(&mut [0u8; 10]).unwrap();
    assert_eq!(t.notify, Notify::Yes);
    let t = server.read(&mut [0u8; 10]).unwrap();
    assert_eq!(t.notify, Notify::No, "one kick per request");
}

#[test]
fn notify_bits_belong_to_the_right_end() {
    // The client asks through srv_notify, the server through cli_notify.
    let (mut server, mut client, pages) = pair(10, 11);
    let c = &pages.ctrl;
    c.store_u8(SRV_NOTIFY, 0);
    c.store_u8(CLI_NOTIFY, 0);
    let _ = read_all(&mut client, 8);
    assert_eq!(
        (c.load_u8(SRV_NOTIFY), c.load_u8(CLI_NOTIFY)),
        (NOTIFY_WRITE, 0)
    );
    c.store_u8(SRV_NOTIFY, 0);
    let _ = read_all(&mut server, 8);
    assert_eq!(
        (c.load_u8(SRV_NOTIFY), c.load_u8(CLI_NOTIFY)),
        (0, NOTIFY_WRITE)
    );
}

/// Asserts that every operation now reports `reason`.
fn assert_stuck(end: &mut Vchan<Mem>, reason: BrokenReason) {
    let e = Err(Error::Broken(reason));
    assert_eq!(end.broken(), Some(reason));
    assert_eq!(end.read(&mut [0u8; 4]).map(|_| ()), e);
    assert_eq!(end.recv(&mut [0u8; 4]).map(|_| ()), e);
    assert_eq!(end.write(&[1]).map(|_| ()), e);
    assert_eq!(end.send(&[1]).map(|_| ()), e);
    assert_eq!(end.data_ready().map(|_| ()), e);
    assert_eq!(end.buffer_space().map(|_| ()), e);
    assert_eq!(end.peer_state().map(|_| ()), e);
}

#[test]
fn producer_index_beyond_the_ring_breaks_the_reader() {
    let (mut server, _client, pages) = pair(10, 11);
    pages.ctrl.store_u32_release(LEFT_PROD, 1025);
    let r = BrokenReason::ProducerOutOfRange { ring: Side::Left };
    assert_eq!(
        server.read(&mut [0u8; 4]).map(|_| ()),
        Err(Error::Broken(r))
    );
    // Repairing the index does not repair the channel.
    pages.ctrl.store_u32_release(LEFT_PROD, 0);
    assert_stuck(&mut server, r);
}

#[test]
fn producer_index_going_back_breaks_the_reader() {
    let (_server, mut client, pages) = pair(10, 11);
    pages.ctrl.store_u32_release(RIGHT_PROD, 10);
    assert_eq!(client.data_ready(), Ok(10));
    pages.ctrl.store_u32_release(RIGHT_PROD, 9);
    let r = BrokenReason::ProducerOutOfRange { ring: Side::Right };
    assert_eq!(client.data_ready(), Err(Error::Broken(r)));
    assert_stuck(&mut client, r);
}

#[test]
fn producer_index_wrapping_far_breaks_the_reader() {
    let (mut server, _client, pages) = pair(12, 12);
    pages.ctrl.store_u32_release(LEFT_PROD, u32::MAX);
    let r = BrokenReason::ProducerOutOfRange { ring: Side::Left };
    assert_eq!(server.data_ready(), Err(Error::Broken(r)));
}

#[test]
fn consumer_index_ahead_of_the_writer_breaks_it() {
    let (mut server, _client, pages) = pair(10, 11);
    let _ = server.write(&[1, 2, 3]).unwrap();
    pages.ctrl.store_u32_release(RIGHT_CONS, 4);
    let r = BrokenReason::ConsumerOutOfRange { ring: Side::Right };
    assert_eq!(server.write(&[4]).map(|_| ()), Err(Error::Broken(r)));
    assert_stuck(&mut server, r);
}

#[test]
fn consumer_index_going_back_breaks_the_writer() {
    let (_server, mut client, pages) = pair(10, 11);
    let _ = client.write(&[0u8; 10]).unwrap();
    pages.ctrl.store_u32_release(LEFT_CONS, 8);
    assert_eq!(client.buffer_space(), Ok(1024 - 2));
    pages.ctrl.store_u32_release(LEFT_CONS, 7);
    let r = BrokenReason::ConsumerOutOfRange { ring: Side::Left };
    assert_eq!(client.buffer_space(), Err(Error::Broken(r)));
}

#[test]
fn own_index_overwritten_breaks_the_end() {
    let (mut server, mut client, pages) = pair(10, 11);
    pages.ctrl.store_u32_release(LEFT_CONS, 3);
    let r = BrokenReason::OwnIndexChanged { ring: Side::Left };
    assert_eq!(server.data_ready(), Err(Error::Broken(r)));
    assert_stuck(&mut server, r);
    pages.ctrl.store_u32_release(LEFT_PROD, 5);
    let r = BrokenReason::OwnIndexChanged { ring: Side::Left };
    assert_eq!(client.write(&[1]).map(|_| ()), Err(Error::Broken(r)));
}

#[test]
fn undefined_liveness_values_break_the_end() {
    let (mut server, mut client, pages) = pair(10, 11);
    pages.ctrl.store_u8(CLI_LIVE, 7);
    let r = BrokenReason::LivenessInvalid { value: 7 };
    assert_eq!(server.peer_state(), Err(Error::Broken(r)));
    assert_stuck(&mut server, r);
    // The server's byte is never "waiting".
    pages.ctrl.store_u8(SRV_LIVE, 2);
    let r = BrokenReason::LivenessInvalid { value: 2 };
    assert_eq!(client.write(&[1]).map(|_| ()), Err(Error::Broken(r)));
}

#[test]
fn a_connected_client_cannot_go_back_to_waiting() {
    let (mut server, _client, pages) = pair(10, 11);
    assert_eq!(server.peer_state(), Ok(PeerState::Live));
    pages.ctrl.store_u8(CLI_LIVE, 2);
    assert_eq!(
        server.peer_state(),
        Err(Error::Broken(BrokenReason::LivenessInvalid { value: 2 }))
    );
}

#[test]
fn closing_drains_then_reports_peer_closed() {
    let (mut server, mut client, pages) = pair(10, 11);
    let _ = client.write(b"last words").unwrap();
    assert_eq!(client.close(), Notify::Yes);
    assert_eq!(client.close(), Notify::No, "closing twice kicks once");
    assert_eq!(pages.ctrl.load_u8(CLI_LIVE), 0);
    assert_eq!(client.write(&[1]).map(|_| ()), Err(Error::Closed));
    assert_eq!(server.write(&[1]).map(|_| ()), Err(Error::PeerClosed));
    assert_eq!(read_all(&mut server, 64), b"last words");
    assert_eq!(
        server.read(&mut [0u8; 4]).map(|_| ()),
        Err(Error::PeerClosed)
    );
    assert_eq!(
        server.recv(&mut [0u8; 4]).map(|_| ()),
        Err(Error::PeerClosed)
    );
    assert_eq!(server.peer_state(), Ok(PeerState::Closed));
    // Closed stays closed, whatever the byte says later.
    pages.ctrl.store_u8(CLI_LIVE, 1);
    assert_eq!(server.peer_state(), Ok(PeerState::Closed));
}

#[test]
fn server_close_clears_srv_live() {
    let (mut server, mut client, pages) = pair(10, 11);
    assert_eq!(server.close(), Notify::Yes);
    assert_eq!(pages.ctrl.load_u8(SRV_LIVE), 0);
    assert_eq!(client.peer_state(), Ok(PeerState::Closed));
    assert_eq!(client.write(&[1]).map(|_| ()), Err(Error::PeerClosed));
}

#[test]
fn server_set_up_errors_are_named() {
    let layout = Layout::new(12, 10).unwrap();
    let page: Mem = Arc::new(HeapMem::new(4096));
    let ring: Mem = Arc::new(HeapMem::new(4096));
    let small: Mem = Arc::new(HeapMem::new(4095));
    let server = |ctrl: &Mem, l: Option<&Mem>, r: Option<&Mem>, g: &[u32]| {
        Vchan::server(layout, ctrl.clone(), l.cloned(), r.cloned(), g).map(|_| ())
    };
    assert_eq!(
        server(&small, Some(&ring), None, &[1]),
        Err(SetupError::MemoryTooSmall {
            side: None,
            needed: 4096,
            got: 4095
        })
    );
    assert_eq!(
        server(&page, None, None, &[1]),
        Err(SetupError::RingMemoryMismatch { side: Side::Left })
    );
    assert_eq!(
        server(&page, Some(&ring), Some(&ring), &[1]),
        Err(SetupError::RingMemoryMismatch { side: Side::Right })
    );
    assert_eq!(
        server(&page, Some(&small), None, &[1]),
        Err(SetupError::MemoryTooSmall {
            side: Some(Side::Left),
            needed: 4096,
            got: 4095
        })
    );
    assert_eq!(
        server(&page, Some(&ring), None, &[1, 2]),
        Err(SetupError::GrantCount {
            expected: 1,
            got: 2
        })
    );
    assert_eq!(server(&page, Some(&ring), None, &[1]), Ok(()));
}

#[test]
fn client_set_up_errors_are_named() {
    let pages = Pages::new(10, 11);
    let attach = |p: &Pages| Vchan::client(p.layout, p.ctrl.clone(), None, None).map(|_| ());
    // No server yet: the page is all zeros.
    assert!(matches!(
        Probe::read(&*pages.ctrl),
        Err(SetupError::OrderOutOfRange {
            side: Side::Left,
            order: 0
        })
    ));
    assert_eq!(
        attach(&pages),
        Err(SetupError::ServerNotLive { srv_live: 0 })
    );
    let _server = pages.server();
    assert_eq!(attach(&pages), Ok(()));
    assert_eq!(
        attach(&pages),
        Err(SetupError::NotAwaitingClient { cli_live: 1 })
    );
    pages.ctrl.store_u8(LEFT_ORDER, 11);
    assert_eq!(Probe::read(&*pages.ctrl), Err(SetupError::SharedInPageRing));
}
