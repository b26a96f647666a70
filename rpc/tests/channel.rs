//! Messages through a Caller/Responder pair: every op and status, back-pressure, kicks,
//! and every named violation a peer can commit with frames.

mod common;

use common::{pair, Mem};
use rpc::{
    BrokenReason, Caller, Config, DirEntry, DirListBuilder, Error, FileInfo, FileKind, Incoming,
    Name, Notify, Op, Path, PayloadError, Reply, ReplyBody, Request, Responder, SharedMem, Status,
    Vchan, MAX_DIR_ENTRIES, MAX_IO, MAX_PATH, WRITE_CREATE, WRITE_TRUNCATE,
};

fn path(s: &str) -> Path {
    Path::new(s).unwrap()
}

fn rpc_pair(l: u16, r: u16, config: Config) -> (Caller<Mem>, Responder<Mem>) {
    let (server, client, _pages) = pair(l, r);
    (Caller::new(server, config), Responder::new(client, config))
}

/// Runs both sides until neither makes progress; returns what each received.
fn pump(caller: &mut Caller<Mem>, responder: &mut Responder<Mem>) -> (Vec<Reply>, Vec<Incoming>) {
    let (mut replies, mut requests) = (Vec::new(), Vec::new());
    let moved = |c: &Caller<Mem>, r: &Responder<Mem>| {
        let (c, r) = (c.stats().vchan, r.stats().vchan);
        c.bytes_read + c.bytes_written + r.bytes_read + r.bytes_written
    };
    loop {
        let before = (replies.len(), requests.len(), moved(caller, responder));
        while let Some(r) = caller.poll().unwrap() {
            replies.push(r);
        }
        while let Some(q) = responder.poll().unwrap() {
            requests.push(q);
        }
        let after = (replies.len(), requests.len(), moved(caller, responder));
        if before == after {
            return (replies, requests);
        }
    }
}

/// One request of each op with a plausible successful reply.
fn every_op() -> Vec<(Request, ReplyBody)> {
    let entries = vec![
        DirEntry {
            kind: FileKind::File,
            name: Name::new("a.txt").unwrap(),
        },
        DirEntry {
            kind: FileKind::Dir,
            name: Name::new("sub dir").unwrap(),
        },
        DirEntry {
            kind: FileKind::Symlink,
            name: Name::new("ln").unwrap(),
        },
        DirEntry {
            kind: FileKind::Other,
            name: Name::new("fifo").unwrap(),
        },
    ];
    vec![
        (Request::Ping, ReplyBody::Ping),
        (
            Request::Random { len: 32 },
            ReplyBody::Random((0..32).collect()),
        ),
        (
            Request::FileRead {
                path: path("docs/readme"),
                offset: 1 << 40,
                len: 100,
            },
            ReplyBody::FileRead(b"short file".to_vec()),
        ),
        (
            Request::FileWrite {
                path: path("out.bin"),
                offset: 7,
                flags: WRITE_CREATE | WRITE_TRUNCATE,
                data: vec![0xab; 5000],
            },
            ReplyBody::FileWrite { written: 5000 },
        ),
        (
            Request::FileInfo { path: path("x") },
            ReplyBody::FileInfo(FileInfo {
                kind: FileKind::File,
                perm: 0o644,
                size: 12345,
                mtime_s: -3,
                mtime_ns: 999_999_999,
            }),
        ),
        (
            Request::DirCreate { path: path("new") },
            ReplyBody::DirCreate,
        ),
        (
            Request::DirList {
                path: path("."),
                cursor: 3,
            },
            ReplyBody::DirList {
                entries,
                done: true,
            },
        ),
        (Request::Remove { path: path("old") }, ReplyBody::Remove),
    ]
}

#[test]
fn every_op_round_trips() {
    for (l, r) in [(10, 11), (16, 16)] {
        let (mut caller, mut responder) = rpc_pair(l, r, Config::default());
        for (i, (req, body)) in every_op().into_iter().enumerate() {
            let id = 1000 + i as u64;
            caller.call(id, &req).unwrap();
            let (_, got) = pump(&mut caller, &mut responder);
            assert_eq!(
                got,
                [Incoming {
                    event_id: id,
                    request: req.clone()
                }]
            );
            responder.reply(&Reply::ok(id, body.clone())).unwrap();
            let (replies, _) = pump(&mut caller, &mut responder);
            assert_eq!(replies, [Reply::ok(id, body)]);
            assert_eq!(caller.in_flight(), 0);
        }
    }
}

#[test]
fn every_status_round_trips() {
    let (mut caller, mut responder) = rpc_pair(12, 12, Config::default());
    for (i, status) in Status::ALL.into_iter().skip(1).enumerate() {
        let id = i as u64;
        caller
            .call(id, &Request::Remove { path: path("p") })
            .unwrap();
        pump(&mut caller, &mut responder);
        responder
            .reply(&Reply::err(id, Op::Remove, status))
            .unwrap();
        let (replies, _) = pump(&mut caller, &mut responder);
        assert_eq!(replies, [Reply::err(id, Op::Remove, status)]);
    }
}

#[test]
fn large_messages_stream_through_small_rings() {
    let (mut caller, mut responder) = rpc_pair(10, 11, Config::default());
    let data: Vec<u8> = (0..MAX_IO).map(|i| (i % 253) as u8).collect();
    let req = Request::FileWrite {
        path: path(&"d/".repeat(MAX_PATH / 2)),
        offset: 0,
        flags: 0,
        data: data.clone(),
    };
    caller.call(1, &req).unwrap();
    assert!(caller.queued_bytes() > 0, "most of it waits for ring space");
    let (_, got) = pump(&mut caller, &mut responder);
    assert_eq!(
        got,
        [Incoming {
            event_id: 1,
            request: req
        }]
    );
    caller
        .call(
            2,
            &Request::FileRead {
                path: path("f"),
                offset: 0,
                len: MAX_IO as u32,
            },
        )
        .unwrap();
    pump(&mut caller, &mut responder);
    responder
        .reply(&Reply::ok(2, ReplyBody::FileRead(data.clone())))
        .unwrap();
    let (replies, _) = pump(&mut caller, &mut responder);
    assert_eq!(replies, [Reply::ok(2, ReplyBody::FileRead(data))]);
}

#[test]
fn outbox_and_in_flight_limits_push_back() {
    let config = Config {
        outbox_bytes: 0, // raised to one frame
        max_in_flight: 3,
    };
    let (mut caller, mut responder) = rpc_pair(10, 11, config);
    let write = |n| Request::FileWrite {
        path: path("f"),
        offset: 0,
        flags: 0,
        data: vec![1; n],
    };
    caller.call(1, &write(40_000)).unwrap();
    caller.call(2, &write(20_000)).unwrap();
    assert_eq!(caller.call(3, &write(10_000)), Err(Error::Full));
    assert!(!caller.is_in_flight(3), "a refused call is not in flight");
    assert_eq!(caller.call(1, &Request::Ping), Err(Error::DuplicateEventId));
    caller.call(3, &Request::Ping).unwrap();
    assert_eq!(caller.call(4, &Request::Ping), Err(Error::TooManyInFlight));
    let (_, got) = pump(&mut caller, &mut responder);
    assert_eq!(got.len(), 3);
    assert_eq!(caller.queued_bytes(), 0);
    responder.reply(&Reply::ok(3, ReplyBody::Ping)).unwrap();
    pump(&mut caller, &mut responder);
    caller.call(4, &Request::Ping).unwrap();
    assert!(!responder.has_room(70_000));
}

#[test]
fn messages_that_cannot_be_encoded_are_refused_with_a_status() {
    let (mut caller, mut responder) = rpc_pair(12, 12, Config::default());
    let too_many = Request::Random {
        len: MAX_IO as u32 + 1,
    };
    assert_eq!(
        caller.call(1, &too_many),
        Err(Error::Encode(Status::TooLarge))
    );
    let bad_flags = Request::FileWrite {
        path: path("f"),
        offset: 0,
        flags: 4,
        data: vec![],
    };
    assert_eq!(
        caller.call(1, &bad_flags),
        Err(Error::Encode(Status::Invalid))
    );
    assert_eq!(caller.in_flight(), 0);
    assert_eq!(caller.stats().frames_sent, 0);
    let bad_info = Reply::ok(
        1,
        ReplyBody::FileInfo(FileInfo {
            kind: FileKind::Dir,
            perm: 0o10000,
            size: 0,
            mtime_s: 0,
            mtime_ns: 0,
        }),
    );
    assert_eq!(
        responder.reply(&bad_info),
        Err(Error::Encode(Status::Invalid))
    );
    // Local validation of paths and names.
    assert_eq!(Path::new(""), Err(PayloadError::PathEmpty));
    assert_eq!(Path::new("a\0b"), Err(PayloadError::PathHasNul));
    assert_eq!(
        Path::new("x".repeat(MAX_PATH + 1)).map_err(|e| e.status()),
        Err(Status::TooLarge)
    );
    for bad in ["", ".", "..", "a/b", "nul\0", &"n".repeat(256)] {
        assert_eq!(Name::new(bad), Err(PayloadError::NameInvalid), "{bad:?}");
    }
}

#[test]
fn dir_list_builder_keeps_replies_within_a_frame() {
    let mut b = DirListBuilder::new();
    let long = |i: usize| DirEntry {
        kind: FileKind::File,
        name: Name::new(format!("{i:0>250}")).unwrap(),
    };
    let mut i = 0;
    while b.try_push(long(i)).is_ok() {
        i += 1;
    }
    assert_eq!(i, (rpc::MAX_PAYLOAD - 3) / 253);
    let mut short = DirListBuilder::new();
    let mut n = 0;
    while short
        .try_push(DirEntry {
            kind: FileKind::Dir,
            name: Name::new("s").unwrap(),
        })
        .is_ok()
    {
        n += 1;
    }
    assert_eq!(n, MAX_DIR_ENTRIES);
    let (mut caller, mut responder) = rpc_pair(16, 12, Config::default());
    for (id, body) in [(1, b.finish(false)), (2, short.finish(true))] {
        caller
            .call(
                id,
                &Request::DirList {
                    path: path("d"),
                    cursor: 0,
                },
            )
            .unwrap();
        pump(&mut caller, &mut responder);
        responder.reply(&Reply::ok(id, body.clone())).unwrap();
        assert_eq!(pump(&mut caller, &mut responder).0, [Reply::ok(id, body)]);
    }
}

#[test]
fn a_busy_channel_needs_few_kicks() {
    let (mut caller, mut responder) = rpc_pair(16, 16, Config::default());
    // One outstanding request at a time: one kick each way per call.
    for id in 0..10 {
        caller.call(id, &Request::Ping).unwrap();
        assert_eq!(caller.take_notify(), Notify::Yes);
        assert!(responder.poll().unwrap().is_some());
        assert!(responder.poll().unwrap().is_none());
        assert_eq!(responder.take_notify(), Notify::No, "reading kicks nobody");
        responder.reply(&Reply::ok(id, ReplyBody::Ping)).unwrap();
        assert_eq!(responder.take_notify(), Notify::Yes);
        assert!(caller.poll().unwrap().is_some());
        assert!(caller.poll().unwrap().is_none());
        assert_eq!(caller.take_notify(), Notify::No);
    }
    assert_eq!(caller.stats().kicks + responder.stats().kicks, 20);
    // 256 requests in one batch: one kick each way for the whole batch.
    for round in 0..3u64 {
        let ids = (0..256).map(|i| 1000 * (round + 1) + i);
        for id in ids.clone() {
            caller.call(id, &Request::Random { len: 16 }).unwrap();
        }
        assert_eq!(caller.take_notify(), Notify::Yes);
        let mut n = 0;
        while let Some(q) = responder.poll().unwrap() {
            responder
                .reply(&Reply::ok(q.event_id, ReplyBody::Random(vec![0; 16])))
                .unwrap();
            n += 1;
        }
        assert_eq!(n, 256);
        assert_eq!(responder.take_notify(), Notify::Yes);
        let mut m = 0;
        while caller.poll().unwrap().is_some() {
            m += 1;
        }
        assert_eq!(m, 256);
        assert_eq!(caller.take_notify(), Notify::No);
    }
    assert_eq!(caller.stats().kicks + responder.stats().kicks, 20 + 3 * 2);
}

#[test]
fn closing_reaches_the_peer() {
    let (mut caller, mut responder) = rpc_pair(12, 12, Config::default());
    caller.call(9, &Request::Ping).unwrap();
    assert_eq!(
        caller.close(),
        Notify::Yes,
        "the owed kick and the close kick are one"
    );
    assert_eq!(caller.call(10, &Request::Ping), Err(Error::Closed));
    assert!(
        responder.poll().unwrap().is_some(),
        "bytes sent before closing still arrive"
    );
    assert_eq!(responder.poll(), Err(Error::PeerClosed));
    assert_eq!(
        responder.reply(&Reply::ok(9, ReplyBody::Ping)),
        Err(Error::PeerClosed)
    );
    assert_eq!(caller.abandon_all(), [9]);
}

// --- violations -------------------------------------------------------------------------

fn raw(event_id: u64, op: u16, status: u16, payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&event_id.to_le_bytes());
    b.extend_from_slice(&op.to_le_bytes());
    b.extend_from_slice(&status.to_le_bytes());
    b.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    b.extend_from_slice(payload);
    b
}

fn raw_len(event_id: u64, op: u16, status: u16, len: u32) -> Vec<u8> {
    let mut b = raw(event_id, op, status, &[]);
    b[12..16].copy_from_slice(&len.to_le_bytes());
    b
}

fn assert_caller_stuck(caller: &mut Caller<Mem>, reason: BrokenReason) {
    let e = Err(Error::Broken(reason));
    assert_eq!(caller.vchan().broken(), Some(reason));
    assert_eq!(caller.poll().map(|_| ()), e);
    assert_eq!(caller.call(77, &Request::Ping), e);
    assert_eq!(caller.flush(), e);
}

/// Feeds raw bytes to a responder from a bare vchan server end.
fn responder_fed(bytes: &[u8]) -> (Responder<Mem>, Vchan<Mem>) {
    let (mut server, client, _pages) = pair(12, 12);
    assert_eq!(server.write(bytes).unwrap().bytes, bytes.len());
    (Responder::new(client, Config::default()), server)
}

#[test]
fn request_violations_are_named_and_sticky() {
    let path_ab = [2, 0, b'a', b'b'];
    let mut nul = vec![3, 0, b'a', 0, b'b'];
    let mut trailing = path_ab.to_vec();
    trailing.push(0);
    let mut big_read = path_ab.to_vec();
    big_read.extend_from_slice(&0u64.to_le_bytes());
    big_read.extend_from_slice(&(MAX_IO as u32 + 1).to_le_bytes());
    let mut bad_flags = path_ab.to_vec();
    bad_flags.extend_from_slice(&0u64.to_le_bytes());
    bad_flags.push(0x80);
    bad_flags.extend_from_slice(&0u32.to_le_bytes());
    let mut short_data = path_ab.to_vec();
    short_data.extend_from_slice(&0u64.to_le_bytes());
    short_data.push(0);
    short_data.extend_from_slice(&5u32.to_le_bytes());
    short_data.extend_from_slice(&[1, 2, 3]);
    nul.truncate(5);
    let cases: Vec<(Vec<u8>, BrokenReason)> = vec![
        (raw(1, 0, 0, &[]), BrokenReason::UnknownOp { code: 0 }),
        (raw(1, 200, 0, &[]), BrokenReason::UnknownOp { code: 200 }),
        (raw(1, 1, 3, &[]), BrokenReason::StatusInRequest),
        (
            raw(1, 1, 0, &[0]),
            BrokenReason::LengthOutOfRange { op: 1, len: 1 },
        ),
        (
            raw_len(1, 4, 0, 1 << 20),
            BrokenReason::LengthOutOfRange {
                op: 4,
                len: 1 << 20,
            },
        ),
        (
            raw(1, 5, 0, &[0, 0, 0]),
            BrokenReason::Payload(PayloadError::PathEmpty),
        ),
        (
            raw(1, 5, 0, &nul),
            BrokenReason::Payload(PayloadError::PathHasNul),
        ),
        (
            raw(1, 5, 0, &[1, 0, 0xff]),
            BrokenReason::Payload(PayloadError::NotUtf8),
        ),
        (
            raw(1, 5, 0, &[9, 0, b'a']),
            BrokenReason::Payload(PayloadError::Truncated),
        ),
        (
            raw(1, 5, 0, &trailing),
            BrokenReason::Payload(PayloadError::TrailingBytes),
        ),
        (
            raw(1, 2, 0, &(MAX_IO as u32 + 1).to_le_bytes()),
            BrokenReason::Payload(PayloadError::DataTooLong),
        ),
        (
            raw(1, 3, 0, &big_read),
            BrokenReason::Payload(PayloadError::DataTooLong),
        ),
        (
            raw(1, 4, 0, &bad_flags),
            BrokenReason::Payload(PayloadError::BadFlags),
        ),
        (
            raw(1, 4, 0, &short_data),
            BrokenReason::Payload(PayloadError::Truncated),
        ),
    ];
    for (bytes, reason) in cases {
        let (mut responder, _server) = responder_fed(&bytes);
        assert_eq!(responder.poll(), Err(Error::Broken(reason)), "{bytes:?}");
        assert_eq!(responder.poll(), Err(Error::Broken(reason)));
        assert_eq!(
            responder.reply(&Reply::ok(1, ReplyBody::Ping)),
            Err(Error::Broken(reason))
        );
        assert_eq!(responder.vchan().broken(), Some(reason));
    }
}

#[test]
fn a_bad_header_is_refused_before_any_payload_is_read() {
    let (mut responder, mut server) = responder_fed(&raw_len(1, 4, 0, u32::MAX));
    let _ = server.write(&[0u8; 1000]).unwrap();
    assert!(responder.poll().is_err());
    assert_eq!(
        responder.stats().vchan.bytes_read,
        16,
        "only the header was taken"
    );
}

/// A caller with one request in flight, and the bare client end that answers it.
fn caller_with(req: Request) -> (Caller<Mem>, Vchan<Mem>) {
    let (server, mut client, _pages) = pair(12, 12);
    let mut caller = Caller::new(server, Config::default());
    caller.call(5, &req).unwrap();
    let mut sink = vec![0u8; 4096];
    let _ = client.read(&mut sink).unwrap();
    (caller, client)
}

#[test]
fn reply_violations_are_named_and_sticky() {
    let read10 = Request::FileRead {
        path: path("f"),
        offset: 0,
        len: 10,
    };
    let data = |n: usize| {
        let mut b = (n as u32).to_le_bytes().to_vec();
        b.extend(std::iter::repeat_n(7u8, n));
        b
    };
    let info = |kind: u8, perm: u16, ns: u32| {
        let mut b = vec![kind];
        b.extend_from_slice(&perm.to_le_bytes());
        b.extend_from_slice(&[0; 16]);
        b.extend_from_slice(&ns.to_le_bytes());
        b
    };
    let dir = |done: u8, count: u16, entries: &[(u8, &str)]| {
        let mut b = vec![done];
        b.extend_from_slice(&count.to_le_bytes());
        for (k, n) in entries {
            b.push(*k);
            b.extend_from_slice(&(n.len() as u16).to_le_bytes());
            b.extend_from_slice(n.as_bytes());
        }
        b
    };
    let p = Request::Ping;
    let fi = Request::FileInfo { path: path("x") };
    let dl = Request::DirList {
        path: path("d"),
        cursor: 0,
    };
    let rnd = Request::Random { len: 8 };
    let cases: Vec<(Request, Vec<u8>, BrokenReason)> = vec![
        (
            p.clone(),
            raw(6, 1, 0, &[]),
            BrokenReason::UnexpectedReply { event_id: 6 },
        ),
        (
            p.clone(),
            raw(5, 8, 0, &[]),
            BrokenReason::ReplyOpMismatch { event_id: 5 },
        ),
        (
            p.clone(),
            raw(5, 1, 13, &[]),
            BrokenReason::UnknownStatus { code: 13 },
        ),
        (
            p.clone(),
            raw(5, 1, 0, &[1]),
            BrokenReason::LengthOutOfRange { op: 1, len: 1 },
        ),
        (
            fi.clone(),
            raw(5, 5, 1, &[0; 23]),
            BrokenReason::PayloadWithError,
        ),
        (
            read10.clone(),
            raw(5, 3, 0, &data(11)),
            BrokenReason::ReplyDataLength { event_id: 5 },
        ),
        (
            rnd.clone(),
            raw(5, 2, 0, &data(7)),
            BrokenReason::ReplyDataLength { event_id: 5 },
        ),
        (
            rnd.clone(),
            raw(5, 2, 0, &data(9)),
            BrokenReason::ReplyDataLength { event_id: 5 },
        ),
        (
            read10.clone(),
            raw(5, 3, 0, &{
                let mut d = data(4);
                d[0] = 9;
                d
            }),
            BrokenReason::Payload(PayloadError::Truncated),
        ),
        (
            fi.clone(),
            raw(5, 5, 0, &info(0, 0, 0)),
            BrokenReason::Payload(PayloadError::BadFileKind),
        ),
        (
            fi.clone(),
            raw(5, 5, 0, &info(1, 0o10000, 0)),
            BrokenReason::Payload(PayloadError::BadPermissions),
        ),
        (
            fi.clone(),
            raw(5, 5, 0, &info(1, 0, 1_000_000_000)),
            BrokenReason::Payload(PayloadError::BadNanoseconds),
        ),
        (
            dl.clone(),
            raw(5, 7, 0, &dir(2, 0, &[])),
            BrokenReason::Payload(PayloadError::BadBool),
        ),
        (
            dl.clone(),
            raw(5, 7, 0, &dir(1, 2, &[(1, "a")])),
            BrokenReason::Payload(PayloadError::Truncated),
        ),
        (
            dl.clone(),
            raw(5, 7, 0, &dir(1, 1, &[(1, "a/b")])),
            BrokenReason::Payload(PayloadError::NameInvalid),
        ),
        (
            dl.clone(),
            raw(5, 7, 0, &dir(1, 1, &[(1, "..")])),
            BrokenReason::Payload(PayloadError::NameInvalid),
        ),
        (
            dl.clone(),
            raw(5, 7, 0, &dir(1, 1, &[(9, "a")])),
            BrokenReason::Payload(PayloadError::BadFileKind),
        ),
        (
            dl.clone(),
            raw(5, 7, 0, &dir(1, 1025, &[])),
            BrokenReason::Payload(PayloadError::TooManyEntries),
        ),
    ];
    for (req, bytes, reason) in cases {
        let (mut caller, mut client) = caller_with(req);
        assert_eq!(client.write(&bytes).unwrap().bytes, bytes.len());
        assert_eq!(caller.poll(), Err(Error::Broken(reason)), "{reason:?}");
        assert_caller_stuck(&mut caller, reason);
        assert_eq!(caller.abandon_all(), [5]);
    }
}

#[test]
fn the_ring_layer_breaks_the_message_layer_too() {
    let (server, _client, pages) = pair(12, 12);
    let mut caller = Caller::new(server, Config::default());
    pages.ctrl.store_u32_release(rpc::layout::LEFT_PROD, 5000);
    let reason = BrokenReason::ProducerOutOfRange {
        ring: rpc::Side::Left,
    };
    assert_eq!(caller.poll(), Err(Error::Broken(reason)));
    assert_caller_stuck(&mut caller, reason);
}
